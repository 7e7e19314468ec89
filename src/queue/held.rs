//! What the queue holds right now, for the reconciler to compare with what PostgreSQL says is
//! pending.

use redis::streams::StreamRangeReply;

use super::envelope::{Envelope, Job};
use super::{Queue, QueueError};

impl Queue {
    /// Every job the queue holds: waiting, running (pending in the group) or waiting for its
    /// retry. The stream and the delayed set are read in one MULTI, so a job moving between them
    /// (a retry being scheduled or promoted) is seen exactly once. Entries that do not parse are
    /// left out (the consumer dead-letters them).
    pub async fn held_jobs(&self) -> Result<Vec<Job>, QueueError> {
        let (stream, delayed): (StreamRangeReply, Vec<String>) = redis::pipe()
            .atomic()
            .cmd("XRANGE")
            .arg(self.stream_key())
            .arg("-")
            .arg("+")
            .cmd("ZRANGE")
            .arg(self.delayed_key())
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await?;
        let from_stream = stream.ids.into_iter().filter_map(|entry| {
            entry
                .map
                .get("job")
                .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
        });
        Ok(from_stream
            .chain(delayed)
            .filter_map(|raw| serde_json::from_str::<Envelope>(&raw).ok())
            .map(|e| Job {
                kind: e.kind,
                payload: e.payload,
            })
            .collect())
    }
}
