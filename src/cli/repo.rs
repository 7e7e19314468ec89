//! `cocov repo …`: registering repositories by git URL (standalone mode) and managing them.

use clap::Subcommand;

use super::{Cli, Failure, load_config};
use crate::audit::AuditActor;
use crate::queue::JobKind;
use crate::repositories::{self, NewRepository, RepositoryError, Source};

#[derive(Subcommand, Debug)]
pub enum RepoCommand {
    /// Register a repository by git URL (https://, ssh://, user@host:path or file://, as
    /// git.allowed_protocols permits; no credentials in it) and print its upload token.
    Add {
        name: String,
        #[arg(long)]
        git_url: String,
        #[arg(long, default_value = "main")]
        default_branch: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List repositories.
    List,
    /// Replace a repository's upload token and print the new one (the old one stops working).
    RegenToken { name: String },
    /// Delete a repository with all its data (done by a worker).
    Delete { name: String },
}

pub async fn run(cli: &Cli, command: &RepoCommand) -> Result<(), Failure> {
    let config = load_config(cli)?;
    crate::db::migrate(&config.database)
        .await
        .map_err(Failure::new)?;
    let pool = crate::db::connect(&config.database).map_err(Failure::new)?;
    let actor = AuditActor::cli();
    match command {
        RepoCommand::Add {
            name,
            git_url,
            default_branch,
            description,
        } => {
            let new = NewRepository {
                name: name.clone(),
                description: description.clone(),
                default_branch: default_branch.clone(),
                source: Source::GitUrl(git_url.clone()),
            };
            let allowed = &config.git.allowed_protocols;
            let (repo, token) = repositories::create(&pool, &new, allowed, &actor)
                .await
                .map_err(|e| match e {
                    RepositoryError::GitUrl(rule) => {
                        Failure::new(format!("--git-url: {rule} ({})", rule.code()))
                    }
                    other => Failure::new(other),
                })?;
            println!(
                "repository {} registered (id {}, default branch {})",
                repo.name, repo.id, repo.default_branch
            );
            println!("upload token (shown once): {token}");
        }
        RepoCommand::List => {
            for r in repositories::list(&pool).await.map_err(Failure::new)? {
                let source = r.git_url.as_deref().map_or_else(
                    || format!("github:{}", r.github_id.unwrap_or_default()),
                    crate::git::redact,
                );
                println!(
                    "{:>6}  {:<30}  {:<12}  {source}",
                    r.id, r.name, r.default_branch
                );
            }
        }
        RepoCommand::RegenToken { name } => {
            let repo = find(&pool, name).await?;
            let token = repositories::regenerate_token(&pool, &repo, &actor)
                .await
                .map_err(Failure::new)?;
            println!("new upload token for {} (shown once): {token}", repo.name);
        }
        RepoCommand::Delete { name } => {
            let repo = find(&pool, name).await?;
            let kv = crate::kv::Kv::connect(&config.redis).map_err(Failure::new)?;
            let queue = crate::queue::Queue::new(kv, crate::app::MAIN_QUEUE, config.queue.clone());
            crate::audit::record(
                &pool,
                &actor,
                "repository.delete",
                &format!("repository:{}", repo.id),
                serde_json::json!({}),
            )
            .await
            .map_err(Failure::new)?;
            repositories::DeleteJob {
                repository_id: repo.id,
            }
            .enqueue(&queue)
            .await
            .map_err(Failure::new)?;
            println!("repository {} will be deleted by a worker", repo.name);
        }
    }
    Ok(())
}

async fn find(pool: &sqlx::PgPool, name: &str) -> Result<repositories::Repository, Failure> {
    repositories::find_by_name(pool, name)
        .await
        .map_err(Failure::new)?
        .ok_or_else(|| Failure::new(format!("no repository named `{name}`")))
}
