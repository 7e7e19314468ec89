//! A fake GitHub REST API for tests: exactly the endpoints cocov calls, with GitHub's response
//! shapes (status codes, field names, `Link` pagination, `{"message","documentation_url"}`
//! errors). It checks credentials the way GitHub does: the app JWT's RS256 signature (with the
//! App's public key, `tests/fixtures/github/app-key.pub.pem`) on the access-token route, an
//! issued, unexpired installation token everywhere else. Every call is recorded, and failures
//! (5xx, rate limits, hangs) can be injected per path.
//!
//! `/orgs/{org}/repos` with the installation token lists every repository of the organisation
//! in GitHub's order (`sort`, `direction`: newest first by default), a page at a time.
//!
//! It also plays GitHub's web side of OAuth sign-in: `/login/oauth/authorize` signs in as the
//! user a test chose ([`FakeGithub::sign_in_as`], like the browser's GitHub session) and sends
//! the browser back with a code; `/login/oauth/access_token` trades a code (once, for the same
//! redirect URI and the right client secret) for a `gho_` user token, which `/user`,
//! `/user/emails` and `/orgs/{org}/repos` (only the repositories the user collaborates on, with
//! their permissions) accept.
//!
//! Paths may carry GHES's `/api/v3` prefix; calls are recorded without it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use cocov::config::GithubConfig;
use cocov::github::Permissions;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub const ORG: &str = "acme";
pub const APP_ID: &str = "31337";
pub const INSTALLATION_ID: &str = "4242";
pub const WEBHOOK_SECRET: &str = "fake-webhook-secret";
pub const OAUTH_CLIENT_ID: &str = "Iv1.fakeclientid";
pub const OAUTH_CLIENT_SECRET: &str = "fake-oauth-secret";
const DOCS: &str = "https://docs.github.com/rest";
const GHES_PREFIX: &str = "/api/v3";

pub fn private_key_pem() -> String {
    std::fs::read_to_string(fixture("app-key.pem")).expect("tests/fixtures/github/app-key.pem")
}

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// How a recorded call authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKind {
    None,
    /// A valid app JWT.
    AppJwt,
    /// A valid installation token (the token).
    Installation(String),
    /// A valid user OAuth token, of the user with this GitHub id.
    User(i64),
    /// Credentials that were refused, and why.
    Invalid(String),
}

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Without the `/api/v3` prefix.
    pub path: String,
    pub query: String,
    pub auth: AuthKind,
    pub body: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct FakeCollaborator {
    pub id: i64,
    pub login: String,
    pub permissions: Permissions,
}

#[derive(Debug, Clone)]
pub struct FakeRepo {
    pub id: i64,
    pub name: String,
    pub default_branch: String,
    pub description: Option<String>,
    pub private: bool,
    pub archived: bool,
    pub collaborators: Vec<FakeCollaborator>,
    /// GitHub's `created_at` and `pushed_at` (`None`: never pushed, GitHub's `null`).
    pub created_at: String,
    pub pushed_at: Option<String>,
}

impl FakeRepo {
    pub fn new(id: i64, name: &str) -> FakeRepo {
        FakeRepo {
            id,
            name: name.into(),
            default_branch: "main".into(),
            description: None,
            private: true,
            archived: false,
            collaborators: Vec::new(),
            created_at: "2024-01-02T03:04:05Z".into(),
            pushed_at: Some("2024-01-02T03:04:05Z".into()),
        }
    }

    /// When it was created and last pushed to (ISO 8601, as GitHub writes them).
    pub fn times(mut self, created_at: &str, pushed_at: Option<&str>) -> FakeRepo {
        self.created_at = created_at.into();
        self.pushed_at = pushed_at.map(Into::into);
        self
    }

    pub fn description(mut self, d: &str) -> FakeRepo {
        self.description = Some(d.into());
        self
    }

    pub fn default_branch(mut self, b: &str) -> FakeRepo {
        self.default_branch = b.into();
        self
    }

    pub fn collaborator(mut self, id: i64, login: &str, permissions: Permissions) -> FakeRepo {
        self.collaborators.push(FakeCollaborator {
            id,
            login: login.into(),
            permissions,
        });
        self
    }
}

