//! The consumer: reads jobs, reclaims those of dead consumers, runs them with bounded
//! concurrency, promotes due retries, and shuts down gracefully.
//!
//! One task reads (`XREADGROUP … BLOCK` on the dedicated blocking connection) and reclaims
//! (`XAUTOCLAIM`), both only as many jobs as there are free concurrency slots; a second task
//! ([`super::maintenance`]) promotes due retries and forgets long-gone consumers; each job runs
//! in its own task supervised by [`super::running`], which heart-beats it and records its
//! outcome.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tracing::{info, warn};
use uuid::Uuid;

use super::backoff::ErrorBackoff;
use super::handler::Registry;
use super::running::{Delivery, supervise};
use super::stats::Outcome;
use super::{GROUP, Queue, QueueError};

/// Longest wait of one `XREADGROUP`; also bounds how late shutdown and reclaim are noticed.
const MAX_BLOCK: Duration = Duration::from_secs(2);
/// Extra time past BLOCK before a read counts as hung (dead TCP connection) and is abandoned.
const READ_SLACK: Duration = Duration::from_secs(10);
/// After the grace period: how long aborted jobs get to be handed back before `run` returns.
const HAND_BACK_BOUND: Duration = Duration::from_secs(15);

/// A worker process's membership in one queue's consumer group.
pub struct Consumer {
    queue: Queue,
    registry: Registry,
    name: String,
}

