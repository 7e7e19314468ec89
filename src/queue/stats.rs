//! Queue depth (from Redis, shared by all hosts) and outcome counters (this process only).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::{GROUP, Queue, QueueError, scripts};

/// Depth of one queue, read in one atomic script.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// In the stream, not yet delivered to a consumer.
    pub waiting: u64,
    /// Delivered and not acknowledged: running, or held by a consumer that died (until reclaimed).
    pub in_progress: u64,
    /// Waiting for their retry time.
    pub delayed: u64,
    /// In the dead-letter list.
    pub dead: u64,
}

/// What this process's consumers did with jobs since start (Prometheus counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    /// Handler returned `Ok` and the job was acknowledged.
    pub completed: u64,
    /// Handler asked for a retry; the job went to the delayed set.
    pub retried: u64,
    /// Sent to the dead-letter list (permanent error, unknown kind, too many deliveries).
    pub dead_lettered: u64,
    /// Still running when shutdown's grace period ended; put back in the stream.
    pub handed_back: u64,
    /// Taken over from a consumer that stopped heart-beating.
    pub reclaimed: u64,
}

impl OutcomeCounts {
    /// `(outcome name, count)` pairs, names as in the struct (Prometheus label values).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &u64)> {
        [
            ("completed", &self.completed),
            ("retried", &self.retried),
            ("dead_lettered", &self.dead_lettered),
            ("handed_back", &self.handed_back),
            ("reclaimed", &self.reclaimed),
        ]
        .into_iter()
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    Completed = 0,
    Retried = 1,
    DeadLettered = 2,
    HandedBack = 3,
    Reclaimed = 4,
}

#[derive(Default)]
pub(crate) struct Counters([AtomicU64; 5]);

impl Counters {
    pub(crate) fn add(&self, outcome: Outcome) {
        self.0[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self, outcome: Outcome) -> u64 {
        self.0[outcome as usize].load(Ordering::Relaxed)
    }
}

impl Queue {
    /// Current depth. A missing stream or group (fresh or restarted Redis) counts as empty.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let (len, pending, delayed, dead): (u64, u64, u64, u64) = scripts::stats()
            .key(self.stream_key())
            .key(self.delayed_key())
            .key(self.dead_key())
            .arg(GROUP)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(QueueStats {
            waiting: len.saturating_sub(pending),
            in_progress: pending,
            delayed,
            dead,
        })
    }

    /// Outcome counters of this process (shared by clones of this `Queue`).
    pub fn outcome_counts(&self) -> OutcomeCounts {
        let c = self.counters();
        OutcomeCounts {
            completed: c.get(Outcome::Completed),
            retried: c.get(Outcome::Retried),
            dead_lettered: c.get(Outcome::DeadLettered),
            handed_back: c.get(Outcome::HandedBack),
            reclaimed: c.get(Outcome::Reclaimed),
        }
    }
}
