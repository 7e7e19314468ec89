//! `cocov admin secret …`: which repositories an organisation secret reaches.

use clap::Subcommand;

use super::Failure;
use crate::audit::AuditActor;
use crate::secrets::grants::{self, Grants};

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Let a repository's checks mount an organisation secret.
    Grant { secret: String, repository: String },
    /// Take a repository's grant back.
    Revoke { secret: String, repository: String },
    /// Show the repositories an organisation secret is granted to.
    Grants { secret: String },
    /// Let every repository use the secret (`true`) or only those granted (`false`).
    AllRepositories {
        secret: String,
        #[arg(action = clap::ArgAction::Set)]
        enabled: bool,
    },
}

pub async fn run(pool: &sqlx::PgPool, command: &SecretCommand) -> Result<(), Failure> {
    let actor = AuditActor::cli();
    let grants = match command {
        SecretCommand::Grant { secret, repository } => {
            grants::grant(pool, secret, repository, &actor, None)
                .await
                .map_err(Failure::new)?
        }
        SecretCommand::Revoke { secret, repository } => {
            if !grants::revoke(pool, secret, repository, &actor)
                .await
                .map_err(Failure::new)?
            {
                return Err(Failure::new(format!(
                    "secret `{secret}` is not granted to `{repository}`"
                )));
            }
            grants::list(pool, secret).await.map_err(Failure::new)?
        }
        SecretCommand::Grants { secret } => {
            grants::list(pool, secret).await.map_err(Failure::new)?
        }
        SecretCommand::AllRepositories { secret, enabled } => {
            grants::set_all_repositories(pool, secret, *enabled, &actor)
                .await
                .map_err(Failure::new)?
        }
    };
    print(&grants);
    Ok(())
}

fn print(grants: &Grants) {
    if grants.all_repositories {
        println!("{}: every repository", grants.secret);
    } else if grants.grants.is_empty() {
        println!("{}: no repository", grants.secret);
    } else {
        println!("{}: granted to", grants.secret);
    }
    for g in &grants.grants {
        println!(
            "  {}  (by {}, {})",
            g.repository,
            g.granted_by.as_deref().unwrap_or("an operator"),
            g.created_at
        );
    }
}
