//! Creating a commit's check set from its manifest, re-running it, and canceling it.

use sqlx::PgPool;

use super::model::{CheckSetStatus, find_set_for_commit};
use super::run::RunJob;
use crate::app::App;
use crate::git::TreeFile;
use crate::manifest::{self, Manifest, ManifestFile};
use crate::queue::JobKind;
use crate::statuses::{self, Context, State};

#[derive(Debug, thiserror::Error)]
pub enum ChecksError {
    #[error("this commit has no check set")]
    NoCheckSet,
    #[error("checks are still running; cancel them first or wait for them to finish")]
    StillRunning,
    #[error("the commit's source is not available yet")]
    NotIngested,
    /// Kept as a cause chain (not flattened to text), so the HTTP layer can tell an outage
    /// from a bug.
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

impl From<sqlx::Error> for ChecksError {
    fn from(e: sqlx::Error) -> Self {
        ChecksError::Internal(anyhow::Error::new(e).context("database"))
    }
}

impl From<crate::statuses::StatusError> for ChecksError {
    fn from(e: crate::statuses::StatusError) -> Self {
        ChecksError::Internal(anyhow::Error::new(e))
    }
}

impl From<anyhow::Error> for ChecksError {
    fn from(e: anyhow::Error) -> Self {
        ChecksError::Internal(e)
    }
}

/// Records the commit's check set as its manifest says and queues the run. Idempotent: a commit
/// that already has a set keeps it (re-running is [`rerun`]). The manifest's bytes are kept on
/// the set: the worker parses those, never the file in the unpacked tree.
pub async fn schedule(
    app: &App,
    commit_id: i64,
    manifest_file: &ManifestFile,
) -> Result<(), ChecksError> {
    if find_set_for_commit(&app.db, commit_id).await?.is_some() {
        return Ok(());
    }
    let Some(parsed) = &manifest_file.parsed else {
        insert_set(&app.db, commit_id, CheckSetStatus::NotConfigured, None).await?;
        return Ok(());
    };
    let manifest = match parsed {
        Ok(m) => m,
        Err(e) => {
            let extra = e.status_description_with_location();
            insert_set(
                &app.db,
                commit_id,
                CheckSetStatus::Errored,
                Some((e.kind.as_str(), &extra)),
            )
            .await?;
            return Ok(());
        }
    };
    let checks = manifest.effective_checks();
    if checks.is_empty() {
        insert_set(&app.db, commit_id, CheckSetStatus::NotConfigured, None).await?;
        return Ok(());
    }
    let repository_id: i64 = sqlx::query_scalar("SELECT repository_id FROM commits WHERE id = $1")
        .bind(commit_id)
        .fetch_one(&app.db)
        .await?;
    if let Some((name, line)) = unknown_secret(app, repository_id, manifest).await? {
        let error = manifest::ManifestError::unknown_secret(&name, line);
        let extra = format!("Unknown secret `{name}` (manifest line {line})");
        insert_set(
            &app.db,
            commit_id,
            CheckSetStatus::Errored,
            Some((error.kind.as_str(), &extra)),
        )
        .await?;
        statuses::set(app, commit_id, Context::Checks, State::Error, &extra, None).await?;
        return Ok(());
    }
    let Some(bytes) = manifest_file.bytes() else {
        return Err(ChecksError::Internal(anyhow::anyhow!(
            "a parsed manifest without bytes"
        )));
    };
    let job_id = uuid::Uuid::new_v4();
    let deadline = app.config.worker.check_set_deadline_seconds as f64;
    let mut tx = app.db.begin().await?;
    let set_id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO check_sets (commit_id, status, job_id, deadline_at, manifest) \
         VALUES ($1, 'queued', $2, now() + make_interval(secs => $3), $4) \
         ON CONFLICT (commit_id) DO NOTHING RETURNING id",
    )
    .bind(commit_id)
    .bind(job_id)
    .bind(deadline)
    .bind(bytes)
    .fetch_optional(&mut *tx)
    .await?;
    // Another ingestion of the same commit got there first.
    let Some(set_id) = set_id else { return Ok(()) };
    for check in &checks {
        sqlx::query(
            "INSERT INTO checks (check_set_id, plugin_name) VALUES ($1, $2::citext) \
             ON CONFLICT (check_set_id, plugin_name) DO NOTHING",
        )
        .bind(set_id)
        .bind(check.plugin_name())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    // Should the process die right here, the set's deadline ends it: nothing stays queued.
    RunJob {
        check_set_id: set_id,
        job_id,
    }
    .enqueue(&app.queue)
    .await
    .map_err(|e| ChecksError::Internal(anyhow::Error::new(e).context("queueing the checks")))?;
    Ok(())
}

async fn insert_set(
    db: &PgPool,
    commit_id: i64,
    status: CheckSetStatus,
    error: Option<(&str, &str)>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO check_sets (commit_id, status, error_kind, error_extra, finished_at) \
         VALUES ($1, $2, $3, $4, CASE WHEN $2 = 'errored' THEN now() END) \
         ON CONFLICT (commit_id) DO NOTHING",
    )
    .bind(commit_id)
    .bind(status.as_str())
    .bind(error.map(|e| e.0))
    .bind(error.map(|e| e.1))
    .execute(db)
    .await?;
    Ok(())
}

