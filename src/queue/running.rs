//! One delivered job: run its handler in a task of its own, heart-beat it while it runs, and
//! record the outcome (ack, retry, dead letter, hand-back) with one ownership-checked script.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};
use uuid::Uuid;

use super::backoff::{ErrorBackoff, retry_delay};
use super::consumer::{Shared, signalled};
use super::dead::{DEAD_LETTER_CAP, DeadLetter};
use super::envelope::Envelope;
use super::handler::{JobContext, JobError};
use super::stats::Outcome;
use super::{GROUP, scripts};

/// Tries to record an outcome before leaving the entry pending (it is then reclaimed).
const FINISH_TRIES: u32 = 5;

/// A stream entry handed to this consumer.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) stream_id: String,
    /// The `job` field; `None` when the entry has none (not written by this queue).
    pub(crate) raw: Option<String>,
    /// The stream's delivery counter for the entry, this delivery included.
    pub(crate) times_delivered: u32,
}

/// What to do with the entry once the job is over.
enum Finish {
    Ack(Uuid),
    Retry { next: Envelope, delay: Duration },
    Dead(DeadLetter),
    HandBack(Envelope),
}

impl Finish {
    fn outcome(&self) -> Outcome {
        match self {
            Finish::Ack(_) => Outcome::Completed,
            Finish::Retry { .. } => Outcome::Retried,
            Finish::Dead(_) => Outcome::DeadLettered,
            Finish::HandBack(_) => Outcome::HandedBack,
        }
    }
}

/// Removes the job from the in-flight set when its task ends, however it ends.
struct InFlightGuard {
    shared: Arc<Shared>,
    stream_id: String,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.shared.in_flight().remove(&self.stream_id);
    }
}

/// Runs (or, with `start == false`, hands straight back) one delivery. Holds `permit`, one
/// concurrency slot, until everything about the job is settled.
pub(crate) async fn supervise(
    shared: Arc<Shared>,
    delivery: Delivery,
    permit: Option<OwnedSemaphorePermit>,
    start: bool,
) {
    let _permit = permit;
    let _guard = start.then(|| InFlightGuard {
        shared: shared.clone(),
        stream_id: delivery.stream_id.clone(),
    });
    let id = delivery.stream_id.as_str();
    let parsed = delivery
        .raw
        .as_deref()
        .map(serde_json::from_str::<Envelope>);
    let envelope = match parsed {
        Some(Ok(envelope)) => envelope,
        other => {
            let why = match other {
                Some(Err(e)) => format!("the stream entry holds no valid job envelope: {e}"),
                _ => "the stream entry has no `job` field".to_string(),
            };
            let dead = DeadLetter {
                id: Uuid::nil(),
                kind: "<unreadable>".to_string(),
                payload: Value::String(delivery.raw.clone().unwrap_or_default()),
                attempts: delivery.times_delivered,
                last_error: why,
                failed_at: OffsetDateTime::now_utc(),
            };
            finish(&shared, id, Finish::Dead(dead)).await;
            return;
        }
    };
    let attempt = envelope.effective_attempt(delivery.times_delivered);
    if !start {
        // Never started: hand back at the attempt it came with.
        let back = Envelope {
            attempt,
            ..envelope
        };
        finish(&shared, id, Finish::HandBack(back)).await;
        return;
    }
    let max = shared.queue.config().max_deliveries;
    if attempt > max {
        let reason = format!(
            "delivered {attempt} times without an outcome (max_deliveries = {max}): its consumers died or lost it{}",
            envelope
                .last_error
                .as_deref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        );
        give_up(&shared, id, &envelope, attempt, reason).await;
        return;
    }
    let Some(handler) = shared.registry.get(&envelope.kind) else {
        let reason = format!("no handler registered for job kind `{}`", envelope.kind);
        let dead = DeadLetter::from_envelope(&envelope, attempt, reason);
        finish(&shared, id, Finish::Dead(dead)).await;
        return;
    };

    let ctx = context(&envelope, attempt, max);
    debug!(queue = shared.queue.name(), job = %envelope.id, kind = %envelope.kind, attempt, "job started");
    // The handler runs in a task of its own: heartbeats keep going while it is busy, a panic
    // stays contained, and shutdown can abort it.
    let mut task = tokio::spawn(async move { handler.handle(&ctx).await });
    let every = heartbeat_interval(&shared);
    let mut beat = tokio::time::interval_at(Instant::now() + every, every);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut abort = shared.abort.subscribe();
    let mut lost = false;
    let result = loop {
        tokio::select! {
            result = &mut task => break result,
            _ = beat.tick() => heartbeat(&shared, id, &envelope, &mut lost).await,
            _ = signalled(&mut abort) => {
                task.abort();
                // Give the abort a moment to land; a handler stuck in blocking code cannot be
                // stopped, and the job is handed back regardless.
                let _ = tokio::time::timeout(Duration::from_secs(1), &mut task).await;
                let back = Envelope { attempt, ..envelope };
                finish(&shared, id, Finish::HandBack(back)).await;
                return;
            }
        }
    };

    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(JobError::Permanent(msg))) => {
            give_up(&shared, id, &envelope, attempt, msg).await;
            return;
        }
        Ok(Err(JobError::Unavailable(msg))) => {
            outage(&shared, id, envelope, attempt, msg).await;
            return;
        }
        Ok(Err(JobError::Retry(msg))) => Some(msg),
        Err(e) if e.is_panic() => Some(format!(
            "handler panicked: {}",
            panic_message(e.into_panic())
        )),
        Err(e) => Some(format!("handler task ended: {e}")),
    };
    let action = match failure {
        None => Finish::Ack(envelope.id),
        Some(msg) if attempt >= max => {
            give_up(&shared, id, &envelope, attempt, msg).await;
            return;
        }
        Some(msg) => {
            let delay = retry_delay(shared.queue.config(), attempt);
            let next = Envelope {
                attempt: attempt + 1,
                last_error: Some(msg),
                outages: 0,
                ..envelope
            };
            Finish::Retry { next, delay }
        }
    };
    finish(&shared, id, action).await;
}

