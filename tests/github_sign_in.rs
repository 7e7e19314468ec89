//! GitHub sign-in against the real daemon, PostgreSQL and Redis, with the fake GitHub playing
//! both the API and the web side of OAuth. A browser here is a client that follows redirects
//! one hop at a time and keeps the daemon's cookies, as a browser does.
//!
//! Covered: a member of the organisation signs in through the web flow and sees exactly the
//! repositories GitHub shows them (synced at sign-in), their commits (ingested before and
//! after) carry them as author, their token is stored sealed; a non-member and a refused
//! outside collaborator are turned away; forged, replayed and foreign states, open redirects
//! and a wrong `/auth/exchange` state are refused; the original `/auth/begin` +
//! `/auth/exchange` API flow with its error codes; a login renamed at GitHub is followed.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::TestApp;
use common::fake_github::{AuthKind, FakeGithub, FakeRepo, ORG, role};
use common::git_server::{GitServer, WorkTree};
use reqwest::StatusCode;
use serde_json::{Value, json};

const KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
pub(crate) const ADA: i64 = 7001;
const BOB: i64 = 7003;
const MALLORY: i64 = 7666;

pub(crate) struct Env {
    pub(crate) fake: FakeGithub,
    pub(crate) git: GitServer,
    pub(crate) t: TestApp,
    pub(crate) admin: String,
}

/// The daemon in GitHub mode with sign-in configured. Its address is chosen first, because the
/// callback URL GitHub sends browsers back to is `server.ui_base_url`.
pub(crate) async fn env(adjust: impl FnOnce(&mut cocov::config::Config) + Send + 'static) -> Env {
    let fake = FakeGithub::start().await;
    let git = GitServer::start(fake.token_checker()).await;
    let mut github = fake.config();
    github.git_base_url = git.base_url();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let t = TestApp::start_with(move |c| {
        c.github = github;
        c.server.bind_address = addr;
        c.server.ui_base_url = format!("http://{addr}");
        c.security.cryptographic_key = KEY.into();
        adjust(c);
    })
    .await;
    assert_eq!(t.base, format!("http://{addr}"));
    // An administrator exists first, so nobody signing in becomes one by the first-user rule.
    let admin = t.user_token("admin", true).await;
    fake.add_member("ada");
    fake.add_member("bob");
    fake.add_user(
        ADA,
        "ada",
        &[
            ("ada@example.com", true),
            ("ada-unverified@example.com", false),
        ],
    );
    fake.add_user(BOB, "bob", &[("bob@example.com", true)]);
    fake.add_user(MALLORY, "mallory", &[("mallory@example.com", true)]);
    Env {
        fake,
        git,
        t,
        admin,
    }
}

/// A browser: one hop at a time, the daemon's cookies kept (and sent only to the daemon).
struct Browser {
    client: reqwest::Client,
    daemon: String,
    cookies: HashMap<String, String>,
}

struct Hop {
    status: StatusCode,
    location: Option<String>,
    set_cookies: Vec<String>,
}

impl Browser {
    fn new(e: &Env) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            daemon: e.t.base.clone(),
            cookies: HashMap::new(),
        }
    }

    async fn get(&mut self, url: &str) -> Hop {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.daemon)
        } else {
            url.to_string()
        };
        let mut request = self.client.get(&url);
        if url.starts_with(&self.daemon) && !self.cookies.is_empty() {
            let header: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header("cookie", header.join("; "));
        }
        let response = request.send().await.unwrap();
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        if url.starts_with(&self.daemon) {
            for raw in &set_cookies {
                let c = cookie::Cookie::parse(raw.clone()).unwrap();
                if c.value().is_empty() || c.max_age() == Some(time::Duration::ZERO) {
                    self.cookies.remove(c.name());
                } else {
                    self.cookies
                        .insert(c.name().to_string(), c.value().to_string());
                }
            }
        }
        Hop {
            status: response.status(),
            location: response
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string()),
            set_cookies,
        }
    }

    fn session(&self) -> Option<&String> {
        self.cookies.get("cocov_session")
    }
}

