//! Users and their personal tokens. The first user ever created is an administrator, so a fresh
//! appliance always has someone who can manage it.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::audit::{self, AuditActor};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub login: String,
    pub admin: bool,
    pub avatar_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("a user named `{0}` already exists")]
    LoginTaken(String),
    #[error("`{0}` is not a valid login: use 1 to 39 letters, digits or hyphens")]
    InvalidLogin(String),
    #[error("no user named `{0}`")]
    NotFound(String),
    // Not transparent: the sqlx error stays in the cause chain, where outages are recognised.
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

/// GitHub's rule for logins, which standalone users follow too so names never clash later.
pub fn valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 39
        && !login.starts_with('-')
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Creates a user; the first user of the installation is always an administrator.
pub async fn create(
    pool: &PgPool,
    login: &str,
    admin: bool,
    actor: &AuditActor,
) -> Result<User, UserError> {
    create_with_password(pool, login, admin, None, actor).await
}

/// Creates a user with a local password (an Argon2id PHC string from `auth::password::hash`)
/// in the same transaction, so a refused password never leaves a user behind.
pub async fn create_with_password(
    pool: &PgPool,
    login: &str,
    admin: bool,
    password_hash: Option<&str>,
    actor: &AuditActor,
) -> Result<User, UserError> {
    if !valid_login(login) {
        return Err(UserError::InvalidLogin(login.to_string()));
    }
    let mut tx = pool.begin().await?;
    let admin = admin_if_first(&mut tx, admin).await?;
    let user: User = sqlx::query_as(
        "INSERT INTO users (login, admin, password_hash) VALUES ($1, $2, $3) \
         ON CONFLICT (login) DO NOTHING RETURNING id, login::text, admin, avatar_url, created_at",
    )
    .bind(login)
    .bind(admin)
    .bind(password_hash)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| UserError::LoginTaken(login.to_string()))?;
    audit::record(
        &mut *tx,
        actor,
        "user.create",
        &format!("user:{}", user.id),
        serde_json::json!({"login": login, "admin": admin, "password": password_hash.is_some()}),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// `admin`, or true when no user exists yet (the first-admin rule), inside the creating
/// transaction. Locks the table so two concurrent "first" users cannot both skip the rule.
pub(super) async fn admin_if_first(
    tx: &mut sqlx::PgConnection,
    admin: bool,
) -> Result<bool, sqlx::Error> {
    sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut *tx)
        .await?;
    Ok(admin || existing == 0)
}

pub async fn find_by_login(pool: &PgPool, login: &str) -> Result<User, UserError> {
    sqlx::query_as(
        "SELECT id, login::text, admin, avatar_url, created_at FROM users WHERE login = $1::citext",
    )
    .bind(login)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| UserError::NotFound(login.to_string()))
}

pub async fn find(pool: &PgPool, id: i64) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as("SELECT id, login::text, admin, avatar_url, created_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Issues a personal access token (`cop_…`) and returns it; only its hash is kept.
pub async fn create_personal_token(
    pool: &PgPool,
    user: &User,
    description: &str,
    actor: &AuditActor,
) -> Result<String, sqlx::Error> {
    super::personal_tokens::issue(pool, user.id, description, None, actor)
        .await
        .map(|(_, token)| token)
}
