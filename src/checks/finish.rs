//! Ending a check set: its final state from its checks, the commit's issue count, the branch
//! history, and the `cocov` status.

use crate::app::App;
use crate::commits::{CommitNumber, record_commit_number};
use crate::statuses::{self, Context, State};

use super::model::{CheckSetStatus, CheckStatus, find_set, list_checks};

/// Ends the set once; later calls (a second worker, the sweeper) change nothing, except that a
/// set ended by a run that stopped before announcing it (a crash between the two) gets its
/// `cocov` status now. Checks still unfinished end `canceled` when the set was canceled, else
/// `errored`.
pub async fn finish(app: &App, check_set_id: i64) -> Result<(), anyhow::Error> {
    let Some(set) = find_set(&app.db, check_set_id).await? else {
        return Ok(());
    };
    if set.status().is_finished() {
        if !checks_status_pending(app, set.commit_id).await? {
            return Ok(());
        }
    } else if !end(app, &set).await? {
        // Another caller ended it meanwhile and announces it.
        return Ok(());
    }
    announce(app, check_set_id).await
}

/// Ends the checks still open and the set, and stores the commit's issue count, in one
/// transaction: a completed set always has its count. False when the set was already ended.
async fn end(app: &App, set: &super::CheckSet) -> Result<bool, anyhow::Error> {
    let (leftover, leftover_output) = if set.canceling {
        ("canceled", None)
    } else {
        ("errored", Some("the check set ended before this check ran"))
    };
    let mut tx = app.db.begin().await?;
    sqlx::query(
        "UPDATE checks SET status = $2, error_output = $3, updated_at = now(), \
         started_at = COALESCE(started_at, now()), finished_at = now() \
         WHERE check_set_id = $1 AND status IN ('waiting', 'in_progress')",
    )
    .bind(set.id)
    .bind(leftover)
    .bind(leftover_output)
    .execute(&mut *tx)
    .await?;
    let checks = list_checks(&mut *tx, set.id).await?;
    let status = if set.canceling {
        "canceled"
    } else if checks.iter().any(|c| c.status() == CheckStatus::Errored) {
        "errored"
    } else {
        "completed"
    };
    let ended = sqlx::query(
        "UPDATE check_sets SET status = $2, finished_at = now(), updated_at = now() \
         WHERE id = $1 AND status IN ('waiting', 'queued', 'in_progress')",
    )
    .bind(set.id)
    .bind(status)
    .execute(&mut *tx)
    .await?;
    if ended.rows_affected() == 0 {
        return Ok(false);
    }
    if status == "completed" {
        store_issue_count(&mut tx, set.commit_id).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Whether the commit's `cocov` status still waits for the set's result.
async fn checks_status_pending(app: &App, commit_id: i64) -> Result<bool, anyhow::Error> {
    let pending: Option<bool> = sqlx::query_scalar(
        "SELECT state = 'pending' FROM commit_statuses WHERE commit_id = $1 AND context = $2",
    )
    .bind(commit_id)
    .bind(Context::Checks.as_str())
    .fetch_optional(&app.db)
    .await?;
    Ok(pending == Some(true))
}

/// The `cocov` status of an ended set, derived from what is stored.
async fn announce(app: &App, check_set_id: i64) -> Result<(), anyhow::Error> {
    let Some(set) = find_set(&app.db, check_set_id).await? else {
        return Ok(());
    };
    let checks = list_checks(&app.db, check_set_id).await?;
    let errored: Vec<_> = checks
        .iter()
        .filter(|c| c.status() == CheckStatus::Errored)
        .collect();
    let status = set.status();
    let (state, description) = match status {
        CheckSetStatus::Canceled => (State::Failure, "Checks were canceled".to_string()),
        CheckSetStatus::Errored => (State::Error, errored_description(&errored)),
        CheckSetStatus::Completed => {
            let count: Option<i32> =
                sqlx::query_scalar("SELECT issues_count FROM commits WHERE id = $1")
                    .bind(set.commit_id)
                    .fetch_one(&app.db)
                    .await?;
            issue_count_status(i64::from(count.unwrap_or(0)))
        }
        // Ended elsewhere (manifest errors, not configured), with their own status.
        _ => return Ok(()),
    };
    let url = target_url(app, set.commit_id, status == CheckSetStatus::Completed).await?;
    statuses::set(
        app,
        set.commit_id,
        Context::Checks,
        state,
        &description,
        url.as_deref(),
    )
    .await?;
    tracing::info!(
        check_set_id,
        commit_id = set.commit_id,
        status = ?status,
        "check set finished"
    );
    Ok(())
}

fn errored_description(errored: &[&super::Check]) -> String {
    match errored {
        [one] => {
            let first_line = one
                .error_output
                .as_deref()
                .and_then(|o| o.lines().find(|l| !l.trim().is_empty()))
                .unwrap_or("no output");
            format!("{} errored: {first_line}", one.plugin_name)
        }
        many => format!("{} checks errored", many.len()),
    }
}

/// `success` "No issues found" or `failure` "N issues found".
pub fn issue_count_status(count: i64) -> (State, String) {
    match count {
        0 => (State::Success, "No issues found".into()),
        1 => (State::Failure, "1 issue found".into()),
        n => (State::Failure, format!("{n} issues found")),
    }
}

/// Stores the commit's active issue count on it and on the branches it heads, with a history
/// point per branch. Returns the count.
pub async fn refresh_issue_count(app: &App, commit_id: i64) -> Result<i64, anyhow::Error> {
    let mut tx = app.db.begin().await?;
    let count = store_issue_count(&mut tx, commit_id).await?;
    tx.commit().await?;
    Ok(count)
}

async fn store_issue_count(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    commit_id: i64,
) -> Result<i64, anyhow::Error> {
    let count = crate::issues::count_active(&mut **tx, commit_id).await?;
    record_commit_number(tx, commit_id, CommitNumber::Issues(count as i32)).await?;
    Ok(count)
}

/// Re-posts the `cocov` status after issues were ignored or made active again, when the set had
/// completed (an errored or canceled set keeps its status).
pub async fn refresh_status(app: &App, commit_id: i64) -> Result<(), anyhow::Error> {
    let completed: Option<bool> =
        sqlx::query_scalar("SELECT status = 'completed' FROM check_sets WHERE commit_id = $1")
            .bind(commit_id)
            .fetch_optional(&app.db)
            .await?;
    if completed != Some(true) {
        return Ok(());
    }
    let count = refresh_issue_count(app, commit_id).await?;
    let (state, description) = issue_count_status(count);
    let url = target_url(app, commit_id, true).await?;
    statuses::set(
        app,
        commit_id,
        Context::Checks,
        state,
        &description,
        url.as_deref(),
    )
    .await?;
    Ok(())
}

/// The web UI's page for the commit's issues (or its checks).
async fn target_url(
    app: &App,
    commit_id: i64,
    issues: bool,
) -> Result<Option<String>, anyhow::Error> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT r.name::text, c.sha::text FROM commits c JOIN repositories r \
         ON r.id = c.repository_id WHERE c.id = $1",
    )
    .bind(commit_id)
    .fetch_optional(&app.db)
    .await?;
    let page = if issues {
        statuses::Page::Issues
    } else {
        statuses::Page::Checks
    };
    Ok(row.and_then(|(name, sha)| {
        statuses::target_url(&app.config.server.ui_base_url, &name, &sha, page)
    }))
}
