//! The steps after a commit is ingested: announce the statuses its manifest calls for, schedule
//! its check set, apply the coverage held for it. Each step is idempotent, so they run again
//! safely: from the ingestion itself, from a redelivered ingestion of a commit already marked
//! ingested, and from the `commit.follow_up` job the reconciler queues for an ingested commit
//! whose steps never ran (its process died between marking it ingested and finishing them).

use anyhow::Context as _;
use serde::Deserialize;

use crate::app::App;
use crate::coverage::tree::{TreeError, read_tree_file};
use crate::git::TreeFile;
use crate::manifest::{MANIFEST_FILE_NAME, MAX_MANIFEST_BYTES};
use crate::queue::{JobContext, JobError, JobHandler};
use crate::statuses::{self, Context, State};

pub const FOLLOW_UP_JOB: &str = "commit.follow_up";

/// Runs the steps for an ingested commit whose manifest is `manifest`.
pub async fn after_ingest(
    app: &App,
    commit_id: i64,
    manifest: &TreeFile,
) -> Result<(), anyhow::Error> {
    statuses::announce_from_manifest(app, commit_id, manifest)
        .await
        .context("recording statuses")?;
    crate::checks::schedule(app, commit_id, manifest)
        .await
        .context("scheduling checks")?;
    // Coverage uploaded before the commit arrived (held in coverage_uploads) applies now.
    crate::coverage::apply_early_uploads(app, commit_id).await;
    Ok(())
}

/// Runs the steps for an ingested commit, reading its manifest back from the stored archive.
pub async fn run(app: &App, commit_id: i64) -> Result<(), JobError> {
    let row: Option<(i64, String, String)> =
        sqlx::query_as("SELECT repository_id, sha::text, ingest_status FROM commits WHERE id = $1")
            .bind(commit_id)
            .fetch_optional(&app.db)
            .await
            .map_err(JobError::from_cause)?;
    // Gone with its repository, or not ingested yet (the ingestion runs the steps itself).
    let Some((repository_id, sha, status)) = row else {
        return Ok(());
    };
    if status != "completed" {
        return Ok(());
    }
    let manifest = read_tree_file(
        app,
        repository_id,
        &sha,
        MANIFEST_FILE_NAME,
        MAX_MANIFEST_BYTES as u64,
    )
    .await
    .map_err(|e| match e {
        TreeError::Missing => JobError::permanent(e),
        TreeError::Read(_) => JobError::unavailable(e),
    })?;
    after_ingest(app, commit_id, &manifest)
        .await
        .map_err(JobError::from_cause)
}

#[derive(Deserialize)]
struct Payload {
    commit_id: i64,
}

pub struct FollowUp(pub App);

#[async_trait::async_trait]
impl JobHandler for FollowUp {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        let Payload { commit_id } = job.payload_as()?;
        run(&self.0, commit_id).await
    }

    /// The checks cannot be scheduled: the commit gets an errored check set and an `error`
    /// status saying why, so it does not look as if checks were still coming.
    async fn gave_up(&self, job: &JobContext, reason: &str) -> Result<(), JobError> {
        let app = &self.0;
        let Payload { commit_id } = job.payload_as()?;
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
            statuses::set(app, commit_id, Context::Checks, State::Error, &extra, None).await?;
        }
        Ok(())
    }
}
