//! Administering users: list with roles, promote/demote, delete. An installation always keeps
//! at least one administrator, so nobody can lock everyone out through the API.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::audit::{self, AuditActor};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct UserSummary {
    pub id: i64,
    pub login: String,
    pub admin: bool,
    pub github_id: Option<i64>,
    /// Whether the user can sign in with a local password.
    pub local_password: bool,
    pub active_sessions: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum UserAdminError {
    #[error("no such user")]
    NotFound,
    #[error("this is the last administrator; promote someone else first")]
    LastAdmin,
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

const SELECT: &str = "SELECT u.id, u.login::text AS login, u.admin, u.github_id, \
     u.password_hash IS NOT NULL AS local_password, \
     (SELECT count(*) FROM user_tokens t WHERE t.user_id = u.id AND t.kind = 'auth' \
        AND (t.expires_at IS NULL OR t.expires_at > now())) AS active_sessions, \
     u.created_at FROM users u";

pub async fn list(pool: &PgPool) -> Result<Vec<UserSummary>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY u.login")))
        .fetch_all(pool)
        .await
}

pub async fn get(pool: &PgPool, id: i64) -> Result<Option<UserSummary>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE u.id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Refuses when removing `id`'s admin rights (or the user) would leave no administrator.
/// Runs under a lock on `users` so two concurrent demotions cannot both pass.
async fn keep_an_admin(tx: &mut sqlx::PgConnection, id: i64) -> Result<(), UserAdminError> {
    sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let is_admin: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND admin)")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if !is_admin {
        return Ok(());
    }
    let others: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE admin AND id <> $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    if others == 0 {
        return Err(UserAdminError::LastAdmin);
    }
    Ok(())
}

/// Promotes or demotes a user.
pub async fn set_admin(
    pool: &PgPool,
    id: i64,
    admin: bool,
    actor: &AuditActor,
) -> Result<UserSummary, UserAdminError> {
    let mut tx = pool.begin().await?;
    if !admin {
        keep_an_admin(&mut tx, id).await?;
    }
    let updated = sqlx::query("UPDATE users SET admin = $2 WHERE id = $1")
        .bind(id)
        .bind(admin)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if updated == 0 {
        return Err(UserAdminError::NotFound);
    }
    audit::record(
        &mut *tx,
        actor,
        if admin { "user.promote" } else { "user.demote" },
        &format!("user:{id}"),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    get(pool, id).await?.ok_or(UserAdminError::NotFound)
}

/// Deletes a user: their tokens, sessions and memberships go with them; what they authored
/// stays (see the schema's ON DELETE rules).
pub async fn delete(pool: &PgPool, id: i64, actor: &AuditActor) -> Result<(), UserAdminError> {
    let mut tx = pool.begin().await?;
    keep_an_admin(&mut tx, id).await?;
    let login: Option<String> =
        sqlx::query_scalar("DELETE FROM users WHERE id = $1 RETURNING login::text")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let login = login.ok_or(UserAdminError::NotFound)?;
    audit::record(
        &mut *tx,
        actor,
        "user.delete",
        &format!("user:{id}"),
        serde_json::json!({"login": login}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
