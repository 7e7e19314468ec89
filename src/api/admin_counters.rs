//! Admin overviews: the sidebar counters and the repositories with their storage sizes.

use std::collections::HashMap;

use serde_json::{Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::access::{page, respond};
use super::{admin_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::http::{ApiError, tag};
use crate::stats;

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let counters = warp::path!("v1" / "admin" / "sidebar_counters")
        .and(warp::get())
        .and(admin_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|_actor: Actor, app: App| async move {
            respond(
                stats::counters(&app.db)
                    .await
                    .map_err(|e| ApiError::internal("counting", e)),
            )
        })
        .map(tag("GET /v1/admin/sidebar_counters"));
    let repositories = warp::path!("v1" / "admin" / "repositories")
        .and(warp::get())
        .and(admin_actor(app.clone()))
        .and(warp::query::<HashMap<String, String>>())
        .and(with_app(app))
        .then(
            |_actor: Actor, query: HashMap<String, String>, app: App| async move {
                respond(repositories(&app, &query).await)
            },
        )
        .map(tag("GET /v1/admin/repositories"));
    counters.or(repositories).unify().boxed()
}

/// The longest `search` taken (as documented): a name prefix longer than any name can match.
const MAX_SEARCH_CHARS: usize = 100;

async fn repositories(app: &App, query: &HashMap<String, String>) -> Result<Value, ApiError> {
    let page = page(query)?;
    let search = query.get("search").map(String::as_str);
    if search.is_some_and(|s| s.chars().count() > MAX_SEARCH_CHARS) {
        return Err(ApiError::bad_request(
            "repositories.invalid_search",
            format!("`search` is longer than {MAX_SEARCH_CHARS} characters"),
        ));
    }
    let found = stats::repository_storage(&app.db, search, page)
        .await
        .map_err(|e| ApiError::internal("listing repositories", e))?;
    Ok(json!({ "repositories": found.items, "paging": found.paging }))
}
