//! Shared by the read routes: the repository named in the path as the actor may see it (the same
//! 404 whether it is absent or not theirs), and the paging parameters.

use std::collections::HashMap;

use crate::app::App;
use crate::auth::Actor;
use crate::http::ApiError;
use crate::memberships::Level;
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

/// Refuses (403) unless `actor` may manage `repository`: an administrator, or a user who is a
/// maintainer of it. Changing what every later commit reports (secrets, permanent ignore
/// rules) or stopping work others started (cancelling checks) needs this; reading does not.
pub async fn require_maintainer(
    app: &App,
    actor: &Actor,
    repository: &Repository,
) -> Result<(), ApiError> {
    require_level(app, actor, repository, Level::Maintain).await
}

/// Refuses (403) unless `actor` is an administrator or a member of `repository` at `level` or
/// above (a local grant or GitHub's). Service tokens are automation, not people with a role, so
/// they never qualify.
pub async fn require_level(
    app: &App,
    actor: &Actor,
    repository: &Repository,
    level: Level,
) -> Result<(), ApiError> {
    if actor.is_admin() {
        return Ok(());
    }
    let Some(user_id) = actor.user_id() else {
        return Err(ApiError::forbidden());
    };
    let held = crate::memberships::level_of(&app.db, repository.id, user_id)
        .await
        .map_err(|e| ApiError::internal("checking membership", e))?;
    if held >= Some(level) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
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
