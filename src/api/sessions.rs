//! Signing in and out: `POST /auth/local` (login and password), the one-time sign-in link
//! (`GET /auth/link/{token}` shows a button, `POST /auth/link` uses the link), and
//! `POST /auth/logout`. A successful sign-in answers like the original `/auth/exchange`
//! (`{token, name, admin}`) and sets the session cookie.

use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use warp::Filter;
use warp::reply::{Reply, Response};

use super::session_cookie::{self, csrf_refused, provenance, public_origin};
use super::with_app;
use crate::app::App;
use crate::auth::local::{self, SignInError};
use crate::auth::login_limit::LoginLimits;
use crate::auth::sessions::{self, SessionPolicy};
use crate::auth::{self, csrf, sign_in_links, tokens};
use crate::badges::TrustedProxies;
use crate::http::{ApiError, PeerAddr, body, tag};

/// Sign-in bodies are tiny; anything larger is not a sign-in.
const BODY_LIMIT: u64 = 8 * 1024;

#[derive(Deserialize)]
struct LocalSignIn {
    login: Option<String>,
    password: Option<String>,
}

pub fn routes(app: App) -> warp::filters::BoxedFilter<(Response,)> {
    let local = warp::path!("auth" / "local")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<PeerAddr>())
        .and(body::json::<LocalSignIn>(BODY_LIMIT))
        .and(with_app(app.clone()))
        .then(
            |headers: HeaderMap, peer: Option<PeerAddr>, input: LocalSignIn, app: App| async move {
                sign_in_local(&app, &headers, peer, input)
                    .await
                    .unwrap_or_else(ApiError::into_response)
            },
        )
        .map(tag("POST /auth/local"));
    let link_page = warp::path!("auth" / "link" / String)
        .and(warp::get())
        .map(|token: String| link_page(&token))
        .map(tag("GET /auth/link/{token}"));
    let link = warp::path!("auth" / "link")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(body::bytes(BODY_LIMIT))
        .and(with_app(app.clone()))
        .then(
            |headers: HeaderMap, form: bytes::Bytes, app: App| async move {
                sign_in_with_link(&app, &headers, &form)
                    .await
                    .unwrap_or_else(ApiError::into_response)
            },
        )
        .map(tag("POST /auth/link"));
    let logout = warp::path!("auth" / "logout")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(with_app(app))
        .then(|headers: HeaderMap, app: App| async move {
            sign_out(&app, &headers)
                .await
                .unwrap_or_else(ApiError::into_response)
        })
        .map(tag("POST /auth/logout"));
    local
        .or(link_page)
        .unify()
        .or(link)
        .unify()
        .or(logout)
        .unify()
        .boxed()
}

fn local_disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "session.local_disabled",
        "Local accounts are not enabled on this instance",
    )
}

async fn sign_in_local(
    app: &App,
    headers: &HeaderMap,
    peer: Option<PeerAddr>,
    input: LocalSignIn,
) -> Result<Response, ApiError> {
    if !app.local_sign_in_open() {
        return Err(local_disabled());
    }
    csrf::check_sign_in(provenance(headers), &public_origin(app)).map_err(csrf_refused)?;
    let login = input
        .login
        .filter(|l| !l.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("session.no_login", "The parameter \"login\" is required")
        })?;
    let password = input.password.filter(|p| !p.is_empty()).ok_or_else(|| {
        ApiError::bad_request(
            "session.no_password",
            "The parameter \"password\" is required",
        )
    })?;
    let limits = LoginLimits::from_config(&app.config.accounts);
    let address = client_address(app, peer, headers);
    let user = match local::sign_in(&app.db, &app.kv, limits, &login, &password, address).await {
        Ok(user) => user,
        Err(e @ SignInError::InvalidCredentials) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "session.invalid_credentials",
                e.to_string(),
            ));
        }
        Err(e @ SignInError::RateLimited(wait)) => return Ok(rate_limited(&e, wait)),
        Err(e) => return Err(ApiError::internal("signing in", e)),
    };
    started(app, user.user_id, &user.login, user.admin, "local").await
}

