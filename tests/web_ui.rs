//! The web UI through the real daemon: a real Chromium signs in with a local account, walks the
//! pages on seeded data, asserts what they show and performs their actions; every page passes
//! the browser checks (no console error, no failed request, no serious axe-core violation) and
//! leaves a screenshot in `target/screenshots/`. Plain HTTP tests cover the security headers,
//! the auth gate, CSRF refusals (attacks that fail if the checks are removed) and asset caching.

use crate::common;

use common::TestApp;
use common::browser::{Browser, server_failures};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use sqlx::PgPool;

pub(crate) const PASSWORD: &str = "correct horse battery staple";
const SHA_OLD: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SHA_HEAD: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// The API and badger roles (no worker: seeded numbers stay as seeded), the badger on a port
/// known in advance so the badges page can link its images.
pub(crate) async fn start() -> TestApp {
    let badger_port = common::requests::free_port();
    TestApp::start_with(|c| {
        c.server.roles = vec![cocov::config::Role::Api, cocov::config::Role::Badger];
        c.badger.bind_port = badger_port;
        c.badger.base_url = format!("http://127.0.0.1:{badger_port}");
    })
    .await
}

/// A local account with [`PASSWORD`].
pub(crate) async fn account(t: &TestApp, login: &str, admin: bool) -> i64 {
    let phc = cocov::auth::password::hash(PASSWORD).await.unwrap();
    let actor = cocov::audit::AuditActor::system();
    cocov::auth::users::create_with_password(&t.app().db, login, admin, Some(&phc), &actor)
        .await
        .expect("user")
        .id
}

/// A standalone repository with two pushes on `main`, numbers on its head, a month of history
/// and issues of two kinds; returns its name.
pub(crate) async fn seeded_repository(t: &TestApp, name: &str) -> String {
    let app = t.app();
    let pool = &app.db;
    let new = cocov::repositories::NewRepository {
        name: name.into(),
        description: Some("The widget service".into()),
        default_branch: "main".into(),
        source: cocov::repositories::Source::GitUrl(format!("https://git.example/{name}.git")),
    };
    let (repo, _) = cocov::repositories::create(
        pool,
        &new,
        &["https".to_string()],
        &cocov::audit::AuditActor::system(),
    )
    .await
    .expect("repository");
    for sha in [SHA_OLD, SHA_HEAD] {
        cocov::commits::register_push(app, &repo, sha, Some("main"))
            .await
            .expect("push");
    }
    cocov::commits::register_push(app, &repo, SHA_OLD, Some("feature/login"))
        .await
        .expect("push to a second branch");
    let head: i64 = sqlx::query_scalar("SELECT id FROM commits WHERE sha = $1")
        .bind(SHA_HEAD)
        .fetch_one(pool)
        .await
        .unwrap();
    seed_numbers(pool, repo.id, head).await;
    name.to_string()
}

async fn seed_numbers(pool: &PgPool, repository_id: i64, head: i64) {
    let statements = [
        "UPDATE commits SET author_name = 'Ada Lovelace', message = 'Speed up the parser\n\nDetails.', \
         issues_count = 3, coverage_percent = 76.5, minimum_coverage = 70, ingest_status = 'completed' WHERE id = $1",
        "INSERT INTO check_sets (commit_id, status, started_at, finished_at) VALUES ($1, 'completed', now(), now())",
        "INSERT INTO coverage_infos (commit_id, status, percent_covered, lines_total, lines_covered) \
         VALUES ($1, 'completed', 76.5, 200, 153)",
        "UPDATE branches SET issues = 3, coverage = 76.5 WHERE head_commit_id = $1",
        "INSERT INTO issues (commit_id, kind, file, uid, line_start, line_end, message, check_source) VALUES \
         ($1, 'security', 'src/a.py', 'u1', 1, 1, 'eval used', 'bandit'), \
         ($1, 'security', 'src/b.py', 'u2', 3, 3, 'shell=True', 'bandit'), \
         ($1, 'style', 'src/a.py', 'u3', 9, 9, 'line too long', 'ruff')",
    ];
    for sql in statements {
        sqlx::query(sql).bind(head).execute(pool).await.expect(sql);
    }
    // A month of history: coverage rising, issues falling.
    sqlx::query(
        "INSERT INTO coverage_histories (repository_id, branch_id, percentage, created_at) \
         SELECT $1, b.id, 60 + d * 0.5, now() - (30 - d) * interval '1 day' \
         FROM branches b, generate_series(0, 30, 3) d WHERE b.repository_id = $1 AND b.name = 'main'",
    )
    .bind(repository_id)
    .execute(pool)
    .await
    .expect("coverage history");
    sqlx::query(
        "INSERT INTO issue_histories (repository_id, branch_id, quantity, created_at) \
         SELECT $1, b.id, 12 - d / 3, now() - (30 - d) * interval '1 day' \
         FROM branches b, generate_series(0, 30, 3) d WHERE b.repository_id = $1 AND b.name = 'main'",
    )
    .bind(repository_id)
    .execute(pool)
    .await
    .expect("issue history");
}

