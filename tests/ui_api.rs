//! The API the web pages read (the original's `graphs`, `top_issues`, repository `settings`,
//! badge embeds, admin counters and storage, secret `check_name` and update, and each issue's
//! `affected_file`), through the real daemon, per role: anonymous callers get 401, outsiders the
//! same 404 as for a repository that does not exist, members by level what their level allows.

use crate::common;
use crate::read_api::{SHA_HEAD, SHA_OLD, complete, github_user, history, push, repository};

use common::TestApp;
use common::requests::{assert_error, call, get, service_token};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

async fn start() -> TestApp {
    TestApp::start_with(|c| {
        c.server.roles = vec![cocov::config::Role::Api];
        c.badger.base_url = "https://badges.example/".into();
        c.server.ui_base_url = "https://cocov.example".into();
        c.security.cryptographic_key = "ab".repeat(32);
    })
    .await
}

/// A member at `level` (the stored word: user, maintainer, admin) by GitHub id.
async fn member(pool: &PgPool, repository: i64, github_id: i64, level: &str) {
    sqlx::query(
        "INSERT INTO repository_members (repository_id, github_member_id, level) VALUES ($1, $2, $3)",
    )
    .bind(repository)
    .bind(github_id)
    .bind(level)
    .execute(pool)
    .await
    .expect("member");
}

async fn issue(pool: &PgPool, commit: i64, kind: &str, file: &str, lines: (i32, i32), uid: &str) {
    sqlx::query(
        "INSERT INTO issues (commit_id, kind, file, uid, line_start, line_end, message, check_source)
         VALUES ($1, $2, $3, $4, $5, $6, 'found it', 'ruff')",
    )
    .bind(commit)
    .bind(kind)
    .bind(file)
    .bind(uid)
    .bind(lines.0)
    .bind(lines.1)
    .execute(pool)
    .await
    .expect("issue");
}

fn day(days_ago: i64) -> String {
    (OffsetDateTime::now_utc() - Duration::days(days_ago))
        .date()
        .to_string()
}

struct Roles {
    admin: String,
    reader: String,
    maintainer: String,
    repo_admin: String,
    outsider: String,
    service: String,
}

async fn roles(t: &TestApp, repository: i64) -> Roles {
    let pool = &t.app().db;
    let roles = Roles {
        admin: t.user_token("root", true).await,
        reader: github_user(t, "reader", 601).await,
        maintainer: github_user(t, "keeper", 602).await,
        repo_admin: github_user(t, "owner", 603).await,
        outsider: github_user(t, "outsider", 604).await,
        service: service_token(t).await,
    };
    member(pool, repository, 601, "user").await;
    member(pool, repository, 602, "maintainer").await;
    member(pool, repository, 603, "admin").await;
    roles
}

const READS: [&str; 5] = [
    "/v1/repositories/widget/graphs",
    "/v1/repositories/widget/branches/graphs/main",
    "/v1/repositories/widget/branches/top_issues/main",
    "/v1/repositories/widget/settings",
    "/v1/repositories/widget/badges",
];

