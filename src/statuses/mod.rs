//! Commit statuses: the `cocov` (checks) and `cocov/coverage` (gate) contexts. The desired state
//! is recorded in PostgreSQL and posted to GitHub by a retrying job; every pending status has a
//! deadline after which the sweeper ends it with a reason, so nothing stays pending.

mod announce;
mod post;
mod sweep;

pub use announce::{ANNOUNCE_JOB, AnnounceJob, AnnounceStatuses};
pub use post::{POST_JOB, PostJob, PostStatus};
pub use sweep::sweep_expired;

use std::time::Duration;

use serde::Serialize;

use crate::app::App;
use crate::manifest;
use crate::queue::JobKind;

/// Why a status could not be recorded or queued for posting. Not transparent: the cause stays
/// in the chain, where the HTTP edge recognises an outage.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("recording the status: {0}")]
    Db(#[from] sqlx::Error),
    #[error("queueing the status: {0}")]
    Queue(#[from] crate::queue::QueueError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Context {
    /// `cocov`: the checks of the commit.
    Checks,
    /// `cocov/coverage`: the coverage gate.
    Coverage,
}

impl Context {
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Checks => "cocov",
            Context::Coverage => "cocov/coverage",
        }
    }

    pub fn parse(s: &str) -> Option<Context> {
        match s {
            "cocov" => Some(Context::Checks),
            "cocov/coverage" => Some(Context::Coverage),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Success,
    Failure,
    Error,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Success => "success",
            State::Failure => "failure",
            State::Error => "error",
        }
    }
}

/// The web UI's page a status links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Checks,
    Issues,
    Coverage,
}

/// The one rule for a status's `target_url`: the commit's page under `server.ui_base_url`, or
/// none when no UI address is configured (GitHub wants an absolute URL or nothing).
pub fn target_url(ui_base_url: &str, repository: &str, sha: &str, page: Page) -> Option<String> {
    let base = ui_base_url.trim().trim_end_matches('/');
    if base.is_empty() {
        return None;
    }
    let page = match page {
        Page::Checks => "checks",
        Page::Issues => "issues",
        Page::Coverage => "coverage",
    };
    Some(format!("{base}/repos/{repository}/commits/{sha}/{page}"))
}

/// GitHub limits descriptions to 140 characters.
fn clamp(description: &str) -> String {
    manifest::truncate_status(description)
}

/// Whether `set` replaces an existing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Replace,
    /// Only when the context has no state yet: announcements never clobber a result.
    IfAbsent,
}

/// Records the state a context should show and queues its posting, and refreshes the badges of
/// the branches the commit heads. Setting the same state and description again posts nothing.
pub async fn set(
    app: &App,
    commit_id: i64,
    context: Context,
    state: State,
    description: &str,
    target_url: Option<&str>,
) -> Result<(), StatusError> {
    write(
        app,
        commit_id,
        context,
        state,
        description,
        target_url,
        Write::Replace,
    )
    .await?;
    // A result comes with new numbers for the commit (issues, coverage), written before the
    // status; the badges of the branches it heads must show them now, not after their TTL.
    crate::badges::invalidate_commit(app, commit_id).await;
    Ok(())
}

async fn write(
    app: &App,
    commit_id: i64,
    context: Context,
    state: State,
    description: &str,
    target_url: Option<&str>,
    mode: Write,
) -> Result<(), StatusError> {
    let deadline =
        (state == State::Pending).then(|| app.config.statuses.pending_deadline_seconds as f64);
    let on_conflict = match mode {
        Write::IfAbsent => "DO NOTHING",
        Write::Replace => {
            "DO UPDATE SET state = EXCLUDED.state, description = EXCLUDED.description, \
             target_url = EXCLUDED.target_url, deadline_at = EXCLUDED.deadline_at, \
             version = commit_statuses.version + 1 \
             WHERE (commit_statuses.state, commit_statuses.description, commit_statuses.target_url) \
             IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.description, EXCLUDED.target_url)"
        }
    };
    let sql = format!(
        "INSERT INTO commit_statuses (commit_id, context, state, description, target_url, deadline_at) \
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) \
         ON CONFLICT (commit_id, context) {on_conflict} RETURNING version"
    );
    let version: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(commit_id)
        .bind(context.as_str())
        .bind(state.as_str())
        .bind(clamp(description))
        .bind(target_url)
        .bind(deadline)
        .fetch_optional(&app.db)
        .await?;
    if version.is_some() {
        PostJob {
            commit_id,
            context: context.as_str().to_string(),
        }
        .enqueue(&app.queue)
        .await?;
    }
    Ok(())
}

/// The pending statuses a commit's manifest calls for: `cocov` when it names checks (or an
/// error naming the problem when it is invalid), `cocov/coverage` when it sets a gate. No
/// manifest: nothing, as in the original.
pub async fn announce_from_manifest(
    app: &App,
    commit_id: i64,
    manifest: &manifest::ManifestFile,
) -> Result<(), StatusError> {
    let Some(parsed) = &manifest.parsed else {
        return Ok(());
    };
    match parsed {
        Ok(m) => {
            let (state, text) = if m.checks.is_empty() {
                (State::Success, "Looking good!")
            } else {
                (State::Pending, "Checks are running...")
            };
            write(
                app,
                commit_id,
                Context::Checks,
                state,
                text,
                None,
                Write::IfAbsent,
            )
            .await?;
            if m.min_percent().is_some() {
                let text = "Waiting for coverage...";
                write(
                    app,
                    commit_id,
                    Context::Coverage,
                    State::Pending,
                    text,
                    None,
                    Write::IfAbsent,
                )
                .await?;
            }
        }
        Err(e) => {
            let text = e.status_description_with_location();
            write(
                app,
                commit_id,
                Context::Checks,
                State::Error,
                &text,
                None,
                Write::IfAbsent,
            )
            .await?;
        }
    }
    Ok(())
}

/// How often the worker role looks for expired pending statuses: often enough that a status ends
/// close to its deadline, at most every 30 s.
pub fn sweep_interval(app: &App) -> Duration {
    Duration::from_secs(app.config.statuses.pending_deadline_seconds / 2)
        .clamp(Duration::from_secs(1), Duration::from_secs(30))
}
