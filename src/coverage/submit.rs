//! Tying an upload to its commit. When the commit is ingested, the report's paths are mapped
//! onto its tree in the request and an upload that matches nothing is refused with the list of
//! paths; otherwise it is stored (merged or replacing), totals are recomputed, the
//! `cocov/coverage` gate is posted and the badges are refreshed. When the commit is not known or
//! not ingested yet, the upload is held in `coverage_uploads` (the original's 2-hour "early
//! coverage hold", made durable) and [`apply_early_uploads`] applies it once ingestion completes.

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use super::budget::{self, Budget, OverBudget};
use super::gate;
use super::merge::{CommitCoverage, merge_into};
use super::paths::Mapping;
use super::store::{self, CommitTotals, Saved};
use super::tree::{self, CommitTree, TreeError};
use super::upload::{Mode, Upload};
use crate::app::App;
use crate::manifest::{self, Manifest};
use crate::repositories::{self, Repository};
use crate::statuses::{self, Context, State, StatusError};

/// Unmatched paths named in a diagnostic; the count is always complete.
const MAX_NAMED_PATHS: usize = 50;

/// Line totals of a report or a commit, for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Numbers {
    pub files: usize,
    pub lines_total: u64,
    pub lines_covered: u64,
    pub percent_covered: f64,
}

/// What happened to an upload: the answer of the upload endpoints and what the reporter prints.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    /// `completed` (applied to the commit) or `held` (the commit is not ingested yet).
    pub status: &'static str,
    pub commit_sha: String,
    pub format: Option<&'static str>,
    pub mode: Mode,
    /// The report as uploaded, before mapping.
    pub report: Numbers,
    /// Report files that matched a file of the commit (None while held).
    pub files_matched: Option<usize>,
    pub files_unmatched: Option<usize>,
    /// The first unmatched report paths.
    pub unmatched: Vec<String>,
    /// Matched files left out by the manifest's `exclude_paths`.
    pub files_excluded: Option<usize>,
    /// The commit's coverage after this upload (None while held).
    pub commit: Option<Numbers>,
    /// When a held upload is dropped if its commit has not arrived.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("`{0}` is not a full commit sha (40 or 64 hexadecimal characters)")]
    InvalidSha(String),
    /// PostgreSQL cannot store the NUL character, and no file of a git tree has one.
    #[error("the report names a path containing a NUL character: `{0}`")]
    NulInPath(String),
    #[error("{}", no_match_message(.0))]
    NoMatch(Box<Diagnostic>),
    #[error(
        "this repository already has {limit} uploads held for commits not ingested yet \
         (coverage.max_held_uploads_per_repository); try again once they arrive"
    )]
    TooManyHeld { limit: u64 },
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// Recording or queueing the `cocov/coverage` status failed (the cause stays in the chain).
    #[error("{0}")]
    Status(#[from] StatusError),
    /// The commit's ingestion state changed under every attempt to hold the upload.
    #[error("the commit's ingestion state kept changing")]
    Unsettled,
    // Not transparent: the sqlx error stays in the cause chain, where outages are recognised.
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

fn no_match_message(d: &Diagnostic) -> String {
    let mut named = d.unmatched.join(", ");
    if d.files_unmatched.unwrap_or(0) > d.unmatched.len() {
        named.push_str(", …");
    }
    format!(
        "None of the {} file(s) of the report matched a file of commit {}: {named}",
        d.report.files, d.commit_sha
    )
}

fn numbers(files: usize, lines_total: u64, lines_covered: u64) -> Numbers {
    let percent_covered = if lines_total == 0 {
        0.0
    } else {
        lines_covered as f64 * 100.0 / lines_total as f64
    };
    Numbers {
        files,
        lines_total,
        lines_covered,
        percent_covered,
    }
}

fn diagnostic(sha: &str, upload: &Upload) -> Diagnostic {
    let t = upload.totals();
    Diagnostic {
        status: "held",
        commit_sha: sha.to_string(),
        format: upload.format.map(|f| f.as_str()),
        mode: upload.mode,
        report: numbers(upload.files.len(), t.lines_total, t.lines_covered),
        files_matched: None,
        files_unmatched: None,
        unmatched: Vec::new(),
        files_excluded: None,
        commit: None,
        expires_at: None,
    }
}

fn parse_manifest(tree: &CommitTree) -> Option<Manifest> {
    let bytes = tree.manifest.as_deref()?;
    // An invalid manifest already fails the `cocov` status; coverage then has no gate.
    manifest::parse(&String::from_utf8_lossy(bytes)).ok()
}

/// Drops the files the manifest excludes; returns how many.
fn exclude(files: &mut CommitCoverage, manifest: Option<&Manifest>) -> usize {
    let Some(m) = manifest else { return 0 };
    let before = files.len();
    files.retain(|path, _| !m.is_excluded(path));
    before - files.len()
}

#[derive(sqlx::FromRow)]
struct CommitRow {
    id: i64,
    ingest_status: String,
}

async fn find_commit(
    conn: impl sqlx::PgExecutor<'_>,
    repository_id: i64,
    sha: &str,
) -> Result<Option<CommitRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, ingest_status FROM commits WHERE repository_id = $1 AND sha = $2::citext",
    )
    .bind(repository_id)
    .bind(sha)
    .fetch_optional(conn)
    .await
}

