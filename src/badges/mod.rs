//! The badge listener (badger role): `GET /{repository}/coverage` and `GET /{repository}/issues`
//! (default branch, or `?branch=NAME`), plus `/health`.
//!
//! A request is rate-limited per client first, then answered from memory when the badge is
//! cached (no PostgreSQL, no rendering); a miss loads the repository's branch numbers with one
//! query and caches both badges. Each badge carries a strong `ETag` and `Cache-Control: no-cache`,
//! so proxies such as GitHub's camo revalidate on every view and get a body-less 304 while the
//! number is unchanged. Clients that accept gzip get a copy compressed once at render time.
//! The modules that change the numbers call [`invalidate`].

mod cache;
mod client_ip;
pub mod embed;
mod invalidate;
mod rate_limit;
pub mod svg;
pub mod text_width;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, RETRY_AFTER, VARY};
use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::{Reply, Response};

use crate::app::App;
use crate::http::{ApiError, PeerAddr, recover, tag};
use cache::{Answer, BadgeCache, CacheKey, Limits, Loaded, Rendered};
pub use client_ip::TrustedProxies;
pub use embed::{Embeds, embeds};
pub use invalidate::{
    CHANNEL as INVALIDATE_CHANNEL, Message as InvalidateMessage, invalidate, invalidate_commit,
};
use rate_limit::{Decision, RateLimiter};
pub use svg::{Badge, Kind};

/// How long a badge may be served without an invalidation: the safety net if one is lost.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// How long "no such repository" is remembered, so scanners cannot hammer PostgreSQL; short,
/// because creating a repository also clears it through [`invalidate`].
pub const NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(5);
/// Most cached badges (about 2 KB each: the SVG and its gzip form).
pub const CACHE_MAX_ENTRIES: usize = 4096;

const SVG_CONTENT_TYPE: &str = "image/svg+xml;charset=utf-8";

/// Shared by every badge request of one listener.
struct State {
    app: App,
    cache: Arc<BadgeCache>,
    limiter: RateLimiter,
    proxies: TrustedProxies,
    /// Stops the invalidation subscriber when the routes are dropped.
    _subscriber: Option<invalidate::Subscriber>,
}

#[derive(Debug, Deserialize)]
struct BadgeQuery {
    branch: Option<String>,
}

/// The badger's routes. Starts the invalidation subscriber on the current Tokio runtime.
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let cache = Arc::new(BadgeCache::new(Limits {
        ttl: CACHE_TTL,
        negative_ttl: NEGATIVE_CACHE_TTL,
        max_entries: CACHE_MAX_ENTRIES,
    }));
    invalidate::register_local(&app.kv.key(invalidate::CHANNEL), &cache);
    let subscriber = invalidate::subscribe(&app, &cache);
    // Validated with the configuration; an invalid list cannot get this far.
    let proxies = TrustedProxies::parse(&app.config.badger.trusted_proxies).unwrap_or_default();
    let state = Arc::new(State {
        proxies,
        limiter: RateLimiter::new(
            app.config.badger.rate_limit_per_minute,
            rate_limit::MAX_CLIENTS,
        ),
        app,
        cache,
        _subscriber: subscriber,
    });

    let health = warp::path!("health")
        .and(warp::get())
        .map(|| warp::reply::with_header("Ok", "content-type", "text/plain").into_response())
        .map(tag("GET /health"));

    let routes = health
        .or(badge_route(&state, Kind::Coverage, "GET /{repo}/coverage"))
        .unify()
        .or(badge_route(&state, Kind::Issues, "GET /{repo}/issues"))
        .unify();
    crate::http::input::guard()
        .and(routes)
        .recover(recover)
        .unify()
        .boxed()
}

fn badge_route(state: &Arc<State>, kind: Kind, name: &'static str) -> BoxedFilter<(Response,)> {
    let state = state.clone();
    warp::get()
        .and(warp::path::param::<String>())
        .and(warp::path(kind.label()))
        .and(warp::path::end())
        .and(warp::query::<BadgeQuery>())
        .and(warp::header::optional::<String>("if-none-match"))
        .and(warp::header::optional::<String>("accept-encoding"))
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::header::headers_cloned())
        .and_then(
            move |repository, query, if_none_match, accept_encoding, peer, headers| {
                let state = state.clone();
                async move {
                    let request = Request {
                        repository,
                        query,
                        if_none_match,
                        accept_encoding,
                        peer,
                        headers,
                    };
                    Ok::<_, Infallible>(badge(&state, kind, request).await)
                }
            },
        )
        .map(tag(name))
        .boxed()
}

/// What a badge request carries.
struct Request {
    /// The raw (still percent-encoded) path segment.
    repository: String,
    query: BadgeQuery,
    if_none_match: Option<String>,
    accept_encoding: Option<String>,
    peer: Option<PeerAddr>,
    headers: http::HeaderMap,
}