async fn service_token(
    t: &TestApp,
    description: &str,
) -> cocov::auth::service_tokens::ServiceToken {
    let system = cocov::audit::AuditActor::system();
    cocov::auth::service_tokens::create(&t.app().db, description, None, &system)
        .await
        .expect("service token")
        .0
}

/// Signs in through the form; lands on `return_to` or `/`.
pub(crate) async fn sign_in(browser: &Browser, t: &TestApp, login: &str) {
    browser.goto(&t.url("/")).await;
    assert!(
        browser
            .current_url()
            .await
            .contains("/sign-in?return_to=%2F"),
        "the gate sends an anonymous visitor to sign in"
    );
    browser.fill("#login", login).await;
    browser.fill("#password", PASSWORD).await;
    browser
        .click_and_wait("form[action='/sign-in'] button[type=submit]")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_walks_the_pages_and_acts() {
    let t = start().await;
    account(&t, "root", true).await;
    let alice = account(&t, "alice", false).await;
    let repo = seeded_repository(&t, "widget").await;
    let token = service_token(&t, "CI on build01").await;
    let browser = Browser::start("admin-walk").await;

    browser.goto(&t.url("/sign-in")).await;
    browser.check("sign-in").await;
    sign_in(&browser, &t, "root").await;
    assert_eq!(browser.current_url().await, t.url("/"));
    assert_eq!(browser.text("h1").await, "Repositories");
    let card = browser.text(".repo-card").await;
    assert!(
        card.contains("widget") && card.contains("The widget service"),
        "{card}"
    );
    assert!(card.contains("76.5%") && card.contains('3'), "{card}");
    assert_eq!(browser.count(".repo-card svg.sparkline").await, 2);
    browser.check("repositories").await;

    browser.goto(&t.url("/?q=nothing-like-this")).await;
    assert!(browser.text("main").await.contains("No results"));
    browser.check("repositories-search-empty").await;

    browser.goto(&t.url(&format!("/repos/{repo}"))).await;
    let status = browser.text(".status-box").await;
    assert!(
        status.contains("76.5%") && status.contains("3 issues"),
        "{status}"
    );
    assert!(
        browser
            .text(".last-commit")
            .await
            .contains("Speed up the parser")
    );
    assert_eq!(browser.count("svg.chart").await, 2);
    let summary = browser.text(".chart-summary").await;
    assert!(
        summary.starts_with("Coverage: 60% on ") && summary.contains("highest 75%"),
        "{summary}"
    );
    let kinds = browser.text(".bars").await;
    assert!(
        kinds.to_lowercase().starts_with("security\n2") && kinds.to_lowercase().contains("style"),
        "{kinds}"
    );
    assert_eq!(
        browser.count(".table tbody tr").await,
        2,
        "two commits on main"
    );
    browser.check("repository").await;

    // The branch switcher (a select that submits itself with JavaScript).
    browser
        .script(
            "const s = document.querySelector('#branch'); s.value = 'feature/login'; s.dispatchEvent(new Event('change'));",
            serde_json::json!([]),
        )
        .await;
    common::eventually(
        "the branch page",
        std::time::Duration::from_secs(10),
        || async {
            browser
                .current_url()
                .await
                .contains("branch=feature%2Flogin")
                .then_some(())
        },
    )
    .await;
    assert!(
        browser
            .text("#commits-heading")
            .await
            .contains("feature/login")
    );
    browser.check("repository-branch").await;

    browser.goto(&t.url(&format!("/repos/{repo}/badges"))).await;
    let snippet = browser
        .script(
            "return document.querySelector('#snippet-coverage').value;",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(
        snippet.as_str().unwrap(),
        format!(
            "[![Coverage]({}/{repo}/coverage)](http://127.0.0.1:3000/repos/{repo})\n",
            t.badger_base.replace("0.0.0.0", "127.0.0.1")
        )
    );
    let loaded = browser
        .script(
            "return Array.from(document.querySelectorAll('.badge-preview img')).every(i => i.complete && i.naturalWidth > 0);",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(
        loaded,
        serde_json::json!(true),
        "the badge previews load from the badger"
    );
    browser.check("badges").await;
    browser
        .goto(&t.url(&format!("/repos/{repo}/badges?format=restructured")))
        .await;
    assert!(
        browser
            .text("label[for=snippet-issues]")
            .await
            .contains("reStructuredText")
    );

    browser.goto(&t.url("/admin")).await;
    browser.check("admin").await;

    // Promote alice.
    browser.goto(&t.url("/admin/users")).await;
    browser.check("admin-users").await;
    browser
        .click_and_wait(&format!(
            "form:has(input[name=user_id][value='{alice}']) button[value=promote]"
        ))
        .await;
    assert!(
        browser
            .current_url()
            .await
            .ends_with("/admin/users?notice=promoted")
    );
    assert!(
        browser
            .text(".alert-success")
            .await
            .contains("now an administrator")
    );
    let promoted = cocov::auth::user_admin::get(&t.app().db, alice)
        .await
        .unwrap()
        .unwrap();
    assert!(promoted.admin);
    browser.check("admin-users-promoted").await;

    // Revoke the service token (the confirmation dialog is accepted).
    browser.goto(&t.url("/admin/tokens")).await;
    assert!(browser.text(".rows").await.contains("CI on build01"));
    browser.check("admin-tokens").await;
    browser
        .click_and_wait(&format!(
            "form:has(input[name=token_id][value='{}']) button[value=revoke]",
            token.id
        ))
        .await;
    assert!(
        browser
            .current_url()
            .await
            .ends_with("/admin/tokens?notice=revoked")
    );
    assert!(
        cocov::auth::service_tokens::list(&t.app().db)
            .await
            .unwrap()
            .is_empty()
    );
    browser.check("admin-tokens-revoked").await;

    // A dead letter, retried from the jobs page.
    let queue = &t.app().queue;
    let dead = serde_json::json!({
        "id": uuid::Uuid::new_v4(), "kind": "web.test", "payload": {}, "attempts": 3,
        "last_error": "boom: the test made it fail", "failed_at": "2026-12-01T10:00:00Z",
    });
    let _: i64 = redis::cmd("RPUSH")
        .arg(queue.dead_key())
        .arg(dead.to_string())
        .query_async(&mut queue.kv().conn(cocov::kv::Db::Queue))
        .await
        .unwrap();
    let waiting = queue.stats().await.unwrap().waiting;
    browser.goto(&t.url("/admin/jobs")).await;
    assert!(
        browser
            .text(".table")
            .await
            .contains("boom: the test made it fail")
    );
    assert!(browser.text(".counters").await.contains("1\nDead letters"));
    browser.check("admin-jobs").await;
    browser.click_and_wait(".table button").await;
    assert!(
        browser
            .current_url()
            .await
            .ends_with("/admin/jobs?notice=retried")
    );
    assert_eq!(queue.stats().await.unwrap().dead, 0);
    assert_eq!(queue.stats().await.unwrap().waiting, waiting + 1);
    browser.check("admin-jobs-retried").await;

    browser.goto(&t.url("/admin/repositories?q=widg")).await;
    assert!(
        browser
            .text(".rows")
            .await
            .contains("https://git.example/widget.git")
    );
    browser.check("admin-repositories").await;

    browser.goto(&t.url("/admin/health")).await;
    let health = browser.text(".rows").await;
    assert_eq!(health.matches("Up").count(), 3, "{health}");
    browser.check("admin-health").await;

    // Sign out: the session ends on the server too.
    browser.click(".user-menu summary").await;
    browser
        .click_and_wait("form[action='/sign-out'] button")
        .await;
    assert!(browser.current_url().await.ends_with("/sign-in"));
    browser.goto(&t.url("/admin")).await;
    assert!(
        browser
            .current_url()
            .await
            .contains("/sign-in?return_to=%2Fadmin")
    );

    assert_eq!(server_failures(&t), Vec::<String>::new());
    browser.close().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_work_without_javascript() {
    let t = start().await;
    account(&t, "root", true).await;
    let repo = seeded_repository(&t, "gadget").await;
    let browser = Browser::without_javascript("no-js").await;
    sign_in(&browser, &t, "root").await;
    assert_eq!(browser.text("h1").await, "Repositories");
    // Search is a plain GET form.
    browser.fill("#q", "gad").await;
    browser.click_and_wait("form.search button").await;
    assert!(browser.current_url().await.contains("q=gad"));
    assert_eq!(browser.count(".repo-card").await, 1);
    browser.check("search").await;
    // The branch switcher's button shows without JavaScript.
    browser.goto(&t.url(&format!("/repos/{repo}"))).await;
    browser.click_and_wait("form.branch-bar button").await;
    let url = browser.current_url().await;
    assert!(url.contains("branch=main"), "{url}");
    browser.check("repository").await;
    // A non-admin sees no administration and gets 403 there.
    account(&t, "bob", false).await;
    browser.click(".user-menu summary").await;
    browser
        .click_and_wait("form[action='/sign-out'] button")
        .await;
    sign_in(&browser, &t, "bob").await;
    assert_eq!(browser.count("a[href='/admin']").await, 0);
    browser.goto(&t.url("/admin/users")).await;
    assert_eq!(browser.text("h1").await, "Not allowed");
    browser.close().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn first_page_load_weight_is_under_150_kb() {
    let t = start().await;
    account(&t, "root", true).await;
    for name in ["alpha", "beta", "gamma"] {
        seeded_repository(&t, name).await;
        // Only one repository may own the seeded shas: give the next one its own.
        sqlx::query(
            "UPDATE commits SET sha = md5(random()::text) || '01234567' WHERE sha IN ($1, $2)",
        )
        .bind(SHA_OLD)
        .bind(SHA_HEAD)
        .execute(&t.app().db)
        .await
        .unwrap();
    }
    let browser = Browser::start("weight").await;
    browser.goto(&t.url("/sign-in")).await;
    let sign_in_page = browser.page_bytes().await;
    sign_in(&browser, &t, "root").await;
    let repositories = browser.page_bytes().await;
    println!(
        "cold page weight: /sign-in {sign_in_page} bytes, / (3 repositories) {repositories} bytes"
    );
    for bytes in [sign_in_page, repositories] {
        // The lower bound proves the stylesheet and script were counted.
        assert!(bytes > 4_000 && bytes <= 150 * 1024, "{bytes} bytes");
    }
    browser.close().await;
    t.shutdown().await;
}

/// A client that keeps nothing: cookies and redirects are handled by the tests.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A urlencoded form body (reqwest's `form` feature is not built).
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Signs in by posting the form as a same-origin browser would; returns the cookie header.
pub(crate) async fn session_cookie(t: &TestApp, login: &str) -> String {
    let response = client()
        .post(t.url("/sign-in"))
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("login", login),
            ("password", PASSWORD),
            ("return_to", "/"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

/// A page's HTML, with a session cookie or without.
pub(crate) async fn page_text(t: &TestApp, path: &str, cookie: Option<&str>) -> String {
    let mut request = client().get(t.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap().text().await.unwrap()
}

/// The form token of a page, read from its hidden field.
pub(crate) async fn form_token(t: &TestApp, cookie: &str, path: &str) -> String {
    let html = page_text(t, path, Some(cookie)).await;
    let start = html
        .find("name=\"csrf_token\" value=\"")
        .expect("a form token")
        + 25;
    html[start..start + 64].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_ui_response_carries_the_security_headers() {
    let t = start().await;
    account(&t, "root", true).await;
    let cookie = session_cookie(&t, "root").await;
    for (path, cookie) in [
        ("/sign-in", None),
        ("/", Some(&cookie)),
        ("/admin/users", Some(&cookie)),
        ("/repos/nope", Some(&cookie)),
    ] {
        let mut request = client().get(t.url(path));
        if let Some(c) = cookie {
            request = request.header("cookie", c);
        }
        let response = request.send().await.unwrap();
        let h = response.headers();
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "{path}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert_eq!(h[CACHE_CONTROL], "no-store", "{path}");
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("<script>") && !body.contains(" style=\""),
            "{path}: nothing inline"
        );
        if path == "/repos/nope" {
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert!(body.contains("<h1>Page not found</h1>"), "an HTML 404");
        }
    }
    // The JSON API keeps its JSON 404.
    let api = client().get(t.url("/v1/nothing")).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    assert!(
        api.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("json")
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_are_hashed_and_cached_for_a_year() {
    let t = start().await;
    let html = page_text(&t, "/sign-in", None).await;
    let start = html.find("href=\"/assets/app.").expect("stylesheet link") + 6;
    let css = &html[start..start + html[start..].find('"').unwrap()];
    let response = client().get(t.url(css)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        response.headers()["content-type"],
        "text/css; charset=utf-8"
    );
    let body = response.bytes().await.unwrap();
    let hash = css.split('.').nth(1).unwrap();
    let digest = hex::encode(sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        &body,
    )));
    assert!(
        digest.starts_with(hash),
        "the URL carries the content's hash"
    );
    // A stale or missing hash is not served (a page never links one).
    for stale in [
        "/assets/app.css",
        "/assets/app.000000000000.css",
        "/assets/%2e%2e%2fCargo.toml",
    ] {
        let response = client().get(t.url(stale)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{stale}");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store", "{stale}");
    }
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gate_sends_visitors_to_sign_in_and_back_only_to_this_site() {
    let t = start().await;
    account(&t, "root", true).await;
    for path in ["/", "/repos/widget?branch=main", "/admin/tokens"] {
        let response = client().get(t.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        let to = response.headers()[LOCATION].to_str().unwrap().to_string();
        let expected: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        assert_eq!(to, format!("/sign-in?return_to={expected}"), "{path}");
    }
    // A forged or expired cookie is no session.
    let response = client()
        .get(t.url("/"))
        .header("cookie", "cocov_session=coa_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // After signing in, return_to leads back, but never to another site.
    for (return_to, expected) in [
        ("/admin/tokens", "/admin/tokens"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ] {
        let response = client()
            .post(t.url("/sign-in"))
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("login", "root"),
                ("password", PASSWORD),
                ("return_to", return_to),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[LOCATION], expected, "{return_to}");
    }
    // Wrong password and unknown login read the same, and the page shows the message.
    let mut locations = Vec::new();
    for login in ["root", "nobody"] {
        let response = client()
            .post(t.url("/sign-in"))
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("login", login),
                ("password", "wrong password"),
                ("return_to", "/"),
            ]))
            .send()
            .await
            .unwrap();
        assert!(response.headers().get(SET_COOKIE).is_none());
        locations.push(response.headers()[LOCATION].to_str().unwrap().to_string());
    }
    assert_eq!(
        locations[0], locations[1],
        "no hint whether the login exists"
    );
    let page = page_text(&t, &locations[0], None).await;
    assert!(page.contains("The login or password is not right."));
    let crafted = page_text(&t, "/sign-in?error=%3Cscript%3Ealert(1)%3C/script%3E", None).await;
    assert!(
        crafted.contains("Signing in failed. Please try again.") && !crafted.contains("alert(1)")
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_site_forms_are_refused() {
    let t = start().await;
    account(&t, "root", true).await;
    let victim = service_token(&t, "deploys").await;
    let cookie = session_cookie(&t, "root").await;
    let token = form_token(&t, &cookie, "/admin/tokens").await;
    let id = victim.id.to_string();
    let revoke = |site: Option<&'static str>, origin: Option<&'static str>, csrf: String| {
        let mut request = client()
            .post(t.url("/admin/tokens"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("action", "revoke"),
                ("token_id", id.as_str()),
                ("csrf_token", csrf.as_str()),
            ]));
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    // A page on another site posting the form (the browser says so), even with a stolen token.
    let attack = revoke(
        Some("cross-site"),
        Some("https://evil.example"),
        token.clone(),
    )
    .await
    .unwrap();
    assert_eq!(attack.status(), StatusCode::FORBIDDEN);
    // Fetch Metadata stripped, Origin from elsewhere.
    let attack = revoke(None, Some("https://evil.example"), token.clone())
        .await
        .unwrap();
    assert_eq!(attack.status(), StatusCode::FORBIDDEN);
    // Same-origin headers but no or a wrong form token (headers stripped or forged by a proxy).
    for wrong in [String::new(), "0".repeat(64)] {
        let attack = revoke(Some("same-origin"), None, wrong).await.unwrap();
        assert_eq!(attack.status(), StatusCode::FORBIDDEN);
        assert!(attack.text().await.unwrap().contains("Request refused"));
    }
    assert_eq!(
        cocov::auth::service_tokens::list(&t.app().db)
            .await
            .unwrap()
            .len(),
        1,
        "nothing revoked"
    );
    // Login CSRF: another site cannot sign the browser into an account.
    let response = client()
        .post(t.url("/sign-in"))
        .header("sec-fetch-site", "cross-site")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("login", "root"), ("password", PASSWORD)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(SET_COOKIE).is_none());
    // The real form works.
    let done = revoke(Some("same-origin"), None, token).await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert!(
        cocov::auth::service_tokens::list(&t.app().db)
            .await
            .unwrap()
            .is_empty()
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_by_role() {
    let t = start().await;
    account(&t, "root", true).await;
    let member_id = account(&t, "member", false).await;
    account(&t, "outsider", false).await;
    let repo = seeded_repository(&t, "private").await;
    sqlx::query(
        "INSERT INTO repository_members (repository_id, user_id, level) \
         SELECT id, $1, 'user' FROM repositories WHERE name = $2",
    )
    .bind(member_id)
    .bind(&repo)
    .execute(&t.app().db)
    .await
    .unwrap();
    let status = |cookie: Option<String>, path: String| {
        let t = &t;
        async move {
            let mut request = client().get(t.url(&path));
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            request.send().await.unwrap().status()
        }
    };
    let root = session_cookie(&t, "root").await;
    let member = session_cookie(&t, "member").await;
    let outsider = session_cookie(&t, "outsider").await;
    for path in [format!("/repos/{repo}"), format!("/repos/{repo}/badges")] {
        assert_eq!(
            status(None, path.clone()).await,
            StatusCode::SEE_OTHER,
            "{path}"
        );
        assert_eq!(
            status(Some(outsider.clone()), path.clone()).await,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert_eq!(
            status(Some(member.clone()), path.clone()).await,
            StatusCode::OK,
            "{path}"
        );
        assert_eq!(
            status(Some(root.clone()), path.clone()).await,
            StatusCode::OK,
            "{path}"
        );
    }
    // The outsider's list does not show it; the member's does.
    assert!(
        !page_text(&t, "/", Some(&outsider))
            .await
            .contains("/repos/private")
    );
    assert!(
        page_text(&t, "/", Some(&member))
            .await
            .contains("/repos/private")
    );
    // Administration: administrators only, reading and acting.
    let admin_pages = [
        "/admin",
        "/admin/users",
        "/admin/tokens",
        "/admin/repositories",
        "/admin/jobs",
        "/admin/health",
    ];
    for path in admin_pages {
        assert_eq!(
            status(Some(member.clone()), path.into()).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            status(Some(root.clone()), path.into()).await,
            StatusCode::OK,
            "{path}"
        );
    }
    let token = form_token(&t, &member, "/").await;
    for (path, fields) in [
        (
            "/admin/users",
            vec![("action", "promote"), ("user_id", "2")],
        ),
        (
            "/admin/tokens",
            vec![("action", "create"), ("description", "mine")],
        ),
        ("/admin/repositories", vec![("repository_id", "1")]),
        (
            "/admin/jobs",
            vec![("job_id", "00000000-0000-0000-0000-000000000000")],
        ),
        (
            "/new",
            vec![("name", "x"), ("git_url", "https://git.example/x.git")],
        ),
    ] {
        let mut fields = fields;
        fields.push(("csrf_token", &token));
        let response = client()
            .post(t.url(path))
            .header("cookie", &member)
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&fields))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "POST {path}");
    }
    let member_row = cocov::auth::user_admin::get(&t.app().db, member_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!member_row.admin, "nothing changed");
    assert!(
        cocov::auth::service_tokens::list(&t.app().db)
            .await
            .unwrap()
            .is_empty()
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn administrators_add_a_repository_by_git_url() {
    let t = start().await;
    account(&t, "root", true).await;
    let cookie = session_cookie(&t, "root").await;
    let token = form_token(&t, &cookie, "/").await;
    let add = |name: &'static str, url: &'static str| {
        let body = form(&[
            ("csrf_token", &token),
            ("name", name),
            ("git_url", url),
            ("default_branch", "trunk"),
        ]);
        client()
            .post(t.url("/new"))
            .header("cookie", &cookie)
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let added = add("service", "https://git.example/service.git")
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let page = added.text().await.unwrap();
    assert!(page.contains("Repository <a href=\"/repos/service\">service</a> was added"));
    assert!(page.contains("crt_"), "the upload token is shown once");
    let repo = cocov::repositories::find_by_name(&t.app().db, "service")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(repo.default_branch, "trunk");
    // A URL the git policy refuses is named on the page and nothing is written.
    let refused = add("local", "--upload-pack=touch /tmp/cocov-web")
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("alert-error"));
    assert!(
        cocov::repositories::find_by_name(&t.app().db, "local")
            .await
            .unwrap()
            .is_none()
    );
    t.shutdown().await;
}
