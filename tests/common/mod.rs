//! Test harness shared by the integration tests: a fresh PostgreSQL database and a unique Redis
//! key prefix per test (so tests run in parallel and leave nothing behind), real S3 servers, and
//! the daemon itself.
#![allow(dead_code)]

pub mod browser;
pub mod daemon_process;
pub mod fake_github;
pub mod git_server;
pub mod oidc_provider;
pub mod origin;
pub mod private_postgres;
pub mod private_redis;
pub mod registry;
pub mod requests;
pub mod s3_servers;

use std::time::Duration;

use cocov::config::{Config, DatabaseConfig, RedisConfig};
use cocov::kv::Kv;
use sqlx::{Connection, PgConnection, PgPool};

/// The server tests create their databases on (trust auth on this machine and in CI).
pub fn admin_database_url() -> String {
    std::env::var("COCOV_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn test_redis_url() -> String {
    std::env::var("COCOV_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn unique(tag: &str) -> String {
    format!("{tag}{}", uuid::Uuid::new_v4().simple())
}

/// A database of its own, migrated, dropped when the value is dropped.
pub struct TestDb {
    pub name: String,
    pub config: DatabaseConfig,
    pub pool: PgPool,
}

impl TestDb {
    /// A fresh, empty database (not migrated).
    pub async fn empty() -> TestDb {
        let name = unique("cocov_t_");
        let mut admin = PgConnection::connect(&admin_database_url())
            .await
            .expect("connect to the test PostgreSQL server (see README: Testing)");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_database_url()).expect("admin URL");
        url.set_path(&name);
        let config = DatabaseConfig {
            url: url.to_string(),
            max_connections: 5,
            ..Default::default()
        };
        let pool = cocov::db::connect(&config).expect("pool");
        TestDb { name, config, pool }
    }

    /// A fresh database with every migration applied.
    pub async fn migrated() -> TestDb {
        let db = TestDb::empty().await;
        cocov::db::migrate(&db.config)
            .await
            .expect("migrate test database");
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop cannot await, and the test's own runtime may be single-threaded and blocked here,
        // so use a private runtime on its own thread. The pool is not closed first: its
        // connections belong to the test's runtime; DROP DATABASE … WITH (FORCE) ends them.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_database_url()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            });
        })
        .join();
    }
}

/// A Redis key prefix of its own; every key under it is deleted when dropped.
pub struct TestRedis {
    pub config: RedisConfig,
    pub kv: Kv,
}

impl TestRedis {
    pub fn new() -> TestRedis {
        let config = RedisConfig {
            url: test_redis_url(),
            key_prefix: unique("cocov-test-") + ":",
            ..Default::default()
        };
        let kv = Kv::connect(&config).expect("redis client");
        TestRedis { config, kv }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let kv = self.kv.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let _ = kv.delete_all_prefixed().await;
            });
        })
        .join();
    }
}

/// A configuration pointing at this test's database, Redis prefix and a temporary storage dir.
pub fn test_config(db: &TestDb, redis: &TestRedis, storage_dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.database = db.config.clone();
    config.redis = redis.config.clone();
    config.storage.local_path = storage_dir.to_path_buf();
    config.server.bind_address = "127.0.0.1:0".parse().unwrap();
    config.badger.bind_port = 0;
    config.server.shutdown_grace_seconds = 5;
    // Under /tmp, so a sandbox running as `nobody` can reach its copy of the source.
    config.worker.work_dir = std::env::temp_dir().join("cocov-test-work");
    config.worker.tool_paths = linters_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    config
}

/// The virtualenv with the PyPI linters (ruff, bandit) that `scripts/install-test-tools.sh`
/// makes, when it exists.
pub fn linters_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(
        std::env::var("COCOV_TEST_LINTERS").unwrap_or_else(|_| "/opt/cocov-test-linters".into()),
    );
    dir.join("bin/ruff").exists().then_some(dir)
}

/// The `cocov` binary, never picking up the caller's COCOV_* settings or systemd sockets.
pub fn cocov_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cocov"));
    for (key, _) in std::env::vars() {
        if key.starts_with("COCOV_") || key == "NOTIFY_SOCKET" || key == "WATCHDOG_USEC" {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

/// Polls `check` until it returns Some, failing the test with `what` after `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The daemon running in this process against its own database, Redis prefix and storage dir.
pub struct TestApp {
    pub daemon: Option<cocov::daemon::RunningDaemon>,
    pub base: String,
    pub badger_base: String,
    pub client: reqwest::Client,
    pub storage_dir: tempfile::TempDir,
    pub redis: TestRedis,
    pub db: TestDb,
}

impl TestApp {
    pub async fn start() -> TestApp {
        TestApp::start_with(|_| {}).await
    }

    /// Starts with a configuration adjusted by `adjust` (roles, limits, …).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let db = TestDb::migrated().await;
        let storage_dir = tempfile::tempdir().expect("tempdir");
        TestApp::start_on(db, storage_dir, adjust).await
    }

    /// Starts on an existing database and storage directory (e.g. restored from a backup).
    pub async fn start_on(
        db: TestDb,
        storage_dir: tempfile::TempDir,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        let redis = TestRedis::new();
        let mut config = test_config(&db, &redis, storage_dir.path());
        config.queue.reclaim_idle_seconds = 2;
        config.queue.retry_base_delay_ms = 50;
        adjust(&mut config);
        let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let daemon = cocov::daemon::start(config, stop_rx)
            .await
            .expect("daemon starts");
        let base = daemon
            .api_addr
            .map(|a| format!("http://{a}"))
            .unwrap_or_default();
        let badger_base = daemon
            .badger_addr
            .map(|a| format!("http://{a}"))
            .unwrap_or_default();
        let client = reqwest::Client::builder().no_gzip().build().unwrap();
        TestApp {
            daemon: Some(daemon),
            base,
            badger_base,
            client,
            storage_dir,
            redis,
            db,
        }
    }

    pub fn app(&self) -> &cocov::app::App {
        &self.daemon.as_ref().expect("running").app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A user (admin or not) and a personal token for it.
    pub async fn user_token(&self, login: &str, admin: bool) -> String {
        let actor = cocov::audit::AuditActor::system();
        let pool = &self.app().db;
        // Make sure the "first user is admin" rule does not promote a non-admin test user.
        if !admin {
            let _ = cocov::auth::users::create(pool, "first-admin", true, &actor).await;
        }
        let user = cocov::auth::users::create(pool, login, admin, &actor)
            .await
            .expect("create user");
        cocov::auth::users::create_personal_token(pool, &user, "test", &actor)
            .await
            .expect("token")
    }

    /// Waits until the commit's ingestion reached a final state; returns (status, error).
    pub async fn ingestion_outcome(
        &self,
        repository_id: i64,
        sha: &str,
    ) -> (String, Option<String>) {
        eventually("ingestion to finish", Duration::from_secs(60), || async {
            let row: Option<(String, Option<String>)> = sqlx::query_as(
                "SELECT ingest_status, ingest_error FROM commits WHERE repository_id = $1 AND sha = $2::citext",
            )
            .bind(repository_id)
            .bind(sha)
            .fetch_optional(&self.app().db)
            .await
            .unwrap();
            row.filter(|(s, _)| s == "completed" || s == "errored")
        })
        .await
    }

    pub async fn shutdown(mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown().await;
        }
    }
}