/// 429 with `Retry-After`: when the attempt may be made again.
pub(super) fn rate_limited(e: &SignInError, wait: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "session.rate_limited",
        e.to_string(),
    )
    .into_response();
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, http::HeaderValue::from(wait));
    response
}

/// Starts a session and answers `{token, name, admin}` with the cookie set.
async fn started(
    app: &App,
    user_id: i64,
    login: &str,
    admin: bool,
    how: &str,
) -> Result<Response, ApiError> {
    let token = start_session(app, user_id, login, how).await?;
    let body = serde_json::json!({"token": token, "name": login, "admin": admin});
    let mut response = warp::reply::json(&body).into_response();
    response.headers_mut().insert(
        http::header::SET_COOKIE,
        session_cookie::set_cookie(app, &token),
    );
    Ok(response)
}

/// A new session's token, with the configured idle and absolute lifetimes.
pub(super) async fn start_session(
    app: &App,
    user_id: i64,
    login: &str,
    how: &str,
) -> Result<String, ApiError> {
    let policy = SessionPolicy::from_config(&app.config.accounts);
    sessions::start(&app.db, user_id, login, policy, how)
        .await
        .map_err(|e| ApiError::internal("starting a session", e))
}

/// Where a sign-in attempt comes from: the peer, or what a trusted proxy says.
pub(super) fn client_address(app: &App, peer: Option<PeerAddr>, headers: &HeaderMap) -> IpAddr {
    let Some(PeerAddr(peer)) = peer else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    TrustedProxies::parse(&app.config.accounts.trusted_proxies)
        .unwrap_or_default()
        .client(peer.ip(), headers)
}

/// A page with one button, so that following the link (or a mail scanner fetching it) does not
/// use it up: only the POST it makes signs in.
fn link_page(token: &str) -> Response {
    let body = if tokens::well_formed(token, tokens::TokenKind::SignInLink) {
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in to cocov</title></head>\
             <body><form method=\"post\" action=\"/auth/link\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <button type=\"submit\">Sign in to cocov</button></form></body></html>"
        )
    } else {
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>cocov</title></head>\
         <body><p>This sign-in link is not valid.</p></body></html>"
            .to_string()
    };
    let mut response = warp::reply::html(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        http::HeaderValue::from_static("default-src 'none'; form-action 'self'"),
    );
    headers.insert(
        "referrer-policy",
        http::HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

async fn sign_in_with_link(
    app: &App,
    headers: &HeaderMap,
    form: &[u8],
) -> Result<Response, ApiError> {
    if !app.local_sign_in_open() {
        return Err(local_disabled());
    }
    csrf::check_sign_in(provenance(headers), &public_origin(app)).map_err(csrf_refused)?;
    let token = url::form_urlencoded::parse(form)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let invalid = || {
        ApiError::bad_request(
            "session.invalid_link",
            "This sign-in link is not valid: it was used already, has expired or never existed",
        )
    };
    let user_id = sign_in_links::consume(&app.kv, &token)
        .await
        .map_err(|e| ApiError::internal("using a sign-in link", e))?
        .ok_or_else(invalid)?;
    let user = auth::users::find(&app.db, user_id)
        .await
        .map_err(|e| ApiError::internal("loading a user", e))?
        .ok_or_else(invalid)?;
    let mut response = started(app, user.id, &user.login, user.admin, "link").await?;
    // A browser followed the link: send it to the site rather than show JSON.
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
        .headers_mut()
        .insert(http::header::LOCATION, http::HeaderValue::from_static("/"));
    Ok(response)
}

async fn sign_out(app: &App, headers: &HeaderMap) -> Result<Response, ApiError> {
    // Authenticates (and, for the cookie, applies the CSRF check) like any other POST.
    session_cookie::request_actor(app, &Method::POST, headers).await?;
    let token = match headers.get(http::header::AUTHORIZATION) {
        Some(h) => h
            .to_str()
            .ok()
            .and_then(auth::bearer_token)
            .map(str::to_string),
        None => session_cookie::session_token(headers),
    };
    if let Some(token) = token {
        sessions::end(&app.db, &token)
            .await
            .map_err(|e| ApiError::internal("ending a session", e))?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(http::header::SET_COOKIE, session_cookie::clear_cookie(app));
    Ok(response)
}
