//! Reading repositories: the list the actor may see (with search and paging) and one
//! repository with its default branch's numbers and head commit.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::access::{page, respond, visible_repository};
use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::branches;
use crate::http::{ApiError, tag};
use crate::repositories::{self, RepositorySummary, Viewer};

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let list = warp::path!("v1" / "repositories")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(warp::query::<HashMap<String, String>>())
        .and(with_app(app.clone()))
        .then(
            |actor: Actor, query: HashMap<String, String>, app: App| async move {
                respond(list(&app, &actor, &query).await)
            },
        )
        .map(tag("GET /v1/repositories"));
    let show = warp::path!("v1" / "repositories" / String)
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app))
        .then(|name: String, actor: Actor, app: App| async move {
            respond(show(&app, &actor, &name).await)
        })
        .map(tag("GET /v1/repositories/{name}"));
    list.or(show).unify().boxed()
}

#[derive(Serialize)]
struct RepositoryList {
    repositories: Vec<RepositorySummary>,
    paging: crate::paging::Paging,
}

async fn list(
    app: &App,
    actor: &Actor,
    query: &HashMap<String, String>,
) -> Result<RepositoryList, ApiError> {
    let page = page(query)?;
    let search = query.get("search_term").map(String::as_str);
    let found = repositories::list_visible(&app.db, Viewer::from(actor), search, page)
        .await
        .map_err(|e| ApiError::internal("listing repositories", e))?;
    Ok(RepositoryList {
        repositories: found.items,
        paging: found.paging,
    })
}

/// The summary plus `head`: the default branch's head commit (null without one).
async fn show(app: &App, actor: &Actor, name: &str) -> Result<Value, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    let internal = |e| ApiError::internal("loading a repository", e);
    let summary = repositories::summary(&app.db, &repository)
        .await
        .map_err(internal)?;
    let branch = branches::find(&app.db, &repository, &repository.default_branch)
        .await
        .map_err(internal)?;
    let mut body =
        serde_json::to_value(&summary).map_err(|e| ApiError::internal("rendering", e))?;
    body["head"] = json!(branch.and_then(|b| b.head));
    Ok(body)
}
