//! Issue 11, items 1 and 7, as attacks against the real daemon: repository URLs that would reach
//! git's command line or a forbidden transport (through the API, the CLI, and rows stored before
//! the check existed), credentials in URLs, the hook's token file, the GitHub installation token
//! in Redis, and Redis over TLS.

use crate::common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::git_server::GitServer;
use common::origin::{Origin, announce, register};
use common::{TestApp, TestRedis, cocov_command};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn start() -> impl std::future::Future<Output = TestApp> {
    TestApp::start_with(|c| {
        c.queue.max_deliveries = 2;
        c.queue.retry_base_delay_ms = 20;
        c.queue.retry_max_delay_ms = 50;
        // An unreachable remote is an outage, retried until this deadline, then final.
        c.queue.outage_deadline_seconds = 3;
    })
}

async fn post_repository(t: &TestApp, token: &str, name: &str, url: &str) -> (StatusCode, Value) {
    let resp = t
        .client
        .post(t.url("/v1/repositories"))
        .header("authorization", format!("bearer {token}"))
        .json(&json!({"name": name, "git_url": url}))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap_or_default())
}

async fn count(t: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&t.app().db)
        .await
        .unwrap()
}

/// A repository registered with a good URL, then given `url` directly in the database, as a
/// row written before URLs were checked would hold it; a push of `sha` is announced.
async fn legacy_row_ingests(
    t: &TestApp,
    name: &str,
    url: &str,
    sha: &str,
) -> (i64, String, String) {
    let origin = Origin::new();
    let (id, token) = register(t, name, &origin.url()).await;
    sqlx::query("UPDATE repositories SET git_url = $2 WHERE id = $1")
        .bind(id)
        .bind(url)
        .execute(&t.app().db)
        .await
        .unwrap();
    let (status, body) = announce(t, name, &format!("token {token}"), json!({"sha": sha})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (state, error) = t.ingestion_outcome(id, sha).await;
    (id, state, error.unwrap_or_default())
}

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

#[tokio::test(flavor = "multi_thread")]
async fn hostile_urls_are_refused_by_the_api_and_nothing_is_written() {
    let t = start().await;
    let admin = t.user_token("root", true).await;
    let (_, service) = cocov::auth::service_tokens::create(
        &t.app().db,
        "ci",
        None,
        &cocov::audit::AuditActor::system(),
    )
    .await
    .unwrap();
    let audit_before = count(&t, "SELECT count(*) FROM audit_log").await;
    for (url, code) in [
        (
            "--upload-pack=touch /tmp/cocov-pwned",
            "git_url_option_like",
        ),
        ("-u", "git_url_option_like"),
        ("file:///srv/a.git --upload-pack=x", "git_url_option_like"),
        ("ext::sh -c touch% /tmp/cocov-pwned", "git_url_option_like"),
        ("ext::sh%20-c%20id", "git_url_remote_helper"),
        ("fd::0", "git_url_remote_helper"),
        ("ssh://-oProxyCommand=id/x", "git_url_option_like"),
        ("https://h/a\tb", "git_url_whitespace"),
        ("http://git.example/a.git", "git_url_scheme_not_allowed"),
        ("git://git.example/a.git", "git_url_scheme_not_allowed"),
        ("ftp://git.example/a.git", "git_url_scheme_not_allowed"),
        (
            "https://ada:hunter2@git.example/a.git",
            "git_url_credentials",
        ),
        (
            "https://ghp_hunter2@git.example/a.git",
            "git_url_credentials",
        ),
        ("/srv/a.git", "invalid_git_url"),
    ] {
        for token in [&admin, &service] {
            let (status, body) = post_repository(&t, token, "evil", url).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
            assert_eq!(
                body["code"],
                format!("repositories.{code}"),
                "{url}: {body}"
            );
            let message = body["message"].as_str().unwrap();
            assert!(
                !message.is_empty() && !message.contains("hunter2"),
                "{body}"
            );
        }
    }
    assert_eq!(count(&t, "SELECT count(*) FROM repositories").await, 0);
    assert_eq!(
        count(&t, "SELECT count(*) FROM audit_log").await,
        audit_before
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_refuses_hostile_urls_naming_the_flag() {
    let t = start().await;
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        format!(
            "[database]\nurl = \"{}\"\n[redis]\nurl = \"{}\"\nkey_prefix = \"{}\"\n",
            t.db.config.url, t.redis.config.url, t.redis.config.key_prefix
        ),
    )
    .unwrap();
    for url in ["--upload-pack=touch /tmp/cocov-pwned", "ext::sh%20-c%20id"] {
        let out = cocov_command()
            .arg("--config")
            .arg(config.path())
            .args(["repo", "add", "evil", &format!("--git-url={url}")])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url} was accepted");
        assert!(stderr.contains("--git-url"), "{stderr}");
        assert!(stderr.contains("git_url_"), "{stderr}");
    }
    assert_eq!(count(&t, "SELECT count(*) FROM repositories").await, 0);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_ext_url_runs_nothing() {
    let t = start().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let url = format!("ext::sh -c touch% {}", marker.display());
    let (_, state, error) = legacy_row_ingests(&t, "legacy-ext", &url, SHA).await;
    assert_eq!(state, "errored");
    assert!(error.contains("not allowed"), "{error}");
    assert!(!marker.exists(), "ext:: ran a command on the host");
    t.shutdown().await;
}

/// Without `--` before the URL, git reads it as its `--upload-pack` option and runs the value.
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_option_like_url_is_never_an_option() {
    let t = start().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let url = format!("--upload-pack=touch {};", marker.display());
    let (_, state, _) = legacy_row_ingests(&t, "legacy-option", &url, SHA).await;
    assert_eq!(state, "errored");
    assert!(!marker.exists(), "--upload-pack ran a command on the host");
    t.shutdown().await;
}

/// git's own default lets http through; the policy (`protocol.allow=never` plus the allowed
/// transports) stops it before any request leaves the host.
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_url_of_a_disallowed_transport_is_refused_by_git() {
    let t = start().await;
    let server = GitServer::start(Arc::new(|_| true)).await;
    server.create_repo("acme", "plain");
    let url = server.repo_url("acme", "plain");
    let (_, state, error) = legacy_row_ingests(&t, "legacy-http", &url, SHA).await;
    assert_eq!(state, "errored");
    assert!(error.contains("not allowed"), "{error}");
    assert!(
        server.requests().is_empty(),
        "git reached the http server: {:?}",
        server.requests()
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_is_accepted_once_an_administrator_allows_it() {
    let t = TestApp::start_with(|c| {
        c.git.allowed_protocols.push("http".into());
        c.queue.max_deliveries = 1;
    })
    .await;
    let server = GitServer::start(Arc::new(|_| true)).await;
    server.create_repo("acme", "plain");
    let (id, token) = register(&t, "plain", &server.repo_url("acme", "plain")).await;
    announce(&t, "plain", &format!("token {token}"), json!({"sha": SHA})).await;
    // The server asks for credentials this URL has none of; what matters is that git went.
    let (state, _) = t.ingestion_outcome(id, SHA).await;
    assert_eq!(state, "errored");
    assert!(
        !server.requests().is_empty(),
        "git never reached the server"
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn file_urls_still_work() {
    let t = start().await;
    let origin = Origin::new();
    let sha = origin.commit(&[("a.txt", "a")], "a");
    let (id, token) = register(&t, "local", &origin.url()).await;
    announce(&t, "local", &format!("token {token}"), json!({"sha": sha})).await;
    assert_eq!(t.ingestion_outcome(id, &sha).await.0, "completed");
    t.shutdown().await;
}

/// A row stored with credentials before they were refused: never shown back.
#[tokio::test(flavor = "multi_thread")]
async fn stored_credentials_are_redacted_in_answers_and_errors() {
    let t = start().await;
    let admin = t.user_token("root", true).await;
    let url = "https://ada:hunter2@127.0.0.1:1/secret.git";
    let (_, state, error) = legacy_row_ingests(&t, "legacy-creds", url, SHA).await;
    assert_eq!(state, "errored");
    assert!(!error.contains("hunter2"), "{error}");
    for path in ["/v1/repositories/legacy-creds", "/v1/repositories"] {
        let body = t
            .client
            .get(t.url(path))
            .header("authorization", format!("bearer {admin}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!body.contains("hunter2"), "{path}: {body}");
        assert!(
            body.contains("https://***@127.0.0.1:1/secret.git"),
            "{path}: {body}"
        );
    }
    let audit: Vec<String> = sqlx::query_scalar("SELECT details::text FROM audit_log")
        .fetch_all(&t.app().db)
        .await
        .unwrap();
    assert!(audit.iter().all(|d| !d.contains("hunter2")), "{audit:?}");
    t.shutdown().await;
}

/// ssh trusts only the configured known-hosts file and never adds to it. A stand-in `ssh`
/// first on PATH records how git calls it; PATH is changed only in a child process running
/// `ssh_probe` (changing it here would race with the other tests' threads).
#[test]
fn ssh_runs_with_strict_host_keys_from_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("ssh");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n\
             echo 'No ED25519 host key is known for 127.0.0.1.' >&2\n\
             echo 'Host key verification failed.' >&2\nexit 255\n",
            dir.path().join("ssh-args").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "security_git::ssh_probe",
            "--ignored",
            "--nocapture",
        ])
        .env("COCOV_SSH_PROBE_DIR", dir.path())
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let args = std::fs::read_to_string(dir.path().join("ssh-args")).unwrap();
    assert!(args.contains("StrictHostKeyChecking=yes"), "{args}");
    let known_hosts = dir.path().join("state/ssh/known_hosts");
    assert!(
        args.contains(&format!("UserKnownHostsFile={}", known_hosts.display())),
        "{args}"
    );
    assert!(!args.contains("accept-new"), "{args}");
}

/// The fetch `ssh_runs_with_strict_host_keys_from_the_state_directory` runs in a child process.
#[tokio::test]
#[ignore = "run by ssh_runs_with_strict_host_keys_from_the_state_directory"]
async fn ssh_probe() {
    let dir = std::path::PathBuf::from(std::env::var("COCOV_SSH_PROBE_DIR").unwrap());
    let known_hosts = dir.join("state/ssh/known_hosts");
    let policy = cocov::git::Policy::new(&["ssh".into()], &known_hosts);
    let scratch = cocov::git::Scratch::new(policy, Duration::from_secs(20))
        .await
        .unwrap();
    let err = scratch
        .fetch(
            "ssh://git@127.0.0.1/x.git",
            SHA,
            &[],
            Duration::from_secs(20),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, cocov::git::GitError::UnknownHostKey(_)),
        "{err}"
    );
    assert!(!err.is_transient());
    assert!(
        err.to_string().contains("No ED25519 host key is known"),
        "{err}"
    );
}

fn bare_repository(dir: &Path) {
    let out = std::process::Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
}

fn hook_install(git_dir: &Path, extra: &[&str], stdin: &str) -> std::process::Output {
    let mut child = cocov_command()
        .args(["hook", "install", "--git-dir"])
        .arg(git_dir)
        .args(["--url", "http://127.0.0.1:1", "--repository", "demo"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_hook_token_stays_off_command_lines_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let git_dir = dir.path().join("repo.git");
    bare_repository(&git_dir);
    let token = format!("crt_{}", "a".repeat(43));

    // On the command line: refused, nothing written.
    let out = hook_install(&git_dir, &["--token", &token], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
    assert!(!git_dir.join("cocov-token").exists());
    assert!(!git_dir.join("hooks/post-receive").exists());

    // An attacker with write access to the repository plants a link where the token goes.
    let elsewhere = dir.path().join("readable-by-all");
    std::fs::write(&elsewhere, "").unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, git_dir.join("cocov-token")).unwrap();

    let out = hook_install(&git_dir, &["--token-file", "-"], &format!("{token}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token_file = git_dir.join("cocov-token");
    let meta = std::fs::symlink_metadata(&token_file).unwrap();
    assert!(meta.file_type().is_file(), "the link was followed");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), token);
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "");
    let hook = std::fs::read_to_string(git_dir.join("hooks/post-receive")).unwrap();
    assert!(!hook.contains(&token), "{hook}");
    assert!(hook.contains("--token-file"), "{hook}");
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&git_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".cocov-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cached_installation_token_is_sealed_in_redis() {
    let fake = common::fake_github::FakeGithub::start().await;
    let config = fake.config();
    let redis = TestRedis::new();
    let metrics = Arc::new(cocov::metrics::Metrics::new());
    let host = |kv: cocov::kv::Kv| {
        cocov::github::GitHub::from_config(&config, kv, metrics.clone())
            .unwrap()
            .unwrap()
    };
    let token = host(redis.kv.clone()).installation_token().await.unwrap();
    let mut conn = redis.kv.conn(cocov::kv::Db::Primary);
    let raw: Vec<u8> = conn
        .get(redis.kv.key("github:installation_token"))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(!raw.is_empty());
    assert!(
        !text.contains(&token),
        "the token is readable in Redis: {text}"
    );
    assert!(!text.contains(&token["ghs_".len()..]), "{text}");
    // Another host (its own client over the same Redis) opens and uses it: no new token.
    let second = cocov::kv::Kv::connect(&redis.config).unwrap();
    assert_eq!(host(second).installation_token().await.unwrap(), token);
    assert_eq!(fake.token_requests(), 1);
}

/// A private redis-server speaking only TLS, with a certificate from a CA made for the test.
struct TlsRedis {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl TlsRedis {
    fn start() -> TlsRedis {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .current_dir(d)
                .args(args)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=cocov test CA",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        );
        std::fs::write(d.join("ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "ext",
        ]);
        let port = common::requests::free_port();
        let child = std::process::Command::new("redis-server")
            .current_dir(d)
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                "server.pem",
                "--tls-key-file",
                "server.key",
            ])
            .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsRedis { child, port, dir }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_over_tls_with_a_private_ca() {
    let server = TlsRedis::start();
    let config = cocov::config::RedisConfig {
        url: format!("rediss://127.0.0.1:{}", server.port),
        tls_ca_file: server.dir.path().join("ca.pem").display().to_string(),
        key_prefix: "cocov-tls-test:".into(),
        ..Default::default()
    };
    let kv = cocov::kv::Kv::connect(&config).unwrap();
    kv.ping().await.expect("PING over TLS");
    let mut conn = kv.conn(cocov::kv::Db::Primary);
    let _: () = conn.set(kv.key("k"), "v").await.unwrap();
    let v: String = conn.get(kv.key("k")).await.unwrap();
    assert_eq!(v, "v");

    // Without the CA the server's certificate is not trusted: no silent downgrade.
    let untrusted = cocov::kv::Kv::connect(&cocov::config::RedisConfig {
        tls_ca_file: String::new(),
        ..config.clone()
    })
    .unwrap();
    assert!(untrusted.ping().await.is_err());
    // And plain redis:// to the TLS port gets nowhere.
    let plain = cocov::kv::Kv::connect(&cocov::config::RedisConfig {
        url: format!("redis://127.0.0.1:{}", server.port),
        ..config
    })
    .unwrap();
    assert!(plain.ping().await.is_err());
}
