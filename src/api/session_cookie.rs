//! The browser session: the `cocov_session` cookie that carries a `coa_` token, and who a
//! request acts as. Shared by the JSON API and the server-rendered pages.
//!
//! A request with an `Authorization` header is an API client and is judged by that header
//! alone. Otherwise the session cookie is used, and a state-changing request made with it must
//! pass the CSRF check (`auth::csrf`, which explains the choice).

use cookie::{Cookie, SameSite};
use http::{HeaderMap, HeaderValue, Method};

use crate::app::App;
use crate::auth::csrf::{self, Provenance};
use crate::auth::tokens::TokenKind;
use crate::auth::{self, Actor, AuthError};
use crate::http::ApiError;

/// The cookie's name.
pub const COOKIE: &str = "cocov_session";

/// The session token the request's cookies carry, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE)
}

/// The value of the cookie called `name` among the request's cookies, if any.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// What the request says about the page that made it.
pub fn provenance(headers: &HeaderMap) -> Provenance<'_> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    Provenance {
        sec_fetch_site: header("sec-fetch-site"),
        origin: header("origin"),
        host: header("host"),
    }
}

/// The site's own origin, from `server.ui_base_url`.
pub fn public_origin(app: &App) -> String {
    csrf::origin_of(&app.config.server.ui_base_url)
}

/// The actor of a request: its `Authorization` header, or else its session cookie.
pub async fn request_actor(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Actor, ApiError> {
    if let Some(header) = headers.get(http::header::AUTHORIZATION) {
        let header = header.to_str().map_err(|_| AuthError::InvalidToken)?;
        return Ok(auth::authenticate(&app.db, Some(header)).await?);
    }
    let token = session_token(headers).ok_or(AuthError::NoAuthorization)?;
    if !csrf::is_safe_method(method.as_str()) {
        csrf::check(provenance(headers), &public_origin(app)).map_err(csrf_refused)?;
    }
    // Only sessions travel in the cookie; a personal or service token there is not accepted.
    if TokenKind::of(&token) != Some(TokenKind::Login) {
        return Err(AuthError::InvalidToken.into());
    }
    Ok(auth::authenticate_token(&app.db, &token).await?)
}

pub fn csrf_refused(e: csrf::CsrfError) -> ApiError {
    ApiError::new(http::StatusCode::FORBIDDEN, "auth.csrf", e.to_string())
}

/// `Set-Cookie` for a new session: HttpOnly, SameSite=Lax, Secure when the site is served over
/// https, lasting as long as the session may.
pub fn set_cookie(app: &App, token: &str) -> HeaderValue {
    let accounts = &app.config.accounts;
    let cookie = Cookie::build((COOKIE, token.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(serves_https(app))
        .max_age(time::Duration::hours(
            accounts.session_absolute_hours as i64,
        ))
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("a token is a valid header value")
}

/// `Set-Cookie` for a short-lived cookie only `path` and below receive (HttpOnly,
/// SameSite=Lax, Secure over https); an empty `value` with no `max_age` removes it.
pub fn scoped_cookie(
    app: &App,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<time::Duration>,
) -> HeaderValue {
    let mut cookie = Cookie::build((name.to_string(), value.to_string()))
        .path(path.to_string())
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(serves_https(app))
        .build();
    match max_age {
        Some(age) => cookie.set_max_age(age),
        None => cookie.make_removal(),
    }
    HeaderValue::from_str(&cookie.to_string()).expect("a valid header value")
}

/// `Set-Cookie` that makes the browser forget the session.
pub fn clear_cookie(app: &App) -> HeaderValue {
    let cookie = Cookie::build((COOKIE, ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(serves_https(app))
        .removal()
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("a valid header value")
}

/// Whether the site is served over https (cookies then get `Secure`).
pub fn serves_https(app: &App) -> bool {
    app.config
        .server
        .ui_base_url
        .to_ascii_lowercase()
        .starts_with("https://")
}
