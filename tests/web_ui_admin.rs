//! The administration pages for organisation secrets, the caches (the shared tool cache and a
//! repository's artifacts in its settings) and repository storage: plain HTTP per route and
//! role (the gate, 403 for the wrong role or level, CSRF refusals, bad input answered with a
//! readable 400 page and nothing written), then a real Chromium performing each action and the
//! database checked after it. Cache items are written through the cache's own store, as the
//! service does for plugins.

use crate::common;

use common::TestApp;
use common::browser::Browser;
use reqwest::StatusCode;
use reqwest::header::LOCATION;

use crate::web_ui::{
    account, client, form, form_token, page_text, seeded_repository, session_cookie, sign_in,
};

/// Item sizes: 3 kB and 1 kB of artifacts, 2 MB and 512 kB of tools.
const ARTIFACTS: [(&str, usize); 2] = [("node_modules.tar.zst", 3072), ("gomodcache", 1024)];
const TOOLS: [(&str, usize); 2] = [
    ("node-v20.11.tar.xz", 2 * 1024 * 1024),
    ("go1.22", 512 * 1024),
];

/// The API role only (the cache's socket belongs to the worker role; the pages need only the
/// catalogue), with a 10 MB quota; `configured`: the cache on and a secrets key (off and none
/// otherwise).
async fn start(configured: bool) -> TestApp {
    TestApp::start_with(move |c| {
        c.server.roles = vec![cocov::config::Role::Api];
        c.cache.enabled = configured;
        c.cache.repository_max_size = 10 * 1024 * 1024;
        if configured {
            c.security.cryptographic_key = "5e".repeat(32);
        } else {
            c.security.cryptographic_key_file = "/nonexistent/cocov-secret.key".into();
        }
    })
    .await
}

async fn repository_id(t: &TestApp, name: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
        .bind(name)
        .fetch_one(&t.app().db)
        .await
        .unwrap()
}

/// Stores items in `zone` through the cache's store; returns their ids in order.
async fn cache_items(t: &TestApp, zone: cocov::cache::Zone, items: &[(&str, usize)]) -> Vec<i64> {
    let store = cocov::cache::CacheStore::from_app(t.app());
    let mut ids = Vec::new();
    for (name, size) in items {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), vec![7u8; *size]).unwrap();
        let item = cocov::cache::NewItem {
            name_hash: format!("hash-{name}"),
            name: name.to_string(),
            mime: "application/x-tar".into(),
            size: *size as u64,
        };
        ids.push(store.write(zone, &item, file.path()).await.unwrap().id);
    }
    ids
}

async fn item_names(t: &TestApp, zone: cocov::cache::Zone) -> Vec<String> {
    let store = cocov::cache::CacheStore::from_app(t.app());
    let mut names: Vec<String> = store
        .list(zone)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    names.sort();
    names
}

async fn org_secrets(t: &TestApp) -> Vec<String> {
    cocov::secrets::list(&t.app().db, cocov::secrets::Scope::Organization)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect()
}

/// The value repository `repository_id` would get for `name`, if it may use it.
async fn value_for(t: &TestApp, repository_id: i64, name: &str) -> Option<String> {
    let cipher = cocov::secrets::Cipher::from_config(&t.app().config.security).unwrap();
    let names = [name.to_string()];
    cocov::secrets::resolve_for_repository(&t.app().db, &cipher, repository_id, &names)
        .await
        .ok()
        .map(|mut values| String::from_utf8(values.remove(name).unwrap()).unwrap())
}

/// Posts a form as a same-origin browser would; the status, `Location` and body.
async fn post(
    t: &TestApp,
    cookie: Option<&str>,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let mut request = client()
        .post(t.url(path))
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(fields));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, location, response.text().await.unwrap())
}

/// [`post`] by a signed-in user, with the form token `token`.
async fn submit(
    t: &TestApp,
    cookie: &str,
    token: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let mut fields = fields.to_vec();
    fields.push(("csrf_token", token));
    post(t, Some(cookie), path, &fields).await
}

