//! The job queue: Redis Streams with one consumer group (`workers`) per queue.
//!
//! At-least-once delivery. A job is enqueued as an [`Envelope`] (JSON in the `job` field of a
//! stream entry), read by a [`Consumer`] with `XREADGROUP`, run by the [`JobHandler`] registered
//! for its kind, and acknowledged (`XACK` + `XDEL`) only after the handler returned `Ok`, i.e.
//! after it committed its results. Handlers must therefore be idempotent: a job whose consumer
//! died mid-way runs again elsewhere.
//!
//! Keys (all through [`Kv::key`], in the queue database):
//!
//! - `queue:<name>:stream`: the stream holding waiting and in-progress jobs, group `workers`;
//! - `queue:<name>:delayed`: sorted set of envelopes waiting for their retry time (score = due
//!   time in ms, Redis clock);
//! - `queue:<name>:dead`: list of [`DeadLetter`] JSON, newest last, capped at
//!   [`DEAD_LETTER_CAP`];
//! - `queue:<name>:unique:<dedup key>`: markers written by [`Queue::enqueue_unique`].
//!
//! Every state change that touches more than one key (ack, retry, dead-letter, hand-back,
//! promotion of due retries) is one Lua script, so a crash between two commands cannot lose or
//! duplicate a job, and every outcome script first checks that the caller still owns the entry,
//! so a consumer that lost a job to another one (after a long pause) leaves the outcome to it.

mod backoff;
mod consumer;
mod dead;
mod envelope;
mod handler;
mod kind;
mod maintenance;
mod running;
mod scripts;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde_json::Value;

use crate::config::QueueConfig;
use crate::kv::{Db, Kv, KvError};

pub use consumer::Consumer;
pub use dead::{DEAD_LETTER_CAP, DeadLetter};
pub use envelope::{Envelope, Job, JobId};
pub use handler::{JobContext, JobError, JobHandler, Registry};
pub use kind::JobKind;
pub use stats::{OutcomeCounts, QueueStats};

use stats::Counters;

/// The consumer group every consumer of a queue joins.
pub const GROUP: &str = "workers";

/// Errors of queue operations (the consumer loop itself logs and retries instead).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{0}")]
    Kv(#[from] KvError),
    #[error("job JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("`{0}` is not a job id (a UUID)")]
    InvalidJobId(String),
}

/// A handle on one named queue. Cheap to clone; clones share the outcome counters.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    kv: Kv,
    name: String,
    config: QueueConfig,
    stream_key: String,
    delayed_key: String,
    dead_key: String,
    counters: Counters,
}

impl Queue {
    /// A handle on queue `name` (e.g. `"default"`). Contacts nothing. Zero values in `config`
    /// that would stall the queue (concurrency, max deliveries, reclaim idle time) are raised
    /// to 1.
    pub fn new(kv: Kv, name: &str, config: QueueConfig) -> Queue {
        let config = QueueConfig {
            concurrency: config.concurrency.max(1),
            max_deliveries: config.max_deliveries.max(1),
            reclaim_idle_seconds: config.reclaim_idle_seconds.max(1),
            retry_base_delay_ms: config.retry_base_delay_ms,
            retry_max_delay_ms: config.retry_max_delay_ms.max(config.retry_base_delay_ms),
        };
        Queue {
            inner: Arc::new(Inner {
                stream_key: kv.key(&format!("queue:{name}:stream")),
                delayed_key: kv.key(&format!("queue:{name}:delayed")),
                dead_key: kv.key(&format!("queue:{name}:dead")),
                name: name.to_string(),
                config,
                kv,
                counters: Counters::default(),
            }),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The effective settings (after the zero checks of [`Queue::new`]).
    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    /// The Redis handles this queue uses.
    pub fn kv(&self) -> &Kv {
        &self.inner.kv
    }

    /// Full key of the stream (prefix included).
    pub fn stream_key(&self) -> &str {
        &self.inner.stream_key
    }

    /// Full key of the delayed-retry sorted set.
    pub fn delayed_key(&self) -> &str {
        &self.inner.delayed_key
    }

    /// Full key of the dead-letter list.
    pub fn dead_key(&self) -> &str {
        &self.inner.dead_key
    }

    pub(crate) fn conn(&self) -> ConnectionManager {
        self.inner.kv.conn(Db::Queue)
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Creates the stream and the `workers` group if missing. The group starts at `0`, not `$`:
    /// after Redis lost its data, jobs enqueued before the group was recreated must still run.
    pub async fn ensure_group(&self) -> Result<(), QueueError> {
        let mut conn = self.conn();
        let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.stream_key())
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Adds a job; returns its id. The job runs at least once.
    pub async fn enqueue(&self, kind: &str, payload: Value) -> Result<JobId, QueueError> {
        let envelope = Envelope::new(Job {
            kind: kind.to_string(),
            payload,
        });
        let json = serde_json::to_string(&envelope)?;
        let mut conn = self.conn();
        let _: String = redis::cmd("XADD")
            .arg(self.stream_key())
            .arg("*")
            .arg("job")
            .arg(json)
            .query_async(&mut conn)
            .await?;
        Ok(envelope.id)
    }

    /// Adds a job unless one with the same `dedup_key` was enqueued less than `ttl` ago
    /// (`SET NX PX` and `XADD` in one script). Returns `None` for a duplicate.
    ///
    /// The marker is not cleared when the job finishes: it de-duplicates bursts (e.g. the same
    /// webhook delivered twice), it does not serialize work.
    pub async fn enqueue_unique(
        &self,
        kind: &str,
        payload: Value,
        dedup_key: &str,
        ttl: Duration,
    ) -> Result<Option<JobId>, QueueError> {
        let envelope = Envelope::new(Job {
            kind: kind.to_string(),
            payload,
        });
        let json = serde_json::to_string(&envelope)?;
        let marker = self
            .inner
            .kv
            .key(&format!("queue:{}:unique:{dedup_key}", self.name()));
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let added: i64 = scripts::enqueue_unique()
            .key(marker)
            .key(self.stream_key())
            .arg(envelope.id.to_string())
            .arg(ttl_ms)
            .arg(json)
            .invoke_async(&mut self.conn())
            .await?;
        Ok((added == 1).then_some(envelope.id))
    }
}