/// Accepts an upload for `sha` of `repository` (see the module docs).
pub async fn submit(
    app: &App,
    repository: &Repository,
    sha: &str,
    upload: Upload,
) -> Result<Diagnostic, SubmitError> {
    let sha = sha.trim().to_ascii_lowercase();
    if !crate::git::is_full_sha(&sha) {
        return Err(SubmitError::InvalidSha(sha));
    }
    if let Some(path) = upload.path_with_nul() {
        return Err(SubmitError::NulInPath(path.replace('\0', "\\0")));
    }
    let mut diag = diagnostic(&sha, &upload);
    // Twice at most: a commit whose ingestion completes while we decide is applied directly.
    for _ in 0..2 {
        let commit = find_commit(&app.db, repository.id, &sha).await?;
        if let Some(c) = commit.as_ref().filter(|c| c.ingest_status == "completed") {
            let tree = Arc::new(tree::read_tree(app, repository.id, &sha).await?);
            let for_work = tree.clone();
            let (upload, mapping) = budget::run(app.config.coverage.processing_time_limit(), {
                move |b| {
                    let mapping = upload.map(&for_work.files, &for_work.go_modules, b);
                    (upload, mapping)
                }
            })
            .await?;
            let mapping = mapping?;
            record_mapping(&mut diag, &mapping);
            if mapping.matched.is_empty() {
                return Err(SubmitError::NoMatch(Box::new(diag)));
            }
            let applied = apply(
                app,
                repository,
                c.id,
                &sha,
                &tree,
                Some((&upload, &mapping)),
            )
            .await?;
            diag.status = "completed";
            diag.files_excluded = Some(applied.excluded);
            diag.commit = applied.commit;
            return Ok(diag);
        }
        let mut tx = app.db.begin().await?;
        store::lock(&mut tx, repository.id, &sha).await?;
        let now = find_commit(&mut *tx, repository.id, &sha).await?;
        if now.is_some_and(|c| c.ingest_status == "completed") {
            continue;
        }
        sqlx::query("DELETE FROM coverage_uploads WHERE expires_at <= now()")
            .execute(&mut *tx)
            .await?;
        check_held_room(
            &mut tx,
            repository.id,
            app.config.coverage.max_held_uploads_per_repository,
        )
        .await?;
        let expires_at: OffsetDateTime = sqlx::query_scalar(
            "INSERT INTO coverage_uploads (repository_id, commit_sha, mode, data, expires_at) \
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING expires_at",
        )
        .bind(repository.id)
        .bind(&sha)
        .bind(upload.mode.as_str())
        .bind(upload.to_held_json())
        .bind(app.config.coverage.early_upload_hold_seconds.max(1) as f64)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        diag.expires_at = Some(expires_at);
        return Ok(diag);
    }
    Err(SubmitError::Unsettled)
}