/// Starts a flow: returns the GitHub authorize URL the daemon sent the browser to.
async fn start(b: &mut Browser, return_to: Option<&str>) -> String {
    let path = match return_to {
        Some(r) => format!(
            "/auth/github?return_to={}",
            url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>()
        ),
        None => "/auth/github".into(),
    };
    let hop = b.get(&path).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER);
    let flow = hop
        .set_cookies
        .iter()
        .find(|c| c.starts_with("cocov_github_flow="))
        .expect("the flow cookie");
    assert!(
        flow.contains("HttpOnly") && flow.contains("SameSite=Lax"),
        "{flow}"
    );
    hop.location.expect("a Location to GitHub")
}

/// GitHub's side: the authorize page (signed in as whoever the fake says) answers with the
/// callback URL carrying the code and state.
async fn at_github(b: &mut Browser, authorize_url: &str) -> String {
    let hop = b.get(authorize_url).await;
    assert_eq!(hop.status, StatusCode::FOUND);
    hop.location.expect("GitHub sends the browser back")
}

/// Opening `callback` in this browser ends at the sign-in page with `state_mismatch`, and no
/// session.
async fn refused_as_state_mismatch(b: &mut Browser, callback: &str) {
    let hop = b.get(callback).await;
    assert_eq!(
        hop.location.as_deref(),
        Some("/sign-in?error=state_mismatch")
    );
    assert!(b.session().is_none());
}

/// A flow begun and authorized at GitHub: the callback URL the browser is sent back to.
async fn to_callback(b: &mut Browser) -> String {
    let authorize = start(b, None).await;
    at_github(b, &authorize).await
}

/// The whole web flow as `github_id`; returns where the callback sent the browser.
async fn sign_in(e: &Env, b: &mut Browser, github_id: i64, return_to: Option<&str>) -> String {
    e.fake.sign_in_as(github_id);
    let authorize = start(b, return_to).await;
    let callback = at_github(b, &authorize).await;
    let hop = b.get(&callback).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER);
    hop.location.unwrap()
}

/// A GET with the session cookie.
async fn get_json(e: &Env, path: &str, session: &str) -> (StatusCode, Value) {
    get_with(e, path, ("cookie", format!("cocov_session={session}"))).await
}

async fn get_with(e: &Env, path: &str, header: (&str, String)) -> (StatusCode, Value) {
    let resp =
        e.t.client
            .get(e.t.url(path))
            .header(header.0, header.1)
            .send()
            .await
            .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or_default())
}

