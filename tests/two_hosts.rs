//! Scaling out, end to end: `cocov serve` processes on separate "hosts" sharing one PostgreSQL
//! database, one Redis prefix, one S3 store (a real S3 server, reached over the network, so
//! nothing is shared through a directory) and one key file. Host A has the `api` and `badger`
//! roles, host B the `worker` role: pushes announced and coverage uploaded through A are ingested
//! and checked on B (the sandboxed plugin is seen running as B's descendant), and A reports the
//! results and serves badges for them. Then B is SIGKILLed mid-check; a new worker host C takes
//! the held job over once B stops heart-beating and finishes the set.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cocov::config::{Config, Role, StorageMode};
use common::origin::Origin;
use common::s3_servers::{S3Server, unique_bucket};
use common::{TestDb, TestRedis, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Long enough to find the plugin running and kill its host; short enough for a quick test.
const PLUGIN_SECONDS: u32 = 6;
/// How long a host may take to get from SIGKILL of its peer to a finished set.
const TAKEOVER_DEADLINE: Duration = Duration::from_secs(40);

/// One `cocov serve` process with its own config file, roles and work directory.
struct Host {
    name: &'static str,
    child: Child,
    api: Option<String>,
    badger: Option<String>,
    log: PathBuf,
    config: PathBuf,
    _dir: tempfile::TempDir,
    _work: tempfile::TempDir,
}

impl Host {
    /// Starts `cocov serve` with `shared` plus this host's roles and a work directory of its own,
    /// and waits for READY=1 (its listeners are bound and its consumer started).
    fn start(name: &'static str, shared: &Config, roles: &[Role]) -> Host {
        let dir = tempfile::tempdir().unwrap();
        // Under /tmp and traversable: the sandbox may run as another user.
        let work = tempfile::Builder::new()
            .prefix("cocov-two-hosts-work-")
            .tempdir_in(std::env::temp_dir())
            .unwrap();
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let mut config = shared.clone();
        config.server.roles = roles.to_vec();
        config.worker.work_dir = work.path().to_path_buf();
        let config_path = dir.path().join("cocov.toml");
        std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();

        let socket_path = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&socket_path).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let log = dir.path().join("cocov.log");
        let mut child = common::cocov_command()
            .arg("serve")
            .env("COCOV_CONFIG", &config_path)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let status = wait_ready(&mut child, &notify, &log, name);
        // "ready: api 127.0.0.1:PORT, badger 127.0.0.1:PORT, roles [...]"
        let address = |listener: &str| {
            let value = status
                .split(&format!("{listener} "))
                .nth(1)?
                .split(',')
                .next()?;
            (value != "off").then(|| format!("http://{value}"))
        };
        Host {
            name,
            api: address("api"),
            badger: address("badger"),
            child,
            log,
            config: config_path,
            _dir: dir,
            _work: work,
        }
    }

    /// Runs `cocov ARGS` on this host, as its operator would; returns standard output.
    fn cocov(&self, args: &[&str]) -> String {
        let out = common::cocov_command()
            .args(args)
            .env("COCOV_CONFIG", &self.config)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert!(
            out.status.success(),
            "cocov {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.api.as_deref().expect("an api host"))
    }

    fn badge(&self, path: &str) -> String {
        format!("{}{path}", self.badger.as_deref().expect("a badger host"))
    }

    /// SIGKILL: no drain, no hand-back of held jobs, as when a machine dies.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "--- host {} log (last lines, newest first) ---\n{}",
                self.name,
                tail.join("\n")
            );
        }
    }
}

