//! `cocov admin …`: operator commands that talk to PostgreSQL and Redis directly.

use clap::Subcommand;

use super::{Cli, Failure, load_config};
use crate::audit::AuditActor;
use crate::auth::service_tokens;

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a user (the first user is always admin) with a password, a one-time sign-in link,
    /// or else a personal access token printed once.
    CreateUser(super::admin_user::CreateUserArgs),
    /// Users: list, promote/demote, sign out everywhere, delete, set a password, sign-in link.
    User {
        #[command(subcommand)]
        command: super::admin_user::UserCommand,
    },
    /// Manage service tokens (for workers and integrations).
    ServiceToken {
        #[command(subcommand)]
        command: ServiceTokenCommand,
    },
    /// Re-read every GitHub repository's collaborators and their permission levels now.
    SyncPermissions,
    /// Re-encrypt every secret under a new key (read from the file, or generated into it when
    /// the file does not exist).
    RotateKey {
        #[arg(long)]
        new_key_file: std::path::PathBuf,
    },
    /// Which repositories an organisation secret reaches (grants).
    Secret {
        #[command(subcommand)]
        command: super::admin_secret::SecretCommand,
    },
    /// Inspect background jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ServiceTokenCommand {
    /// Create a token; it is printed once and stored only as a hash.
    Create {
        #[arg(long)]
        description: String,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token by id, effective at once.
    Revoke { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// List jobs that failed too often and were set aside.
    Dead {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put a dead job back on the queue.
    Retry { id: String },
}

pub async fn run(cli: &Cli, command: &AdminCommand) -> Result<(), Failure> {
    let config = load_config(cli)?;
    match command {
        AdminCommand::CreateUser(args) => super::admin_user::create_user(&config, args).await,
        AdminCommand::User { command } => super::admin_user::run(&config, command).await,
        AdminCommand::ServiceToken { command } => {
            let pool = migrated_pool(&config).await?;
            let actor = AuditActor::cli();
            match command {
                ServiceTokenCommand::Create { description } => {
                    let (record, token) = service_tokens::create(&pool, description, None, &actor)
                        .await
                        .map_err(Failure::new)?;
                    println!("service token {} created (shown once): {token}", record.id);
                }
                ServiceTokenCommand::List => {
                    println!(
                        "{:>6}  {:<25}  {:<25}  description",
                        "id", "created", "last used"
                    );
                    for t in service_tokens::list(&pool).await.map_err(Failure::new)? {
                        println!(
                            "{:>6}  {:<25}  {:<25}  {}",
                            t.id,
                            t.created_at.to_string(),
                            t.last_used_at
                                .map(|d| d.to_string())
                                .unwrap_or_else(|| "never".into()),
                            t.description
                        );
                    }
                }
                ServiceTokenCommand::Revoke { id } => {
                    if !service_tokens::revoke(&pool, *id, &actor)
                        .await
                        .map_err(Failure::new)?
                    {
                        return Err(Failure::new(format!("no service token with id {id}")));
                    }
                    println!("service token {id} revoked");
                }
            }
            Ok(())
        }
        AdminCommand::Secret { command } => {
            let pool = migrated_pool(&config).await?;
            super::admin_secret::run(&pool, command).await
        }
        AdminCommand::RotateKey { new_key_file } => {
            let pool = migrated_pool(&config).await?;
            super::rotate_key::run(&config, &pool, new_key_file).await
        }
        AdminCommand::SyncPermissions => {
            let app = crate::app::App::build(config).await.map_err(Failure::new)?;
            if app.github.is_none() {
                return Err(Failure::new(
                    "GitHub mode is not configured (github.app_id is empty)",
                ));
            }
            let ids: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, name::text FROM repositories WHERE github_id IS NOT NULL ORDER BY name",
            )
            .fetch_all(&app.db)
            .await
            .map_err(Failure::new)?;
            for (id, name) in ids {
                let members = crate::permissions::sync_repository(&app, id)
                    .await
                    .map_err(|e| Failure::new(format!("{name}: {e}")))?;
                println!("{name}: {members} member(s)");
            }
            Ok(())
        }
        AdminCommand::Jobs { command } => {
            let kv = crate::kv::Kv::connect(&config.redis).map_err(Failure::new)?;
            let queue = crate::queue::Queue::new(kv, crate::app::MAIN_QUEUE, config.queue.clone());
            match command {
                JobsCommand::Dead { limit, json } => {
                    let dead = queue.dead_letters(*limit).await.map_err(Failure::new)?;
                    if *json {
                        for d in &dead {
                            println!("{}", serde_json::to_string(d).unwrap_or_default());
                        }
                    } else if dead.is_empty() {
                        println!("no dead jobs");
                    } else {
                        for d in &dead {
                            println!(
                                "{}  {}  attempts={}  {}",
                                d.id, d.kind, d.attempts, d.last_error
                            );
                        }
                    }
                }
                JobsCommand::Retry { id } => {
                    if !queue.retry_dead(id).await.map_err(Failure::new)? {
                        return Err(Failure::new(format!("no dead job with id {id}")));
                    }
                    println!("job {id} is back on the queue");
                }
            }
            Ok(())
        }
    }
}

/// A pool on a database that has every migration applied.
pub(super) async fn migrated_pool(config: &crate::config::Config) -> Result<sqlx::PgPool, Failure> {
    crate::db::migrate(&config.database)
        .await
        .map_err(Failure::new)?;
    crate::db::connect(&config.database).map_err(Failure::new)
}
