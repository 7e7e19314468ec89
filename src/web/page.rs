//! Answering a page: the layout's data ([`Chrome`]), rendering a template, redirects, the
//! security headers every UI response carries, and the HTML error pages.

use askama::Template;
use http::{HeaderValue, StatusCode, header};
use warp::Reply;
use warp::reply::Response;

use super::Session;
use super::assets;

/// The Content-Security-Policy of every page: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the layout (`templates/base.html`) needs: the title, the signed-in user and the
/// hashed asset URLs.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    /// The active navigation entry: `repositories`, `admin` or empty.
    pub section: &'static str,
    /// The signed-in user's login; `None` on the sign-in and error pages.
    pub user: Option<String>,
    pub admin: bool,
    /// The form token for the sign-out form and every other form on the page.
    pub csrf: String,
    pub css: String,
    pub js: String,
    pub favicon: String,
}

impl Chrome {
    /// For pages shown without a session.
    pub fn anonymous(title: impl Into<String>) -> Chrome {
        Chrome {
            title: title.into(),
            section: "",
            user: None,
            admin: false,
            csrf: String::new(),
            css: assets::url("app.css"),
            js: assets::url("app.js"),
            favicon: assets::url("favicon.svg"),
        }
    }

    pub(super) fn signed_in(session: &Session, title: String, section: &'static str) -> Chrome {
        Chrome {
            section,
            user: Some(session.login.clone()),
            admin: session.admin,
            csrf: session.csrf.clone(),
            ..Chrome::anonymous(title)
        }
    }
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No (valid) session: 303 to the sign-in page, coming back to this path afterwards.
    #[error("sign-in required")]
    SignIn(String),
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    /// A state-changing request from another site, or without the form token.
    #[error("cross-site request refused")]
    CrossSite,
    #[error("{0}")]
    BadRequest(&'static str),
    /// A dependency (PostgreSQL, Redis) is down.
    #[error("unavailable")]
    Unavailable,
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> PageError {
        PageError::Internal(e.into())
    }
}

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> PageError {
        PageError::Internal(e)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> PageError {
        PageError::Internal(e.into())
    }
}

/// A rendered template as a 200 page.
pub fn render(template: &impl Template) -> Result<Response, PageError> {
    render_with(StatusCode::OK, template)
}

/// A rendered template with a status.
pub fn render_with(status: StatusCode, template: &impl Template) -> Result<Response, PageError> {
    let body = template.render()?;
    let mut response = warp::reply::html(body).into_response();
    *response.status_mut() = status;
    Ok(response)
}

/// 303 See Other to a path of this site (after a form, or to sign in).
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The link to page `page` of a list at `path` with its other query parameters kept.
pub fn page_href(path: &str, params: &[(&str, &str)], page: u32) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .append_pair("page", &page.to_string())
        .finish();
    format!("{path}?{query}")
}

/// A `return_to` value that stays on this site: a path starting with one `/` (not `//`, not
/// `/\`, which browsers treat as another host), else `/`.
pub fn same_origin_path(candidate: Option<&str>) -> String {
    match candidate {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && !p.chars().any(|c| c.is_control()) =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Adds the headers every UI response carries. Hashed assets keep their own Cache-Control.
pub fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // A page may widen its own policy (the badges page adds the badger to img-src).
    headers
        .entry("content-security-policy")
        .or_insert(HeaderValue::from_static(CSP));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    heading: &'static str,
    message: String,
}

/// The HTML page of an error (or the redirect to sign in).
pub fn error_page(error: PageError) -> Response {
    let (status, heading, message) = match error {
        PageError::SignIn(here) => {
            let to = format!(
                "/sign-in?return_to={}",
                url::form_urlencoded::byte_serialize(same_origin_path(Some(&here)).as_bytes())
                    .collect::<String>()
            );
            return see_other(&to);
        }
        PageError::NotFound => (
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is nothing here, or you may not see it.".to_string(),
        ),
        PageError::Forbidden => (
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Your account may not open this page. Ask an administrator if you need it.".to_string(),
        ),
        PageError::CrossSite => (
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form was not sent from a page of this site, or the page is too old. Go back, reload the page and try again.".to_string(),
        ),
        PageError::BadRequest(why) => (StatusCode::BAD_REQUEST, "Bad request", why.to_string()),
        PageError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "A service cocov depends on is not reachable. Try again in a minute.".to_string(),
        ),
        PageError::Internal(e) => {
            let api = crate::http::ApiError::internal("rendering a page", e);
            if api.status == StatusCode::SERVICE_UNAVAILABLE {
                return error_page(PageError::Unavailable);
            }
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "An error prevented this page from being shown. It was logged; please try again.".to_string(),
            )
        }
    };
    let page = ErrorPage {
        chrome: Chrome::anonymous(heading),
        heading,
        message,
    };
    match render_with(status, &page) {
        Ok(response) => response,
        Err(_) => status.into_response(),
    }
}

/// A warp rejection past the UI's path check (a bad method, a bad header): an HTML page.
pub fn rejected(rejection: warp::Rejection) -> Response {
    let error = rejection
        .find::<crate::http::ApiError>()
        .map_or(PageError::NotFound, body_error);
    secure(error_page(error))
}

/// What a request that could not be read (a form too large, a body cut off) becomes.
pub fn body_error(api: &crate::http::ApiError) -> PageError {
    match api.status {
        StatusCode::PAYLOAD_TOO_LARGE => PageError::BadRequest("The form is too large"),
        StatusCode::NOT_FOUND => PageError::NotFound,
        _ => PageError::BadRequest("The request could not be read"),
    }
}

#[cfg(test)]
mod tests {
    use super::same_origin_path;

    #[test]
    fn return_to_stays_on_this_site() {
        assert_eq!(
            same_origin_path(Some("/repos/a?branch=b")),
            "/repos/a?branch=b"
        );
        for hostile in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "evil",
            "",
        ] {
            assert_eq!(same_origin_path(Some(hostile)), "/", "{hostile}");
        }
        assert_eq!(same_origin_path(None), "/");
    }
}