#[tokio::test(flavor = "multi_thread")]
async fn page_data_by_role() {
    let t = start().await;
    let pool = &t.app().db;
    let repo = repository(pool, "widget", Some(9101)).await;
    let r = roles(&t, repo.id).await;
    push(&t, &repo, SHA_OLD, "main").await;
    let head = push(&t, &repo, SHA_HEAD, "main").await;
    complete(pool, head, 4, 87.5).await;
    for (kind, uid) in [
        ("bug", "a"),
        ("style", "b"),
        ("style", "c"),
        ("security", "d"),
    ] {
        issue(pool, head, kind, "src/app.py", (1, 1), uid).await;
    }
    history(
        pool,
        repo.id,
        "main",
        &format!("{}T10:00:00Z", day(40)),
        9,
        50.0,
    )
    .await;
    history(
        pool,
        repo.id,
        "main",
        &format!("{}T10:00:00Z", day(3)),
        4,
        87.5,
    )
    .await;

    for path in READS {
        assert_error(
            &get(&t, None, path).await,
            StatusCode::UNAUTHORIZED,
            "auth.no_authorization",
            path,
        );
        // Not a member: exactly what a repository that does not exist gets.
        let hidden = get(&t, Some(&r.outsider), path).await;
        assert_error(&hidden, StatusCode::NOT_FOUND, "not_found", path);
        let absent = get(&t, Some(&r.admin), &path.replace("widget", "nothing")).await;
        assert_eq!(hidden, absent, "{path}");
    }
    for (who, token) in [
        ("reader", &r.reader),
        ("maintainer", &r.maintainer),
        ("repo admin", &r.repo_admin),
        ("service", &r.service),
        ("admin", &r.admin),
    ] {
        let (status, graphs) = get(&t, Some(token), READS[0]).await;
        assert_eq!(status, StatusCode::OK, "{who}: {graphs}");
        let coverage = graphs["coverage"].as_object().unwrap();
        assert_eq!(coverage.len(), 31, "{who}");
        // Carried in from before the range, then the point three days ago.
        assert_eq!(coverage[&day(30)], json!(50.0), "{who}");
        assert_eq!(coverage[&day(3)], json!(87.5), "{who}");
        assert_eq!(graphs["issues"][day(0)], json!(4.0), "{who}");
        let (status, branch) = get(&t, Some(token), READS[1]).await;
        assert_eq!((status, &branch), (StatusCode::OK, &graphs), "{who}");

        let (status, top) = get(&t, Some(token), READS[2]).await;
        assert_eq!(status, StatusCode::OK, "{who}");
        assert_eq!(top, json!({"style": 2, "security": 1, "bug": 1}), "{who}");

        let (status, badges) = get(&t, Some(token), READS[4]).await;
        assert_eq!(status, StatusCode::OK, "{who}: {badges}");
        assert_eq!(
            badges["templates"]["markdown"]["coverage"],
            "[![Coverage](https://badges.example/widget/coverage)](https://cocov.example/repos/widget)\n"
        );
        for format in ["html", "restructured", "asciidoc", "textile", "rdoc"] {
            let issues = badges["templates"][format]["issues"].as_str().unwrap();
            assert!(
                issues.contains("https://badges.example/widget/issues"),
                "{format}"
            );
        }
    }
    // The key order is the answer's order: most first.
    let raw = t
        .client
        .get(t.url(READS[2]))
        .bearer_auth(&r.reader)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(raw.starts_with("{\"style\":2"), "{raw}");
    let (status, _) = get(
        &t,
        Some(&r.reader),
        "/v1/repositories/widget/branches/top_issues/gone",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an unknown branch (the original: 500)"
    );

    // What each level may do, as the settings page shows it and the routes enforce it.
    let flags = |regen: bool, delete: bool, secrets: bool, members: bool| {
        json!({"can_regen_token": regen, "can_sync_github": false, "can_delete": delete,
               "can_manage_secrets": secrets, "can_manage_members": members})
    };
    for (who, token, expected) in [
        ("reader", &r.reader, flags(false, false, false, false)),
        ("service", &r.service, flags(false, false, false, false)),
        (
            "maintainer",
            &r.maintainer,
            flags(false, false, true, false),
        ),
        ("repo admin", &r.repo_admin, flags(true, false, true, true)),
        ("admin", &r.admin, flags(true, true, true, true)),
    ] {
        let (status, settings) = get(&t, Some(token), READS[3]).await;
        assert_eq!(status, StatusCode::OK, "{who}: {settings}");
        assert_eq!(settings["permissions"], expected, "{who}");
        assert_eq!(settings["repository"]["name"], "widget");
        assert_eq!(settings["secrets_count"], 0);
    }
    let regen = "/v1/repositories/widget/settings/regen-token";
    for (who, token) in [
        ("reader", &r.reader),
        ("maintainer", &r.maintainer),
        ("service", &r.service),
    ] {
        let got = call(&t, Method::POST, regen, Some(token), None).await;
        assert_error(&got, StatusCode::FORBIDDEN, "auth.forbidden", who);
    }
    let got = call(&t, Method::POST, regen, Some(&r.outsider), None).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "outsider");
    for token in [&r.repo_admin, &r.admin] {
        let (status, body) = call(&t, Method::POST, regen, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let new = body["new_token"].as_str().unwrap();
        assert!(new.starts_with("crt_"), "{new}");
        let found = cocov::repositories::find_by_upload_token(pool, new)
            .await
            .unwrap();
        assert_eq!(found.map(|f| f.id), Some(repo.id));
    }
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn badges_unconfigured_are_no_content() {
    let t = TestApp::start_with(|c| c.server.roles = vec![cocov::config::Role::Api]).await;
    repository(&t.app().db, "plain", Some(9102)).await;
    let admin = t.user_token("root", true).await;
    let (status, _) = get(&t, Some(&admin), "/v1/repositories/plain/badges").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A repository without any branch row: every day is present and null.
    let (status, graphs) = get(&t, Some(&admin), "/v1/repositories/plain/graphs").await;
    assert_eq!(status, StatusCode::OK);
    let issues = graphs["issues"].as_object().unwrap();
    assert_eq!(issues.len(), 31);
    assert!(issues.values().all(Value::is_null), "{graphs}");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_counters_and_repository_storage() {
    let t = start().await;
    let pool = &t.app().db;
    let repo = repository(pool, "widget", Some(9103)).await;
    repository(pool, "wide_100%", None).await;
    let r = roles(&t, repo.id).await;
    let head = push(&t, &repo, SHA_HEAD, "main").await;
    sqlx::query("UPDATE commits SET archive_size = 1234 WHERE id = $1")
        .bind(head)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE repositories SET cache_size = 77 WHERE id = $1")
        .bind(repo.id)
        .execute(pool)
        .await
        .unwrap();
    let paths = ["/v1/admin/sidebar_counters", "/v1/admin/repositories"];
    for path in paths {
        assert_error(
            &get(&t, None, path).await,
            StatusCode::UNAUTHORIZED,
            "auth.no_authorization",
            path,
        );
        for (who, token) in [
            ("reader", &r.reader),
            ("repo admin", &r.repo_admin),
            ("outsider", &r.outsider),
            ("service", &r.service),
        ] {
            let got = get(&t, Some(token), path).await;
            assert_error(
                &got,
                StatusCode::FORBIDDEN,
                "auth.forbidden",
                &format!("{who} {path}"),
            );
        }
    }
    let (status, counters) = get(&t, Some(&r.admin), paths[0]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        counters,
        json!({"tokens": 1, "secrets": 0, "repositories": 2, "users": 6})
    );

    let (status, list) = get(&t, Some(&r.admin), "/v1/admin/repositories?search=WID").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let first = &list["repositories"][0];
    assert_eq!(first["name"], "wide_100%");
    let widget = &list["repositories"][1];
    assert_eq!(
        (
            widget["commits_size"].clone(),
            widget["cache_size"].clone(),
            widget["accessible_by_count"].clone()
        ),
        (json!(1234), json!(77), json!(3))
    );
    // LIKE wildcards are literal; an empty page is an empty list (the original: 500).
    let (status, list) = get(&t, Some(&r.admin), "/v1/admin/repositories?search=wide_1").await;
    assert_eq!(
        (status, list["paging"]["total"].clone()),
        (StatusCode::OK, json!(1))
    );
    let (_, list) = get(&t, Some(&r.admin), "/v1/admin/repositories?search=w%25").await;
    assert_eq!(list["repositories"], json!([]));
    let got = get(&t, Some(&r.admin), "/v1/admin/repositories?page=0").await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "paging.invalid_page",
        "page 0",
    );
    // The documented bound on `search` holds (found by the Schemathesis run).
    let long = "w".repeat(101);
    let got = get(
        &t,
        Some(&r.admin),
        &format!("/v1/admin/repositories?search={long}"),
    )
    .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "repositories.invalid_search",
        "100 characters",
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_names_and_updates() {
    let t = start().await;
    let pool = &t.app().db;
    let repo = repository(pool, "widget", Some(9104)).await;
    let r = roles(&t, repo.id).await;
    let create = |path: &'static str, name: &'static str| {
        let admin = r.admin.clone();
        let t = &t;
        async move {
            let (status, body) = call(
                t,
                Method::POST,
                path,
                Some(&admin),
                Some(json!({"name": name, "data": "v1"})),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    };
    create("/v1/secrets", "SHARED").await;
    create("/v1/repositories/widget/secrets", "OWN").await;

    let check = "/v1/repositories/widget/secrets/check_name";
    for (name, status) in [
        ("own", "conflict"),
        ("SHARED", "override"),
        ("NEW_ONE", "ok"),
    ] {
        for token in [&r.reader, &r.service, &r.admin] {
            let (code, body) = call(
                &t,
                Method::POST,
                check,
                Some(token),
                Some(json!({"name": name})),
            )
            .await;
            assert_eq!(
                (code, body),
                (StatusCode::OK, json!({"status": status})),
                "{name}"
            );
        }
    }
    let org = "/v1/secrets/check_name";
    let (_, body) = call(
        &t,
        Method::POST,
        org,
        Some(&r.reader),
        Some(json!({"name": "shared"})),
    )
    .await;
    assert_eq!(body, json!({"status": "conflict"}));
    let (_, body) = call(
        &t,
        Method::POST,
        org,
        Some(&r.reader),
        Some(json!({"name": "OWN"})),
    )
    .await;
    assert_eq!(
        body,
        json!({"status": "ok"}),
        "another scope's name is free here"
    );
    let as_repo = json!({"name": "SHARED", "repo_name": "widget"});
    let (_, body) = call(
        &t,
        Method::POST,
        org,
        Some(&r.reader),
        Some(as_repo.clone()),
    )
    .await;
    assert_eq!(body, json!({"status": "override"}));
    // Each refusal: who, what, and the answer.
    let update = "/v1/repositories/widget/secrets/own";
    let v2 = json!({"data": "v2"});
    let (patch, post) = (Method::PATCH, Method::POST);
    let refused = [
        (
            post.clone(),
            org,
            Some(&r.outsider),
            as_repo,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            post.clone(),
            check,
            Some(&r.outsider),
            json!({"name": "X"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            post.clone(),
            check,
            None,
            json!({"name": "X"}),
            StatusCode::UNAUTHORIZED,
            "auth.no_authorization",
        ),
        (
            post.clone(),
            check,
            Some(&r.reader),
            json!({"name": "  "}),
            StatusCode::BAD_REQUEST,
            "secrets.missing_name",
        ),
        (
            post.clone(),
            check,
            Some(&r.reader),
            json!({"name": "1-bad"}),
            StatusCode::BAD_REQUEST,
            "secrets.invalid_name",
        ),
        (
            patch.clone(),
            update,
            Some(&r.reader),
            v2.clone(),
            StatusCode::FORBIDDEN,
            "auth.forbidden",
        ),
        (
            patch.clone(),
            update,
            Some(&r.service),
            v2.clone(),
            StatusCode::FORBIDDEN,
            "auth.forbidden",
        ),
        (
            patch.clone(),
            update,
            Some(&r.outsider),
            v2.clone(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            patch.clone(),
            update,
            None,
            v2.clone(),
            StatusCode::UNAUTHORIZED,
            "auth.no_authorization",
        ),
        (
            patch.clone(),
            update,
            Some(&r.maintainer),
            json!({"data": ""}),
            StatusCode::BAD_REQUEST,
            "secrets.missing_data",
        ),
        // No such secret: an update never creates one.
        (
            patch,
            "/v1/repositories/widget/secrets/NOPE",
            Some(&r.maintainer),
            v2,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (method, path, token, body, status, code) in refused {
        let what = format!("{method} {path} {body}");
        let got = call(&t, method, path, token.map(String::as_str), Some(body)).await;
        assert_error(&got, status, code, &what);
    }
    for (value, token) in [
        ("v2", &r.maintainer),
        ("v3", &r.repo_admin),
        ("v4", &r.admin),
    ] {
        let (status, body) = call(
            &t,
            Method::PATCH,
            update,
            Some(token),
            Some(json!({"data": value})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["name"], "OWN");
        assert!(
            !body.to_string().contains(value),
            "the value is never shown: {body}"
        );
        let cipher = cocov::secrets::Cipher::from_config(&t.app().config.security).unwrap();
        let resolved =
            cocov::secrets::resolve_for_repository(pool, &cipher, repo.id, &["OWN".to_string()])
                .await
                .unwrap();
        assert_eq!(
            resolved.values().next().map(Vec::as_slice),
            Some(value.as_bytes())
        );
    }
    let (_, settings) = get(&t, Some(&r.reader), "/v1/repositories/widget/settings").await;
    assert_eq!(settings["secrets_count"], 1);
    let (count, nope) = sqlx::query_as::<_, (i64, i64)>(
        "SELECT count(*), count(*) FILTER (WHERE name = 'NOPE') FROM secrets",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((count, nope), (2, 0));
    t.shutdown().await;
}

/// A commit archive as ingestion stores it (entries under `<sha>/`), with a file, a symlink
/// pointing out of the tree, and a file over the snippet size cap.
async fn store_archive(t: &TestApp, repository: i64, sha: &str) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, format!("{sha}/{path}"), data)
            .unwrap();
    };
    let source: String = (1..=30).map(|n| format!("line {n}\n")).collect();
    add("src/app.py", source.as_bytes());
    let long = format!("{}\n", "x".repeat(5000));
    add("src/long.py", long.as_bytes());
    add(
        "big.txt",
        &vec![b'a'; cocov::issues::affected::MAX_FILE_BYTES as usize + 1],
    );
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder
        .append_link(&mut link, format!("{sha}/leak.txt"), "/etc/passwd")
        .unwrap();
    let tar = builder.into_inner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.tar.zst");
    std::fs::write(&file, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&file).unwrap()))
    };
    cocov::archive::store(t.app().storage.as_ref(), repository, sha, &file, &digest)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn issues_carry_the_lines_around_them_read_safely() {
    let t = start().await;
    let pool = &t.app().db;
    let repo = repository(pool, "widget", Some(9105)).await;
    let r = roles(&t, repo.id).await;
    let head = push(&t, &repo, SHA_HEAD, "main").await;
    let path = format!("/v1/repositories/widget/commits/{SHA_HEAD}/issues?state=all");
    issue(pool, head, "bug", "src/app.py", (1, 1), "a").await;
    issue(pool, head, "bug", "src/app.py", (10, 12), "b").await;
    issue(pool, head, "bug", "src/app.py", (29, 500), "c").await;
    issue(pool, head, "bug", "src/long.py", (1, 1), "d").await;
    issue(pool, head, "bug", "big.txt", (1, 1), "e").await;
    issue(pool, head, "bug", "leak.txt", (1, 1), "f").await;
    issue(pool, head, "bug", "../../etc/passwd", (1, 1), "g").await;

    // Not archived yet: nothing is read.
    let (status, list) = get(&t, Some(&r.reader), &path).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert!(
        list["issues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["affected_file"] == json!({"status": "not_downloaded"})),
        "{list}"
    );
    complete(pool, head, 7, 80.0).await;
    // Archived in name only: the archive is missing, every snippet is `errored`, the list works.
    let (status, list) = get(&t, Some(&r.reader), &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["issues"][0]["affected_file"],
        json!({"status": "errored"})
    );

    store_archive(&t, repo.id, SHA_HEAD).await;
    let (status, list) = get(&t, Some(&r.service), &path).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let by_uid = |uid: &str| -> Value {
        list["issues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["uid"] == uid)
            .unwrap()["affected_file"]
            .clone()
    };
    let lines = |uid: &str| -> Vec<i64> {
        by_uid(uid)["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["line"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(by_uid("a")["status"], "ok");
    assert_eq!(
        by_uid("a")["content"][0],
        json!({"line": 1, "text": "line 1"})
    );
    assert_eq!(lines("a"), [1, 2, 3]);
    assert_eq!(lines("b"), [8, 9, 10, 11, 12, 13, 14]);
    assert_eq!(lines("c"), [27, 28, 29, 30], "up to the end of the file");
    let long = &by_uid("d")["content"][0];
    assert_eq!(long["truncated"], true);
    assert_eq!(
        long["text"].as_str().unwrap().len(),
        cocov::issues::affected::MAX_LINE_CHARS
    );
    assert_eq!(by_uid("e"), json!({"status": "too_large"}));
    // A link is never followed, a path outside the tree never read.
    assert_eq!(by_uid("f"), json!({"status": "missing"}));
    assert_eq!(by_uid("g"), json!({"status": "missing"}));
    assert!(!list.to_string().contains("root:"), "nothing from the host");

    let (_, bare) = get(&t, Some(&r.reader), &format!("{path}&affected_file=false")).await;
    assert!(bare["issues"][0].get("affected_file").is_none(), "{bare}");
    let hidden = get(&t, Some(&r.outsider), &path).await;
    assert_error(&hidden, StatusCode::NOT_FOUND, "not_found", "outsider");
    t.shutdown().await;
}
