//! Branches: the names of a repository's branches, and one branch (its name may contain `/`)
//! with its numbers and head commit.

use serde_json::{Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::path::Tail;
use warp::reply::Response;

use super::access::{respond, visible_repository};
use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::branches::{self, BranchView};
use crate::http::{ApiError, tag};

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let list = warp::path!("v1" / "repositories" / String / "branches")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|name: String, actor: Actor, app: App| async move {
            respond(list(&app, &actor, &name).await)
        })
        .map(tag("GET /v1/repositories/{name}/branches"));
    // The rest of the path is the branch name, slashes included.
    let show = warp::path("v1")
        .and(warp::path("repositories"))
        .and(warp::path::param::<String>())
        .and(warp::path("branches"))
        .and(warp::path::tail())
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app))
        .then(
            |name: String, branch: Tail, actor: Actor, app: App| async move {
                respond(show(&app, &actor, &name, branch.as_str()).await)
            },
        )
        .map(tag("GET /v1/repositories/{name}/branches/{branch}"));
    list.or(show).unify().boxed()
}

async fn list(app: &App, actor: &Actor, name: &str) -> Result<Value, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    let names = branches::names(&app.db, &repository)
        .await
        .map_err(|e| ApiError::internal("listing branches", e))?;
    Ok(json!({ "branches": names }))
}

async fn show(app: &App, actor: &Actor, name: &str, branch: &str) -> Result<BranchView, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    // `feature%2Fx` and `feature/x` name the same branch.
    let branch = crate::http::path::percent_decode(branch).ok_or_else(ApiError::not_found)?;
    branches::find(&app.db, &repository, &branch)
        .await
        .map_err(|e| ApiError::internal("loading a branch", e))?
        .ok_or_else(ApiError::not_found)
}
