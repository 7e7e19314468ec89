//! The background jobs this appliance runs and their wiring to the queue: each kind with its
//! handler, and the chaining of one stage to the next where a job's end starts more work
//! ([`after_ingest`]).

mod after_ingest;
mod follow_up;

pub use after_ingest::{AfterIngest, after_ingest};
pub use follow_up::{FollowUp, resume};

use std::sync::Arc;

use crate::app::App;
use crate::metrics::QueueLabels;
use crate::queue::Registry;
use crate::{checks, commits, org_repos, permissions, repositories, statuses, webhooks};

/// Every job kind with its handler. Each handler is idempotent: the queue delivers at least once.
pub fn registry(app: &App) -> Registry {
    Registry::new()
        .with(
            commits::INGEST_JOB,
            Arc::new(commits::Ingest {
                app: app.clone(),
                follow_up: Arc::new(AfterIngest),
            }),
        )
        .with(commits::FOLLOW_UP_JOB, Arc::new(FollowUp(app.clone())))
        .with(checks::RUN_JOB, Arc::new(checks::RunChecks(app.clone())))
        .with(
            repositories::DELETE_JOB,
            Arc::new(repositories::DeleteRepository(app.clone())),
        )
        .with(
            statuses::POST_JOB,
            Arc::new(statuses::PostStatus(app.clone())),
        )
        .with(
            webhooks::INITIALIZE_JOB,
            Arc::new(webhooks::Initialize(app.clone())),
        )
        .with(
            statuses::ANNOUNCE_JOB,
            Arc::new(statuses::AnnounceStatuses(app.clone())),
        )
        .with(
            permissions::SYNC_REPOSITORY_JOB,
            Arc::new(permissions::SyncRepository(app.clone())),
        )
        .with(
            permissions::SYNC_ALL_JOB,
            Arc::new(permissions::SyncAll(app.clone())),
        )
        .with(
            org_repos::REFRESH_JOB,
            Arc::new(org_repos::RefreshOrgList(app.clone())),
        )
}

/// Copies the queue's depth by state and its outcome counters into the metrics gauges.
pub async fn refresh_metrics(app: &App) {
    let queue = app.queue.name().to_string();
    match app.queue.stats().await {
        Ok(stats) => {
            for (state, value) in [
                ("waiting", stats.waiting),
                ("in_progress", stats.in_progress),
                ("delayed", stats.delayed),
                ("dead", stats.dead),
            ] {
                app.metrics
                    .queue_jobs
                    .get_or_create(&QueueLabels {
                        queue: queue.clone(),
                        state,
                    })
                    .set(value as i64);
            }
        }
        Err(e) => tracing::debug!(error = %e, "queue stats unavailable"),
    }
    let counts = app.queue.outcome_counts();
    for (outcome, value) in [
        ("completed", counts.completed),
        ("retried", counts.retried),
        ("dead_lettered", counts.dead_lettered),
        ("handed_back", counts.handed_back),
        ("reclaimed", counts.reclaimed),
    ] {
        app.metrics
            .job_outcomes
            .get_or_create(&QueueLabels {
                queue: queue.clone(),
                state: outcome,
            })
            .set(value as i64);
    }
}
