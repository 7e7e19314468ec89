//! The short-lived state of OAuth sign-ins, in Redis, each entry used once (GETDEL):
//!
//! - the original API flow (`/auth/begin` → `/auth/exchange`): `auth:<exchange_token>` holds
//!   `{"state": …}` for an hour; the client proves it began the flow by presenting both;
//! - the browser flow (`/auth/github` → its callback): `auth:github-state:<state>` holds the
//!   SHA-256 of a random nonce the browser keeps in an HttpOnly cookie, and where to go after.
//!   The state alone is not enough: a callback URL carried to another browser (login CSRF, a
//!   leaked link) fails there, because that browser has no such cookie.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::tokens;
use crate::kv::{Db, Kv};

/// The original's lifetime of an exchange token.
pub const EXCHANGE_LIFETIME: Duration = Duration::from_secs(3600);
/// A browser has this long to come back from GitHub.
pub const BROWSER_LIFETIME: Duration = Duration::from_secs(600);

/// 42 hex characters (168 random bits), the original's state and exchange token format.
pub fn random_hex42() -> String {
    let mut bytes = [0u8; 21];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn is_hex42(s: &str) -> bool {
    s.len() == 42 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(Serialize, Deserialize)]
struct ExchangeEntry {
    state: String,
}

/// A new `(state, exchange_token)` pair, stored for [`EXCHANGE_LIFETIME`].
pub async fn begin_exchange(kv: &Kv) -> redis::RedisResult<(String, String)> {
    let state = random_hex42();
    let exchange_token = random_hex42();
    let entry = serde_json::to_string(&ExchangeEntry {
        state: state.clone(),
    })
    .expect("a string serialises");
    set(
        kv,
        &exchange_key(kv, &exchange_token),
        &entry,
        EXCHANGE_LIFETIME,
    )
    .await?;
    Ok((state, exchange_token))
}

/// Whether `state` is the one stored for `exchange_token`. The entry is deleted whatever the
/// answer, so a guess costs the flow it guessed at and nothing can be tried twice.
pub async fn take_exchange(kv: &Kv, exchange_token: &str, state: &str) -> redis::RedisResult<bool> {
    if !is_hex42(exchange_token) {
        return Ok(false);
    }
    let Some(stored) = getdel(kv, &exchange_key(kv, exchange_token)).await? else {
        return Ok(false);
    };
    Ok(serde_json::from_str::<ExchangeEntry>(&stored)
        .is_ok_and(|e| bool::from(e.state.as_bytes().ct_eq(state.as_bytes()))))
}

#[derive(Serialize, Deserialize)]
struct BrowserEntry {
    nonce_sha256: String,
    return_to: String,
}

/// A browser flow that began: the state for GitHub, the nonce for the browser's cookie.
#[derive(Debug)]
pub struct BrowserFlow {
    pub state: String,
    pub nonce: String,
}

/// Begins a browser flow that ends at `return_to` (already checked by `auth::return_to`).
pub async fn begin_browser(kv: &Kv, return_to: &str) -> redis::RedisResult<BrowserFlow> {
    let state = random_hex42();
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let nonce = hex::encode(bytes);
    let entry = serde_json::to_string(&BrowserEntry {
        nonce_sha256: tokens::hash(&nonce),
        return_to: return_to.to_string(),
    })
    .expect("strings serialise");
    set(kv, &browser_key(kv, &state), &entry, BROWSER_LIFETIME).await?;
    Ok(BrowserFlow { state, nonce })
}

/// Why a callback's state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the sign-in state is unknown, expired or already used")]
    Unknown,
    #[error("the sign-in state belongs to another browser")]
    OtherBrowser,
}

/// Ends a browser flow: where to go afterwards, if `state` is known and unused and `nonce` (the
/// browser's cookie) is the one it was begun with. The state is used up either way.
pub async fn take_browser(
    kv: &Kv,
    state: &str,
    nonce: Option<&str>,
) -> Result<Result<String, StateError>, redis::RedisError> {
    if !is_hex42(state) {
        return Ok(Err(StateError::Unknown));
    }
    let Some(stored) = getdel(kv, &browser_key(kv, state)).await? else {
        return Ok(Err(StateError::Unknown));
    };
    let Ok(entry) = serde_json::from_str::<BrowserEntry>(&stored) else {
        return Ok(Err(StateError::Unknown));
    };
    if !nonce.is_some_and(|n| tokens::matches(n, &entry.nonce_sha256)) {
        return Ok(Err(StateError::OtherBrowser));
    }
    Ok(Ok(entry.return_to))
}

fn exchange_key(kv: &Kv, exchange_token: &str) -> String {
    kv.key(&format!("auth:{exchange_token}"))
}

fn browser_key(kv: &Kv, state: &str) -> String {
    kv.key(&format!("auth:github-state:{state}"))
}

async fn set(kv: &Kv, key: &str, value: &str, lifetime: Duration) -> redis::RedisResult<()> {
    let mut c = kv.conn(Db::Primary);
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("EX")
        .arg(lifetime.as_secs())
        .query_async(&mut c)
        .await
}

async fn getdel(kv: &Kv, key: &str) -> redis::RedisResult<Option<String>> {
    let mut c = kv.conn(Db::Primary);
    redis::cmd("GETDEL").arg(key).query_async(&mut c).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_42_hex() {
        let s = random_hex42();
        assert!(is_hex42(&s), "{s}");
        assert_ne!(s, random_hex42());
        assert!(!is_hex42("../../etc"));
    }
}
