//! Adding repositories: the GitHub organisation's list (`GET /v1/repositories/$org_repos`,
//! `POST …/$org_repos/update`) against the real daemon, worker, PostgreSQL and Redis with the
//! fake GitHub (installation token, `Link` paging): who may call them, the first read that
//! starts a refresh and reports `updating` until the job stored the list, pages of 50 sorted
//! by name, trigram search, present/absent, a refresh GitHub refuses that ends `failed` instead
//! of `updating` forever, the marker's expiry, and the 409 of a standalone instance. Then the
//! add page `/new` through HTTP (roles, CSRF, the loading state without JavaScript) and a real
//! Chromium (GitHub mode: refresh, search, add, land on the repository; standalone: the git
//! URL form), each page checked and screenshotted.

use crate::common;

use std::time::Duration;

use crate::web_ui::{client as no_redirects, session_cookie};
use common::TestApp;
use common::browser::Browser;
use common::fake_github::{AuthKind, FakeGithub, FakeRepo};
use reqwest::StatusCode;
use serde_json::{Value, json};

const LIST: &str = "/v1/repositories/$org_repos";
const UPDATE: &str = "/v1/repositories/$org_repos/update";

/// The daemon (every role, so the refresh job runs) in GitHub mode with the fake's
/// organisation: `repo_1` … `repo_60` and `Widgets`, created a day apart (GitHub lists them
/// newest first), three a page.
async fn github_env(adjust: impl FnOnce(&mut cocov::config::Config)) -> (FakeGithub, TestApp) {
    let fake = FakeGithub::start().await;
    fake.set_page_size(30);
    for n in 1..=60 {
        fake.add_repo(
            FakeRepo::new(1000 + n, &format!("repo_{n}"))
                .times(&format!("2024-03-{:02}T10:00:00Z", n % 28 + 1), None),
        );
    }
    fake.add_repo(
        FakeRepo::new(2000, "Widgets")
            .description("Widgets & gadgets")
            .times("2023-05-01T08:00:00Z", Some("2025-01-02T03:04:05Z")),
    );
    let github = fake.config();
    let t = TestApp::start_with(move |c| {
        c.github = github;
        adjust(c);
    })
    .await;
    (fake, t)
}

