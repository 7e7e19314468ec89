//! Executing one GitHub REST call: headers, a per-request timeout, bounded retries with
//! exponential backoff and jitter (5xx, connection errors, timeouts), waiting out rate limits
//! that lift soon enough, `Link` pagination, and a metrics count for every attempt.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use time::OffsetDateTime;
use url::Url;

use super::GithubError;
use super::types::ErrorBody;
use crate::config::GithubConfig;
use crate::metrics::Metrics;

/// First retry pause; doubled per attempt up to `BACKOFF_MAX`, with jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// GitHub's advice for a secondary rate limit without `Retry-After`: wait at least a minute.
const SECONDARY_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// The largest response read; the biggest we expect is a 1 MB file from the contents API.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// A runaway `Link` chain stops here (100 per page → 100,000 items).
pub(crate) const MAX_PAGES: usize = 1000;

/// An answer that is not a transport failure. Statuses other than 5xx and rate limits come back
/// as they are; the caller decides what a 404 or a 422 means.
#[derive(Debug)]
pub(crate) struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    /// GitHub's `message`, or the start of the body, for error reports.
    pub fn error_message(&self) -> String {
        if let Ok(body) = serde_json::from_slice::<ErrorBody>(&self.body) {
            return body.message;
        }
        let text = String::from_utf8_lossy(&self.body);
        let text = super::types::truncate_chars(text.trim(), 200);
        if text.is_empty() {
            self.status
                .canonical_reason()
                .unwrap_or("no message")
                .to_string()
        } else {
            text.to_string()
        }
    }

    pub fn into_error(self, operation: &'static str) -> GithubError {
        GithubError::Http {
            operation,
            status: self.status.as_u16(),
            message: self.error_message(),
        }
    }

    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
    ) -> Result<T, GithubError> {
        serde_json::from_slice(&self.body).map_err(|e| GithubError::Decode {
            operation,
            message: e.to_string(),
        })
    }

    /// The `rel="next"` target of the `Link` header.
    pub fn next_page(&self) -> Option<String> {
        let link = self.headers.get(http::header::LINK)?.to_str().ok()?;
        next_link(link)
    }
}

pub(crate) struct Http {
    client: reqwest::Client,
    api: Url,
    timeout: Duration,
    max_retries: u32,
    max_rate_limit_wait: Duration,
    metrics: Arc<Metrics>,
}

