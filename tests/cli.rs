//! The `cocov` binary as operators and systemd use it: configuration errors, migrations, admin
//! commands, readiness notification, SIGTERM, and Redis going away and coming back.

use crate::common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::private_redis::PrivateRedis;
use common::{TestDb, TestRedis};

fn cocov() -> Command {
    let mut cmd = common::cocov_command();
    cmd.env("RUST_LOG", "info");
    cmd
}

/// Environment pointing the binary at a test's own database, Redis prefix and storage.
fn env_for(cmd: &mut Command, db: &TestDb, redis_url: &str, prefix: &str, dir: &Path) {
    let config = dir.join("cocov.toml");
    if !config.exists() {
        std::fs::write(&config, "").unwrap();
    }
    cmd.env("COCOV_CONFIG", &config)
        .env("COCOV_DATABASE_URL", &db.config.url)
        .env("COCOV_REDIS_URL", redis_url)
        .env("COCOV_REDIS_KEY_PREFIX", prefix)
        .env("COCOV_GIT_SERVICE_LOCAL_STORAGE_PATH", dir.join("storage"))
        .env("COCOV_BIND_ADDRESS", "127.0.0.1:0")
        .env("COCOV_BADGER_BIND_PORT", "0")
        .env("COCOV_SERVER_SHUTDOWN_GRACE_SECONDS", "5");
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run cocov")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn config_check_reports_file_line_and_key_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cocov.toml");
    std::fs::write(
        &path,
        "[server]\nroles = [\"api\"]\n\n[queue]\nconcurrency = \"lots\"\n",
    )
    .unwrap();
    let out = run(cocov().arg("--config").arg(&path).args(["config", "check"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{}:5", path.display())), "{err}");
    assert!(err.contains("queue.concurrency"), "{err}");

    std::fs::write(&path, "[server\n").unwrap();
    let out = run(cocov().arg("--config").arg(&path).args(["config", "check"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("{}:1", path.display())),
        "{}",
        text(&out.stderr)
    );

    let out = run(cocov().args(["--config", "/nonexistent/cocov.toml", "config", "check"]));
    assert_eq!(out.status.code(), Some(2));

    let out = run(cocov().env("COCOV_BADGER_BIND_PORT", "http").args([
        "--config",
        "/dev/null",
        "config",
        "check",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("COCOV_BADGER_BIND_PORT"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn config_check_prints_the_effective_configuration_masked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cocov.toml");
    std::fs::write(&path, "[database]\npassword = \"hunter2\"\n").unwrap();
    let out = run(cocov()
        .arg("--config")
        .arg(&path)
        .env("COCOV_CRYPTOGRAPHIC_KEY", "ab".repeat(32))
        .env("COCOV_ROLES", "api,worker")
        .args(["config", "check"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        !shown.contains("hunter2") && !shown.contains(&"ab".repeat(32)),
        "{shown}"
    );
    assert!(
        shown.contains("roles = [\n    \"api\",\n    \"worker\",\n]")
            || shown.contains("\"worker\""),
        "{shown}"
    );
}

#[tokio::test]
async fn migrate_and_admin_commands() {
    let db = TestDb::empty().await;
    let redis = TestRedis::new();
    let dir = tempfile::tempdir().unwrap();
    let cmd = |args: &[&str]| {
        let mut c = cocov();
        env_for(
            &mut c,
            &db,
            &redis.config.url,
            &redis.config.key_prefix,
            dir.path(),
        );
        c.args(args);
        c
    };
    let out = run(&mut cmd(&["migrate"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("applied"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&mut cmd(&["migrate"]));
    assert!(
        text(&out.stdout).contains("0 migration(s) applied"),
        "{}",
        text(&out.stdout)
    );

    // The first user is an admin even without --admin; the second is not.
    let out = run(&mut cmd(&["admin", "create-user", "--login", "ops"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("admin"), "{}", text(&out.stdout));
    let token = text(&out.stdout)
        .lines()
        .find_map(|l| l.split("(shown once): ").nth(1))
        .unwrap()
        .to_string();
    assert!(token.starts_with("cop_"));
    let out = run(&mut cmd(&["admin", "create-user", "--login", "dev"]));
    assert!(
        text(&out.stdout).contains("(id 2, user)"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&mut cmd(&["admin", "create-user", "--login", "dev"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&mut cmd(&["admin", "create-user", "--login", "bad name!"]));
    assert_eq!(out.status.code(), Some(1));

    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM user_tokens")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert!(stored.contains(&cocov::auth::tokens::hash(&token)));
    assert!(
        !stored.iter().any(|h| h.contains(&token)),
        "token stored in clear"
    );

    let out = run(&mut cmd(&[
        "admin",
        "service-token",
        "create",
        "--description",
        "ci runner",
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("cos_"));
    let out = run(&mut cmd(&["admin", "service-token", "list"]));
    assert!(
        text(&out.stdout).contains("ci runner"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&mut cmd(&["admin", "service-token", "revoke", "1"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&mut cmd(&["admin", "service-token", "revoke", "1"]));
    assert_eq!(out.status.code(), Some(1));
    let out = run(&mut cmd(&["admin", "jobs", "dead"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no dead jobs"));
}

/// A `cocov serve` child with a systemd notification socket.
struct Served {
    child: Child,
    notify: UnixDatagram,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(db: &TestDb, redis_url: &str, prefix: &str) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let socket_path = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&socket_path).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut cmd = cocov();
        env_for(&mut cmd, db, redis_url, prefix, dir.path());
        let child = cmd
            .arg("serve")
            .env("NOTIFY_SOCKET", &socket_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Served {
            child,
            notify,
            _dir: dir,
        }
    }

    /// Waits for READY=1 and returns the API address from the STATUS line.
    fn wait_ready(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.notify.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                if msg.contains("READY=1") {
                    let api = msg
                        .split("ready: api ")
                        .nth(1)
                        .unwrap()
                        .split(',')
                        .next()
                        .unwrap();
                    return format!("http://{api}");
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("cocov serve exited early with {status}");
            }
        }
        panic!("no READY=1 within 30 s");
    }

    fn sigterm(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
    }

    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("cocov did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn readyz(base: &str) -> (u16, serde_json::Value) {
    match reqwest::get(format!("{base}/readyz")).await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or_default())
        }
        Err(e) => panic!("readyz unreachable: {e}"),
    }
}

#[tokio::test]
async fn serve_notifies_ready_and_exits_zero_on_sigterm() {
    let db = TestDb::empty().await;
    let redis = TestRedis::new();
    let mut served = Served::start(&db, &redis.config.url, &redis.config.key_prefix);
    let base = served.wait_ready();
    let (status, body) = readyz(&base).await;
    assert_eq!(status, 200, "{body}");
    served.sigterm();
    let status = served.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "exit status {status}");
}

#[tokio::test]
async fn redis_going_away_flips_readiness_and_recovers_without_restart() {
    let db = TestDb::empty().await;
    let mut redis = PrivateRedis::start().await;
    let url = redis.url();
    let mut served = Served::start(&db, &url, "cocov:");
    let base = served.wait_ready();
    assert_eq!(readyz(&base).await.0, 200);

    redis.stop();
    let body = common::eventually(
        "readyz to report Redis down",
        Duration::from_secs(20),
        || async {
            let (status, body) = readyz(&base).await;
            (status == 503).then_some(body)
        },
    )
    .await;
    // Anonymous: ready or not, no detail (administrators get it, see tests/http_api.rs).
    assert_eq!(body, serde_json::json!({"ready": false}));

    redis.resume().await;
    common::eventually("readyz to recover", Duration::from_secs(30), || async {
        (readyz(&base).await.0 == 200).then_some(())
    })
    .await;
    assert!(
        served.child.try_wait().unwrap().is_none(),
        "the daemon died"
    );
    served.sigterm();
    assert_eq!(served.wait_exit(Duration::from_secs(10)).code(), Some(0));
}

#[test]
fn version_prints_binary_and_schema() {
    let out = run(cocov().arg("version"));
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(
        s.contains(env!("CARGO_PKG_VERSION")) && s.contains("database schema"),
        "{s}"
    );
}
