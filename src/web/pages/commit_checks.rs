//! `/repos/{repo}/commits/{sha}/checks`: each check's state, how long it ran and what it found,
//! the error output of failed ones, the set's failure, and cancel / re-run as forms. While the
//! set runs, the list (`#live-checks`, `data-live`) is refreshed by `app.js` every few seconds;
//! without JavaScript the page is complete and a reload shows progress.

use askama::Template;
use time::OffsetDateTime;
use warp::reply::Response;

use super::commit::{self, CommitHead};
use crate::checks::{self, Check, CheckSetStatus, CheckStatus, ChecksError};
use crate::memberships::Level;
use crate::repositories::Repository;
use crate::web::page::{self, Chrome, PageError};
use crate::web::{Req, Session};

struct CheckRow {
    plugin: String,
    /// `completed`, `errored`, `in_progress`, `waiting` or `canceled` (the icon's class).
    status: &'static str,
    /// The status in words (never shown by colour or icon alone).
    label: &'static str,
    timing: String,
    issues: String,
    error_output: Option<String>,
}

#[derive(Template)]
#[template(path = "commit_checks.html")]
struct ChecksPage {
    chrome: Chrome,
    repo: Repository,
    head: CommitHead,
    status: String,
    /// `status` as a CSS class suffix.
    status_class: &'static str,
    running: bool,
    canceling: bool,
    failure: Option<(String, Option<String>)>,
    checks: Vec<CheckRow>,
    can_cancel: bool,
    can_rerun: bool,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
}

pub async fn get(req: &Req, name: &str, sha: &str) -> Result<Response, PageError> {
    let session = req.session().await?;
    let notice = match req.query("notice") {
        Some("rerun") => Some("The checks were queued again."),
        Some("canceled") => Some("The checks are being canceled."),
        _ => None,
    };
    let problem = match req.query("problem") {
        Some("running") => {
            Some("The checks are still running: cancel them or wait before re-running.")
        }
        Some("not_ingested") => {
            Some("This commit has not been fetched yet, so its checks cannot run.")
        }
        Some("no_checks") => Some("This commit has no checks."),
        _ => None,
    };
    page::render(&gather(req, &session, name, sha, notice, problem).await?)
}

async fn gather(
    req: &Req,
    session: &Session,
    name: &str,
    sha: &str,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
) -> Result<ChecksPage, PageError> {
    let (repo, commit) = commit::load(req, session, name, sha).await?;
    let pool = &req.app.db;
    let set = checks::find_set_for_commit(pool, commit.id).await?;
    let rows = match &set {
        Some(set) => checks::list_checks(pool, set.id).await?,
        None => Vec::new(),
    };
    let counts = crate::issues::counts_by_source_all(pool, commit.id).await?;
    let now = OffsetDateTime::now_utc();
    let status = set.as_ref().map_or(CheckSetStatus::Waiting, |s| s.status());
    let checks = rows
        .into_iter()
        .map(|check| {
            let found = counts.get(&check.plugin_name).copied().unwrap_or(0);
            row(check, found, now)
        })
        .collect();
    let finished = set.as_ref().is_some_and(|s| s.status().is_finished());
    let is_maintainer = commit::has_level(req, session, &repo, Level::Maintain).await?;
    Ok(ChecksPage {
        chrome: session.chrome(format!("Checks · {}", repo.name), "repositories"),
        head: CommitHead::new(&repo, &commit, "checks"),
        repo,
        status: status.as_str().replace('_', " "),
        status_class: status.as_str(),
        running: set.is_some() && !finished,
        // The flag stays set once the set is canceled: "canceled (canceling)" says nothing.
        canceling: !finished && set.as_ref().is_some_and(|s| s.canceling),
        failure: set
            .as_ref()
            .filter(|s| s.status() == CheckSetStatus::Failure)
            .map(|s| {
                (
                    failure_text(s.error_kind.as_deref().unwrap_or("")),
                    s.error_extra.clone(),
                )
            }),
        checks,
        // As the API: cancelling stops others' work (maintainers); any member may re-run.
        can_cancel: set.is_some() && !finished && is_maintainer,
        can_rerun: finished,
        notice,
        problem,
    })
}

