//! Memberships of standalone repositories against the real daemon: a repository without members
//! is seen by administrators only; members see exactly their repositories and lose access at
//! once when removed; every member route answered for every role. Also the CLI.

use crate::common;

use std::process::{Command, Stdio};

use cocov::memberships::Subject;
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
        json!({"kind": "user", "login": "bob", "level": "read", "source": "local"})
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
        json!([{"kind": "user", "login": "bob", "level": "read", "source": "local"}])
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
        cocov::memberships::grant(&pool, &repo, Subject::User(login), level, &system)
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
        // A user and an OIDC group: the same rules. (subject, POST body, DELETE path, row test)
        let subjects = [
            (
                Subject::User("target"),
                json!({"login": "target", "level": "maintain"}),
                "/v1/repositories/proj/members/target",
                "SELECT EXISTS (SELECT 1 FROM repository_members m JOIN users u ON u.id = m.user_id \
                 WHERE u.login = 'target')",
            ),
            (
                Subject::Group("team"),
                json!({"group": "team", "level": "maintain"}),
                "/v1/repositories/proj/members/groups/team",
                "SELECT EXISTS (SELECT 1 FROM repository_members WHERE oidc_group = 'team')",
            ),
        ];
        for (subject, input, path, exists) in subjects {
            let (status, body) = call(
                &t,
                Method::POST,
                "/v1/repositories/proj/members",
                token,
                Some(input),
            )
            .await;
            assert_eq!(status, add, "{role} adds {subject:?}: {body}");
            if add != StatusCode::CREATED {
                // Make sure there is something to remove for the refusal to be meaningful.
                cocov::memberships::grant(
                    &pool,
                    &repo,
                    subject,
                    cocov::memberships::Level::Read,
                    &system,
                )
                .await
                .unwrap();
            }
            let (status, body) = call(&t, Method::DELETE, path, token, None).await;
            assert_eq!(status, remove, "{role} removes {subject:?}: {body}");
            let still: bool = sqlx::query_scalar(exists).fetch_one(&pool).await.unwrap();
            assert_eq!(
                still,
                remove != StatusCode::NO_CONTENT,
                "{role} {subject:?}"
            );
            cocov::memberships::revoke(&pool, &repo, subject, &system)
                .await
                .unwrap();
        }
    }

    // Bad input is named; GitHub repositories keep their members from GitHub.
    for (body, code) in [
        (
            json!({"login": "target", "level": "owner"}),
            "members.invalid_level",
        ),
        (json!({"level": "read"}), "members.no_login"),
        (
            json!({"login": "target", "group": "team", "level": "read"}),
            "members.login_and_group",
        ),
        (
            json!({"group": "bad\u{7}name", "level": "read"}),
            "members.invalid_group",
        ),
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

    // OIDC groups: --group instead of a login, never both.
    let out = cli(&[
        "repo", "member", "add", "proj", "--group", "devs", "--level", "read",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("group:devs"),
        "{}",
        text(&out.stdout)
    );
    let listed = text(&cli(&["repo", "member", "list", "proj"]).stdout);
    assert!(
        listed.contains("group:devs") && listed.contains("read"),
        "{listed}"
    );
    let out = cli(&[
        "repo", "member", "add", "proj", "alice", "--group", "devs", "--level", "read",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--group"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(&["repo", "member", "remove", "proj", "--group", "devs"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(&["repo", "member", "remove", "proj", "--group", "devs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("`group:devs` is not a member"),
        "{}",
        text(&out.stderr)
    );
    t.shutdown().await;
}

/// A user's level is the highest of their own and their OIDC groups' memberships, and a group
/// grant ends at once when revoked or when the user's groups no longer include it.
#[tokio::test(flavor = "multi_thread")]
async fn group_memberships_grant_their_members_access() {
    let t = TestApp::start().await;
    let pool = t.app().db.clone();
    let admin = t.user_token("root", true).await;
    let carol = t.user_token("carol", false).await;
    let repo = standalone(&t, "proj").await;
    standalone(&t, "other").await;
    let carol_id = cocov::auth::users::find_by_login(&pool, "carol")
        .await
        .unwrap()
        .id;
    sqlx::query(
        "INSERT INTO user_oidc_groups (user_id, group_name) VALUES ($1, 'devs'), ($1, 'ops')",
    )
    .bind(carol_id)
    .execute(&pool)
    .await
    .unwrap();
    let get = |path: &'static str| call(&t, Method::GET, path, Some(&carol), None);
    assert_eq!(get("/v1/repositories/proj").await.0, StatusCode::NOT_FOUND);

    let (status, body) = call(
        &t,
        Method::POST,
        "/v1/repositories/proj/members",
        Some(&admin),
        Some(json!({"group": "devs", "level": "read"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body,
        json!({"kind": "group", "group": "devs", "level": "read", "source": "local"})
    );
    let (_, list) = get("/v1/repositories").await;
    assert_eq!(names(&list), ["proj"]);
    let (_, members) = get("/v1/repositories/proj/members").await;
    assert_eq!(
        members["members"],
        json!([{"kind": "group", "group": "devs", "level": "read", "source": "local"}])
    );
    // Read through the group: managing members needs admin.
    let level = || cocov::memberships::level_of(&pool, repo.id, carol_id);
    assert_eq!(
        level().await.unwrap(),
        Some(cocov::memberships::Level::Read)
    );
    // The highest level counts: her own maintain, then another group's admin.
    let system = cocov::audit::AuditActor::system();
    cocov::memberships::grant(
        &pool,
        &repo,
        Subject::User("carol"),
        cocov::memberships::Level::Maintain,
        &system,
    )
    .await
    .unwrap();
    assert_eq!(
        level().await.unwrap(),
        Some(cocov::memberships::Level::Maintain)
    );
    cocov::memberships::grant(
        &pool,
        &repo,
        Subject::Group("ops"),
        cocov::memberships::Level::Admin,
        &system,
    )
    .await
    .unwrap();
    assert_eq!(
        level().await.unwrap(),
        Some(cocov::memberships::Level::Admin)
    );
    let (status, body) = call(
        &t,
        Method::POST,
        "/v1/repositories/proj/members",
        Some(&carol),
        Some(json!({"group": "qa", "level": "read"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a group admin manages members: {body}"
    );
    cocov::memberships::revoke(&pool, &repo, Subject::Group("ops"), &system)
        .await
        .unwrap();
    cocov::memberships::revoke(&pool, &repo, Subject::User("carol"), &system)
        .await
        .unwrap();

    // Revoking the group ends her access at once.
    let (status, _) = call(
        &t,
        Method::DELETE,
        "/v1/repositories/proj/members/groups/devs",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(get("/v1/repositories/proj").await.0, StatusCode::NOT_FOUND);

    // So does leaving the group (what the next OIDC sign-in records).
    cocov::memberships::grant(
        &pool,
        &repo,
        Subject::Group("devs"),
        cocov::memberships::Level::Read,
        &system,
    )
    .await
    .unwrap();
    assert_eq!(get("/v1/repositories/proj").await.0, StatusCode::OK);
    sqlx::query("DELETE FROM user_oidc_groups WHERE user_id = $1 AND group_name = 'devs'")
        .bind(carol_id)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(get("/v1/repositories/proj").await.0, StatusCode::NOT_FOUND);
    t.shutdown().await;
}
