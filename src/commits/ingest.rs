//! The ingestion job: fetch one commit, archive its tree into the blob store, record its
//! metadata, then hand the commit and its manifest to the follow-up the job layer chained on
//! (`jobs`: statuses, checks, early coverage; this module does not know them). Idempotent (a
//! completed commit is left alone; blobs are overwritten atomically), and it always ends the
//! commit in `completed` or `errored` with a reason.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::IngestStatus;
use crate::app::App;
use crate::git::{GitError, Policy, Scratch, TreeFile, redact};
use crate::queue::{JobContext, JobError, JobHandler, JobKind};
use crate::repositories::{self, Repository};

pub const INGEST_JOB: &str = "commit.ingest";

/// The `commit.ingest` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestJob {
    pub commit_id: i64,
}

impl JobKind for IngestJob {
    const KIND: &'static str = INGEST_JOB;

    /// Once for a burst of repeats (the same push announced twice).
    fn dedup(&self) -> Option<(String, Duration)> {
        Some((
            format!("ingest:{}", self.commit_id),
            Duration::from_secs(30),
        ))
    }
}

/// What ingestion hands on: the commit, and its manifest as read once from git's objects (a
/// link is reported, never followed, and the size is capped).
#[derive(Debug, Clone)]
pub struct Ingested {
    pub commit_id: i64,
    pub manifest: TreeFile,
}

/// The stages that follow an ingestion, chained by the job layer. An error makes the ingestion
/// try again, as any transient failure does.
#[async_trait::async_trait]
pub trait FollowUp: Send + Sync {
    async fn run(&self, app: &App, ingested: &Ingested) -> Result<(), anyhow::Error>;
}

