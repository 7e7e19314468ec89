//! The `checks.run` job: one check set, start to end, on whichever worker takes it. A worker
//! that dies mid-way leaves the job to another, which skips the checks already finished.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::execute::{CheckResult, LocalRun, run_check, sandbox_owner};
use super::model::{CheckStatus, find_set, list_checks, update_check};
use super::workspace::Workspace;
use crate::app::App;
use crate::manifest::{self, Manifest};
use crate::plugins::Catalog;
use crate::queue::{JobContext, JobError, JobHandler, JobKind};
use crate::repositories;

pub const RUN_JOB: &str = "checks.run";

/// The `checks.run` job: the set, and the job id its checks see (`COCOV_JOB_IDENTIFIER`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunJob {
    pub check_set_id: i64,
    pub job_id: uuid::Uuid,
}

impl JobKind for RunJob {
    const KIND: &'static str = RUN_JOB;
}

#[derive(sqlx::FromRow)]
struct CommitRow {
    repository_id: i64,
    sha: String,
    archive_sha256: Option<String>,
}

pub struct RunChecks(pub App);

#[async_trait::async_trait]
impl JobHandler for RunChecks {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        let app = &self.0;
        let payload: RunJob = job.job()?;
        // One runner per set. A copy of this job queued again while the first still runs (Redis
        // lost the entry and the reconciler queued it again) leaves the set to the runner that
        // holds the lock. The lock is PostgreSQL's: it ends with its holder's transaction or
        // connection, so a runner that died blocks nobody; the wait covers the moment between a
        // holder's death and PostgreSQL noticing its connection is gone.
        let mut lock = app.db.begin().await.map_err(JobError::from_cause)?;
        sqlx::query("SET LOCAL lock_timeout = '10s'")
            .execute(&mut *lock)
            .await
            .map_err(JobError::from_cause)?;
        let locked = sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('cocov.checks.run:' || $1::text, 0))",
        )
        .bind(payload.check_set_id)
        .execute(&mut *lock)
        .await;
        let ours = match locked {
            Ok(_) => true,
            // lock_not_available: the lock_timeout passed with another runner holding it.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => false,
            Err(e) => return Err(JobError::from_cause(e)),
        };
        if !ours {
            tracing::info!(
                check_set_id = payload.check_set_id,
                "check set already running elsewhere; leaving it to that runner"
            );
            return Ok(());
        }
        let result = run_set(app, job, payload).await;
        let _ = lock.rollback().await;
        result
    }

    /// The queue gave the run up (an outage past its deadline, workers dying on it): the set
    /// and its unfinished checks end `errored` with the reason, and the status says so.
    async fn gave_up(&self, job: &JobContext, reason: &str) -> Result<(), JobError> {
        let RunJob {
            check_set_id,
            job_id,
        } = job.job()?;
        let set = find_set(&self.0.db, check_set_id)
            .await
            .map_err(JobError::from_cause)?;
        // Gone, or replaced by a re-run that is not this job's to end.
        if set.is_none_or(|s| s.job_id != Some(job_id)) {
            return Ok(());
        }
        end_unfinished(&self.0, check_set_id, &format!("Given up: {reason}")).await
    }
}

