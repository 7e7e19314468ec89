//! Sessions: `coa_` tokens made at sign-in, stored (hashed) in `user_tokens` with kind `auth`. A
//! session ends at its absolute expiry (`expires_at`), when unused for its idle timeout, at
//! sign-out, or when an administrator signs the user out everywhere.

use std::time::Duration;

use sqlx::PgPool;

use super::tokens::{self, TokenKind};
use crate::audit::{self, AuditActor};

/// How long sessions last, from `[accounts]`.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub absolute: Duration,
}

impl SessionPolicy {
    pub fn from_config(config: &crate::config::AccountsConfig) -> SessionPolicy {
        SessionPolicy {
            idle: Duration::from_secs(config.session_idle_minutes * 60),
            absolute: Duration::from_secs(config.session_absolute_hours * 3600),
        }
    }
}

/// Starts a session for `user_id`; returns the token (the only time it exists in clear).
/// `how` says how the user signed in (`local`, `link`, `github`, …), for the audit log.
pub async fn start(
    pool: &PgPool,
    user_id: i64,
    login: &str,
    policy: SessionPolicy,
    how: &str,
) -> Result<String, sqlx::Error> {
    let token = tokens::generate(TokenKind::Login);
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO user_tokens (user_id, kind, description, token_hash, expires_at, idle_timeout_seconds) \
         VALUES ($1, 'auth', $2, $3, now() + $4 * interval '1 second', $5) RETURNING id",
    )
    .bind(user_id)
    .bind(format!("session ({how} sign-in)"))
    .bind(tokens::hash(&token))
    .bind(policy.absolute.as_secs() as f64)
    .bind(i32::try_from(policy.idle.as_secs()).unwrap_or(i32::MAX))
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        &AuditActor::user(user_id, login),
        "session.start",
        &format!("user:{user_id}"),
        serde_json::json!({"method": how, "token_id": id}),
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// Ends the session whose token this is; returns whether there was one.
pub async fn end(pool: &PgPool, token: &str) -> Result<bool, sqlx::Error> {
    let ended = sqlx::query("DELETE FROM user_tokens WHERE token_hash = $1 AND kind = 'auth'")
        .bind(tokens::hash(token))
        .execute(pool)
        .await?
        .rows_affected();
    Ok(ended > 0)
}

/// Revokes every session and personal token of a user ("sign out everywhere"); returns how many.
pub async fn revoke_all(
    pool: &PgPool,
    user_id: i64,
    actor: &AuditActor,
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let revoked = sqlx::query("DELETE FROM user_tokens WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    audit::record(
        &mut *tx,
        actor,
        "user.logout_everywhere",
        &format!("user:{user_id}"),
        serde_json::json!({"tokens_revoked": revoked}),
    )
    .await?;
    tx.commit().await?;
    Ok(revoked)
}
