//! The badge listener end to end, through the real daemon (badger role) on PostgreSQL and Redis:
//! SVGs byte-identical to the original's, branches, 404s, ETag revalidation, serving from
//! memory, invalidation (in-process and from another host through Redis pub/sub, including after
//! the subscription was cut) and the per-client rate limit.
//!
//! The golden SVGs in tests/fixtures/badges/ were produced by shield-maker 0.1.0 (the original
//! badger's renderer: Plastic style, default font family, colours `brightgreen` and `important`)
//! measuring with the embedded DejaVu Sans, in a scratch crate. Their numbers equal the
//! reference's golden geometry table (cocov-reporter-badger-web.md §2.5) and they follow its
//! element order; they have no trailing newline.

use crate::common;

use std::time::Duration;

use cocov::kv::Db;
use common::{TestApp, eventually};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use sqlx::PgPool;

const COVERAGE_97: &str = include_str!("fixtures/badges/coverage-97.svg");
const COVERAGE_100: &str = include_str!("fixtures/badges/coverage-100.svg");
const ISSUES_4: &str = include_str!("fixtures/badges/issues-4.svg");

async fn start() -> TestApp {
    TestApp::start_with(|c| c.server.roles = vec![cocov::config::Role::Badger]).await
}

/// A repository registered by git URL, with `default_branch`.
async fn repository(pool: &PgPool, name: &str, default_branch: &str) -> i64 {
    let token_hash = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    sqlx::query_scalar(
        "INSERT INTO repositories (name, default_branch, git_url, upload_token_hash)
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(name)
    .bind(default_branch)
    .bind(format!("https://git.example/{name}.git"))
    .bind(token_hash)
    .fetch_one(pool)
    .await
    .expect("insert repository")
}

async fn branch(pool: &PgPool, repo: i64, name: &str, coverage: Option<f64>, issues: Option<i32>) {
    sqlx::query(
        "INSERT INTO branches (repository_id, name, coverage, issues) VALUES ($1, $2, $3, $4)
         ON CONFLICT (repository_id, name)
         DO UPDATE SET coverage = EXCLUDED.coverage, issues = EXCLUDED.issues",
    )
    .bind(repo)
    .bind(name)
    .bind(coverage)
    .bind(issues)
    .execute(pool)
    .await
    .expect("upsert branch");
}

struct Got {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn get(t: &TestApp, path: &str, if_none_match: Option<&str>) -> Got {
    let mut request = t.client.get(format!("{}{path}", t.badger_base));
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    let response = request.send().await.expect("badge request");
    Got {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

fn assert_svg(got: &Got, expected: &str) {
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.header("content-type"), "image/svg+xml;charset=utf-8");
    assert_eq!(got.header("cache-control"), "no-cache");
    assert!(got.header("etag").starts_with('"'), "strong ETag");
    assert_eq!(got.body, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn default_branch_badges_are_byte_identical_to_the_original() {
    let t = start().await;
    let pool = &t.app().db;
    let repo = repository(pool, "Widget", "main").await;
    // 97.9 truncates to 97, as the original did.
    branch(pool, repo, "main", Some(97.9), Some(4)).await;
    let other = repository(pool, "full", "trunk").await;
    branch(pool, other, "trunk", Some(100.0), Some(0)).await;

    assert_svg(&get(&t, "/Widget/coverage", None).await, COVERAGE_97);
    assert_svg(&get(&t, "/Widget/issues", None).await, ISSUES_4);
    assert_svg(&get(&t, "/full/coverage", None).await, COVERAGE_100);
    // Names are case-insensitive (citext), whatever the cache keys look like.
    assert_svg(&get(&t, "/wIDGET/coverage", None).await, COVERAGE_97);

    let health = get(&t, "/health", None).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "Ok")
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn branches_missing_values_and_unknown_repositories() {
    let t = start().await;
    let pool = &t.app().db;
    let repo = repository(pool, "multi", "main").await;
    branch(pool, repo, "main", None, None).await;
    branch(pool, repo, "Feature/X", Some(55.5), Some(200)).await;
    repository(pool, "empty", "main").await;

    let dev = get(&t, "/multi/coverage?branch=feature%2Fx", None).await;
    assert!(dev.body.contains(">55%</text>") && dev.body.contains("rgba(223,179,23,1)"));
    // 200 issues: orange (the original's i8 overflow made 128 and more grey).
    let dev = get(&t, "/multi/issues?branch=Feature/X", None).await;
    assert!(dev.body.contains(">200</text>") && dev.body.contains("rgba(254,125,55,1)"));

    // NULL values, a missing branch, and a repository without its default branch: `unknown`.
    for path in [
        "/multi/coverage",
        "/multi/issues",
        "/multi/coverage?branch=nope",
        "/empty/issues",
    ] {
        let got = get(&t, path, None).await;
        assert_eq!(got.status, StatusCode::OK, "{path}");
        assert!(
            got.body.contains(">unknown</text>") && got.body.contains("rgba(159,159,159,1)"),
            "{path}: {}",
            got.body
        );
    }

    // An unknown repository is a 404, asked twice (the second from the negative cache).
    for _ in 0..2 {
        let got = get(&t, "/nobody/coverage", None).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND);
        assert_eq!(got.header("cache-control"), "no-cache");
        let body: serde_json::Value = serde_json::from_str(&got.body).expect("json");
        assert_eq!(body["code"], "not_found");
    }
    // Other kinds and methods are not badges.
    assert_eq!(
        get(&t, "/multi/style", None).await.status,
        StatusCode::NOT_FOUND
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revalidation_gets_304_until_the_number_changes() {
    let t = start().await;
    let pool = &t.app().db;
    let repo = repository(pool, "etagged", "main").await;
    branch(pool, repo, "main", Some(97.0), Some(4)).await;

    let first = get(&t, "/etagged/coverage", None).await;
    assert_svg(&first, COVERAGE_97);
    let tag = first.header("etag").to_string();

    let again = get(&t, "/etagged/coverage", Some(&tag)).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.body, "");
    assert_eq!(again.header("etag"), tag);
    assert_eq!(again.header("cache-control"), "no-cache");
    // Another tag does not match.
    let other = get(&t, "/etagged/coverage", Some("\"0000\"")).await;
    assert_eq!(other.status, StatusCode::OK);

    // The number changes and its module announces it: the very next request has the new badge,
    // and a revalidation with the old tag gets 200 with the new SVG.
    branch(pool, repo, "main", Some(100.0), Some(4)).await;
    cocov::badges::invalidate(t.app(), repo, "etagged", Some("main")).await;
    let changed = get(&t, "/etagged/coverage", Some(&tag)).await;
    assert_svg(&changed, COVERAGE_100);
    assert_ne!(changed.header("etag"), tag);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_that_accept_gzip_get_the_precompressed_badge_with_its_own_tag() {
    use std::io::Read;
    let t = start().await;
    let pool = &t.app().db;
    let repo = repository(pool, "zipped", "main").await;
    branch(pool, repo, "main", Some(97.0), Some(4)).await;
    let plain = get(&t, "/zipped/coverage", None).await;
    assert_svg(&plain, COVERAGE_97);
    assert_eq!(plain.header("vary"), "accept-encoding");
    assert_eq!(plain.header("content-encoding"), "");

    let url = format!("{}/zipped/coverage", t.badger_base);
    let zipped = t
        .client
        .get(&url)
        .header("accept-encoding", "gzip, deflate, br, zstd")
        .send()
        .await
        .expect("request");
    assert_eq!(zipped.status(), StatusCode::OK);
    let header = |r: &reqwest::Response, n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(header(&zipped, "content-encoding"), "gzip");
    assert_eq!(
        header(&zipped, "content-type"),
        "image/svg+xml;charset=utf-8"
    );
    let tag = header(&zipped, "etag");
    assert_ne!(tag, plain.header("etag"), "one strong tag per encoding");
    let bytes = zipped.bytes().await.expect("body");
    let mut svg = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut svg)
        .expect("a gzip body");
    assert_eq!(svg, COVERAGE_97);

    let revalidated = t
        .client
        .get(&url)
        .header("accept-encoding", "gzip")
        .header("if-none-match", &tag)
        .send()
        .await
        .expect("request");
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_badges_are_served_without_postgresql() {
    let t = start().await;
    let pool = &t.app().db;
    let repo = repository(pool, "memo", "main").await;
    branch(pool, repo, "main", Some(97.0), Some(4)).await;
    assert_svg(&get(&t, "/memo/coverage", None).await, COVERAGE_97);

    // Remove the data behind PostgreSQL's back (no invalidation): a hit must not see it.
    sqlx::query("DELETE FROM repositories WHERE id = $1")
        .bind(repo)
        .execute(pool)
        .await
        .expect("delete");
    assert_svg(&get(&t, "/memo/coverage", None).await, COVERAGE_97);
    // The issues badge was cached by the same load.
    assert_svg(&get(&t, "/memo/issues", None).await, ISSUES_4);

    // Once told, the badger asks PostgreSQL again and learns the repository is gone.
    cocov::badges::invalidate(t.app(), repo, "memo", None).await;
    assert_eq!(
        get(&t, "/memo/coverage", None).await.status,
        StatusCode::NOT_FOUND
    );

    // Creating a repository clears its cached 404 at once.
    let repo = repository(pool, "memo", "main").await;
    branch(pool, repo, "main", Some(97.0), Some(4)).await;
    cocov::badges::invalidate(t.app(), repo, "memo", None).await;
    assert_svg(&get(&t, "/memo/coverage", None).await, COVERAGE_97);
    t.shutdown().await;
}

/// Number of subscribers of the invalidation channel, as Redis sees them.
async fn subscribers(t: &TestApp) -> i64 {
    let channel = t.app().kv.key(cocov::badges::INVALIDATE_CHANNEL);
    let mut conn = t.redis.kv.conn(Db::Primary);
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(&channel)
        .query_async(&mut conn)
        .await
        .expect("PUBSUB NUMSUB");
    n
}

/// What a worker on another host does: update the row and publish, with no access to this
/// badger's memory.
async fn change_elsewhere(t: &TestApp, repo: i64, name: &str, coverage: f64) {
    branch(&t.app().db, repo, "main", Some(coverage), Some(4)).await;
    let channel = t.app().kv.key(cocov::badges::INVALIDATE_CHANNEL);
    let message = serde_json::json!({"repository_id": repo, "repository": name, "branch": "main"});
    let mut conn = t.redis.kv.conn(Db::Primary);
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(message.to_string())
        .query_async(&mut conn)
        .await
        .expect("PUBLISH");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalidations_from_another_host_arrive_through_redis() {
    let t = start().await;
    let pool = &t.app().db;
    let repo = repository(pool, "remote", "main").await;
    branch(pool, repo, "main", Some(97.0), Some(4)).await;
    assert_svg(&get(&t, "/remote/coverage", None).await, COVERAGE_97);
    eventually("the badger subscribes", Duration::from_secs(10), || async {
        (subscribers(&t).await == 1).then_some(())
    })
    .await;

    change_elsewhere(&t, repo, "remote", 100.0).await;
    // Pub/sub on one machine takes well under a millisecond; the issue asks for one second.
    eventually("the new badge", Duration::from_secs(1), || async {
        (get(&t, "/remote/coverage", None).await.body == COVERAGE_100).then_some(())
    })
    .await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_subscription_comes_back_after_redis_drops_it() {
    // A primary database index of its own, so this test can find (and cut) exactly its own
    // subscriber connection in CLIENT LIST without disturbing tests running beside it.
    const DB: u8 = 13;
    let t = TestApp::start_with(|c| {
        c.server.roles = vec![cocov::config::Role::Badger];
        c.redis.primary_db = DB;
    })
    .await;
    let pool = &t.app().db;
    let repo = repository(pool, "phoenix", "main").await;
    branch(pool, repo, "main", Some(97.0), Some(4)).await;
    eventually("the badger subscribes", Duration::from_secs(10), || async {
        (subscribers(&t).await == 1).then_some(())
    })
    .await;
    assert_svg(&get(&t, "/phoenix/coverage", None).await, COVERAGE_97);

    let mut conn = t.redis.kv.conn(Db::Primary);
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .expect("CLIENT LIST");
    let ours: Vec<&str> = clients
        .lines()
        .filter(|l| l.split(' ').any(|f| f == format!("db={DB}")))
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .collect();
    assert!(!ours.is_empty(), "no subscriber on db {DB} in {clients}");
    for id in ours {
        let _: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut conn)
            .await
            .expect("CLIENT KILL");
    }

    // The badger resubscribes on its own and hears the next change.
    eventually(
        "the badger resubscribes",
        Duration::from_secs(10),
        || async { (subscribers(&t).await == 1).then_some(()) },
    )
    .await;
    change_elsewhere(&t, repo, "phoenix", 100.0).await;
    eventually("the new badge", Duration::from_secs(1), || async {
        (get(&t, "/phoenix/coverage", None).await.body == COVERAGE_100).then_some(())
    })
    .await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_over_the_rate_limit_get_429_before_any_lookup() {
    let t = TestApp::start_with(|c| {
        c.server.roles = vec![cocov::config::Role::Badger];
        c.badger.rate_limit_per_minute = 3;
    })
    .await;
    let pool = &t.app().db;
    let repo = repository(pool, "limited", "main").await;
    branch(pool, repo, "main", Some(97.0), Some(4)).await;

    for _ in 0..3 {
        assert_svg(&get(&t, "/limited/coverage", None).await, COVERAGE_97);
    }
    // Over the limit, even for a repository that does not exist: the answer is 429, not 404,
    // because the limit is decided before any lookup.
    for path in ["/limited/coverage", "/nobody/issues"] {
        let got = get(&t, path, None).await;
        assert_eq!(got.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        let retry_after: u64 = got.header("retry-after").parse().expect("Retry-After");
        assert!((1..=20).contains(&retry_after), "{retry_after}");
        let body: serde_json::Value = serde_json::from_str(&got.body).expect("json");
        assert_eq!(body["code"], "rate_limited");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The health probe is not limited.
    assert_eq!(get(&t, "/health", None).await.status, StatusCode::OK);
    t.shutdown().await;
}

/// A commit heading `main` of `repo`, as a push leaves it.
async fn head_commit(pool: &PgPool, repo: i64, sha: &str) -> i64 {
    let commit: i64 = sqlx::query_scalar(
        "INSERT INTO commits (repository_id, sha, author_name, author_email, message)
         VALUES ($1, $2, 'a', 'a@example.com', 'm') RETURNING id",
    )
    .bind(repo)
    .bind(sha)
    .fetch_one(pool)
    .await
    .expect("insert commit");
    sqlx::query(
        "UPDATE branches SET head_commit_id = $2 WHERE repository_id = $1 AND name = 'main'",
    )
    .bind(repo)
    .bind(commit)
    .execute(pool)
    .await
    .expect("branch head");
    commit
}

#[tokio::test(flavor = "multi_thread")]
async fn a_status_that_changes_a_number_refreshes_the_badge_within_a_second() {
    use cocov::statuses::{self, Context, State};
    let t = start().await;
    let pool = &t.app().db;
    let repo = repository(pool, "statused", "main").await;
    branch(pool, repo, "main", Some(97.0), Some(4)).await;
    let commit = head_commit(pool, repo, &"a".repeat(40)).await;

    let coverage = get(&t, "/statused/coverage", None).await;
    assert_svg(&coverage, COVERAGE_97);
    let issues = get(&t, "/statused/issues", None).await;
    assert_svg(&issues, ISSUES_4);
    let (coverage_tag, issues_tag) = (coverage.header("etag"), issues.header("etag"));

    // What the coverage and checks modules do: write the commit's new numbers, then set the
    // status that reports them. Nothing else tells the badger.
    branch(pool, repo, "main", Some(100.0), Some(4)).await;
    statuses::set(
        t.app(),
        commit,
        Context::Coverage,
        State::Success,
        "100.0% covered",
        None,
    )
    .await
    .expect("coverage status");
    let started = std::time::Instant::now();
    eventually("the new coverage badge", Duration::from_secs(1), || async {
        let got = get(&t, "/statused/coverage", Some(coverage_tag)).await;
        (got.status == StatusCode::OK && got.body == COVERAGE_100).then_some(())
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(1));

    branch(pool, repo, "main", Some(100.0), Some(0)).await;
    statuses::set(
        t.app(),
        commit,
        Context::Checks,
        State::Success,
        "No issues detected",
        None,
    )
    .await
    .expect("checks status");
    eventually("the new issues badge", Duration::from_secs(1), || async {
        let got = get(&t, "/statused/issues", Some(issues_tag)).await;
        (got.status == StatusCode::OK && got.body.contains(">0</text>")).then_some(())
    })
    .await;
    // The unchanged badge still revalidates to 304 with its tag.
    let again = get(&t, "/statused/coverage", None).await;
    let tag = again.header("etag").to_string();
    assert_eq!(
        get(&t, "/statused/coverage", Some(&tag)).await.status,
        StatusCode::NOT_MODIFIED
    );
    t.shutdown().await;
}
