//! Memberships of standalone repositories against the real daemon: a repository without members
//! is seen by administrators only; members see exactly their repositories and lose access at
//! once when removed; every member route answered for every role. Also the CLI.

use crate::common;

use std::process::{Command, Stdio};

use common::TestApp;
use common::requests::call;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn standalone(t: &TestApp, name: &str) -> cocov::repositories::Repository {
    cocov::repositories::create(
        &t.app().db,
        &cocov::repositories::NewRepository {
            name: name.into(),
            description: None,
            default_branch: "main".into(),
            source: cocov::repositories::Source::GitUrl(format!("https://git.example/{name}.git")),
        },
        &t.app().config.git.allowed_protocols,
        &cocov::audit::AuditActor::system(),
    )
    .await
    .unwrap()
    .0
}

fn names(list: &Value) -> Vec<String> {
    list["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_sees_exactly_their_repository_until_removed() {
    let t = TestApp::start().await;
    let admin = t.user_token("root", true).await;
    let bob = t.user_token("bob", false).await;
    standalone(&t, "one").await;
    standalone(&t, "two").await;

    // Without members, only administrators see a standalone repository.
    let (_, list) = call(&t, Method::GET, "/v1/repositories", Some(&bob), None).await;
    assert_eq!(names(&list), Vec::<String>::new());
    let (_, list) = call(&t, Method::GET, "/v1/repositories", Some(&admin), None).await;
    assert_eq!(names(&list), ["one", "two"]);

    let (status, body) = call(
        &t,
        Method::POST,
        "/v1/repositories/one/members",
        Some(&admin),
        Some(json!({"login": "bob", "level": "read"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body,
        json!({"login": "bob", "level": "read", "source": "local"})
    );
    let (_, list) = call(&t, Method::GET, "/v1/repositories", Some(&bob), None).await;
    assert_eq!(names(&list), ["one"]);
    assert_eq!(
        call(&t, Method::GET, "/v1/repositories/one", Some(&bob), None)
            .await
            .0,
        StatusCode::OK
    );
    let (status, body) = call(&t, Method::GET, "/v1/repositories/two", Some(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "not_found");
    let (_, members) = call(
        &t,
        Method::GET,
        "/v1/repositories/one/members",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(
        members["members"],
        json!([{"login": "bob", "level": "read", "source": "local"}])
    );

    // Removed: the very next request is a 404.
    let (status, _) = call(
        &t,
        Method::DELETE,
        "/v1/repositories/one/members/bob",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(&t, Method::GET, "/v1/repositories/one", Some(&bob), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let audit: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action IN ('repository.member_grant', 'repository.member_revoke')",
    )
    .fetch_one(&t.app().db)
    .await
    .unwrap();
    assert_eq!(audit, 2);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn member_routes_for_every_role() {
    let t = TestApp::start().await;
    let pool = t.app().db.clone();
    let admin = t.user_token("root", true).await;
    let outsider = t.user_token("outsider", false).await;
    let reader = t.user_token("reader", false).await;
    let maintainer = t.user_token("maintainer", false).await;
    let repo_admin = t.user_token("repo-admin", false).await;
    t.user_token("target", false).await;
    let (_, service) =
        cocov::auth::service_tokens::create(&pool, "ci", None, &cocov::audit::AuditActor::system())
            .await
            .unwrap();
    let repo = standalone(&t, "proj").await;
    let system = cocov::audit::AuditActor::system();
    for (login, level) in [
        ("reader", cocov::memberships::Level::Read),
        ("maintainer", cocov::memberships::Level::Maintain),
        ("repo-admin", cocov::memberships::Level::Admin),
    ] {
        cocov::memberships::grant(&pool, &repo, login, level, &system)
            .await
            .unwrap();
    }

    // (role, token, list, add, remove): outsiders cannot even tell the repository exists.
    let roles: Vec<(&str, Option<&str>, StatusCode, StatusCode, StatusCode)> = vec![
        (
            "anonymous",
            None,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "outsider",
            Some(&outsider),
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
        ),
        (
            "reader",
            Some(&reader),
            StatusCode::OK,
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
        ),
        (
            "maintainer",
            Some(&maintainer),
            StatusCode::OK,
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
        ),
        (
            "service token",
            Some(&service),
            StatusCode::OK,
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
        ),
        (
            "repository admin",
            Some(&repo_admin),
            StatusCode::OK,
            StatusCode::CREATED,
            StatusCode::NO_CONTENT,
        ),
        (
            "site admin",
            Some(&admin),
            StatusCode::OK,
            StatusCode::CREATED,
            StatusCode::NO_CONTENT,
        ),
    ];
    for (role, token, list, add, remove) in roles {
        let (status, body) = call(
            &t,
            Method::GET,
            "/v1/repositories/proj/members",
            token,
            None,
        )
        .await;
        assert_eq!(status, list, "{role} lists: {body}");
        let (status, body) = call(
            &t,
            Method::POST,
            "/v1/repositories/proj/members",
            token,
            Some(json!({"login": "target", "level": "maintain"})),
        )
        .await;
        assert_eq!(status, add, "{role} adds: {body}");
        if add != StatusCode::CREATED {
            // Make sure there is something to remove for the refusal to be meaningful.
            cocov::memberships::grant(
                &pool,
                &repo,
                "target",
                cocov::memberships::Level::Read,
                &system,
            )
            .await
            .unwrap();
        }
        let (status, body) = call(
            &t,
            Method::DELETE,
            "/v1/repositories/proj/members/target",
            token,
            None,
        )
        .await;
        assert_eq!(status, remove, "{role} removes: {body}");
        let still: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM repository_members m JOIN users u ON u.id = m.user_id \
             WHERE u.login = 'target')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(still, remove != StatusCode::NO_CONTENT, "{role}");
        cocov::memberships::revoke(&pool, &repo, "target", &system)
            .await
            .unwrap();
    }

    // Bad input is named; GitHub repositories keep their members from GitHub.
    for (body, code) in [
        (
            json!({"login": "target", "level": "owner"}),
            "members.invalid_level",
        ),
        (json!({"level": "read"}), "members.no_login"),
        (
            json!({"login": "ghost", "level": "read"}),
            "members.unknown_user",
        ),
    ] {
        let (status, answer) = call(
            &t,
            Method::POST,
            "/v1/repositories/proj/members",
            Some(&admin),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["code"], code);
    }
    sqlx::query(
        "INSERT INTO repositories (name, default_branch, github_id, upload_token_hash) \
         VALUES ('gh', 'main', 99, repeat('a', 64))",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (status, answer) = call(
        &t,
        Method::POST,
        "/v1/repositories/gh/members",
        Some(&admin),
        Some(json!({"login": "target", "level": "read"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "members.github_managed");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn repo_member_commands() {
    let t = TestApp::start().await;
    t.user_token("alice", false).await;
    standalone(&t, "proj").await;
    let cli = |args: &[&str]| {
        let config = t.storage_dir.path().join("cli.toml");
        std::fs::write(&config, "").unwrap();
        let mut cmd: Command = common::cocov_command();
        cmd.env("COCOV_CONFIG", &config)
            .env("COCOV_DATABASE_URL", &t.db.config.url)
            .env("COCOV_REDIS_URL", &t.redis.config.url)
            .env("COCOV_REDIS_KEY_PREFIX", &t.redis.config.key_prefix)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let out = cli(&["repo", "member", "list", "proj"]);
    assert!(
        text(&out.stdout).contains("no members"),
        "{}",
        text(&out.stdout)
    );
    let out = cli(&[
        "repo", "member", "add", "proj", "alice", "--level", "maintain",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(&["repo", "member", "list", "proj"]);
    let listed = text(&out.stdout);
    assert!(
        listed.contains("alice") && listed.contains("maintain"),
        "{listed}"
    );
    let out = cli(&["repo", "member", "add", "proj", "alice", "--level", "owner"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--level"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(&["repo", "member", "add", "nope", "alice", "--level", "read"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no repository named `nope`"));
    let out = cli(&["repo", "member", "add", "proj", "ghost", "--level", "read"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no user named `ghost`"));
    let out = cli(&["repo", "member", "remove", "proj", "alice"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(&["repo", "member", "remove", "proj", "alice"]);
    assert_eq!(out.status.code(), Some(1));
    t.shutdown().await;
}
