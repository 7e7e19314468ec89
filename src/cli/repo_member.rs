//! `cocov repo member add|list|remove`: who may see and manage a standalone repository.

use clap::Subcommand;

use super::Failure;
use crate::audit::AuditActor;
use crate::memberships::{self, Level, Subject};

#[derive(Subcommand, Debug)]
pub enum RepoMemberCommand {
    /// Grant a user (or, with --group, an OIDC group) a level on a repository (or change it).
    Add {
        repository: String,
        #[arg(required_unless_present = "group", conflicts_with = "group")]
        login: Option<String>,
        /// An OIDC group instead of a user: everyone whose last sign-in listed it.
        #[arg(long)]
        group: Option<String>,
        /// read, maintain or admin.
        #[arg(long, value_parser = parse_level)]
        level: Level,
    },
    /// List a repository's members.
    List { repository: String },
    /// End a user's (or, with --group, an OIDC group's) membership; access ends at once.
    Remove {
        repository: String,
        #[arg(required_unless_present = "group", conflicts_with = "group")]
        login: Option<String>,
        #[arg(long)]
        group: Option<String>,
    },
}

fn parse_level(word: &str) -> Result<Level, String> {
    Level::parse(word).ok_or_else(|| format!("`{word}` is not one of read, maintain, admin"))
}

/// The member a command names; clap makes sure exactly one of the two is given.
fn subject<'a>(login: &'a Option<String>, group: &'a Option<String>) -> Subject<'a> {
    match (login, group) {
        (_, Some(group)) => Subject::Group(group),
        (login, None) => Subject::User(login.as_deref().unwrap_or_default()),
    }
}

pub async fn run(pool: &sqlx::PgPool, command: &RepoMemberCommand) -> Result<(), Failure> {
    let actor = AuditActor::cli();
    match command {
        RepoMemberCommand::Add {
            repository,
            login,
            group,
            level,
        } => {
            let repo = super::repo::find(pool, repository).await?;
            let subject = subject(login, group);
            let member = memberships::grant(pool, &repo, subject, *level, &actor)
                .await
                .map_err(Failure::new)?;
            println!(
                "{} is now a {} member of {}",
                member.name(),
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
                println!("{:<39}  {:<8}  {}", m.name(), m.level.as_str(), m.source);
            }
        }
        RepoMemberCommand::Remove {
            repository,
            login,
            group,
        } => {
            let repo = super::repo::find(pool, repository).await?;
            let subject = subject(login, group);
            let name = match subject {
                Subject::User(login) => login.to_string(),
                Subject::Group(group) => format!("group:{group}"),
            };
            if !memberships::revoke(pool, &repo, subject, &actor)
                .await
                .map_err(Failure::new)?
            {
                return Err(Failure::new(format!(
                    "`{name}` is not a member of {}",
                    repo.name
                )));
            }
            println!("{name} is no longer a member of {}", repo.name);
        }
    }
    Ok(())
}
