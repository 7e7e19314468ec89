//! The `commit.follow_up` job: the stages after ingestion for a commit already ingested, with
//! its manifest read back from the stored archive. The reconciler queues it for an ingested
//! commit whose stages never ran; a redelivered ingestion of a completed commit runs it too.

use crate::app::App;
use crate::archive;
use crate::commits::{FollowUpJob, IngestStatus, Ingested};
use crate::manifest::{MANIFEST_FILE_NAME, MAX_MANIFEST_BYTES};
use crate::queue::{JobContext, JobError, JobHandler};
use crate::statuses::{self, Context, State};

use super::after_ingest::after_ingest;

/// Runs the stages for `commit_id` when it is ingested; nothing when it is gone or not ingested
/// yet (its ingestion runs them itself).
pub async fn resume(app: &App, commit_id: i64) -> Result<(), JobError> {
    let row: Option<(i64, String, String)> =
        sqlx::query_as("SELECT repository_id, sha::text, ingest_status FROM commits WHERE id = $1")
            .bind(commit_id)
            .fetch_optional(&app.db)
            .await
            .map_err(JobError::from_cause)?;
    let Some((repository_id, sha, status)) = row else {
        return Ok(());
    };
    if IngestStatus::parse(&status) != IngestStatus::Completed {
        return Ok(());
    }
    let manifest = archive::read_tree_file(
        app.storage.as_ref(),
        repository_id,
        &sha,
        MANIFEST_FILE_NAME,
        MAX_MANIFEST_BYTES as u64,
    )
    .await
    .map_err(|e| match e {
        e if e.is_transient() => JobError::from_cause(e),
        _ => JobError::permanent(e),
    })?;
    after_ingest(
        app,
        &Ingested {
            commit_id,
            manifest,
        },
    )
    .await
    .map_err(JobError::from_cause)
}

pub struct FollowUp(pub App);

#[async_trait::async_trait]
impl JobHandler for FollowUp {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        let FollowUpJob { commit_id } = job.job()?;
        resume(&self.0, commit_id).await
    }

    /// The checks cannot be scheduled: the commit gets an errored check set and an `error`
    /// status saying why, so it does not look as if checks were still coming.
    async fn gave_up(&self, job: &JobContext, reason: &str) -> Result<(), JobError> {
        let app = &self.0;
        let FollowUpJob { commit_id } = job.job()?;
        let extra = format!("the steps after ingestion failed: {reason}");
        let inserted = sqlx::query(
            "INSERT INTO check_sets (commit_id, status, error_kind, error_extra, finished_at) \
             SELECT id, 'errored', 'commit_fetch_failed', $2, now() FROM commits WHERE id = $1 \
             ON CONFLICT (commit_id) DO NOTHING",
        )
        .bind(commit_id)
        .bind(&extra)
        .execute(&app.db)
        .await
        .map_err(JobError::from_cause)?;
        if inserted.rows_affected() > 0 {
            statuses::set(app, commit_id, Context::Checks, State::Error, &extra, None)
                .await
                .map_err(JobError::from_cause)?;
        }
        Ok(())
    }
}
