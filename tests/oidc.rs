//! OIDC sign-in against a real OpenID Provider: the certified `oidc-provider` package, run by
//! `tests/oidc-provider/server.js` (installed by `scripts/install-test-tools.sh`), its login
//! and consent pages driven over HTTP like a browser. Sign-in and sign-up, admin groups,
//! group memberships, and the attacks: forged, replayed and foreign `state`, a swapped code,
//! ID tokens with another flow's nonce or not signed by the provider, open redirects.

use crate::common;

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::TestApp;
use common::oidc_provider::{CLIENT_ID, CLIENT_SECRET, OidcProvider};
use common::requests::{call, free_port};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ADMIN_GROUP: &str = "cocov-admins";

/// The daemon on a known port (the provider must know its callback first) and its provider.
struct Site {
    t: TestApp,
    provider: OidcProvider,
}

async fn site(accounts: Value, allow_signup: bool) -> Site {
    site_with(accounts, allow_signup, false).await
}

async fn site_with(accounts: Value, allow_signup: bool, claims_in_userinfo_only: bool) -> Site {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let provider = OidcProvider::start(
        &format!("{base}/auth/oidc/callback"),
        accounts,
        claims_in_userinfo_only,
    )
    .await;
    let t = TestApp::start_with(|c| {
        c.server.bind_address = format!("127.0.0.1:{port}").parse().unwrap();
        c.server.ui_base_url = base.clone();
        provider.configure(c);
        c.oidc.scopes = vec!["openid".into(), "profile".into(), "groups".into()];
        c.oidc.admin_groups = vec![ADMIN_GROUP.into()];
        c.oidc.allow_signup = allow_signup;
    })
    .await;
    // The first user ever is an administrator: make it someone else, so group rules show.
    cocov::auth::users::create(
        &t.app().db,
        "first-admin",
        true,
        &cocov::audit::AuditActor::system(),
    )
    .await
    .unwrap();
    Site { t, provider }
}

fn account(login: &str, groups: &[&str]) -> Value {
    json!({"preferred_username": login, "groups": groups})
}

/// A browser: follows nothing by itself, keeps cookies per origin.
struct Browser {
    client: reqwest::Client,
    jar: HashMap<String, HashMap<String, String>>,
}

fn origin(url: &reqwest::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    )
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: HashMap::new(),
        }
    }

    async fn send(
        &mut self,
        method: Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
    ) -> reqwest::Response {
        let parsed = reqwest::Url::parse(url).unwrap();
        let mut request = self.client.request(method, parsed.clone());
        if let Some(cookies) = self.jar.get(&origin(&parsed)).filter(|c| !c.is_empty()) {
            let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header("cookie", header.join("; "));
        }
        if let Some(form) = form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_body(form));
        }
        let response = request.send().await.unwrap();
        let jar = self.jar.entry(origin(&parsed)).or_default();
        for value in response.headers().get_all("set-cookie") {
            let cookie = cookie::Cookie::parse(value.to_str().unwrap().to_string()).unwrap();
            let expired = cookie
                .max_age()
                .is_some_and(|a| a.is_zero() || a.is_negative())
                || cookie.value().is_empty();
            if expired {
                jar.remove(cookie.name());
            } else {
                jar.insert(cookie.name().to_string(), cookie.value().to_string());
            }
        }
        response
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        self.send(Method::GET, url, None).await
    }

    fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let parsed = reqwest::Url::parse(url).unwrap();
        self.jar.get(&origin(&parsed))?.get(name).cloned()
    }
}

