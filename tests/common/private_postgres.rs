//! A private, throw-away PostgreSQL server (initdb + pg_ctl from the PostgreSQL 15 binaries into
//! a temporary directory) a test may crash and start again without disturbing the shared one.
//! As root the server runs as the `postgres` user (initdb refuses root). Stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use cocov::config::DatabaseConfig;
use sqlx::PgPool;

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct PrivatePostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    running: bool,
}

fn as_server_user(program: &str) -> Command {
    let path = Path::new(BIN).join(program);
    if nix::unistd::Uid::effective().is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(path);
        cmd
    } else {
        Command::new(path)
    }
}

fn check(what: &str, out: std::io::Result<Output>) {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivatePostgres {
    /// Whether the binaries are installed (the test is skipped otherwise).
    pub fn available() -> bool {
        Path::new(BIN).join("initdb").exists()
    }

    /// initdb (trust auth, no fsync: a test server) and start on a free port.
    pub async fn start() -> PrivatePostgres {
        let dir = tempfile::Builder::new()
            .prefix("cocov-private-pg-")
            .tempdir()
            .unwrap();
        if nix::unistd::Uid::effective().is_root() {
            check(
                "chown the data directory",
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir.path())
                    .output(),
            );
        }
        check(
            "initdb",
            as_server_user("initdb")
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(dir.path().join("data"))
                .output(),
        );
        let port = super::requests::free_port();
        let mut server = PrivatePostgres {
            port,
            dir,
            running: false,
        };
        server.resume().await;
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A pool configuration for `database` on this server.
    pub fn config(&self, database: &str) -> DatabaseConfig {
        DatabaseConfig {
            url: self.url(database),
            max_connections: 5,
            ..Default::default()
        }
    }

    pub async fn create_database(&self, name: &str) -> PgPool {
        let admin = PgPool::connect(&self.url("postgres")).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        cocov::db::connect(&self.config(name)).unwrap()
    }

    /// An immediate shutdown: the server stops at once without a checkpoint, as in a crash;
    /// every connection is cut.
    pub fn crash(&mut self) {
        if !self.running {
            return;
        }
        let _ = as_server_user("pg_ctl")
            .args(["-m", "immediate", "-w", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
        self.running = false;
    }

    /// Starts (again, recovering from the crash) and waits until it accepts connections.
    pub async fn resume(&mut self) {
        assert!(!self.running, "already running");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        check(
            "pg_ctl start",
            as_server_user("pg_ctl")
                .args(["-w", "-t", "60", "-D"])
                .arg(self.data())
                .args(["-l"])
                .arg(self.dir.path().join("server.log"))
                .args(["-o", &options, "start"])
                .output(),
        );
        self.running = true;
        let url = self.url("postgres");
        super::eventually(
            "the private PostgreSQL accepts connections",
            Duration::from_secs(30),
            || async { PgPool::connect(&url).await.ok().map(|_| ()) },
        )
        .await;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.crash();
    }
}