/// The STATUS text sent with READY=1.
fn wait_ready(child: &mut Child, notify: &UnixDatagram, log: &Path, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = notify.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.contains("READY=1") {
                return msg;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "host {name} exited early with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
    panic!("host {name} sent no READY=1 within 60 s");
}

/// What every host must agree on: the stores, the key file, the plugins and the queue timings.
fn shared_config(
    db: &TestDb,
    redis: &TestRedis,
    s3: &S3Server,
    key_file: &Path,
    plugins: &Path,
) -> Config {
    // The local path is unused with S3; point it nowhere useful so a fallback would show.
    let mut config = common::test_config(db, redis, Path::new("/nonexistent/cocov-storage"));
    config.storage.mode = StorageMode::S3;
    config.storage.s3 = s3.config(&unique_bucket());
    config.security.cryptographic_key = String::new();
    config.security.cryptographic_key_file = key_file.to_path_buf();
    config.worker.plugins_dir = plugins.to_path_buf();
    config.queue.reclaim_idle_seconds = 2;
    config.queue.retry_base_delay_ms = 50;
    config
}

/// A plugin that takes `$DELAY` seconds, then reports `$COUNT` issues in `a.sh`, each saying
/// the SHA-256 of the secret mounted at `~/.token`. Its command line carries `marker`, so the
/// test can find the running sandbox among the host's processes.
fn finder_plugin(marker: &str) -> String {
    format!(
        "name = \"acme/finder\"\ncommand = \"/bin/sh\"\nformat = \"cocov\"\nargs = [\"-c\", '''\
         : {marker}; sleep \"$DELAY\"; h=$(sha256sum < \"$HOME/.token\" | cut -c1-64); \
         i=0; while [ \"$i\" -lt \"$COUNT\" ]; do i=$((i+1)); \
         printf '{{\"kind\":\"bug\",\"file\":\"a.sh\",\"line_start\":%s,\"line_end\":%s,\"message\":\"finding %s %s\",\"uid\":\"finding-%s\"}}\\0' \
         \"$i\" \"$i\" \"$i\" \"$h\" \"$i\"; done > \"$COCOV_OUTPUT_FILE\"''']\n"
    )
}

fn manifest(delay: u32, count: u32) -> String {
    format!(
        "version: \"0.1.alpha\"\nchecks:\n  - plugin: acme/finder\n    envs:\n      \
         DELAY: \"{delay}\"\n      COUNT: \"{count}\"\n    mounts:\n      \
         - source: secrets:TOKEN\n        destination: ~/.token\n"
    )
}

/// The pids of the running plugin processes whose command line holds `marker`.
fn plugin_pids(marker: &str) -> Vec<u32> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Whether `ancestor` is `pid` or one of its parents (bubblewrap keeps the process tree, seen
/// from outside the sandbox's pid namespace); None when the process is already gone.
fn descends_from(mut pid: u32, ancestor: u32) -> Option<bool> {
    let mut first = true;
    while pid > 1 {
        if pid == ancestor {
            return Some(true);
        }
        let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat,
            Err(_) if first => return None,
            Err(_) => return Some(false),
        };
        first = false;
        // "pid (comm) state ppid …"; comm may hold spaces and parentheses.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        pid = after.split(' ').nth(1).unwrap().parse().unwrap();
    }
    Some(false)
}

/// Waits until the plugin runs under `host`, and fails if it runs under any other process.
async fn plugin_running_on(host: &Host, marker: &str) {
    let pid = host.pid();
    let what = format!("the plugin to run on host {}", host.name);
    eventually(&what, Duration::from_secs(60), || async {
        let mut seen = false;
        for p in plugin_pids(marker) {
            match descends_from(p, pid) {
                Some(true) => seen = true,
                Some(false) => panic!(
                    "plugin process {p} does not descend from host {} ({pid})",
                    host.name
                ),
                None => {} // ended between the listing and the look
            }
        }
        seen.then_some(())
    })
    .await;
}

struct Client {
    http: reqwest::Client,
    admin: String,
}

impl Client {
    async fn get(&self, url: String) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(url)
            .header("authorization", format!("bearer {}", self.admin))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or_default())
    }

    async fn post(&self, url: String, auth: String, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(url)
            .header("authorization", auth)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or_default())
    }

    /// The commit as host A reports it, once `done` holds for it.
    async fn commit_when(
        &self,
        a: &Host,
        sha: &str,
        what: &str,
        done: fn(&Value) -> bool,
    ) -> Value {
        let url = a.api(&format!("/v1/repositories/fleet/commits/{sha}"));
        eventually(what, TAKEOVER_DEADLINE, || async {
            let (status, body) = self.get(url.clone()).await;
            (status == StatusCode::OK && done(&body)).then_some(body)
        })
        .await
    }

    async fn badge(&self, a: &Host, kind: &str) -> String {
        let resp = self
            .http
            .get(a.badge(&format!("/fleet/{kind}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    }
}

/// The check set has ended and its results are on the commit: a completed set is marked so a
/// moment before its issue count is stored.
fn checks_final(commit: &Value) -> bool {
    match commit["checks_status"].as_str() {
        Some("completed") => !commit["issues_count"].is_null(),
        Some("errored" | "canceled" | "not_configured") => true,
        _ => false,
    }
}

/// The `cocov` status recorded for the commit, once final.
async fn cocov_status(db: &TestDb, sha: &str) -> (String, String) {
    eventually("a final cocov status", Duration::from_secs(30), || async {
        sqlx::query_as(
            "SELECT s.state, s.description FROM commit_statuses s \
             JOIN commits c ON c.id = s.commit_id \
             WHERE c.sha = $1::citext AND s.context = 'cocov' AND s.state <> 'pending'",
        )
        .bind(sha)
        .fetch_optional(&db.pool)
        .await
        .unwrap()
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_host_and_worker_hosts_share_the_stores_and_a_killed_worker_is_replaced() {
    let s3 = S3Server::s3s_fs().await;
    let db = TestDb::migrated().await;
    let redis = TestRedis::new();
    let shared_dir = tempfile::tempdir().unwrap();
    let key_file = shared_dir.path().join("secret.key");
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    std::fs::write(&key_file, key).unwrap();
    let marker = format!("cocov-two-hosts-{}", uuid::Uuid::new_v4().simple());
    let plugins = shared_dir.path().join("plugins.d");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::write(plugins.join("finder.toml"), finder_plugin(&marker)).unwrap();
    let shared = shared_config(&db, &redis, &s3, &key_file, &plugins);

    let a = Host::start("A", &shared, &[Role::Api, Role::Badger]);
    let mut b = Host::start("B", &shared, &[Role::Worker]);
    assert!(b.api.is_none() && b.badger.is_none());

    let created = a.cocov(&["admin", "create-user", "--login", "fleet-admin", "--admin"]);
    let admin = created
        .lines()
        .find_map(|l| l.split("(shown once): ").nth(1))
        .unwrap_or_else(|| panic!("no token in {created}"))
        .to_string();
    let client = Client {
        http: reqwest::Client::new(),
        admin: admin.clone(),
    };

    // A standalone repository, registered through A by its git URL.
    let origin = Origin::new();
    let (status, body) = client
        .post(
            a.api("/v1/repositories"),
            format!("bearer {admin}"),
            json!({"name": "fleet", "git_url": origin.url(), "default_branch": "main"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let upload = format!("token {}", body["token"].as_str().unwrap());
    let announce = |sha: String| {
        let (client, url, upload) = (&client, a.api("/v1/repositories/fleet/commits"), &upload);
        async move {
            let (status, body) = client
                .post(url, upload.clone(), json!({"sha": sha, "branch": "main"}))
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        }
    };

    // A secret, sealed by A with the shared key; every worker opens it for the plugin.
    let secret = "shared-key-secret";
    let (status, body) = client
        .post(
            a.api("/v1/repositories/fleet/secrets"),
            format!("bearer {admin}"),
            json!({"name": "TOKEN", "data": secret}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let secret_hash = cocov::auth::tokens::hash_bytes(secret.as_bytes());

    // First push: announced through A, ingested and checked on B.
    let sha1 = origin.commit(
        &[
            (".cocov.yaml", manifest(2, 1).as_str()),
            ("a.sh", "echo one\necho two\n"),
        ],
        "first",
    );
    announce(sha1.clone()).await;
    plugin_running_on(&b, &marker).await;
    client
        .commit_when(&a, &sha1, "the first commit to be ingested", |c| {
            c["ingest_status"] == "completed"
        })
        .await;
    // Coverage through A: A parses it against the tree B stored in S3.
    let lcov = "SF:a.sh\nDA:1,3\nDA:2,0\nend_of_record\n";
    let resp = client
        .http
        .post(a.api(&format!("/v1/reports/raw?commit_sha={sha1}&format=lcov")))
        .header("authorization", &upload)
        .body(lcov)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        resp.text().await.unwrap()
    );
    let commit = client
        .commit_when(&a, &sha1, "the first check set to finish", checks_final)
        .await;
    assert_eq!(commit["checks_status"], "completed", "{commit}");
    assert_eq!(commit["issues_count"], 1, "{commit}");
    assert_eq!(commit["coverage_percent"], 50.0, "{commit}");
    let (_, issues) = client
        .get(a.api(&format!("/v1/repositories/fleet/commits/{sha1}/issues")))
        .await;
    assert_eq!(
        issues["issues"][0]["message"],
        format!("finding 1 {secret_hash}"),
        "{issues}"
    );
    // The file view: A reads the source from the archive B stored in S3.
    let coverage_url = a.api(&format!("/v1/repositories/fleet/commits/{sha1}/coverage"));
    let (_, files) = client.get(coverage_url.clone()).await;
    let id = &files["files"][0]["id"];
    assert_eq!(files["files"][0]["file"], "a.sh", "{files}");
    let (status, view) = client.get(format!("{coverage_url}/file/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["file"]["source"][0]["source"], "echo one", "{view}");
    assert_eq!(view["coverage"]["lines"], json!([3, 0]), "{view}");
    assert_eq!(
        cocov_status(&db, &sha1).await,
        ("failure".into(), "1 issue found".into())
    );
    // A's badges, computed from what B wrote (and refreshed through Redis, not A's own work).
    eventually(
        "A's badges to show the first push",
        TAKEOVER_DEADLINE,
        || async {
            let coverage = client.badge(&a, "coverage").await;
            let issues = client.badge(&a, "issues").await;
            (coverage.contains(">coverage: 50%<") && issues.contains(">issues: 1<")).then_some(())
        },
    )
    .await;

    // Second push, whose check B is running when its machine dies.
    let sha2 = origin.commit(
        &[(".cocov.yaml", manifest(PLUGIN_SECONDS, 2).as_str())],
        "second",
    );
    announce(sha2.clone()).await;
    plugin_running_on(&b, &marker).await;
    let (_, checks) = client
        .get(a.api(&format!("/v1/repositories/fleet/commits/{sha2}/checks")))
        .await;
    assert_eq!(checks["checks"][0]["status"], "in_progress", "{checks}");
    b.kill();
    eventually(
        "the plugin to die with host B",
        Duration::from_secs(10),
        || async { plugin_pids(&marker).is_empty().then_some(()) },
    )
    .await;

    // A new worker host takes the job over once B's heart-beat is overdue, and finishes it.
    let killed_at = Instant::now();
    let c = Host::start("C", &shared, &[Role::Worker]);
    plugin_running_on(&c, &marker).await;
    let commit = client
        .commit_when(&a, &sha2, "host C to finish the second set", checks_final)
        .await;
    assert!(killed_at.elapsed() < TAKEOVER_DEADLINE);
    assert_eq!(commit["checks_status"], "completed", "{commit}");
    assert_eq!(commit["issues_count"], 2, "{commit}");
    let (_, checks) = client
        .get(a.api(&format!("/v1/repositories/fleet/commits/{sha2}/checks")))
        .await;
    assert_eq!(checks["checks"].as_array().unwrap().len(), 1, "{checks}");
    assert_eq!(checks["checks"][0]["status"], "completed", "{checks}");
    assert_eq!(
        cocov_status(&db, &sha2).await,
        ("failure".into(), "2 issues found".into())
    );
    let (_, issues) = client
        .get(a.api(&format!("/v1/repositories/fleet/commits/{sha2}/issues")))
        .await;
    let messages: Vec<&str> = issues["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["message"].as_str())
        .collect();
    // C opened the secret with the same key file.
    assert_eq!(messages.len(), 2, "{issues}");
    assert!(
        messages.iter().all(|m| m.ends_with(&secret_hash)),
        "{issues}"
    );
    eventually(
        "A's issues badge to show the second push",
        TAKEOVER_DEADLINE,
        || async {
            client
                .badge(&a, "issues")
                .await
                .contains(">issues: 2<")
                .then_some(())
        },
    )
    .await;
    drop(c);
    drop(b);
    drop(a);
}
