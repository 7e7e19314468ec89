//! OIDC sign-in in the browser: `GET /auth/oidc` (optional `return_to`, a path on this site)
//! sends the browser to the provider with a short-lived binding cookie; the provider sends it
//! back to `GET /auth/oidc/callback`, which starts a session and goes to `return_to` (or `/`).
//! A failed sign-in goes to `/sign-in?error=<code>` (codes: `auth::oidc::SignInError::code`).

use std::collections::HashMap;

use cookie::{Cookie, SameSite};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::Filter;
use warp::reply::{Reply, Response};

use super::session_cookie;
use super::with_app;
use crate::app::App;
use crate::auth::oidc::{self, Callback, PENDING_LIFETIME, SignInError};
use crate::auth::sessions::{self, SessionPolicy};
use crate::http::{ApiError, tag};

/// The cookie binding a started sign-in to the browser that started it.
const BINDING_COOKIE: &str = "cocov_oidc";

pub fn routes(app: App) -> warp::filters::BoxedFilter<(Response,)> {
    let begin = warp::path!("auth" / "oidc")
        .and(warp::get())
        .and(raw_query())
        .and(with_app(app.clone()))
        .then(|query: String, app: App| async move {
            begin(&app, &query)
                .await
                .unwrap_or_else(ApiError::into_response)
        })
        .map(tag("GET /auth/oidc"));
    let callback = warp::path!("auth" / "oidc" / "callback")
        .and(warp::get())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(with_app(app))
        .then(|query: String, headers: HeaderMap, app: App| async move {
            callback(&app, &query, &headers).await
        })
        .map(tag("GET /auth/oidc/callback"));
    begin.or(callback).unify().boxed()
}

fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

fn params(query: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn provider(app: &App) -> Result<&oidc::Provider, ApiError> {
    app.oidc.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "oidc.disabled",
            "OIDC sign-in is not configured on this instance",
        )
    })
}

async fn begin(app: &App, query: &str) -> Result<Response, ApiError> {
    let provider = provider(app)?;
    let params = params(query);
    let return_to = match params.get("return_to") {
        None => "/",
        Some(value) => oidc::safe_return_to(value).ok_or_else(|| {
            ApiError::bad_request(
                "oidc.invalid_return_to",
                "The parameter \"return_to\" must be a path on this site",
            )
        })?,
    };
    let begun = provider
        .begin(&app.kv, return_to)
        .await
        .map_err(|e| match e {
            SignInError::ProviderUnavailable(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "oidc.provider_unavailable",
                e.to_string(),
            ),
            other => ApiError::internal("starting an OIDC sign-in", other),
        })?;
    let binding = binding_cookie(app, &begun.browser_secret, false);
    Ok(see_other(&begun.authorize_url, Some(binding)))
}

async fn callback(app: &App, query: &str, headers: &HeaderMap) -> Response {
    let forget = binding_cookie(app, "", true);
    let Ok(provider) = provider(app) else {
        return failed(SignInError::Disabled, forget);
    };
    let params = params(query);
    let browser_secret = session_cookie::cookie_value(headers, BINDING_COOKIE);
    let get = |name: &str| params.get(name).map(String::as_str);
    let callback = Callback {
        code: get("code"),
        state: get("state"),
        error: get("error"),
        browser_secret: browser_secret.as_deref(),
    };
    let signed_in = match provider.finish(&app.db, &app.kv, callback).await {
        Ok(signed_in) => signed_in,
        Err(e) => return failed(e, forget),
    };
    let policy = SessionPolicy::from_config(&app.config.accounts);
    let user = &signed_in.user;
    match sessions::start(&app.db, user.id, &user.login, policy, "oidc").await {
        Ok(token) => {
            let mut response = see_other(&signed_in.return_to, Some(forget));
            response
                .headers_mut()
                .append(header::SET_COOKIE, session_cookie::set_cookie(app, &token));
            response
        }
        Err(e) => failed(SignInError::Db(e), forget),
    }
}

fn failed(error: SignInError, forget: HeaderValue) -> Response {
    tracing::warn!(code = error.code(), "OIDC sign-in refused: {error}");
    see_other(&format!("/sign-in?error={}", error.code()), Some(forget))
}

fn see_other(location: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    if let Some(cookie) = cookie {
        headers.append(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// HttpOnly, SameSite=Lax (sent on the provider's top-level redirect back, not on cross-site
/// subrequests), only to `/auth/oidc`, living as long as a pending sign-in.
fn binding_cookie(app: &App, secret: &str, remove: bool) -> HeaderValue {
    let mut cookie = Cookie::build((BINDING_COOKIE, secret.to_string()))
        .path("/auth/oidc")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(session_cookie::serves_https(app))
        .max_age(time::Duration::seconds(PENDING_LIFETIME.as_secs() as i64))
        .build();
    if remove {
        cookie.make_removal();
    }
    HeaderValue::from_str(&cookie.to_string()).expect("a valid header value")
}
