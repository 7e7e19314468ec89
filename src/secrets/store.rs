//! The `secrets` table: write, list (names only), delete, resolve for a check, re-key.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::grants::VISIBLE_TO_REPOSITORY;
use super::{Cipher, KeyError};
use crate::audit::{self, AuditActor};

/// Organisation secrets apply to the repositories they are granted to (see [`super::grants`]);
/// a repository secret with the same name overrides the organisation's for that repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Organization,
    Repository(i64),
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Organization => "organization",
            Scope::Repository(_) => "repository",
        }
    }

    fn repository_id(self) -> Option<i64> {
        match self {
            Scope::Organization => None,
            Scope::Repository(id) => Some(id),
        }
    }
}

/// Authenticated with each value, so a sealed value only opens on its own row's identity.
fn context(scope: &str, repository_id: Option<i64>, name: &str) -> Vec<u8> {
    format!(
        "cocov-secret:{scope}:{}:{}",
        repository_id.unwrap_or(0),
        name.to_ascii_lowercase()
    )
    .into_bytes()
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "invalid secret name `{0}`: use letters, digits and underscores, not starting with a digit"
    )]
    InvalidName(String),
    #[error("a secret's value must not be empty")]
    EmptyValue,
    #[error("a secret's value is limited to 64 KiB")]
    TooLarge,
    #[error("unknown secret `{0}`")]
    Unknown(String),
    #[error("secret `{name}`: {source}")]
    Key { name: String, source: KeyError },
    // Not transparent: the sqlx error stays in the cause chain, where outages are recognised.
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

pub const MAX_VALUE_BYTES: usize = 64 * 1024;

pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

fn check_value(value: &[u8]) -> Result<(), SecretError> {
    if value.is_empty() {
        return Err(SecretError::EmptyValue);
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(SecretError::TooLarge);
    }
    Ok(())
}

/// What the API shows of a secret: never its value.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SecretInfo {
    pub id: i64,
    pub name: String,
    pub scope: String,
    pub created_by: Option<String>,
    /// Organisation secrets: usable by every repository, not only those granted.
    pub all_repositories: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Creates the secret or replaces its value.
pub async fn put(
    db: &PgPool,
    cipher: &Cipher,
    scope: Scope,
    name: &str,
    value: &[u8],
    user_id: Option<i64>,
) -> Result<SecretInfo, SecretError> {
    if !valid_name(name) {
        return Err(SecretError::InvalidName(name.to_string()));
    }
    check_value(value)?;
    let (ciphertext, nonce) =
        cipher.seal(value, &context(scope.name(), scope.repository_id(), name));
    let conflict = match scope {
        Scope::Organization => "(name) WHERE scope = 'organization'",
        Scope::Repository(_) => "(repository_id, name) WHERE scope = 'repository'",
    };
    let id: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "INSERT INTO secrets (scope, name, repository_id, ciphertext, nonce, key_id, created_by) \
         VALUES ($1, $2::citext, $3, $4, $5, $6, $7) \
         ON CONFLICT {conflict} DO UPDATE SET ciphertext = EXCLUDED.ciphertext, \
             nonce = EXCLUDED.nonce, key_id = EXCLUDED.key_id, updated_at = now() \
         RETURNING id"
    )))
    .bind(scope.name())
    .bind(name)
    .bind(scope.repository_id())
    .bind(&ciphertext)
    .bind(nonce.as_slice())
    .bind(cipher.key_id())
    .bind(user_id)
    .fetch_one(db)
    .await?;
    Ok(info(db, id).await?.expect("the row just written"))
}

async fn info(db: &PgPool, id: i64) -> Result<Option<SecretInfo>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.id, s.name::text AS name, s.scope, u.login::text AS created_by, \
         s.all_repositories, s.last_used_at, s.created_at, s.updated_at \
         FROM secrets s LEFT JOIN users u ON u.id = s.created_by WHERE s.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn list(db: &PgPool, scope: Scope) -> Result<Vec<SecretInfo>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.id, s.name::text AS name, s.scope, u.login::text AS created_by, \
         s.all_repositories, s.last_used_at, s.created_at, s.updated_at \
         FROM secrets s LEFT JOIN users u ON u.id = s.created_by \
         WHERE s.scope = $1 AND s.repository_id IS NOT DISTINCT FROM $2 ORDER BY s.name",
    )
    .bind(scope.name())
    .bind(scope.repository_id())
    .fetch_all(db)
    .await
}

/// Replaces the value of an existing secret; `None` when there is none by that name (unlike
/// [`put`], never creates one).
pub async fn update_value(
    db: &PgPool,
    cipher: &Cipher,
    scope: Scope,
    name: &str,
    value: &[u8],
) -> Result<Option<SecretInfo>, SecretError> {
    check_value(value)?;
    let (ciphertext, nonce) =
        cipher.seal(value, &context(scope.name(), scope.repository_id(), name));
    let id: Option<i64> = sqlx::query_scalar(
        "UPDATE secrets SET ciphertext = $4, nonce = $5, key_id = $6, updated_at = now() \
         WHERE scope = $1 AND repository_id IS NOT DISTINCT FROM $2 AND name = $3::citext \
         RETURNING id",
    )
    .bind(scope.name())
    .bind(scope.repository_id())
    .bind(name)
    .bind(&ciphertext)
    .bind(nonce.as_slice())
    .bind(cipher.key_id())
    .fetch_optional(db)
    .await?;
    match id {
        Some(id) => Ok(info(db, id).await?),
        None => Ok(None),
    }
}

