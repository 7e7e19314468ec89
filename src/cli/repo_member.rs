//! `cocov repo member add|list|remove`: who may see and manage a standalone repository.

use clap::Subcommand;

use super::Failure;
use crate::audit::AuditActor;
use crate::memberships::{self, Level};

#[derive(Subcommand, Debug)]
pub enum RepoMemberCommand {
    /// Grant a user a level on a repository (or change it).
    Add {
        repository: String,
        login: String,
        /// read, maintain or admin.
        #[arg(long, value_parser = parse_level)]
        level: Level,
    },
    /// List a repository's members.
    List { repository: String },
    /// End a user's membership; their access ends at once.
    Remove { repository: String, login: String },
}

fn parse_level(word: &str) -> Result<Level, String> {
    Level::parse(word).ok_or_else(|| format!("`{word}` is not one of read, maintain, admin"))
}

pub async fn run(pool: &sqlx::PgPool, command: &RepoMemberCommand) -> Result<(), Failure> {
    let actor = AuditActor::cli();
    match command {
        RepoMemberCommand::Add {
            repository,
            login,
            level,
        } => {
            let repo = super::repo::find(pool, repository).await?;
            let member = memberships::grant(pool, &repo, login, *level, &actor)
                .await
                .map_err(Failure::new)?;
            println!(
                "{} is now a {} member of {}",
                member.login,
                member.level.as_str(),
                repo.name
            );
        }
        RepoMemberCommand::List { repository } => {
            let repo = super::repo::find(pool, repository).await?;
            let members = memberships::list(pool, &repo).await.map_err(Failure::new)?;
            if members.is_empty() {
                println!("{} has no members (only administrators see it)", repo.name);
            }
            for m in members {
                println!("{:<39}  {:<8}  {}", m.login, m.level.as_str(), m.source);
            }
        }
        RepoMemberCommand::Remove { repository, login } => {
            let repo = super::repo::find(pool, repository).await?;
            if !memberships::revoke(pool, &repo, login, &actor)
                .await
                .map_err(Failure::new)?
            {
                return Err(Failure::new(format!(
                    "`{login}` is not a member of {}",
                    repo.name
                )));
            }
            println!("{login} is no longer a member of {}", repo.name);
        }
    }
    Ok(())
}
