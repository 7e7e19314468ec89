//! The work PostgreSQL says is pending, as the jobs that do it, and the identity that tells
//! whether the queue already holds a job for the same piece of work.
//!
//! Rows changed within `reconcile.settle_seconds` are left out: the request or job that changed
//! them may be about to queue their job (it commits to PostgreSQL first, then queues).

use serde_json::Value;

use crate::app::App;
use crate::checks::RunJob;
use crate::commits::{FollowUpJob, IngestJob};
use crate::queue::Job;
use crate::repositories::DeleteJob;
use crate::statuses::PostJob;
use crate::{checks, commits, repositories, statuses};

/// The payload fields that name the piece of work a job does, per job kind. Two jobs with the
/// same kind and the same values do the same work.
const IDENTITY: &[(&str, &[&str])] = &[
    (commits::INGEST_JOB, &["commit_id"]),
    (commits::FOLLOW_UP_JOB, &["commit_id"]),
    (checks::RUN_JOB, &["check_set_id"]),
    (statuses::POST_JOB, &["commit_id", "context"]),
    (repositories::DELETE_JOB, &["repository_id"]),
];

/// `kind:value:value…` for the kinds the reconciler queues; `None` for the others.
pub fn identity(kind: &str, payload: &Value) -> Option<String> {
    let (_, fields) = IDENTITY.iter().find(|(k, _)| *k == kind)?;
    let mut id = kind.to_string();
    for field in *fields {
        id.push(':');
        id.push_str(&payload.get(field)?.to_string());
    }
    Some(id)
}

/// Every pending piece of work, as the job that does it.
pub(super) async fn find(app: &App) -> Result<Vec<Job>, sqlx::Error> {
    let settle = app.config.reconcile.settle_seconds as f64;
    let mut jobs = Vec::new();
    // Commits announced but not ingested (queued, or an ingestion that died).
    let ids = ids_settled(
        app,
        "SELECT id FROM commits WHERE ingest_status IN ('queued', 'in_progress') \
         AND updated_at < now() - make_interval(secs => $1) ORDER BY id",
    )
    .await?;
    jobs.extend(
        ids.into_iter()
            .map(|commit_id| Job::of(&IngestJob { commit_id })),
    );

    // Ingested commits whose follow-up steps did not all run: no check set (so no statuses
    // announced either: they come first), or coverage still held for them.
    let ids = ids_settled(
        app,
        "SELECT c.id FROM commits c \
         WHERE c.ingest_status = 'completed' AND c.updated_at < now() - make_interval(secs => $1) \
           AND NOT EXISTS (SELECT 1 FROM check_sets s WHERE s.commit_id = c.id) \
         UNION \
         SELECT c.id FROM coverage_uploads u \
         JOIN commits c ON c.repository_id = u.repository_id AND c.sha = u.commit_sha \
         WHERE u.applied_at IS NULL AND u.expires_at > now() \
           AND u.received_at < now() - make_interval(secs => $1) \
           AND c.ingest_status = 'completed' AND c.updated_at < now() - make_interval(secs => $1) \
         ORDER BY 1",
    )
    .await?;
    jobs.extend(
        ids.into_iter()
            .map(|commit_id| Job::of(&FollowUpJob { commit_id })),
    );

    // Check sets waiting for, or in the middle of, their run; and finished ones whose result
    // was never announced (the `cocov` status still pending): their job announces it.
    let sets: Vec<(i64, uuid::Uuid)> = sqlx::query_as(
        "SELECT id, job_id FROM check_sets \
         WHERE status IN ('waiting', 'queued', 'in_progress') AND job_id IS NOT NULL \
           AND updated_at < now() - make_interval(secs => $1) \
         UNION \
         SELECT s.id, s.job_id FROM commit_statuses cs \
         JOIN check_sets s ON s.commit_id = cs.commit_id \
         WHERE cs.state = 'pending' AND cs.context = 'cocov' AND s.job_id IS NOT NULL \
           AND s.status NOT IN ('waiting', 'queued', 'in_progress') \
           AND s.updated_at < now() - make_interval(secs => $1) \
         ORDER BY 1",
    )
    .bind(settle)
    .fetch_all(&app.db)
    .await?;
    jobs.extend(sets.into_iter().map(|(check_set_id, job_id)| {
        Job::of(&RunJob {
            check_set_id,
            job_id,
        })
    }));

    // Statuses not posted to GitHub yet (standalone repositories have nowhere to post).
    if app.github.is_some() {
        let unposted: Vec<(i64, String)> = sqlx::query_as(
            "SELECT s.commit_id, s.context FROM commit_statuses s \
             JOIN commits c ON c.id = s.commit_id \
             JOIN repositories r ON r.id = c.repository_id \
             WHERE r.github_id IS NOT NULL \
               AND (s.posted_version IS NULL OR s.posted_version < s.version) \
               AND (s.post_failed_version IS NULL OR s.post_failed_version < s.version) \
               AND s.updated_at < now() - make_interval(secs => $1) \
             ORDER BY s.commit_id, s.context",
        )
        .bind(settle)
        .fetch_all(&app.db)
        .await?;
        jobs.extend(
            unposted
                .into_iter()
                .map(|(commit_id, context)| Job::of(&PostJob { commit_id, context })),
        );
    }

    // Repositories whose deletion was asked for and is not done.
    let ids = ids_settled(
        app,
        "SELECT id FROM repositories WHERE deletion_requested_at IS NOT NULL \
         AND deletion_requested_at < now() - make_interval(secs => $1) ORDER BY id",
    )
    .await?;
    jobs.extend(
        ids.into_iter()
            .map(|repository_id| Job::of(&DeleteJob { repository_id })),
    );
    Ok(jobs)
}

/// The ids `sql` selects, `$1` being `reconcile.settle_seconds`.
async fn ids_settled(app: &App, sql: &'static str) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(sql)
        .bind(app.config.reconcile.settle_seconds as f64)
        .fetch_all(&app.db)
        .await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn identity_names_the_work_not_the_run() {
        let run = |job_id: &str| json!({"check_set_id": 7, "job_id": job_id});
        assert_eq!(
            identity(checks::RUN_JOB, &run("a")),
            identity(checks::RUN_JOB, &run("b"))
        );
        assert_eq!(
            identity(
                statuses::POST_JOB,
                &json!({"commit_id": 3, "context": "cocov"})
            )
            .as_deref(),
            Some("status.post:3:\"cocov\"")
        );
        assert_ne!(
            identity(commits::INGEST_JOB, &json!({"commit_id": 3})),
            identity(commits::FOLLOW_UP_JOB, &json!({"commit_id": 3}))
        );
        assert_eq!(identity("permissions.sync_all", &json!({})), None);
        assert_eq!(identity(commits::INGEST_JOB, &json!({})), None);
    }
}
