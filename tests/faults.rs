//! Fault injection against the real `cocov serve` binary, in GitHub mode (statuses are posted to
//! the fake GitHub, which records them). Each test runs one fault in the middle of real work and
//! then asserts the promise: every commit announced, check set scheduled, upload accepted (2xx)
//! and status announced reaches its final state, and nothing is done twice: one check set per
//! commit, one issue per finding, coverage applied once, and no status state posted to GitHub
//! again after another (a retransmission of the same state after a kill is allowed: GitHub shows
//! it once).
//!
//! The faults: SIGKILL of the daemon during an ingestion, a check, an upload and a status post;
//! its private Redis restarted without and with persistence, and flushed; its private PostgreSQL
//! crashed and restarted; its S3 server stopped for a while; the disk of its blob store full.
//! Each test prints `RECOVERY <fault>: <seconds>` (fault cleared → everything final), which
//! docs/RELIABILITY.md records. Deadlines bound "eventually final"; nothing asserts a duration.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cocov::config::{Config, DatabaseConfig, Role, StorageMode};
use common::daemon_process::DaemonProcess;
use common::fake_github::{FakeGithub, FakeRepo, ORG, role};
use common::git_server::{GitServer, WorkTree};
use common::private_postgres::PrivatePostgres;
use common::private_redis::PrivateRedis;
use common::s3_servers::{S3Server, unique_bucket};
use common::{TestDb, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;

const REPO: &str = "faulty";
/// How long everything may take to become final once a fault is over.
const FINAL_DEADLINE: Duration = Duration::from_secs(150);
/// How long a client keeps retrying a refused (503) or failed request, as told by Retry-After.
const CLIENT_RETRY_DEADLINE: Duration = Duration::from_secs(90);
const LCOV: &str = "SF:a.sh\nDA:1,3\nDA:2,0\nend_of_record\n";

/// A plugin that sleeps `$DELAY` seconds, then reports one issue in `a.sh`. Its command line
/// carries `marker`, so the test can see it running.
fn slow_plugin(marker: &str) -> String {
    format!(
        "name = \"acme/slow\"\ncommand = \"/bin/sh\"\nformat = \"cocov\"\nargs = [\"-c\", '''\
         : {marker}; sleep \"$DELAY\"; \
         printf '{{\"kind\":\"bug\",\"file\":\"a.sh\",\"line_start\":1,\"line_end\":1,\"message\":\"slow finding\",\"uid\":\"slow-1\"}}\\0' \
         > \"$COCOV_OUTPUT_FILE\"''']\n"
    )
}

fn manifest(delay: u32) -> String {
    format!(
        "version: \"0.1.alpha\"\ncoverage:\n  min_percent: 50\nchecks:\n  - plugin: acme/slow\n    \
         envs:\n      DELAY: \"{delay}\"\n"
    )
}

/// Where the daemon keeps its blobs.
enum Store<'a> {
    Local(&'a Path),
    S3(&'a S3Server),
}

/// One daemon (all roles) and everything around it, with the work the test asked for and
/// whether the daemon accepted it.
struct Rig {
    fake: FakeGithub,
    git: GitServer,
    worktree: WorkTree,
    config: Config,
    db: PgPool,
    host: Option<DaemonProcess>,
    /// Hosts killed earlier: kept so a failing test prints their logs too.
    killed: Vec<DaemonProcess>,
    http: reqwest::Client,
    upload_token: String,
    plugin_marker: String,
    /// Commits announced (accepted with a 2xx).
    announced: Vec<String>,
    /// Commits with a coverage upload accepted (2xx).
    uploaded: Vec<String>,
    pushes: u32,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn start(database: DatabaseConfig, db: PgPool, redis_url: &str, store: Store<'_>) -> Rig {
        Rig::start_with(database, db, redis_url, store, |_| {}).await
    }

    async fn start_with(
        database: DatabaseConfig,
        db: PgPool,
        redis_url: &str,
        store: Store<'_>,
        adjust: impl FnOnce(&mut Config),
    ) -> Rig {
        let fake = FakeGithub::start().await;
        let git = GitServer::start(fake.token_checker()).await;
        fake.add_repo(
            FakeRepo::new(7001, REPO)
                .default_branch("main")
                .collaborator(501, "octo-admin", role("admin")),
        );
        let worktree = git.worktree(ORG, REPO);
        let dir = tempfile::tempdir().unwrap();
        let plugin_marker = format!("cocov-faults-{}", uuid::Uuid::new_v4().simple());
        let plugins = dir.path().join("plugins.d");
        std::fs::create_dir(&plugins).unwrap();
        std::fs::write(plugins.join("slow.toml"), slow_plugin(&plugin_marker)).unwrap();

        let mut config = Config {
            database,
            ..Config::default()
        };
        config.redis.url = redis_url.to_string();
        config.redis.key_prefix = "faults:".into();
        match store {
            Store::Local(path) => config.storage.local_path = path.to_path_buf(),
            Store::S3(s3) => {
                config.storage.mode = StorageMode::S3;
                config.storage.s3 = s3.config(&unique_bucket());
            }
        }
        config.server.bind_address = "127.0.0.1:0".parse().unwrap();
        config.badger.bind_port = 0;
        config.server.shutdown_grace_seconds = 2;
        config.security.cryptographic_key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut github = fake.config();
        github.git_base_url = git.base_url();
        config.github = github;
        config.worker.plugins_dir = plugins;
        config.worker.tool_paths = String::new();
        config.worker.check_set_deadline_seconds = 600;
        config.statuses.pending_deadline_seconds = 600;
        config.queue.reclaim_idle_seconds = 2;
        config.queue.retry_base_delay_ms = 100;
        config.queue.retry_max_delay_ms = 2000;
        config.queue.outage_deadline_seconds = 300;
        config.reconcile.period_seconds = 5;
        config.reconcile.sentinel_check_seconds = 1;
        config.reconcile.settle_seconds = 2;
        config.git.timeout_seconds = 20;
        adjust(&mut config);

        let mut rig = Rig {
            fake,
            git,
            worktree,
            config,
            db,
            host: None,
            killed: Vec::new(),
            http: reqwest::Client::new(),
            upload_token: String::new(),
            plugin_marker,
            announced: Vec::new(),
            uploaded: Vec::new(),
            pushes: 0,
            _dir: dir,
        };
        rig.start_daemon();
        let host = rig.host();
        let created = host.cocov(&["admin", "create-user", "--login", "faults", "--admin"]);
        let admin = created
            .lines()
            .find_map(|l| l.split("(shown once): ").nth(1))
            .unwrap_or_else(|| panic!("no token in {created}"))
            .to_string();
        let resp = rig
            .http
            .post(host.api("/v1/repositories"))
            .header("authorization", format!("bearer {admin}"))
            .json(&json!({"name": REPO}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or_default();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        rig.upload_token = format!("token {}", body["token"].as_str().unwrap());
        rig
    }

    fn host(&self) -> &DaemonProcess {
        self.host.as_ref().expect("the daemon is running")
    }

    fn start_daemon(&mut self) {
        let mut config = self.config.clone();
        config.server.roles = vec![Role::Api, Role::Worker, Role::Badger];
        self.host = Some(DaemonProcess::start("faults", &config));
    }

    /// SIGKILL, as when the machine dies, then a fresh start (a new process, as systemd's
    /// `Restart=` would).
    fn kill_and_restart(&mut self) {
        if let Some(mut host) = self.host.take() {
            host.kill();
            self.killed.push(host);
        }
        self.start_daemon();
    }

    /// The daemon dies mid-work and comes back; everything must still end final.
    async fn crash_and_assert_final(&mut self, fault: &str) -> Duration {
        self.kill_and_restart();
        self.assert_all_final(fault).await
    }

    /// A new commit on `main` whose check takes `delay` seconds; returns its sha.
    fn push(&mut self, delay: u32) -> String {
        self.pushes += 1;
        let sha = self.worktree.commit(
            &[
                (".cocov.yaml", manifest(delay).as_str()),
                ("a.sh", "echo one\necho two\n"),
                ("push.txt", &format!("push {}\n", self.pushes)),
            ],
            &format!("push {}", self.pushes),
        );
        self.worktree.push("main");
        sha
    }

    /// POSTs with the repository token until the daemon answers 2xx, as a client told to retry
    /// (503 + Retry-After, or no answer while the daemon restarts) would.
    async fn post_until_accepted(&self, what: &str, path: &str, body: RequestBody) -> StatusCode {
        let start = Instant::now();
        loop {
            let Some(host) = self.host.as_ref() else {
                panic!("no daemon to send {what} to");
            };
            let request = self
                .http
                .post(host.api(path))
                .header("authorization", &self.upload_token);
            let request = match &body {
                RequestBody::Json(v) => request.json(v),
                RequestBody::Text(t) => request.body(t.clone()),
            };
            match request.send().await {
                Ok(resp) if resp.status().is_success() => return resp.status(),
                Ok(resp)
                    if resp.status() == StatusCode::SERVICE_UNAVAILABLE
                        || resp.status() == StatusCode::BAD_GATEWAY => {}
                Ok(resp) => {
                    let status = resp.status();
                    panic!("{what}: {status} {}", resp.text().await.unwrap_or_default());
                }
                Err(_) => {}
            }
            assert!(
                start.elapsed() < CLIENT_RETRY_DEADLINE,
                "{what} was never accepted"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn announce(&mut self, sha: &str) {
        let status = self
            .post_until_accepted(
                "the announcement",
                &format!("/v1/repositories/{REPO}/commits"),
                RequestBody::Json(json!({"sha": sha, "branch": "main"})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        self.announced.push(sha.to_string());
    }

    /// Uploads `LCOV` for `sha`: 200 when applied, 202 when held until the commit arrives.
    async fn upload(&mut self, sha: &str) {
        self.post_until_accepted(
            "the coverage upload",
            &format!("/v1/reports/raw?commit_sha={sha}&format=lcov"),
            RequestBody::Text(LCOV.to_string()),
        )
        .await;
        self.uploaded.push(sha.to_string());
    }

    async fn sql_true(&self, what: &str, sql: &'static str, sha: &str) {
        eventually(what, Duration::from_secs(60), || async {
            sqlx::query_scalar::<_, bool>(sql)
                .bind(sha)
                .fetch_optional(&self.db)
                .await
                .ok()
                .flatten()
                .filter(|b| *b)
        })
        .await;
    }

    async fn wait_until_check_running(&self, sha: &str) {
        self.sql_true(
            "the check to be running",
            "SELECT k.status = 'in_progress' FROM checks k JOIN check_sets s ON s.id = k.check_set_id \
             JOIN commits c ON c.id = s.commit_id WHERE c.sha = $1::citext",
            sha,
        )
        .await;
        let marker = self.plugin_marker.clone();
        eventually(
            "the plugin process to run",
            Duration::from_secs(60),
            || async { plugin_running(&marker).then_some(()) },
        )
        .await;
    }

    /// Uploads coverage (again, for the client that saw its upload fail) for every announced
    /// commit without an accepted upload, so both of its statuses have a result coming; then
    /// waits until everything accepted is final and checks nothing was done twice. Called as
    /// the fault ends; prints and returns the time from then.
    async fn assert_all_final(&mut self, fault: &str) -> Duration {
        let cleared = Instant::now();
        let missing: Vec<String> = self
            .announced
            .iter()
            .filter(|sha| !self.uploaded.contains(sha))
            .cloned()
            .collect();
        for sha in missing {
            self.upload(&sha).await;
        }
        for sha in &self.announced {
            loop {
                let Err(missing) = self.final_state(sha).await else {
                    break;
                };
                assert!(
                    cleared.elapsed() < FINAL_DEADLINE,
                    "{fault}: commit {sha} not final after {FINAL_DEADLINE:?}: {missing}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let recovery = cleared.elapsed();
        println!("RECOVERY {fault}: {:.1} s", recovery.as_secs_f64());
        for sha in &self.announced {
            self.assert_not_duplicated(sha).await;
        }
        recovery
    }

    /// Ok when the commit, its check set, its coverage and both statuses are final, recorded
    /// and posted; Err says what is still missing.
    async fn final_state(&self, sha: &str) -> Result<(), String> {
        let row: Option<CommitOutcome> = sqlx::query_as(
            "SELECT c.ingest_status, s.status, c.issues_count, c.coverage_percent FROM commits c \
             LEFT JOIN check_sets s ON s.commit_id = c.id WHERE c.sha = $1::citext",
        )
        .bind(sha)
        .fetch_optional(&self.db)
        .await
        .map_err(|e| e.to_string())?;
        let Some((ingest, set, issues, coverage)) = row else {
            return Err("no commit row".into());
        };
        if ingest != "completed" {
            return Err(format!("ingest_status {ingest}"));
        }
        if set.as_deref() != Some("completed") || issues.is_none() {
            return Err(format!("check set {set:?}, issues {issues:?}"));
        }
        if coverage.is_none() {
            return Err("the accepted coverage upload is not applied".into());
        }
        let statuses: Vec<(String, String, String, i32, Option<i32>)> = sqlx::query_as(
            "SELECT s.context, s.state, s.description, s.version, s.posted_version \
             FROM commit_statuses s JOIN commits c ON c.id = s.commit_id \
             WHERE c.sha = $1::citext ORDER BY s.context",
        )
        .bind(sha)
        .fetch_all(&self.db)
        .await
        .map_err(|e| e.to_string())?;
        let finished = statuses
            .iter()
            .filter(|s| s.1 != "pending" && s.4 == Some(s.3))
            .count();
        if finished < 2 {
            return Err(format!("statuses not final and posted: {statuses:?}"));
        }
        // What GitHub shows last, per context, is the recorded final state.
        let posted = self.fake.statuses(REPO, sha);
        for (context, state, description, _, _) in &statuses {
            if state == "pending" {
                continue;
            }
            let last = posted.iter().rev().find(|p| p["context"] == *context);
            match last {
                Some(p) if p["state"] == *state && p["description"] == *description => {}
                other => return Err(format!("GitHub shows {other:?} for {context}, not {state}")),
            }
        }
        Ok(())
    }

    async fn assert_not_duplicated(&self, sha: &str) {
        let (sets, checks, issues): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM check_sets s WHERE s.commit_id = c.id), \
                    (SELECT count(*) FROM checks k JOIN check_sets s ON s.id = k.check_set_id \
                      WHERE s.commit_id = c.id), \
                    (SELECT count(*) FROM issues i WHERE i.commit_id = c.id) \
             FROM commits c WHERE c.sha = $1::citext",
        )
        .bind(sha)
        .fetch_one(&self.db)
        .await
        .unwrap();
        assert_eq!((sets, checks, issues), (1, 1, 1), "commit {sha}");
        let (issues_count, coverage): (Option<i32>, Option<f64>) = sqlx::query_as(
            "SELECT issues_count, coverage_percent FROM commits WHERE sha = $1::citext",
        )
        .bind(sha)
        .fetch_one(&self.db)
        .await
        .unwrap();
        assert_eq!(issues_count, Some(1), "commit {sha}");
        assert_eq!(coverage, Some(50.0), "commit {sha}");
        // Per context, the states GitHub received, a repeat of the same state collapsed (a
        // post whose answer was lost to a kill is sent again): no state comes back after
        // another one (pending → final, never final → pending → final or final twice apart).
        let posted = self.fake.statuses(REPO, sha);
        for context in ["cocov", "cocov/coverage"] {
            let mut seen: Vec<(String, String)> = Vec::new();
            for p in posted.iter().filter(|p| p["context"] == context) {
                let state = (
                    p["state"].as_str().unwrap_or_default().to_string(),
                    p["description"].as_str().unwrap_or_default().to_string(),
                );
                if seen.last() != Some(&state) {
                    assert!(
                        !seen.contains(&state),
                        "commit {sha}: {context} posted {state:?} again after another state: {posted:?}"
                    );
                    seen.push(state);
                }
            }
        }
    }
}

/// A commit's ingest status, check set status, issue count and coverage.
type CommitOutcome = (String, Option<String>, Option<i32>, Option<f64>);

enum RequestBody {
    Json(Value),
    Text(String),
}

fn plugin_running(marker: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty())
}

/// A rig on the shared PostgreSQL (a database of its own), a private Redis and a local store.
/// A rig on its own Redis and a filesystem store in a fresh directory; keep every part alive
/// for the test's length.
async fn fresh_local_rig() -> (Rig, TestDb, PrivateRedis, tempfile::TempDir) {
    let redis = PrivateRedis::start().await;
    let store = tempfile::tempdir().unwrap();
    let (rig, db) = local_rig(&redis, store.path()).await;
    (rig, db, redis, store)
}

async fn local_rig(redis: &PrivateRedis, store: &Path) -> (Rig, TestDb) {
    let db = TestDb::empty().await;
    let rig = Rig::start(
        db.config.clone(),
        db.pool.clone(),
        &redis.url(),
        Store::Local(store),
    )
    .await;
    (rig, db)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_ingestion() {
    let (mut rig, _db, _redis, _store) = fresh_local_rig().await;
    let sha = rig.push(1);
    // The git server answers slowly: the ingestion is mid-fetch when the daemon dies.
    rig.git.set_delay(Duration::from_secs(4));
    rig.announce(&sha).await;
    rig.sql_true(
        "the ingestion to start",
        "SELECT ingest_status = 'in_progress' FROM commits WHERE sha = $1::citext",
        &sha,
    )
    .await;
    rig.kill_and_restart();
    rig.git.set_delay(Duration::ZERO);
    rig.assert_all_final("SIGKILL during ingestion").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_a_check() {
    let (mut rig, _db, _redis, _store) = fresh_local_rig().await;
    let sha = rig.push(6);
    rig.announce(&sha).await;
    rig.upload(&sha).await;
    rig.wait_until_check_running(&sha).await;
    rig.crash_and_assert_final("SIGKILL during a check").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_uploads() {
    let (mut rig, _db, _redis, _store) = fresh_local_rig().await;
    // Held: uploaded before its commit is announced (202), then the daemon dies.
    let early = rig.push(0);
    rig.upload(&early).await;
    rig.kill_and_restart();
    // Mid-body: half a request sent when the daemon dies; the client gets no answer and
    // uploads again once the daemon is back.
    let late = rig.push(0);
    rig.announce(&early).await;
    rig.announce(&late).await;
    rig.sql_true(
        "the second commit to be ingested",
        "SELECT ingest_status = 'completed' FROM commits WHERE sha = $1::citext",
        &late,
    )
    .await;
    let api = rig.host().api.clone().unwrap();
    let mut half = tokio::net::TcpStream::connect(api.trim_start_matches("http://"))
        .await
        .unwrap();
    let request = format!(
        "POST /v1/reports/raw?commit_sha={late}&format=lcov HTTP/1.1\r\nhost: x\r\n\
         authorization: {}\r\ncontent-length: {}\r\n\r\n{}",
        rig.upload_token,
        LCOV.len(),
        &LCOV[..LCOV.len() / 2]
    );
    half.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    rig.kill_and_restart();
    drop(half);
    rig.assert_all_final("SIGKILL during uploads").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_a_status_post() {
    let (mut rig, _db, _redis, _store) = fresh_local_rig().await;
    let sha = rig.push(0);
    let path = format!("/repos/{ORG}/{REPO}/statuses/{sha}");
    // GitHub takes its time with the first status post: the daemon dies waiting for it.
    rig.fake.hang_next(&path, 1, Duration::from_secs(20));
    rig.announce(&sha).await;
    eventually(
        "a status post to reach GitHub",
        Duration::from_secs(60),
        || async { (!rig.fake.calls_to(&path).is_empty()).then_some(()) },
    )
    .await;
    rig.crash_and_assert_final("SIGKILL during a status post")
        .await;
}

/// Work in flight when Redis loses it: one check running and, the worker running one job at a
/// time, the next commit's ingestion waiting in the queue behind it.
async fn redis_fault(fault: &str, redis: &mut PrivateRedis, action: RedisAction) {
    let store = tempfile::tempdir().unwrap();
    let db = TestDb::empty().await;
    let mut rig = Rig::start_with(
        db.config.clone(),
        db.pool.clone(),
        &redis.url(),
        Store::Local(store.path()),
        |c| c.queue.concurrency = 1,
    )
    .await;
    let first = rig.push(4);
    rig.announce(&first).await;
    rig.upload(&first).await;
    rig.wait_until_check_running(&first).await;
    let second = rig.push(1);
    rig.announce(&second).await;
    // The queue's database (redis.queue_db).
    let queue_db = format!("{}/{}", redis.url(), rig.config.redis.queue_db);
    let client = redis::Client::open(queue_db).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let held: u64 = redis::cmd("XLEN")
        .arg("faults:queue:default:stream")
        .query_async(&mut conn)
        .await
        .unwrap();
    println!("{fault}: {held} jobs in the stream when Redis loses it");
    match action {
        RedisAction::Restart => {
            let third = rig.push(1);
            redis.stop();
            // Announced while Redis is down: refused with 503, accepted on a retry.
            tokio::join!(rig.announce(&third), async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                redis.resume().await;
            });
        }
        RedisAction::FlushAll => {
            let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
        }
    }
    rig.assert_all_final(fault).await;
}

enum RedisAction {
    Restart,
    FlushAll,
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_restarted_without_persistence() {
    let mut redis = PrivateRedis::start().await;
    redis_fault(
        "Redis restarted without persistence",
        &mut redis,
        RedisAction::Restart,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_restarted_with_persistence() {
    let mut redis = PrivateRedis::start_persistent().await;
    redis_fault(
        "Redis restarted with persistence (AOF)",
        &mut redis,
        RedisAction::Restart,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_flushall_mid_run() {
    let mut redis = PrivateRedis::start().await;
    redis_fault("Redis FLUSHALL mid-run", &mut redis, RedisAction::FlushAll).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_crashed_and_restarted() {
    if !PrivatePostgres::available() {
        println!("SKIPPED: PostgreSQL 15 binaries not installed");
        return;
    }
    let mut pg = PrivatePostgres::start().await;
    let pool = pg.create_database("cocov_faults").await;
    let redis = PrivateRedis::start().await;
    let store = tempfile::tempdir().unwrap();
    let mut rig = Rig::start(
        pg.config("cocov_faults"),
        pool,
        &redis.url(),
        Store::Local(store.path()),
    )
    .await;
    let first = rig.push(4);
    rig.announce(&first).await;
    rig.upload(&first).await;
    rig.wait_until_check_running(&first).await;
    let second = rig.push(1);
    rig.announce(&second).await;
    pg.crash();
    // Announced and uploaded while PostgreSQL is down: 503, accepted on a retry.
    let third = rig.push(1);
    tokio::join!(rig.announce(&third), async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        pg.resume().await;
    });
    rig.assert_all_final("PostgreSQL crashed and restarted")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_store_stopped_for_a_while() {
    let mut s3 = S3Server::s3s_fs().await;
    let redis = PrivateRedis::start().await;
    let db = TestDb::empty().await;
    let mut rig = Rig::start(
        db.config.clone(),
        db.pool.clone(),
        &redis.url(),
        Store::S3(&s3),
    )
    .await;
    let first = rig.push(1);
    rig.announce(&first).await;
    rig.upload(&first).await;
    rig.sql_true(
        "the first commit to be ingested",
        "SELECT ingest_status = 'completed' FROM commits WHERE sha = $1::citext",
        &first,
    )
    .await;
    s3.stop();
    let second = rig.push(1);
    rig.announce(&second).await;
    // The ingestion cannot store the archive: it waits, it does not give up.
    rig.sql_true(
        "the second ingestion to fail and wait for a retry",
        "SELECT ingest_status = 'queued' AND ingest_error IS NOT NULL FROM commits \
         WHERE sha = $1::citext",
        &second,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    s3.restart().await;
    rig.assert_all_final("S3 store stopped for a while").await;
}

/// A tmpfs of `size` mounted at a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        if !nix::unistd::Uid::effective().is_root() {
            return Err("not running as root: cannot mount a tmpfs".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).output();
    }
}

/// Fills the file system holding `dir` with one file; returns it.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.flush();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn blob_store_disk_full() {
    let disk = match Tmpfs::mount("16m") {
        Ok(d) => d,
        Err(why) => {
            println!("SKIPPED blob_store_disk_full: {why}");
            return;
        }
    };
    let redis = PrivateRedis::start().await;
    let (mut rig, _db) = local_rig(&redis, &disk.path()).await;
    let first = rig.push(1);
    rig.announce(&first).await;
    rig.upload(&first).await;
    rig.sql_true(
        "the first commit to be ingested",
        "SELECT ingest_status = 'completed' FROM commits WHERE sha = $1::citext",
        &first,
    )
    .await;
    let filler = fill(&disk.path());
    let second = rig.push(1);
    rig.announce(&second).await;
    rig.sql_true(
        "the second ingestion to fail for want of space and wait",
        "SELECT ingest_status = 'queued' AND ingest_error IS NOT NULL FROM commits \
         WHERE sha = $1::citext",
        &second,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    std::fs::remove_file(filler).unwrap();
    rig.assert_all_final("blob store disk full").await;
}
