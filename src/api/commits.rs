//! Commits: the commits pushed to a branch (the default branch unless `?branch=` names another),
//! newest push first and paged, and one commit by sha.

use std::collections::HashMap;

use serde::Serialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::access::{page, respond, visible_repository};
use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::commits::{self, CommitView};
use crate::http::{ApiError, tag};
use crate::paging::Paging;

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let list = warp::path!("v1" / "repositories" / String / "commits")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(warp::query::<HashMap<String, String>>())
        .and(with_app(app.clone()))
        .then(
            |name: String, actor: Actor, query: HashMap<String, String>, app: App| async move {
                respond(list(&app, &actor, &name, &query).await)
            },
        )
        .map(tag("GET /v1/repositories/{name}/commits"));
    let show = warp::path!("v1" / "repositories" / String / "commits" / String)
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app))
        .then(
            |name: String, sha: String, actor: Actor, app: App| async move {
                respond(show(&app, &actor, &name, &sha).await)
            },
        )
        .map(tag("GET /v1/repositories/{name}/commits/{sha}"));
    list.or(show).unify().boxed()
}

#[derive(Serialize)]
struct CommitList {
    branch: String,
    commits: Vec<CommitView>,
    paging: Paging,
}

async fn list(
    app: &App,
    actor: &Actor,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<CommitList, ApiError> {
    let page = page(query)?;
    let repository = visible_repository(app, actor, name).await?;
    let branch = query
        .get("branch")
        .filter(|b| !b.is_empty())
        .cloned()
        .unwrap_or_else(|| repository.default_branch.clone());
    let internal = |e| ApiError::internal("listing commits", e);
    let branch_id = crate::branches::find_id(&app.db, repository.id, &branch)
        .await
        .map_err(internal)?
        .ok_or_else(ApiError::not_found)?;
    let found = commits::list_for_branch(&app.db, branch_id, page)
        .await
        .map_err(internal)?;
    Ok(CommitList {
        branch,
        commits: found.items,
        paging: found.paging,
    })
}

async fn show(app: &App, actor: &Actor, name: &str, sha: &str) -> Result<CommitView, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    if !crate::git::is_full_sha(sha) {
        return Err(ApiError::not_found());
    }
    commits::find_by_sha(&app.db, repository.id, sha)
        .await
        .map_err(|e| ApiError::internal("loading a commit", e))?
        .ok_or_else(ApiError::not_found)
}
