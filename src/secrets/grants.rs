//! Which repositories an organisation secret reaches. Owns the `secret_grants` table and the
//! secrets' `all_repositories` flag.
//!
//! An organisation secret is mounted into a repository's checks only when it is granted to that
//! repository, or when its `all_repositories` flag is set (which the migration set on the
//! secrets that existed before grants, so they keep working until an administrator narrows
//! them). A repository's own secrets need no grant.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::audit::{self, AuditActor};

/// The SQL condition "the `secrets` row `s` is visible to repository `$2`": its own secret, or
/// an organisation secret granted to it (or to all repositories).
pub(super) const VISIBLE_TO_REPOSITORY: &str = "(s.repository_id = $2 OR (s.scope = 'organization' \
     AND (s.all_repositories OR EXISTS (SELECT 1 FROM secret_grants g \
          WHERE g.secret_id = s.id AND g.repository_id = $2))))";

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("unknown organization secret `{0}`")]
    UnknownSecret(String),
    #[error("unknown repository `{0}`")]
    UnknownRepository(String),
    // Not transparent: the sqlx error stays in the cause chain, where outages are recognised.
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

/// One repository an organisation secret is granted to.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Grant {
    pub repository: String,
    pub granted_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An organisation secret's reach.
#[derive(Debug, Clone, Serialize)]
pub struct Grants {
    pub secret: String,
    pub all_repositories: bool,
    pub grants: Vec<Grant>,
}

async fn organization_secret(db: &PgPool, name: &str) -> Result<(i64, String, bool), GrantError> {
    sqlx::query_as(
        "SELECT id, name::text, all_repositories FROM secrets \
         WHERE scope = 'organization' AND name = $1::citext",
    )
    .bind(name)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| GrantError::UnknownSecret(name.to_string()))
}

async fn repository_id(db: &PgPool, name: &str) -> Result<i64, GrantError> {
    sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1::citext")
        .bind(name)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| GrantError::UnknownRepository(name.to_string()))
}

pub async fn list(db: &PgPool, secret: &str) -> Result<Grants, GrantError> {
    let (id, name, all_repositories) = organization_secret(db, secret).await?;
    let grants = sqlx::query_as(
        "SELECT r.name::text AS repository, u.login::text AS granted_by, g.created_at \
         FROM secret_grants g JOIN repositories r ON r.id = g.repository_id \
         LEFT JOIN users u ON u.id = g.granted_by \
         WHERE g.secret_id = $1 ORDER BY r.name",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    Ok(Grants {
        secret: name,
        all_repositories,
        grants,
    })
}

/// Grants the secret to the repository (again: a no-op). Returns the secret's reach.
pub async fn grant(
    db: &PgPool,
    secret: &str,
    repository: &str,
    actor: &AuditActor,
    user_id: Option<i64>,
) -> Result<Grants, GrantError> {
    let (id, name, _) = organization_secret(db, secret).await?;
    let repository_id = repository_id(db, repository).await?;
    let mut tx = db.begin().await?;
    let added = sqlx::query(
        "INSERT INTO secret_grants (secret_id, repository_id, granted_by) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(repository_id)
    .bind(user_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if added > 0 {
        let details = serde_json::json!({"repository": repository});
        audit::record(&mut *tx, actor, "secret.grant", &target(&name), details).await?;
    }
    tx.commit().await?;
    list(db, &name).await
}

/// Takes the grant back; false when there was none.
pub async fn revoke(
    db: &PgPool,
    secret: &str,
    repository: &str,
    actor: &AuditActor,
) -> Result<bool, GrantError> {
    let (id, name, _) = organization_secret(db, secret).await?;
    let repository_id = repository_id(db, repository).await?;
    let mut tx = db.begin().await?;
    let removed =
        sqlx::query("DELETE FROM secret_grants WHERE secret_id = $1 AND repository_id = $2")
            .bind(id)
            .bind(repository_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if removed > 0 {
        let details = serde_json::json!({"repository": repository});
        audit::record(&mut *tx, actor, "secret.revoke", &target(&name), details).await?;
    }
    tx.commit().await?;
    Ok(removed > 0)
}

/// Sets or clears "every repository may use this secret".
pub async fn set_all_repositories(
    db: &PgPool,
    secret: &str,
    all: bool,
    actor: &AuditActor,
) -> Result<Grants, GrantError> {
    let (id, name, before) = organization_secret(db, secret).await?;
    if before != all {
        let mut tx = db.begin().await?;
        sqlx::query("UPDATE secrets SET all_repositories = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(all)
            .execute(&mut *tx)
            .await?;
        let details = serde_json::json!({"all_repositories": all});
        audit::record(&mut *tx, actor, "secret.scope", &target(&name), details).await?;
        tx.commit().await?;
    }
    list(db, &name).await
}

fn target(name: &str) -> String {
    format!("organization:{name}")
}
