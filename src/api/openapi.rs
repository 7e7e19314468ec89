//! `GET /v1/openapi.json`: the OpenAPI 3 description of this API, unauthenticated. The document
//! is the checked-in `openapi.json`; tests/openapi.rs keeps it and the routes in step (every
//! tagged route documented, every documented operation served, responses matching schemas).

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::CONTENT_TYPE;
use warp::reply::{Reply, Response};

use crate::http::tag;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub fn routes() -> BoxedFilter<(Response,)> {
    warp::path!("v1" / "openapi.json")
        .and(warp::get())
        .map(|| {
            warp::reply::with_header(DOCUMENT, CONTENT_TYPE, "application/json").into_response()
        })
        .map(tag("GET /v1/openapi.json"))
        .boxed()
}

/// Path templates of the document and their methods, parsed once.
fn operations() -> &'static [(Vec<String>, Vec<String>)] {
    static OPERATIONS: std::sync::OnceLock<Vec<(Vec<String>, Vec<String>)>> =
        std::sync::OnceLock::new();
    OPERATIONS.get_or_init(|| {
        let document: serde_json::Value =
            serde_json::from_str(DOCUMENT).expect("the embedded OpenAPI document is JSON");
        let paths = document["paths"].as_object().cloned().unwrap_or_default();
        paths
            .into_iter()
            .map(|(template, item)| {
                let segments = template.split('/').map(str::to_string).collect();
                let methods = item
                    .as_object()
                    .map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                (segments, methods)
            })
            .collect()
    })
}

/// The methods the document gives a request path (`{param}` segments match any segment).
fn allowed_methods(path: &str) -> Vec<&'static str> {
    let is_param = |t: &str| t.starts_with('{') && t.ends_with('}');
    let segments: Vec<&str> = path.split('/').collect();
    let matching: Vec<_> = operations()
        .iter()
        .filter(|(template, _)| {
            template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || is_param(t))
        })
        .map(|(template, methods)| (template.iter().filter(|t| is_param(t)).count(), methods))
        .collect();
    // A literal segment wins over a parameter (`…/checks/re_run` is not `…/checks/{id}`).
    let fewest = matching.iter().map(|(params, _)| *params).min();
    let mut methods: Vec<&'static str> = matching
        .into_iter()
        .filter(|(params, _)| Some(*params) == fewest)
        .flat_map(|(_, methods)| methods.iter().map(String::as_str))
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// A 405 says which methods the path has (RFC 9110 requires `Allow`); warp's rejection does
/// not carry them, so they come from the document, which tests keep in step with the routes.
pub fn with_allow(path: &str, mut response: Response) -> Response {
    if response.status() == warp::http::StatusCode::METHOD_NOT_ALLOWED {
        let allowed = allowed_methods(path).join(", ");
        if let Ok(value) = warp::http::HeaderValue::from_str(&allowed) {
            response
                .headers_mut()
                .insert(warp::http::header::ALLOW, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::allowed_methods;

    #[test]
    fn allowed_methods_follow_the_templates() {
        assert_eq!(allowed_methods("/v1/secrets"), ["GET", "POST"]);
        assert_eq!(allowed_methods("/v1/secrets/X"), ["DELETE", "PATCH"]);
        assert_eq!(
            allowed_methods("/v1/repositories/a/commits"),
            ["GET", "POST"]
        );
        assert_eq!(
            allowed_methods("/v1/repositories/a/commits/b/checks/re_run"),
            ["POST"]
        );
        assert!(allowed_methods("/nowhere").is_empty());
    }
}
