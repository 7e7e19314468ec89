//! The GitHub App client against the fake GitHub (real HTTP, real RS256 JWTs, real Redis) and a
//! real git smart-HTTP server: token minting and caching, pagination, statuses, retries, rate
//! limits, timeouts, file contents, membership, permissions, and fetching with the token.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use cocov::config::GithubConfig;
use cocov::github::{CommitStatus, GitHub, GithubError, StatusState, permission_level};
use cocov::metrics::Metrics;
use common::TestRedis;
use common::fake_github::{AuthKind, FakeCommit, FakeGithub, FakeRepo, ORG, role};
use common::git_server::{GitServer, git, isolated_git};
use redis::AsyncCommands;
use time::OffsetDateTime;

struct Setup {
    fake: FakeGithub,
    redis: TestRedis,
    metrics: Arc<Metrics>,
    gh: GitHub,
    config: GithubConfig,
}

impl Setup {
    async fn new() -> Setup {
        Setup::with(|_| {}).await
    }

    async fn with(adjust: impl FnOnce(&mut GithubConfig)) -> Setup {
        let fake = FakeGithub::start().await;
        let mut config = fake.config();
        adjust(&mut config);
        let redis = TestRedis::new();
        let metrics = Arc::new(Metrics::new());
        let gh = client(&config, &redis, &metrics);
        Setup {
            fake,
            redis,
            metrics,
            gh,
            config,
        }
    }

    /// Another client sharing Redis, as another host would.
    fn another_host(&self) -> GitHub {
        client(&self.config, &self.redis, &self.metrics)
    }
}

fn client(config: &GithubConfig, redis: &TestRedis, metrics: &Arc<Metrics>) -> GitHub {
    GitHub::from_config(config, redis.kv.clone(), metrics.clone())
        .expect("valid config")
        .expect("GitHub mode is on")
}