/// What creating a secret called `name` in `scope` would do (the original's `check_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameStatus {
    /// Free.
    Ok,
    /// The scope already has a secret by that name.
    Conflict,
    /// A repository secret by that name would override the organisation's for the repository.
    Override,
}

pub async fn name_status(db: &PgPool, scope: Scope, name: &str) -> Result<NameStatus, SecretError> {
    if !valid_name(name) {
        return Err(SecretError::InvalidName(name.to_string()));
    }
    let (own, organization): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM secrets WHERE scope = $1 \
                        AND repository_id IS NOT DISTINCT FROM $2 AND name = $3::citext), \
                EXISTS (SELECT 1 FROM secrets WHERE scope = 'organization' AND name = $3::citext)",
    )
    .bind(scope.name())
    .bind(scope.repository_id())
    .bind(name)
    .fetch_one(db)
    .await?;
    Ok(if own {
        NameStatus::Conflict
    } else if organization {
        NameStatus::Override
    } else {
        NameStatus::Ok
    })
}

pub async fn delete(db: &PgPool, scope: Scope, name: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "DELETE FROM secrets WHERE scope = $1 AND repository_id IS NOT DISTINCT FROM $2 \
         AND name = $3::citext",
    )
    .bind(scope.name())
    .bind(scope.repository_id())
    .bind(name)
    .execute(db)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Records who wrote (`secret.write`) or deleted (`secret.delete`) which secret; never its
/// value. Best effort: the change itself is already committed.
pub async fn audit(db: &PgPool, actor: &AuditActor, action: &str, scope: Scope, name: &str) {
    let target = format!("{}:{name}", scope.name());
    if let Err(e) = audit::record(db, actor, action, &target, serde_json::json!({})).await {
        tracing::warn!(error = %e, %target, "could not record a secret change in the audit log");
    }
}

#[derive(sqlx::FromRow)]
struct SealedRow {
    id: i64,
    scope: String,
    name: String,
    repository_id: Option<i64>,
    ciphertext: Vec<u8>,
    nonce: Vec<u8>,
    key_id: String,
}

impl SealedRow {
    fn open(&self, cipher: &Cipher) -> Result<Vec<u8>, SecretError> {
        cipher
            .open(
                &self.ciphertext,
                &self.nonce,
                &self.key_id,
                &context(&self.scope, self.repository_id, &self.name),
            )
            .map_err(|source| SecretError::Key {
                name: self.name.clone(),
                source,
            })
    }
}

/// The plaintext of each named secret as the repository sees it (its own first, then the
/// organisation's), marking each as used. Any unknown name fails the whole lookup.
pub async fn resolve_for_repository(
    db: &PgPool,
    cipher: &Cipher,
    repository_id: i64,
    names: &[String],
) -> Result<BTreeMap<String, Vec<u8>>, SecretError> {
    let mut values = BTreeMap::new();
    for name in names {
        let row: Option<SealedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, scope, name::text AS name, repository_id, ciphertext, nonce, key_id \
             FROM secrets s WHERE name = $1::citext AND {VISIBLE_TO_REPOSITORY} \
             ORDER BY (scope = 'repository') DESC LIMIT 1"
        )))
        .bind(name)
        .bind(repository_id)
        .fetch_optional(db)
        .await?;
        let row = row.ok_or_else(|| SecretError::Unknown(name.clone()))?;
        values.insert(name.clone(), row.open(cipher)?);
        sqlx::query("UPDATE secrets SET last_used_at = now() WHERE id = $1")
            .bind(row.id)
            .execute(db)
            .await?;
    }
    Ok(values)
}

/// The first name the repository cannot use (neither its own nor an organisation secret
/// granted to it).
pub async fn missing_for_repository(
    db: &PgPool,
    repository_id: i64,
    names: &[String],
) -> Result<Option<String>, sqlx::Error> {
    for name in names {
        let exists: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM secrets s WHERE name = $1::citext \
             AND {VISIBLE_TO_REPOSITORY})"
        )))
        .bind(name)
        .bind(repository_id)
        .fetch_one(db)
        .await?;
        if !exists {
            return Ok(Some(name.clone()));
        }
    }
    Ok(None)
}

/// Re-seals every value under `new`, in one transaction: either all values move to the new key
/// or none does. Values already under `new` are left alone, so an interrupted rotation can be
/// run again. Returns how many values were re-sealed.
pub async fn rotate_key(db: &PgPool, old: &Cipher, new: &Cipher) -> Result<u64, SecretError> {
    let mut tx = db.begin().await?;
    let rows: Vec<SealedRow> = sqlx::query_as(
        "SELECT id, scope, name::text AS name, repository_id, ciphertext, nonce, key_id \
         FROM secrets WHERE key_id <> $1 FOR UPDATE",
    )
    .bind(new.key_id())
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let plaintext = row.open(old)?;
        let (ciphertext, nonce) = new.seal(
            &plaintext,
            &context(&row.scope, row.repository_id, &row.name),
        );
        sqlx::query(
            "UPDATE secrets SET ciphertext = $2, nonce = $3, key_id = $4, updated_at = now() \
             WHERE id = $1",
        )
        .bind(row.id)
        .bind(&ciphertext)
        .bind(nonce.as_slice())
        .bind(new.key_id())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(rows.len() as u64)
}
