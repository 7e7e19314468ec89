//! Per-client rate limit for badge requests: a token bucket per client address, in memory.
//!
//! It is decided before the cache, the database or the renderer are touched, so a limited
//! client costs one map lookup, and the limiter itself never invalidates or recomputes anything.
//! The client is the TCP peer (no X-Forwarded-For: anyone could forge it). IPv6 clients are
//! grouped by /64, the block a single host usually gets, so rotating addresses does not help.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most clients tracked at once (about 40 bytes each). When full, idle clients are forgotten;
/// if none is idle, new clients go untracked (allowed) rather than locking everyone out.
pub const MAX_CLIENTS: usize = 65_536;

/// How often a full table may be swept for idle clients, so a flood of new addresses cannot
/// turn every request into a full sweep.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Over the limit: the client may retry after this many seconds (at least 1).
    Limit {
        retry_after_secs: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

struct Table {
    clients: HashMap<IpAddr, Bucket>,
    last_sweep: Option<Instant>,
}

pub struct RateLimiter {
    /// Bucket size: a client may burst this many requests, then gets `refill_per_sec`.
    capacity: f64,
    refill_per_sec: f64,
    max_clients: usize,
    table: Mutex<Table>,
}

impl RateLimiter {
    /// `per_minute` requests per minute per client, 0 for no limit.
    pub fn new(per_minute: u32, max_clients: usize) -> RateLimiter {
        RateLimiter {
            capacity: f64::from(per_minute),
            refill_per_sec: f64::from(per_minute) / 60.0,
            max_clients,
            table: Mutex::new(Table {
                clients: HashMap::new(),
                last_sweep: None,
            }),
        }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0.0
    }

    /// Takes one token for `ip` at `now`.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Decision {
        if !self.enabled() {
            return Decision::Allow;
        }
        let client = client_of(ip);
        // Single insert/update operations: a poisoned lock holds nothing half-done.
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = table.clients.get_mut(&client) {
            return self.take(bucket, now);
        }
        if table.clients.len() >= self.max_clients {
            self.sweep(&mut table, now);
            if table.clients.len() >= self.max_clients {
                return Decision::Allow;
            }
        }
        let mut bucket = Bucket {
            tokens: self.capacity,
            updated: now,
        };
        let decision = self.take(&mut bucket, now);
        table.clients.insert(client, bucket);
        decision
    }

    fn take(&self, bucket: &mut Bucket, now: Instant) -> Decision {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.refill_per_sec).min(self.capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Decision::Allow
        } else {
            let wait = (1.0 - bucket.tokens) / self.refill_per_sec;
            Decision::Limit {
                retry_after_secs: (wait.ceil() as u64).max(1),
            }
        }
    }

    /// Forgets clients whose bucket has refilled: they are indistinguishable from new ones.
    fn sweep(&self, table: &mut Table, now: Instant) {
        if table
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_INTERVAL)
        {
            return;
        }
        table.last_sweep = Some(now);
        let full_after = Duration::from_secs_f64(self.capacity / self.refill_per_sec);
        table
            .clients
            .retain(|_, b| now.saturating_duration_since(b.updated) < full_after);
    }

    #[cfg(test)]
    fn tracked_clients(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clients
            .len()
    }
}

/// The bucket a client address counts against: IPv4 as is (also when IPv4-mapped), IPv6 by /64.
fn client_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn a_burst_up_to_the_limit_then_429_with_retry_after() {
        let limiter = RateLimiter::new(60, 100);
        let t0 = Instant::now();
        for i in 0..60 {
            assert_eq!(
                limiter.check(ip("10.0.0.1"), t0),
                Decision::Allow,
                "request {i}"
            );
        }
        assert_eq!(
            limiter.check(ip("10.0.0.1"), t0),
            Decision::Limit {
                retry_after_secs: 1
            }
        );
        // Another client is not affected.
        assert_eq!(limiter.check(ip("10.0.0.2"), t0), Decision::Allow);
        // One token per second comes back.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(limiter.check(ip("10.0.0.1"), t1), Decision::Allow);
        assert!(matches!(
            limiter.check(ip("10.0.0.1"), t1),
            Decision::Limit { .. }
        ));
    }

    #[test]
    fn retry_after_covers_a_slow_refill() {
        let limiter = RateLimiter::new(2, 100); // one token every 30 s
        let t0 = Instant::now();
        limiter.check(ip("10.0.0.1"), t0);
        limiter.check(ip("10.0.0.1"), t0);
        assert_eq!(
            limiter.check(ip("10.0.0.1"), t0),
            Decision::Limit {
                retry_after_secs: 30
            }
        );
    }

    #[test]
    fn zero_disables_the_limit() {
        let limiter = RateLimiter::new(0, 100);
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(limiter.check(ip("10.0.0.1"), t0), Decision::Allow);
        }
        assert_eq!(limiter.tracked_clients(), 0);
    }

    #[test]
    fn ipv6_clients_share_their_slash_64_and_mapped_ipv4_is_ipv4() {
        let limiter = RateLimiter::new(2, 100);
        let t0 = Instant::now();
        assert_eq!(limiter.check(ip("2001:db8:1:2::1"), t0), Decision::Allow);
        assert_eq!(
            limiter.check(ip("2001:db8:1:2:ffff::9"), t0),
            Decision::Allow
        );
        assert!(matches!(
            limiter.check(ip("2001:db8:1:2::77"), t0),
            Decision::Limit { .. }
        ));
        assert_eq!(limiter.check(ip("2001:db8:1:3::1"), t0), Decision::Allow);

        assert_eq!(limiter.check(ip("192.0.2.1"), t0), Decision::Allow);
        assert_eq!(limiter.check(ip("::ffff:192.0.2.1"), t0), Decision::Allow);
        assert!(matches!(
            limiter.check(ip("192.0.2.1"), t0),
            Decision::Limit { .. }
        ));
    }

    #[test]
    fn the_table_is_bounded_and_idle_clients_are_forgotten() {
        let limiter = RateLimiter::new(60, 10);
        let t0 = Instant::now();
        for i in 0..10 {
            limiter.check(ip(&format!("10.0.0.{i}")), t0);
        }
        assert_eq!(limiter.tracked_clients(), 10);
        // Full and nobody idle: a new client is allowed but not tracked.
        assert_eq!(limiter.check(ip("10.0.1.1"), t0), Decision::Allow);
        assert_eq!(limiter.tracked_clients(), 10);
        // A minute later every bucket has refilled: the sweep forgets them all.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(limiter.check(ip("10.0.1.1"), later), Decision::Allow);
        assert_eq!(limiter.tracked_clients(), 1);
    }
}
