//! Redis: one server, three logical databases (primary, cache, queue), every key under one
//! configurable prefix. Connections are managed and reconnect by themselves; blocking reads get
//! their own connection without a response timeout so they neither time out nor stall others.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, TlsCertificates};

use crate::config::RedisConfig;

/// The three logical databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// Locks, tokens, delivery de-duplication, short-lived state.
    Primary,
    /// Caches that may be dropped at any time.
    Cache,
    /// Job streams.
    Queue,
}

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("invalid Redis URL `{url}`: {source}")]
    BadUrl {
        url: String,
        source: redis::RedisError,
    },
    #[error("redis.tls_ca_file {path}: {reason}")]
    BadCaFile { path: String, reason: String },
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Handles to the three databases plus the key prefix.
#[derive(Clone)]
pub struct Kv {
    prefix: String,
    primary: ConnectionManager,
    cache: ConnectionManager,
    queue: ConnectionManager,
    queue_client: Client,
    /// The clients behind primary, cache and queue, for probes that must not go through the
    /// managers (see [`Kv::ping`]).
    clients: [Client; 3],
    probe_timeout: Duration,
}

impl Kv {
    /// Builds lazy connections: nothing is contacted until the first command, so the daemon
    /// starts (and reports not-ready) while Redis is down, and reconnects when it returns.
    pub fn connect(config: &RedisConfig) -> Result<Kv, KvError> {
        let timeout = Duration::from_millis(config.response_timeout_ms);
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let tls = Tls::from_config(config)?;
        let primary_client = client_for(&config.url, config.primary_db, &tls)?;
        let cache_client = client_for(
            if config.cache_url.is_empty() {
                &config.url
            } else {
                &config.cache_url
            },
            if config.cache_url.is_empty() {
                config.cache_db
            } else {
                explicit_db(&config.cache_url)
            },
            &tls,
        )?;
        let queue_client = client_for(
            if config.queue_url.is_empty() {
                &config.url
            } else {
                &config.queue_url
            },
            if config.queue_url.is_empty() {
                config.queue_db
            } else {
                explicit_db(&config.queue_url)
            },
            &tls,
        )?;
        let lazy = |client: &Client| {
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())
        };
        Ok(Kv {
            prefix: config.key_prefix.clone(),
            primary: lazy(&primary_client)?,
            cache: lazy(&cache_client)?,
            queue: lazy(&queue_client)?,
            clients: [primary_client, cache_client, queue_client.clone()],
            queue_client,
            probe_timeout: timeout,
        })
    }

    /// `prefix` + `suffix`: every key this appliance writes goes through here.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A multiplexed connection to one database; clone freely.
    pub fn conn(&self, db: Db) -> ConnectionManager {
        match db {
            Db::Primary => self.primary.clone(),
            Db::Cache => self.cache.clone(),
            Db::Queue => self.queue.clone(),
        }
    }

    /// A dedicated connection to the queue database for blocking reads (XREADGROUP BLOCK):
    /// no response timeout, and not shared with anyone else.
    pub fn blocking_queue_conn(&self) -> Result<ConnectionManager, KvError> {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        Ok(ConnectionManager::new_lazy_with_config(
            self.queue_client.clone(),
            config,
        )?)
    }

    /// PING on every database over a fresh connection, for readiness. Not through the managers:
    /// after an outage a manager hands out its last failed (or backing-off) reconnection first,
    /// so a probe through it kept reporting Redis down after Redis was back. A fresh
    /// connection answers "does Redis answer now"; the managers reconnect on their own.
    pub async fn ping(&self) -> Result<(), KvError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.probe_timeout))
            .set_response_timeout(Some(self.probe_timeout));
        for client in &self.clients {
            let mut c = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            let _: String = redis::cmd("PING").query_async(&mut c).await?;
        }
        Ok(())
    }

    /// Deletes every key under the prefix in all three databases (tests and `admin` reset).
    pub async fn delete_all_prefixed(&self) -> Result<u64, KvError> {
        let mut deleted = 0;
        for db in [Db::Primary, Db::Cache, Db::Queue] {
            let mut c = self.conn(db);
            let pattern = format!("{}*", escape_glob(&self.prefix));
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut c)
                    .await?;
                if !keys.is_empty() {
                    let n: u64 = redis::cmd("DEL").arg(&keys).query_async(&mut c).await?;
                    deleted += n;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(deleted)
    }
}

/// The database index written in a URL path (`redis://h:6379/5` → 5), 0 when absent.
fn explicit_db(url: &str) -> u8 {
    url.into_connection_info()
        .map(|info| info.redis_settings().db() as u8)
        .unwrap_or(0)
}

/// How `rediss://` URLs check the server: the roots of `redis.tls_ca_file`, or the system's.
struct Tls {
    ca_pem: Option<Vec<u8>>,
}

impl Tls {
    fn from_config(config: &RedisConfig) -> Result<Tls, KvError> {
        // rustls needs one process-wide crypto provider chosen when several are compiled in;
        // an earlier choice (Err here) stands.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        if config.tls_ca_file.is_empty() {
            return Ok(Tls { ca_pem: None });
        }
        let pem = std::fs::read(&config.tls_ca_file).map_err(|e| KvError::BadCaFile {
            path: config.tls_ca_file.clone(),
            reason: e.to_string(),
        })?;
        Ok(Tls { ca_pem: Some(pem) })
    }

    fn client(&self, info: redis::ConnectionInfo) -> redis::RedisResult<Client> {
        match (&self.ca_pem, info.addr()) {
            (Some(pem), redis::ConnectionAddr::TcpTls { .. }) => Client::build_with_tls(
                info,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            _ => Client::open(info),
        }
    }
}

/// A client for `url`, selecting `db` unless the URL names one itself.
fn client_for(url: &str, db: u8, tls: &Tls) -> Result<Client, KvError> {
    let bad = |source| KvError::BadUrl {
        url: url.to_string(),
        source,
    };
    let info = url.into_connection_info().map_err(bad)?;
    let has_db = url
        .split_once("://")
        .map(|(_, rest)| rest.split_once('/').is_some_and(|(_, p)| !p.is_empty()))
        .unwrap_or(false);
    let info = if has_db {
        info
    } else {
        let settings = info.redis_settings().clone().set_db(db as i64);
        info.set_redis_settings(settings)
    };
    tls.client(info).map_err(bad)
}

fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rediss_urls_build_clients() {
        let config = RedisConfig {
            url: "rediss://:pw@redis.internal:6380/3".into(),
            ..Default::default()
        };
        crate::config::load_from_env(&|name| {
            (name == "COCOV_REDIS_URL").then(|| config.url.clone())
        })
        .expect("rediss:// is accepted by the configuration");
        let tls = Tls::from_config(&config).unwrap();
        let client = client_for(&config.url, 0, &tls).unwrap();
        assert!(matches!(
            client.get_connection_info().addr(),
            redis::ConnectionAddr::TcpTls { .. }
        ));
        let missing = RedisConfig {
            tls_ca_file: "/nonexistent/ca.pem".into(),
            ..config
        };
        assert!(matches!(
            Tls::from_config(&missing),
            Err(KvError::BadCaFile { .. })
        ));
    }
}
