//! GitHub mode end to end: a signed push webhook for a repository served by a real git
//! smart-HTTP server leaves the commit's archive in the blob store, the commit and branch rows,
//! and the pending statuses posted to the (fake) GitHub; bad, replayed and unknown deliveries end
//! in their documented outcomes; nothing stays pending.

use crate::common;

use std::time::{Duration, Instant};

use common::TestApp;
use common::fake_github::{FakeGithub, FakeRepo, ORG, WEBHOOK_SECRET, role};
use common::git_server::GitServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

const MANIFEST: &str = "version: \"0.1.alpha\"\ncoverage:\n  min_percent: 80\nchecks:\n  - plugin: cocov/shellcheck:v0.1\n";

struct Env {
    fake: FakeGithub,
    git: GitServer,
    t: TestApp,
}

async fn env(adjust: impl FnOnce(&mut cocov::config::Config) + Send + 'static) -> Env {
    let fake = FakeGithub::start().await;
    let git = GitServer::start(fake.token_checker()).await;
    let mut github = fake.config();
    github.git_base_url = git.base_url();
    let t = TestApp::start_with(move |c| {
        c.github = github;
        c.queue.max_deliveries = 3;
        c.queue.retry_base_delay_ms = 20;
        c.queue.retry_max_delay_ms = 100;
        adjust(c);
    })
    .await;
    Env { fake, git, t }
}

/// A repository on the fake GitHub and the git server, with one pushed commit; returns its sha.
fn github_repo(e: &Env, id: i64, name: &str, files: &[(&str, &str)]) -> String {
    e.fake.add_repo(
        FakeRepo::new(id, name)
            .default_branch("main")
            .collaborator(501, "octo-admin", role("admin"))
            .collaborator(502, "octo-maintainer", role("maintain"))
            .collaborator(503, "octo-reader", role("read")),
    );
    let wt = e.git.worktree(ORG, name);
    let sha = wt.commit(files, "add the manifest");
    wt.push("main");
    for (path, content) in files {
        e.fake.set_file(name, path, &sha, content.as_bytes());
    }
    sha
}

