//! Local accounts: a login and an Argon2id password, checked here. Every refusal reads the same
//! ("invalid login or password") whether the login is unknown, has no password or the password
//! is wrong, and an unknown login costs the same hashing work as a known one.

use std::net::IpAddr;

use sqlx::PgPool;

use super::login_limit::{Attempt, LoginLimits};
use super::password::{self, PasswordError};
use crate::audit::{self, AuditActor};
use crate::kv::Kv;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("Invalid login or password")]
    InvalidCredentials,
    #[error("Too many failed sign-ins; try again in {0} seconds")]
    RateLimited(u64),
    #[error("{0}")]
    Db(#[from] sqlx::Error),
    #[error("Redis: {0}")]
    Kv(#[from] redis::RedisError),
}

/// Who signed in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user_id: i64,
    pub login: String,
    pub admin: bool,
}

/// Checks a login and password, charging failures to the account and the address.
pub async fn sign_in(
    pool: &PgPool,
    kv: &Kv,
    limits: LoginLimits,
    login: &str,
    password: &str,
    address: IpAddr,
) -> Result<SignedIn, SignInError> {
    let attempt = Attempt::new(kv, login, address);
    if let Some(wait) = attempt.blocked(kv, limits).await? {
        return Err(SignInError::RateLimited(wait));
    }
    let row: Option<(i64, String, bool, Option<String>)> = if super::users::valid_login(login) {
        sqlx::query_as(
            "SELECT id, login::text, admin, password_hash FROM users WHERE login = $1::citext",
        )
        .bind(login)
        .fetch_optional(pool)
        .await?
    } else {
        None
    };
    let stored = row.as_ref().and_then(|r| r.3.clone());
    if !password::verify(password, stored).await {
        attempt.failed(kv, limits).await?;
        return Err(SignInError::InvalidCredentials);
    }
    let (user_id, login, admin, _) = row.ok_or(SignInError::InvalidCredentials)?;
    attempt.succeeded(kv).await?;
    Ok(SignedIn {
        user_id,
        login,
        admin,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SetPasswordError {
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

/// Sets (or replaces) a user's password.
pub async fn set_password(
    pool: &PgPool,
    user_id: i64,
    new_password: &str,
    actor: &AuditActor,
) -> Result<(), SetPasswordError> {
    let phc = password::hash(new_password).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(user_id)
        .bind(phc)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        actor,
        "user.set_password",
        &format!("user:{user_id}"),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    #[error("The current password is required")]
    CurrentRequired,
    #[error(transparent)]
    SignIn(#[from] SignInError),
    #[error(transparent)]
    Set(#[from] SetPasswordError),
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

/// A signed-in user sets their own password. Replacing an existing one needs it, checked like
/// a sign-in (so the same limits apply to guessing it); a user without one (signed in by a
/// one-time link) sets one.
#[allow(clippy::too_many_arguments)]
pub async fn change_password(
    pool: &PgPool,
    kv: &Kv,
    limits: LoginLimits,
    user_id: i64,
    current: Option<&str>,
    new_password: &str,
    address: IpAddr,
    actor: &AuditActor,
) -> Result<(), ChangePasswordError> {
    let (login, has_password): (String, bool) =
        sqlx::query_as("SELECT login::text, password_hash IS NOT NULL FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(pool)
            .await?;
    if has_password {
        let current = current
            .filter(|c| !c.is_empty())
            .ok_or(ChangePasswordError::CurrentRequired)?;
        sign_in(pool, kv, limits, &login, current, address).await?;
    }
    set_password(pool, user_id, new_password, actor).await?;
    Ok(())
}
