//! The reconciler: PostgreSQL is the source of truth for work, Redis only carries it. A pass
//! finds every piece of work PostgreSQL says is pending ([`pending`]) that no queue holds (not
//! waiting, running or waiting for a retry) and queues it again. Every job handler is idempotent
//! and checks the row's state first, so a job queued twice does the work once.
//!
//! When a pass runs, on every worker host ([`run`]): at start-up; every
//! `reconcile.period_seconds`; at once when Redis lost its data, seen as the sentinel key a pass
//! writes going missing ([`sentinel`], checked every `reconcile.sentinel_check_seconds`: a
//! restart without persistence, `FLUSHALL`, a failover to an empty replica); and when Redis
//! answers again after an outage (it may have come back from an older snapshot, and whatever
//! was announced meanwhile was refused by Redis but recorded in PostgreSQL).
//!
//! Leader election: one pass at a time across hosts, through a PostgreSQL transaction-level
//! advisory lock (`pg_try_advisory_xact_lock`), not a Redis lock. Redis is the thing that may
//! have lost its data: a Redis lock would vanish with it and could let two passes overlap right
//! when a pass matters most. The advisory lock lives in the same database as the rows the pass
//! reads, is released by PostgreSQL when the transaction ends or its connection dies (a host
//! killed mid-pass blocks nobody), and needs no expiry to tune. A host that does not get the lock
//! skips the pass: another host is doing it.

mod pending;
mod sentinel;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::app::App;
use crate::queue::QueueError;

pub use pending::identity;

/// The advisory lock key of the reconciler ("cocovrec" in ASCII): one pass at a time per
/// database.
const LOCK_KEY: i64 = 0x636f_636f_7672_6563;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    // Not transparent: the cause chain is what tells an outage from a bug in the logs.
    #[error("PostgreSQL: {0}")]
    Db(#[from] sqlx::Error),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Pending work found in PostgreSQL.
    pub pending: usize,
    /// Of which the queue held a job for already.
    pub already_queued: usize,
    /// Jobs queued again, by kind.
    pub requeued: BTreeMap<String, usize>,
}

impl Report {
    pub fn requeued_total(&self) -> usize {
        self.requeued.values().sum()
    }
}

/// One pass, if this host gets the leader lock (`None`: another host holds it and is passing).
pub async fn reconcile_once(app: &App) -> Result<Option<Report>, ReconcileError> {
    let mut lock = app.db.begin().await?;
    let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *lock)
        .await?;
    if !leader {
        return Ok(None);
    }
    // First, so Redis losing its data during this pass is noticed by the next sentinel check.
    sentinel::write(app).await?;
    // PostgreSQL before Redis: a job that finishes between the two reads is queued again and
    // finds nothing to do; the other order could miss a job that is being queued.
    let wanted = pending::find(app).await?;
    let held: HashSet<String> = app
        .queue
        .held_jobs()
        .await?
        .iter()
        .filter_map(|job| identity(&job.kind, &job.payload))
        .collect();
    let mut report = Report {
        pending: wanted.len(),
        ..Report::default()
    };
    for job in wanted {
        if identity(&job.kind, &job.payload).is_some_and(|id| held.contains(&id)) {
            report.already_queued += 1;
            continue;
        }
        app.queue.enqueue(&job.kind, job.payload).await?;
        *report.requeued.entry(job.kind).or_default() += 1;
    }
    // Under the same lock, so one host at a time lists the store. A failure here is the
    // store's, not the pass's: logged, and the next pass tries again.
    if let Err(e) = crate::cache::sweep::sweep_orphans(app).await {
        tracing::warn!(error = %e, "cache sweep failed");
    }
    // Ends the transaction, releasing the lock.
    lock.commit().await?;
    Ok(Some(report))
}

const PERIODIC: &str = "periodic";

/// Runs passes until shutdown: at start-up, periodically, when the sentinel is missing, and when
/// Redis answers again after failing.
pub async fn run(app: App, mut shutdown: watch::Receiver<bool>) {
    let config = app.config.reconcile.clone();
    let period = Duration::from_secs(config.period_seconds.max(1));
    let tick = Duration::from_secs(config.sentinel_check_seconds.max(1));
    // After a pass an event triggered, another one as soon as the rows it had to leave alone
    // (changed within the settle time, e.g. announced while Redis was down) have settled.
    let settled = Duration::from_secs(config.settle_seconds) + tick;
    let mut due: Option<&'static str> = Some("start-up");
    let mut next_periodic = Instant::now() + period;
    let mut redis_down = false;
    loop {
        match sentinel::present(&app).await {
            Ok(present) => {
                if !present {
                    due = due.or(Some("Redis lost its data (the sentinel key is missing)"));
                } else if redis_down {
                    due = due.or(Some("Redis answers again"));
                }
                redis_down = false;
            }
            Err(e) => {
                if !redis_down {
                    tracing::warn!(error = %e, "reconciler: Redis is unreachable; a pass runs once it is back");
                }
                redis_down = true;
            }
        }
        if Instant::now() >= next_periodic {
            due = due.or(Some(PERIODIC));
        }
        if let Some(why) = due.filter(|_| !redis_down) {
            match reconcile_once(&app).await {
                Ok(report) => {
                    log_pass(why, report.as_ref());
                    due = None;
                    let next = if why == PERIODIC {
                        period
                    } else {
                        period.min(settled)
                    };
                    next_periodic = Instant::now() + next;
                }
                // Kept due: tried again on the next tick.
                Err(e) => {
                    tracing::warn!(reason = why, error = %e, "reconcile pass failed; retrying")
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn log_pass(why: &str, report: Option<&Report>) {
    match report {
        None => tracing::debug!(
            reason = why,
            "reconcile pass skipped: another host is running one"
        ),
        Some(r) if r.requeued_total() > 0 => tracing::warn!(
            reason = why,
            pending = r.pending,
            already_queued = r.already_queued,
            requeued = ?r.requeued,
            "reconciler queued again work that no queue held"
        ),
        Some(r) => tracing::debug!(
            reason = why,
            pending = r.pending,
            "reconcile pass: nothing missing"
        ),
    }
}