async fn badge(state: &State, kind: Kind, request: Request) -> Response {
    let Request {
        repository,
        query,
        if_none_match,
        accept_encoding,
        peer,
        headers,
    } = request;
    // Before anything else, so a limited client costs no lookup, query or render. (Requests
    // without a peer address only come from in-process callers; the server always sets one.)
    if let Some(PeerAddr(addr)) = peer {
        let client = state.proxies.client(addr.ip(), &headers);
        if let Decision::Limit { retry_after_secs } = state.limiter.check(client, Instant::now()) {
            return rate_limited(retry_after_secs);
        }
    }
    let Some(repository) = crate::http::path::percent_decode(&repository) else {
        return not_found();
    };
    let key = CacheKey {
        repository,
        // Branch names are never empty, so `?branch=` means the default branch.
        branch: query.branch.filter(|b| !b.is_empty()),
        kind,
    };
    let answer = match state.cache.get(&key, Instant::now()) {
        Some(hit) => hit,
        None => {
            let (repository, branch) = (key.repository.clone(), key.branch.clone());
            let loaded = state
                .cache
                .get_or_load(key, || load(&state.app, repository, branch))
                .await;
            match loaded {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::warn!(error = %e, "badge data could not be loaded");
                    return no_cache(
                        ApiError::unavailable("The badge could not be computed; try again.")
                            .into_response(),
                    );
                }
            }
        }
    };
    match answer {
        Answer::Badge(rendered) => svg_response(
            &rendered,
            if_none_match.as_deref(),
            accepts_gzip(accept_encoding.as_deref()),
        ),
        Answer::UnknownRepository => not_found(),
    }
}

/// One query: the repository by name (citext, so case-insensitive) and the requested branch, or
/// its default branch. No repository → unknown; no branch or NULL values → `unknown` badges.
async fn load(
    app: &App,
    repository: String,
    branch: Option<String>,
) -> Result<Loaded, sqlx::Error> {
    let row: Option<(i64, Option<f64>, Option<i32>)> = sqlx::query_as(
        "SELECT r.id, b.coverage, b.issues
           FROM repositories r
           LEFT JOIN branches b
             ON b.repository_id = r.id AND b.name = COALESCE($2::citext, r.default_branch)
          WHERE r.name = $1::citext",
    )
    .bind(repository)
    .bind(branch)
    .fetch_optional(&app.db)
    .await?;
    Ok(match row {
        None => Loaded::UnknownRepository,
        Some((id, coverage, issues)) => Loaded::Repository {
            id,
            coverage,
            issues: issues.map(i64::from),
        },
    })
}

/// 200 with the SVG (gzip-encoded when the client takes it), or 304 when `If-None-Match` names
/// the tag of the representation it would get.
fn svg_response(rendered: &Rendered, if_none_match: Option<&str>, gzip: bool) -> Response {
    let (body, etag, encoded) = match (&rendered.gzip, gzip) {
        (Some((bytes, tag)), true) => (bytes, tag, true),
        _ => (&rendered.svg, &rendered.etag, false),
    };
    let mut response = if if_none_match.is_some_and(|v| etag_matches(v, etag)) {
        let mut r = Response::default();
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(body.clone().into());
        let headers = r.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(SVG_CONTENT_TYPE));
        if encoded {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        r
    };
    let headers = response.headers_mut();
    headers.insert(ETAG, etag.clone());
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    no_cache(response)
}

/// Whether `Accept-Encoding` admits gzip: listed (or `x-gzip`, or `*` when gzip is not listed)
/// with a non-zero q-value. Clients that send nothing get the plain SVG, as HTTP wants.
fn accepts_gzip(header: Option<&str>) -> bool {
    let Some(header) = header else { return false };
    let mut wildcard = false;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q_positive = parts
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .or_else(|| p.trim().strip_prefix("Q="))
            })
            .all(|q| q.trim().parse::<f32>().is_ok_and(|q| q > 0.0));
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return q_positive;
        }
        if coding == "*" {
            wildcard = q_positive;
        }
    }
    wildcard
}

/// `If-None-Match` uses the weak comparison (RFC 9110 §13.1.2): a `W/` prefix is ignored, a list
/// matches if any member does, and `*` matches any current representation.
fn etag_matches(header: &str, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    header
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/").as_bytes() == ours)
}

/// Revalidate on every use: cheap with the ETag, and a changed number shows at once.
fn no_cache(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn not_found() -> Response {
    no_cache(
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is no repository with this name.",
        )
        .into_response(),
    )
}

fn rate_limited(retry_after_secs: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("Too many badge requests from this address; retry in {retry_after_secs} s."),
    )
    .into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
    no_cache(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_comparison() {
        let tag = HeaderValue::from_static("\"abc\"");
        assert!(etag_matches("\"abc\"", &tag));
        assert!(etag_matches("W/\"abc\"", &tag));
        assert!(etag_matches("\"x\", \"abc\"", &tag));
        assert!(etag_matches("*", &tag));
        assert!(!etag_matches("\"abd\"", &tag));
        assert!(!etag_matches("abc", &tag));
        assert!(!etag_matches("", &tag));
    }

    #[test]
    fn accept_encoding_negotiation() {
        assert!(!accepts_gzip(None));
        assert!(!accepts_gzip(Some("")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(Some("zstd, br")));
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(Some("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(Some("x-gzip")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("gzip;q=0.0, *")));
        assert!(!accepts_gzip(Some("*;q=0")));
        assert!(!accepts_gzip(Some("gzip;q=nonsense")));
    }
}