/// Refuses to hold another upload when the repository has `limit` held already: held uploads
/// are stored whole, so without a cap anyone with the upload token could fill the database
/// with uploads for commits that never come. Serialised per repository so concurrent uploads
/// cannot all squeeze under the limit.
async fn check_held_room(
    tx: &mut sqlx::PgConnection,
    repository_id: i64,
    limit: u64,
) -> Result<(), SubmitError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 5))")
        .bind(format!("coverage-held:{repository_id}"))
        .execute(&mut *tx)
        .await?;
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM coverage_uploads WHERE repository_id = $1 \
         AND applied_at IS NULL AND expires_at > now()",
    )
    .bind(repository_id)
    .fetch_one(&mut *tx)
    .await?;
    if u64::try_from(held).unwrap_or(0) >= limit {
        return Err(SubmitError::TooManyHeld { limit });
    }
    Ok(())
}

fn record_mapping(diag: &mut Diagnostic, mapping: &Mapping) {
    diag.files_matched = Some(mapping.matched.len());
    diag.files_unmatched = Some(mapping.unmatched.len());
    diag.unmatched = mapping
        .unmatched
        .iter()
        .take(MAX_NAMED_PATHS)
        .cloned()
        .collect();
}

/// Applies the uploads held for a commit whose ingestion just completed. Called at the end of
/// ingestion; failures are logged (the uploads stay held until they expire, and the next upload
/// for the commit applies them).
pub async fn apply_early_uploads(app: &App, commit_id: i64) {
    if let Err(e) = try_apply_early_uploads(app, commit_id).await {
        tracing::warn!(commit_id, error = %e, "held coverage uploads could not be applied");
    }
}

async fn try_apply_early_uploads(app: &App, commit_id: i64) -> Result<(), SubmitError> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT repository_id, sha::text FROM commits WHERE id = $1")
            .bind(commit_id)
            .fetch_optional(&app.db)
            .await?;
    let Some((repository_id, sha)) = row else {
        return Ok(());
    };
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM coverage_uploads WHERE repository_id = $1 AND commit_sha = $2::citext \
         AND applied_at IS NULL AND expires_at > now()",
    )
    .bind(repository_id)
    .bind(&sha)
    .fetch_one(&app.db)
    .await?;
    if held == 0 {
        return Ok(());
    }
    let Some(repository) = repositories::find(&app.db, repository_id).await? else {
        return Ok(());
    };
    let tree = Arc::new(tree::read_tree(app, repository_id, &sha).await?);
    apply(
        app,
        &repository,
        commit_id,
        &sha.to_ascii_lowercase(),
        &tree,
        None,
    )
    .await?;
    Ok(())
}

/// Deletes held uploads past their expiry; returns how many. Holding and applying also do it,
/// so this is for a periodic sweep.
pub async fn expire_early_uploads(app: &App) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM coverage_uploads WHERE expires_at <= now()")
            .execute(&app.db)
            .await?
            .rows_affected(),
    )
}

type Steps = (Vec<(Mode, CommitCoverage)>, Vec<String>);

/// Decodes and maps held uploads: each usable one as (mode, files by repository path) in
/// order, and the report paths that matched nothing.
fn map_held(held: &[HeldRow], tree: &CommitTree, budget: &Budget) -> Result<Steps, OverBudget> {
    let mut steps = Vec::new();
    let mut unmatched = Vec::new();
    for row in held {
        let mode = Mode::parse(&row.mode).unwrap_or_default();
        match Upload::from_held_json(&row.data, mode) {
            Ok(upload) => {
                let mapping = upload.map(&tree.files, &tree.go_modules, budget)?;
                unmatched.extend(mapping.unmatched.iter().cloned());
                if !mapping.matched.is_empty() {
                    steps.push((mode, upload.remap(&mapping)));
                }
            }
            Err(e) => tracing::warn!(upload = row.id, error = %e, "held upload unreadable"),
        }
    }
    Ok((steps, unmatched))
}

struct Applied {
    excluded: usize,
    commit: Option<Numbers>,
}

#[derive(sqlx::FromRow)]
struct HeldRow {
    id: i64,
    mode: String,
    data: serde_json::Value,
}

