//! A time budget for CPU-heavy coverage work (parsing, decoding, path mapping). The work runs on
//! the blocking pool so it never stalls the async runtime, and checks its [`Budget`] in its
//! loops: once the limit has passed, or the request that wanted the result is gone, it stops
//! instead of burning a thread for as long as a hostile report makes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The work ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "processing the report took longer than the limit of {} ms (coverage.processing_time_limit_ms)",
    .limit.as_millis()
)]
pub struct OverBudget {
    pub limit: Duration,
}

/// What the work checks while it runs.
#[derive(Clone, Debug)]
pub struct Budget {
    deadline: Option<Instant>,
    limit: Duration,
    cancelled: Arc<AtomicBool>,
}

impl Budget {
    /// A budget that never runs out (tests, tools).
    pub fn unlimited() -> Budget {
        Budget {
            deadline: None,
            limit: Duration::MAX,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn new(limit: Duration) -> Budget {
        Budget {
            deadline: Instant::now().checked_add(limit),
            limit,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Err once the time is up or the work was called off.
    pub fn check(&self) -> Result<(), OverBudget> {
        let late = self.deadline.is_some_and(|d| Instant::now() >= d);
        if late || self.cancelled.load(Ordering::Relaxed) {
            return Err(OverBudget { limit: self.limit });
        }
        Ok(())
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

/// Calls the work off when dropped: the waiting request timed out or went away.
struct CancelOnDrop(Budget);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Runs `work` on the blocking pool within `limit`; on time-out the work is told to stop (it
/// sees [`Budget::check`] fail) and the caller gets [`OverBudget`] at once.
pub async fn run<T, F>(limit: Duration, work: F) -> Result<T, OverBudget>
where
    T: Send + 'static,
    F: FnOnce(&Budget) -> T + Send + 'static,
{
    let budget = Budget::new(limit);
    let guard = CancelOnDrop(budget.clone());
    let task = tokio::task::spawn_blocking(move || work(&budget));
    let over = OverBudget { limit };
    let result = match tokio::time::timeout(limit, task).await {
        Ok(Ok(value)) => Ok(value),
        // A panic in the work: report it as it would have been on the runtime.
        Ok(Err(join)) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Ok(Err(_)) | Err(_) => Err(over),
    };
    drop(guard);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slow_work_is_told_to_stop() {
        let (tx, rx) = std::sync::mpsc::channel();
        let result = run(Duration::from_millis(50), move |budget| {
            let started = Instant::now();
            let stopped = loop {
                if let Err(over) = budget.check() {
                    break over;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            tx.send(started.elapsed()).unwrap();
            Err::<(), _>(stopped)
        })
        .await;
        // Whichever noticed first (the caller's timer or the work itself), it is over budget.
        let over = OverBudget {
            limit: Duration::from_millis(50),
        };
        assert_eq!(result.and_then(|r| r), Err(over));
        let ran = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(ran < Duration::from_secs(1), "{ran:?}");
        assert_eq!(run(Duration::from_secs(5), |_| 7).await, Ok(7));
    }
}