/// Why an ingestion failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Git(#[from] GitError),
    #[error("repository `{0}` has no git URL and GitHub mode is not configured")]
    NoRemote(String),
    #[error("storing the archive: {0}")]
    Store(#[from] crate::storage::StorageError),
    #[error("recording the commit: {0}")]
    Record(#[from] sqlx::Error),
    #[error("{0:#}")]
    FollowUp(anyhow::Error),
}

impl IngestError {
    /// Whether trying again later can help: a git failure says so itself; the store, the
    /// database and the follow-up stages are worth another try.
    pub fn is_transient(&self) -> bool {
        match self {
            IngestError::Git(e) => e.is_transient(),
            // Without a remote, GitHub mode may yet be configured (and the daemon restarted)
            // within the retries.
            IngestError::NoRemote(_)
            | IngestError::Store(_)
            | IngestError::Record(_)
            | IngestError::FollowUp(_) => true,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CommitRow {
    repository_id: i64,
    sha: String,
    ingest_status: String,
}

pub struct Ingest {
    pub app: App,
    pub follow_up: Arc<dyn FollowUp>,
}

#[async_trait::async_trait]
impl JobHandler for Ingest {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        let app = &self.app;
        let IngestJob { commit_id } = job.job()?;
        let row: Option<CommitRow> = sqlx::query_as(
            "SELECT repository_id, sha::text AS sha, ingest_status FROM commits WHERE id = $1",
        )
        .bind(commit_id)
        .fetch_optional(&app.db)
        .await
        .map_err(JobError::retry)?;
        // The repository (and its commits) may have been deleted since: nothing left to do.
        let Some(row) = row else { return Ok(()) };
        if IngestStatus::parse(&row.ingest_status) == IngestStatus::Completed {
            return Ok(());
        }
        let Some(repository) = repositories::find(&app.db, row.repository_id)
            .await
            .map_err(JobError::retry)?
        else {
            return Ok(());
        };
        set_status(app, commit_id, IngestStatus::InProgress, None).await?;
        let outcome = match ingest(app, &repository, commit_id, &row.sha).await {
            Ok(ingested) => self
                .follow_up
                .run(app, &ingested)
                .await
                .map_err(IngestError::FollowUp),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => Ok(()),
            // Errors quote git, and git quotes the URL: redacted before it is stored or logged.
            Err(e) if e.is_transient() && !job.is_last_attempt() => {
                let reason = redact(&e.to_string());
                set_status(app, commit_id, IngestStatus::Queued, Some(&reason)).await?;
                Err(JobError::Retry(reason))
            }
            Err(e) => {
                // Final: say why on the commit, and acknowledge the job.
                let reason = redact(&if e.is_transient() {
                    format!("gave up after {} attempts: {e}", job.attempt)
                } else {
                    e.to_string()
                });
                tracing::warn!(commit_id, sha = %row.sha, %reason, "commit ingestion failed");
                set_status(app, commit_id, IngestStatus::Errored, Some(&reason)).await?;
                Ok(())
            }
        }
    }
}

async fn set_status(
    app: &App,
    commit_id: i64,
    status: IngestStatus,
    error: Option<&str>,
) -> Result<(), JobError> {
    sqlx::query("UPDATE commits SET ingest_status = $2, ingest_error = $3 WHERE id = $1")
        .bind(commit_id)
        .bind(status.as_str())
        .bind(error)
        .execute(&app.db)
        .await
        .map_err(JobError::retry)?;
    Ok(())
}

/// Where to fetch from.
struct Remote {
    url: String,
    /// git configuration entries carrying credentials.
    auth: Vec<(String, String)>,
    policy: Policy,
}

/// Where to fetch from, with which credentials, under which policy. A stored URL is not trusted
/// to have passed today's checks (rows may predate them): the policy makes git refuse any
/// transport that is not allowed, whatever the URL says.
async fn remote(app: &App, repository: &Repository) -> Result<Remote, IngestError> {
    let policy = Policy::from_config(&app.config.git);
    if let Some(url) = &repository.git_url {
        return Ok(Remote {
            url: url.clone(),
            auth: Vec::new(),
            policy,
        });
    }
    let Some(github) = &app.github else {
        return Err(IngestError::NoRemote(repository.name.clone()));
    };
    // A token that cannot be had now (GitHub down) is worth retrying: report it as unreachable.
    let auth = github
        .git_auth_config()
        .await
        .map_err(|e| GitError::Unreachable(format!("installation token: {e}")))?;
    Ok(Remote {
        url: github.clone_url(&repository.name),
        auth,
        policy: policy.allowing(github.git_protocol()),
    })
}

async fn ingest(
    app: &App,
    repository: &Repository,
    commit_id: i64,
    sha: &str,
) -> Result<Ingested, IngestError> {
    // A server slower than this is treated as unreachable for this try.
    let timeout = Duration::from_secs(app.config.git.timeout_seconds.max(1));
    let remote = remote(app, repository).await?;
    let scratch = Scratch::new(remote.policy, timeout).await?;
    scratch
        .fetch(&remote.url, sha, &remote.auth, timeout)
        .await?;
    let info = scratch.commit_info(sha, timeout).await?;
    let archive_path = scratch.scratch_file("archive.tar.zst");
    let archive = scratch.archive(sha, &archive_path, timeout).await?;
    crate::archive::store(
        app.storage.as_ref(),
        repository.id,
        sha,
        &archive_path,
        &archive.sha256,
    )
    .await?;
    sqlx::query(
        "UPDATE commits SET author_name = $2, author_email = $3, message = $4, committed_at = $5, \
         archive_size = $6, archive_sha256 = $7, ingest_status = 'completed', ingest_error = NULL, \
         user_id = COALESCE(user_id, (SELECT user_id FROM user_emails WHERE email = $3::citext)) \
         WHERE id = $1",
    )
    .bind(commit_id)
    .bind(&info.author_name)
    .bind(&info.author_email)
    .bind(&info.message)
    .bind(info.committed_at)
    .bind(archive.size as i64)
    .bind(&archive.sha256)
    .execute(&app.db)
    .await?;
    tracing::info!(repository = %repository.name, sha, size = archive.size, "commit ingested");
    // Read once, here, from git's objects (a link is reported, never followed, and the size is
    // capped); the check set keeps the bytes, so no worker reads the file again.
    let manifest = scratch
        .read_tree_file(
            sha,
            crate::manifest::MANIFEST_FILE_NAME,
            crate::manifest::MAX_MANIFEST_BYTES as u64,
            timeout,
        )
        .await?;
    Ok(Ingested {
        commit_id,
        manifest,
    })
}
