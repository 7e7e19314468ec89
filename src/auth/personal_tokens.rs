//! A user's own tokens (`GET/POST/DELETE /v1/me/tokens`): named personal tokens with an
//! optional expiry, shown once, and the user's sessions, listed so they can be revoked.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::tokens::{self, TokenKind};
use crate::audit::{self, AuditActor};

/// Longest lifetime a personal token may be given.
pub const MAX_EXPIRY_DAYS: i64 = 3650;
pub const MAX_NAME_CHARS: usize = 200;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: i64,
    /// `personal` or `session`.
    pub kind: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum PersonalTokenError {
    #[error("a name of 1 to {MAX_NAME_CHARS} characters is required")]
    InvalidName,
    #[error("expires_in_days must be between 1 and {MAX_EXPIRY_DAYS}")]
    InvalidExpiry,
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

/// The user's live tokens, newest first.
pub async fn list(pool: &PgPool, user_id: i64) -> Result<Vec<TokenInfo>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, CASE kind WHEN 'auth' THEN 'session' ELSE kind END AS kind, \
         description AS name, created_at, expires_at, last_used_at FROM user_tokens \
         WHERE user_id = $1 AND (expires_at IS NULL OR expires_at > now()) ORDER BY id DESC",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// Issues a named personal token; returns its id and the token (shown this once).
pub async fn create(
    pool: &PgPool,
    user_id: i64,
    name: &str,
    expires_in_days: Option<i64>,
    actor: &AuditActor,
) -> Result<(i64, String), PersonalTokenError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(PersonalTokenError::InvalidName);
    }
    if expires_in_days.is_some_and(|d| !(1..=MAX_EXPIRY_DAYS).contains(&d)) {
        return Err(PersonalTokenError::InvalidExpiry);
    }
    Ok(issue(pool, user_id, name, expires_in_days, actor).await?)
}

/// Inserts a personal token without checking its name or expiry (callers do).
pub(super) async fn issue(
    pool: &PgPool,
    user_id: i64,
    name: &str,
    expires_in_days: Option<i64>,
    actor: &AuditActor,
) -> Result<(i64, String), sqlx::Error> {
    let token = tokens::generate(TokenKind::Personal);
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO user_tokens (user_id, kind, description, token_hash, expires_at) \
         VALUES ($1, 'personal', $2, $3, now() + $4 * interval '1 day') RETURNING id",
    )
    .bind(user_id)
    .bind(name)
    .bind(tokens::hash(&token))
    .bind(expires_in_days)
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        actor,
        "user_token.create",
        &format!("user:{user_id}"),
        serde_json::json!({"token_id": id, "kind": "personal", "name": name}),
    )
    .await?;
    tx.commit().await?;
    Ok((id, token))
}

/// Revokes one of the user's tokens (personal or session); false when it is not theirs.
pub async fn revoke(
    pool: &PgPool,
    user_id: i64,
    token_id: i64,
    actor: &AuditActor,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let revoked = sqlx::query("DELETE FROM user_tokens WHERE id = $1 AND user_id = $2")
        .bind(token_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    if revoked {
        audit::record(
            &mut *tx,
            actor,
            "user_token.revoke",
            &format!("user:{user_id}"),
            serde_json::json!({"token_id": token_id}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(revoked)
}