/// Under the commit's lock: the held uploads in arrival order, then `new`, combined and stored;
/// then the gate and the badges.
async fn apply(
    app: &App,
    repository: &Repository,
    commit_id: i64,
    sha: &str,
    tree: &Arc<CommitTree>,
    new: Option<(&Upload, &Mapping)>,
) -> Result<Applied, SubmitError> {
    let manifest = parse_manifest(tree);
    let mut tx = app.db.begin().await?;
    store::lock(&mut tx, repository.id, sha).await?;
    let held: Vec<HeldRow> = sqlx::query_as(
        "SELECT id, mode, data FROM coverage_uploads WHERE repository_id = $1 \
         AND commit_sha = $2::citext AND applied_at IS NULL AND expires_at > now() \
         ORDER BY received_at, id",
    )
    .bind(repository.id)
    .bind(sha)
    .fetch_all(&mut *tx)
    .await?;

    let ids: Vec<i64> = held.iter().map(|r| r.id).collect();
    // Each usable upload as (mode, files by repository path), in order.
    let (mut steps, mut unmatched) = if held.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let tree = tree.clone();
        budget::run(app.config.coverage.processing_time_limit(), move |b| {
            map_held(&held, &tree, b)
        })
        .await??
    };
    if let Some((upload, mapping)) = new {
        steps.push((upload.mode, upload.remap(mapping)));
    }
    sqlx::query("DELETE FROM coverage_uploads WHERE id = ANY($1) OR expires_at <= now()")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;

    if steps.is_empty() {
        // Held uploads only, and none matched: say so on the commit instead of dropping them.
        unmatched.truncate(MAX_NAMED_PATHS);
        let reason = format!(
            "no file of the held coverage upload(s) matched a file of the commit: {}",
            unmatched.join(", ")
        );
        store::mark_errored(&mut tx, commit_id, &reason).await?;
        tx.commit().await?;
        let url = target_url(app, repository, sha);
        statuses::set(
            app,
            commit_id,
            Context::Coverage,
            State::Error,
            "Coverage report matched no file of this commit",
            url.as_deref(),
        )
        .await
        .map_err(SubmitError::Status)?;
        return Ok(Applied {
            excluded: 0,
            commit: None,
        });
    }

    // A replace discards everything before it, stored coverage included.
    let start = steps
        .iter()
        .rposition(|(mode, _)| *mode == Mode::Replace)
        .unwrap_or(0);
    let replace = steps[start].0 == Mode::Replace;
    let mut files = CommitCoverage::new();
    for (_, step) in &steps[start..] {
        merge_into(&mut files, step);
    }
    let excluded = exclude(&mut files, manifest.as_ref());
    let minimum = manifest.as_ref().and_then(Manifest::min_percent);
    let saved = store::save(&mut tx, commit_id, files, replace, minimum).await?;
    tx.commit().await?;
    after_save(app, repository, commit_id, sha, &saved, manifest.as_ref()).await;
    let file_count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM coverage_files f JOIN coverage_infos i ON i.id = f.coverage_info_id \
         WHERE i.commit_id = $1",
    )
    .bind(commit_id)
    .fetch_one(&app.db)
    .await?;
    Ok(Applied {
        excluded,
        commit: Some(commit_numbers(file_count, &saved.totals)),
    })
}

fn commit_numbers(files: i64, t: &CommitTotals) -> Numbers {
    Numbers {
        files: usize::try_from(files).unwrap_or(0),
        lines_total: u64::try_from(t.lines_total).unwrap_or(0),
        lines_covered: u64::try_from(t.lines_covered).unwrap_or(0),
        percent_covered: t.percent_covered,
    }
}

/// The UI page of a commit's coverage (the statuses' target).
fn target_url(app: &App, repository: &Repository, sha: &str) -> Option<String> {
    statuses::target_url(
        &app.config.server.ui_base_url,
        &repository.name,
        sha,
        statuses::Page::Coverage,
    )
}

/// The gate status and badge refresh once the coverage is committed. Failures are logged: the
/// coverage itself is stored, and the status can be recomputed by the next upload.
async fn after_save(
    app: &App,
    repository: &Repository,
    commit_id: i64,
    sha: &str,
    saved: &Saved,
    manifest: Option<&Manifest>,
) {
    if let Some((state, description)) = gate::status(saved.totals.percent_covered, manifest) {
        let url = target_url(app, repository, sha);
        if let Err(e) = statuses::set(
            app,
            commit_id,
            Context::Coverage,
            state,
            &description,
            url.as_deref(),
        )
        .await
        {
            tracing::warn!(commit_id, error = %e, "coverage status not recorded");
        }
    }
    for branch in &saved.branches {
        crate::badges::invalidate(app, repository.id, &repository.name, Some(&branch.name)).await;
    }
}