/// Permissions as GitHub reports them for a role ("admin", "maintain", "write", "triage",
/// "read"): each role includes the ones below it.
pub fn role(name: &str) -> Permissions {
    let rank = ["read", "triage", "write", "maintain", "admin"]
        .iter()
        .position(|r| *r == name)
        .unwrap_or_else(|| panic!("unknown role {name}"));
    Permissions {
        pull: true,
        triage: rank >= 1,
        push: rank >= 2,
        maintain: rank >= 3,
        admin: rank >= 4,
    }
}

#[derive(Debug, Clone)]
pub struct FakeCommit {
    pub sha: String,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    pub date: OffsetDateTime,
}

/// A GitHub account that can sign in.
#[derive(Debug, Clone)]
pub struct FakeUser {
    pub id: i64,
    pub login: String,
    /// (address, verified)
    pub emails: Vec<(String, bool)>,
}

#[derive(Debug, Clone)]
enum Fault {
    Status(u16),
    RateLimit { retry_after: u64 },
    Hang(Duration),
}

#[derive(Debug)]
struct Injection {
    path: String,
    remaining: usize,
    fault: Fault,
}

struct State {
    page_size: usize,
    token_lifetime: Duration,
    tokens: HashMap<String, OffsetDateTime>,
    repos: Vec<FakeRepo>,
    members: Vec<String>,
    outside_collaborators: Vec<(i64, String)>,
    files: HashMap<(String, String, String), Vec<u8>>,
    /// Per (repo, branch), newest first.
    commits: HashMap<(String, String), Vec<FakeCommit>>,
    statuses: HashMap<(String, String), Vec<Value>>,
    users: HashMap<i64, FakeUser>,
    /// Who `/login/oauth/authorize` signs in as.
    signed_in: Option<i64>,
    /// Issued codes: (user id, redirect URI they were issued for).
    codes: HashMap<String, (i64, String)>,
    user_tokens: HashMap<String, i64>,
    calls: Vec<Call>,
    injections: Vec<Injection>,
}