async fn add_repository(e: &Env, name: &str) -> i64 {
    let admin = e.t.user_token("admin", true).await;
    let resp =
        e.t.client
            .post(e.t.url("/v1/repositories"))
            .header("authorization", format!("bearer {admin}"))
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// A push payload in GitHub's shape.
fn push_payload(repo_id: i64, name: &str, branch: &str, sha: &str, deleted: bool) -> Value {
    let zero = "0".repeat(40);
    json!({
        "ref": format!("refs/heads/{branch}"),
        "before": zero,
        "after": if deleted { zero.clone() } else { sha.to_string() },
        "created": !deleted,
        "deleted": deleted,
        "forced": false,
        "base_ref": null,
        "compare": format!("https://github.com/{ORG}/{name}/compare/{branch}"),
        "commits": if deleted { json!([]) } else { json!([{
            "id": sha, "tree_id": "0".repeat(40), "distinct": true, "message": "add the manifest",
            "timestamp": "2026-11-28T03:00:00Z",
            "author": {"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
            "committer": {"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
            "added": [".cocov.yaml"], "removed": [], "modified": []
        }]) },
        "head_commit": if deleted { Value::Null } else { json!({
            "id": sha, "message": "add the manifest", "timestamp": "2026-11-28T03:00:00Z",
            "author": {"name": "Ada Lovelace", "email": "ada@example.com"}
        }) },
        "repository": {
            "id": repo_id, "node_id": "R_kgDO", "name": name, "full_name": format!("{ORG}/{name}"),
            "private": true, "owner": {"login": ORG, "id": 9000, "type": "Organization"},
            "default_branch": "main", "master_branch": "main"
        },
        "pusher": {"name": "ada", "email": "ada@example.com"},
        "organization": {"login": ORG, "id": 9000},
        "sender": {"login": "ada", "id": 7001, "type": "User"},
        "installation": {"id": 4242}
    })
}

async fn deliver(
    e: &Env,
    event: &str,
    delivery: &str,
    body: &[u8],
    signature: Option<String>,
) -> (StatusCode, Value) {
    let mut req =
        e.t.client
            .post(e.t.url("/v1/github/events"))
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .header("content-type", "application/json")
            .body(body.to_vec());
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or_default())
}

async fn send(e: &Env, event: &str, payload: &Value) -> (StatusCode, Value) {
    let body = serde_json::to_vec(payload).unwrap();
    let signature = cocov::github::sign(WEBHOOK_SECRET.as_bytes(), &body);
    deliver(
        e,
        event,
        &uuid::Uuid::new_v4().to_string(),
        &body,
        Some(signature),
    )
    .await
}

fn status_of(statuses: &[Value], context: &str) -> Option<(String, String)> {
    statuses
        .iter()
        .rev()
        .find(|s| s["context"] == context)
        .map(|s| {
            (
                s["state"].as_str().unwrap_or("").to_string(),
                s["description"].as_str().unwrap_or("").to_string(),
            )
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_push_is_ingested_and_gets_pending_statuses() {
    let e = env(|_| {}).await;
    let sha = github_repo(
        &e,
        1001,
        "api",
        &[
            (".cocov.yaml", MANIFEST),
            ("run.sh", "#!/bin/sh\necho $1\n"),
        ],
    );
    let id = add_repository(&e, "api").await;

    let started = Instant::now();
    let (status, body) = send(&e, "push", &push_payload(1001, "api", "main", &sha, false)).await;
    let acknowledged = started.elapsed();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "accepted");
    let pending = common::eventually(
        "both pending statuses on GitHub",
        Duration::from_secs(20),
        || async {
            // The first of each context: the checks may already have ended since.
            let statuses = e.fake.statuses("api", &sha);
            let first = |context: &str| {
                statuses.iter().find(|s| s["context"] == context).map(|s| {
                    (
                        s["state"].as_str().unwrap_or("").to_string(),
                        s["description"].as_str().unwrap_or("").to_string(),
                    )
                })
            };
            Some((first("cocov")?, first("cocov/coverage")?))
        },
    )
    .await;
    let to_pending = started.elapsed();
    assert_eq!(
        pending.0,
        ("pending".to_string(), "Checks are running...".to_string())
    );
    assert_eq!(pending.1.0, "pending");
    println!(
        "webhook acknowledged in {acknowledged:?}; pending statuses on GitHub after {to_pending:?}"
    );

    let ingest: String = common::eventually(
        "the commit to be ingested",
        Duration::from_secs(30),
        || async {
            let s: Option<String> = sqlx::query_scalar(
                "SELECT ingest_status FROM commits WHERE repository_id = $1 AND sha = $2::citext",
            )
            .bind(id)
            .bind(&sha)
            .fetch_optional(&e.t.app().db)
            .await
            .unwrap();
            s.filter(|s| s == "completed" || s == "errored")
        },
    )
    .await;
    assert_eq!(ingest, "completed");
    // The checks run (shellcheck finds the unquoted `$1`) and their result reaches GitHub.
    let checked = common::eventually(
        "the checks' status on GitHub",
        Duration::from_secs(60),
        || async {
            status_of(&e.fake.statuses("api", &sha), "cocov")
                .filter(|(state, _)| state != "pending")
        },
    )
    .await;
    assert_eq!(
        checked,
        ("failure".to_string(), "1 issue found".to_string())
    );
    let key = cocov::storage::BlobKey::new(&format!("{id}/{sha}.shasum")).unwrap();
    assert!(
        e.t.app()
            .storage
            .get(&key)
            .await
            .unwrap()
            .starts_with(b"sha256:")
    );
    // The fetch carried the installation token through git's environment, not the URL.
    assert!(e.git.requests().iter().all(|r| !r.path.contains("ghs_")));

    // Permissions came from the collaborators.
    let members: Vec<(i64, String)> =
        sqlx::query_as("SELECT github_member_id, level FROM repository_members WHERE repository_id = $1 ORDER BY 1")
            .bind(id)
            .fetch_all(&e.t.app().db)
            .await
            .unwrap();
    assert_eq!(
        members,
        vec![
            (501, "admin".into()),
            (502, "maintainer".into()),
            (503, "user".into())
        ]
    );
    e.t.shutdown().await;
}

/// The same pipeline with the archive in S3 (s3s-fs, which checks request signatures).
#[tokio::test(flavor = "multi_thread")]
async fn a_signed_push_is_archived_in_s3() {
    let s3 = common::s3_servers::S3Server::s3s_fs().await;
    let s3_config = s3.config(&common::s3_servers::unique_bucket());
    let e = env(move |c| {
        c.storage.mode = cocov::config::StorageMode::S3;
        c.storage.s3 = s3_config;
    })
    .await;
    let sha = github_repo(&e, 1010, "s3repo", &[(".cocov.yaml", MANIFEST)]);
    let id = add_repository(&e, "s3repo").await;
    send(
        &e,
        "push",
        &push_payload(1010, "s3repo", "main", &sha, false),
    )
    .await;
    let digest: String = common::eventually("the archive in S3", Duration::from_secs(30), || async {
        sqlx::query_scalar("SELECT archive_sha256 FROM commits WHERE repository_id = $1 AND ingest_status = 'completed'")
            .bind(id)
            .fetch_optional(&e.t.app().db)
            .await
            .unwrap()
    })
    .await;
    assert!(e.t.app().storage.describe().starts_with("s3"));
    let archive =
        e.t.app()
            .storage
            .get(&cocov::storage::BlobKey::new(&format!("{id}/{sha}.tar.zst")).unwrap())
            .await
            .unwrap();
    let sidecar =
        e.t.app()
            .storage
            .get(&cocov::storage::BlobKey::new(&format!("{id}/{sha}.shasum")).unwrap())
            .await
            .unwrap();
    assert_eq!(cocov::auth::tokens::hash_bytes(&archive), digest);
    assert_eq!(
        String::from_utf8_lossy(&sidecar),
        format!("sha256:{digest}")
    );
    e.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_replayed_and_unknown_deliveries_end_in_their_outcomes() {
    let e = env(|_| {}).await;
    let sha = github_repo(&e, 1002, "web", &[("README.md", "hi")]);
    add_repository(&e, "web").await;
    let payload = push_payload(1002, "web", "main", &sha, false);
    let body = serde_json::to_vec(&payload).unwrap();
    let good = cocov::github::sign(WEBHOOK_SECRET.as_bytes(), &body);
    let forged = cocov::github::sign(b"not the secret", &body);

    let (status, err) = deliver(&e, "push", "d-1", &body, None).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("github.invalid_signature"))
    );
    let (status, _) = deliver(&e, "push", "d-2", &body, Some(forged)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = deliver(
        &e,
        "push",
        "d-3",
        b"not json at all",
        Some(cocov::github::sign(WEBHOOK_SECRET.as_bytes(), b"{}")),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a signature of another body must not pass"
    );
    let commits: i64 = sqlx::query_scalar("SELECT count(*) FROM commits")
        .fetch_one(&e.t.app().db)
        .await
        .unwrap();
    assert_eq!(
        commits, 0,
        "nothing is written before the signature is verified"
    );

    let (status, first) = deliver(&e, "push", "d-4", &body, Some(good.clone())).await;
    assert_eq!(
        (status, first["status"].as_str()),
        (StatusCode::ACCEPTED, Some("accepted"))
    );
    let (status, replay) = deliver(&e, "push", "d-4", &body, Some(good.clone())).await;
    assert_eq!(
        (status, replay["status"].as_str()),
        (StatusCode::ACCEPTED, Some("duplicate"))
    );
    // The delivery id is not signed: a captured delivery re-sent under a new id is caught by
    // its body.
    let (status, replay) = deliver(&e, "push", "d-4-again", &body, Some(good)).await;
    assert_eq!(
        (status, replay["status"].as_str()),
        (StatusCode::ACCEPTED, Some("duplicate"))
    );

    let (status, unknown) = send(
        &e,
        "push",
        &push_payload(99999, "elsewhere", "main", &sha, false),
    )
    .await;
    assert_eq!(
        (status, unknown["status"].as_str()),
        (StatusCode::ACCEPTED, Some("ignored"))
    );
    let (status, other) = send(
        &e,
        "star",
        &json!({"action": "created", "repository": {"id": 1002}}),
    )
    .await;
    assert_eq!(
        (status, other["status"].as_str()),
        (StatusCode::ACCEPTED, Some("ignored"))
    );
    let tag = json!({"ref": "refs/tags/v1", "after": sha, "repository": {"id": 1002}});
    assert_eq!(send(&e, "push", &tag).await.1["status"], "ignored");

    let invalid = b"{\"ref\": ";
    let (status, err) = deliver(
        &e,
        "push",
        "d-5",
        invalid,
        Some(cocov::github::sign(WEBHOOK_SECRET.as_bytes(), invalid)),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("github.invalid_payload"))
    );
    let resp =
        e.t.client
            .post(e.t.url("/v1/github/events"))
            .header(
                "x-hub-signature-256",
                cocov::github::sign(WEBHOOK_SECRET.as_bytes(), b"{}"),
            )
            .header("x-github-delivery", "d-6")
            .body("{}")
            .send()
            .await
            .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "missing X-GitHub-Event"
    );

    let commits: i64 = sqlx::query_scalar("SELECT count(*) FROM commits")
        .fetch_one(&e.t.app().db)
        .await
        .unwrap();
    assert_eq!(commits, 1, "the replay registered nothing new");
    e.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn branch_deletion_rename_and_member_removal() {
    let e = env(|_| {}).await;
    let sha = github_repo(&e, 1003, "svc", &[("README.md", "hi")]);
    let id = add_repository(&e, "svc").await;
    send(
        &e,
        "push",
        &push_payload(1003, "svc", "feature/x", &sha, false),
    )
    .await;
    let (status, body) = send(
        &e,
        "push",
        &push_payload(1003, "svc", "feature/x", &sha, true),
    )
    .await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (StatusCode::ACCEPTED, Some("branch deleted"))
    );
    let branches: Vec<String> =
        sqlx::query_scalar("SELECT name::text FROM branches WHERE repository_id = $1")
            .bind(id)
            .fetch_all(&e.t.app().db)
            .await
            .unwrap();
    assert!(!branches.contains(&"feature/x".to_string()), "{branches:?}");

    let renamed = json!({"action": "renamed", "changes": {"repository": {"name": {"from": "svc"}}},
        "repository": {"id": 1003, "name": "service", "full_name": format!("{ORG}/service"), "default_branch": "trunk", "description": "d"}});
    send(&e, "repository", &renamed).await;
    let (name, branch): (String, String) =
        sqlx::query_as("SELECT name::text, default_branch::text FROM repositories WHERE id = $1")
            .bind(id)
            .fetch_one(&e.t.app().db)
            .await
            .unwrap();
    assert_eq!((name.as_str(), branch.as_str()), ("service", "trunk"));

    // A user removed from the organisation loses every token at once.
    let token = e.t.user_token("leaver", false).await;
    sqlx::query("UPDATE users SET github_id = 8080 WHERE login = 'leaver'")
        .execute(&e.t.app().db)
        .await
        .unwrap();
    let me = |t: String| {
        let client = e.t.client.clone();
        let url = e.t.url("/v1/me");
        async move {
            client
                .get(url)
                .header("authorization", format!("bearer {t}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(token.clone()).await, StatusCode::OK);
    let removal = json!({"action": "member_removed", "membership": {"user": {"id": 8080, "login": "leaver"}, "role": "member"},
        "organization": {"login": ORG, "id": 9000}});
    let (_, body) = send(&e, "organization", &removal).await;
    assert_eq!(body["detail"], "member removed: 1 token(s) revoked");
    assert_eq!(me(token).await, StatusCode::UNAUTHORIZED);
    e.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_status_ends_at_its_deadline_with_a_reason() {
    // A shellcheck that never finishes, so the `cocov` status stays pending.
    let plugins = tempfile::tempdir().unwrap();
    std::fs::write(
        plugins.path().join("shellcheck.toml"),
        "name = \"cocov/shellcheck\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"sleep 60\"]\n",
    )
    .unwrap();
    let plugins_dir = plugins.path().to_path_buf();
    let e = env(move |c| {
        c.statuses.pending_deadline_seconds = 2;
        c.worker.plugins_dir = plugins_dir;
    })
    .await;
    let sha = github_repo(&e, 1004, "slow", &[(".cocov.yaml", MANIFEST)]);
    add_repository(&e, "slow").await;
    send(&e, "push", &push_payload(1004, "slow", "main", &sha, false)).await;
    let ended = common::eventually(
        "the pending status to end",
        Duration::from_secs(30),
        || async {
            let statuses = e.fake.statuses("slow", &sha);
            status_of(&statuses, "cocov").filter(|(state, _)| state != "pending")
        },
    )
    .await;
    assert_eq!(ended.0, "error");
    assert!(ended.1.starts_with("Timed out"), "{}", ended.1);
    let coverage = status_of(&e.fake.statuses("slow", &sha), "cocov/coverage");
    assert_eq!(coverage.map(|c| c.0), Some("error".to_string()));
    e.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_server_that_is_down_ends_the_commit_errored() {
    let e = env(|_| {}).await;
    let sha = github_repo(&e, 1005, "gone", &[("README.md", "hi")]);
    let id = add_repository(&e, "gone").await;
    e.git.go_down();
    send(&e, "push", &push_payload(1005, "gone", "main", &sha, false)).await;
    let (state, error): (String, Option<String>) = common::eventually("a final state", Duration::from_secs(60), || async {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT ingest_status, ingest_error FROM commits WHERE repository_id = $1 AND sha = $2::citext",
        )
        .bind(id)
        .bind(&sha)
        .fetch_optional(&e.t.app().db)
        .await
        .unwrap();
        row.filter(|(s, _)| s == "errored")
    })
    .await;
    assert_eq!(state, "errored");
    assert!(error.unwrap().contains("gave up after 3 attempts"));
    e.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_git_server_times_out_and_ends_the_commit_errored() {
    let e = env(|c| c.git.timeout_seconds = 1).await;
    let sha = github_repo(&e, 1006, "slowgit", &[("README.md", "hi")]);
    let id = add_repository(&e, "slowgit").await;
    e.git.set_delay(Duration::from_secs(3));
    send(
        &e,
        "push",
        &push_payload(1006, "slowgit", "main", &sha, false),
    )
    .await;
    let error: Option<String> = common::eventually("a final state", Duration::from_secs(60), || async {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT ingest_status, ingest_error FROM commits WHERE repository_id = $1 AND sha = $2::citext",
        )
        .bind(id)
        .bind(&sha)
        .fetch_optional(&e.t.app().db)
        .await
        .unwrap();
        row.filter(|(s, _)| s == "errored").map(|(_, e)| e)
    })
    .await;
    let error = error.unwrap();
    assert!(error.contains("did not finish within"), "{error}");
    e.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_refused_when_github_mode_is_off() {
    let t = TestApp::start().await;
    let resp = t
        .client
        .post(t.url("/v1/github/events"))
        .header("x-github-event", "push")
        .header("x-github-delivery", "x")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "github.not_configured"
    );
    t.shutdown().await;
}
