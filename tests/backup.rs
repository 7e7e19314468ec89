//! `cocov backup` / `cocov restore` through the real binary: a seeded installation (a pushed
//! commit checked by shellcheck in the sandbox, a coverage upload, a secret, user and service
//! tokens) is backed up, restored onto a fresh database, store and key path, and a daemon
//! started on the restored state answers as the original did.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::origin::{Origin, announce, register};
use common::requests::get;
use common::{TestApp, TestDb, TestRedis, cocov_command};
use reqwest::StatusCode;
use serde_json::{Value, json};

const MANIFEST: &str = "version: \"0.1.alpha\"\nchecks:\n  - plugin: cocov/shellcheck:v0.1\n";
const SECRET: &[u8] = b"correct horse battery staple";

fn fixture_project() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/coverage/lcov/project");
    let mut out = Vec::new();
    for sub in ["src", "tests"] {
        for entry in std::fs::read_dir(root.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let name = format!("{sub}/{}", path.file_name().unwrap().to_string_lossy());
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

fn lcov_report() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/coverage/lcov/lcov.info"),
    )
    .unwrap()
}

/// A key file of its own (the backup must carry the key for secrets to decrypt).
fn write_key(dir: &Path) -> PathBuf {
    let path = dir.join("secret.key");
    std::fs::write(&path, format!("{}\n", "5a".repeat(32))).unwrap();
    path
}

/// The configuration as a file the binary reads.
fn config_file(config: &cocov::config::Config, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, toml::to_string(config).unwrap()).unwrap();
    path
}

fn cocov(config: &Path, args: &[&str]) -> Output {
    cocov_command()
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("cocov runs")
}

#[track_caller]
fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file under `root`, relative path → bytes.
fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The answers compared before and after: what an API client sees of the seeded data.
fn read_paths(name: &str, sha: &str) -> Vec<String> {
    vec![
        "/v1/repositories".into(),
        format!("/v1/repositories/{name}"),
        format!("/v1/repositories/{name}/branches"),
        format!("/v1/repositories/{name}/commits"),
        format!("/v1/repositories/{name}/commits/{sha}"),
        format!("/v1/repositories/{name}/commits/{sha}/checks"),
        format!("/v1/repositories/{name}/commits/{sha}/issues?per_page=100"),
        format!("/v1/repositories/{name}/commits/{sha}/coverage"),
        format!("/v1/repositories/{name}/commits/{sha}/coverage/summary"),
    ]
}

