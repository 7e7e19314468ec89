//! The charts' data: a repository's 31-day series (its default branch), a branch's, and the
//! kinds of issue a branch's head has most.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::path::Tail;
use warp::reply::Response;

use super::access::{respond, visible_repository};
use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::branches::{self, KindCounts};
use crate::http::{ApiError, tag};
use crate::stats::{self, Graphs};

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let repository = warp::path!("v1" / "repositories" / String / "graphs")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|name: String, actor: Actor, app: App| async move {
            respond(graphs(&app, &actor, &name, None).await)
        })
        .map(tag("GET /v1/repositories/{name}/graphs"));
    // The branch name is the rest of the path, slashes included; these two routes go before
    // the branch route, which would otherwise read `graphs/main` as a branch name.
    let branch_graphs = branch_path("graphs")
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(
            |name: String, branch: Tail, actor: Actor, app: App| async move {
                respond(graphs(&app, &actor, &name, Some(branch.as_str())).await)
            },
        )
        .map(tag("GET /v1/repositories/{name}/branches/graphs/{branch}"));
    let top = branch_path("top_issues")
        .and(any_actor(app.clone()))
        .and(with_app(app))
        .then(
            |name: String, branch: Tail, actor: Actor, app: App| async move {
                respond(top_issues(&app, &actor, &name, branch.as_str()).await)
            },
        )
        .map(tag(
            "GET /v1/repositories/{name}/branches/top_issues/{branch}",
        ));
    repository.or(branch_graphs).unify().or(top).unify().boxed()
}

fn branch_path(
    what: &'static str,
) -> impl Filter<Extract = (String, Tail), Error = warp::Rejection> + Clone {
    warp::path("v1")
        .and(warp::path("repositories"))
        .and(warp::path::param::<String>())
        .and(warp::path("branches"))
        .and(warp::path(what))
        .and(warp::path::tail())
        .and(warp::get())
}

fn branch_name(raw: &str) -> Result<String, ApiError> {
    // `feature%2Fx` and `feature/x` name the same branch.
    crate::http::path::percent_decode(raw).ok_or_else(ApiError::not_found)
}

/// The series of `branch`, or of the default branch (whose row may not exist yet: all null).
async fn graphs(
    app: &App,
    actor: &Actor,
    name: &str,
    branch: Option<&str>,
) -> Result<Graphs, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    let internal = |e| ApiError::internal("loading graphs", e);
    let branch_id = match branch {
        Some(raw) => Some(
            branches::find_id(&app.db, repository.id, &branch_name(raw)?)
                .await
                .map_err(internal)?
                .ok_or_else(ApiError::not_found)?,
        ),
        None => branches::find_id(&app.db, repository.id, &repository.default_branch)
            .await
            .map_err(internal)?,
    };
    let today = time::OffsetDateTime::now_utc().date();
    stats::graphs(&app.db, branch_id, today)
        .await
        .map_err(internal)
}

async fn top_issues(
    app: &App,
    actor: &Actor,
    name: &str,
    branch: &str,
) -> Result<KindCounts, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    branches::top_issues(&app.db, &repository, &branch_name(branch)?)
        .await
        .map_err(|e| ApiError::internal("counting issues", e))?
        .ok_or_else(ApiError::not_found)
}
