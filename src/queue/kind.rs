//! Typed jobs: each kind is one payload type that names itself, so what is enqueued and what
//! its handler decodes cannot drift apart. A kind is queued with [`JobKind::enqueue`] (once per
//! burst when it says so in [`JobKind::dedup`]) and decoded by its handler with
//! [`JobContext::job`].

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{JobContext, JobError, Queue, QueueError};

/// A job's payload type and its kind's name on the queue.
pub trait JobKind: Serialize + DeserializeOwned + Send + Sync + Sized {
    const KIND: &'static str;

    /// For kinds queued once per burst (the same event delivered twice): the de-duplication key
    /// and how long it holds. See [`Queue::enqueue_unique`].
    fn dedup(&self) -> Option<(String, Duration)> {
        None
    }

    /// Queues this job; it runs at least once.
    fn enqueue(&self, queue: &Queue) -> impl Future<Output = Result<(), QueueError>> + Send {
        queue.push(self)
    }
}

impl super::Job {
    /// The queue's untyped form of a typed job, for code that handles jobs of several kinds
    /// together (the reconciler compares them with what the queue holds).
    pub fn of<J: JobKind>(job: &J) -> super::Job {
        super::Job {
            kind: J::KIND.to_string(),
            payload: serde_json::to_value(job).expect("a job payload serializes"),
        }
    }
}

impl Queue {
    /// Adds a typed job, de-duplicated when its kind asks for it.
    pub async fn push<J: JobKind>(&self, job: &J) -> Result<(), QueueError> {
        let payload = serde_json::to_value(job)?;
        match job.dedup() {
            Some((key, ttl)) => {
                self.enqueue_unique(J::KIND, payload, &key, ttl).await?;
            }
            None => {
                self.enqueue(J::KIND, payload).await?;
            }
        }
        Ok(())
    }
}

impl JobContext {
    /// The job's typed payload: the one place a kind's payload is decoded. A payload that does
    /// not parse can never succeed, so the error is permanent.
    pub fn job<J: JobKind>(&self) -> Result<J, JobError> {
        self.payload_as()
    }
}
