//! Standalone ingestion end to end: a repository registered by git URL, pushes announced through
//! the API or a post-receive hook, the commit fetched with the real git CLI and archived into the
//! blob store, and every failure ending in a clear state.

use crate::common;

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use common::TestApp;
use common::origin::{Origin, announce, register};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn start() -> impl std::future::Future<Output = TestApp> {
    TestApp::start_with(|c| {
        c.queue.max_deliveries = 3;
        c.queue.retry_base_delay_ms = 20;
        c.queue.retry_max_delay_ms = 100;
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_is_ingested_into_the_blob_store() {
    let t = start().await;
    let origin = Origin::new();
    let sha = origin.commit(
        &[("README.md", "hello\n"), ("src/main.sh", "echo hi\n")],
        "first commit\n\nwith a body",
    );
    let (id, token) = register(&t, "demo", &origin.url()).await;
    let (status, body) = announce(
        &t,
        "demo",
        &format!("token {token}"),
        json!({"sha": sha, "branch": "main"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["new"], true);
    assert_eq!(
        t.ingestion_outcome(id, &sha).await,
        ("completed".to_string(), None)
    );

    // The archive and its sidecar, the sidecar's digest matching the archive.
    let archive = t
        .app()
        .storage
        .get(&cocov::storage::BlobKey::new(&format!("{id}/{sha}.tar.zst")).unwrap())
        .await
        .unwrap();
    let sidecar = t
        .app()
        .storage
        .get(&cocov::storage::BlobKey::new(&format!("{id}/{sha}.shasum")).unwrap())
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&sidecar),
        format!("sha256:{}", cocov::auth::tokens::hash_bytes(&archive))
    );
    let mut tar = Vec::new();
    zstd::stream::read::Decoder::new(&archive[..])
        .unwrap()
        .read_to_end(&mut tar)
        .unwrap();
    let mut names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.header().entry_type().is_file())
        .map(|e| e.path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![format!("{sha}/README.md"), format!("{sha}/src/main.sh")]
    );

    let (author, email, message, size): (String, String, String, i64) = sqlx::query_as(
        "SELECT author_name, author_email::text, message, archive_size FROM commits WHERE repository_id = $1",
    )
    .bind(id)
    .fetch_one(&t.app().db)
    .await
    .unwrap();
    assert_eq!(
        (author.as_str(), email.as_str()),
        ("Ada Lovelace", "ada@example.com")
    );
    assert_eq!(message, "first commit\n\nwith a body");
    assert_eq!(size as usize, archive.len());
    let head: String = sqlx::query_scalar(
        "SELECT c.sha::text FROM branches b JOIN commits c ON c.id = b.head_commit_id WHERE b.repository_id = $1 AND b.name = 'main'",
    )
    .bind(id)
    .fetch_one(&t.app().db)
    .await
    .unwrap();
    assert_eq!(head, sha);

    // The same sha again changes nothing.
    let before: time::OffsetDateTime =
        sqlx::query_scalar("SELECT updated_at FROM commits WHERE repository_id = $1")
            .bind(id)
            .fetch_one(&t.app().db)
            .await
            .unwrap();
    let (status, body) = announce(
        &t,
        "demo",
        &format!("token {token}"),
        json!({"sha": sha, "branch": "main"}),
    )
    .await;
    assert_eq!(
        (status, body["new"].clone()),
        (StatusCode::ACCEPTED, json!(false))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after: time::OffsetDateTime =
        sqlx::query_scalar("SELECT updated_at FROM commits WHERE repository_id = $1")
            .bind(id)
            .fetch_one(&t.app().db)
            .await
            .unwrap();
    assert_eq!(before, after);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trigger_checks_its_input_and_its_caller() {
    let t = start().await;
    let origin = Origin::new();
    let sha = origin.commit(&[("a.txt", "a")], "a");
    let (_, token) = register(&t, "checked", &origin.url()).await;
    let (_, other_token) = register(&t, "other", &origin.url()).await;
    let service = cocov::auth::service_tokens::create(
        &t.app().db,
        "ci",
        None,
        &cocov::audit::AuditActor::system(),
    )
    .await
    .unwrap()
    .1;
    let user = t.user_token("plain", false).await;
    let good = json!({"sha": sha, "branch": "main"});
    let cases: Vec<(&str, String, Value, StatusCode, Option<&str>)> = vec![
        (
            "service token",
            format!("bearer {service}"),
            good.clone(),
            StatusCode::ACCEPTED,
            None,
        ),
        (
            "upload token",
            format!("Token {token}"),
            good.clone(),
            StatusCode::ACCEPTED,
            None,
        ),
        (
            "no header",
            String::new(),
            good.clone(),
            StatusCode::UNAUTHORIZED,
            Some("auth.no_authorization"),
        ),
        (
            "unknown upload token",
            format!("token crt_{}", "0".repeat(64)),
            good.clone(),
            StatusCode::FORBIDDEN,
            Some("auth.forbidden"),
        ),
        (
            "another repository's token",
            format!("token {other_token}"),
            good.clone(),
            StatusCode::NOT_FOUND,
            Some("not_found"),
        ),
        (
            "a user's token",
            format!("bearer {user}"),
            good.clone(),
            StatusCode::FORBIDDEN,
            Some("auth.forbidden"),
        ),
        (
            "short sha",
            format!("token {token}"),
            json!({"sha": "abc123"}),
            StatusCode::BAD_REQUEST,
            Some("commits.invalid_sha"),
        ),
        (
            "bad branch",
            format!("token {token}"),
            json!({"sha": sha, "branch": "a..b"}),
            StatusCode::BAD_REQUEST,
            Some("commits.invalid_branch"),
        ),
        (
            "missing sha",
            format!("token {token}"),
            json!({"branch": "main"}),
            StatusCode::BAD_REQUEST,
            Some("request.invalid_json"),
        ),
    ];
    for (what, auth, body, expected, code) in cases {
        let mut req = t
            .client
            .post(t.url("/v1/repositories/checked/commits"))
            .json(&body);
        if !auth.is_empty() {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or_default();
        assert_eq!(status, expected, "{what}: {body}");
        if let Some(code) = code {
            assert_eq!(body["code"], code, "{what}");
        }
    }
    let (status, body) = announce(&t, "nope", &format!("bearer {service}"), good).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let commits: i64 = sqlx::query_scalar("SELECT count(*) FROM commits")
        .fetch_one(&t.app().db)
        .await
        .unwrap();
    assert_eq!(
        commits, 1,
        "only the accepted announcements registered the commit"
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sha_force_pushed_away_ends_errored_with_the_reason() {
    let t = start().await;
    let origin = Origin::new();
    origin.commit(&[("a.txt", "a")], "a");
    let (id, token) = register(&t, "forced", &origin.url()).await;
    let gone = "0123456789abcdef0123456789abcdef01234567";
    let (status, _) = announce(
        &t,
        "forced",
        &format!("token {token}"),
        json!({"sha": gone, "branch": "main"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (state, error) = t.ingestion_outcome(id, gone).await;
    assert_eq!(state, "errored");
    assert!(
        error
            .as_deref()
            .unwrap()
            .contains("does not exist on the remote"),
        "{error:?}"
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_git_server_ends_errored_after_the_retries() {
    let t = start().await;
    let (id, token) = register(&t, "down", "file:///nonexistent/cocov/repo.git").await;
    let sha = "89abcdef0123456789abcdef0123456789abcdef";
    announce(&t, "down", &format!("token {token}"), json!({"sha": sha})).await;
    let (state, error) = t.ingestion_outcome(id, sha).await;
    assert_eq!(state, "errored");
    let error = error.unwrap();
    assert!(
        error.contains("gave up after 3 attempts") && error.contains("could not be reached"),
        "{error}"
    );
    let dead = t.app().queue.dead_letters(10).await.unwrap();
    assert!(
        dead.is_empty(),
        "a final state was recorded, so nothing is left for the dead-letter list: {dead:?}"
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hooked_bare_repository_announces_its_pushes() {
    let t = start().await;
    let origin = Origin::new();
    let (id, token) = register(&t, "hooked", &origin.url()).await;
    // The token goes in on standard input, never on the command line; the repository is named
    // relative to the current directory, which is not where git runs the hook from.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cocov"))
        .current_dir(origin.bare.parent().unwrap())
        .args(["hook", "install", "--git-dir"])
        .arg(origin.bare.file_name().unwrap())
        .args([
            "--url",
            &t.base,
            "--repository",
            "hooked",
            "--token-file",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{token}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hook = std::fs::read_to_string(origin.bare.join("hooks/post-receive")).unwrap();
    assert!(
        !hook.contains(&token),
        "the token must not be written into the hook script"
    );
    let sha = origin.commit(&[("hooked.txt", "yes")], "pushed through the hook");
    assert_eq!(t.ingestion_outcome(id, &sha).await.0, "completed");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_repository_removes_rows_and_blobs() {
    let t = start().await;
    let origin = Origin::new();
    let sha = origin.commit(&[("a.txt", "a")], "a");
    let (id, token) = register(&t, "doomed", &origin.url()).await;
    announce(
        &t,
        "doomed",
        &format!("token {token}"),
        json!({"sha": sha, "branch": "main"}),
    )
    .await;
    assert_eq!(t.ingestion_outcome(id, &sha).await.0, "completed");
    let admin = t.user_token("deleter", true).await;
    let resp = t
        .client
        .delete(t.url("/v1/repositories/doomed"))
        .header("authorization", format!("bearer {admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    common::eventually(
        "the repository to be gone",
        Duration::from_secs(30),
        || async {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM repositories WHERE id = $1")
                .bind(id)
                .fetch_one(&t.app().db)
                .await
                .unwrap();
            (n == 0).then_some(())
        },
    )
    .await;
    let left = t
        .app()
        .storage
        .list(&cocov::storage::BlobPrefix::new(&format!("{id}/")).unwrap())
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    let commits: i64 = sqlx::query_scalar("SELECT count(*) FROM commits")
        .fetch_one(&t.app().db)
        .await
        .unwrap();
    assert_eq!(commits, 0);
    t.shutdown().await;
}