async fn visible_repositories(e: &Env, session: &str) -> Vec<String> {
    let (status, body) = get_json(e, "/v1/repositories", session).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut names: Vec<String> = body["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Registers a GitHub repository; returns (id, upload token).
pub(crate) async fn add_repository(e: &Env, name: &str) -> (i64, String) {
    common::origin::create_repository(&e.t, &e.admin, &json!({"name": name})).await
}

/// A commit by `email` pushed to the repository's main branch, announced and ingested.
async fn push_by(e: &Env, wt: &mut WorkTree, name: &str, repo: (i64, &str), email: &str) -> String {
    wt.set_author("Someone", email);
    let sha = wt.commit(
        &[("README", &format!("{email} {}", uuid::Uuid::new_v4()))],
        "a change",
    );
    wt.push("main");
    let resp =
        e.t.client
            .post(e.t.url(&format!("/v1/repositories/{name}/commits")))
            .header("authorization", format!("token {}", repo.1))
            .json(&json!({"sha": sha, "branch": "main"}))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let (status, error) = e.t.ingestion_outcome(repo.0, &sha).await;
    assert_eq!(status, "completed", "{error:?}");
    sha
}

async fn commit_author(e: &Env, name: &str, sha: &str, session: &str) -> Value {
    let (status, body) = get_json(
        e,
        &format!("/v1/repositories/{name}/commits/{sha}"),
        session,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["user"].clone()
}

pub(crate) async fn members_of(e: &Env, github_id: i64) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT r.name::text, m.level FROM repository_members m JOIN repositories r ON r.id = m.repository_id \
         WHERE m.github_member_id = $1 ORDER BY r.name",
    )
    .bind(github_id)
    .fetch_all(&e.t.app().db)
    .await
    .unwrap()
}

async fn user_count(e: &Env) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&e.t.app().db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_signs_in_sees_their_repositories_and_their_commits() {
    let e = env(|_| {}).await;
    e.fake.add_repo(
        FakeRepo::new(1001, "api")
            .collaborator(ADA, "ada", role("write"))
            .collaborator(BOB, "bob", role("admin")),
    );
    e.fake.add_repo(
        FakeRepo::new(1002, "web")
            .collaborator(ADA, "ada", role("admin"))
            .collaborator(BOB, "bob", role("admin")),
    );
    e.fake
        .add_repo(FakeRepo::new(1003, "ops").collaborator(BOB, "bob", role("admin")));
    let api = add_repository(&e, "api").await;
    add_repository(&e, "web").await;
    add_repository(&e, "ops").await;
    // The repository syncs (installation token) ran: ada is a member of api and web.
    common::eventually("the repository syncs", Duration::from_secs(20), || async {
        (members_of(&e, BOB).await.len() == 3 && members_of(&e, ADA).await.len() == 2).then_some(())
    })
    .await;
    // A commit by ada (and one from her unverified address) before she ever signed in.
    let mut wt = e.git.worktree(ORG, "api");
    let before = push_by(&e, &mut wt, "api", (api.0, &api.1), "ada@example.com").await;
    let unverified = push_by(
        &e,
        &mut wt,
        "api",
        (api.0, &api.1),
        "ada-unverified@example.com",
    )
    .await;

    // GitHub changed since, with no webhook: ada left `web` and maintains `ops`. Only the
    // sync at sign-in (with her own token) can know.
    e.fake
        .add_repo(FakeRepo::new(1002, "web").collaborator(BOB, "bob", role("admin")));
    e.fake.add_repo(
        FakeRepo::new(1003, "ops")
            .collaborator(BOB, "bob", role("admin"))
            .collaborator(ADA, "ada", role("maintain")),
    );
    e.fake.clear_calls();

    let mut browser = Browser::new(&e);
    let landed = sign_in(&e, &mut browser, ADA, Some("/repos/api?tab=commits")).await;
    assert_eq!(landed, "/repos/api?tab=commits");
    let session = browser.session().expect("a session cookie").clone();
    assert!(session.starts_with("coa_"), "{session}");
    assert!(!browser.cookies.contains_key("cocov_github_flow"));

    assert_eq!(visible_repositories(&e, &session).await, ["api", "ops"]);
    assert_eq!(
        members_of(&e, ADA).await,
        [
            ("api".to_string(), "user".to_string()),
            ("ops".to_string(), "maintainer".to_string())
        ]
    );
    let (status, me) = get_json(&e, "/v1/me", &session).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["login"], "ada");
    assert_eq!(me["admin"], false);
    let user_id = me["id"].as_i64().unwrap();

    // The permission sync used her token, and GitHub saw the code once.
    let repo_calls = e.fake.calls_to(&format!("/orgs/{ORG}/repos"));
    assert!(
        repo_calls.iter().any(|c| c.auth == AuthKind::User(ADA)),
        "{repo_calls:?}"
    );
    assert_eq!(e.fake.calls_to("/login/oauth/access_token").len(), 1);

    // Her commits: the one ingested before sign-in was linked then, the next is linked when
    // ingested; the unverified address links nothing.
    assert_eq!(
        commit_author(&e, "api", &before, &session).await["login"],
        "ada"
    );
    assert_eq!(
        commit_author(&e, "api", &unverified, &session).await,
        Value::Null
    );
    let after = push_by(&e, &mut wt, "api", (api.0, &api.1), "ada@example.com").await;
    assert_eq!(
        commit_author(&e, "api", &after, &session).await["login"],
        "ada"
    );
    let emails: Vec<String> =
        sqlx::query_scalar("SELECT email::text FROM user_emails WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&e.t.app().db)
            .await
            .unwrap();
    assert_eq!(emails, ["ada@example.com"]);

    // Her GitHub token: sealed with the secrets' key, never in clear.
    let (sealed, nonce, key_id) = sealed_token(&e, "ada").await;
    assert!(!sealed.windows(4).any(|w| w == b"gho_"));
    let cipher = cocov::secrets::Cipher::from_hex(KEY, "test").unwrap();
    let token = cipher
        .open(
            &sealed,
            &nonce,
            &key_id,
            &cocov::auth::github_accounts::token_context(ADA),
        )
        .unwrap();
    assert!(
        e.fake
            .issued_user_token(std::str::from_utf8(&token).unwrap())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_member_and_a_refused_outside_collaborator_are_turned_away() {
    let e = env(|c| c.github.allow_outside_collaborators = false).await;
    let before = user_count(&e).await;
    let mut browser = Browser::new(&e);
    assert_eq!(
        sign_in(&e, &mut browser, MALLORY, None).await,
        "/sign-in?error=not_a_member"
    );
    assert!(browser.session().is_none());
    e.fake.add_outside_collaborator(MALLORY, "mallory");
    assert_eq!(
        sign_in(&e, &mut browser, MALLORY, None).await,
        "/sign-in?error=outside_collaborator"
    );
    assert!(browser.session().is_none());
    assert_eq!(user_count(&e).await, before, "nobody was created");

    // The API flow answers with the original's codes.
    e.fake.remove_outside_collaborators();
    let (status, body) = api_sign_in(&e, MALLORY).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "session.not_an_org_member");
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_replayed_and_foreign_states_and_open_redirects_are_refused() {
    let e = env(|_| {}).await;
    e.fake.sign_in_as(ADA);

    // A forged state: GitHub's answer, with the state replaced.
    let mut browser = Browser::new(&e);
    let callback = to_callback(&mut browser).await;
    let mut forged = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "state" {
                (k, "ab".repeat(21))
            } else {
                (k, v)
            }
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(&pairs);
    refused_as_state_mismatch(&mut browser, forged.as_str()).await;

    // Another browser's state: the victim's callback URL opened by an attacker's browser
    // (with a flow cookie of its own), and with no cookie at all.
    let mut victim = Browser::new(&e);
    let victims_callback = to_callback(&mut victim).await;
    let mut attacker = Browser::new(&e);
    start(&mut attacker, None).await;
    refused_as_state_mismatch(&mut attacker, &victims_callback).await;
    let mut bare = Browser::new(&e);
    let callback = to_callback(&mut victim).await;
    refused_as_state_mismatch(&mut bare, &callback).await;

    // A replayed state: the same callback URL, with the same flow cookie, a second time.
    let mut browser = Browser::new(&e);
    let callback = to_callback(&mut browser).await;
    let flow_cookie = browser.cookies["cocov_github_flow"].clone();
    let hop = browser.get(&callback).await;
    assert_eq!(hop.location.as_deref(), Some("/"));
    let first_session = browser.session().unwrap().clone();
    let mut replayer = Browser::new(&e);
    replayer
        .cookies
        .insert("cocov_github_flow".into(), flow_cookie);
    refused_as_state_mismatch(&mut replayer, &callback).await;
    assert_eq!(
        get_json(&e, "/v1/me", &first_session).await.0,
        StatusCode::OK
    );

    // Declined at GitHub: the state is fine, there is no code.
    let mut browser = Browser::new(&e);
    let callback = to_callback(&mut browser).await;
    let state = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let hop = browser
        .get(&format!(
            "/auth/github/callback?error=access_denied&state={state}"
        ))
        .await;
    assert_eq!(
        hop.location.as_deref(),
        Some("/sign-in?error=github_refused")
    );

    // Open redirects: only a path on this site is a place to return to.
    for bad in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "evil.example",
    ] {
        let path = format!(
            "/auth/github?return_to={}",
            url::form_urlencoded::byte_serialize(bad.as_bytes()).collect::<String>()
        );
        let resp = e.t.client.get(e.t.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(resp.headers().get("location").is_none(), "{bad}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "session.bad_return_to", "{bad}");
    }
    let mut browser = Browser::new(&e);
    assert_eq!(
        sign_in(&e, &mut browser, ADA, Some("/settings")).await,
        "/settings"
    );
}

/// `POST /auth/begin`, GitHub's authorize page, `POST /auth/exchange`, as `github_id`.
async fn api_sign_in(e: &Env, github_id: i64) -> (StatusCode, Value) {
    e.fake.sign_in_as(github_id);
    let redirect = "https://ui.example/auth/callback";
    let begun = post(e, "/auth/begin", &json!({"redirect": redirect})).await;
    assert_eq!(begun.0, StatusCode::OK, "{}", begun.1);
    let mut browser = Browser::new(e);
    let back =
        url::Url::parse(&at_github(&mut browser, begun.1["redirect_to"].as_str().unwrap()).await)
            .unwrap();
    let param = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let mut redirect_uri = back.clone();
    let kept: Vec<(String, String)> = back
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != "code" && k != "state")
        .collect();
    redirect_uri.query_pairs_mut().clear().extend_pairs(&kept);
    post(
        e,
        "/auth/exchange",
        &json!({
            "exchange_token": param("exchange_token"),
            "state": param("state"),
            "code": param("code"),
            "redirect": redirect_uri.as_str(),
        }),
    )
    .await
}

async fn post(e: &Env, path: &str, body: &Value) -> (StatusCode, Value) {
    let resp =
        e.t.client
            .post(e.t.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_original_api_flow_with_its_error_codes() {
    let e = env(|_| {}).await;
    for (body, code) in [
        (json!({}), "session.no_redirect"),
        (json!({"redirect": "  "}), "session.no_redirect"),
        (json!({"redirect": "not a uri"}), "session.bad_redirect_uri"),
    ] {
        let (status, answer) = post(&e, "/auth/begin", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["code"], code, "{body}");
    }

    // The redirect_to: GitHub's authorize URL, its query sorted, the caller's redirect with the
    // exchange token appended (its own query re-serialised sorted), a 42-hex state.
    let resp =
        e.t.client
            .post(e.t.url("/auth/begin"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("redirect=https%3A%2F%2Fui.example%2Fcb%3Fb%3D2%26a%3D1")
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let begun: Value = resp.json().await.unwrap();
    let to = url::Url::parse(begun["redirect_to"].as_str().unwrap()).unwrap();
    assert_eq!(to.path(), "/login/oauth/authorize");
    assert_eq!(to.origin().ascii_serialization(), e.fake.base_url());
    let query: Vec<(String, String)> = to.query_pairs().into_owned().collect();
    let keys: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "allow_signup",
            "client_id",
            "redirect_uri",
            "scope",
            "state"
        ]
    );
    assert_eq!(query[0].1, "false");
    assert_eq!(query[3].1, "user:email,repo");
    let hex42 = |s: &str| s.len() == 42 && s.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(hex42(&query[4].1));
    let redirect = url::Url::parse(&query[2].1).unwrap();
    let pairs: Vec<(String, String)> = redirect.query_pairs().into_owned().collect();
    assert_eq!(pairs[0], ("a".into(), "1".into()));
    assert_eq!(pairs[1], ("b".into(), "2".into()));
    assert_eq!(pairs[2].0, "exchange_token");
    assert!(hex42(&pairs[2].1));
    let key = e.t.app().kv.key(&format!("auth:{}", pairs[2].1));
    let mut redis = e.t.app().kv.conn(cocov::kv::Db::Primary);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((3590..=3600).contains(&ttl), "{ttl}");

    // /auth/exchange: the missing parameters in the original's order.
    let full = json!({"exchange_token": pairs[2].1, "state": query[4].1, "code": "x", "redirect": redirect.as_str()});
    let order = ["exchange_token", "state", "code", "redirect"];
    let codes = [
        "session.no_exchange_token",
        "session.no_state",
        "session.no_code",
        "session.no_redirect",
    ];
    for (i, code) in codes.iter().enumerate() {
        // Every parameter before the missing one is there.
        let body: serde_json::Map<String, Value> = order[..i]
            .iter()
            .map(|k| (k.to_string(), full[*k].clone()))
            .collect();
        let body = Value::Object(body);
        let (status, answer) = post(&e, "/auth/exchange", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["code"], *code, "{body}");
    }
    // A wrong state is refused, and uses the exchange token up: the right one fails after.
    let mut wrong = full.clone();
    wrong["state"] = json!("cd".repeat(21));
    let (status, answer) = post(&e, "/auth/exchange", &wrong).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["code"], "session.invalid_exchange_token_or_state");
    let (status, answer) = post(&e, "/auth/exchange", &full).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["code"], "session.invalid_exchange_token_or_state");
    assert!(e.fake.calls_to("/login/oauth/access_token").is_empty());

    // The whole flow: `{token, name, admin}`, the token a working session.
    let (status, answer) = api_sign_in(&e, ADA).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["name"], "ada");
    assert_eq!(answer["admin"], false);
    let token = answer["token"].as_str().unwrap();
    assert!(token.starts_with("coa_"));
    let (_, me) = get_with(&e, "/v1/me", ("authorization", format!("bearer {token}"))).await;
    assert_eq!(me["login"], "ada");

    // A code GitHub does not know: refused, with the code the original reserved for it.
    let (state, exchange_token) = cocov::auth::oauth_state::begin_exchange(&e.t.app().kv)
        .await
        .unwrap();
    let (status, answer) = post(
        &e,
        "/auth/exchange",
        &json!({"exchange_token": exchange_token, "state": state, "code": "nope", "redirect": "https://ui.example/cb"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "session.cannot_exchange");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_renamed_at_github_is_followed() {
    let e = env(|_| {}).await;
    let mut browser = Browser::new(&e);
    sign_in(&e, &mut browser, ADA, None).await;
    let (_, me) = get_json(&e, "/v1/me", browser.session().unwrap()).await;
    let count = user_count(&e).await;

    e.fake.rename_user(ADA, "ada-lovelace");
    let mut browser = Browser::new(&e);
    sign_in(&e, &mut browser, ADA, None).await;
    let (_, renamed) = get_json(&e, "/v1/me", browser.session().unwrap()).await;
    assert_eq!(renamed["login"], "ada-lovelace");
    assert_eq!(renamed["id"], me["id"], "the same user");
    assert_eq!(user_count(&e).await, count);

    // A login another account holds is refused, not merged into it.
    e.t.user_token("bob", false).await;
    let mut browser = Browser::new(&e);
    assert_eq!(
        sign_in(&e, &mut browser, BOB, None).await,
        "/sign-in?error=login_taken"
    );
    assert!(browser.session().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_is_refused_when_github_or_its_oauth_client_is_not_configured() {
    let fake = FakeGithub::start().await;
    let mut no_client = fake.config();
    no_client.oauth_client_secret = String::new();
    for t in [
        TestApp::start().await,
        TestApp::start_with(move |c| c.github = no_client).await,
    ] {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = client.get(t.url("/auth/github")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "session.github_disabled");
        for path in ["/auth/begin", "/auth/exchange"] {
            let resp = client
                .post(t.url(path))
                .json(&json!({"redirect": "https://ui.example/cb"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        }
        // Nobody can sign in with GitHub here, so local accounts ("auto") stay open.
        let resp = client
            .post(t.url("/auth/local"))
            .json(&json!({"login": "nobody", "password": "wrong"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let resp = client
            .get(t.url(&format!(
                "/auth/github/callback?code=x&state={}",
                "ab".repeat(21)
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(resp.headers()["location"], "/sign-in?error=github_disabled");
    }
    assert!(fake.calls().is_empty());
}

/// The sealed GitHub token of a user, as stored: (ciphertext, nonce, key id).
async fn sealed_token(e: &Env, login: &str) -> (Vec<u8>, Vec<u8>, String) {
    sqlx::query_as(
        "SELECT github_token_encrypted, github_token_nonce, github_token_key_id FROM users WHERE login = $1",
    )
    .bind(login)
    .fetch_one(&e.t.app().db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_rotation_reseals_the_github_tokens() {
    let e = env(|_| {}).await;
    let mut browser = Browser::new(&e);
    sign_in(&e, &mut browser, ADA, None).await;
    let old = cocov::secrets::Cipher::from_hex(KEY, "old").unwrap();
    let context = cocov::auth::github_accounts::token_context(ADA);
    let (sealed, nonce, key_id) = sealed_token(&e, "ada").await;
    let token = old.open(&sealed, &nonce, &key_id, &context).unwrap();

    let keys = tempfile::tempdir().unwrap();
    let new_file = keys.path().join("new.key");
    let out = common::cocov_command()
        .env("COCOV_DATABASE_URL", &e.t.db.config.url)
        .env("COCOV_CRYPTOGRAPHIC_KEY", KEY)
        .args(["admin", "rotate-key", "--new-key-file"])
        .arg(&new_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("re-encrypted 1 user GitHub token(s)"),
        "{stdout}"
    );
    let new_hex = std::fs::read_to_string(&new_file).unwrap();
    let new = cocov::secrets::Cipher::from_hex(&new_hex, "new").unwrap();
    let (sealed, nonce, key_id) = sealed_token(&e, "ada").await;
    assert_eq!(key_id, new.key_id());
    assert_eq!(new.open(&sealed, &nonce, &key_id, &context).unwrap(), token);
}