/// State shared by the loops and the job tasks of one running consumer.
pub(crate) struct Shared {
    pub(crate) queue: Queue,
    pub(crate) registry: Registry,
    pub(crate) name: String,
    pub(crate) permits: Arc<Semaphore>,
    total_permits: u32,
    /// Stream ids of the jobs running here, so a reclaim never starts a second copy of one.
    in_flight: Mutex<HashSet<String>>,
    /// Flipped when the grace period ends: running jobs are aborted and handed back.
    pub(crate) abort: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Consumer {
    /// A consumer named `<hostname>:<pid>:<8 hex>`, unique per process and run.
    pub fn new(queue: Queue, registry: Registry) -> Consumer {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        let short = Uuid::new_v4().simple().to_string()[..8].to_string();
        let name = format!("{host}:{}:{short}", std::process::id());
        Consumer {
            queue,
            registry,
            name,
        }
    }

    /// The consumer name used in the group (visible in `XINFO CONSUMERS`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs until `shutdown` becomes true (or its sender is dropped). Then stops taking jobs,
    /// lets running jobs finish for up to `grace`, aborts the rest and hands them back to the
    /// stream (same attempt: a shutdown is not the job's fault), and returns.
    ///
    /// Redis errors never end the loop: they are logged and retried with backoff, and a
    /// vanished stream or group is recreated. The only error returned is a connection that
    /// cannot even be configured.
    pub async fn run(
        self,
        mut shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) -> Result<(), QueueError> {
        let mut read_conn = self.queue.kv().blocking_queue_conn()?;
        let total_permits =
            u32::try_from(self.queue.config().concurrency.min(Semaphore::MAX_PERMITS))
                .unwrap_or(u32::MAX);
        let shared = Arc::new(Shared {
            permits: Arc::new(Semaphore::new(total_permits as usize)),
            total_permits,
            in_flight: Mutex::new(HashSet::new()),
            abort: watch::Sender::new(false),
            queue: self.queue,
            registry: self.registry,
            name: self.name,
        });
        info!(queue = shared.queue.name(), consumer = %shared.name, "job consumer started");
        if let Err(e) = shared.queue.ensure_group().await {
            warn!(
                queue = shared.queue.name(),
                "cannot create the consumer group yet: {e}"
            );
        }
        let maintenance = tokio::spawn(super::maintenance::maintain(
            shared.clone(),
            shutdown.clone(),
        ));
        read_loop(&shared, &mut read_conn, &mut shutdown).await;
        if let Err(e) = maintenance.await {
            warn!(
                queue = shared.queue.name(),
                "queue maintenance task failed: {e}"
            );
        }
        drain(&shared, grace).await;
        info!(queue = shared.queue.name(), consumer = %shared.name, "job consumer stopped");
        Ok(())
    }
}

pub(crate) fn is_shutdown(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow() || rx.has_changed().is_err()
}

/// Resolves when the flag becomes true or its sender is gone (nobody could set it any more).
/// The guard `wait_for` returns is dropped in here: it is not `Send`.
pub(crate) async fn signalled(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Sleeps `delay`, cut short by shutdown.
pub(crate) async fn pause(delay: Duration, rx: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = signalled(rx) => {}
    }
}

/// A missing group or stream: Redis restarted without persistence, or the key was deleted.
pub(crate) fn stream_gone(e: &redis::RedisError) -> bool {
    matches!(e.code(), Some("NOGROUP") | Some("UNBLOCKED"))
}

pub(crate) fn reclaim_idle(queue: &Queue) -> Duration {
    Duration::from_secs(queue.config().reclaim_idle_seconds)
}

/// Reads new jobs and reclaims abandoned ones until shutdown.
async fn read_loop(
    shared: &Arc<Shared>,
    conn: &mut ConnectionManager,
    shutdown: &mut watch::Receiver<bool>,
) {
    let reclaim_every = (reclaim_idle(&shared.queue) / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(30));
    let block = reclaim_every.min(MAX_BLOCK);
    let mut next_reclaim = Instant::now();
    let mut cursor = "0-0".to_string();
    let mut backoff = ErrorBackoff::default();
    loop {
        if is_shutdown(shutdown) {
            return;
        }
        // Wait for one free slot, then take every other free one.
        let first = tokio::select! {
            permit = shared.permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = signalled(shutdown) => return,
        };
        let mut permits = vec![first];
        while let Ok(p) = shared.permits.clone().try_acquire_owned() {
            permits.push(p);
        }

        // Reclaiming shares the slots with reading, so it runs here rather than in a task of
        // its own, which would find every slot held by the blocked read.
        if Instant::now() >= next_reclaim {
            next_reclaim = Instant::now() + reclaim_every;
            if let Err(e) = reclaim(shared, &mut cursor, &mut permits).await {
                if stream_gone(&e) {
                    recreate_group(shared).await;
                } else {
                    warn!(queue = shared.queue.name(), "reclaiming jobs failed: {e}");
                }
            }
            if permits.is_empty() {
                continue;
            }
        }

        let read = tokio::time::timeout(
            block + READ_SLACK,
            read_new(shared, conn, permits.len(), block),
        )
        .await;
        match read {
            Ok(Ok(entries)) => {
                backoff.reset();
                let start = !is_shutdown(shutdown);
                dispatch(shared, entries, &mut permits, start);
            }
            Ok(Err(e)) if stream_gone(&e) => {
                drop(permits);
                if !recreate_group(shared).await {
                    pause(backoff.next_delay(), shutdown).await;
                }
            }
            Ok(Err(e)) => {
                drop(permits);
                let delay = backoff.next_delay();
                warn!(
                    queue = shared.queue.name(),
                    "reading jobs failed (retrying in {delay:?}): {e}"
                );
                pause(delay, shutdown).await;
            }
            Err(_) => {
                drop(permits);
                // The connection hung; entries it may have delivered sit in our pending list
                // and come back through reclaim.
                warn!(
                    queue = shared.queue.name(),
                    "reading jobs hung; reconnecting"
                );
                match shared.queue.kv().blocking_queue_conn() {
                    Ok(fresh) => *conn = fresh,
                    Err(e) => warn!(queue = shared.queue.name(), "reconnect failed: {e}"),
                }
                pause(backoff.next_delay(), shutdown).await;
            }
        }
    }
}

async fn recreate_group(shared: &Shared) -> bool {
    info!(
        queue = shared.queue.name(),
        "job stream or group missing (Redis lost its data?); recreating it"
    );
    match shared.queue.ensure_group().await {
        Ok(()) => true,
        Err(e) => {
            warn!(
                queue = shared.queue.name(),
                "recreating the consumer group failed: {e}"
            );
            false
        }
    }
}

async fn read_new(
    shared: &Shared,
    conn: &mut ConnectionManager,
    count: usize,
    block: Duration,
) -> redis::RedisResult<Vec<Delivery>> {
    let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg(&shared.name)
        .arg("COUNT")
        .arg(count)
        .arg("BLOCK")
        .arg(u64::try_from(block.as_millis()).unwrap_or(2000))
        .arg("STREAMS")
        .arg(shared.queue.stream_key())
        .arg(">")
        .query_async(conn)
        .await?;
    // Entries read with `>` were never delivered before.
    Ok(reply
        .into_iter()
        .flat_map(|r| r.keys)
        .flat_map(|k| k.ids)
        .map(|entry| Delivery::from_entry(entry, 1))
        .collect())
}

/// Takes over jobs idle for longer than `reclaim_idle_seconds`: their consumer stopped
/// heart-beating, so it is dead (or cut off). One `XAUTOCLAIM` step per call; the cursor walks
/// the pending list across calls.
async fn reclaim(
    shared: &Arc<Shared>,
    cursor: &mut String,
    permits: &mut Vec<OwnedSemaphorePermit>,
) -> redis::RedisResult<()> {
    let min_idle_ms = u64::try_from(reclaim_idle(&shared.queue).as_millis()).unwrap_or(u64::MAX);
    let mut conn = shared.queue.conn();
    let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
        .arg(shared.queue.stream_key())
        .arg(GROUP)
        .arg(&shared.name)
        .arg(min_idle_ms)
        .arg(cursor.as_str())
        .arg("COUNT")
        .arg(permits.len())
        .query_async(&mut conn)
        .await?;
    *cursor = reply.next_stream_id;
    let mut taken = Vec::new();
    for entry in reply.claimed {
        // Our own job whose heartbeats failed for a while: it is still running here.
        if shared.in_flight().contains(&entry.id) {
            continue;
        }
        // The claim counted a delivery; the count tells how many consumers died on this entry.
        let times = delivery_count(&mut conn, shared, &entry.id)
            .await
            .unwrap_or(2);
        taken.push(Delivery::from_entry(entry, times));
    }
    if !taken.is_empty() {
        info!(
            queue = shared.queue.name(),
            count = taken.len(),
            "reclaimed jobs from consumers that stopped heart-beating"
        );
        for _ in &taken {
            shared.queue.counters().add(Outcome::Reclaimed);
        }
        dispatch(shared, taken, permits, true);
    }
    Ok(())
}

/// `XPENDING key group id id 1` → the entry's delivery counter.
async fn delivery_count(conn: &mut ConnectionManager, shared: &Shared, id: &str) -> Option<u32> {
    let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(shared.queue.stream_key())
        .arg(GROUP)
        .arg(id)
        .arg(id)
        .arg(1)
        .query_async(conn)
        .await
        .ok()?;
    rows.first().and_then(|row| u32::try_from(row.3).ok())
}

/// Starts one task per delivery, each holding one slot. With `start == false` (shutdown began
/// while the read was in flight) the jobs are handed straight back instead of run.
fn dispatch(
    shared: &Arc<Shared>,
    deliveries: Vec<Delivery>,
    permits: &mut Vec<OwnedSemaphorePermit>,
    start: bool,
) {
    for delivery in deliveries {
        // Redis returns at most COUNT = permits entries; without a slot, hand back rather than
        // break the concurrency bound.
        let permit = permits.pop();
        let start = start && permit.is_some();
        if start {
            shared.in_flight().insert(delivery.stream_id.clone());
        }
        tokio::spawn(supervise(shared.clone(), delivery, permit, start));
    }
}

/// Waits up to `grace` for running jobs; then aborts the rest, which hand themselves back.
async fn drain(shared: &Shared, grace: Duration) {
    let all = shared.total_permits;
    if tokio::time::timeout(grace, shared.permits.acquire_many(all))
        .await
        .is_ok()
    {
        return;
    }
    let running = shared.in_flight().len();
    info!(
        queue = shared.queue.name(),
        running, "grace period over; handing unfinished jobs back"
    );
    shared.abort.send_replace(true);
    if tokio::time::timeout(HAND_BACK_BOUND, shared.permits.acquire_many(all))
        .await
        .is_err()
    {
        warn!(
            queue = shared.queue.name(),
            "some jobs could not be handed back in time; they stay pending and will be reclaimed"
        );
    }
}

impl Delivery {
    fn from_entry(entry: StreamId, times_delivered: u32) -> Delivery {
        let raw = entry
            .map
            .get("job")
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok());
        Delivery {
            stream_id: entry.id,
            raw,
            times_delivered,
        }
    }
}