async fn get(t: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = t.client.get(t.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(t: &TestApp, path: &str, token: Option<&str>, body: Option<Value>) -> StatusCode {
    let mut request = t.client.post(t.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status()
}

/// Polls the list until its status is `want`.
async fn list_when(t: &TestApp, token: &str, query: &str, want: &str) -> Value {
    common::eventually(
        &format!("the organisation list to be {want}"),
        Duration::from_secs(30),
        || async {
            let (status, body) = get(t, &format!("{LIST}{query}"), Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            (body["status"] == want).then_some(body)
        },
    )
    .await
}

fn names(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

async fn service_token(t: &TestApp) -> String {
    let system = cocov::audit::AuditActor::system();
    cocov::auth::service_tokens::create(&t.app().db, "CI", None, &system)
        .await
        .unwrap()
        .1
}

#[tokio::test(flavor = "multi_thread")]
async fn the_organisation_list_is_fetched_paged_searched_and_marked() {
    let (fake, t) = github_env(|_| {}).await;
    let admin = t.user_token("root", true).await;
    let user = t.user_token("alice", false).await;
    let service = service_token(&t).await;

    // Registering repositories is for administrators and service tokens; so is the list.
    assert_eq!(get(&t, LIST, None).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = get(&t, LIST, Some(&user)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "auth.forbidden", "{body}");
    assert_eq!(post(&t, UPDATE, None, None).await, StatusCode::UNAUTHORIZED);
    // Not `DELETE /v1/repositories/{name}` for a repository named `$org_repos`.
    let delete = t
        .client
        .delete(t.url(LIST))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(delete.headers()["allow"], "GET");
    assert_eq!(
        post(&t, UPDATE, Some(&user), None).await,
        StatusCode::FORBIDDEN
    );
    assert!(
        fake.calls_to("/orgs/acme/repos").is_empty(),
        "refused callers start nothing"
    );

    // The first read finds nothing stored: it queues the refresh and says so.
    let (status, body) = get(&t, LIST, Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "updating"}));
    let first = list_when(&t, &admin, "", "ok").await;
    let calls = fake.calls_to("/orgs/acme/repos");
    assert_eq!(
        calls.len(),
        3,
        "61 repositories, 30 a page: every page read"
    );
    assert!(
        calls
            .iter()
            .all(|c| matches!(c.auth, AuthKind::Installation(_))),
        "{calls:?}"
    );

    // 50 a page, sorted by name whatever GitHub's order (newest first).
    assert_eq!(first["total_pages"], 2);
    assert_eq!(first["current_page"], 1);
    assert!(first.get("prev_page").is_none());
    assert_eq!(
        first["next_page"],
        format!(
            "{}/v1/repositories/$org_repos?page=2",
            t.app().config.server.ui_base_url
        )
    );
    let page1 = names(&first);
    assert_eq!(page1.len(), 50);
    let mut sorted = page1.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(page1, sorted);
    assert_eq!(&page1[..3], ["repo_1", "repo_10", "repo_11"]);
    let item = &first["items"][0];
    assert_eq!(
        item,
        &json!({"name": "repo_1", "description": null, "created_at": "2024-03-02T10:00:00Z",
                "pushed_at": null, "status": "absent"})
    );
    let last_updated = first["last_updated"].as_str().unwrap().to_string();
    let (_, second) = get(&t, &format!("{LIST}?page=2"), Some(&admin)).await;
    let page2 = names(&second);
    assert_eq!(page2.len(), 11);
    assert_eq!(page2.last().unwrap(), "Widgets");
    assert!(second.get("next_page").is_none());
    assert!(
        second["prev_page"]
            .as_str()
            .unwrap()
            .ends_with("/v1/repositories/$org_repos?page=1")
    );
    let widgets = &second["items"][10];
    assert_eq!(widgets["description"], "Widgets & gadgets");
    assert_eq!(widgets["pushed_at"], "2025-01-02T03:04:05Z");
    let (_, past_the_end) = get(&t, &format!("{LIST}?page=9"), Some(&admin)).await;
    assert_eq!(past_the_end["items"], json!([]));
    let (status, body) = get(&t, &format!("{LIST}?page=0"), Some(&admin)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "paging.invalid_page");

    // Search ranks by trigram similarity, best first; the search stays in the page links.
    let (_, found) = get(&t, &format!("{LIST}?search_term=rep%202"), Some(&admin)).await;
    assert_eq!(names(&found)[0], "repo_2", "{found}");
    assert_eq!(found["total_pages"], 1);
    let (_, found) = get(&t, &format!("{LIST}?search_term=widget"), Some(&admin)).await;
    assert_eq!(names(&found), ["Widgets"]);
    let (_, none) = get(&t, &format!("{LIST}?search_term=zzzz"), Some(&admin)).await;
    assert_eq!(
        (none["items"].clone(), none["total_pages"].clone()),
        (json!([]), json!(0))
    );

    // Added here → present; service tokens read the list too.
    let created = post(
        &t,
        "/v1/repositories",
        Some(&service),
        Some(json!({"name": "repo_2"})),
    );
    assert_eq!(created.await, StatusCode::CREATED);
    let (status, found) = get(&t, &format!("{LIST}?search_term=repo_2"), Some(&service)).await;
    assert_eq!(status, StatusCode::OK);
    let marks: Vec<(String, String)> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().into(),
                i["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(marks[0], ("repo_2".to_string(), "present".to_string()));
    assert!(marks[1..].iter().all(|(_, s)| s == "absent"), "{marks:?}");

    // A refresh picks up a new repository; the stored list stays readable meanwhile.
    fake.add_repo(FakeRepo::new(3000, "zeta").times("2026-01-01T00:00:00Z", None));
    assert_eq!(
        post(&t, UPDATE, Some(&admin), None).await,
        StatusCode::NO_CONTENT
    );
    let refreshed = common::eventually("the refreshed list", Duration::from_secs(30), || async {
        let (_, body) = get(&t, &format!("{LIST}?page=2"), Some(&admin)).await;
        assert_eq!(
            body["status"], "ok",
            "a refresh never hides the stored list"
        );
        (body["last_updated"] != last_updated.as_str() && body["updating"] == false).then_some(body)
    })
    .await;
    assert_eq!(names(&refreshed).last().unwrap(), "zeta");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_github_refuses_ends_failed_not_updating() {
    let (fake, t) = github_env(|_| {}).await;
    let admin = t.user_token("root", true).await;
    // A refusal (not an outage): the job is given up at once.
    fake.fail_next("/orgs/acme/repos", 1, 403);
    assert_eq!(get(&t, LIST, Some(&admin)).await.1["status"], "updating");
    let failed = list_when(&t, &admin, "", "failed").await;
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains("403"), "{message}");
    // Reading again does not hammer GitHub while the failure stands.
    let calls = fake.calls_to("/orgs/acme/repos").len();
    assert_eq!(get(&t, LIST, Some(&admin)).await.1["status"], "failed");
    assert_eq!(fake.calls_to("/orgs/acme/repos").len(), calls);
    // "Refresh now" forgets it and reads the list.
    assert_eq!(
        post(&t, UPDATE, Some(&admin), None).await,
        StatusCode::NO_CONTENT
    );
    let ok = list_when(&t, &admin, "", "ok").await;
    assert_eq!(ok["total_pages"], 2);
    assert!(ok.get("last_refresh_error").is_none());

    // A later refresh that fails keeps the stored list and says why.
    fake.fail_next("/orgs/acme/repos", 1, 404);
    assert_eq!(
        post(&t, UPDATE, Some(&admin), None).await,
        StatusCode::NO_CONTENT
    );
    let kept = common::eventually("the refresh to fail", Duration::from_secs(30), || async {
        let (_, body) = get(&t, LIST, Some(&admin)).await;
        body.get("last_refresh_error").is_some().then_some(body)
    })
    .await;
    assert_eq!(kept["status"], "ok");
    assert_eq!(kept["updating"], false);
    assert_eq!(names(&kept).len(), 50);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_nobody_runs_stops_counting_as_running() {
    // No worker: the queued refresh never runs, as when its worker died.
    let (fake, t) = github_env(|c| c.server.roles = vec![cocov::config::Role::Api]).await;
    let admin = t.user_token("root", true).await;
    assert_eq!(get(&t, LIST, Some(&admin)).await.1["status"], "updating");
    let app = t.app();
    let marker = app.kv.key("github_org_repos:updating");
    let mut cache = app.kv.conn(cocov::kv::Db::Cache);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&marker)
        .query_async(&mut cache)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= cocov::org_repos::UPDATING_TTL.as_secs() as i64,
        "the marker expires by itself (TTL {ttl})"
    );
    assert_eq!(queued_refreshes(&t).await, 1);
    // While it stands, reads and refresh requests queue nothing more.
    get(&t, LIST, Some(&admin)).await;
    assert_eq!(
        post(&t, UPDATE, Some(&admin), None).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(queued_refreshes(&t).await, 1);
    // Once it expired (made to now), the next read queues the refresh again.
    let _: () = redis::cmd("DEL")
        .arg(&marker)
        .query_async(&mut cache)
        .await
        .unwrap();
    assert_eq!(get(&t, LIST, Some(&admin)).await.1["status"], "updating");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&marker)
        .query_async(&mut cache)
        .await
        .unwrap();
    assert!(ttl > 0);
    assert_eq!(queued_refreshes(&t).await, 2);
    assert!(fake.calls_to("/orgs/acme/repos").is_empty());
    t.shutdown().await;
}

/// Refresh jobs waiting in the queue's stream.
async fn queued_refreshes(t: &TestApp) -> usize {
    let queue = &t.app().queue;
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(queue.stream_key())
        .arg("-")
        .arg("+")
        .query_async(&mut queue.kv().conn(cocov::kv::Db::Queue))
        .await
        .unwrap();
    entries
        .iter()
        .filter(|(_, fields)| {
            fields
                .iter()
                .any(|f| f.contains(cocov::org_repos::REFRESH_JOB))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standalone_instance_has_no_organisation_list() {
    let t = TestApp::start().await;
    let admin = t.user_token("root", true).await;
    let user = t.user_token("alice", false).await;
    let (status, body) = get(&t, LIST, Some(&admin)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "github.not_configured");
    assert!(body["message"].as_str().unwrap().contains("git URL"));
    assert_eq!(
        post(&t, UPDATE, Some(&admin), None).await,
        StatusCode::CONFLICT
    );
    assert_eq!(get(&t, LIST, Some(&user)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        post(&t, UPDATE, Some(&user), None).await,
        StatusCode::FORBIDDEN
    );
    t.shutdown().await;
}

fn local_accounts_on(c: &mut cocov::config::Config) {
    c.accounts.local = cocov::config::LocalAccounts::On;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_add_page_is_for_administrators_and_loads_without_javascript() {
    let (_fake, t) = github_env(|c| {
        c.server.roles = vec![cocov::config::Role::Api];
        local_accounts_on(c);
    })
    .await;
    crate::web_ui::account(&t, "root", true).await;
    crate::web_ui::account(&t, "alice", false).await;
    let root = session_cookie(&t, "root").await;
    let alice = session_cookie(&t, "alice").await;

    let anonymous = no_redirects().get(t.url("/new")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers()["location"], "/sign-in?return_to=%2Fnew");
    let page = |cookie: &str| {
        no_redirects()
            .get(t.url("/new"))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(page(&alice).await.unwrap().status(), StatusCode::FORBIDDEN);
    let home = no_redirects()
        .get(t.url("/"))
        .header("cookie", &alice)
        .send()
        .await
        .unwrap();
    assert!(
        !home.text().await.unwrap().contains("href=\"/new\""),
        "no add button for alice"
    );
    let home = no_redirects()
        .get(t.url("/"))
        .header("cookie", &root)
        .send()
        .await
        .unwrap();
    assert!(home.text().await.unwrap().contains("href=\"/new\""));

    // No worker here: the list stays loading, with a live region and a plain reload link.
    let loading = page(&root).await.unwrap();
    assert_eq!(loading.status(), StatusCode::OK);
    let html = loading.text().await.unwrap();
    assert!(html.contains("Loading repositories"), "{html}");
    assert!(html.contains("id=\"org-list\" data-live=\"3\""));
    assert!(
        html.contains("<a href=\"/new\">Reload the page</a>"),
        "{html}"
    );

    // Forms: the administrator's CSRF token is required, others are refused.
    let start = html.find("name=\"csrf_token\" value=\"").unwrap() + 25;
    let token = html[start..start + 64].to_string();
    let send = |cookie: &str, body: String| {
        no_redirects()
            .post(t.url("/new"))
            .header("cookie", cookie)
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let forged = send(&root, "action=refresh&csrf_token=x".into())
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let member = send(
        &alice,
        format!("action=add&name=Widgets&csrf_token={token}"),
    );
    assert_eq!(member.await.unwrap().status(), StatusCode::FORBIDDEN);
    let unknown = send(&root, format!("action=add&name=nope&csrf_token={token}"));
    let unknown = unknown.await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let html = unknown.text().await.unwrap();
    assert!(
        html.contains("Failed adding the repository “nope”"),
        "{html}"
    );
    assert!(
        cocov::repositories::find_by_name(&t.app().db, "Widgets")
            .await
            .unwrap()
            .is_none()
    );
    let refresh = send(&root, format!("action=refresh&q=wid&csrf_token={token}"));
    let refresh = refresh.await.unwrap();
    assert_eq!(refresh.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        refresh.headers()["location"],
        "/new?q=wid&notice=refreshing"
    );

    // Without JavaScript the loading notice's link is the way to look again.
    let browser = Browser::without_javascript("add-repository").await;
    crate::web_ui::sign_in(&browser, &t, "root").await;
    browser.goto(&t.url("/new")).await;
    assert!(
        browser
            .text("#org-list")
            .await
            .contains("Loading repositories")
    );
    browser.check("github-loading").await;
    browser.click_and_wait("#org-list a[href='/new']").await;
    assert_eq!(browser.current_url().await, t.url("/new"));
    browser.close().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_adds_an_organisation_repository_in_the_browser() {
    let (fake, t) = github_env(local_accounts_on).await;
    crate::web_ui::account(&t, "root", true).await;
    let browser = Browser::start("add-repository").await;
    crate::web_ui::sign_in(&browser, &t, "root").await;
    browser.click_and_wait("a[href='/new']").await;
    assert!(browser.current_url().await.ends_with("/new"));
    // The page loads the list by itself (app.js reloads the live region).
    common::eventually("the list in the page", Duration::from_secs(30), || async {
        (browser.count("#org-list .row").await == 50).then_some(())
    })
    .await;
    assert!(
        browser
            .text("#org-list")
            .await
            .contains("This list was last updated just now")
    );
    browser.check("github").await;
    // 61 repositories, 50 a page.
    assert!(browser.text("nav.pager").await.contains("Page 1 of 2"));
    browser.click_and_wait("nav.pager a[rel=next]").await;
    assert!(browser.current_url().await.ends_with("/new?q=&page=2"));
    assert_eq!(browser.count("#org-list .row").await, 11);

    // Refresh now: the new repository shows once the job is done.
    fake.add_repo(FakeRepo::new(3000, "gadgets").description("Gadgets"));
    browser
        .click_and_wait("form:has(input[name=action][value=refresh]) button")
        .await;
    assert!(browser.current_url().await.contains("notice=refreshing"));
    assert!(
        browser
            .text(".alert-success")
            .await
            .contains("being read again")
    );
    common::eventually("the refreshed list", Duration::from_secs(30), || async {
        browser.goto(&t.url("/new?q=gadget")).await;
        (browser.count("#org-list .row").await == 1).then_some(())
    })
    .await;
    assert!(
        browser
            .text("#org-list .row-title")
            .await
            .contains("gadgets")
    );

    // The search form (a plain GET form).
    browser.goto(&t.url("/new")).await;
    browser.fill("#q", "widget").await;
    browser
        .click_and_wait("form[role=search] button[type=submit]")
        .await;
    assert!(browser.current_url().await.contains("q=widget"));
    assert_eq!(browser.count("#org-list .row").await, 1);
    assert!(
        browser
            .text("#org-list .row")
            .await
            .contains("Widgets & gadgets")
    );
    browser.check("github-search").await;

    browser
        .click_and_wait("form:has(input[name=name][value='Widgets']) button[type=submit]")
        .await;
    assert_eq!(browser.current_url().await, t.url("/repos/Widgets"));
    browser.check("added").await;
    let repo = cocov::repositories::find_by_name(&t.app().db, "Widgets")
        .await
        .unwrap()
        .expect("added");
    assert_eq!(repo.github_id, Some(2000));

    browser.goto(&t.url("/new?q=widget")).await;
    assert!(
        browser
            .text("#org-list .row")
            .await
            .contains("Already added")
    );
    browser.close().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standalone_administrator_adds_by_git_url_in_the_browser() {
    let t = crate::web_ui::start().await;
    crate::web_ui::account(&t, "root", true).await;
    let browser = Browser::start("add-repository").await;
    crate::web_ui::sign_in(&browser, &t, "root").await;
    assert!(browser.text("main").await.contains("No repositories yet"));
    browser.click_and_wait(".page-head a[href='/new']").await;
    browser.check("standalone").await;
    browser.fill("#add-name", "service").await;
    browser
        .fill("#add-url", "https://git.example/service.git")
        .await;
    browser
        .click_and_wait("form[action='/new'] button[type=submit]")
        .await;
    assert!(
        browser
            .text(".alert-success")
            .await
            .contains("service was added")
    );
    assert!(browser.text("code.secret").await.starts_with("crt_"));
    browser.check("standalone-added").await;
    browser.close().await;
    t.shutdown().await;
}