/// The first mount naming a secret the repository cannot see.
async fn unknown_secret(
    app: &App,
    repository_id: i64,
    manifest: &Manifest,
) -> Result<Option<(String, usize)>, sqlx::Error> {
    for check in manifest.effective_checks() {
        for mount in &check.mounts {
            let name = mount.source.secret_name().to_string();
            if crate::secrets::missing_for_repository(
                &app.db,
                repository_id,
                std::slice::from_ref(&name),
            )
            .await?
            .is_some()
            {
                return Ok(Some((name, mount.line)));
            }
        }
    }
    Ok(None)
}

/// Runs a finished check set again: its checks start over and their previous issues are
/// replaced; other issues of the commit and the history are kept. The manifest is read again
/// from the stored commit (through the same bounded reader that follows no link), so a secret
/// added or granted since an "unknown secret" failure is now found.
pub async fn rerun(app: &App, commit_id: i64) -> Result<(), ChecksError> {
    let set = find_set_for_commit(&app.db, commit_id)
        .await?
        .ok_or(ChecksError::NoCheckSet)?;
    if !set.status().is_finished() {
        return Err(ChecksError::StillRunning);
    }
    let manifest = ManifestFile::new(read_manifest(app, commit_id).await?);
    let mut tx = app.db.begin().await?;
    let deleted = sqlx::query(
        "DELETE FROM check_sets WHERE id = $1 \
         AND status NOT IN ('waiting', 'queued', 'in_progress')",
    )
    .bind(set.id)
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(ChecksError::StillRunning);
    }
    // Only the issues of the plugins that run again; a plugin dropped from the manifest keeps
    // its findings out of the new count too.
    sqlx::query(
        "DELETE FROM issues WHERE commit_id = $1 AND check_source IN \
         (SELECT plugin_name FROM checks WHERE check_set_id = $2)",
    )
    .bind(commit_id)
    .bind(set.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if let Some(Ok(parsed)) = &manifest.parsed
        && !parsed.effective_checks().is_empty()
    {
        statuses::set(
            app,
            commit_id,
            Context::Checks,
            State::Pending,
            "Checks are running...",
            None,
        )
        .await?;
    }
    schedule(app, commit_id, &manifest).await
}

/// Cancels a running check set. One still waiting for a worker ends at once; a running one is
/// stopped by its worker within about a second.
pub async fn cancel(app: &App, commit_id: i64) -> Result<(), ChecksError> {
    let set = find_set_for_commit(&app.db, commit_id)
        .await?
        .ok_or(ChecksError::NoCheckSet)?;
    if set.status().is_finished() {
        return Ok(());
    }
    sqlx::query("UPDATE check_sets SET canceling = true, updated_at = now() WHERE id = $1")
        .bind(set.id)
        .execute(&app.db)
        .await?;
    if matches!(
        set.status(),
        CheckSetStatus::Waiting | CheckSetStatus::Queued
    ) {
        super::finish::finish(app, set.id).await?;
    }
    Ok(())
}

/// `.cocov.yaml` of a stored commit, read from its archive: a regular file up to the manifest's
/// cap, or what else the entry is (a link is reported, not followed).
async fn read_manifest(app: &App, commit_id: i64) -> Result<TreeFile, ChecksError> {
    let (repository_id, sha, status): (i64, String, String) =
        sqlx::query_as("SELECT repository_id, sha::text, ingest_status FROM commits WHERE id = $1")
            .bind(commit_id)
            .fetch_one(&app.db)
            .await?;
    if crate::commits::IngestStatus::parse(&status) != crate::commits::IngestStatus::Completed {
        return Err(ChecksError::NotIngested);
    }
    crate::archive::read_tree_file(
        app.storage.as_ref(),
        repository_id,
        &sha,
        manifest::MANIFEST_FILE_NAME,
        manifest::MAX_MANIFEST_BYTES as u64,
    )
    .await
    .map_err(|e| ChecksError::Internal(e.into()))
}
