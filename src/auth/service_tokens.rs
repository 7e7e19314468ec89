//! Service tokens (`cos_…`): credentials for workers and integrations, managed by admins.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::tokens::{self, TokenKind};
use crate::audit::{self, AuditActor};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ServiceToken {
    pub id: i64,
    pub description: String,
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceTokenError {
    #[error("a description is required")]
    MissingDescription,
    // Not transparent: the sqlx error stays in the cause chain, where outages are recognised.
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

const SELECT: &str = "SELECT t.id, t.description, u.login::text AS created_by, t.created_at, t.last_used_at \
                      FROM service_tokens t LEFT JOIN users u ON u.id = t.created_by";

/// Creates a token and returns its record with the token string (shown once).
pub async fn create(
    pool: &PgPool,
    description: &str,
    created_by: Option<i64>,
    actor: &AuditActor,
) -> Result<(ServiceToken, String), ServiceTokenError> {
    let description = description.trim();
    if description.is_empty() {
        return Err(ServiceTokenError::MissingDescription);
    }
    let token = tokens::generate(TokenKind::Service);
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO service_tokens (description, token_hash, created_by) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(description)
    .bind(tokens::hash(&token))
    .bind(created_by)
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        actor,
        "service_token.create",
        &format!("service_token:{id}"),
        serde_json::json!({"description": description}),
    )
    .await?;
    let record = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE t.id = $1")))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((record, token))
}

pub async fn list(pool: &PgPool) -> Result<Vec<ServiceToken>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY t.id")))
        .fetch_all(pool)
        .await
}

/// Deletes a token at once; returns whether it existed.
pub async fn revoke(pool: &PgPool, id: i64, actor: &AuditActor) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let deleted = sqlx::query("DELETE FROM service_tokens WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    if deleted {
        audit::record(
            &mut *tx,
            actor,
            "service_token.revoke",
            &format!("service_token:{id}"),
            serde_json::json!({}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(deleted)
}