/// An `application/x-www-form-urlencoded` body (reqwest's `form` feature is not enabled).
fn form_body(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn location(response: &reqwest::Response) -> String {
    let base = response.url().clone();
    let value = response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no redirect from {base}: {}", response.status()))
        .to_str()
        .unwrap();
    base.join(value).unwrap().to_string()
}

/// The `action` of the page's form, absolute.
fn form_action(page: &str, base: &reqwest::Url) -> String {
    let start = page.find("action=\"").expect("a form") + "action=\"".len();
    let end = start + page[start..].find('"').unwrap();
    base.join(&page[start..end]).unwrap().to_string()
}

/// Drives the provider from `authorize_url` as `account_id` (its login page, then consent when
/// asked) until it redirects back to `redirect_prefix`; returns that callback URL.
async fn authorize(
    browser: &mut Browser,
    authorize_url: &str,
    account_id: &str,
    redirect_prefix: &str,
) -> String {
    let mut url = authorize_url.to_string();
    for _ in 0..12 {
        if url.starts_with(redirect_prefix) {
            return url;
        }
        let response = browser.get(&url).await;
        if response.status().is_redirection() {
            url = location(&response);
            continue;
        }
        let page_url = response.url().clone();
        let page = response.text().await.unwrap();
        let action = form_action(&page, &page_url);
        let submitted = if page.contains("name=\"login\"") {
            let form = [
                ("prompt", "login"),
                ("login", account_id),
                ("password", "any"),
            ];
            browser.send(Method::POST, &action, Some(&form)).await
        } else {
            browser
                .send(Method::POST, &action, Some(&[("prompt", "consent")]))
                .await
        };
        assert!(
            submitted.status().is_redirection(),
            "the provider's form answered {}",
            submitted.status()
        );
        url = location(&submitted);
    }
    panic!("the provider never redirected back");
}

impl Site {
    fn callback_prefix(&self) -> String {
        self.t.url("/auth/oidc/callback")
    }

    /// Starts a sign-in in `browser` and lets the provider authenticate `account_id`; returns
    /// the callback URL the provider sent the browser to (not yet visited).
    async fn until_callback(&self, browser: &mut Browser, account_id: &str, query: &str) -> String {
        let begin = browser
            .get(&self.t.url(&format!("/auth/oidc{query}")))
            .await;
        assert_eq!(begin.status(), StatusCode::SEE_OTHER);
        let authorize_url = location(&begin);
        assert!(
            authorize_url.starts_with(&self.provider.issuer),
            "{authorize_url}"
        );
        authorize(browser, &authorize_url, account_id, &self.callback_prefix()).await
    }

    /// A whole sign-in; returns the callback's redirect target.
    async fn sign_in(&self, browser: &mut Browser, account_id: &str) -> String {
        let callback = self.until_callback(browser, account_id, "").await;
        let done = browser.get(&callback).await;
        assert_eq!(done.status(), StatusCode::SEE_OTHER);
        location(&done)
    }

    async fn me(&self, browser: &Browser) -> (StatusCode, Value) {
        let Some(session) = browser.cookie(&self.t.base, "cocov_session") else {
            return (StatusCode::UNAUTHORIZED, Value::Null);
        };
        let response = self
            .t
            .client
            .get(self.t.url("/v1/me"))
            .header("cookie", format!("cocov_session={session}"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn user_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.t.app().db)
            .await
            .unwrap()
    }
}

fn refused_with(target: &str, code: &str) {
    assert!(
        target.ends_with(&format!("/sign-in?error={code}")),
        "expected a refusal with {code}, got a redirect to {target}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_creates_the_user_and_a_session_and_follows_the_subject() {
    let s = site(json!({"alice-sub": account("alice", &["devs"])}), true).await;
    let mut browser = Browser::new();
    let callback = s
        .until_callback(
            &mut browser,
            "alice-sub",
            "?return_to=%2Frepos%2Fone%3Ftab%3Dissues",
        )
        .await;
    assert!(
        browser.cookie(&s.t.base, "cocov_oidc").is_some(),
        "the binding cookie"
    );
    let done = browser.get(&callback).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), s.t.url("/repos/one?tab=issues"));
    assert!(
        browser.cookie(&s.t.base, "cocov_oidc").is_none(),
        "the binding cookie is spent"
    );
    let (status, me) = s.me(&browser).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["login"], "alice");
    assert_eq!(me["admin"], false);
    let (issuer, subject): (String, String) =
        sqlx::query_as("SELECT oidc_issuer, oidc_subject FROM users WHERE login = 'alice'")
            .fetch_one(&s.t.app().db)
            .await
            .unwrap();
    assert_eq!(
        (issuer.as_str(), subject.as_str()),
        (s.provider.issuer.as_str(), "alice-sub")
    );

    // A rename at the provider renames the user: the subject is who they are.
    s.provider.set_accounts(json!({
        "alice-sub": account("alice2", &["devs"]),
        "mallory-sub": account("first-admin", &[]),
    }));
    let mut again = Browser::new();
    assert_eq!(s.sign_in(&mut again, "alice-sub").await, s.t.url("/"));
    assert_eq!(s.me(&again).await.1["login"], "alice2");
    assert_eq!(s.user_count().await, 2);

    // A provider account whose login matches an unlinked local account does not take it over.
    let mut mallory = Browser::new();
    refused_with(&s.sign_in(&mut mallory, "mallory-sub").await, "login_taken");
    assert_eq!(s.me(&mallory).await.0, StatusCode::UNAUTHORIZED);
    let linked: Option<String> =
        sqlx::query_scalar("SELECT oidc_subject FROM users WHERE login = 'first-admin'")
            .fetch_one(&s.t.app().db)
            .await
            .unwrap();
    assert_eq!(linked, None);
    s.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_groups_promote_and_demote_at_each_sign_in() {
    let s = site(
        json!({"bob-sub": account("bob", &["devs", ADMIN_GROUP])}),
        true,
    )
    .await;
    let mut browser = Browser::new();
    s.sign_in(&mut browser, "bob-sub").await;
    assert_eq!(s.me(&browser).await.1["admin"], true);

    s.provider
        .set_accounts(json!({"bob-sub": account("bob", &["devs"])}));
    let mut later = Browser::new();
    s.sign_in(&mut later, "bob-sub").await;
    assert_eq!(s.me(&later).await.1["admin"], false);
    // The earlier session is the same user: demoted too.
    assert_eq!(s.me(&browser).await.1["admin"], false);
    let groups: Vec<String> = sqlx::query_scalar(
        "SELECT group_name FROM user_oidc_groups g JOIN users u ON u.id = g.user_id WHERE u.login = 'bob'",
    )
    .fetch_all(&s.t.app().db)
    .await
    .unwrap();
    assert_eq!(groups, ["devs"]);
    s.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_signup_refuses_new_users_but_not_linked_ones() {
    let s = site(json!({"carol-sub": account("carol", &[])}), false).await;
    let mut browser = Browser::new();
    refused_with(&s.sign_in(&mut browser, "carol-sub").await, "signup_closed");
    assert_eq!(s.me(&browser).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(s.user_count().await, 1);

    // Linked beforehand (as an earlier sign-in would have): allowed in.
    let pool = &s.t.app().db;
    cocov::auth::users::create(pool, "carol", false, &cocov::audit::AuditActor::system())
        .await
        .unwrap();
    sqlx::query(
        "UPDATE users SET oidc_issuer = $1, oidc_subject = 'carol-sub' WHERE login = 'carol'",
    )
    .bind(&s.provider.issuer)
    .execute(pool)
    .await
    .unwrap();
    let mut browser = Browser::new();
    assert_eq!(s.sign_in(&mut browser, "carol-sub").await, s.t.url("/"));
    assert_eq!(s.me(&browser).await.1["login"], "carol");
    s.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_membership_grants_a_repository_until_revoked_or_left() {
    let s = site(json!({"dave-sub": account("dave", &["devs"])}), true).await;
    let admin = s.t.user_token("root", true).await;
    let (status, body) = call(
        &s.t,
        Method::POST,
        "/v1/repositories",
        Some(&admin),
        Some(json!({"name": "proj", "git_url": "https://git.example/proj.git"})),
    )
    .await;
    assert!(status.is_success(), "{body}");
    let grant = || {
        call(
            &s.t,
            Method::POST,
            "/v1/repositories/proj/members",
            Some(&admin),
            Some(json!({"group": "devs", "level": "read"})),
        )
    };
    assert_eq!(grant().await.0, StatusCode::CREATED);
    let mut browser = Browser::new();
    s.sign_in(&mut browser, "dave-sub").await;
    let session = browser.cookie(&s.t.base, "cocov_session").unwrap();
    let sees_proj = || async {
        s.t.client
            .get(s.t.url("/v1/repositories/proj"))
            .header("cookie", format!("cocov_session={session}"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(sees_proj().await, StatusCode::OK);

    let (status, _) = call(
        &s.t,
        Method::DELETE,
        "/v1/repositories/proj/members/groups/devs",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(sees_proj().await, StatusCode::NOT_FOUND, "revoked at once");

    assert_eq!(grant().await.0, StatusCode::CREATED);
    assert_eq!(sees_proj().await, StatusCode::OK);
    s.provider
        .set_accounts(json!({"dave-sub": account("dave", &["ops"])}));
    s.sign_in(&mut Browser::new(), "dave-sub").await;
    assert_eq!(
        sees_proj().await,
        StatusCode::NOT_FOUND,
        "left the group: even the old session loses it"
    );
    s.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_replayed_foreign_and_swapped_callbacks_are_refused() {
    let s = site(
        json!({"erin-sub": account("erin", &[]), "eve-sub": account("eve", &[])}),
        true,
    )
    .await;
    let with_param = |url: &str, name: &str, value: &str| {
        let mut parsed = reqwest::Url::parse(url).unwrap();
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == name {
                    value.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
        parsed.to_string()
    };
    let param = |url: &str, name: &str| {
        reqwest::Url::parse(url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };

    // A forged state.
    let mut browser = Browser::new();
    let callback = s.until_callback(&mut browser, "erin-sub", "").await;
    let forged = with_param(&callback, "state", "made-up-state");
    refused_with(&location(&browser.get(&forged).await), "state_mismatch");
    assert_eq!(s.me(&browser).await.0, StatusCode::UNAUTHORIZED);

    // Replayed: the genuine callback works once, never twice (not even in the same browser).
    let mut browser = Browser::new();
    let callback = s.until_callback(&mut browser, "erin-sub", "").await;
    let binding = browser.cookie(&s.t.base, "cocov_oidc").unwrap();
    assert_eq!(location(&browser.get(&callback).await), s.t.url("/"));
    let mut replayer = Browser::new();
    replayer
        .jar
        .entry(origin(&reqwest::Url::parse(&s.t.base).unwrap()))
        .or_default()
        .insert("cocov_oidc".into(), binding);
    refused_with(&location(&replayer.get(&callback).await), "state_mismatch");
    assert_eq!(s.me(&replayer).await.0, StatusCode::UNAUTHORIZED);

    // Bound to another browser: a victim's browser sent to the attacker's callback (login CSRF).
    let mut attacker = Browser::new();
    let callback = s.until_callback(&mut attacker, "eve-sub", "").await;
    let mut victim = Browser::new();
    victim.get(&s.t.url("/auth/oidc")).await; // the victim has a binding cookie of their own
    refused_with(&location(&victim.get(&callback).await), "state_mismatch");
    assert_eq!(s.me(&victim).await.0, StatusCode::UNAUTHORIZED);

    // A swapped code: the attacker's code injected into the victim's own flow (their state and
    // cookie). The code was issued for the attacker's PKCE challenge and nonce: refused.
    let mut attacker = Browser::new();
    let attackers = s.until_callback(&mut attacker, "eve-sub", "").await;
    let mut victim = Browser::new();
    let victims = s.until_callback(&mut victim, "erin-sub", "").await;
    let swapped = with_param(&victims, "code", &param(&attackers, "code"));
    let target = location(&victim.get(&swapped).await);
    assert!(
        target.ends_with("error=code_rejected") || target.ends_with("error=id_token_invalid"),
        "{target}"
    );
    assert_eq!(s.me(&victim).await.0, StatusCode::UNAUTHORIZED);
    s.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn return_to_must_be_a_path_on_this_site() {
    let s = site(json!({}), true).await;
    for bad in [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
        "evil.example",
        "/\t/evil.example",
    ] {
        let query: String = url::form_urlencoded::byte_serialize(bad.as_bytes()).collect();
        let response =
            s.t.client
                .get(s.t.url(&format!("/auth/oidc?return_to={query}")))
                .send()
                .await
                .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        common::requests::assert_error_body(&body, "oidc.invalid_return_to");
    }
    s.t.shutdown().await;
}

/// PKCE, state and nonce of a flow the test runs itself against the provider, to obtain a
/// genuine ID token for `client_id` with `nonce`.
async fn genuine_id_token(s: &Site, client_id: &str, account_id: &str, nonce: &str) -> String {
    let verifier = "a-test-verifier-that-is-long-enough-for-pkce-rules-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut authorize_url = reqwest::Url::parse(&format!("{}/auth", s.provider.issuer)).unwrap();
    authorize_url
        .query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile groups")
        .append_pair("redirect_uri", &s.callback_prefix())
        .append_pair("state", "test-state")
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut browser = Browser::new();
    let callback = authorize(
        &mut browser,
        authorize_url.as_str(),
        account_id,
        &s.callback_prefix(),
    )
    .await;
    let code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = reqwest::Client::new()
        .post(format!("{}/token", s.provider.issuer))
        .basic_auth(client_id, Some(CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &s.callback_prefix()),
            ("code_verifier", verifier),
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{tokens}"))
        .to_string()
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn id_tokens_of_another_flow_client_or_key_are_refused() {
    let s = site(json!({"frank-sub": account("frank", &["devs"])}), true).await;
    let provider = s.t.app().oidc.clone().expect("OIDC configured");
    let invalid = |r: Result<cocov::auth::oidc::IdClaims, cocov::auth::oidc::SignInError>| match r {
        Err(e) => e.code().to_string(),
        Ok(claims) => panic!("accepted a token for {}", claims.subject),
    };

    // The provider's genuine token, for this flow: accepted.
    let token = genuine_id_token(&s, CLIENT_ID, "frank-sub", "nonce-one").await;
    let claims = provider.verify_id_token(&token, "nonce-one").await.unwrap();
    assert_eq!(claims.subject, "frank-sub");
    // The same genuine token presented to another flow (another nonce).
    assert_eq!(
        invalid(provider.verify_id_token(&token, "nonce-two").await),
        "id_token_invalid"
    );
    // A genuine token issued to another client of the same provider.
    let other = genuine_id_token(&s, "other", "frank-sub", "nonce-one").await;
    assert_eq!(
        invalid(provider.verify_id_token(&other, "nonce-one").await),
        "id_token_invalid"
    );

    // Tokens with the right claims not signed by the provider's key: signed with another RSA
    // key under the provider's key id, or under an unknown one; `none`; HS256 keyed with the
    // provider's public key.
    let genuine_claims = claims_of(&token);
    let kid = header_of(&token)["kid"].as_str().unwrap().to_string();
    let foreign =
        jsonwebtoken::EncodingKey::from_rsa_pem(common::fake_github::private_key_pem().as_bytes())
            .unwrap();
    for kid in [kid.clone(), "unknown-key".to_string()] {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid);
        let forged = jsonwebtoken::encode(&header, &genuine_claims, &foreign).unwrap();
        assert_eq!(
            invalid(provider.verify_id_token(&forged, "nonce-one").await),
            "id_token_invalid"
        );
    }
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": kid})),
        b64(&genuine_claims)
    );
    assert_eq!(
        invalid(provider.verify_id_token(&unsigned, "nonce-one").await),
        "id_token_invalid"
    );
    let jwks: Value = reqwest::get(format!("{}/jwks", s.provider.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public_n = jwks["keys"][0]["n"].as_str().unwrap().to_string();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid);
    let hmac = jsonwebtoken::encode(
        &header,
        &genuine_claims,
        &jsonwebtoken::EncodingKey::from_secret(public_n.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        invalid(provider.verify_id_token(&hmac, "nonce-one").await),
        "id_token_invalid"
    );
    s.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_oidc_or_with_the_provider_down() {
    // Not configured: the start is a JSON 404, the callback a sign-in page error.
    let t = TestApp::start().await;
    let response = t.client.get(t.url("/auth/oidc")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    common::requests::assert_error_body(&response.json().await.unwrap(), "oidc.disabled");
    let mut browser = Browser::new();
    let callback = browser
        .get(&t.url("/auth/oidc/callback?code=x&state=y"))
        .await;
    refused_with(&location(&callback), "oidc_disabled");
    t.shutdown().await;

    // Configured, the provider unreachable: 502 naming it, and local accounts are off ("auto").
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, CLIENT_SECRET).unwrap();
    let t = TestApp::start_with(|c| {
        c.oidc.issuer_url = format!("http://127.0.0.1:{}", free_port());
        c.oidc.client_id = CLIENT_ID.into();
        c.oidc.client_secret_file = secret_file;
    })
    .await;
    let response = t.client.get(t.url("/auth/oidc")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    common::requests::assert_error_body(
        &response.json().await.unwrap(),
        "oidc.provider_unavailable",
    );
    let (status, body) = call(
        &t,
        Method::POST,
        "/auth/local",
        None,
        Some(json!({"login": "x", "password": "y"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "session.local_disabled");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn login_and_groups_come_from_userinfo_when_the_id_token_lacks_them() {
    let s = site_with(
        json!({"grace-sub": account("grace", &[ADMIN_GROUP])}),
        true,
        true,
    )
    .await;
    // This provider's ID tokens carry neither claim.
    let token = genuine_id_token(&s, CLIENT_ID, "grace-sub", "n").await;
    let claims = claims_of(&token);
    assert!(
        claims.get("preferred_username").is_none() && claims.get("groups").is_none(),
        "{claims}"
    );
    let mut browser = Browser::new();
    assert_eq!(s.sign_in(&mut browser, "grace-sub").await, s.t.url("/"));
    let (_, me) = s.me(&browser).await;
    assert_eq!(
        (me["login"].as_str(), me["admin"].as_bool()),
        (Some("grace"), Some(true)),
        "{me}"
    );
    s.t.shutdown().await;
}
