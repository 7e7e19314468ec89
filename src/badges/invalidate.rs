//! Keeping cached badges fresh across hosts. The badger may run on another host than the worker
//! or API that changes coverage, issues, names or default branches, so changes are announced on
//! the Redis pub/sub channel `<prefix>badges:invalidate` as JSON
//! `{"repository_id": 1, "repository": "name", "branch": "main"}` (`branch` optional), and every
//! badger subscribes on a dedicated connection. Badgers in this process are also told directly,
//! so the change shows at once here even while Redis is away.
//!
//! Pub/sub is fire-and-forget: while a badger is disconnected it misses messages, so each
//! (re)subscription clears its whole cache, and the cache's TTL bounds staleness after a message
//! lost any other way.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::IntoConnectionInfo;
use serde::{Deserialize, Serialize};

use super::cache::BadgeCache;
use crate::app::App;
use crate::config::RedisConfig;
use crate::kv::Db;

/// The channel name under the key prefix (pub/sub channels are not per database, so the prefix
/// is what keeps two installations on one Redis apart).
pub const CHANNEL: &str = "badges:invalidate";

/// How often the subscription is probed: a host that vanished without closing the socket would
/// otherwise leave us waiting on a dead connection forever.
const PING_EVERY: Duration = Duration::from_secs(15);
const PING_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub repository_id: i64,
    pub repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// Badge caches of this process, by channel (one per running badger; several only in tests,
/// each under its own key prefix).
static LOCAL: LazyLock<Mutex<HashMap<String, Vec<Weak<BadgeCache>>>>> =
    LazyLock::new(Default::default);

pub(super) fn register_local(channel: &str, cache: &Arc<BadgeCache>) {
    let mut local = LOCAL.lock().unwrap_or_else(|e| e.into_inner());
    // Forget stopped badgers (tests start many in one process).
    local.retain(|_, caches| {
        caches.retain(|w| w.strong_count() > 0);
        !caches.is_empty()
    });
    local
        .entry(channel.to_string())
        .or_default()
        .push(Arc::downgrade(cache));
}

fn drop_locally(channel: &str, message: &Message) {
    let caches: Vec<Arc<BadgeCache>> = {
        let local = LOCAL.lock().unwrap_or_else(|e| e.into_inner());
        local
            .get(channel)
            .map(|v| v.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default()
    };
    for cache in caches {
        cache.invalidate_repository(message.repository_id, &message.repository);
    }
}

/// Call after a change to what a repository's badges show or whether they exist: coverage or
/// issues of a branch, a rename (with the new name), a deletion, a default-branch change, a
/// creation (clears a cached "unknown repository" for the name). Call it after the change is
/// committed. Drops this process's entries at once and tells every other badger through Redis;
/// a failed publish is logged, and the other badgers catch up within their cache TTL.
pub async fn invalidate(
    app: &App,
    repository_id: i64,
    repository_name: &str,
    branch: Option<&str>,
) {
    let channel = app.kv.key(CHANNEL);
    let message = Message {
        repository_id,
        repository: repository_name.to_string(),
        branch: branch.map(str::to_string),
    };
    drop_locally(&channel, &message);
    let payload = match serde_json::to_string(&message) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "badge invalidation could not be encoded");
            return;
        }
    };
    let mut conn = app.kv.conn(Db::Primary);
    let published: Result<i64, _> = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(payload)
        .query_async(&mut conn)
        .await;
    if let Err(e) = published {
        tracing::warn!(error = %e, repository_id, "badge invalidation not published; other badgers refresh within their TTL");
    }
}

/// Call after a commit's numbers may have changed (a status was set for it): invalidates the
/// badges of every branch whose head it is. Failures are logged; the TTL is the safety net.
pub async fn invalidate_commit(app: &App, commit_id: i64) {
    let heads: Result<Vec<(i64, String, String)>, _> = sqlx::query_as(
        "SELECT r.id, r.name::text, b.name::text FROM branches b \
         JOIN repositories r ON r.id = b.repository_id WHERE b.head_commit_id = $1",
    )
    .bind(commit_id)
    .fetch_all(&app.db)
    .await;
    match heads {
        Ok(heads) => {
            for (repository_id, repository, branch) in heads {
                invalidate(app, repository_id, &repository, Some(&branch)).await;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, commit_id, "badge invalidation: branches not found; badges refresh within their TTL");
        }
    }
}