/// A dependency was down: try again later at the same attempt, backing off with the number of
/// outages in a row, until the outage deadline (counted from when the job was first queued).
async fn outage(shared: &Shared, id: &str, envelope: Envelope, attempt: u32, msg: String) {
    let config = shared.queue.config();
    let deadline =
        time::Duration::seconds(i64::try_from(config.outage_deadline_seconds).unwrap_or(i64::MAX));
    if OffsetDateTime::now_utc() - envelope.enqueued_at > deadline {
        let reason = format!(
            "a dependency stayed unavailable past queue.outage_deadline_seconds ({} s): {msg}",
            config.outage_deadline_seconds
        );
        give_up(shared, id, &envelope, attempt, reason).await;
        return;
    }
    let outages = envelope.outages.saturating_add(1);
    let delay = retry_delay(config, outages);
    let next = Envelope {
        attempt,
        last_error: Some(msg),
        outages,
        ..envelope
    };
    finish(shared, id, Finish::Retry { next, delay }).await;
}

/// The job will not run again: let its handler leave its work in a final state with the
/// reason, then dead-letter it.
async fn give_up(shared: &Shared, id: &str, envelope: &Envelope, attempt: u32, reason: String) {
    if let Some(handler) = shared.registry.get(&envelope.kind) {
        let ctx = context(envelope, attempt, shared.queue.config().max_deliveries);
        if let Err(e) = handler.gave_up(&ctx, &reason).await {
            warn!(queue = shared.queue.name(), job = %envelope.id, kind = %envelope.kind,
                "could not record the final state of a job given up (the reconciler will find it): {e}");
        }
    }
    let dead = DeadLetter::from_envelope(envelope, attempt, reason);
    finish(shared, id, Finish::Dead(dead)).await;
}

fn context(envelope: &Envelope, attempt: u32, max_deliveries: u32) -> JobContext {
    JobContext {
        id: envelope.id,
        kind: envelope.kind.clone(),
        payload: envelope.payload.clone(),
        attempt,
        max_deliveries,
        enqueued_at: envelope.enqueued_at,
        last_error: envelope.last_error.clone(),
    }
}

/// A quarter of the reclaim idle time (at most 10 s), so several beats fit in the window
/// after which another consumer would take the job.
fn heartbeat_interval(shared: &Shared) -> Duration {
    (Duration::from_secs(shared.queue.config().reclaim_idle_seconds) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(10))
}

