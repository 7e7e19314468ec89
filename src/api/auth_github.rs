//! GitHub sign-in over HTTP (the domain is `github_sign_in`, the single-use state
//! `auth::oauth_state`):
//!
//! - the browser flow: `GET /auth/github?return_to=/path` binds a fresh state to this browser
//!   (an HttpOnly cookie holding a nonce, only the nonce's hash stored) and sends it to GitHub;
//!   `GET /auth/github/callback?code&state` checks the state against that cookie, signs in,
//!   sets the session cookie and sends the browser to `return_to` (or `/`). Every failure sends
//!   it to `/sign-in?error=<code>` (codes: `github_sign_in::SignInError`, plus
//!   `state_mismatch`);
//! - the original API flow: `POST /auth/begin` (`redirect`) answers `{redirect_to}` and
//!   `POST /auth/exchange` (`exchange_token`, `state`, `code`, `redirect`) answers
//!   `{token, name, admin}`, with the original's error codes in the original's order. It sets
//!   no cookie: its client keeps the token, and a cookie set by a cross-site POST would be a
//!   login-CSRF door.

use std::collections::HashMap;

use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;
use warp::Filter;
use warp::reply::{Reply, Response};

use super::session_cookie::{self, scoped_cookie};
use super::sessions::start_session;
use super::with_app;
use crate::app::App;
use crate::auth::oauth_state::{self, BROWSER_LIFETIME};
use crate::auth::return_to;
use crate::github_sign_in::{self, SignInError};
use crate::http::{ApiError, body, tag};

/// The cookie holding the browser flow's nonce, sent back only to `/auth/github…`.
const FLOW_COOKIE: &str = "cocov_github_flow";
const FLOW_PATH: &str = "/auth/github";
/// Sign-in bodies are tiny; anything larger is not a sign-in.
const BODY_LIMIT: u64 = 8 * 1024;

pub fn routes(app: App) -> warp::filters::BoxedFilter<(Response,)> {
    let start = warp::path!("auth" / "github")
        .and(warp::get())
        .and(raw_query())
        .and(with_app(app.clone()))
        .then(|query: String, app: App| async move {
            begin_browser(&app, &query)
                .await
                .unwrap_or_else(ApiError::into_response)
        })
        .map(tag("GET /auth/github"));
    let callback = warp::path!("auth" / "github" / "callback")
        .and(warp::get())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(with_app(app.clone()))
        .then(|query: String, headers: HeaderMap, app: App| async move {
            callback(&app, &query, &headers).await
        })
        .map(tag("GET /auth/github/callback"));
    let begin = warp::path!("auth" / "begin")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(body::bytes(BODY_LIMIT))
        .and(with_app(app.clone()))
        .then(
            |headers: HeaderMap, body: bytes::Bytes, app: App| async move {
                begin_api(&app, &fields(&headers, &body))
                    .await
                    .unwrap_or_else(ApiError::into_response)
            },
        )
        .map(tag("POST /auth/begin"));
    let exchange = warp::path!("auth" / "exchange")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(body::bytes(BODY_LIMIT))
        .and(with_app(app))
        .then(
            |headers: HeaderMap, body: bytes::Bytes, app: App| async move {
                exchange(&app, &fields(&headers, &body))
                    .await
                    .unwrap_or_else(ApiError::into_response)
            },
        )
        .map(tag("POST /auth/exchange"));
    start
        .or(callback)
        .unify()
        .or(begin)
        .unify()
        .or(exchange)
        .unify()
        .boxed()
}

/// The query string, empty when there is none.
fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

fn query_params(query: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The original accepted its parameters as a form or as JSON; strings only.
fn fields(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().contains("json"));
    if !json {
        return query_params(&String::from_utf8_lossy(body));
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
        return HashMap::new();
    };
    map.into_iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
        .collect()
}

/// A field that is present and not blank.
fn required<'a>(
    fields: &'a HashMap<String, String>,
    name: &str,
    code: &str,
) -> Result<&'a str, ApiError> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request(code, format!("The parameter \"{name}\" is required")))
}

fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "session.github_disabled",
        SignInError::Disabled.to_string(),
    )
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    let headers = response.headers_mut();
    headers.insert(http::header::LOCATION, location);
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

/// `GET /auth/github`: a new state bound to this browser, and off to GitHub.
async fn begin_browser(app: &App, query: &str) -> Result<Response, ApiError> {
    let github = github_sign_in::client(app).map_err(|_| disabled())?;
    let params = query_params(query);
    let return_to = match params.get("return_to") {
        None => "/",
        Some(r) => return_to::safe_return_to(r).ok_or_else(|| {
            ApiError::bad_request(
                "session.bad_return_to",
                "The parameter \"return_to\" must be a path on this site (starting with a single /)",
            )
        })?,
    };
    let flow = oauth_state::begin_browser(&app.kv, return_to)
        .await
        .map_err(|e| ApiError::internal("beginning a GitHub sign-in", e))?;
    let url = github.authorize_url(&flow.state, &github_sign_in::callback_url(app));
    let mut response = see_other(url.as_str());
    let lifetime = time::Duration::seconds(BROWSER_LIFETIME.as_secs() as i64);
    response.headers_mut().append(
        http::header::SET_COOKIE,
        scoped_cookie(app, FLOW_COOKIE, &flow.nonce, FLOW_PATH, Some(lifetime)),
    );
    Ok(response)
}