async fn run_set(app: &App, job: &JobContext, payload: RunJob) -> Result<(), JobError> {
    {
        let RunJob {
            check_set_id,
            job_id,
        } = payload;
        let Some(set) = find_set(&app.db, check_set_id)
            .await
            .map_err(JobError::from_cause)?
        else {
            return Ok(());
        };
        // A re-run replaced this set's run.
        if set.job_id != Some(job_id) {
            return Ok(());
        }
        // It already ended (canceled, deadline, or this job delivered again after the run that
        // ended it stopped before announcing it): announce it if that is still owed.
        if set.status().is_finished() {
            return finish(app, check_set_id).await;
        }
        if set.canceling {
            return finish(app, check_set_id).await;
        }
        sqlx::query(
            "UPDATE check_sets SET status = 'in_progress', started_at = COALESCE(started_at, now()), \
             updated_at = now() WHERE id = $1 AND status IN ('queued', 'in_progress')",
        )
        .bind(check_set_id)
        .execute(&app.db)
        .await
        .map_err(JobError::from_cause)?;
        let commit: CommitRow = sqlx::query_as(
            "SELECT repository_id, sha::text AS sha, archive_sha256 FROM commits WHERE id = $1",
        )
        .bind(set.commit_id)
        .fetch_one(&app.db)
        .await
        .map_err(JobError::from_cause)?;
        let Some(repository) = repositories::find(&app.db, commit.repository_id)
            .await
            .map_err(JobError::from_cause)?
        else {
            return Ok(());
        };

        let (manifest, catalog, secrets) = match prepare(app, check_set_id, repository.id).await {
            Ok(p) => p,
            Err(why) => return fail_all(app, check_set_id, &why).await,
        };
        let workspace = match Workspace::prepare(
            app,
            &job_id.to_string(),
            commit.repository_id,
            &commit.sha,
            commit.archive_sha256.as_deref(),
        )
        .await
        {
            Ok(w) => w,
            // The store is down: not the set's fault, and no attempt is used up.
            Err(e) if e.is_transient() && !job.is_last_attempt() => {
                return Err(JobError::Unavailable(e.to_string()));
            }
            Err(e) => return fail_all(app, check_set_id, &e.to_string()).await,
        };
        let specs: BTreeMap<String, manifest::CheckSpec> = manifest
            .effective_checks()
            .into_iter()
            .map(|c| (c.plugin_name().to_ascii_lowercase(), c))
            .collect();
        let checks = list_checks(&app.db, check_set_id)
            .await
            .map_err(JobError::from_cause)?;
        let job_text = job_id.to_string();
        for (index, check) in checks.iter().enumerate() {
            if check.status().is_finished() {
                continue;
            }
            if stop_requested(app, check_set_id).await {
                break;
            }
            let Some(spec) = specs.get(&check.plugin_name.to_ascii_lowercase()) else {
                record(
                    app,
                    check.id,
                    CheckResult::Errored("the manifest no longer names this plugin".into()),
                )
                .await?;
                continue;
            };
            // A plugin no definition names is an image reference.
            let image_definition;
            let definition = match catalog.resolve(&spec.plugin) {
                Ok(d) => d,
                Err(unknown) => {
                    match crate::images::for_check(app, set.commit_id, &spec.plugin).await {
                        Ok(d) => {
                            image_definition = d;
                            &image_definition
                        }
                        Err(e) => {
                            let why = format!("{unknown}; as an image: {e}");
                            record(app, check.id, CheckResult::Errored(why)).await?;
                            continue;
                        }
                    }
                }
            };
            update_check(&app.db, check.id, CheckStatus::InProgress, None)
                .await
                .map_err(JobError::from_cause)?;
            let result = match workspace.check_dir(index, sandbox_owner(&app.config.worker)) {
                Ok(dir) => {
                    let run = LocalRun {
                        repository: &repository.name,
                        sha: &commit.sha,
                        job_id: &job_text,
                        secrets: &secrets,
                        cache: cache_relay(&app.config),
                    };
                    let result = run_check(
                        &app.config.worker,
                        definition,
                        spec,
                        &dir,
                        &run,
                        wait_for_stop(app, check_set_id),
                    )
                    .await;
                    let _ = super::workspace::remove_tree(&dir);
                    result
                }
                Err(e) => CheckResult::Errored(format!(
                    "Failed initializing runtime: copying the source: {e}"
                )),
            };
            // Issues first: a worker dying between the two re-runs the check, and the
            // registration is idempotent.
            if let CheckResult::Completed(issues) = &result {
                crate::issues::register(
                    &app.db,
                    repository.id,
                    set.commit_id,
                    &check.plugin_name,
                    issues,
                    manifest.exclude_matcher(),
                )
                .await
                .map_err(JobError::from_cause)?;
            }
            record(app, check.id, result).await?;
        }
        workspace.remove();
        finish(app, check_set_id).await
    }
}