fn row(check: Check, issues: i64, now: OffsetDateTime) -> CheckRow {
    let status = check.status();
    let (status, label, verb) = match status {
        CheckStatus::Completed => ("completed", "Completed", "Completed in"),
        CheckStatus::Errored => ("errored", "Failed", "Failed after"),
        CheckStatus::InProgress => ("in_progress", "Running", "Running for"),
        CheckStatus::Canceled => ("canceled", "Canceled", "Canceled after"),
        CheckStatus::Waiting => ("waiting", "Waiting", "Waiting"),
    };
    let timing = match (check.started_at, check.finished_at) {
        (Some(start), Some(end)) => format!("{verb} {}", duration(end - start)),
        (Some(start), None) if status == "in_progress" => {
            format!("{verb} {}", duration(now - start))
        }
        _ => verb.to_string(),
    };
    let issues = match (status, issues) {
        ("completed", 0) => "No issues reported.".to_string(),
        ("completed", 1) => "1 issue reported.".to_string(),
        ("completed", n) => format!("{n} issues reported."),
        _ => String::new(),
    };
    CheckRow {
        plugin: check.plugin_name,
        status,
        label,
        timing,
        issues,
        error_output: check.error_output.filter(|o| !o.trim().is_empty()),
    }
}

fn duration(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    match s {
        0 => "less than a second".to_string(),
        1..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The set's failure in words (the original's explanations, by `error_kind`).
fn failure_text(kind: &str) -> String {
    match kind {
        "commit_fetch_failed" => "The commit could not be fetched from its repository.",
        "manifest_root_must_be_mapping" => "The .cocov.yaml file must be a mapping at its root.",
        "manifest_missing_version" => "The .cocov.yaml file has no version.",
        "manifest_version_type_mismatch" => "The version in .cocov.yaml must be a string.",
        "manifest_version_unsupported" => "The version in .cocov.yaml is not supported.",
        "manifest_unknown_secret" => "The .cocov.yaml file names a secret that does not exist.",
        "manifest_duplicated_mount_destination" => {
            "Two mounts in .cocov.yaml have the same destination."
        }
        "manifest_invalid_mount_source" => "A mount source in .cocov.yaml is not valid.",
        "manifest_invalid_or_missing_data" => "The .cocov.yaml file is invalid or misses data.",
        "" => "The checks could not run.",
        other => return format!("The checks could not run ({}).", other.replace('_', " ")),
    }
    .to_string()
}

/// `action=cancel` (maintainers) or `action=rerun` (members), then back to the page.
pub async fn post(req: &Req, name: &str, sha: &str) -> Result<Response, PageError> {
    let session = req.session().await?;
    let form = req.form(&session)?;
    let (repo, commit) = commit::load(req, &session, name, sha).await?;
    let back = format!("/repos/{}/commits/{}/checks", repo.name, commit.sha);
    let outcome = match form.get("action") {
        Some("cancel") => {
            commit::require_level(req, &session, &repo, Level::Maintain).await?;
            checks::cancel(&req.app, commit.id)
                .await
                .map(|()| "notice=canceled")
        }
        Some("rerun") => checks::rerun(&req.app, commit.id)
            .await
            .map(|()| "notice=rerun"),
        _ => return Err(PageError::BadRequest("Unknown action")),
    };
    let query = match outcome {
        Ok(q) => q,
        Err(ChecksError::StillRunning) => "problem=running",
        Err(ChecksError::NotIngested) => "problem=not_ingested",
        Err(ChecksError::NoCheckSet) => "problem=no_checks",
        Err(ChecksError::Internal(e)) => return Err(PageError::Internal(e)),
    };
    Ok(page::see_other(&format!("{back}?{query}")))
}