pub struct FakeGithub {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGithub {
    pub async fn start() -> FakeGithub {
        let pem = std::fs::read(fixture("app-key.pub.pem")).expect("app-key.pub.pem");
        let public_key =
            Arc::new(jsonwebtoken::DecodingKey::from_rsa_pem(&pem).expect("public key parses"));
        let state = Arc::new(Mutex::new(State {
            page_size: 2,
            token_lifetime: Duration::from_secs(3600),
            tokens: HashMap::new(),
            repos: Vec::new(),
            members: Vec::new(),
            outside_collaborators: Vec::new(),
            files: HashMap::new(),
            commits: HashMap::new(),
            statuses: HashMap::new(),
            users: HashMap::new(),
            signed_in: None,
            codes: HashMap::new(),
            user_tokens: HashMap::new(),
            calls: Vec::new(),
            injections: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake GitHub");
        let addr = listener.local_addr().unwrap();
        let server = Server {
            state: state.clone(),
            public_key,
            base: format!("http://{addr}"),
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let server = server.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let server = server.clone();
                        async move { Ok::<_, Infallible>(server.handle(req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeGithub { addr, state, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A configuration pointing the client here: app id, the test key (base64 of the PEM),
    /// installation id, org, webhook secret, short timeouts. `git_base_url` is left empty (it
    /// derives to this server); set it to a [`super::git_server::GitServer`]'s base URL to fetch.
    pub fn config(&self) -> GithubConfig {
        GithubConfig {
            api_url: self.base_url(),
            git_base_url: String::new(),
            org_name: ORG.into(),
            app_id: APP_ID.into(),
            app_private_key: base64::engine::general_purpose::STANDARD.encode(private_key_pem()),
            app_installation_id: INSTALLATION_ID.into(),
            web_url: String::new(),
            oauth_client_id: OAUTH_CLIENT_ID.into(),
            oauth_client_secret: OAUTH_CLIENT_SECRET.into(),
            webhook_secret_key: WEBHOOK_SECRET.into(),
            allow_outside_collaborators: true,
            request_timeout_seconds: 2,
            max_retries: 3,
            max_rate_limit_wait_seconds: 5,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Items per page at most (default 2, so lists of 3+ paginate).
    pub fn set_page_size(&self, n: usize) {
        self.state().page_size = n.max(1);
    }

    /// Lifetime of tokens issued from now on (default one hour, like GitHub).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().token_lifetime = lifetime;
    }

    pub fn add_repo(&self, repo: FakeRepo) {
        let mut s = self.state();
        s.repos.retain(|r| r.name != repo.name);
        s.repos.push(repo);
    }

    pub fn add_member(&self, login: &str) {
        self.state().members.push(login.into());
    }

    /// A GitHub account with its e-mails (address, verified).
    pub fn add_user(&self, id: i64, login: &str, emails: &[(&str, bool)]) {
        let emails = emails.iter().map(|(e, v)| (e.to_string(), *v)).collect();
        self.state().users.insert(
            id,
            FakeUser {
                id,
                login: login.into(),
                emails,
            },
        );
    }

    /// The account changes its login (its id stays); its organisation membership follows.
    pub fn rename_user(&self, id: i64, login: &str) {
        let mut s = self.state();
        let Some(user) = s.users.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut user.login, login.into());
        for member in s.members.iter_mut().filter(|m| **m == old) {
            *member = login.into();
        }
    }

    /// The GitHub session of the browser: who `/login/oauth/authorize` signs in as.
    pub fn sign_in_as(&self, id: i64) {
        self.state().signed_in = Some(id);
    }

    /// Whether `token` is a user token GitHub issued.
    pub fn issued_user_token(&self, token: &str) -> bool {
        self.state().user_tokens.contains_key(token)
    }

    pub fn remove_outside_collaborators(&self) {
        self.state().outside_collaborators.clear();
    }

    pub fn add_outside_collaborator(&self, id: i64, login: &str) {
        self.state().outside_collaborators.push((id, login.into()));
    }

    pub fn set_file(&self, repo: &str, path: &str, git_ref: &str, content: &[u8]) {
        self.state()
            .files
            .insert((repo.into(), path.into(), git_ref.into()), content.to_vec());
    }

    /// Makes `commit` the head of `branch` (older ones stay behind it).
    pub fn push_commit(&self, repo: &str, branch: &str, commit: FakeCommit) {
        self.state()
            .commits
            .entry((repo.into(), branch.into()))
            .or_default()
            .insert(0, commit);
    }

    /// The next `n` calls to `path` answer `status` (e.g. 502) with GitHub's error body.
    pub fn fail_next(&self, path: &str, n: usize, status: u16) {
        self.inject(path, n, Fault::Status(status));
    }

    /// The next `n` calls to `path` answer 403 "API rate limit exceeded" with
    /// `Retry-After: <secs>`, `X-RateLimit-Remaining: 0` and `X-RateLimit-Reset`.
    pub fn rate_limit_next(&self, path: &str, n: usize, retry_after_secs: u64) {
        self.inject(
            path,
            n,
            Fault::RateLimit {
                retry_after: retry_after_secs,
            },
        );
    }

    /// The next `n` calls to `path` wait `delay` before answering normally.
    pub fn hang_next(&self, path: &str, n: usize, delay: Duration) {
        self.inject(path, n, Fault::Hang(delay));
    }

    fn inject(&self, path: &str, n: usize, fault: Fault) {
        self.state().injections.push(Injection {
            path: path.into(),
            remaining: n,
            fault,
        });
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    pub fn calls_to(&self, path: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path == path)
            .collect()
    }

    pub fn clear_calls(&self) {
        self.state().calls.clear();
    }

    pub fn access_token_path() -> String {
        format!("/app/installations/{INSTALLATION_ID}/access_tokens")
    }

    /// How many installation tokens were requested (successful or not).
    pub fn token_requests(&self) -> usize {
        self.calls_to(&Self::access_token_path()).len()
    }

    /// The bodies POSTed as statuses for (repo, sha), oldest first.
    pub fn statuses(&self, repo: &str, sha: &str) -> Vec<Value> {
        self.state()
            .statuses
            .get(&(repo.to_string(), sha.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Whether `token` is an issued installation token that has not expired.
    pub fn token_is_valid(&self, token: &str) -> bool {
        token_valid(&self.state(), token)
    }

    /// A checker for [`super::git_server::GitServer`]: accepts exactly the valid tokens.
    pub fn token_checker(&self) -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
        let state = self.state.clone();
        Arc::new(move |token| token_valid(&state.lock().unwrap_or_else(|p| p.into_inner()), token))
    }

    /// Revokes every issued installation token (as an App reinstall does).
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }
}

fn token_valid(state: &State, token: &str) -> bool {
    state
        .tokens
        .get(token)
        .is_some_and(|exp| *exp > OffsetDateTime::now_utc())
}

#[derive(Clone)]
struct Server {
    state: Arc<Mutex<State>>,
    public_key: Arc<jsonwebtoken::DecodingKey>,
    base: String,
}

#[derive(serde::Deserialize)]
struct Claims {
    iat: i64,
    exp: i64,
}

type Reply = Response<Full<Bytes>>;

fn reply(status: u16, body: Value) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn message(status: u16, text: &str) -> Reply {
    reply(status, json!({"message": text, "documentation_url": DOCS}))
}

fn not_found() -> Reply {
    message(404, "Not Found")
}

fn empty(status: u16) -> Reply {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn timestamp(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0).unwrap().format(&Rfc3339).unwrap()
}

impl Server {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn handle(&self, req: Request<Incoming>) -> Reply {
        let method = req.method().as_str().to_string();
        let full_path = req.uri().path().to_string();
        let (prefix, path) = match full_path.strip_prefix(GHES_PREFIX) {
            Some(rest) if rest.starts_with('/') => (GHES_PREFIX, rest.to_string()),
            _ => ("", full_path.clone()),
        };
        let query = req.uri().query().unwrap_or("").to_string();
        let auth_header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        let form: HashMap<String, String> = match &body {
            Some(Value::Object(map)) => map
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect(),
            _ => url::form_urlencoded::parse(&bytes).into_owned().collect(),
        };
        let auth = self.authenticate(auth_header.as_deref());

        let fault = {
            let mut s = self.state();
            s.calls.push(Call {
                method: method.clone(),
                path: path.clone(),
                query: query.clone(),
                auth: auth.clone(),
                body: body.clone(),
            });
            let found = s
                .injections
                .iter_mut()
                .find(|i| i.path == path && i.remaining > 0);
            found.map(|i| {
                i.remaining -= 1;
                i.fault.clone()
            })
        };
        match fault {
            Some(Fault::Status(status)) => {
                return message(status, "Server Error");
            }
            Some(Fault::RateLimit { retry_after }) => {
                let reset = OffsetDateTime::now_utc().unix_timestamp() + retry_after as i64;
                let mut r = message(
                    403,
                    "API rate limit exceeded for installation ID 4242. If you reach out to GitHub Support for help, please include the request ID.",
                );
                let h = r.headers_mut();
                h.insert("retry-after", retry_after.to_string().parse().unwrap());
                h.insert("x-ratelimit-limit", "5000".parse().unwrap());
                h.insert("x-ratelimit-remaining", "0".parse().unwrap());
                h.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
                return r;
            }
            Some(Fault::Hang(delay)) => tokio::time::sleep(delay).await,
            None => {}
        }

        let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let segments: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();

        match (method.as_str(), segs.as_slice()) {
            ("GET", ["login", "oauth", "authorize"]) => return self.authorize(&params),
            ("POST", ["login", "oauth", "access_token"]) => return self.access_token(&form),
            _ => {}
        }
        if let ["app", "installations", id, "access_tokens"] = segs.as_slice() {
            if method != "POST" {
                return not_found();
            }
            return match auth {
                AuthKind::AppJwt if *id == INSTALLATION_ID => self.issue_token(),
                AuthKind::AppJwt => not_found(),
                AuthKind::Invalid(why) => message(401, &why),
                _ => message(401, "A JSON web token could not be decoded"),
            };
        }
        let api = format!("{}{prefix}", self.base);
        if let AuthKind::User(id) = auth {
            let page = Page {
                base: format!("{}{prefix}{path}", self.base),
                params: &params,
            };
            return self.as_user(id, &method, &segs, &api, page);
        }
        match &auth {
            AuthKind::Installation(_) => {}
            AuthKind::User(_) => unreachable!("answered above"),
            AuthKind::Invalid(why) => return message(401, why),
            AuthKind::AppJwt | AuthKind::None => {
                return message(401, "Requires authentication");
            }
        }
        let page = Page {
            base: format!("{}{prefix}{path}", self.base),
            params: &params,
        };
        let s = &mut *self.state();
        let page_size = s.page_size;
        match (method.as_str(), segs.as_slice()) {
            ("GET", ["orgs", org, "repos"]) if *org == ORG => {
                // GitHub's order: `sort` (created by default), `direction` (ascending only
                // for full_name by default).
                // Ties keep the order the repositories were added in.
                let mut repos: Vec<&FakeRepo> = s.repos.iter().collect();
                let by_name = params.get("sort").is_some_and(|v| v == "full_name");
                let ascending = params
                    .get("direction")
                    .map_or(by_name, |d| d.as_str() == "asc");
                repos.sort_by(|a, b| {
                    let order = if by_name {
                        a.name.to_lowercase().cmp(&b.name.to_lowercase())
                    } else {
                        a.created_at.cmp(&b.created_at)
                    };
                    if ascending { order } else { order.reverse() }
                });
                let items: Vec<Value> = repos.into_iter().map(|r| repo_json(&api, r)).collect();
                page.reply(items, page_size)
            }
            ("GET", ["orgs", org, "members", login]) if *org == ORG => {
                if s.members.iter().any(|m| m.eq_ignore_ascii_case(login)) {
                    empty(204)
                } else {
                    not_found()
                }
            }
            ("GET", ["orgs", org, "outside_collaborators"]) if *org == ORG => {
                let items: Vec<Value> = s
                    .outside_collaborators
                    .iter()
                    .map(|(id, login)| user_json(&api, *id, login))
                    .collect();
                page.reply(items, page_size)
            }
            ("GET", ["repositories", id]) => match s.repos.iter().find(|r| r.id.to_string() == *id)
            {
                Some(r) => reply(200, repo_json(&api, r)),
                None => not_found(),
            },
            ("GET", ["repos", org, name]) if *org == ORG => match find_repo(s, name) {
                Some(r) => reply(200, repo_json(&api, r)),
                None => not_found(),
            },
            ("GET", ["repos", org, name, "collaborators"]) if *org == ORG => {
                let Some(r) = find_repo(s, name) else {
                    return not_found();
                };
                let items: Vec<Value> = r
                    .collaborators
                    .iter()
                    .map(|c| collaborator_json(&api, c))
                    .collect();
                page.reply(items, page_size)
            }
            ("POST", ["repos", org, name, "statuses", sha]) if *org == ORG => {
                if find_repo(s, name).is_none() {
                    return not_found();
                }
                create_status(s, &api, name, sha, body)
            }
            ("GET", ["repos", org, name, "contents", rest @ ..]) if *org == ORG => {
                let Some(r) = find_repo(s, name) else {
                    return not_found();
                };
                let git_ref = params
                    .get("ref")
                    .cloned()
                    .unwrap_or_else(|| r.default_branch.clone());
                contents(s, &api, name, &rest.join("/"), &git_ref)
            }
            ("GET", ["repos", org, name, "commits"]) if *org == ORG => {
                let Some(r) = find_repo(s, name) else {
                    return not_found();
                };
                let branch = params
                    .get("sha")
                    .cloned()
                    .unwrap_or_else(|| r.default_branch.clone());
                let any = s.commits.keys().any(|(repo, _)| repo == name);
                if !any {
                    return message(409, "Git Repository is empty.");
                }
                let Some(list) = s.commits.get(&(name.to_string(), branch.clone())) else {
                    return message(404, &format!("No commit found for SHA: {branch}"));
                };
                let items: Vec<Value> = list.iter().map(|c| commit_json(&api, name, c)).collect();
                page.reply(items, page_size)
            }
            _ => not_found(),
        }
    }

    fn authenticate(&self, header: Option<&str>) -> AuthKind {
        let Some(header) = header else {
            return AuthKind::None;
        };
        let credential = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("token "))
            .map(str::trim);
        let Some(credential) = credential else {
            return AuthKind::Invalid(format!("unsupported Authorization scheme: {header}"));
        };
        if credential.starts_with("gho_") {
            return match self.state().user_tokens.get(credential) {
                Some(id) => AuthKind::User(*id),
                None => AuthKind::Invalid("Bad credentials".into()),
            };
        }
        if credential.starts_with("ghs_") {
            return if token_valid(&self.state(), credential) {
                AuthKind::Installation(credential.to_string())
            } else {
                AuthKind::Invalid("Bad credentials".into())
            };
        }
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&[APP_ID]);
        validation.set_required_spec_claims(&["exp", "iat", "iss"]);
        match jsonwebtoken::decode::<Claims>(credential, &self.public_key, &validation) {
            Ok(data) => {
                let now = OffsetDateTime::now_utc().unix_timestamp();
                if data.claims.exp - data.claims.iat > 600 {
                    AuthKind::Invalid(
                        "'Expiration time' claim ('exp') is too far in the future".into(),
                    )
                } else if data.claims.iat > now + 60 {
                    AuthKind::Invalid("'Issued at' claim ('iat') must be an Integer representing a time in the past".into())
                } else {
                    AuthKind::AppJwt
                }
            }
            Err(e) => AuthKind::Invalid(format!("A JSON web token could not be decoded ({e})")),
        }
    }

    /// GitHub's authorize page, already consented: back to `redirect_uri` with a code.
    fn authorize(&self, params: &HashMap<String, String>) -> Reply {
        let mut s = self.state();
        if params.get("client_id").map(String::as_str) != Some(OAUTH_CLIENT_ID) {
            return message(404, "Not Found (unknown client_id)");
        }
        let (Some(redirect_uri), Some(state)) = (params.get("redirect_uri"), params.get("state"))
        else {
            return message(400, "redirect_uri and state are required");
        };
        let Some(user) = s.signed_in else {
            return message(401, "Sign in to GitHub first");
        };
        let code = uuid::Uuid::new_v4().simple().to_string()[..20].to_string();
        s.codes.insert(code.clone(), (user, redirect_uri.clone()));
        let mut target = url::Url::parse(redirect_uri).expect("redirect_uri is a URL");
        target
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", state);
        Response::builder()
            .status(302)
            .header("location", target.as_str())
            .body(Full::new(Bytes::new()))
            .unwrap()
    }

    /// The code exchange: GitHub answers refusals with 200 and an `error` field.
    fn access_token(&self, form: &HashMap<String, String>) -> Reply {
        let mut s = self.state();
        let refuse = |error: &str, description: &str| {
            reply(
                200,
                json!({"error": error, "error_description": description, "error_uri": DOCS}),
            )
        };
        if form.get("client_id").map(String::as_str) != Some(OAUTH_CLIENT_ID)
            || form.get("client_secret").map(String::as_str) != Some(OAUTH_CLIENT_SECRET)
        {
            return refuse(
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
            );
        }
        let code = form.get("code").cloned().unwrap_or_default();
        let Some((user, redirect_uri)) = s.codes.remove(&code) else {
            return refuse(
                "bad_verification_code",
                "The code passed is incorrect or expired.",
            );
        };
        if form.get("redirect_uri") != Some(&redirect_uri) {
            return refuse(
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            );
        }
        let random = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let token = format!("gho_{}", &random[..36]);
        s.user_tokens.insert(token.clone(), user);
        reply(
            200,
            json!({"access_token": token, "token_type": "bearer", "scope": "repo,user:email"}),
        )
    }

    /// The calls a user token may make.
    fn as_user(&self, id: i64, method: &str, segs: &[&str], api: &str, page: Page) -> Reply {
        let s = self.state();
        let Some(user) = s.users.get(&id) else {
            return message(401, "Bad credentials");
        };
        match (method, segs) {
            ("GET", ["user"]) => {
                let mut v = user_json(api, user.id, &user.login);
                v["name"] = Value::Null;
                v["email"] = Value::Null;
                reply(200, v)
            }
            ("GET", ["user", "emails"]) => {
                let items: Vec<Value> = user
                    .emails
                    .iter()
                    .enumerate()
                    .map(|(i, (email, verified))| {
                        json!({"email": email, "verified": verified, "primary": i == 0, "visibility": null})
                    })
                    .collect();
                page.reply(items, s.page_size)
            }
            ("GET", ["orgs", org, "repos"]) if *org == ORG => {
                let items: Vec<Value> = s
                    .repos
                    .iter()
                    .filter_map(|r| {
                        let c = r.collaborators.iter().find(|c| c.id == id)?;
                        let mut v = repo_json(api, r);
                        v["permissions"] = collaborator_json(api, c)["permissions"].clone();
                        Some(v)
                    })
                    .collect();
                page.reply(items, s.page_size)
            }
            _ => message(403, "Resource not accessible by user token in this fake"),
        }
    }

    fn issue_token(&self) -> Reply {
        let mut s = self.state();
        // GitHub's installation tokens: `ghs_` and 36 alphanumerics.
        let random = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let token = format!("ghs_{}", &random[..36]);
        let expires_at = (OffsetDateTime::now_utc() + s.token_lifetime)
            .replace_nanosecond(0)
            .unwrap();
        s.tokens.insert(token.clone(), expires_at);
        reply(
            201,
            json!({
                "token": token,
                "expires_at": timestamp(expires_at),
                "permissions": {"contents": "read", "metadata": "read", "members": "read", "statuses": "write"},
                "repository_selection": "all",
            }),
        )
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn find_repo<'a>(s: &'a State, name: &str) -> Option<&'a FakeRepo> {
    s.repos.iter().find(|r| r.name.eq_ignore_ascii_case(name))
}

/// A list answered one page at a time with GitHub's `Link` header.
struct Page<'a> {
    base: String,
    params: &'a HashMap<String, String>,
}

impl Page<'_> {
    fn reply(&self, items: Vec<Value>, max_page_size: usize) -> Reply {
        let per_page = self
            .params
            .get("per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(30)
            .clamp(1, 100)
            .min(max_page_size);
        let page = self
            .params
            .get("page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let last = items.len().div_ceil(per_page).max(1);
        let chunk: Vec<Value> = items
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect();
        let mut response = reply(200, Value::Array(chunk));
        let link_to = |n: usize| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in self.params.iter().filter(|(k, _)| *k != "page") {
                query.append_pair(k, v);
            }
            query.append_pair("page", &n.to_string());
            format!("{}?{}", self.base, query.finish())
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(format!("<{}>; rel=\"prev\"", link_to(page - 1)));
        }
        if page < last {
            links.push(format!("<{}>; rel=\"next\"", link_to(page + 1)));
            links.push(format!("<{}>; rel=\"last\"", link_to(last)));
        }
        if page > 1 {
            links.push(format!("<{}>; rel=\"first\"", link_to(1)));
        }
        if !links.is_empty() {
            response
                .headers_mut()
                .insert("link", links.join(", ").parse().unwrap());
        }
        response
    }
}

fn user_json(api: &str, id: i64, login: &str) -> Value {
    json!({
        "login": login,
        "id": id,
        "node_id": format!("MDQ6VXNlcj{id}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "url": format!("{api}/users/{login}"),
        "html_url": format!("https://github.com/{login}"),
        "type": "User",
        "site_admin": false,
    })
}

fn collaborator_json(api: &str, c: &FakeCollaborator) -> Value {
    let p = c.permissions;
    let role_name = if p.admin {
        "admin"
    } else if p.maintain {
        "maintain"
    } else if p.push {
        "write"
    } else if p.triage {
        "triage"
    } else {
        "read"
    };
    let mut v = user_json(api, c.id, &c.login);
    v["permissions"] = json!({
        "admin": p.admin, "maintain": p.maintain, "push": p.push, "triage": p.triage, "pull": p.pull,
    });
    v["role_name"] = role_name.into();
    v
}

fn repo_json(api: &str, r: &FakeRepo) -> Value {
    json!({
        "id": r.id,
        "node_id": format!("R_kgDO{}", r.id),
        "name": r.name,
        "full_name": format!("{ORG}/{}", r.name),
        "private": r.private,
        "owner": {"login": ORG, "id": 1, "type": "Organization", "url": format!("{api}/orgs/{ORG}")},
        "html_url": format!("https://github.com/{ORG}/{}", r.name),
        "description": r.description,
        "fork": false,
        "url": format!("{api}/repos/{ORG}/{}", r.name),
        "archived": r.archived,
        "disabled": false,
        "visibility": if r.private { "private" } else { "public" },
        "default_branch": r.default_branch,
        "created_at": r.created_at,
        "updated_at": r.pushed_at.as_deref().unwrap_or(&r.created_at),
        "pushed_at": r.pushed_at,
        "clone_url": format!("https://github.com/{ORG}/{}.git", r.name),
    })
}

fn commit_json(api: &str, repo: &str, c: &FakeCommit) -> Value {
    let actor = json!({"name": c.author_name, "email": c.author_email, "date": timestamp(c.date)});
    json!({
        "sha": c.sha,
        "node_id": format!("C_{}", c.sha),
        "commit": {
            "author": actor,
            "committer": actor,
            "message": c.message,
            "tree": {"sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "url": format!("{api}/repos/{ORG}/{repo}/git/trees/4b825dc642cb6eb9a060e54bf8d69288fbee4904")},
            "url": format!("{api}/repos/{ORG}/{repo}/git/commits/{}", c.sha),
            "comment_count": 0,
        },
        "url": format!("{api}/repos/{ORG}/{repo}/commits/{}", c.sha),
        "html_url": format!("https://github.com/{ORG}/{repo}/commit/{}", c.sha),
        "author": null,
        "committer": null,
        "parents": [],
    })
}

fn create_status(s: &mut State, api: &str, repo: &str, sha: &str, body: Option<Value>) -> Reply {
    let invalid = |field: &str, text: &str| {
        reply(
            422,
            json!({
                "message": "Validation Failed",
                "errors": [{"resource": "Status", "code": "custom", "field": field, "message": text}],
                "documentation_url": DOCS,
            }),
        )
    };
    let Some(body) = body.filter(Value::is_object) else {
        return message(400, "Problems parsing JSON");
    };
    let state = body["state"].as_str().unwrap_or("");
    if !["pending", "success", "failure", "error"].contains(&state) {
        return invalid("state", "state is not included in the list");
    }
    if body["description"]
        .as_str()
        .is_some_and(|d| d.chars().count() > 140)
    {
        return invalid(
            "description",
            "description is too long (maximum is 140 characters)",
        );
    }
    let list = s
        .statuses
        .entry((repo.to_string(), sha.to_string()))
        .or_default();
    list.push(body.clone());
    let id = list.len();
    let now = timestamp(OffsetDateTime::now_utc());
    reply(
        201,
        json!({
            "url": format!("{api}/repos/{ORG}/{repo}/statuses/{sha}"),
            "avatar_url": "https://avatars.githubusercontent.com/in/31337?v=4",
            "id": id,
            "node_id": format!("SC_{id}"),
            "state": state,
            "description": body.get("description").cloned().unwrap_or(Value::Null),
            "target_url": body.get("target_url").cloned().unwrap_or(Value::Null),
            "context": body.get("context").and_then(Value::as_str).unwrap_or("default"),
            "created_at": now,
            "updated_at": now,
            "creator": user_json(api, 41898282, "cocov[bot]"),
        }),
    )
}

fn contents(s: &State, api: &str, repo: &str, path: &str, git_ref: &str) -> Reply {
    let key = (repo.to_string(), path.to_string(), git_ref.to_string());
    if let Some(content) = s.files.get(&key) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        // GitHub wraps the base64 at 60 columns, each line ending in a newline.
        let wrapped: String = encoded
            .as_bytes()
            .chunks(60)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        let name = path.rsplit('/').next().unwrap_or(path);
        return reply(
            200,
            json!({
                "type": "file",
                "encoding": "base64",
                "size": content.len(),
                "name": name,
                "path": path,
                "content": wrapped,
                "sha": "3d21ec53a331a6f037a91c368710b99387d012c1",
                "url": format!("{api}/repos/{ORG}/{repo}/contents/{path}?ref={git_ref}"),
                "html_url": format!("https://github.com/{ORG}/{repo}/blob/{git_ref}/{path}"),
                "download_url": format!("https://raw.githubusercontent.com/{ORG}/{repo}/{git_ref}/{path}"),
            }),
        );
    }
    // A directory: the entries below it, as GitHub lists them.
    let dir = format!("{path}/");
    let entries: Vec<Value> = s
        .files
        .keys()
        .filter(|(r, p, g)| r == repo && g == git_ref && p.starts_with(&dir))
        .map(|(_, p, _)| json!({"type": "file", "name": p.rsplit('/').next(), "path": p}))
        .collect();
    if entries.is_empty() {
        not_found()
    } else {
        reply(200, Value::Array(entries))
    }
}
