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
