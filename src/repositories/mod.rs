//! Repositories: registration (from the GitHub organisation or by git URL), their upload tokens,
//! lookup, and deletion. A repository's blobs live under `<repository id>/` in the blob store, so
//! renaming one orphans nothing.

mod delete;
mod model;
mod visibility;

pub use delete::{DELETE_JOB, DeleteJob, DeleteRepository, delete_repository_data, enqueue_delete};
pub use model::{
    NewRepository, Repository, RepositoryError, Source, valid_branch as valid_branch_name,
};
pub use visibility::{
    RepositorySummary, Viewer, find_visible, list_visible, summary, visible_condition,
};

use sqlx::PgPool;

use crate::audit::{self, AuditActor};
use crate::auth::tokens::{self, TokenKind};

const COLUMNS: &str = "id, name::text AS name, description, default_branch::text AS default_branch, \
                       github_id, git_url, created_at";

/// Registers a repository and returns it with its upload token (`crt_…`, shown once). A git
/// URL must pass `git::check_url` with the configured `allowed_protocols`; nothing is written
/// otherwise.
pub async fn create(
    pool: &PgPool,
    new: &NewRepository,
    allowed_protocols: &[String],
    actor: &AuditActor,
) -> Result<(Repository, String), RepositoryError> {
    new.validate(allowed_protocols)?;
    let token = tokens::generate(TokenKind::RepositoryUpload);
    let (github_id, git_url) = match &new.source {
        Source::GitHub { github_id } => (Some(*github_id), None),
        Source::GitUrl(url) => (None, Some(url.as_str())),
    };
    let mut tx = pool.begin().await?;
    let inserted: Option<Repository> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO repositories (name, description, default_branch, github_id, git_url, upload_token_hash) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
    )))
    .bind(&new.name)
    .bind(&new.description)
    .bind(&new.default_branch)
    .bind(github_id)
    .bind(git_url)
    .bind(tokens::hash(&token))
    .fetch_optional(&mut *tx)
    .await?;
    let repository = inserted.ok_or_else(|| RepositoryError::AlreadyExists(new.name.clone()))?;
    audit::record(
        &mut *tx,
        actor,
        "repository.create",
        &format!("repository:{}", repository.id),
        serde_json::json!({
            "name": repository.name,
            "git_url": git_url.map(crate::git::redact),
            "github_id": github_id,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok((repository, token))
}

pub async fn find_by_name(pool: &PgPool, name: &str) -> Result<Option<Repository>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM repositories WHERE name = $1::citext"
    )))
    .bind(name)
    .fetch_optional(pool)
    .await
}

pub async fn find(pool: &PgPool, id: i64) -> Result<Option<Repository>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM repositories WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub async fn list(pool: &PgPool) -> Result<Vec<Repository>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM repositories ORDER BY name"
    )))
    .fetch_all(pool)
    .await
}

pub async fn find_by_github_id(
    pool: &PgPool,
    github_id: i64,
) -> Result<Option<Repository>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM repositories WHERE github_id = $1"
    )))
    .bind(github_id)
    .fetch_optional(pool)
    .await
}

/// Applies a rename, description or default-branch change made on GitHub. Blobs are keyed by
/// id, so a rename moves nothing.
pub async fn update_from_github(
    pool: &PgPool,
    id: i64,
    name: &str,
    default_branch: &str,
    description: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE repositories SET name = $2, default_branch = $3, description = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(default_branch)
    .bind(description)
    .execute(pool)
    .await?;
    Ok(())
}

/// The repository an upload token belongs to.
pub async fn find_by_upload_token(
    pool: &PgPool,
    token: &str,
) -> Result<Option<Repository>, sqlx::Error> {
    if !tokens::well_formed(token, TokenKind::RepositoryUpload) {
        return Ok(None);
    }
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM repositories WHERE upload_token_hash = $1"
    )))
    .bind(tokens::hash(token))
    .fetch_optional(pool)
    .await
}

/// Replaces the upload token; the old one stops working at once.
pub async fn regenerate_token(
    pool: &PgPool,
    repository: &Repository,
    actor: &AuditActor,
) -> Result<String, sqlx::Error> {
    let token = tokens::generate(TokenKind::RepositoryUpload);
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE repositories SET upload_token_hash = $2 WHERE id = $1")
        .bind(repository.id)
        .bind(tokens::hash(&token))
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        actor,
        "repository.regenerate_token",
        &format!("repository:{}", repository.id),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}
