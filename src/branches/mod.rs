//! Branches as readers see them: the names of a repository's branches, and one branch with its
//! numbers (active issues and coverage of its head) and its head commit. Branch names are citext,
//! so lookups are case-insensitive; they may contain `/`.

use serde::Serialize;
use sqlx::PgPool;

use crate::commits::{self, CommitView};
use crate::repositories::Repository;

/// A branch as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BranchView {
    pub id: i64,
    pub name: String,
    pub default: bool,
    /// The head commit's total coverage; null until known.
    pub coverage: Option<f64>,
    /// The head commit's active issues; null until checks have run.
    pub issues: Option<i32>,
    /// `gray` without a head commit, else the head's condensed status.
    pub condensed_status: &'static str,
    pub head: Option<CommitView>,
}

/// The branch names, the default branch first and the others in ascending order.
pub async fn names(pool: &PgPool, repository: &Repository) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT name::text FROM branches WHERE repository_id = $1 \
         ORDER BY (name = $2::citext) DESC, name",
    )
    .bind(repository.id)
    .bind(&repository.default_branch)
    .fetch_all(pool)
    .await
}

/// The id of the repository's branch called `name`.
pub async fn find_id(
    pool: &PgPool,
    repository_id: i64,
    name: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM branches WHERE repository_id = $1 AND name = $2::citext")
        .bind(repository_id)
        .bind(name)
        .fetch_optional(pool)
        .await
}

#[derive(sqlx::FromRow)]
struct BranchRow {
    id: i64,
    name: String,
    coverage: Option<f64>,
    issues: Option<i32>,
    head_commit_id: Option<i64>,
}

/// One branch with its head commit.
pub async fn find(
    pool: &PgPool,
    repository: &Repository,
    name: &str,
) -> Result<Option<BranchView>, sqlx::Error> {
    let row: Option<BranchRow> = sqlx::query_as(
        "SELECT id, name::text AS name, coverage, issues, head_commit_id FROM branches \
         WHERE repository_id = $1 AND name = $2::citext",
    )
    .bind(repository.id)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    let Some(BranchRow {
        id,
        name,
        coverage,
        issues,
        head_commit_id: head_id,
    }) = row
    else {
        return Ok(None);
    };
    let head = match head_id {
        Some(commit_id) => commits::view(pool, commit_id).await?,
        None => None,
    };
    Ok(Some(BranchView {
        default: name.eq_ignore_ascii_case(&repository.default_branch),
        id,
        name,
        coverage,
        issues,
        condensed_status: head.as_ref().map_or("gray", |h| h.condensed_status),
        head,
    }))
}