async fn get_status(t: &TestApp, cookie: Option<&str>, path: &str) -> (StatusCode, String) {
    let mut request = client().get(t.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let location = response
        .headers()
        .get(LOCATION)
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (response.status(), location)
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_and_caches_answer_each_role_and_refuse_forms_without_their_token() {
    let t = start(true).await;
    account(&t, "root", true).await;
    account(&t, "reader", false).await;
    account(&t, "owner", false).await;
    let repo = seeded_repository(&t, "widget").await;
    common::requests::add_member(&t, &repo, "reader", "user").await;
    common::requests::add_member(&t, &repo, "owner", "admin").await;
    let id = repository_id(&t, &repo).await;
    let artifacts = cache_items(&t, cocov::cache::Zone::Artifacts(id), &ARTIFACTS).await;
    let tools = cache_items(&t, cocov::cache::Zone::Tools, &TOOLS).await;
    let root = session_cookie(&t, "root").await;
    let reader = session_cookie(&t, "reader").await;
    let owner = session_cookie(&t, "owner").await;
    let settings = format!("/repos/{repo}/settings");

    // Reading: anonymous visitors sign in first; only administrators see the admin pages.
    for path in ["/admin/secrets", "/admin/caches", "/admin/secrets?delete=X"] {
        let (status, to) = get_status(&t, None, path).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert!(to.starts_with("/sign-in?return_to="), "{path}: {to}");
        assert_eq!(
            get_status(&t, Some(&reader), path).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(get_status(&t, Some(&root), path).await.0, StatusCode::OK);
    }
    // A reader sees the repository's cache, without the buttons that change it.
    let page = page_text(&t, &settings, Some(&reader)).await;
    assert!(page.contains("node_modules.tar.zst") && page.contains("4 kB</strong> of 10 MB"));
    assert!(!page.contains("value=\"cache_purge\"") && !page.contains("value=\"cache_remove\""));
    let page = page_text(&t, &settings, Some(&owner)).await;
    assert!(page.contains("value=\"cache_purge\"") && page.contains("value=\"cache_remove\""));

    // Acting as a non-administrator (with a valid form token): 403, nothing changes.
    let token = form_token(&t, &reader, &settings).await;
    let tool = tools[0].to_string();
    let artifact = artifacts[0].to_string();
    let refused: [(&str, Vec<(&str, &str)>); 4] = [
        (
            "/admin/secrets",
            vec![("action", "create"), ("name", "TOKEN"), ("value", "v")],
        ),
        ("/admin/caches", vec![("action", "cache_purge")]),
        (
            "/admin/caches",
            vec![("action", "cache_remove"), ("item_id", tool.as_str())],
        ),
        (settings.as_str(), vec![("action", "cache_purge")]),
    ];
    for (path, fields) in &refused {
        let mut fields = fields.clone();
        fields.push(("csrf_token", token.as_str()));
        let (status, _, body) = post(&t, Some(&reader), path, &fields).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "POST {path} {fields:?}");
        assert!(body.contains("Not allowed"), "{body}");
        // Anonymous: to the sign-in page.
        let (status, to, _) = post(&t, None, path, &fields).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "POST {path}");
        assert!(to.starts_with("/sign-in"), "{to}");
    }
    let (status, _, _) = submit(
        &t,
        &reader,
        &token,
        &settings,
        &[("action", "cache_remove"), ("item_id", &artifact)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a reader removes nothing");

    // An administrator's form without its token (or with another session's): refused.
    let root_token = form_token(&t, &root, "/admin/secrets").await;
    for csrf in ["", token.as_str()] {
        for (path, fields) in &refused {
            let mut fields = fields.clone();
            fields.push(("csrf_token", csrf));
            let (status, _, body) = post(&t, Some(&root), path, &fields).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "POST {path} {fields:?}");
            assert!(body.contains("Request refused"), "{body}");
        }
    }
    assert!(org_secrets(&t).await.is_empty());
    assert_eq!(
        item_names(&t, cocov::cache::Zone::Tools).await,
        ["go1.22", "node-v20.11.tar.xz"]
    );
    assert_eq!(
        item_names(&t, cocov::cache::Zone::Artifacts(id)).await,
        ["gomodcache", "node_modules.tar.zst"]
    );

    // The repository's admin removes an item; one already gone is said so; a bad id is a 400.
    let owner_token = form_token(&t, &owner, &settings).await;
    let (status, to, _) = submit(
        &t,
        &owner,
        &owner_token,
        &settings,
        &[("action", "cache_remove"), ("item_id", &artifact)],
    )
    .await;
    assert_eq!(
        (status, to.as_str()),
        (
            StatusCode::SEE_OTHER,
            "/repos/widget/settings?notice=cache_removed"
        )
    );
    assert_eq!(
        item_names(&t, cocov::cache::Zone::Artifacts(id)).await,
        ["gomodcache"]
    );
    let (_, to, _) = submit(
        &t,
        &owner,
        &owner_token,
        &settings,
        &[("action", "cache_remove"), ("item_id", &artifact)],
    )
    .await;
    assert!(to.ends_with("notice=cache_gone"), "{to}");
    let (status, _, body) = submit(
        &t,
        &owner,
        &owner_token,
        &settings,
        &[("action", "cache_remove"), ("item_id", "not-a-number")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("missing a valid id"), "{body}");
    // The administrator's tool form with a bad id: 400, nothing removed.
    let (status, _, _) = submit(
        &t,
        &root,
        &root_token,
        "/admin/caches",
        &[("action", "cache_remove"), ("item_id", "-3")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(item_names(&t, cocov::cache::Zone::Tools).await.len(), 2);
    t.shutdown().await;
}

/// A form's fields, the status expected and a part of the message.
type Case = (Vec<(&'static str, &'static str)>, StatusCode, &'static str);

#[tokio::test(flavor = "multi_thread")]
async fn bad_secret_input_is_answered_with_a_readable_page_and_nothing_is_written() {
    let t = start(true).await;
    account(&t, "root", true).await;
    let root = session_cookie(&t, "root").await;
    let token = form_token(&t, &root, "/admin/secrets").await;
    let send = |fields: Vec<(&'static str, &'static str)>| {
        let (t, root, token) = (&t, root.clone(), token.clone());
        async move { submit(t, &root, &token, "/admin/secrets", &fields).await }
    };
    let cases: [Case; 6] = [
        (
            vec![("action", "create"), ("name", "1PASSWORD"), ("value", "x")],
            StatusCode::BAD_REQUEST,
            "Invalid secret name `1PASSWORD`: use letters, digits and underscores",
        ),
        (
            vec![("action", "create"), ("name", "a-b"), ("value", "x")],
            StatusCode::BAD_REQUEST,
            "Invalid secret name `a-b`",
        ),
        (
            vec![("action", "create"), ("name", "NPM_TOKEN"), ("value", "")],
            StatusCode::BAD_REQUEST,
            "value must not be empty",
        ),
        (
            vec![("action", "replace"), ("name", "MISSING"), ("value", "x")],
            StatusCode::NOT_FOUND,
            "There is no organisation secret called “MISSING”",
        ),
        (
            vec![
                ("action", "grant"),
                ("name", "MISSING"),
                ("repository", "w"),
            ],
            StatusCode::NOT_FOUND,
            "There is no organisation secret called “MISSING”",
        ),
        (
            vec![("action", "delete"), ("name", "MISSING")],
            StatusCode::NOT_FOUND,
            "There is no organisation secret called “MISSING”",
        ),
    ];
    for (fields, status, message) in cases {
        let (got, _, body) = send(fields.clone()).await;
        assert_eq!(got, status, "{fields:?}: {body}");
        assert!(body.contains(message), "{fields:?}: {body}");
        assert!(body.contains("role=\"alert\""), "the message is announced");
        assert!(
            body.contains("<h3 id=\"new-secret\">"),
            "the form is still there"
        );
    }
    assert!(org_secrets(&t).await.is_empty(), "nothing written");

    // A secret; its value never comes back, and its name cannot be added twice.
    let (status, to, _) = send(vec![
        ("action", "create"),
        ("name", "NPM_TOKEN"),
        ("value", "npm-value-0123"),
    ])
    .await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/admin/secrets?notice=created")
    );
    let page = page_text(&t, "/admin/secrets", Some(&root)).await;
    assert!(page.contains("NPM_TOKEN") && !page.contains("npm-value-0123"));
    let (status, _, body) = send(vec![
        ("action", "create"),
        ("name", "npm_token"),
        ("value", "other"),
    ])
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("exists already"), "{body}");
    assert!(
        !body.contains("other</textarea>"),
        "the value is not echoed"
    );
    // Empty replacement, unknown repository, unknown reach: refused, the secret unchanged.
    seeded_repository(&t, "widget").await;
    let widget = repository_id(&t, "widget").await;
    for (fields, message) in [
        (
            vec![("action", "replace"), ("name", "NPM_TOKEN"), ("value", "")],
            "must not be empty",
        ),
        (
            vec![
                ("action", "grant"),
                ("name", "NPM_TOKEN"),
                ("repository", "nope"),
            ],
            "There is no repository called “nope”",
        ),
        (
            vec![
                ("action", "grant"),
                ("name", "NPM_TOKEN"),
                ("repository", " "),
            ],
            "Enter the name of the repository",
        ),
        (
            vec![
                ("action", "reach"),
                ("name", "NPM_TOKEN"),
                ("all_repositories", "maybe"),
            ],
            "Unknown choice of repositories",
        ),
        (
            vec![("action", "rename"), ("name", "NPM_TOKEN")],
            "Unknown action",
        ),
    ] {
        let (status, _, body) = send(fields.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{fields:?}");
        assert!(body.contains(message), "{fields:?}: {body}");
    }
    let grants = cocov::secrets::grants::list(&t.app().db, "NPM_TOKEN")
        .await
        .unwrap();
    assert!(!grants.all_repositories && grants.grants.is_empty());
    assert_eq!(
        value_for(&t, widget, "NPM_TOKEN").await,
        None,
        "not granted"
    );
    // The audit log names the write, never the value.
    let (count, leaked): (i64, bool) = sqlx::query_as(
        "SELECT count(*), bool_or(details::text LIKE '%npm-value%') FROM audit_log \
         WHERE action = 'secret.write' AND target = 'organization:NPM_TOKEN'",
    )
    .fetch_one(&t.app().db)
    .await
    .unwrap();
    assert_eq!((count, leaked), (1, false));
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_cache_or_a_key_the_pages_say_so_and_refuse_their_forms() {
    let t = start(false).await;
    account(&t, "root", true).await;
    let repo = seeded_repository(&t, "widget").await;
    let root = session_cookie(&t, "root").await;
    let settings = format!("/repos/{repo}/settings");
    let page = page_text(&t, "/admin/caches", Some(&root)).await;
    assert!(page.contains("The cache service is disabled"), "{page}");
    assert!(!page.contains("The tool cache is empty"));
    let page = page_text(&t, &settings, Some(&root)).await;
    assert!(page.contains("The cache service is disabled"), "{page}");
    let overview = page_text(&t, "/admin", Some(&root)).await;
    assert!(!overview.contains("Tool cache</span>"), "no counter for it");
    let token = form_token(&t, &root, "/admin/caches").await;
    for path in ["/admin/caches", settings.as_str()] {
        let (status, _, body) = post(
            &t,
            Some(&root),
            path,
            &[("action", "cache_purge"), ("csrf_token", &token)],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(body.contains("disabled in this server"), "{body}");
    }
    // No encryption key: the secrets page warns, and adding one is refused with the reason.
    let page = page_text(&t, "/admin/secrets", Some(&root)).await;
    assert!(
        page.contains("until the server has an encryption key: no secret key"),
        "{page}"
    );
    let (status, _, body) = submit(
        &t,
        &root,
        &token,
        "/admin/secrets",
        &[("action", "create"), ("name", "NPM_TOKEN"), ("value", "v")],
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.contains("Secrets cannot be stored: no secret key"),
        "{body}"
    );
    assert!(org_secrets(&t).await.is_empty());
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_manages_secrets_caches_and_sees_storage() {
    let t = start(true).await;
    account(&t, "root", true).await;
    let repo = seeded_repository(&t, "widget").await;
    let id = repository_id(&t, &repo).await;
    // Archives of 1.5 MB in all (two commits of 768 kB).
    sqlx::query("UPDATE commits SET archive_size = 786432 WHERE repository_id = $1")
        .bind(id)
        .execute(&t.app().db)
        .await
        .unwrap();
    let artifacts = cache_items(&t, cocov::cache::Zone::Artifacts(id), &ARTIFACTS).await;
    let tools = cache_items(&t, cocov::cache::Zone::Tools, &TOOLS).await;
    let browser = Browser::start("admin-pages").await;
    sign_in(&browser, &t, "root").await;

    // The overview counts secrets and the tool cache; the sidebar leads to both pages.
    browser.goto(&t.url("/admin")).await;
    let counters = browser.text(".counters").await;
    assert!(
        counters.contains("0\nSecrets") && counters.contains("2.5 MB\nTool cache"),
        "{counters}"
    );
    browser
        .click_and_wait(".side-nav a[href='/admin/secrets']")
        .await;
    assert_eq!(browser.text("h2").await, "Secrets");
    assert!(
        browser
            .text("main")
            .await
            .contains("No organisation secrets.")
    );

    // Add a secret (for granted repositories only), then grant it to the repository.
    browser.fill("#secret-name", "NPM_TOKEN").await;
    browser.fill("#secret-value", "npm-value-0123").await;
    browser.click_and_wait("button[value=create]").await;
    assert!(browser.current_url().await.ends_with("?notice=created"));
    assert_eq!(org_secrets(&t).await, ["NPM_TOKEN"]);
    assert_eq!(
        value_for(&t, id, "NPM_TOKEN").await,
        None,
        "not granted yet"
    );
    assert!(
        browser
            .text(".secret-rows")
            .await
            .contains("No repository yet")
    );
    browser.click("details.manage summary").await;
    browser.fill("#grant-NPM_TOKEN", "widget").await;
    browser.click_and_wait("button[value=grant]").await;
    assert!(browser.current_url().await.ends_with("?notice=granted"));
    assert_eq!(
        value_for(&t, id, "NPM_TOKEN").await.as_deref(),
        Some("npm-value-0123")
    );
    let row = browser.text(".secret-rows").await;
    assert!(row.contains("Used by widget"), "{row}");
    assert!(
        !browser
            .script(
                "return document.documentElement.outerHTML;",
                serde_json::json!([])
            )
            .await
            .as_str()
            .unwrap()
            .contains("npm-value-0123")
    );

    // Replace its value.
    browser.click("details.manage summary").await;
    browser.fill("#replace-NPM_TOKEN", "npm-value-4567").await;
    browser.check("admin-secrets").await;
    browser.click_and_wait("button[value=replace]").await;
    assert!(browser.current_url().await.ends_with("?notice=replaced"));
    assert_eq!(
        value_for(&t, id, "NPM_TOKEN").await.as_deref(),
        Some("npm-value-4567")
    );
    assert!(browser.text(".secret-rows").await.contains("· changed"));

    // Delete it: the link asks first (a page, no dialog); cancelling keeps it.
    browser.click("details.manage summary").await;
    browser
        .click_and_wait("a[href='/admin/secrets?delete=NPM_TOKEN']")
        .await;
    assert!(browser.text("#confirm-heading").await.contains("NPM_TOKEN"));
    browser.check("admin-secrets-confirm").await;
    browser.click_and_wait(".panel-danger a").await;
    assert_eq!(org_secrets(&t).await, ["NPM_TOKEN"]);
    assert_eq!(browser.count("#confirm-heading").await, 0);
    browser
        .goto(&t.url("/admin/secrets?delete=NPM_TOKEN"))
        .await;
    browser.click_and_wait("button[value=delete]").await;
    assert!(browser.current_url().await.ends_with("?notice=deleted"));
    assert!(org_secrets(&t).await.is_empty());

    // The repository's caches in its settings: the total against the quota, one removed,
    // then all purged.
    browser
        .goto(&t.url(&format!("/repos/{repo}/settings")))
        .await;
    assert!(
        browser
            .text(".cache-usage")
            .await
            .contains("4 kB of 10 MB used")
    );
    let table = browser
        .text("section[aria-labelledby=cache-heading] .cache-table")
        .await;
    assert!(
        table.contains("node_modules.tar.zst")
            && table.contains("3 kB")
            && table.contains("application/x-tar · local"),
        "{table}"
    );
    browser
        .script(
            "document.getElementById('cache-heading').scrollIntoView();",
            serde_json::json!([]),
        )
        .await;
    browser.check("repository-settings-caches").await;
    browser
        .click_and_wait(&format!(
            "form:has(input[name=item_id][value='{}']) button",
            artifacts[1]
        ))
        .await;
    assert!(
        browser
            .current_url()
            .await
            .ends_with("?notice=cache_removed")
    );
    assert_eq!(
        item_names(&t, cocov::cache::Zone::Artifacts(id)).await,
        ["node_modules.tar.zst"]
    );
    assert!(
        browser
            .text(".cache-usage")
            .await
            .contains("3 kB of 10 MB used")
    );
    browser.click_and_wait("button[value=cache_purge]").await;
    assert!(
        browser
            .current_url()
            .await
            .ends_with("?notice=cache_purged")
    );
    assert!(
        item_names(&t, cocov::cache::Zone::Artifacts(id))
            .await
            .is_empty()
    );
    assert!(
        browser
            .text("section[aria-labelledby=cache-heading]")
            .await
            .contains("The cache is empty.")
    );
    let cache_size: i64 = sqlx::query_scalar("SELECT cache_size FROM repositories WHERE id = $1")
        .bind(id)
        .fetch_one(&t.app().db)
        .await
        .unwrap();
    assert_eq!(cache_size, 0);

    // The shared tool cache: one removed, then purged.
    browser.goto(&t.url("/admin/caches")).await;
    assert!(
        browser
            .text(".storage-total")
            .await
            .contains("2 items taking 2.5 MB")
    );
    assert_eq!(browser.count(".cache-table tbody tr").await, 2);
    browser.check("admin-caches").await;
    browser
        .click_and_wait(&format!(
            "form:has(input[name=item_id][value='{}']) button",
            tools[1]
        ))
        .await;
    assert!(browser.current_url().await.ends_with("?notice=removed"));
    assert_eq!(
        item_names(&t, cocov::cache::Zone::Tools).await,
        ["node-v20.11.tar.xz"]
    );
    browser.click_and_wait("button[value=cache_purge]").await;
    assert!(browser.current_url().await.ends_with("?notice=purged"));
    assert!(item_names(&t, cocov::cache::Zone::Tools).await.is_empty());
    assert!(
        browser
            .text("main")
            .await
            .contains("The tool cache is empty.")
    );
    let purged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action IN ('cache.evict_tool', 'cache.purge_tools', 'cache.evict', 'cache.purge')",
    )
    .fetch_one(&t.app().db)
    .await
    .unwrap();
    assert_eq!(purged, 4, "each removal is audited");

    // Storage per repository and in all. Another repository stores nothing.
    let gadget = cocov::repositories::NewRepository {
        name: "gadget".into(),
        description: None,
        default_branch: "main".into(),
        source: cocov::repositories::Source::GitUrl("https://git.example/gadget.git".into()),
    };
    let system = cocov::audit::AuditActor::system();
    let https = ["https".to_string()];
    cocov::repositories::create(&t.app().db, &gadget, &https, &system)
        .await
        .unwrap();
    cache_items(&t, cocov::cache::Zone::Artifacts(id), &ARTIFACTS[..1]).await;
    browser.goto(&t.url("/admin/repositories")).await;
    let total = browser.text(".storage-total").await;
    assert!(
        total.contains("1.5 MB of commit archives and 3 kB of cached artifacts"),
        "{total}"
    );
    let rows = browser.text(".rows").await.to_lowercase();
    let widget = &rows[rows.find("widget").unwrap()..];
    assert!(widget.contains("archives\n1.5 mb\ncache\n3 kb"), "{rows}");
    let gadget = &rows[rows.find("gadget").unwrap()..rows.find("widget").unwrap()];
    assert!(gadget.contains("archives\n0 b\ncache\n0 b"), "{rows}");
    browser.check("admin-repositories").await;
    browser.close().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_secret_is_confirmed_without_javascript() {
    let t = start(true).await;
    account(&t, "root", true).await;
    let cipher = cocov::secrets::Cipher::from_config(&t.app().config.security).unwrap();
    let scope = cocov::secrets::Scope::Organization;
    cocov::secrets::put(&t.app().db, &cipher, scope, "DEPLOY_KEY", b"k", None)
        .await
        .unwrap();
    let browser = Browser::without_javascript("admin-pages-nojs").await;
    sign_in(&browser, &t, "root").await;
    browser.goto(&t.url("/admin/secrets")).await;
    browser.click("details.manage summary").await;
    browser
        .click_and_wait("a[href='/admin/secrets?delete=DEPLOY_KEY']")
        .await;
    assert!(
        browser
            .text("#confirm-heading")
            .await
            .contains("DEPLOY_KEY")
    );
    assert_eq!(
        org_secrets(&t).await,
        ["DEPLOY_KEY"],
        "asking deletes nothing"
    );
    browser.click_and_wait("button[value=delete]").await;
    assert!(browser.current_url().await.ends_with("?notice=deleted"));
    assert!(org_secrets(&t).await.is_empty());
    browser.check("admin-secrets-deleted").await;
    browser.close().await;
    t.shutdown().await;
}
