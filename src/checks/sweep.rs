//! Check sets past their deadline end `errored`, with their unfinished checks, so nothing stays
//! queued or in progress when a worker vanished for good or a run hangs.

use crate::app::App;
use crate::statuses::{self, Context, State};

pub async fn sweep_expired(app: &App) -> Result<u64, anyhow::Error> {
    let expired: Vec<(i64, i64)> = sqlx::query_as(
        "UPDATE check_sets SET status = 'errored', error_kind = 'deadline_exceeded', \
         error_extra = 'the checks did not finish before the deadline', \
         finished_at = now(), updated_at = now() \
         WHERE status IN ('waiting', 'queued', 'in_progress') AND deadline_at < now() \
         RETURNING id, commit_id",
    )
    .fetch_all(&app.db)
    .await?;
    for (set_id, commit_id) in &expired {
        sqlx::query(
            "UPDATE checks SET status = 'errored', \
             error_output = 'did not finish before the check set''s deadline', \
             started_at = COALESCE(started_at, now()), finished_at = now(), updated_at = now() \
             WHERE check_set_id = $1 AND status IN ('waiting', 'in_progress')",
        )
        .bind(set_id)
        .execute(&app.db)
        .await?;
        statuses::set(
            app,
            *commit_id,
            Context::Checks,
            State::Error,
            "Checks did not finish in time",
            None,
        )
        .await?;
        tracing::warn!(
            check_set_id = set_id,
            commit_id,
            "check set passed its deadline"
        );
    }
    Ok(expired.len() as u64)
}
