//! Commits: a push registers the commit and moves its branch; the ingestion job then fetches
//! exactly that commit, stores its tree through `archive` (which names, writes and verifies
//! commit archives), records its metadata, and hands the commit to the follow-up stages the job
//! layer chains on (`jobs`).

pub mod authors;
mod heads;
mod ingest;
mod read;
mod state;

pub use heads::{CommitNumber, HeadBranch, record_commit_number};
pub use ingest::{
    FOLLOW_UP_JOB, FollowUp, FollowUpJob, INGEST_JOB, Ingest, IngestError, IngestJob, Ingested,
};
pub use read::{CommitUser, CommitView, condensed_status, find_by_sha, list_for_branch, view};
pub use state::IngestStatus;

use serde::Serialize;
use sqlx::PgPool;

use crate::app::App;
use crate::queue::JobKind;
use crate::repositories::Repository;

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("`{0}` is not a full commit sha (40 or 64 hexadecimal characters)")]
    InvalidSha(String),
    #[error("`{0}` is not a valid branch name")]
    InvalidBranch(String),
    // Not transparent: the sqlx error stays in the cause chain, where outages are recognised.
    #[error("{0}")]
    Db(#[from] sqlx::Error),
    #[error("could not queue the ingestion: {0}")]
    Queue(#[from] crate::queue::QueueError),
}

/// What registering a push did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Registered {
    pub commit_id: i64,
    pub sha: String,
    /// False when the commit was already known (a repeat, or a push of it to another branch).
    pub new: bool,
    pub branch: Option<String>,
}

/// Records a pushed commit (idempotent), points `branch` at it, and queues its ingestion.
pub async fn register_push(
    app: &App,
    repository: &Repository,
    sha: &str,
    branch: Option<&str>,
) -> Result<Registered, CommitError> {
    if !crate::git::is_full_sha(sha) {
        return Err(CommitError::InvalidSha(sha.to_string()));
    }
    if let Some(b) = branch
        && !crate::repositories::valid_branch_name(b)
    {
        return Err(CommitError::InvalidBranch(b.to_string()));
    }
    let sha = sha.to_ascii_lowercase();
    let mut tx = app.db.begin().await?;
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO commits (repository_id, sha, author_name, author_email, message) \
         VALUES ($1, $2, '', '', '') ON CONFLICT (repository_id, sha) DO NOTHING RETURNING id",
    )
    .bind(repository.id)
    .bind(&sha)
    .fetch_optional(&mut *tx)
    .await?;
    let (commit_id, new) = match inserted {
        Some(id) => (id, true),
        None => (
            sqlx::query_scalar(
                "SELECT id FROM commits WHERE repository_id = $1 AND sha = $2::citext",
            )
            .bind(repository.id)
            .bind(&sha)
            .fetch_one(&mut *tx)
            .await?,
            false,
        ),
    };
    if let Some(branch) = branch {
        let branch_id: i64 = sqlx::query_scalar(
            "INSERT INTO branches (repository_id, name, head_commit_id) VALUES ($1, $2, $3) \
             ON CONFLICT (repository_id, name) DO UPDATE SET head_commit_id = EXCLUDED.head_commit_id \
             RETURNING id",
        )
        .bind(repository.id)
        .bind(branch)
        .bind(commit_id)
        .fetch_one(&mut *tx)
        .await?;
        read::record_push(&mut tx, repository.id, branch_id, commit_id).await?;
    }
    tx.commit().await?;
    if new || !is_ingested(&app.db, commit_id).await? {
        IngestJob { commit_id }.enqueue(&app.queue).await?;
    }
    Ok(Registered {
        commit_id,
        sha,
        new,
        branch: branch.map(str::to_string),
    })
}

/// A branch was deleted on the remote: forget the branch (its history goes with it); the commits
/// stay, other branches may point at them.
pub async fn delete_branch(
    pool: &PgPool,
    repository_id: i64,
    branch: &str,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM branches WHERE repository_id = $1 AND name = $2::citext")
            .bind(repository_id)
            .bind(branch)
            .execute(pool)
            .await?
            .rows_affected()
            > 0,
    )
}

async fn is_ingested(pool: &PgPool, commit_id: i64) -> Result<bool, sqlx::Error> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT ingest_status FROM commits WHERE id = $1")
            .bind(commit_id)
            .fetch_optional(pool)
            .await?;
    Ok(status.as_deref().map(IngestStatus::parse) == Some(IngestStatus::Completed))
}
