//! Shared by the read routes: the repository named in the path as the actor may see it (the same
//! 404 whether it is absent or not theirs), and the paging parameters.

use std::collections::HashMap;

use crate::app::App;
use crate::auth::Actor;
use crate::http::ApiError;
use crate::paging::{Page, PageError};
use crate::repositories::{self, Repository, Viewer};

/// The repository called `name` if `actor` may see it; 404 `not_found` otherwise.
pub async fn visible_repository(
    app: &App,
    actor: &Actor,
    name: &str,
) -> Result<Repository, ApiError> {
    repositories::find_visible(&app.db, Viewer::from(actor), name)
        .await
        .map_err(|e| ApiError::internal("loading a repository", e))?
        .ok_or_else(ApiError::not_found)
}

/// `page` and `per_page` from the query string; a bad value is a 400 naming it.
pub fn page(query: &HashMap<String, String>) -> Result<Page, ApiError> {
    Page::parse(
        query.get("page").map(String::as_str),
        query.get("per_page").map(String::as_str),
    )
    .map_err(|e| {
        let code = match e {
            PageError::InvalidPage(_) => "paging.invalid_page",
            PageError::InvalidPerPage(_) => "paging.invalid_per_page",
        };
        ApiError::bad_request(code, e.to_string())
    })
}

/// Renders a handler's outcome.
pub fn respond<T: serde::Serialize>(result: Result<T, ApiError>) -> warp::reply::Response {
    use warp::Reply;
    match result {
        Ok(body) => warp::reply::json(&body).into_response(),
        Err(e) => e.into_response(),
    }
}
