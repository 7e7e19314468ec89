//! Background upkeep of a queue, run by every consumer: promote due retries (every 0.5 s) and
//! forget consumers gone for a long time (every 5 min). Both are single atomic scripts, so any
//! number of consumers can run them at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use super::backoff::ErrorBackoff;
use super::consumer::{Shared, pause, reclaim_idle, signalled};
use super::{GROUP, scripts};

const PROMOTE_EVERY: Duration = Duration::from_millis(500);
const PROMOTE_BATCH: u32 = 100;
const CLEANUP_EVERY: Duration = Duration::from_secs(300);
/// Consumers unseen for this long with nothing pending are removed from the group.
const FORGET_CONSUMER_AFTER: Duration = Duration::from_secs(3600);

/// Promotes due retries and forgets long-gone consumers, until shutdown.
pub(crate) async fn maintain(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut promote_tick = tokio::time::interval(PROMOTE_EVERY);
    promote_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut cleanup_tick = tokio::time::interval_at(Instant::now() + CLEANUP_EVERY, CLEANUP_EVERY);
    cleanup_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut backoff = ErrorBackoff::default();
    loop {
        let result = tokio::select! {
            _ = signalled(&mut shutdown) => return,
            _ = promote_tick.tick() => promote(&shared).await,
            _ = cleanup_tick.tick() => forget_gone_consumers(&shared).await,
        };
        match result {
            Ok(()) => backoff.reset(),
            Err(e) => {
                let delay = backoff.next_delay();
                warn!(
                    queue = shared.queue.name(),
                    "queue maintenance failed (retrying in {delay:?}): {e}"
                );
                pause(delay, &mut shutdown).await;
            }
        }
    }
}

/// Moves due retries from the delayed set into the stream, in batches, atomically per batch.
async fn promote(shared: &Shared) -> redis::RedisResult<()> {
    let mut conn = shared.queue.conn();
    loop {
        let moved: u32 = scripts::promote()
            .key(shared.queue.delayed_key())
            .key(shared.queue.stream_key())
            .arg(PROMOTE_BATCH)
            .invoke_async(&mut conn)
            .await?;
        if moved > 0 {
            debug!(queue = shared.queue.name(), moved, "promoted due retries");
        }
        if moved < PROMOTE_BATCH {
            return Ok(());
        }
    }
}

async fn forget_gone_consumers(shared: &Shared) -> redis::RedisResult<()> {
    let after = FORGET_CONSUMER_AFTER.max(reclaim_idle(&shared.queue) * 10);
    let removed: u32 = scripts::delete_idle_consumers()
        .key(shared.queue.stream_key())
        .arg(GROUP)
        .arg(&shared.name)
        .arg(u64::try_from(after.as_millis()).unwrap_or(u64::MAX))
        .invoke_async(&mut shared.queue.conn())
        .await?;
    if removed > 0 {
        info!(
            queue = shared.queue.name(),
            removed, "removed consumers gone for a long time from the group"
        );
    }
    Ok(())
}