/// The manifest recorded with the set at scheduling (never the file in the unpacked tree, which
/// could be a link anywhere), the plugin catalog and the secrets the checks mount.
async fn prepare(
    app: &App,
    check_set_id: i64,
    repository_id: i64,
) -> Result<(Manifest, Catalog, BTreeMap<String, Vec<u8>>), String> {
    let text: Option<Vec<u8>> = sqlx::query_scalar("SELECT manifest FROM check_sets WHERE id = $1")
        .bind(check_set_id)
        .fetch_one(&app.db)
        .await
        .map_err(|e| format!("reading the manifest: {e}"))?;
    // Only a set queued by an older version lacks it; a re-run records it.
    let text = text.ok_or("the check set has no recorded manifest; run its checks again")?;
    let manifest = manifest::parse(&String::from_utf8_lossy(&text))
        .map_err(|e| e.status_description_with_location())?;
    let catalog = Catalog::load(&app.config.worker.plugins_dir)
        .map_err(|e| format!("Failed loading plugin definitions: {e}"))?;
    let names: Vec<String> = manifest
        .effective_checks()
        .iter()
        .flat_map(|c| c.mounts.iter().map(|m| m.source.secret_name().to_string()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let secrets = if names.is_empty() {
        BTreeMap::new()
    } else {
        let cipher = crate::secrets::Cipher::from_config(&app.config.security)
            .map_err(|e| format!("Failed fetching secrets: {e}"))?;
        crate::secrets::resolve_for_repository(&app.db, &cipher, repository_id, &names)
            .await
            .map_err(|e| format!("Failed fetching secrets: {e}"))?
    };
    Ok((manifest, catalog, secrets))
}

/// The relay to the cache service when this host serves it (the worker role, cache enabled).
fn cache_relay(config: &crate::config::Config) -> Option<crate::sandbox::Relay> {
    config.cache.enabled.then(|| crate::sandbox::Relay {
        socket: config.cache.socket(&config.worker),
        port: config.cache.sandbox_port,
        binary: Some(&config.cache.relay_binary)
            .filter(|b| !b.is_empty())
            .map(std::path::PathBuf::from),
    })
}

async fn record(app: &App, check_id: i64, result: CheckResult) -> Result<(), JobError> {
    let (status, output) = match &result {
        CheckResult::Completed(_) => (CheckStatus::Completed, None),
        CheckResult::Errored(why) => (CheckStatus::Errored, Some(why.as_str())),
        CheckResult::Canceled => (CheckStatus::Canceled, None),
    };
    update_check(&app.db, check_id, status, output)
        .await
        .map_err(JobError::from_cause)?;
    Ok(())
}

/// Every unfinished check errored with the same reason (the run could not start), then the end.
async fn fail_all(app: &App, check_set_id: i64, why: &str) -> Result<(), JobError> {
    let reason = format!("Failed initializing runtime: {why}");
    end_unfinished(app, check_set_id, &reason).await
}

/// Ends the set's unfinished checks `errored` with `reason`, then the set.
async fn end_unfinished(app: &App, check_set_id: i64, reason: &str) -> Result<(), JobError> {
    tracing::warn!(check_set_id, %reason, "check set could not run");
    sqlx::query(
        "UPDATE checks SET status = 'errored', error_output = $2, updated_at = now(), \
         started_at = COALESCE(started_at, now()), finished_at = now() \
         WHERE check_set_id = $1 AND status IN ('waiting', 'in_progress')",
    )
    .bind(check_set_id)
    .bind(reason)
    .execute(&app.db)
    .await
    .map_err(JobError::from_cause)?;
    finish(app, check_set_id).await
}

async fn finish(app: &App, check_set_id: i64) -> Result<(), JobError> {
    super::finish::finish(app, check_set_id)
        .await
        .map_err(JobError::from_cause)
}

/// Whether the set was canceled or ended by its deadline meanwhile.
async fn stop_requested(app: &App, check_set_id: i64) -> bool {
    match sqlx::query_scalar::<_, bool>(
        "SELECT canceling OR status NOT IN ('queued', 'in_progress') FROM check_sets WHERE id = $1",
    )
    .bind(check_set_id)
    .fetch_optional(&app.db)
    .await
    {
        Ok(Some(stop)) => stop,
        // The set is gone (repository deleted).
        Ok(None) => true,
        // A database blip is no reason to kill a running plugin.
        Err(_) => false,
    }
}

/// Completes when the set should stop: polled, so a cancel reaches the right worker on any host
/// without a message bus.
async fn wait_for_stop(app: &App, check_set_id: i64) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if stop_requested(app, check_set_id).await {
            return;
        }
    }
}
