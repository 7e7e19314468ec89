//! The web UI: server-rendered HTML pages on the API listener, in front of the JSON API's 404.
//!
//! Layout (follow it when adding a page):
//!
//! - [`routes`] (this file): the warp filter. It claims only the UI's paths (`/`, `/new`,
//!   `/sign-in`, `/sign-out`, `/repos/…`, `/admin/…`, `/assets/…`, see [`is_web_path`]); everything else
//!   falls through to the JSON API. The claimed request becomes a [`Req`] and goes to
//!   [`router::dispatch`].
//! - [`router`]: the one table of pages: `(method, path segments) → pages::<page>::<fn>`. Add
//!   a line there per page; the route name (for metrics) is the arm's string.
//! - [`pages`]: one file per page (`pages/<page>.rs`) with thin handlers: read the [`Req`],
//!   call [`Req::session`] (the auth gate: no session → 303 to `/sign-in?return_to=…`), gather
//!   data by calling domain modules (never the JSON API over HTTP), fill an askama template
//!   struct and return [`page::render`]. Templates live in `templates/` (`base.html` is the
//!   layout: header, navigation, user menu with the sign-out form, skip link, `<main>`); a
//!   page template `{% extends "base.html" %}` and its struct has a `chrome: Chrome` field
//!   ([`page::Chrome`], built by [`Session::chrome`]). Shared pieces: `repo_header.html`
//!   (repository name, description and tabs; needs `repo` and `tab`), `admin/layout.html`
//!   (administration pages: `{% extends "admin/layout.html" %}{% block admin %}…`, needs
//!   `admin_tab`), `notice.html` (needs `notice` and `problem`). A repository page checks
//!   visibility with `pages::repository::visible` (404 when the user may not see it).
//! - State-changing forms: POST only, each with
//!   `<input type="hidden" name="csrf_token" value="{{ chrome.csrf }}">`; the handler calls
//!   [`Req::form`] which checks that token ([`csrf`]) after the session cookie's
//!   Sec-Fetch-Site/Origin check (`auth::csrf`, applied by [`Req::session`] for non-GET
//!   methods). After the action: 303 back to a page ([`page::see_other`]), with
//!   `?notice=<code>` (or `?problem=<code>`) for a message the page shows ([`Req::message`],
//!   `templates/notice.html`).
//! - Errors: handlers return [`PageError`] (`NotFound`, `Forbidden`, `Internal`, …); each
//!   becomes an HTML error page ([`page::error_page`]). A repository the user may not see is
//!   a 404, as in the API.
//! - [`assets`]: the CSS, JS and icons in `assets/`, embedded, served at
//!   `/assets/<name>.<hash>.<ext>` with a year-long immutable cache; templates link them with
//!   `chrome.css`/`chrome.js` (hashed URLs). Small inline SVG icons are in `templates/icons/`
//!   and included with `{% include %}`.
//! - [`charts`]: inline SVG charts rendered on the server (sparkline, 31-day line/area chart)
//!   with a `<title>`, `<desc>` and a text summary; insert them with `|safe`.
//! - [`format`]: numbers, sizes and relative times as the pages show them.
//!
//! Every response gets the security headers of [`page::secure`] (strict CSP without inline
//! scripts or styles, `X-Frame-Options: DENY`, …) and `Cache-Control: no-store` unless it is
//! a hashed asset. Pages work without JavaScript; `assets/app.js` only enhances (live
//! updates, copy buttons).

pub mod assets;
pub mod charts;
pub mod csrf;
pub mod format;
pub mod highlight;
pub mod page;
pub mod pages;
mod request;
mod router;

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, Method};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::app::App;
use crate::http::PeerAddr;

pub use page::{Chrome, PageError};
pub use request::{Form, Req, Session};

/// Form bodies are small; anything larger is refused before it is read.
const BODY_LIMIT: u64 = 64 * 1024;

/// Whether a path belongs to the UI (the rest is the JSON API's).
pub fn is_web_path(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    matches!(
        first,
        "sign-in" | "sign-out" | "repos" | "admin" | "assets" | "new"
    )
}

/// The UI's routes; rejects (so the API answers) any path that is not the UI's.
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let app = warp::any().map(move || app.clone());
    let page = warp::path::full()
        .and(warp::method())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<PeerAddr>())
        .and(crate::http::body::bytes(BODY_LIMIT))
        .and(app)
        .then(
            |path: warp::path::FullPath,
             method: Method,
             query: String,
             headers: HeaderMap,
             peer: Option<PeerAddr>,
             body: Bytes,
             app: App| async move {
                let req = Req::new(app, method, path.as_str(), &query, headers, peer, body);
                router::dispatch(req).await
            },
        )
        // Past the path check every failure is the UI's, answered as an HTML page.
        .recover(|rejection: warp::Rejection| async move {
            Ok::<_, Infallible>(page::rejected(rejection))
        })
        .unify();
    warp::path::full()
        .and_then(|path: warp::path::FullPath| async move {
            if is_web_path(path.as_str()) {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(page)
        .boxed()
}