/// Aborts the subscriber when the badge routes (which own this) are dropped.
pub(super) struct Subscriber(tokio::task::AbortHandle);

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts listening for invalidations for `cache`. Needs a Tokio runtime (the daemon's);
/// without one, or with an unusable Redis URL, it logs and returns `None` (badges then refresh
/// through local invalidations and the TTL only).
pub(super) fn subscribe(app: &App, cache: &Arc<BadgeCache>) -> Option<Subscriber> {
    let channel = app.kv.key(CHANNEL);
    let client = match client(&app.config.redis) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "badge invalidation: unusable Redis URL");
            return None;
        }
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("badge invalidation: no runtime; not subscribing");
        return None;
    };
    let task = runtime.spawn(listen(client, channel, Arc::downgrade(cache)));
    Some(Subscriber(task.abort_handle()))
}

/// A client for the primary database, as `Kv` builds it (pub/sub ignores the database index,
/// but the URL and credentials are the same).
fn client(config: &RedisConfig) -> redis::RedisResult<redis::Client> {
    let info = config.url.as_str().into_connection_info()?;
    let names_db = config
        .url
        .split_once("://")
        .is_some_and(|(_, rest)| rest.split_once('/').is_some_and(|(_, p)| !p.is_empty()));
    let info = if names_db {
        info
    } else {
        let settings = info
            .redis_settings()
            .clone()
            .set_db(i64::from(config.primary_db));
        info.set_redis_settings(settings)
    };
    redis::Client::open(info)
}

/// Subscribes, listens until the connection fails, and starts over with backoff, for as long
/// as the cache exists.
async fn listen(client: redis::Client, channel: String, cache: Weak<BadgeCache>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        if cache.strong_count() == 0 {
            return;
        }
        match connect(&client, &channel).await {
            Ok(pubsub) => {
                backoff = Duration::from_millis(200);
                // Anything could have changed while we were not listening.
                if let Some(c) = cache.upgrade() {
                    c.clear();
                }
                tracing::debug!(%channel, "badge invalidation: subscribed");
                let reason = receive(pubsub, &cache).await;
                tracing::warn!(%channel, reason, "badge invalidation: subscription lost; resubscribing");
            }
            Err(e) => {
                tracing::warn!(%channel, error = %e, ?backoff, "badge invalidation: cannot subscribe; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn connect(client: &redis::Client, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let timed_out = || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
    let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| timed_out())??;
    tokio::time::timeout(CONNECT_TIMEOUT, pubsub.subscribe(channel))
        .await
        .map_err(|_| timed_out())??;
    Ok(pubsub)
}

/// Applies messages until the connection ends or stops answering pings; returns why.
async fn receive(pubsub: redis::aio::PubSub, cache: &Weak<BadgeCache>) -> &'static str {
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return "connection closed" };
                let Some(cache) = cache.upgrade() else { return "badger stopped" };
                apply(&cache, message.get_payload_bytes());
            }
            _ = ping.tick() => {
                match tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => return "ping failed",
                    Err(_) => return "ping timed out",
                }
            }
        }
    }
}

fn apply(cache: &BadgeCache, payload: &[u8]) {
    match serde_json::from_slice::<Message>(payload) {
        Ok(m) => cache.invalidate_repository(m.repository_id, &m.repository),
        Err(e) => tracing::warn!(error = %e, "badge invalidation: ignoring a malformed message"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_wire_shape() {
        let m = Message {
            repository_id: 7,
            repository: "Repo".into(),
            branch: None,
        };
        assert_eq!(
            serde_json::to_string(&m).expect("json"),
            r#"{"repository_id":7,"repository":"Repo"}"#
        );
        let with_branch: Message =
            serde_json::from_str(r#"{"repository_id":7,"repository":"Repo","branch":"dev"}"#)
                .expect("parse");
        assert_eq!(with_branch.branch.as_deref(), Some("dev"));
    }

    #[test]
    fn the_client_uses_the_configured_url() {
        let config = RedisConfig {
            url: "redis://127.0.0.1:6390".into(),
            ..Default::default()
        };
        let made = client(&config).expect("client");
        assert_eq!(
            made.get_connection_info().redis_settings().db(),
            i64::from(config.primary_db)
        );
        let bad = RedisConfig {
            url: "not a url".into(),
            ..Default::default()
        };
        assert!(client(&bad).is_err());
    }
}
