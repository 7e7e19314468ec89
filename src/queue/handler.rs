//! Job handlers and the registry that maps a job kind to its handler.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;

use super::envelope::JobId;

/// What a handler sees of the job it runs.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub id: JobId,
    pub kind: String,
    pub payload: Value,
    /// 1 for the first run; counts retries and redeliveries after a consumer died.
    pub attempt: u32,
    /// The attempt after which a failing job is dead-lettered.
    pub max_deliveries: u32,
    pub enqueued_at: OffsetDateTime,
    /// The error of the previous attempt, if this is a retry.
    pub last_error: Option<String>,
}

impl JobContext {
    /// The payload as a typed value; a payload that does not parse can never succeed, so the
    /// error is [`JobError::Permanent`].
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_value(self.payload.clone())
            .map_err(|e| JobError::Permanent(format!("bad payload for `{}`: {e}", self.kind)))
    }

    /// Whether a `Retry` from this attempt dead-letters the job instead. (An `Unavailable`
    /// never uses up the attempt.)
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_deliveries
    }
}

/// How a handler failed. The variant decides what the failure costs the job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Might work next time but might be the job's own fault (an unexpected answer, a lock):
    /// retried with backoff, each failure using up one of `max_deliveries` attempts.
    #[error("{0}")]
    Retry(String),
    /// A dependency is down (PostgreSQL, Redis, the blob store, GitHub 5xx or timeouts, the git
    /// server unreachable): the job is not at fault, so no attempt is used up. Retried with
    /// backoff until `queue.outage_deadline_seconds` after it was first queued, then given up.
    #[error("{0}")]
    Unavailable(String),
    /// Will never succeed (bad input, missing row, a refusal): dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    pub fn retry(e: impl fmt::Display) -> JobError {
        JobError::Retry(e.to_string())
    }

    pub fn unavailable(e: impl fmt::Display) -> JobError {
        JobError::Unavailable(e.to_string())
    }

    pub fn permanent(e: impl fmt::Display) -> JobError {
        JobError::Permanent(e.to_string())
    }

    /// An error from PostgreSQL, Redis, the store or anything wrapping them: `Unavailable` when
    /// its cause chain shows a dependency that could not be reached, else `Retry`.
    pub fn from_cause(e: impl Into<anyhow::Error>) -> JobError {
        let e = e.into();
        if dependency_unreachable(&e) {
            JobError::Unavailable(format!("{e:#}"))
        } else {
            JobError::Retry(format!("{e:#}"))
        }
    }
}

/// `?` on an `anyhow::Error` inside a handler: classified by [`JobError::from_cause`].
impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> JobError {
        JobError::from_cause(e)
    }
}

/// Whether the error says a dependency could not be reached: the connection-level failures the
/// HTTP layer answers 503 for, plus PostgreSQL refusing work while it shuts down or starts
/// (SQLSTATE classes 08 and 57P, and too many connections), which a restart produces.
fn dependency_unreachable(e: &anyhow::Error) -> bool {
    if crate::outage::dependency_down(e).is_some() {
        return true;
    }
    e.chain().any(|link| {
        let Some(sqlx::Error::Database(db)) = link.downcast_ref::<sqlx::Error>() else {
            return false;
        };
        let code = db.code().unwrap_or_default();
        code.starts_with("08") || code.starts_with("57P") || code == "53300"
    })
}

/// Runs one kind of job. Must be idempotent: the queue is at-least-once, and a job can run
/// again after its consumer died or a result could not be acknowledged. Commit results before
/// returning `Ok`; the job is acknowledged right after.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError>;

    /// Called once the queue gives the job up (permanent error, attempts used up, an outage
    /// longer than the deadline, consumers dying on it), before it is dead-lettered: leave what
    /// the job was working on in a final state that says `reason`, never in progress. Must be
    /// idempotent and touch only rows not already final. An error is logged; whatever stays
    /// unfinished is found again by the reconciler.
    async fn gave_up(&self, _job: &JobContext, _reason: &str) -> Result<(), JobError> {
        Ok(())
    }
}

/// Job kind → handler. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers (or replaces) the handler for `kind`.
    pub fn register(&mut self, kind: &str, handler: Arc<dyn JobHandler>) -> &mut Registry {
        self.handlers.insert(kind.to_string(), handler);
        self
    }

    /// Builder form of [`Registry::register`].
    pub fn with(mut self, kind: &str, handler: Arc<dyn JobHandler>) -> Registry {
        self.register(kind, handler);
        self
    }

    pub fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.get(kind).cloned()
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        kinds.sort_unstable();
        kinds
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_do_not_count_as_the_jobs_fault() {
        assert!(matches!(
            JobError::from_cause(sqlx::Error::PoolTimedOut),
            JobError::Unavailable(_)
        ));
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(matches!(
            JobError::from_cause(redis::RedisError::from(refused)),
            JobError::Unavailable(_)
        ));
        assert!(matches!(
            JobError::from_cause(sqlx::Error::RowNotFound),
            JobError::Retry(_)
        ));
        assert!(matches!(
            JobError::from(anyhow::anyhow!("a bug")),
            JobError::Retry(_)
        ));
    }
}
