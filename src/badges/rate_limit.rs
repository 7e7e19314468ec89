//! Per-client rate limit for badge requests: a token bucket per client address, in memory.
//!
//! It is decided before the cache, the database or the renderer are touched, so a limited
//! client costs one map lookup, and the limiter itself never invalidates or recomputes anything.
//! The client is the TCP peer, or the address a trusted proxy forwarded (see `client_ip`).
//! IPv6 clients are grouped by /64, the block a single host usually gets, so rotating addresses
//! does not help.
//!
//! The table is bounded. When it is full, the client with the fullest bucket is forgotten: it
//! is the one closest to a new client, so forgetting it loses the least, and a client being
//! limited (an empty bucket) is forgotten last. A flood of new addresses therefore cannot free
//! a limited client, and no client goes untracked.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Most clients tracked at once (about 80 bytes each).
pub const MAX_CLIENTS: usize = 65_536;

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
    /// Where the bucket sits in `Table::by_fullness`.
    rank: i64,
}

struct Table {
    clients: HashMap<IpAddr, Bucket>,
    /// (rank, client), fullest bucket last. A bucket holds `tokens + (t - updated) * rate`
    /// tokens at time t (until capped), so ordering by `tokens - updated * rate` orders by
    /// fullness at any instant, and a rank only changes when its bucket does.
    by_fullness: BTreeSet<(i64, IpAddr)>,
}

pub struct RateLimiter {
    /// Bucket size: a client may burst this many requests, then gets `refill_per_sec`.
    capacity: f64,
    refill_per_sec: f64,
    max_clients: usize,
    /// The origin of ranks.
    epoch: Instant,
    table: Mutex<Table>,
}

impl RateLimiter {
    /// `per_minute` requests per minute per client, 0 for no limit.
    pub fn new(per_minute: u32, max_clients: usize) -> RateLimiter {
        RateLimiter {
            capacity: f64::from(per_minute),
            refill_per_sec: f64::from(per_minute) / 60.0,
            max_clients: max_clients.max(1),
            epoch: Instant::now(),
            table: Mutex::new(Table {
                clients: HashMap::new(),
                by_fullness: BTreeSet::new(),
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
        // Every change below keeps the map and the set in step before anything can panic.
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let table = &mut *table;
        let mut bucket = match table.clients.get(&client) {
            Some(bucket) => {
                table.by_fullness.remove(&(bucket.rank, client));
                *bucket
            }
            None => {
                if table.clients.len() >= self.max_clients
                    && let Some((_, fullest)) = table.by_fullness.pop_last()
                {
                    table.clients.remove(&fullest);
                }
                Bucket {
                    tokens: self.capacity,
                    updated: now,
                    rank: 0,
                }
            }
        };
        let decision = self.take(&mut bucket, now);
        bucket.rank = self.rank(&bucket);
        table.by_fullness.insert((bucket.rank, client));
        table.clients.insert(client, bucket);
        decision
    }

    fn take(&self, bucket: &mut Bucket, now: Instant) -> Decision {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.refill_per_sec).min(self.capacity);
        bucket.updated = bucket.updated.max(now);
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

    /// `tokens - updated * rate` in millionths of a token (see [`Table::by_fullness`]).
    fn rank(&self, bucket: &Bucket) -> i64 {
        let since = bucket
            .updated
            .saturating_duration_since(self.epoch)
            .as_secs_f64();
        ((bucket.tokens - since * self.refill_per_sec) * 1e6) as i64
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
    use std::time::Duration;

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
    fn a_full_table_forgets_the_fullest_bucket_never_a_limited_client() {
        let limiter = RateLimiter::new(60, 10);
        let t0 = Instant::now();
        let limited = ip("10.9.9.9");
        for _ in 0..60 {
            limiter.check(limited, t0);
        }
        assert!(matches!(limiter.check(limited, t0), Decision::Limit { .. }));
        // A flood of new addresses, far more than the table holds.
        for i in 0..1000u32 {
            let flood = IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i));
            assert_eq!(limiter.check(flood, t0), Decision::Allow);
            assert!(limiter.tracked_clients() <= 10);
        }
        // Still limited: the flood evicted its own buckets, not the limited client's.
        assert!(matches!(limiter.check(limited, t0), Decision::Limit { .. }));
        // A flood client over its own limit stays limited too, however many others come.
        let other = ip("10.0.0.1");
        for _ in 0..60 {
            limiter.check(other, t0);
        }
        for i in 0..100u32 {
            limiter.check(IpAddr::from(std::net::Ipv4Addr::from(0x0c00_0000 + i)), t0);
        }
        assert!(matches!(limiter.check(other, t0), Decision::Limit { .. }));
        assert_eq!(limiter.tracked_clients(), 10);
        // Once refilled, the limited client is allowed again.
        let later = t0 + std::time::Duration::from_secs(61);
        assert_eq!(limiter.check(limited, later), Decision::Allow);
    }
}
