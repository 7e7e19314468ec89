//! Ending pending statuses whose deadline passed, with a reason. Safe to run on every host at
//! once: the UPDATE takes each row exactly once.

use super::PostJob;
use crate::app::App;
use crate::queue::JobKind;

pub async fn sweep_expired(app: &App) -> Result<u64, super::StatusError> {
    let minutes = app.config.statuses.pending_deadline_seconds.div_ceil(60);
    let expired: Vec<(i64, String)> = sqlx::query_as(
        "UPDATE commit_statuses SET state = 'error', deadline_at = NULL, version = version + 1, \
           description = $1 \
         WHERE state = 'pending' AND deadline_at < now() RETURNING commit_id, context",
    )
    .bind(format!("Timed out: no result within {minutes} minutes"))
    .fetch_all(&app.db)
    .await?;
    for (commit_id, context) in expired.iter().cloned() {
        PostJob { commit_id, context }.enqueue(&app.queue).await?;
    }
    if !expired.is_empty() {
        tracing::warn!(count = expired.len(), "pending statuses timed out");
    }
    Ok(expired.len() as u64)
}
