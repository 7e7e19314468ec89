//! Users who sign in with GitHub: found by their GitHub id (so a login renamed at GitHub is
//! followed, never mistaken for a new person), their verified e-mails (which link their
//! commits) and their sealed GitHub token, all written in one transaction.

use sqlx::PgPool;

use super::users::{User, UserError, admin_if_first};
use crate::audit::{self, AuditActor};

/// Who GitHub says signed in.
#[derive(Debug, Clone, Copy)]
pub struct GithubIdentity<'a> {
    pub github_id: i64,
    pub login: &'a str,
    pub avatar_url: Option<&'a str>,
}

/// The user's GitHub token, sealed by the caller (with the secrets' key: this module holds no
/// key and never sees the token in clear).
#[derive(Debug, Clone)]
pub struct SealedToken {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub key_id: String,
}

/// The AES-GCM context a user's GitHub token is sealed with, so a sealed value copied onto
/// another user's row does not open there.
pub fn token_context(github_id: i64) -> Vec<u8> {
    format!("cocov-github-token:{github_id}").into_bytes()
}

/// Creates or updates the user with this GitHub id: login (a rename follows), avatar and token;
/// replaces their e-mails with `verified_emails` (an address another user already holds is
/// skipped: it stays theirs). A login held by a different account is refused
/// ([`UserError::LoginTaken`]), never merged. The first user ever is an administrator, as for
/// every way of creating users.
pub async fn upsert(
    pool: &PgPool,
    identity: GithubIdentity<'_>,
    token: &SealedToken,
    verified_emails: &[String],
) -> Result<User, UserError> {
    let login = identity.login;
    let mut tx = pool.begin().await?;
    let existing: Option<(i64, String)> =
        sqlx::query_as("SELECT id, login::text FROM users WHERE github_id = $1 FOR UPDATE")
            .bind(identity.github_id)
            .fetch_optional(&mut *tx)
            .await?;
    let taken = |e: sqlx::Error| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            UserError::LoginTaken(login.to_string())
        }
        _ => UserError::Db(e),
    };
    let user: User = match &existing {
        Some((id, _)) => sqlx::query_as(
            "UPDATE users SET login = $2, avatar_url = $3, github_token_encrypted = $4, \
             github_token_nonce = $5, github_token_key_id = $6, updated_at = now() \
             WHERE id = $1 RETURNING id, login::text, admin, avatar_url, created_at",
        )
        .bind(id)
        .bind(login)
        .bind(identity.avatar_url)
        .bind(&token.ciphertext)
        .bind(&token.nonce)
        .bind(&token.key_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(taken)?,
        None => {
            let admin = admin_if_first(&mut tx, false).await?;
            sqlx::query_as(
                "INSERT INTO users (login, github_id, admin, avatar_url, github_token_encrypted, \
                 github_token_nonce, github_token_key_id) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (login) DO NOTHING RETURNING id, login::text, admin, avatar_url, created_at",
            )
            .bind(login)
            .bind(identity.github_id)
            .bind(admin)
            .bind(identity.avatar_url)
            .bind(&token.ciphertext)
            .bind(&token.nonce)
            .bind(&token.key_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| UserError::LoginTaken(login.to_string()))?
        }
    };
    let actor = AuditActor::user(user.id, &user.login);
    let target = format!("user:{}", user.id);
    match &existing {
        None => {
            let details = serde_json::json!({"login": login, "admin": user.admin, "github_id": identity.github_id});
            audit::record(&mut *tx, &actor, "user.create", &target, details).await?;
        }
        Some((_, old)) if old != login => {
            let details = serde_json::json!({"from": old, "to": login});
            audit::record(&mut *tx, &actor, "user.rename", &target, details).await?;
        }
        Some(_) => {}
    }
    sqlx::query("DELETE FROM user_emails WHERE user_id = $1")
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO user_emails (user_id, email) SELECT $1, e FROM unnest($2::text[]) AS e \
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(user.id)
    .bind(verified_emails)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(user)
}

#[derive(sqlx::FromRow)]
struct SealedRow {
    id: i64,
    github_id: i64,
    ciphertext: Vec<u8>,
    nonce: Vec<u8>,
    key_id: String,
}

/// Re-seals every stored GitHub token not yet sealed with `new_key_id` (a key rotation), in one
/// transaction: `reseal` gets the GitHub id (the sealing context) and the sealed token, and
/// returns it sealed with the new key. Returns how many were re-sealed; running it again after
/// an interruption finishes the job.
pub async fn reseal_tokens<F>(pool: &PgPool, new_key_id: &str, reseal: F) -> anyhow::Result<u64>
where
    F: Fn(i64, &SealedToken) -> anyhow::Result<SealedToken>,
{
    let mut tx = pool.begin().await?;
    let rows: Vec<SealedRow> = sqlx::query_as(
        "SELECT id, github_id, github_token_encrypted AS ciphertext, github_token_nonce AS nonce, \
         github_token_key_id AS key_id FROM users WHERE github_token_encrypted IS NOT NULL \
         AND github_id IS NOT NULL AND github_token_key_id <> $1 FOR UPDATE",
    )
    .bind(new_key_id)
    .fetch_all(&mut *tx)
    .await?;
    for row in rows.iter() {
        let sealed = SealedToken {
            ciphertext: row.ciphertext.clone(),
            nonce: row.nonce.clone(),
            key_id: row.key_id.clone(),
        };
        let resealed = reseal(row.github_id, &sealed)?;
        sqlx::query(
            "UPDATE users SET github_token_encrypted = $2, github_token_nonce = $3, \
             github_token_key_id = $4 WHERE id = $1",
        )
        .bind(row.id)
        .bind(&resealed.ciphertext)
        .bind(&resealed.nonce)
        .bind(&resealed.key_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(rows.len() as u64)
}