/// `GET /auth/github/callback`: never an error page, always a redirect (the browser is on
/// its way back from GitHub); the flow cookie is cleared either way.
async fn callback(app: &App, query: &str, headers: &HeaderMap) -> Response {
    let mut response = match sign_in_browser(app, query, headers).await {
        Ok(response) => response,
        Err(code) => see_other(&format!("/sign-in?error={code}")),
    };
    response.headers_mut().append(
        http::header::SET_COOKIE,
        scoped_cookie(app, FLOW_COOKIE, "", FLOW_PATH, None),
    );
    response
}

async fn sign_in_browser(
    app: &App,
    query: &str,
    headers: &HeaderMap,
) -> Result<Response, &'static str> {
    github_sign_in::client(app).map_err(|e| e.code())?;
    let params = query_params(query);
    let nonce = session_cookie::cookie_value(headers, FLOW_COOKIE);
    let state = params.get("state").map(String::as_str).unwrap_or_default();
    let return_to = oauth_state::take_browser(&app.kv, state, nonce.as_deref())
        .await
        .map_err(|e| {
            ApiError::internal("ending a GitHub sign-in", e);
            "internal"
        })?
        .map_err(|e| {
            tracing::warn!(error = %e, "GitHub sign-in refused");
            "state_mismatch"
        })?;
    // GitHub sends `error=access_denied` (and no code) when the user declines.
    let code = params
        .get("code")
        .filter(|c| !c.is_empty() && !params.contains_key("error"))
        .ok_or("github_refused")?;
    let user = github_sign_in::complete(app, code, &github_sign_in::callback_url(app))
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, code = e.code(), "GitHub sign-in failed");
            e.code()
        })?;
    let token = start_session(app, user.id, &user.login, "github")
        .await
        .map_err(|_| "internal")?;
    let mut response = see_other(&return_to);
    response.headers_mut().append(
        http::header::SET_COOKIE,
        session_cookie::set_cookie(app, &token),
    );
    Ok(response)
}

/// `POST /auth/begin`, as the original: `{redirect_to}` with the exchange token appended to
/// the caller's redirect (its query re-serialised sorted by key).
async fn begin_api(app: &App, fields: &HashMap<String, String>) -> Result<Response, ApiError> {
    let github = github_sign_in::client(app).map_err(|_| disabled())?;
    let redirect = required(fields, "redirect", "session.no_redirect")?;
    let mut redirect = url::Url::parse(redirect.trim()).map_err(|_| {
        ApiError::bad_request(
            "session.bad_redirect_uri",
            "The parameter \"redirect\" is not a valid URI",
        )
    })?;
    let (state, exchange_token) = oauth_state::begin_exchange(&app.kv)
        .await
        .map_err(|e| ApiError::internal("beginning a GitHub sign-in", e))?;
    let mut pairs: Vec<(String, String)> = redirect.query_pairs().into_owned().collect();
    pairs.push(("exchange_token".into(), exchange_token));
    pairs.sort();
    redirect.query_pairs_mut().clear().extend_pairs(&pairs);
    let url = github.authorize_url(&state, redirect.as_str());
    Ok(warp::reply::json(&json!({"redirect_to": url.as_str()})).into_response())
}

/// `POST /auth/exchange`, as the original (missing parameters first, in its order; then the
/// single-use exchange token and state), answering `{token, name, admin}`.
async fn exchange(app: &App, fields: &HashMap<String, String>) -> Result<Response, ApiError> {
    github_sign_in::client(app).map_err(|_| disabled())?;
    let exchange_token = required(fields, "exchange_token", "session.no_exchange_token")?;
    let state = required(fields, "state", "session.no_state")?;
    let code = required(fields, "code", "session.no_code")?;
    let redirect = required(fields, "redirect", "session.no_redirect")?;
    let valid = oauth_state::take_exchange(&app.kv, exchange_token, state)
        .await
        .map_err(|e| ApiError::internal("checking a GitHub sign-in", e))?;
    if !valid {
        return Err(ApiError::bad_request(
            "session.invalid_exchange_token_or_state",
            "Invalid \"exchange_token\" or \"state\". Please try authenticating again.",
        ));
    }
    let user = github_sign_in::complete(app, code, redirect)
        .await
        .map_err(exchange_error)?;
    let token = start_session(app, user.id, &user.login, "github").await?;
    let body = json!({"token": token, "name": user.login, "admin": user.admin});
    Ok(warp::reply::json(&body).into_response())
}

fn exchange_error(e: SignInError) -> ApiError {
    let message = e.to_string();
    match e {
        SignInError::Disabled => disabled(),
        SignInError::NotAMember(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "session.not_an_org_member",
            "You are not allowed to access this resource. Please contact your administrator.",
        ),
        SignInError::OutsideCollaborator(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "session.outside_collaborator_not_allowed",
            "Outside Collaborators are not allowed on this instance.",
        ),
        SignInError::Refused(_) => ApiError::bad_request("session.cannot_exchange", message),
        SignInError::Unavailable(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "github.unavailable", message)
        }
        SignInError::LoginTaken(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "session.login_taken",
            message,
        ),
        SignInError::Internal(e) => ApiError::internal("signing in with GitHub", e),
    }
}
