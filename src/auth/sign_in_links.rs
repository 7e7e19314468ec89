//! One-time sign-in links: a `csl_` token an administrator hands to a user (printed by the CLI),
//! kept in Redis only as its SHA-256 with the user id, for a limited time, and consumed by the
//! first sign-in (GETDEL), so a link works once.

use std::time::Duration;

use super::tokens::{self, TokenKind};
use crate::kv::{Db, Kv};

fn key(kv: &Kv, token: &str) -> String {
    kv.key(&format!("auth:sign-in-link:{}", tokens::hash(token)))
}

/// A new link token for `user_id`, valid for `lifetime`.
pub async fn create(kv: &Kv, user_id: i64, lifetime: Duration) -> redis::RedisResult<String> {
    let token = tokens::generate(TokenKind::SignInLink);
    let mut c = kv.conn(Db::Primary);
    redis::cmd("SET")
        .arg(key(kv, &token))
        .arg(user_id)
        .arg("EX")
        .arg(lifetime.as_secs().max(1))
        .query_async::<()>(&mut c)
        .await?;
    Ok(token)
}

/// The user a link token was made for, once; None when it is unknown, used or expired.
pub async fn consume(kv: &Kv, token: &str) -> redis::RedisResult<Option<i64>> {
    if !tokens::well_formed(token, TokenKind::SignInLink) {
        return Ok(None);
    }
    let mut c = kv.conn(Db::Primary);
    redis::cmd("GETDEL")
        .arg(key(kv, token))
        .query_async(&mut c)
        .await
}
