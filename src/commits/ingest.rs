//! The ingestion job: fetch one commit, archive its tree into the blob store, record its
//! metadata. Idempotent (a completed commit is left alone; blobs are overwritten atomically),
//! and it always ends the commit in `completed` or `errored` with a reason.

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use crate::app::App;
use crate::git::{GitError, Policy, Scratch, redact};
use crate::queue::{JobContext, JobError, JobHandler};
use crate::repositories::{self, Repository};
use crate::storage::BlobKey;

pub const INGEST_JOB: &str = "commit.ingest";

pub fn archive_key(repository_id: i64, sha: &str) -> String {
    format!("{repository_id}/{sha}.tar.zst")
}

pub fn shasum_key(repository_id: i64, sha: &str) -> String {
    format!("{repository_id}/{sha}.shasum")
}

#[derive(Deserialize)]
struct Payload {
    commit_id: i64,
}

#[derive(sqlx::FromRow)]
struct CommitRow {
    repository_id: i64,
    sha: String,
    ingest_status: String,
}

pub struct Ingest(pub App);

#[async_trait::async_trait]
impl JobHandler for Ingest {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        let app = &self.0;
        let Payload { commit_id } = job.payload_as()?;
        let row: Option<CommitRow> = sqlx::query_as(
            "SELECT repository_id, sha::text AS sha, ingest_status FROM commits WHERE id = $1",
        )
        .bind(commit_id)
        .fetch_optional(&app.db)
        .await
        .map_err(JobError::from_cause)?;
        // The repository (and its commits) may have been deleted since: nothing left to do.
        let Some(row) = row else { return Ok(()) };
        // Delivered again after the commit was marked ingested: the steps after it may not
        // have run (the process died in between); they are idempotent.
        if row.ingest_status == "completed" {
            return super::follow_up::run(app, commit_id).await;
        }
        let Some(repository) = repositories::find(&app.db, row.repository_id)
            .await
            .map_err(JobError::from_cause)?
        else {
            return Ok(());
        };
        set_status(app, commit_id, "in_progress", None).await?;
        match ingest(app, &repository, commit_id, &row.sha).await {
            Ok(()) => Ok(()),
            // Errors quote git, and git quotes the URL: redacted before it is stored or logged.
            Err(e) if e.is_transient() && !job.is_last_attempt() => {
                let reason = redact(&e.to_string());
                set_status(app, commit_id, "queued", Some(&reason)).await?;
                // The remote, the store or the database is down: not the commit's fault.
                Err(JobError::Unavailable(reason))
            }
            Err(e) => {
                // Final: say why on the commit, and acknowledge the job.
                let reason = redact(&if e.is_transient() {
                    format!("gave up after {} attempts: {e}", job.attempt)
                } else {
                    e.to_string()
                });
                tracing::warn!(commit_id, sha = %row.sha, %reason, "commit ingestion failed");
                set_status(app, commit_id, "errored", Some(&reason)).await?;
                Ok(())
            }
        }
    }

    /// The queue gave the ingestion up (an outage past its deadline, workers dying on it): the
    /// commit ends `errored` with the reason instead of staying queued or in progress.
    async fn gave_up(&self, job: &JobContext, reason: &str) -> Result<(), JobError> {
        let Payload { commit_id } = job.payload_as()?;
        sqlx::query(
            "UPDATE commits SET ingest_status = 'errored', ingest_error = $2              WHERE id = $1 AND ingest_status IN ('queued', 'in_progress')",
        )
        .bind(commit_id)
        .bind(redact(reason))
        .execute(&self.0.db)
        .await
        .map_err(JobError::from_cause)?;
        Ok(())
    }
}

async fn set_status(
    app: &App,
    commit_id: i64,
    status: &str,
    error: Option<&str>,
) -> Result<(), JobError> {
    sqlx::query("UPDATE commits SET ingest_status = $2, ingest_error = $3 WHERE id = $1")
        .bind(commit_id)
        .bind(status)
        .bind(error)
        .execute(&app.db)
        .await
        .map_err(JobError::from_cause)?;
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
async fn remote(app: &App, repository: &Repository) -> Result<Remote, GitError> {
    let policy = Policy::from_config(&app.config.git);
    if let Some(url) = &repository.git_url {
        return Ok(Remote {
            url: url.clone(),
            auth: Vec::new(),
            policy,
        });
    }
    let Some(github) = &app.github else {
        return Err(GitError::Io(format!(
            "repository `{}` has no git URL and GitHub mode is not configured",
            repository.name
        )));
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
) -> Result<(), GitError> {
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
    let storage_error =
        |e: crate::storage::StorageError| GitError::Io(format!("storing the archive: {e}"));
    let key = BlobKey::new(&archive_key(repository.id, sha)).map_err(storage_error)?;
    app.storage
        .put_file(&key, &archive_path)
        .await
        .map_err(storage_error)?;
    // The sidecar goes last: its presence means the archive is complete.
    let sidecar = BlobKey::new(&shasum_key(repository.id, sha)).map_err(storage_error)?;
    app.storage
        .put(&sidecar, Bytes::from(format!("sha256:{}", archive.sha256)))
        .await
        .map_err(storage_error)?;
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
    .await
    .map_err(|e| GitError::Io(format!("recording the commit: {e}")))?;
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
    super::follow_up::after_ingest(app, commit_id, &manifest)
        .await
        .map_err(|e| GitError::Io(format!("{e:#}")))?;
    Ok(())
}
