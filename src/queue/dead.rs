//! The dead-letter list: jobs that failed for good, kept for `cocov admin jobs dead`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::envelope::{Envelope, JobId};
use super::{Queue, QueueError, scripts};

/// The dead-letter list keeps at most this many entries (the oldest are dropped).
pub const DEAD_LETTER_CAP: usize = 10_000;

/// A job that will not be retried any more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: JobId,
    pub kind: String,
    pub payload: Value,
    /// Attempts made (runs of the handler, plus deliveries whose consumer died).
    pub attempts: u32,
    /// Why it was given up: the handler's last error, "no handler …", "delivered N times …".
    pub last_error: String,
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: OffsetDateTime,
}

impl DeadLetter {
    pub(crate) fn from_envelope(env: &Envelope, attempts: u32, reason: String) -> DeadLetter {
        DeadLetter {
            id: env.id,
            kind: env.kind.clone(),
            payload: env.payload.clone(),
            attempts,
            last_error: reason,
            failed_at: OffsetDateTime::now_utc(),
        }
    }
}

impl Queue {
    /// The newest `limit` dead letters, oldest first (newest last). Entries that do not parse
    /// (written by a future version, or damaged) are skipped.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let start = -(i64::try_from(limit).unwrap_or(i64::MAX));
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(self.dead_key())
            .arg(start)
            .arg(-1)
            .query_async(&mut self.conn())
            .await?;
        Ok(raw
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            .collect())
    }

    /// Puts dead letter `id` (a job id, as printed by `cocov admin jobs dead`) back in the queue
    /// as a new job at attempt 1, same id. Returns false when there is no such dead letter (or
    /// a concurrent call took it); an `id` that is not a UUID is an error.
    pub async fn retry_dead(&self, id: &str) -> Result<bool, QueueError> {
        let id: JobId = id
            .trim()
            .parse()
            .map_err(|_| QueueError::InvalidJobId(id.to_string()))?;
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(self.dead_key())
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await?;
        let found = raw.into_iter().find_map(|s| {
            let dead: DeadLetter = serde_json::from_str(&s).ok()?;
            (dead.id == id).then_some((s, dead))
        });
        let Some((raw, dead)) = found else {
            return Ok(false);
        };
        let envelope = Envelope {
            id: dead.id,
            kind: dead.kind,
            payload: dead.payload,
            attempt: 1,
            enqueued_at: OffsetDateTime::now_utc(),
            last_error: Some(dead.last_error),
            outages: 0,
        };
        let moved: i64 = scripts::retry_dead()
            .key(self.dead_key())
            .key(self.stream_key())
            .arg(raw)
            .arg(serde_json::to_string(&envelope)?)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(moved == 1)
    }

    /// Empties the dead-letter list; returns how many entries it held.
    pub async fn purge_dead(&self) -> Result<u64, QueueError> {
        let n: u64 = scripts::purge_dead()
            .key(self.dead_key())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(n)
    }
}