impl Http {
    pub fn new(config: &GithubConfig, metrics: Arc<Metrics>) -> Result<Http, GithubError> {
        let mut api = Url::parse(config.api_url.trim()).map_err(|e| {
            GithubError::BadConfig(format!("github.api_url `{}`: {e}", config.api_url))
        })?;
        if !matches!(api.scheme(), "http" | "https") || api.cannot_be_a_base() {
            return Err(GithubError::BadConfig(format!(
                "github.api_url `{}` is not an http(s) URL",
                config.api_url
            )));
        }
        // Paths are appended segment by segment; a trailing slash would leave an empty one.
        let path = api.path().trim_end_matches('/').to_string();
        api.set_path(&path);
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "X-GitHub-Api-Version",
            HeaderValue::from_static("2022-11-28"),
        );
        let timeout = Duration::from_secs(config.request_timeout_seconds.max(1));
        let client = reqwest::Client::builder()
            .user_agent(concat!("cocov/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| GithubError::BadConfig(format!("cannot build the HTTP client: {e}")))?;
        Ok(Http {
            client,
            api,
            timeout,
            max_retries: config.max_retries,
            max_rate_limit_wait: Duration::from_secs(config.max_rate_limit_wait_seconds),
            metrics,
        })
    }

    /// `{api_url}/{segments…}`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Whether `url` points at the configured API (pagination links must, or the token would
    /// be sent elsewhere).
    pub fn is_api_url(&self, url: &Url) -> bool {
        url.origin() == self.api.origin() && url.path().starts_with(self.api.path())
    }

    /// Sends the request with `Authorization: Bearer <token>` (none for the OAuth code
    /// exchange, which authenticates with the client secret in its body), retrying and waiting
    /// as the module documentation says. Every attempt is counted in metrics.
    pub async fn execute(
        &self,
        operation: &'static str,
        method: Method,
        url: &Url,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<ApiResponse, GithubError> {
        let mut attempt: u32 = 0;
        let mut rate_limit_waited = Duration::ZERO;
        loop {
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .timeout(self.timeout);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let failure = match send(request).await {
                Ok(response) => {
                    let now = OffsetDateTime::now_utc();
                    if let Some(until) = rate_limited_until(&response, now) {
                        self.count(operation, "rate_limited");
                        // Wait at least a second so `Retry-After: 0` cannot spin.
                        let wait = duration_until(now, until).max(Duration::from_secs(1));
                        if rate_limit_waited + wait > self.max_rate_limit_wait {
                            return Err(GithubError::RateLimited { operation, until });
                        }
                        tracing::warn!(
                            operation,
                            wait_s = wait.as_secs_f64(),
                            "GitHub rate limit: waiting"
                        );
                        tokio::time::sleep(wait).await;
                        rate_limit_waited += wait;
                        continue;
                    }
                    if !response.status.is_server_error() {
                        self.count(operation, outcome_of(response.status));
                        return Ok(response);
                    }
                    self.count(operation, "server_error");
                    Failure::Server(response)
                }
                Err(SendError::TooLarge) => {
                    self.count(operation, "decode_error");
                    return Err(GithubError::Decode {
                        operation,
                        message: format!("response larger than {MAX_BODY_BYTES} bytes"),
                    });
                }
                Err(SendError::Reqwest(e)) if e.is_timeout() => {
                    self.count(operation, "timeout");
                    Failure::Timeout
                }
                Err(SendError::Reqwest(e)) => {
                    self.count(operation, "transport_error");
                    Failure::Transport(error_chain(&e))
                }
            };
            if attempt >= self.max_retries {
                return Err(failure.into_error(operation, attempt + 1));
            }
            let mut delay = backoff(attempt);
            if let Failure::Server(response) = &failure
                && let Some(after) = retry_after(&response.headers)
                && after <= self.max_rate_limit_wait
            {
                delay = delay.max(after);
            }
            tracing::warn!(
                operation,
                attempt = attempt + 1,
                delay_ms = delay.as_millis() as u64,
                error = %failure.describe(),
                "GitHub call failed; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn count(&self, operation: &'static str, outcome: &'static str) {
        self.metrics.external_call("github", operation, outcome);
    }
}

/// Why an attempt failed in a way worth retrying.
enum Failure {
    Server(ApiResponse),
    Timeout,
    Transport(String),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Server(r) => format!("HTTP {}: {}", r.status.as_u16(), r.error_message()),
            Failure::Timeout => "timed out".into(),
            Failure::Transport(m) => m.clone(),
        }
    }

    fn into_error(self, operation: &'static str, attempts: u32) -> GithubError {
        match self {
            Failure::Server(r) => GithubError::Http {
                operation,
                status: r.status.as_u16(),
                message: format!("{} (after {attempts} attempts)", r.error_message()),
            },
            Failure::Timeout => GithubError::Timeout { operation },
            Failure::Transport(m) => GithubError::Transport {
                operation,
                message: format!("{m} (after {attempts} attempts)"),
            },
        }
    }
}

enum SendError {
    Reqwest(reqwest::Error),
    TooLarge,
}

impl From<reqwest::Error> for SendError {
    fn from(e: reqwest::Error) -> Self {
        SendError::Reqwest(e)
    }
}

/// Sends and reads the whole body (bounded), so a stall in the body also hits the timeout.
async fn send(request: reqwest::RequestBuilder) -> Result<ApiResponse, SendError> {
    let mut response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(SendError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(ApiResponse {
        status,
        headers,
        body: Bytes::from(body),
    })
}

fn outcome_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "not_found",
        400..=499 => "client_error",
        _ => "success",
    }
}

/// reqwest's error with its causes ("error sending request: … Connection refused").
fn error_chain(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// `base * 2^attempt` capped, then "equal jitter": half of it plus a random part of the other
/// half, so clients that failed together do not retry together.
fn backoff(attempt: u32) -> Duration {
    let cap = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_MAX);
    let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    let half = cap_ms / 2;
    Duration::from_millis(half + rand::random_range(0..=cap_ms - half))
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// When a 403/429 is a rate limit, the moment it lifts: `Retry-After` first, then
/// `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset`, then a minute for a secondary limit
/// that names no time. A 403 that is not about rate limits is an ordinary answer.
fn rate_limited_until(response: &ApiResponse, now: OffsetDateTime) -> Option<OffsetDateTime> {
    if !matches!(response.status.as_u16(), 403 | 429) {
        return None;
    }
    if let Some(after) = retry_after(&response.headers) {
        return Some(now + after);
    }
    let header = |name: &str| {
        response
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if header("x-ratelimit-remaining") == Some("0")
        && let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok())
        && let Ok(at) = OffsetDateTime::from_unix_timestamp(reset)
    {
        return Some(at.max(now));
    }
    let mentions_rate_limit = response
        .error_message()
        .to_lowercase()
        .contains("rate limit");
    if response.status == StatusCode::TOO_MANY_REQUESTS || mentions_rate_limit {
        return Some(now + SECONDARY_RATE_LIMIT_WAIT);
    }
    None
}

fn duration_until(now: OffsetDateTime, until: OffsetDateTime) -> Duration {
    Duration::try_from(until - now).unwrap_or(Duration::ZERO)
}

/// The `rel="next"` URL of a `Link` header such as
/// `<https://api.github.com/…&page=2>; rel="next", <…&page=5>; rel="last"`.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|param| {
            param.trim().split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r == "next")
            })
        });
        is_next.then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&'static str, &str)], body: &str) -> ApiResponse {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        ApiResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn link_header_next() {
        let h = r#"<https://api.github.com/orgs/a/repos?page=2&per_page=2>; rel="next", <https://api.github.com/orgs/a/repos?page=3&per_page=2>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/orgs/a/repos?page=2&per_page=2")
        );
        let last = r#"<https://x/?page=1>; rel="first", <https://x/?page=2>; rel="prev""#;
        assert_eq!(next_link(last), None);
        assert_eq!(next_link(""), None);
    }

    #[test]
    fn rate_limit_detection() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let r = response(403, &[("retry-after", "7")], "{}");
        assert_eq!(
            rate_limited_until(&r, now),
            Some(now + Duration::from_secs(7))
        );
        let r = response(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1700000100"),
            ],
            r#"{"message":"API rate limit exceeded"}"#,
        );
        assert_eq!(
            rate_limited_until(&r, now),
            Some(now + Duration::from_secs(100))
        );
        let r = response(
            403,
            &[],
            r#"{"message":"You have exceeded a secondary rate limit"}"#,
        );
        assert_eq!(
            rate_limited_until(&r, now),
            Some(now + Duration::from_secs(60))
        );
        let r = response(
            403,
            &[("x-ratelimit-remaining", "12")],
            r#"{"message":"Resource not accessible by integration"}"#,
        );
        assert_eq!(rate_limited_until(&r, now), None);
        let r = response(404, &[("retry-after", "7")], "{}");
        assert_eq!(rate_limited_until(&r, now), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let d = backoff(attempt);
            let cap = BACKOFF_BASE
                .saturating_mul(1 << attempt.min(16))
                .min(BACKOFF_MAX);
            assert!(d <= cap && d >= cap / 2, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn urls_stay_on_the_configured_api() {
        let config = GithubConfig {
            api_url: "https://ghe.example.com/api/v3/".into(),
            ..Default::default()
        };
        let http = Http::new(&config, Arc::new(Metrics::new())).unwrap();
        let url = http.url(&["repos", "acme", "my repo", "contents", "a#b?.yml"]);
        assert_eq!(
            url.as_str(),
            "https://ghe.example.com/api/v3/repos/acme/my%20repo/contents/a%23b%3F.yml"
        );
        let ok = Url::parse("https://ghe.example.com/api/v3/orgs/acme/repos?page=2").unwrap();
        assert!(http.is_api_url(&ok));
        for bad in [
            "https://evil.example.com/api/v3/orgs/acme/repos?page=2",
            "http://ghe.example.com/api/v3/orgs/acme/repos?page=2",
            "https://ghe.example.com/other/orgs/acme/repos?page=2",
        ] {
            assert!(!http.is_api_url(&Url::parse(bad).unwrap()), "{bad}");
        }
    }

    #[test]
    fn error_message_prefers_github_message() {
        let r = response(
            422,
            &[],
            r#"{"message":"Validation Failed","documentation_url":"x"}"#,
        );
        assert_eq!(r.error_message(), "Validation Failed");
        let r = response(502, &[], "<html>bad gateway</html>");
        assert_eq!(r.error_message(), "<html>bad gateway</html>");
        let r = response(502, &[], "");
        assert_eq!(r.error_message(), "Bad Gateway");
    }
}
