//! What a job is, and the durable envelope stored for it in the stream.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// A job's identity; stays the same across retries, reclaims and hand-backs.
pub type JobId = Uuid;

/// The work itself: a kind (selects the handler) and its JSON payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub kind: String,
    pub payload: Value,
}

/// The stream entry's `job` field: the job plus what the queue needs to know about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: JobId,
    pub kind: String,
    pub payload: Value,
    /// The attempt this entry starts at (1 for a new job). Redeliveries of the same entry (after
    /// a consumer died) add to it through the stream's delivery counter; a retry writes a new
    /// entry with the next attempt.
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub enqueued_at: OffsetDateTime,
    /// The error of the previous attempt, when this is a retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Consecutive runs that failed because a dependency was down; they use up no attempt and
    /// only lengthen the backoff.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub outages: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Envelope {
    /// A fresh envelope at attempt 1.
    pub fn new(job: Job) -> Envelope {
        Envelope {
            id: Uuid::new_v4(),
            kind: job.kind,
            payload: job.payload,
            attempt: 1,
            enqueued_at: OffsetDateTime::now_utc(),
            last_error: None,
            outages: 0,
        }
    }

    /// The attempt a delivery of this entry represents: the entry's own attempt plus the
    /// deliveries before this one (each of which ended without an outcome, i.e. its consumer
    /// died).
    pub fn effective_attempt(&self, times_delivered: u32) -> u32 {
        self.attempt
            .max(1)
            .saturating_add(times_delivered.max(1) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_effective_attempt() {
        let env = Envelope::new(Job {
            kind: "k".into(),
            payload: serde_json::json!({"a": [1]}),
        });
        let json = serde_json::to_string(&env).unwrap();
        assert!(!json.contains("last_error"));
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back, env);
        assert_eq!(env.effective_attempt(1), 1);
        assert_eq!(env.effective_attempt(3), 3);
        let retried = Envelope { attempt: 2, ..env };
        assert_eq!(retried.effective_attempt(1), 2);
        assert_eq!(retried.effective_attempt(0), 2);
    }
}
