//! Accounts against the real daemon: local sign-in (Argon2id, generic errors, rate limits per
//! account and per address), the session cookie and its CSRF defence, sign-out, idle and
//! absolute expiry, one-time sign-in links and passwords from the CLI, personal tokens and
//! user administration, each route for each role.

use crate::common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

async fn local_user(t: &TestApp, login: &str, admin: bool) -> i64 {
    let pool = &t.app().db;
    let phc = cocov::auth::password::hash(PASSWORD).await.unwrap();
    let actor = cocov::audit::AuditActor::system();
    if !admin {
        let _ = cocov::auth::users::create(pool, "first-admin", true, &actor).await;
    }
    cocov::auth::users::create_with_password(pool, login, admin, Some(&phc), &actor)
        .await
        .unwrap()
        .id
}

/// A request with optional bearer token, session cookie and extra headers.
struct Call<'a> {
    method: Method,
    path: &'a str,
    bearer: Option<&'a str>,
    cookie: Option<&'a str>,
    headers: Vec<(&'static str, &'a str)>,
    body: Option<Value>,
}

impl<'a> Call<'a> {
    fn new(method: Method, path: &'a str) -> Self {
        Call {
            method,
            path,
            bearer: None,
            cookie: None,
            headers: Vec::new(),
            body: None,
        }
    }
    fn bearer(mut self, token: &'a str) -> Self {
        self.bearer = Some(token);
        self
    }
    fn cookie(mut self, token: &'a str) -> Self {
        self.cookie = Some(token);
        self
    }
    fn header(mut self, name: &'static str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }
    fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    async fn send(self, t: &TestApp) -> reqwest::Response {
        let mut request = t.client.request(self.method, t.url(self.path));
        if let Some(token) = self.bearer {
            request = request.header("authorization", format!("bearer {token}"));
        }
        if let Some(token) = self.cookie {
            request = request.header("cookie", format!("theme=dark; cocov_session={token}"));
        }
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = self.body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }
    async fn answer(self, t: &TestApp) -> (StatusCode, Value) {
        let response = self.send(t).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

async fn sign_in(t: &TestApp, login: &str, password: &str) -> reqwest::Response {
    Call::new(Method::POST, "/auth/local")
        .json(json!({"login": login, "password": password}))
        .send(t)
        .await
}

/// Signs in and returns the session token and the Set-Cookie header.
async fn session(t: &TestApp, login: &str) -> (String, String) {
    let response = sign_in(t, login, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    (body["token"].as_str().unwrap().to_string(), cookie)
}

#[tokio::test(flavor = "multi_thread")]
async fn local_sign_in_sets_a_session_cookie_that_works_until_sign_out() {
    let t = TestApp::start().await;
    local_user(&t, "alice", false).await;

    let response = sign_in(&t, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["name"], "alice");
    assert_eq!(body["admin"], false);
    let token = body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("coa_"), "{token}");
    assert!(
        cookie.starts_with(&format!("cocov_session={token}")),
        "{cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    // Stored hashed only.
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_tokens WHERE token_hash = $1 AND kind = 'auth'",
    )
    .bind(cocov::auth::tokens::hash(&token))
    .fetch_one(&t.app().db)
    .await
    .unwrap();
    assert_eq!(stored, 1);

    // The cookie authenticates reads, and the token still works as a bearer for API clients.
    let (status, me) = Call::new(Method::GET, "/v1/me")
        .cookie(&token)
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["login"], "alice");
    let (status, _) = Call::new(Method::GET, "/v1/me")
        .bearer(&token)
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::OK);

    // Signing out from the page ends the session: the next request is a 401.
    let response = Call::new(Method::POST, "/auth/logout")
        .cookie(&token)
        .header("sec-fetch-site", "same-origin")
        .send(&t)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (status, body) = Call::new(Method::GET, "/v1/me")
        .cookie(&token)
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "auth.invalid_token");
    let (status, _) = Call::new(Method::GET, "/v1/me")
        .bearer(&token)
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_cookie_cannot_be_used_cross_site() {
    let t = TestApp::start().await;
    local_user(&t, "alice", false).await;
    let (token, _) = session(&t, "alice").await;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM user_tokens WHERE kind = 'personal'")
            .fetch_one(&t.app().db)
            .await
            .unwrap()
    };
    let before = count().await;
    let create = json!({"name": "planted"});
    // The attack: a page elsewhere makes the browser POST with its cookie.
    for (what, headers) in [
        (
            "fetch metadata says cross-site",
            vec![("sec-fetch-site", "cross-site")],
        ),
        (
            "same-site is not same-origin",
            vec![("sec-fetch-site", "same-site")],
        ),
        ("a foreign Origin", vec![("origin", "https://evil.example")]),
        ("an opaque Origin", vec![("origin", "null")]),
        ("no provenance at all", vec![]),
    ] {
        let mut call = Call::new(Method::POST, "/v1/me/tokens")
            .cookie(&token)
            .json(create.clone());
        for (name, value) in headers {
            call = call.header(name, value);
        }
        let (status, body) = call.answer(&t).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
        assert_eq!(body["code"], "auth.csrf", "{what}");
    }
    assert_eq!(count().await, before, "nothing was created");
    // A cross-site sign-out is refused too, and the session survives it.
    let (status, _) = Call::new(Method::POST, "/auth/logout")
        .cookie(&token)
        .header("sec-fetch-site", "cross-site")
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        Call::new(Method::GET, "/v1/me")
            .cookie(&token)
            .answer(&t)
            .await
            .0,
        StatusCode::OK
    );

    // The site's own pages pass: by fetch metadata, or by an Origin that is this site.
    let (status, body) = Call::new(Method::POST, "/v1/me/tokens")
        .cookie(&token)
        .header("sec-fetch-site", "same-origin")
        .json(create.clone())
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let origin = t.base.clone();
    let (status, body) = Call::new(Method::POST, "/v1/me/tokens")
        .cookie(&token)
        .header("origin", &origin)
        .json(create.clone())
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // An API client with a header is not subject to the check.
    let (status, _) = Call::new(Method::POST, "/v1/me/tokens")
        .bearer(&token)
        .json(create)
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Only sessions travel in the cookie.
    let personal = t.user_token("carol", false).await;
    let (status, _) = Call::new(Method::GET, "/v1/me")
        .cookie(&personal)
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A login form posted from another site is refused (login CSRF).
    let (status, body) = Call::new(Method::POST, "/auth/local")
        .header("sec-fetch-site", "cross-site")
        .json(json!({"login": "alice", "password": PASSWORD}))
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_do_not_tell_which_logins_exist_and_failures_are_limited() {
    let t = TestApp::start_with(|c| {
        c.accounts.login_failures_per_account = 3;
        c.accounts.login_failures_per_address = 8;
    })
    .await;
    local_user(&t, "alice", false).await;
    // A user with no password (e.g. made for a token only) cannot sign in with any password.
    t.user_token("tokens-only", false).await;

    let refusal = |login: &'static str, password: &'static str| {
        let t = &t;
        async move {
            let response = sign_in(t, login, password).await;
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let wrong = refusal("alice", "not the password").await;
    let unknown = refusal("nobody", "not the password").await;
    let no_password = refusal("tokens-only", "not the password").await;
    for (status, body) in [&wrong, &unknown, &no_password] {
        assert_eq!(*status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body, &wrong.1, "every refusal reads the same");
    }
    assert_eq!(wrong.1["code"], "session.invalid_credentials");

    // Missing fields are named.
    let (status, body) = Call::new(Method::POST, "/auth/local")
        .json(json!({"login": "alice"}))
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "session.no_password");

    // Two more failures for alice reach the per-account limit: the right password is refused
    // too, with Retry-After, until the window passes.
    refusal("alice", "guess 2").await;
    refusal("Alice", "guess 3").await;
    let response = sign_in(&t, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "session.rate_limited"
    );
    // A login that does not exist is limited the same way.
    refusal("nobody", "x2").await;
    refusal("nobody", "x3").await;
    assert_eq!(
        refusal("nobody", "x4").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );

    // The address has now failed 8 times (3 alice, 3 nobody, 1 tokens-only, and 1 more):
    // spraying other logins from it is refused as well.
    refusal("someone-else", "x").await;
    assert_eq!(
        refusal("yet-another", "x").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Clearing the window (as time would) lets alice in again.
    t.redis.kv.delete_all_prefixed().await.unwrap();
    assert_eq!(
        sign_in(&t, "alice", PASSWORD).await.status(),
        StatusCode::OK
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_end_when_idle_or_too_old_and_cookies_are_secure_over_https() {
    let t = TestApp::start_with(|c| {
        c.server.ui_base_url = "https://cocov.example".into();
        c.accounts.session_idle_minutes = 30;
        c.accounts.session_absolute_hours = 2;
    })
    .await;
    local_user(&t, "alice", false).await;
    let (idle, cookie) = session(&t, "alice").await;
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("Max-Age=7200"), "{cookie}");
    let (old, _) = session(&t, "alice").await;
    let pool = &t.app().db;
    let limits: (i32, bool) = sqlx::query_as(
        "SELECT idle_timeout_seconds, expires_at BETWEEN now() + interval '119 minutes' AND now() + interval '121 minutes' \
         FROM user_tokens WHERE token_hash = $1",
    )
    .bind(cocov::auth::tokens::hash(&idle))
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(limits, (1800, true));
    for token in [&idle, &old] {
        assert_eq!(
            Call::new(Method::GET, "/v1/me")
                .cookie(token)
                .answer(&t)
                .await
                .0,
            StatusCode::OK
        );
    }
    // Use is recorded off the request path: wait for it, so it cannot land after the changes
    // below and undo them.
    let hashes = vec![
        cocov::auth::tokens::hash(&idle),
        cocov::auth::tokens::hash(&old),
    ];
    common::eventually("token use recorded", std::time::Duration::from_secs(10), || async {
        let recorded: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM user_tokens WHERE token_hash = ANY($1) AND last_used_at IS NOT NULL",
        )
        .bind(&hashes)
        .fetch_one(pool)
        .await
        .unwrap();
        (recorded == 2).then_some(())
    })
    .await;
    // Unused for 31 minutes: over. Past its absolute end: over, however recently used.
    sqlx::query(
        "UPDATE user_tokens SET last_used_at = now() - interval '31 minutes', \
         created_at = now() - interval '40 minutes' WHERE token_hash = $1",
    )
    .bind(cocov::auth::tokens::hash(&idle))
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE user_tokens SET expires_at = now() - interval '1 second', last_used_at = now() \
         WHERE token_hash = $1",
    )
    .bind(cocov::auth::tokens::hash(&old))
    .execute(pool)
    .await
    .unwrap();
    for token in [&idle, &old] {
        let (status, body) = Call::new(Method::GET, "/v1/me")
            .cookie(token)
            .answer(&t)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // The Origin check compares with the configured public origin.
    let (fresh, _) = session(&t, "alice").await;
    let (status, body) = Call::new(Method::POST, "/v1/me/tokens")
        .cookie(&fresh)
        .header("origin", "https://cocov.example")
        .json(json!({"name": "from the site"}))
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn local_sign_in_is_off_beside_github_unless_turned_on() {
    use cocov::config::LocalAccounts;
    let fake = common::fake_github::FakeGithub::start().await;
    // (GitHub configured, accounts.local, local sign-in open)
    for (github, local, open) in [
        (false, LocalAccounts::Auto, true),
        (true, LocalAccounts::Auto, false),
        (true, LocalAccounts::On, true),
        (false, LocalAccounts::Off, false),
    ] {
        let config = fake.config();
        let t = TestApp::start_with(move |c| {
            if github {
                c.github = config;
            }
            c.accounts.local = local;
        })
        .await;
        local_user(&t, "alice", false).await;
        let response = sign_in(&t, "alice", PASSWORD).await;
        let what = format!("github {github}, local {local:?}");
        if open {
            assert_eq!(response.status(), StatusCode::OK, "{what}");
        } else {
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
            assert_eq!(
                response.json::<Value>().await.unwrap()["code"],
                "session.local_disabled",
                "{what}"
            );
        }
        t.shutdown().await;
    }
}

fn cocov_cli(t: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd: Command = common::cocov_command();
    let config = t.storage_dir.path().join("cli.toml");
    std::fs::write(&config, "").unwrap();
    cmd.env("COCOV_CONFIG", &config)
        .env("COCOV_DATABASE_URL", &t.db.config.url)
        .env("COCOV_REDIS_URL", &t.redis.config.url)
        .env("COCOV_REDIS_KEY_PREFIX", &t.redis.config.key_prefix)
        .env("COCOV_UI_BASE_URL", &t.base)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().expect("run cocov");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_sets_passwords_and_prints_one_time_sign_in_links() {
    let t = TestApp::start().await;
    let pool = t.app().db.clone();
    let users = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM users")
            .fetch_one(&pool)
            .await
            .unwrap()
    };

    // From standard input (the name other tools use), one trailing newline removed.
    let out = cocov_cli(
        &t,
        &["admin", "create-user", "--login", "ops", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("cop_"),
        "no token printed: {}",
        text(&out.stdout)
    );
    assert_eq!(sign_in(&t, "ops", PASSWORD).await.status(), StatusCode::OK);

    // From a file; a missing file or a short password is named, and nothing is written.
    let file = t.storage_dir.path().join("pw");
    std::fs::write(&file, format!("{PASSWORD}-dev\n")).unwrap();
    let path = file.to_str().unwrap();
    let out = cocov_cli(
        &t,
        &[
            "admin",
            "create-user",
            "--login",
            "dev",
            "--password-file",
            path,
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        sign_in(&t, "dev", &format!("{PASSWORD}-dev"))
            .await
            .status(),
        StatusCode::OK
    );
    let before = users().await;
    let out = cocov_cli(
        &t,
        &[
            "admin",
            "create-user",
            "--login",
            "x1",
            "--password-file",
            "/nonexistent/pw",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--password-file /nonexistent/pw"),
        "{}",
        text(&out.stderr)
    );
    let out = cocov_cli(
        &t,
        &["admin", "create-user", "--login", "x2", "--password-stdin"],
        Some("short\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--password-stdin: the password must have at least"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(users().await, before, "nothing half-written");
    // Never on the command line.
    let out = cocov_cli(
        &t,
        &[
            "admin",
            "create-user",
            "--login",
            "x3",
            "--password",
            PASSWORD,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    // A one-time link: the page only shows a button; the POST signs in, once.
    let out = cocov_cli(
        &t,
        &[
            "admin",
            "create-user",
            "--login",
            "newbie",
            "--sign-in-link",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let link = text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("one-time sign-in link: "))
        .expect("a link")
        .to_string();
    assert!(
        link.starts_with(&format!("{}/auth/link/csl_", t.base)),
        "{link}"
    );
    let token = link.rsplit('/').next().unwrap().to_string();
    let page = t.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains(&token));
    // Not following the redirect, to see the cookie it sets.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |token: String| {
        let (t, browser) = (&t, &browser);
        async move {
            browser
                .post(t.url("/auth/link"))
                .header("sec-fetch-site", "same-origin")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token={token}"))
                .send()
                .await
                .unwrap()
        }
    };
    let response = post(token.clone()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let session = cookie
        .strip_prefix("cocov_session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_string();
    let (status, me) = Call::new(Method::GET, "/v1/me")
        .cookie(&session)
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["login"], "newbie");
    let again = post(token).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        again.json::<Value>().await.unwrap()["code"],
        "session.invalid_link"
    );

    // A lost password is replaced without SQL, and the admin commands work on logins.
    let out = cocov_cli(
        &t,
        &[
            "admin",
            "user",
            "set-password",
            "newbie",
            "--password-stdin",
        ],
        Some("a brand new password"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        sign_in(&t, "newbie", "a brand new password").await.status(),
        StatusCode::OK
    );
    let out = cocov_cli(&t, &["admin", "user", "logout", "newbie"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        Call::new(Method::GET, "/v1/me")
            .cookie(&session)
            .answer(&t)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let out = cocov_cli(&t, &["admin", "user", "demote", "ops"], None);
    assert_eq!(out.status.code(), Some(1), "the last administrator stays");
    assert!(
        text(&out.stderr).contains("last administrator"),
        "{}",
        text(&out.stderr)
    );
    let out = cocov_cli(&t, &["admin", "user", "list"], None);
    assert!(
        text(&out.stdout).contains("newbie"),
        "{}",
        text(&out.stdout)
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn personal_tokens_are_named_shown_once_and_revocable() {
    let t = TestApp::start().await;
    let alice = t.user_token("alice", false).await;
    let bob = t.user_token("bob", false).await;
    let (_, service) = cocov::auth::service_tokens::create(
        &t.app().db,
        "ci",
        None,
        &cocov::audit::AuditActor::system(),
    )
    .await
    .unwrap();

    let (status, created) = Call::new(Method::POST, "/v1/me/tokens")
        .bearer(&alice)
        .json(json!({"name": "laptop", "expires_in_days": 30}))
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_i64().unwrap();
    assert!(token.starts_with("cop_"));
    let (status, me) = Call::new(Method::GET, "/v1/me")
        .bearer(&token)
        .answer(&t)
        .await;
    assert_eq!(
        (status, me["login"].clone()),
        (StatusCode::OK, json!("alice"))
    );

    let (_, list) = Call::new(Method::GET, "/v1/me/tokens")
        .bearer(&alice)
        .answer(&t)
        .await;
    let laptop = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .expect("listed")
        .clone();
    assert_eq!(laptop["name"], "laptop");
    assert_eq!(laptop["kind"], "personal");
    assert!(laptop["expires_at"].is_string());
    assert!(!list.to_string().contains(&token), "never shown again");

    // Another user can neither see nor revoke it; a service token has no tokens here.
    let (_, bobs) = Call::new(Method::GET, "/v1/me/tokens")
        .bearer(&bob)
        .answer(&t)
        .await;
    assert!(!bobs.to_string().contains("laptop"));
    let path = format!("/v1/me/tokens/{id}");
    assert_eq!(
        Call::new(Method::DELETE, &path)
            .bearer(&bob)
            .answer(&t)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    for (method, path) in [
        (Method::GET, "/v1/me/tokens"),
        (Method::POST, "/v1/me/tokens"),
    ] {
        let (status, _) = Call::new(method.clone(), path)
            .bearer(&service)
            .json(json!({"name": "x"}))
            .answer(&t)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "service {method} {path}");
        let (status, _) = Call::new(method.clone(), path).answer(&t).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "anonymous {method} {path}"
        );
    }
    for (body, code) in [
        (json!({"name": " "}), "tokens.invalid_name"),
        (
            json!({"name": "x", "expires_in_days": 0}),
            "tokens.invalid_expiry",
        ),
    ] {
        let (status, answer) = Call::new(Method::POST, "/v1/me/tokens")
            .bearer(&alice)
            .json(body)
            .answer(&t)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["code"], code);
    }

    // Revoked: 401 on the next request.
    assert_eq!(
        Call::new(Method::DELETE, &path)
            .bearer(&alice)
            .answer(&t)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        Call::new(Method::GET, "/v1/me")
            .bearer(&token)
            .answer(&t)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // An expired personal token is refused.
    let (_, short) = Call::new(Method::POST, "/v1/me/tokens")
        .bearer(&alice)
        .json(json!({"name": "short", "expires_in_days": 1}))
        .answer(&t)
        .await;
    sqlx::query("UPDATE user_tokens SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(short["id"].as_i64().unwrap())
        .execute(&t.app().db)
        .await
        .unwrap();
    let short = short["token"].as_str().unwrap();
    assert_eq!(
        Call::new(Method::GET, "/v1/me")
            .bearer(short)
            .answer(&t)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn user_administration_for_every_role() {
    let t = TestApp::start().await;
    let pool = t.app().db.clone();
    let admin = t.user_token("root", true).await;
    let user = t.user_token("plain", false).await;
    let victim = t.user_token("victim", false).await;
    let victim_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE login = 'victim'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (_, service) =
        cocov::auth::service_tokens::create(&pool, "ci", None, &cocov::audit::AuditActor::system())
            .await
            .unwrap();
    let membership = format!("/v1/admin/users/{victim_id}/membership");
    let logout = format!("/v1/admin/users/{victim_id}/logout");
    let sync = format!("/v1/admin/users/{victim_id}/sync_perms");
    let routes: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/v1/admin/users", None),
        (Method::PATCH, &membership, Some(json!({"admin": false}))),
        (Method::POST, &logout, None),
        (Method::POST, &sync, None),
    ];
    for (method, path, body) in &routes {
        for (role, token, expected) in [
            ("anonymous", None, StatusCode::UNAUTHORIZED),
            ("user", Some(user.as_str()), StatusCode::FORBIDDEN),
            ("victim", Some(victim.as_str()), StatusCode::FORBIDDEN),
            (
                "service token",
                Some(service.as_str()),
                StatusCode::FORBIDDEN,
            ),
        ] {
            let mut call = Call::new(method.clone(), path);
            if let Some(token) = token {
                call = call.bearer(token);
            }
            if let Some(body) = body {
                call = call.json(body.clone());
            }
            let (status, answer) = call.answer(&t).await;
            assert_eq!(status, expected, "{role} {method} {path}: {answer}");
        }
    }
    let victim_still_works = Call::new(Method::GET, "/v1/me")
        .bearer(&victim)
        .answer(&t)
        .await
        .0;
    assert_eq!(victim_still_works, StatusCode::OK);

    let (status, list) = Call::new(Method::GET, "/v1/admin/users")
        .bearer(&admin)
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::OK);
    let logins: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].as_str().unwrap())
        .collect();
    assert!(
        logins.contains(&"victim") && logins.contains(&"root"),
        "{list}"
    );

    // Promote, then demote; the last administrator cannot be demoted or deleted.
    let (status, promoted) = Call::new(Method::PATCH, &membership)
        .bearer(&admin)
        .json(json!({"admin": true}))
        .answer(&t)
        .await;
    assert_eq!(
        (status, promoted["admin"].clone()),
        (StatusCode::OK, json!(true))
    );
    let (_, me) = Call::new(Method::GET, "/v1/me")
        .bearer(&victim)
        .answer(&t)
        .await;
    assert_eq!(me["admin"], true, "at once");
    Call::new(Method::PATCH, &membership)
        .bearer(&admin)
        .json(json!({"admin": false}))
        .answer(&t)
        .await;
    let admins: Vec<i64> = sqlx::query_scalar("SELECT id FROM users WHERE admin ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    for id in &admins[1..] {
        sqlx::query("UPDATE users SET admin = false WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
    let last = format!("/v1/admin/users/{}", admins[0]);
    let (status, answer) = Call::new(Method::PATCH, &format!("{last}/membership"))
        .bearer(&admin)
        .json(json!({"admin": false}))
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "admin.last_admin");
    let (status, answer) = Call::new(Method::PATCH, &membership)
        .bearer(&admin)
        .json(json!({}))
        .answer(&t)
        .await;
    assert_eq!(
        (status, answer["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("admin.no_admin"))
    );

    // Standalone: permissions do not come from GitHub.
    let (status, answer) = Call::new(Method::POST, &sync)
        .bearer(&admin)
        .answer(&t)
        .await;
    assert_eq!(
        (status, answer["code"].clone()),
        (StatusCode::CONFLICT, json!("admin.not_github"))
    );

    // Sign out everywhere: every token of the user stops working at once.
    let (status, answer) = Call::new(Method::POST, &logout)
        .bearer(&admin)
        .answer(&t)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["tokens_revoked"], 1);
    assert_eq!(
        Call::new(Method::GET, "/v1/me")
            .bearer(&victim)
            .answer(&t)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // Delete, then it is gone; unknown ids are 404.
    let delete = format!("/v1/admin/users/{victim_id}");
    for (role, token, expected) in [
        ("anonymous", None, StatusCode::UNAUTHORIZED),
        ("user", Some(user.as_str()), StatusCode::FORBIDDEN),
        (
            "service token",
            Some(service.as_str()),
            StatusCode::FORBIDDEN,
        ),
        ("admin", Some(admin.as_str()), StatusCode::NO_CONTENT),
        ("admin again", Some(admin.as_str()), StatusCode::NOT_FOUND),
    ] {
        let mut call = Call::new(Method::DELETE, &delete);
        if let Some(token) = token {
            call = call.bearer(token);
        }
        assert_eq!(call.answer(&t).await.0, expected, "{role}");
    }
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE target = $1 ORDER BY id")
            .bind(format!("user:{victim_id}"))
            .fetch_all(&pool)
            .await
            .unwrap();
    for action in [
        "user.promote",
        "user.demote",
        "user.logout_everywhere",
        "user.delete",
    ] {
        assert!(audit.iter().any(|a| a == action), "{action} in {audit:?}");
    }
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn users_set_their_own_password() {
    let t = TestApp::start().await;
    local_user(&t, "alice", false).await;
    let (alice, _) = session(&t, "alice").await;
    // A user made for a link (no password yet) sets one without a current password.
    let newbie = t.user_token("newbie", false).await;
    let service = common::requests::service_token(&t).await;

    async fn put(t: &TestApp, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut call = Call::new(Method::PUT, "/v1/me/password").json(body);
        if let Some(token) = token {
            call = call.bearer(token);
        }
        call.answer(t).await
    }
    let new = "an entirely new password";
    assert_eq!(
        put(&t, None, json!({"password": new})).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        put(&t, Some(&service), json!({"password": new})).await.0,
        StatusCode::FORBIDDEN
    );
    for (body, code) in [
        (json!({"password": new}), "password.current_required"),
        (
            json!({"current_password": "wrong one", "password": new}),
            "password.current_invalid",
        ),
        (
            json!({"current_password": PASSWORD, "password": "short"}),
            "password.invalid",
        ),
    ] {
        let (status, answer) = put(&t, Some(&alice), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["code"], code);
    }
    let (status, answer) = put(
        &t,
        Some(&alice),
        json!({"current_password": PASSWORD, "password": new}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    assert_eq!(
        sign_in(&t, "alice", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(sign_in(&t, "alice", new).await.status(), StatusCode::OK);

    let (status, answer) = put(&t, Some(&newbie), json!({"password": new})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    assert_eq!(sign_in(&t, "newbie", new).await.status(), StatusCode::OK);
    t.shutdown().await;
}
