//! Failed sign-ins counted in Redis per account and per client address, so every API host
//! shares the count. Over either limit, every attempt is refused until the window passes, a
//! correct password included: otherwise guessing would only be slowed, not stopped. The account
//! is counted by the login as typed (lowercased) whether or not it exists, so the limiter
//! answers the same for logins that do not exist.

use std::net::IpAddr;
use std::time::Duration;

use crate::kv::{Db, Kv};

/// The limits, from `[accounts]`.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_account: u32,
    pub per_address: u32,
    pub window: Duration,
}

impl LoginLimits {
    pub fn from_config(config: &crate::config::AccountsConfig) -> LoginLimits {
        LoginLimits {
            per_account: config.login_failures_per_account,
            per_address: config.login_failures_per_address,
            window: Duration::from_secs(config.login_window_seconds),
        }
    }
}

/// The two counters one attempt is charged to.
pub struct Attempt {
    account_key: String,
    address_key: String,
}

impl Attempt {
    pub fn new(kv: &Kv, login: &str, address: IpAddr) -> Attempt {
        // Hashed so any login, however long or odd, makes a short, safe key.
        let account = crate::auth::tokens::hash(&login.trim().to_lowercase());
        Attempt {
            account_key: kv.key(&format!("auth:login-failures:account:{account}")),
            address_key: kv.key(&format!("auth:login-failures:address:{}", group(address))),
        }
    }

    /// None when the attempt may go ahead; otherwise how many seconds until it may.
    pub async fn blocked(&self, kv: &Kv, limits: LoginLimits) -> redis::RedisResult<Option<u64>> {
        let mut c = kv.conn(Db::Primary);
        let (account, address): (Option<u32>, Option<u32>) = redis::pipe()
            .get(&self.account_key)
            .get(&self.address_key)
            .query_async(&mut c)
            .await?;
        let over = [
            (account, limits.per_account, &self.account_key),
            (address, limits.per_address, &self.address_key),
        ]
        .into_iter()
        .filter(|(count, limit, _)| count.unwrap_or(0) >= *limit)
        .map(|(_, _, key)| key.clone())
        .collect::<Vec<_>>();
        let mut wait = None;
        for key in over {
            let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut c).await?;
            let ttl = u64::try_from(ttl).unwrap_or(limits.window.as_secs()).max(1);
            wait = Some(wait.map_or(ttl, |w: u64| w.max(ttl)));
        }
        Ok(wait)
    }

    /// Counts a failure against both counters; the window starts at the first failure.
    pub async fn failed(&self, kv: &Kv, limits: LoginLimits) -> redis::RedisResult<()> {
        let mut c = kv.conn(Db::Primary);
        let window = limits.window.as_secs().max(1);
        redis::pipe()
            .incr(&self.account_key, 1)
            .ignore()
            .cmd("EXPIRE")
            .arg(&self.account_key)
            .arg(window)
            .arg("NX")
            .ignore()
            .incr(&self.address_key, 1)
            .ignore()
            .cmd("EXPIRE")
            .arg(&self.address_key)
            .arg(window)
            .arg("NX")
            .ignore()
            .query_async::<()>(&mut c)
            .await
    }

    /// A successful sign-in clears the account's count (the address keeps its own).
    pub async fn succeeded(&self, kv: &Kv) -> redis::RedisResult<()> {
        let mut c = kv.conn(Db::Primary);
        redis::cmd("DEL")
            .arg(&self.account_key)
            .query_async::<()>(&mut c)
            .await
    }
}

/// IPv6 clients are counted by /64, the block one host usually holds, so rotating addresses
/// inside it does not buy more attempts.
fn group(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::group;

    #[test]
    fn ipv6_is_grouped_by_64() {
        assert_eq!(group("10.1.2.3".parse().unwrap()), "10.1.2.3");
        assert_eq!(
            group("2001:db8:1:2:aaaa::1".parse().unwrap()),
            group("2001:db8:1:2:bbbb::9".parse().unwrap())
        );
        assert_eq!(group("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}
