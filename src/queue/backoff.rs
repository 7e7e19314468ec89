//! Delays: retry backoff for failing jobs, and the pause after a Redis error in a loop.

use std::time::Duration;

use crate::config::QueueConfig;

/// The upper bound of the delay before `attempt + 1` after `attempt` failed:
/// `min(base * 2^(attempt-1), max)`.
pub(crate) fn retry_delay_cap(config: &QueueConfig, attempt: u32) -> Duration {
    let shift = attempt.saturating_sub(1).min(40);
    let ms = config
        .retry_base_delay_ms
        .saturating_mul(1u64 << shift)
        .min(config.retry_max_delay_ms);
    Duration::from_millis(ms)
}

/// The delay actually used: "equal jitter" (half the cap plus a random part of the other half),
/// so jobs that failed together (an upstream outage) do not all come back at the same moment,
/// yet none comes back much sooner than planned.
pub(crate) fn retry_delay(config: &QueueConfig, attempt: u32) -> Duration {
    let cap = u64::try_from(retry_delay_cap(config, attempt).as_millis()).unwrap_or(u64::MAX);
    let half = cap / 2;
    Duration::from_millis(half + rand::random_range(0..=cap - half))
}

/// 0.5 s, 1 s, 2 s, 4 s, 5 s, 5 s … after consecutive Redis errors; back to 0.5 s on success.
#[derive(Debug)]
pub(crate) struct ErrorBackoff {
    next: Duration,
}

const FIRST: Duration = Duration::from_millis(500);
const LAST: Duration = Duration::from_secs(5);

impl Default for ErrorBackoff {
    fn default() -> Self {
        ErrorBackoff { next: FIRST }
    }
}

impl ErrorBackoff {
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(LAST);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base: u64, max: u64) -> QueueConfig {
        QueueConfig {
            retry_base_delay_ms: base,
            retry_max_delay_ms: max,
            ..QueueConfig::default()
        }
    }

    #[test]
    fn cap_doubles_and_saturates() {
        let c = config(100, 1000);
        let caps: Vec<u128> = (1..=6)
            .map(|a| retry_delay_cap(&c, a).as_millis())
            .collect();
        assert_eq!(caps, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(retry_delay_cap(&c, 0).as_millis(), 100);
        assert_eq!(
            retry_delay_cap(&config(u64::MAX / 2, u64::MAX), 200).as_millis(),
            u64::MAX as u128
        );
    }

    #[test]
    fn jitter_stays_between_half_and_cap() {
        let c = config(1000, 60_000);
        for attempt in 1..8 {
            let cap = retry_delay_cap(&c, attempt);
            for _ in 0..50 {
                let d = retry_delay(&c, attempt);
                assert!(
                    d >= cap / 2 && d <= cap,
                    "{d:?} outside [{:?}, {cap:?}]",
                    cap / 2
                );
            }
        }
        assert_eq!(retry_delay(&config(0, 0), 3), Duration::ZERO);
    }

    #[test]
    fn error_backoff_grows_to_five_seconds_and_resets() {
        let mut b = ErrorBackoff::default();
        let seq: Vec<u128> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(seq, [500, 1000, 2000, 4000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), FIRST);
    }
}
