//! The read API (repositories, branches, commits, statistics) through the real daemon, per role:
//! anonymous callers get 401, users who may not see the repository the same 404 as for one that
//! does not exist, and members, administrators and service tokens the documented JSON.

use crate::common;

use common::TestApp;
use common::requests::{assert_error, get, service_token};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

pub(crate) const SHA_OLD: &str = "1111111111111111111111111111111111111111";
pub(crate) const SHA_HEAD: &str = "2222222222222222222222222222222222222222";

pub(crate) async fn start() -> TestApp {
    TestApp::start_with(|c| c.server.roles = vec![cocov::config::Role::Api]).await
}

/// A repository: from GitHub (with a GitHub id) or standalone (git URL only).
pub(crate) async fn repository(
    pool: &PgPool,
    name: &str,
    github_id: Option<i64>,
) -> cocov::repositories::Repository {
    let git_url = github_id
        .is_none()
        .then(|| format!("https://git.example/{name}.git"));
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO repositories (name, default_branch, github_id, git_url, upload_token_hash)
         VALUES ($1, 'main', $2, $3, $4) RETURNING id",
    )
    .bind(name)
    .bind(github_id)
    .bind(git_url)
    .bind(format!("{:064x}", rand_u128(name)))
    .fetch_one(pool)
    .await
    .expect("insert repository");
    cocov::repositories::find(pool, id).await.unwrap().unwrap()
}

/// A stable, distinct hex filler per name (token hashes must be unique).
fn rand_u128(name: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (name, uuid::Uuid::new_v4()).hash(&mut h);
    u128::from(h.finish())
}

/// A user with a GitHub id, and a token.
pub(crate) async fn github_user(t: &TestApp, login: &str, github_id: i64) -> String {
    let token = t.user_token(login, false).await;
    sqlx::query("UPDATE users SET github_id = $2 WHERE login = $1::citext")
        .bind(login)
        .bind(github_id)
        .execute(&t.app().db)
        .await
        .expect("github id");
    token
}

/// Pushes `sha` to `branch` the way every push arrives, then fills in what ingestion, checks
/// and coverage would have recorded.
pub(crate) async fn push(
    t: &TestApp,
    repo: &cocov::repositories::Repository,
    sha: &str,
    branch: &str,
) -> i64 {
    cocov::commits::register_push(t.app(), repo, sha, Some(branch))
        .await
        .expect("push")
        .commit_id
}

pub(crate) async fn complete(pool: &PgPool, commit: i64, issues: i32, coverage: f64) {
    sqlx::query(
        "UPDATE commits SET author_name = 'Ada', author_email = 'ada@example.com', message = 'Fix it',
                issues_count = $2, coverage_percent = $3, minimum_coverage = 80,
                ingest_status = 'completed' WHERE id = $1",
    )
    .bind(commit)
    .bind(issues)
    .bind(coverage)
    .execute(pool)
    .await
    .expect("commit numbers");
    sqlx::query(
        "INSERT INTO check_sets (commit_id, status, started_at, finished_at)
         VALUES ($1, 'completed', now(), now())",
    )
    .bind(commit)
    .execute(pool)
    .await
    .expect("check set");
    sqlx::query(
        "INSERT INTO coverage_infos (commit_id, status, percent_covered, lines_total, lines_covered)
         VALUES ($1, 'completed', $2, 100, 87)",
    )
    .bind(commit)
    .bind(coverage)
    .execute(pool)
    .await
    .expect("coverage info");
    sqlx::query("UPDATE branches SET issues = $2, coverage = $3 WHERE head_commit_id = $1")
        .bind(commit)
        .bind(issues)
        .bind(coverage)
        .execute(pool)
        .await
        .expect("branch numbers");
}

