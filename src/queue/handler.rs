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

    /// Whether a `Retry` from this attempt dead-letters the job instead.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_deliveries
    }
}

/// How a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth trying again later (network, lock, upstream 5xx): retried with backoff until
    /// `max_deliveries`, then dead-lettered.
    #[error("{0}")]
    Retry(String),
    /// Will never succeed (bad input, missing row): dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    pub fn retry(e: impl fmt::Display) -> JobError {
        JobError::Retry(e.to_string())
    }

    pub fn permanent(e: impl fmt::Display) -> JobError {
        JobError::Permanent(e.to_string())
    }
}

/// `?` on an `anyhow::Error` inside a handler means "retry": most failures are transient.
impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> JobError {
        JobError::Retry(format!("{e:#}"))
    }
}

/// Runs one kind of job. Must be idempotent: the queue is at-least-once, and a job can run
/// again after its consumer died or a result could not be acknowledged. Commit results before
/// returning `Ok`; the job is acknowledged right after.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError>;
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