async fn answers(t: &TestApp, auth: &str, paths: &[String]) -> Vec<(String, StatusCode, Value)> {
    let mut out = Vec::new();
    for path in paths {
        let (status, body) = get(t, Some(auth), path).await;
        out.push((path.clone(), status, body));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restored_installation_answers_like_the_original() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = write_key(keys.path());
    let key_for_app = key_file.clone();
    let t = TestApp::start_with(move |c| c.security.cryptographic_key_file = key_for_app).await;

    // A repository with a pushed commit, checked by shellcheck (issues) and a coverage upload.
    let origin = Origin::new();
    let (repo_id, repo_token) = register(&t, "vault", &origin.url()).await;
    let mut files = fixture_project();
    files.push((".cocov.yaml".into(), MANIFEST.into()));
    files.push(("bin/run.sh".into(), "#!/bin/sh\necho $1\n".into()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let sha = origin.commit(&refs, "first");
    let (status, body) = announce(
        &t,
        "vault",
        &format!("token {repo_token}"),
        json!({"sha": sha, "branch": "main"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let upload = t
        .client
        .post(t.url(&format!("/v1/reports/raw?commit_sha={sha}&format=lcov")))
        .header("authorization", format!("token {repo_token}"))
        .body(lcov_report())
        .send()
        .await
        .unwrap();
    assert!(
        upload.status().is_success(),
        "{}",
        upload.text().await.unwrap()
    );

    let admin = t.user_token("root", true).await;
    let alice = t.user_token("alice", false).await;
    // A member of the standalone repository (its membership travels with the backup).
    let vault = cocov::repositories::find(&t.app().db, repo_id)
        .await
        .unwrap()
        .unwrap();
    cocov::memberships::grant(
        &t.app().db,
        &vault,
        cocov::memberships::Subject::User("alice"),
        cocov::memberships::Level::Read,
        &cocov::audit::AuditActor::system(),
    )
    .await
    .unwrap();
    let (_, service) = cocov::auth::service_tokens::create(
        &t.app().db,
        "backup test",
        None,
        &cocov::audit::AuditActor::system(),
    )
    .await
    .unwrap();
    let cipher = cocov::secrets::Cipher::from_config(&t.app().config.security).unwrap();
    cocov::secrets::put(
        &t.app().db,
        &cipher,
        cocov::secrets::Scope::Repository(repo_id),
        "DEPLOY_KEY",
        SECRET,
        None,
    )
    .await
    .unwrap();

    // Wait until the checks and the coverage are final, so both sides hold the same state.
    let checks = format!("/v1/repositories/vault/commits/{sha}/checks");
    let summary = format!("/v1/repositories/vault/commits/{sha}/coverage/summary");
    common::eventually("checks and coverage", Duration::from_secs(180), || async {
        let (_, view) = get(&t, Some(&admin), &checks).await;
        let (cov, _) = get(&t, Some(&admin), &summary).await;
        (view["status"] == "completed" && cov == StatusCode::OK).then_some(())
    })
    .await;
    // The last step of a finished set (its status) is written a moment after it ends.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let paths = read_paths("vault", &sha);
    let before = answers(&t, &admin, &paths).await;
    for (path, status, body) in &before {
        assert_eq!(*status, StatusCode::OK, "{path}: {body}");
    }
    let issues = &before[6].2["issues"];
    assert!(
        !issues.as_array().unwrap().is_empty(),
        "no issues: {issues}"
    );

    // Back up with the binary.
    let work = tempfile::tempdir().unwrap();
    let source_config = config_file(&t.app().config, work.path(), "source.toml");
    let backup_dir = work.path().join("backup");
    let out = cocov(&source_config, &["backup", backup_dir.to_str().unwrap()]);
    assert_ok(&out, "backup");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["schema_version"],
        cocov::db::binary_schema_version()
    );
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for must in ["database.dump", "secret.key", "cocov.toml"] {
        assert!(listed.contains(&must), "{must} not in {listed:?}");
    }
    assert!(listed.iter().any(|p| p.starts_with("blobs/")), "{listed:?}");

    // Restore onto a fresh database, store and key path.
    let db = TestDb::empty().await;
    let storage = tempfile::tempdir().unwrap();
    let new_keys = tempfile::tempdir().unwrap();
    let new_key_file = new_keys.path().join("restored/secret.key");
    let mut target = (*t.app().config).clone();
    target.database = db.config.clone();
    target.storage.local_path = storage.path().to_path_buf();
    target.security.cryptographic_key_file = new_key_file.clone();
    let target_config = config_file(&target, work.path(), "target.toml");
    let out = cocov(&target_config, &["restore", backup_dir.to_str().unwrap()]);
    assert_ok(&out, "restore");
    assert_eq!(
        std::fs::read_to_string(&new_key_file).unwrap().trim(),
        "5a".repeat(32)
    );
    assert_eq!(
        tree(storage.path()),
        tree(t.storage_dir.path()),
        "blobs differ"
    );

    let key_for_restored = new_key_file.clone();
    let r = TestApp::start_on(db, storage, move |c| {
        c.security.cryptographic_key_file = key_for_restored
    })
    .await;
    // The original tokens authenticate on the restored installation.
    let after = answers(&r, &admin, &paths).await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "{} differs after restore", b.0);
    }
    for (who, auth) in [("user", &alice), ("service", &service)] {
        let (status, body) = get(&r, Some(auth), "/v1/repositories/vault").await;
        assert_eq!(status, StatusCode::OK, "{who} token: {body}");
    }
    let (status, _) = get(&r, Some("cop_not-a-token"), "/v1/repositories/vault").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The secret still decrypts with the restored key.
    let restored_cipher = cocov::secrets::Cipher::from_config(&r.app().config.security).unwrap();
    let values = cocov::secrets::resolve_for_repository(
        &r.app().db,
        &restored_cipher,
        repo_id,
        &["DEPLOY_KEY".to_string()],
    )
    .await
    .unwrap();
    assert_eq!(values["DEPLOY_KEY"], SECRET);

    r.shutdown().await;
    t.shutdown().await;
}

/// A restore target: its own database, storage dir and key path, as a config file.
struct Target {
    db: TestDb,
    redis: TestRedis,
    storage: tempfile::TempDir,
    key_file: PathBuf,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Target {
    async fn new(source: &cocov::config::Config, db: TestDb) -> Target {
        let dir = tempfile::tempdir().unwrap();
        let storage = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("secret.key");
        let redis = TestRedis::new();
        let mut config = source.clone();
        config.database = db.config.clone();
        config.redis = redis.config.clone();
        config.storage.local_path = storage.path().to_path_buf();
        config.security.cryptographic_key_file = key_file.clone();
        let config = config_file(&config, dir.path(), "target.toml");
        Target {
            db,
            redis,
            storage,
            key_file,
            config,
            _dir: dir,
        }
    }

    fn restore(&self, backup: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["restore", backup.to_str().unwrap()];
        args.extend(extra);
        cocov(&self.config, &args)
    }

    async fn logins(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT login::text FROM users ORDER BY login")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }

    /// Whether restore wrote anything: tables, blobs or the key.
    async fn untouched_since_empty(&self) -> bool {
        let tables: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                .fetch_one(&self.db.pool)
                .await
                .unwrap();
        tables == 0 && tree(self.storage.path()).is_empty() && !self.key_file.exists()
    }
}

#[track_caller]
fn refused(out: &Output, needles: &[&str]) {
    assert!(
        !out.status.success(),
        "accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = stderr(out);
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

const BLOB: &str = "7/archives/0a1b.tar.zst";

/// A change to a copy of a backup, and the name restore must report.
type Alteration = (&'static str, fn(&Path));

#[tokio::test(flavor = "multi_thread")]
async fn bad_targets_and_altered_backups_are_refused_and_nothing_is_written() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = write_key(keys.path());
    let t = TestApp::start_with(move |c| c.security.cryptographic_key_file = key_file).await;
    t.user_token("owner", true).await;
    let key = cocov::storage::BlobKey::new(BLOB).unwrap();
    t.app()
        .storage
        .put(&key, bytes::Bytes::from_static(b"archive bytes"))
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let source = config_file(&t.app().config, work.path(), "source.toml");
    let backup = work.path().join("backup");
    assert_ok(
        &cocov(&source, &["backup", backup.to_str().unwrap()]),
        "backup",
    );

    // A non-empty backup directory.
    let out = cocov(&source, &["backup", backup.to_str().unwrap()]);
    refused(&out, &[backup.to_str().unwrap(), "not empty"]);

    // A database in use: refused without --force, and left as it was.
    let used = Target::new(&t.app().config, TestDb::migrated().await).await;
    cocov::auth::users::create(
        &used.db.pool,
        "someone",
        true,
        &cocov::audit::AuditActor::system(),
    )
    .await
    .unwrap();
    refused(
        &used.restore(&backup, &[]),
        &["not empty", "users", "--force"],
    );
    assert_eq!(used.logins().await, ["someone"]);
    assert!(tree(used.storage.path()).is_empty() && !used.key_file.exists());

    // A store holding blobs.
    let full_store = Target::new(&t.app().config, TestDb::empty().await).await;
    std::fs::write(full_store.storage.path().join("stray"), b"x").unwrap();
    let out = full_store.restore(&backup, &[]);
    refused(
        &out,
        &["blob store", full_store.storage.path().to_str().unwrap()],
    );
    std::fs::remove_file(full_store.storage.path().join("stray")).unwrap();
    assert!(full_store.untouched_since_empty().await);

    // Altered backups, each refused naming the file, onto an empty target that stays empty.
    let empty = Target::new(&t.app().config, TestDb::empty().await).await;
    let alter: [Alteration; 5] = [
        ("blobs/7/archives/0a1b.tar.zst", |dir| {
            std::fs::write(dir.join("blobs").join(BLOB), b"archive bytez").unwrap()
        }),
        ("database.dump", |dir| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("database.dump"))
                .unwrap();
            f.set_len(100).unwrap();
        }),
        ("secret.key", |dir| {
            std::fs::remove_file(dir.join("secret.key")).unwrap()
        }),
        ("MANIFEST.json", |dir| {
            std::fs::remove_file(dir.join("MANIFEST.json")).unwrap()
        }),
        ("../../etc/passwd", |dir| {
            let path = dir.join("MANIFEST.json");
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(
                &path,
                text.replace("\"cocov.toml\"", "\"../../etc/passwd\""),
            )
            .unwrap();
        }),
    ];
    for (i, (name, change)) in alter.into_iter().enumerate() {
        let copy = work.path().join(format!("altered-{i}"));
        copy_dir(&backup, &copy);
        change(&copy);
        refused(&empty.restore(&copy, &[]), &[name]);
        assert!(
            empty.untouched_since_empty().await,
            "{name}: something was written"
        );
    }

    // A backup from a newer schema.
    let newer = work.path().join("newer");
    copy_dir(&backup, &newer);
    let path = newer.join("MANIFEST.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["schema_version"] = json!(cocov::db::binary_schema_version() + 1);
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    refused(&empty.restore(&newer, &[]), &["newer than this cocov"]);
    assert!(empty.untouched_since_empty().await);

    // A target migrated past the backup's schema (restoring would leave its newer objects).
    let older = work.path().join("older");
    copy_dir(&backup, &older);
    let path = older.join("MANIFEST.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["schema_version"] = json!(cocov::db::binary_schema_version() - 1);
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    refused(
        &used.restore(&older, &["--force"]),
        &["newer than the backup's"],
    );
    assert_eq!(used.logins().await, ["someone"]);

    // A target with a different key: refused unless told where to write the backup's.
    std::fs::write(&empty.key_file, "c3".repeat(32)).unwrap();
    refused(&empty.restore(&backup, &[]), &["differs", "--key-file"]);
    let elsewhere = work.path().join("keys/backup.key");
    assert_ok(
        &empty.restore(&backup, &["--key-file", elsewhere.to_str().unwrap()]),
        "restore with --key-file",
    );
    assert_eq!(
        std::fs::read_to_string(&elsewhere).unwrap().trim(),
        "5a".repeat(32)
    );
    assert_eq!(
        std::fs::read_to_string(&empty.key_file).unwrap(),
        "c3".repeat(32)
    );
    assert_eq!(empty.logins().await, ["owner"]);

    // --force replaces the database in use, the store's contents and the Redis keys (a queued
    // job of the replaced database would name rows that now mean something else).
    std::fs::write(used.storage.path().join("stray"), b"x").unwrap();
    let job = used.redis.kv.key("queue:stale");
    let mut redis = used.redis.kv.conn(cocov::kv::Db::Queue);
    let () = redis::cmd("SET")
        .arg(&job)
        .arg("1")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_ok(&used.restore(&backup, &["--force"]), "forced restore");
    let left: Option<String> = redis::cmd("GET")
        .arg(&job)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(left, None, "the stale queue key survived");
    assert_eq!(used.logins().await, ["owner"]);
    let blobs: Vec<String> = tree(used.storage.path())
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(blobs, [BLOB]);

    t.shutdown().await;
}

/// Every object in a store, key → bytes.
async fn objects(store: &dyn cocov::storage::BlobStore) -> Vec<(String, bytes::Bytes)> {
    let mut out = Vec::new();
    for meta in store
        .list(&cocov::storage::BlobPrefix::all())
        .await
        .unwrap()
    {
        out.push((meta.key.to_string(), store.get(&meta.key).await.unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_store_is_copied_object_by_object_and_restored_into_a_new_bucket() {
    let server = common::s3_servers::S3Server::s3s_fs().await;
    let s3 = server.config(&common::s3_servers::unique_bucket());
    let keys = tempfile::tempdir().unwrap();
    let key_file = write_key(keys.path());
    let t = TestApp::start_with(move |c| {
        c.security.cryptographic_key_file = key_file;
        c.storage.mode = cocov::config::StorageMode::S3;
        c.storage.s3 = s3;
    })
    .await;
    let origin = Origin::new();
    register(&t, "bucketed", &origin.url()).await;
    let admin = t.user_token("root", true).await;
    for (key, data) in [
        (BLOB, "one"),
        ("7/coverage/2.json", "two"),
        ("8/x", "three"),
    ] {
        let key = cocov::storage::BlobKey::new(key).unwrap();
        t.app().storage.put(&key, data.into()).await.unwrap();
    }

    let work = tempfile::tempdir().unwrap();
    let source = config_file(&t.app().config, work.path(), "source.toml");
    let backup = work.path().join("backup");
    assert_ok(
        &cocov(&source, &["backup", backup.to_str().unwrap()]),
        "backup",
    );

    // Restore into another bucket of the same server and a fresh database.
    let db = TestDb::empty().await;
    let mut target = (*t.app().config).clone();
    target.database = db.config.clone();
    target.storage.s3.bucket = common::s3_servers::unique_bucket();
    target.security.cryptographic_key_file = work.path().join("restored.key");
    let target_config = config_file(&target, work.path(), "target.toml");
    let out = cocov(&target_config, &["restore", backup.to_str().unwrap()]);
    assert_ok(&out, "restore");

    let restored_store = cocov::storage::open(&target.storage).await.unwrap();
    let original = objects(t.app().storage.as_ref()).await;
    assert_eq!(original.len(), 3);
    assert_eq!(objects(restored_store.as_ref()).await, original);

    let (s3_bucket, restored_key) = (
        target.storage.s3.clone(),
        target.security.cryptographic_key_file.clone(),
    );
    let r = TestApp::start_on(db, tempfile::tempdir().unwrap(), move |c| {
        c.storage.mode = cocov::config::StorageMode::S3;
        c.storage.s3 = s3_bucket;
        c.security.cryptographic_key_file = restored_key;
    })
    .await;
    assert_eq!(
        get(&r, Some(&admin), "/v1/repositories").await,
        get(&t, Some(&admin), "/v1/repositories").await
    );
    r.shutdown().await;
    t.shutdown().await;
}
