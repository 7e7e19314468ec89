//! The badge listener (badger role). It answers its own health probe; the coverage and issues
//! badge routes are served from here.

use warp::Filter;
use warp::reply::{Reply, Response};

use crate::app::App;
use crate::http::{recover, tag};

pub fn routes(_app: App) -> warp::filters::BoxedFilter<(Response,)> {
    warp::path!("health")
        .and(warp::get())
        .map(|| warp::reply::with_header("Ok", "content-type", "text/plain").into_response())
        .map(tag("GET /health"))
        .recover(recover)
        .unify()
        .boxed()
}