async fn heartbeat(shared: &Shared, stream_id: &str, envelope: &Envelope, lost: &mut bool) {
    let beat: redis::RedisResult<i64> = scripts::heartbeat()
        .key(shared.queue.stream_key())
        .arg(GROUP)
        .arg(stream_id)
        .arg(&shared.name)
        .invoke_async(&mut shared.queue.conn())
        .await;
    match beat {
        Ok(1) => *lost = false,
        Ok(_) if !*lost => {
            *lost = true;
            // Keep running: the handler is idempotent, and the outcome scripts will leave the
            // result to the new owner.
            warn!(queue = shared.queue.name(), job = %envelope.id, "job was taken over by another consumer (or its entry vanished)");
        }
        Ok(_) => {}
        Err(e) => {
            warn!(queue = shared.queue.name(), job = %envelope.id, "job heartbeat failed: {e}")
        }
    }
}

/// Records the outcome, retrying Redis errors a few times. If every try fails, the entry stays
/// pending and another consumer reclaims it: at-least-once, never lost.
async fn finish(shared: &Shared, stream_id: &str, action: Finish) {
    let mut backoff = ErrorBackoff::default();
    for tries in 1..=FINISH_TRIES {
        match apply(shared, stream_id, &action).await {
            Ok(true) => {
                shared.queue.counters().add(action.outcome());
                log_outcome(shared, &action);
                return;
            }
            Ok(false) => {
                info!(
                    queue = shared.queue.name(),
                    entry = stream_id,
                    "job no longer belongs to this consumer; its outcome is left to the current owner"
                );
                return;
            }
            Err(e) if tries < FINISH_TRIES => {
                let delay = backoff.next_delay();
                warn!(
                    queue = shared.queue.name(),
                    entry = stream_id,
                    "recording a job outcome failed (retrying in {delay:?}): {e}"
                );
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                error!(
                    queue = shared.queue.name(),
                    entry = stream_id,
                    "giving up recording a job outcome; the job stays pending and will be reclaimed: {e}"
                );
            }
        }
    }
}

async fn apply(
    shared: &Shared,
    stream_id: &str,
    action: &Finish,
) -> Result<bool, super::QueueError> {
    let queue = &shared.queue;
    let mut conn = queue.conn();
    let applied: i64 = match action {
        Finish::Ack(_) => {
            scripts::ack()
                .key(queue.stream_key())
                .arg(GROUP)
                .arg(stream_id)
                .arg(&shared.name)
                .invoke_async(&mut conn)
                .await?
        }
        Finish::Retry { next, delay } => {
            scripts::retry()
                .key(queue.stream_key())
                .key(queue.delayed_key())
                .arg(GROUP)
                .arg(stream_id)
                .arg(&shared.name)
                .arg(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
                .arg(serde_json::to_string(next)?)
                .invoke_async(&mut conn)
                .await?
        }
        Finish::Dead(dead) => {
            scripts::dead()
                .key(queue.stream_key())
                .key(queue.dead_key())
                .arg(GROUP)
                .arg(stream_id)
                .arg(&shared.name)
                .arg(serde_json::to_string(dead)?)
                .arg(DEAD_LETTER_CAP)
                .invoke_async(&mut conn)
                .await?
        }
        Finish::HandBack(envelope) => {
            scripts::hand_back()
                .key(queue.stream_key())
                .arg(GROUP)
                .arg(stream_id)
                .arg(&shared.name)
                .arg(serde_json::to_string(envelope)?)
                .invoke_async(&mut conn)
                .await?
        }
    };
    Ok(applied == 1)
}

fn log_outcome(shared: &Shared, action: &Finish) {
    let queue = shared.queue.name();
    match action {
        Finish::Ack(job) => debug!(queue, %job, "job completed"),
        Finish::Retry { next, delay } => info!(
            queue, job = %next.id, kind = %next.kind, next_attempt = next.attempt,
            "job failed; retrying in {delay:?}: {}", next.last_error.as_deref().unwrap_or("")
        ),
        Finish::Dead(dead) => warn!(
            queue, job = %dead.id, kind = %dead.kind, attempts = dead.attempts,
            "job dead-lettered: {}", dead.last_error
        ),
        Finish::HandBack(envelope) => {
            info!(queue, job = %envelope.id, kind = %envelope.kind, "job handed back to the queue")
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}