fn commit(sha: &str, message: &str) -> FakeCommit {
    FakeCommit {
        sha: sha.into(),
        message: message.into(),
        author_name: "Ada Lovelace".into(),
        author_email: "ada@example.com".into(),
        date: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn github_mode_is_off_without_an_app_id_and_a_bad_key_is_refused() {
    let redis = TestRedis::new();
    let metrics = Arc::new(Metrics::new());
    let off = GitHub::from_config(&GithubConfig::default(), redis.kv.clone(), metrics.clone());
    assert!(matches!(off, Ok(None)));

    let fake = FakeGithub::start().await;
    let mut config = fake.config();
    config.app_private_key = "bm90IGEga2V5".into(); // "not a key"
    match GitHub::from_config(&config, redis.kv.clone(), metrics) {
        Err(GithubError::BadConfig(m)) => assert!(m.contains("github.app_private_key"), "{m}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a bad key was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_jwt_is_accepted_and_the_token_is_cached_in_redis() {
    let s = Setup::new().await;
    let token = s.gh.installation_token().await.unwrap();
    assert!(token.starts_with("ghs_"), "{token}");
    let calls = s.fake.calls_to(&FakeGithub::access_token_path());
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].auth, AuthKind::AppJwt);

    // Same process: no new request.
    assert_eq!(s.gh.installation_token().await.unwrap(), token);
    // Another host reads it from Redis: still no new request.
    assert_eq!(s.another_host().installation_token().await.unwrap(), token);
    assert_eq!(s.fake.token_requests(), 1);

    let mut conn = s.redis.kv.conn(cocov::kv::Db::Primary);
    let key = s.redis.kv.key("github:installation_token");
    let stored: String = conn.get(&key).await.unwrap();
    // Sealed: Redis does not hand out a token that acts as the App (tests/security_git.rs).
    assert!(!stored.contains(&token), "{stored}");
    let ttl_ms: i64 = conn.pttl(&key).await.unwrap();
    // One hour minus the five-minute refresh margin at most.
    assert!(ttl_ms > 0 && ttl_ms <= 55 * 60 * 1000, "{ttl_ms}");

    // API calls use the installation token.
    s.fake.add_repo(FakeRepo::new(1, "widgets"));
    s.gh.repository("widgets").await.unwrap().unwrap();
    let call = s.fake.calls_to("/repos/acme/widgets").pop().unwrap();
    assert_eq!(call.auth, AuthKind::Installation(token));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_close_to_expiry_is_refreshed() {
    let s = Setup::new().await;
    // Four minutes left is under the five-minute margin: never reused.
    s.fake.set_token_lifetime(Duration::from_secs(4 * 60));
    let first = s.gh.installation_token().await.unwrap();
    let second = s.gh.installation_token().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(s.fake.token_requests(), 2);

    s.fake.set_token_lifetime(Duration::from_secs(3600));
    let third = s.gh.installation_token().await.unwrap();
    assert_eq!(s.gh.installation_token().await.unwrap(), third);
    assert_eq!(s.another_host().installation_token().await.unwrap(), third);
    assert_eq!(s.fake.token_requests(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_refreshing_at_once_mint_one_token() {
    let s = Setup::new().await;
    let hosts: Vec<GitHub> = (0..4).map(|_| s.another_host()).collect();
    let tokens = futures_util::future::join_all(hosts.iter().map(|h| h.installation_token())).await;
    let tokens: Vec<String> = tokens.into_iter().map(Result::unwrap).collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert_eq!(s.fake.token_requests(), 1);
    // The lock was released.
    let mut conn = s.redis.kv.conn(cocov::kv::Db::Primary);
    let lock: Option<String> = conn
        .get(s.redis.kv.key("locks:github:installation_token"))
        .await
        .unwrap();
    assert_eq!(lock, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jwt_from_the_wrong_app_is_refused() {
    let s = Setup::with(|c| c.app_id = "999".into()).await;
    match s.gh.installation_token().await {
        Err(GithubError::Http {
            operation,
            status,
            message,
        }) => {
            assert_eq!((operation, status), ("installation_token", 401));
            assert!(message.contains("JSON web token"), "{message}");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_token_is_replaced() {
    let s = Setup::new().await;
    s.fake.add_repo(FakeRepo::new(1, "widgets"));
    let first = s.gh.installation_token().await.unwrap();
    s.fake.revoke_tokens();
    let repo = s.gh.repository("widgets").await.unwrap();
    assert!(repo.is_some());
    let second = s.gh.installation_token().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(s.fake.token_requests(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn pagination_returns_every_item() {
    let s = Setup::new().await;
    for id in 1..=5 {
        s.fake.add_repo(
            FakeRepo::new(id, &format!("repo-{id}")).description(&format!("number {id}")),
        );
    }
    let repos = s.gh.org_repositories().await.unwrap();
    let names: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["repo-1", "repo-2", "repo-3", "repo-4", "repo-5"]);
    assert_eq!(repos[2].full_name, "acme/repo-3");
    assert_eq!(repos[2].description.as_deref(), Some("number 3"));
    let calls = s.fake.calls_to("/orgs/acme/repos");
    assert_eq!(calls.len(), 3, "page size 2 → 3 pages");
    assert!(
        calls[0].query.contains("per_page=100"),
        "{}",
        calls[0].query
    );
    assert!(calls[2].query.contains("page=3"), "{}", calls[2].query);

    for id in 1..=3 {
        s.fake
            .add_outside_collaborator(100 + id, &format!("guest{id}"));
    }
    let guests = s.gh.outside_collaborators().await.unwrap();
    let logins: Vec<&str> = guests.iter().map(|u| u.login.as_str()).collect();
    assert_eq!(logins, ["guest1", "guest2", "guest3"]);
    assert_eq!(guests[0].id, 101);
}

#[tokio::test(flavor = "multi_thread")]
async fn ghes_api_prefix_works_with_pagination() {
    let s = Setup::with(|c| c.api_url = format!("{}/api/v3/", c.api_url)).await;
    for id in 1..=3 {
        s.fake.add_repo(FakeRepo::new(id, &format!("repo-{id}")));
    }
    assert_eq!(s.gh.org_repositories().await.unwrap().len(), 3);
    assert_eq!(s.fake.calls_to("/orgs/acme/repos").len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn repository_lookups() {
    let s = Setup::new().await;
    s.fake.add_repo(
        FakeRepo::new(77, "widgets")
            .description("Widgets & gadgets")
            .default_branch("trunk"),
    );
    let repo = s.gh.repository("widgets").await.unwrap().unwrap();
    assert_eq!(repo.id, 77);
    assert_eq!(repo.full_name, "acme/widgets");
    assert_eq!(repo.default_branch, "trunk");
    assert_eq!(repo.description.as_deref(), Some("Widgets & gadgets"));
    assert!(repo.private);
    assert!(!repo.archived);
    assert_eq!(s.gh.repository_by_id(77).await.unwrap(), Some(repo));
    assert_eq!(s.gh.repository("gizmos").await.unwrap(), None);
    assert_eq!(s.gh.repository_by_id(78).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn statuses_are_posted_with_the_description_truncated() {
    let s = Setup::new().await;
    s.fake.add_repo(FakeRepo::new(1, "widgets"));
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let long = "é".repeat(150);
    let status = CommitStatus {
        state: StatusState::Failure,
        context: "cocov".into(),
        description: long.clone(),
        target_url: Some("https://cocov.example/repos/widgets/commits/0123/issues".into()),
    };
    s.gh.create_status("widgets", sha, &status).await.unwrap();
    s.gh.create_status(
        "widgets",
        sha,
        &CommitStatus {
            state: StatusState::Pending,
            context: "cocov/coverage".into(),
            description: String::new(),
            target_url: None,
        },
    )
    .await
    .unwrap();

    let posted = s.fake.statuses("widgets", sha);
    assert_eq!(posted.len(), 2);
    assert_eq!(posted[0]["state"], "failure");
    assert_eq!(posted[0]["context"], "cocov");
    assert_eq!(posted[0]["description"], "é".repeat(140));
    assert_eq!(
        posted[0]["target_url"],
        "https://cocov.example/repos/widgets/commits/0123/issues"
    );
    assert_eq!(
        posted[1],
        serde_json::json!({"state": "pending", "context": "cocov/coverage"})
    );

    // A status for a repository GitHub does not know fails with the operation named.
    let e =
        s.gh.create_status("gizmos", sha, &status)
            .await
            .unwrap_err();
    assert!(matches!(e, GithubError::Http { status: 404, .. }), "{e}");
    assert!(
        e.to_string().starts_with("GitHub create_status: HTTP 404"),
        "{e}"
    );

    let metrics = s.metrics.render();
    assert!(
        metrics.contains(
            r#"cocov_external_calls_total{service="github",operation="create_status",outcome="success"} 2"#
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_502_is_retried_then_succeeds() {
    let s = Setup::new().await;
    s.fake.add_repo(FakeRepo::new(1, "widgets"));
    s.gh.installation_token().await.unwrap();
    s.fake.fail_next("/repos/acme/widgets", 2, 502);
    let repo = s.gh.repository("widgets").await.unwrap();
    assert_eq!(repo.map(|r| r.id), Some(1));
    assert_eq!(s.fake.calls_to("/repos/acme/widgets").len(), 3);
    let metrics = s.metrics.render();
    assert!(
        metrics.contains(
            r#"cocov_external_calls_total{service="github",operation="repository",outcome="server_error"} 2"#
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_persistent_5xx_fails_after_the_bounded_retries() {
    let s = Setup::with(|c| c.max_retries = 2).await;
    s.fake.add_repo(FakeRepo::new(1, "widgets"));
    s.fake
        .fail_next("/repos/acme/widgets/collaborators", 100, 503);
    let e = s.gh.collaborators("widgets").await.unwrap_err();
    match &e {
        GithubError::Http {
            operation, status, ..
        } => assert_eq!((*operation, *status), ("collaborators", 503)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(e.to_string().contains("after 3 attempts"), "{e}");
    assert!(e.is_transient());
    assert_eq!(
        s.fake.calls_to("/repos/acme/widgets/collaborators").len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_with_retry_after_is_waited_out() {
    let s = Setup::new().await;
    s.fake.add_member("ada");
    s.fake.rate_limit_next("/orgs/acme/members/ada", 1, 1);
    assert!(s.gh.org_member("ada").await.unwrap());
    assert_eq!(s.fake.calls_to("/orgs/acme/members/ada").len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_longer_than_the_allowed_wait_fails() {
    let s = Setup::with(|c| c.max_rate_limit_wait_seconds = 0).await;
    s.fake
        .rate_limit_next("/orgs/acme/outside_collaborators", 1, 30);
    let before = OffsetDateTime::now_utc();
    match s.gh.outside_collaborators().await {
        Err(GithubError::RateLimited { operation, until }) => {
            assert_eq!(operation, "outside_collaborators");
            assert!(until > before + Duration::from_secs(20), "{until}");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(s.fake.calls_to("/orgs/acme/outside_collaborators").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hang_times_out() {
    let s = Setup::with(|c| {
        c.request_timeout_seconds = 1;
        c.max_retries = 1;
    })
    .await;
    s.fake.add_repo(FakeRepo::new(1, "widgets"));
    s.gh.installation_token().await.unwrap();
    s.fake
        .hang_next("/repos/acme/widgets", 10, Duration::from_secs(5));
    match s.gh.repository("widgets").await {
        Err(GithubError::Timeout { operation }) => assert_eq!(operation, "repository"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(s.fake.calls_to("/repos/acme/widgets").len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn file_contents_are_decoded() {
    let s = Setup::new().await;
    s.fake.add_repo(FakeRepo::new(1, "widgets"));
    let sha = "89abcdef0123456789abcdef0123456789abcdef";
    // Long enough that GitHub's base64 wraps over several lines, and not ASCII.
    let manifest =
        "version: \"0.1.alpha\"\nchecks:\n  - plugin: cocov/rubocop:v0.1\n# ünïcödé ✓\n".repeat(3);
    s.fake
        .set_file("widgets", ".cocov.yaml", sha, manifest.as_bytes());
    s.fake
        .set_file("widgets", "docs/read me.md", sha, b"spaces in paths");
    let got =
        s.gh.file_contents("widgets", ".cocov.yaml", sha)
            .await
            .unwrap();
    assert_eq!(got.as_deref(), Some(manifest.as_bytes()));
    let got =
        s.gh.file_contents("widgets", "docs/read me.md", sha)
            .await
            .unwrap();
    assert_eq!(got.as_deref(), Some(&b"spaces in paths"[..]));
    // Missing file, other ref, directory: no file.
    assert_eq!(
        s.gh.file_contents("widgets", "nope.yaml", sha)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.gh.file_contents("widgets", ".cocov.yaml", "main")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.gh.file_contents("widgets", "docs", sha).await.unwrap(),
        None
    );
    let call = s
        .fake
        .calls_to("/repos/acme/widgets/contents/.cocov.yaml")
        .remove(0);
    assert_eq!(call.query, format!("ref={sha}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn org_membership() {
    let s = Setup::new().await;
    s.fake.add_member("ada");
    assert!(s.gh.org_member("ada").await.unwrap());
    assert!(!s.gh.org_member("mallory").await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn permission_levels_from_collaborators() {
    let s = Setup::new().await;
    s.fake.add_repo(
        FakeRepo::new(1, "widgets")
            .collaborator(11, "owner", role("admin"))
            .collaborator(12, "lead", role("maintain"))
            .collaborator(13, "dev", role("write"))
            .collaborator(14, "triager", role("triage"))
            .collaborator(15, "reader", role("read")),
    );
    let collaborators = s.gh.collaborators("widgets").await.unwrap();
    let levels: Vec<(i64, &str, &str)> = collaborators
        .iter()
        .map(|c| (c.id, c.login.as_str(), permission_level(&c.permissions)))
        .collect();
    assert_eq!(
        levels,
        [
            (11, "owner", "admin"),
            (12, "lead", "maintainer"),
            (13, "dev", "user"),
            (14, "triager", "user"),
            (15, "reader", "user"),
        ]
    );
    let call = &s.fake.calls_to("/repos/acme/widgets/collaborators")[0];
    assert!(call.query.contains("affiliation=all"), "{}", call.query);
}

#[tokio::test(flavor = "multi_thread")]
async fn latest_commit_of_a_branch() {
    let s = Setup::new().await;
    s.fake.add_repo(FakeRepo::new(1, "widgets"));
    s.fake.add_repo(FakeRepo::new(2, "empty"));
    assert_eq!(s.gh.latest_commit("empty", "main").await.unwrap(), None);
    s.fake
        .push_commit("widgets", "main", commit(&"a".repeat(40), "first"));
    s.fake
        .push_commit("widgets", "main", commit(&"b".repeat(40), "second\n\nbody"));
    let head =
        s.gh.latest_commit("widgets", "main")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(head.sha, "b".repeat(40));
    assert_eq!(head.message, "second\n\nbody");
    assert_eq!(head.author_name, "Ada Lovelace");
    assert_eq!(head.author_email, "ada@example.com");
    assert_eq!(head.date.unix_timestamp(), 1_700_000_000);
    assert_eq!(s.gh.latest_commit("widgets", "nope").await.unwrap(), None);
    assert_eq!(s.gh.latest_commit("gizmos", "main").await.unwrap(), None);
    let call = &s.fake.calls_to("/repos/acme/widgets/commits")[0];
    assert!(
        call.query.contains("sha=main") && call.query.contains("per_page=1"),
        "{}",
        call.query
    );
}

/// Runs `git fetch --depth=1 --no-tags <url> <sha>` into a fresh bare repository with `env`,
/// without a terminal, within a deadline.
async fn fetch(
    url: &str,
    sha: &str,
    env: &[(String, String)],
) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "--bare"]);
    let mut cmd = tokio::process::Command::from(isolated_git(dir.path()));
    cmd.args(["fetch", "-q", "--depth=1", "--no-tags", url, sha])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("git fetch finished (it must not wait for a prompt)")
        .expect("git runs");
    (out, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn git_auth_env_fetches_a_non_tip_sha_and_a_wrong_token_fails_cleanly() {
    let fake = FakeGithub::start().await;
    let git_server = GitServer::start(fake.token_checker()).await;
    let mut config = fake.config();
    config.git_base_url = git_server.base_url();
    let redis = TestRedis::new();
    let gh = client(&config, &redis, &Arc::new(Metrics::new()));

    let work = git_server.worktree(ORG, "widgets");
    let first = work.commit(&[("README.md", "first version\n")], "first");
    work.commit(&[("README.md", "second version\n")], "second");
    work.commit(&[("src/lib.rs", "// third\n")], "third");
    work.push("main");

    let url = gh.clone_url("widgets");
    assert_eq!(url, git_server.repo_url(ORG, "widgets"));
    let env = gh.git_auth_env().await.unwrap();
    assert!(
        env.iter().all(|(_, v)| !v.contains("ghs_")),
        "the token is encoded, not in clear"
    );
    let (out, dir) = fetch(&url, &first, &env).await;
    assert!(
        out.status.success(),
        "fetch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        git(dir.path(), &["show", &format!("{first}:README.md")]),
        "first version"
    );
    // Shallow: only that commit came over.
    assert_eq!(git(dir.path(), &["rev-list", "--count", &first]), "1");
    assert!(git_server.requests().iter().all(|r| r.authorized));

    let (out, _dir) = fetch(&url, &first, &gh.git_env_for_token("ghs_not_a_real_token")).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("terminal prompts disabled") || stderr.contains("Authentication failed"),
        "{stderr}"
    );
    assert!(git_server.requests().iter().any(|r| !r.authorized));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_git_server_can_be_down_and_slow() {
    let git_server = GitServer::with_token("s3cr3t").await;
    let work = git_server.worktree(ORG, "widgets");
    let sha = work.commit(&[("a.txt", "a\n")], "a");
    work.push("main");
    let basic = |token: &str| {
        use base64::Engine;
        let value =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        vec![
            ("GIT_CONFIG_COUNT".to_string(), "1".to_string()),
            (
                "GIT_CONFIG_KEY_0".to_string(),
                "http.extraHeader".to_string(),
            ),
            (
                "GIT_CONFIG_VALUE_0".to_string(),
                format!("Authorization: Basic {value}"),
            ),
        ]
    };
    let url = git_server.repo_url(ORG, "widgets");

    git_server.go_down();
    assert!(
        std::net::TcpStream::connect(git_server.addr).is_err(),
        "connections are refused while down"
    );
    let (out, _d) = fetch(&url, &sha, &basic("s3cr3t")).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Could not connect")
            || stderr.contains("Connection refused")
            || stderr.contains("Failed to connect"),
        "{stderr}"
    );

    git_server.come_up();
    git_server.set_delay(Duration::from_millis(300));
    let (out, _d) = fetch(&url, &sha, &basic("s3cr3t")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