/// A history point for the branch at a given time.
pub(crate) async fn history(
    pool: &PgPool,
    repo: i64,
    branch: &str,
    at: &str,
    issues: i32,
    coverage: f64,
) {
    for (table, column, value) in [
        ("issue_histories", "quantity", json!(issues)),
        ("coverage_histories", "percentage", json!(coverage)),
    ] {
        let sql = format!(
            "INSERT INTO {table} (repository_id, branch_id, {column}, created_at)
             SELECT $1, id, ($3::jsonb #>> '{{}}')::numeric, $4::timestamptz FROM branches
             WHERE repository_id = $1 AND name = $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(repo)
            .bind(branch)
            .bind(value)
            .bind(at)
            .execute(pool)
            .await
            .expect("history point");
    }
}

/// The routes of one repository, for the per-role table.
fn repository_paths(name: &str) -> Vec<String> {
    vec![
        format!("/v1/repositories/{name}"),
        format!("/v1/repositories/{name}/branches"),
        format!("/v1/repositories/{name}/branches/main"),
        format!("/v1/repositories/{name}/commits"),
        format!("/v1/repositories/{name}/commits/{SHA_HEAD}"),
        format!("/v1/repositories/{name}/stats/coverage?from=2026-03-01&to=2026-03-03"),
        format!("/v1/repositories/{name}/stats/issues?from=2026-03-01&to=2026-03-03"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn each_read_route_by_role() {
    let t = start().await;
    let pool = &t.app().db;
    let admin = t.user_token("root", true).await;
    let member = github_user(&t, "member", 501).await;
    let outsider = github_user(&t, "outsider", 502).await;
    let service = service_token(&t).await;

    let repo = repository(pool, "widget", Some(9001)).await;
    sqlx::query(
        "INSERT INTO repository_members (repository_id, github_member_id, level) VALUES ($1, 501, 'user')",
    )
    .bind(repo.id)
    .execute(pool)
    .await
    .expect("member");
    push(&t, &repo, SHA_OLD, "main").await;
    let head = push(&t, &repo, SHA_HEAD, "main").await;
    complete(pool, head, 3, 87.5).await;
    history(pool, repo.id, "main", "2026-02-20T10:00:00Z", 9, 50.0).await;
    history(pool, repo.id, "main", "2026-03-02T10:00:00Z", 4, 80.0).await;
    history(pool, repo.id, "main", "2026-03-02T12:00:00Z", 3, 87.5).await;

    for path in repository_paths("widget")
        .into_iter()
        .chain(["/v1/repositories".into()])
    {
        let anonymous = get(&t, None, &path).await;
        assert_error(
            &anonymous,
            StatusCode::UNAUTHORIZED,
            "auth.no_authorization",
            &path,
        );
        let bad = get(&t, Some("cop_nonsense"), &path).await;
        assert_error(&bad, StatusCode::UNAUTHORIZED, "auth.invalid_token", &path);
    }
    // Not a member: exactly what a repository that does not exist gets.
    for path in repository_paths("widget") {
        let hidden = get(&t, Some(&outsider), &path).await;
        assert_error(&hidden, StatusCode::NOT_FOUND, "not_found", &path);
        let absent = get(&t, Some(&admin), &path.replace("widget", "nothing")).await;
        assert_eq!(hidden, absent, "{path}");
    }
    let (status, list) = get(&t, Some(&outsider), "/v1/repositories").await;
    assert_eq!(
        (status, list["repositories"].clone()),
        (StatusCode::OK, json!([]))
    );
    assert_eq!(list["paging"]["total"], 0);

    for (who, token) in [
        ("member", &member),
        ("admin", &admin),
        ("service", &service),
    ] {
        let (status, list) = get(&t, Some(token), "/v1/repositories").await;
        assert_eq!(status, StatusCode::OK, "{who}: {list}");
        assert_eq!(list["repositories"][0]["name"], "widget", "{who}");
        assert_eq!(list["repositories"][0]["issues"], 3, "{who}");
        assert_eq!(list["repositories"][0]["coverage"], 87.5, "{who}");
        assert_eq!(
            list["paging"],
            json!({"page": 1, "per_page": 25, "total": 1, "total_pages": 1,
                   "prev_page": null, "next_page": null}),
            "{who}"
        );

        let (status, shown) = get(&t, Some(token), "/v1/repositories/WIDGET").await;
        assert_eq!(status, StatusCode::OK, "{who}: {shown}");
        assert_eq!(shown["id"], repo.id);
        assert_eq!(shown["default_branch"], "main");
        assert_eq!(shown["head"]["sha"], SHA_HEAD);
        assert_eq!(shown["head"]["condensed_status"], "green");

        let (status, names) = get(&t, Some(token), "/v1/repositories/widget/branches").await;
        assert_eq!(
            (status, names),
            (StatusCode::OK, json!({"branches": ["main"]}))
        );

        let (status, branch) = get(&t, Some(token), "/v1/repositories/widget/branches/main").await;
        assert_eq!(status, StatusCode::OK, "{who}: {branch}");
        assert_eq!(branch["name"], "main");
        assert_eq!(branch["default"], true);
        assert_eq!(
            (branch["issues"].clone(), branch["coverage"].clone()),
            (json!(3), json!(87.5))
        );
        assert_eq!(branch["condensed_status"], "green");
        assert_eq!(branch["head"]["sha"], SHA_HEAD);
        assert_eq!(branch["head"]["checks_status"], "completed");
        assert_eq!(branch["head"]["coverage_status"], "completed");

        let (status, commits) = get(&t, Some(token), "/v1/repositories/widget/commits").await;
        assert_eq!(status, StatusCode::OK, "{who}: {commits}");
        let shas: Vec<&str> = commits["commits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["sha"].as_str().unwrap())
            .collect();
        assert_eq!(shas, [SHA_HEAD, SHA_OLD], "newest push first");
        assert_eq!(commits["branch"], "main");
        assert_eq!(commits["paging"]["total"], 2);

        let upper = SHA_HEAD.to_uppercase();
        let (status, commit) = get(
            &t,
            Some(token),
            &format!("/v1/repositories/widget/commits/{upper}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{who}: {commit}");
        assert_eq!(commit["sha"], SHA_HEAD);
        assert_eq!(commit["author_name"], "Ada");
        assert_eq!(commit["issues_count"], 3);
        assert_eq!(commit["coverage_percent"], 87.5);
        assert_eq!(commit["minimum_coverage"], 80);
        assert_eq!(commit["user"], Value::Null);

        let stats = "/v1/repositories/widget/stats/issues?from=2026-03-01&to=2026-03-03";
        let (status, series) = get(&t, Some(token), stats).await;
        assert_eq!(status, StatusCode::OK, "{who}: {series}");
        assert_eq!(
            series,
            json!([
                {"date": "2026-03-01", "value": 9.0},
                {"date": "2026-03-02", "value": 3.0},
                {"date": "2026-03-03", "value": 3.0},
            ]),
            "{who}"
        );
        let stats = "/v1/repositories/widget/stats/coverage?from=2026-03-01&to=2026-03-02";
        let (status, series) = get(&t, Some(token), stats).await;
        assert_eq!(status, StatusCode::OK, "{who}: {series}");
        assert_eq!(series[0]["value"], 50.0);
        assert_eq!(series[1]["value"], 87.5);
    }
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn standalone_repositories_are_seen_by_their_members_only() {
    let t = start().await;
    let pool = &t.app().db;
    let alice = t.user_token("alice", false).await;
    let bob = t.user_token("bob", false).await;
    let github_only = github_user(&t, "carol", 777).await;
    let open = repository(pool, "open", None).await;
    repository(pool, "closed", None).await;
    repository(pool, "on-github", Some(4242)).await;
    let closed: i64 = sqlx::query_scalar("SELECT id FROM repositories WHERE name = 'closed'")
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO repository_members (repository_id, user_id, level)
         SELECT $1, id, 'user' FROM users WHERE login = 'alice'",
    )
    .bind(closed)
    .execute(pool)
    .await
    .expect("local member");

    let names = |v: &Value| -> Vec<String> {
        v["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, list) = get(&t, Some(&alice), "/v1/repositories").await;
    assert_eq!(names(&list), ["closed"]);
    // A standalone repository without members is for administrators only.
    let (_, list) = get(&t, Some(&bob), "/v1/repositories").await;
    assert_eq!(names(&list), Vec::<String>::new());
    // A GitHub repository without this user among its collaborators stays hidden.
    let (_, list) = get(&t, Some(&github_only), "/v1/repositories").await;
    assert_eq!(names(&list), Vec::<String>::new());

    let hidden = get(&t, Some(&bob), "/v1/repositories/open").await;
    assert_error(&hidden, StatusCode::NOT_FOUND, "not_found", "bob on open");
    assert_eq!(
        get(&t, Some(&alice), "/v1/repositories/closed").await.0,
        StatusCode::OK
    );
    let hidden = get(&t, Some(&bob), "/v1/repositories/closed").await;
    assert_error(&hidden, StatusCode::NOT_FOUND, "not_found", "bob on closed");
    let hidden = get(&t, Some(&bob), "/v1/repositories/on-github").await;
    assert_error(
        &hidden,
        StatusCode::NOT_FOUND,
        "not_found",
        "bob on on-github",
    );
    assert_eq!(open.github_id, None);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn search_and_paging() {
    let t = start().await;
    let pool = &t.app().db;
    let admin = t.user_token("root", true).await;
    for name in ["beta", "alphabet", "alpha", "my-alpha", "gamma"] {
        repository(pool, name, None).await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, found) = get(&t, Some(&admin), "/v1/repositories?search_term=ALPHA").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(names(&found), ["alpha", "alphabet", "my-alpha"]);
    assert_eq!(found["paging"]["total"], 3);

    let (_, first) = get(&t, Some(&admin), "/v1/repositories?per_page=2").await;
    assert_eq!(names(&first), ["alpha", "alphabet"]);
    assert_eq!(
        first["paging"],
        json!({"page": 1, "per_page": 2, "total": 5, "total_pages": 3,
               "prev_page": null, "next_page": 2})
    );
    let (_, last) = get(&t, Some(&admin), "/v1/repositories?per_page=2&page=3").await;
    assert_eq!(names(&last), ["my-alpha"]);
    assert_eq!(
        (
            last["paging"]["prev_page"].clone(),
            last["paging"]["next_page"].clone()
        ),
        (json!(2), Value::Null)
    );
    let (_, beyond) = get(&t, Some(&admin), "/v1/repositories?per_page=2&page=9").await;
    assert_eq!(names(&beyond), Vec::<String>::new());

    for (query, code) in [
        ("page=0", "paging.invalid_page"),
        ("page=two", "paging.invalid_page"),
        ("per_page=0", "paging.invalid_per_page"),
        ("per_page=101", "paging.invalid_per_page"),
    ] {
        let got = get(&t, Some(&admin), &format!("/v1/repositories?{query}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, code, query);
    }
    // Commit lists validate their paging too.
    let got = get(&t, Some(&admin), "/v1/repositories/beta/commits?page=-1").await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "paging.invalid_page",
        "commits",
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn statistics_parameters_are_checked() {
    let t = start().await;
    let pool = &t.app().db;
    let admin = t.user_token("root", true).await;
    let repo = repository(pool, "stats", None).await;
    push(&t, &repo, SHA_HEAD, "main").await;
    let base = "/v1/repositories/stats/stats/coverage";
    for (query, code) in [
        ("to=2026-03-01", "repositories.missing_from_date"),
        ("from=2026-03-01", "repositories.missing_to_date"),
        (
            "from=yesterday&to=2026-03-01",
            "repositories.invalid_from_date",
        ),
        (
            "from=2026-03-01&to=2026-02-30",
            "repositories.invalid_to_date",
        ),
        (
            "from=2026-03-02&to=2026-03-01",
            "repositories.invalid_stats_range",
        ),
        (
            "from=2026-01-01&to=2026-06-01",
            "repositories.stats_range_too_large",
        ),
    ] {
        let got = get(&t, Some(&admin), &format!("{base}?{query}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, code, query);
    }
    // No history at all: every day is null. RFC 3339 times name their UTC day.
    let (status, series) = get(
        &t,
        Some(&admin),
        &format!("{base}?from=2026-03-01T10:00:00Z&to=2026-03-02"),
    )
    .await;
    assert_eq!(
        (status, series),
        (
            StatusCode::OK,
            json!([{"date": "2026-03-01", "value": null}, {"date": "2026-03-02", "value": null}])
        )
    );
    // Another branch's history does not leak in (the original's bug 17), and an unknown branch
    // is a 404.
    push(&t, &repo, SHA_OLD, "other").await;
    history(pool, repo.id, "other", "2026-02-01T00:00:00Z", 1, 10.0).await;
    let (_, series) = get(
        &t,
        Some(&admin),
        &format!("{base}?from=2026-03-01&to=2026-03-01"),
    )
    .await;
    assert_eq!(series, json!([{"date": "2026-03-01", "value": null}]));
    let (_, series) = get(
        &t,
        Some(&admin),
        &format!("{base}?from=2026-03-01&to=2026-03-01&branch=other"),
    )
    .await;
    assert_eq!(series, json!([{"date": "2026-03-01", "value": 10.0}]));
    let got = get(
        &t,
        Some(&admin),
        &format!("{base}?from=2026-03-01&to=2026-03-01&branch=nope"),
    )
    .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "unknown branch");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn branches_with_slashes_and_commits_per_branch() {
    let t = start().await;
    let pool = &t.app().db;
    let admin = t.user_token("root", true).await;
    let repo = repository(pool, "tree", None).await;
    push(&t, &repo, SHA_OLD, "main").await;
    push(&t, &repo, SHA_HEAD, "main").await;
    push(&t, &repo, SHA_OLD, "feature/x").await;
    push(&t, &repo, SHA_HEAD, "alpha").await;

    let (_, names) = get(&t, Some(&admin), "/v1/repositories/tree/branches").await;
    assert_eq!(names, json!({"branches": ["main", "alpha", "feature/x"]}));

    for path in ["feature/x", "Feature%2FX"] {
        let (status, branch) = get(
            &t,
            Some(&admin),
            &format!("/v1/repositories/tree/branches/{path}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}: {branch}");
        assert_eq!(branch["name"], "feature/x");
        assert_eq!(branch["default"], false);
        assert_eq!(branch["head"]["sha"], SHA_OLD);
        // Nothing ran yet: no numbers, yellow.
        assert_eq!(branch["issues"], Value::Null);
        assert_eq!(branch["condensed_status"], "yellow");
        assert_eq!(branch["head"]["checks_status"], "waiting");
    }
    let got = get(&t, Some(&admin), "/v1/repositories/tree/branches/feature/y").await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "unknown branch");

    let shas = |v: &Value| -> Vec<String> {
        v["commits"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|c| c["sha"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, list) = get(
        &t,
        Some(&admin),
        "/v1/repositories/tree/commits?branch=feature/x",
    )
    .await;
    assert_eq!(shas(&list), [SHA_OLD]);
    // Pushing a commit again moves it to the top of that branch's list only.
    push(&t, &repo, SHA_OLD, "main").await;
    let (_, list) = get(
        &t,
        Some(&admin),
        "/v1/repositories/tree/commits?branch=main",
    )
    .await;
    assert_eq!(shas(&list), [SHA_OLD, SHA_HEAD]);
    let (_, list) = get(
        &t,
        Some(&admin),
        "/v1/repositories/tree/commits?per_page=1&page=2",
    )
    .await;
    assert_eq!(shas(&list), [SHA_HEAD]);
    let got = get(
        &t,
        Some(&admin),
        "/v1/repositories/tree/commits?branch=gone",
    )
    .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "unknown branch");

    // An unknown or malformed sha is a 404 like any absent commit.
    for sha in ["3333333333333333333333333333333333333333", "zz"] {
        let got = get(
            &t,
            Some(&admin),
            &format!("/v1/repositories/tree/commits/{sha}"),
        )
        .await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", sha);
    }
    t.shutdown().await;
}
