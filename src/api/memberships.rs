//! Members of a standalone repository: `GET/POST /v1/repositories/{name}/members` and
//! `DELETE /v1/repositories/{name}/members/{login}`. Whoever sees the repository may list its
//! members; administrators and the repository's admins change them.

use serde::Deserialize;
use serde_json::{Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::access::{require_level, visible_repository};
use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::http::{ApiError, body, tag};
use crate::memberships::{self, Level, MembershipError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberInput {
    login: Option<String>,
    level: Option<String>,
}

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let list = warp::path!("v1" / "repositories" / String / "members")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|repo: String, actor: Actor, app: App| async move {
            reply(list(&app, &actor, &repo).await, StatusCode::OK)
        })
        .map(tag("GET /v1/repositories/{name}/members"));
    let add = warp::path!("v1" / "repositories" / String / "members")
        .and(warp::post())
        .and(any_actor(app.clone()))
        .and(body::json::<MemberInput>(16 * 1024))
        .and(with_app(app.clone()))
        .then(
            |repo: String, actor: Actor, input: MemberInput, app: App| async move {
                reply(add(&app, &actor, &repo, input).await, StatusCode::CREATED)
            },
        )
        .map(tag("POST /v1/repositories/{name}/members"));
    let remove = warp::path!("v1" / "repositories" / String / "members" / String)
        .and(warp::delete())
        .and(any_actor(app.clone()))
        .and(with_app(app))
        .then(
            |repo: String, login: String, actor: Actor, app: App| async move {
                reply(
                    remove(&app, &actor, &repo, &login).await,
                    StatusCode::NO_CONTENT,
                )
            },
        )
        .map(tag("DELETE /v1/repositories/{name}/members/{login}"));
    list.or(add).unify().or(remove).unify().boxed()
}

fn reply(result: Result<Value, ApiError>, status: StatusCode) -> Response {
    match result {
        Ok(_) if status == StatusCode::NO_CONTENT => status.into_response(),
        Ok(body) => warp::reply::with_status(warp::reply::json(&body), status).into_response(),
        Err(e) => e.into_response(),
    }
}

fn refused(e: MembershipError) -> ApiError {
    match e {
        MembershipError::UnknownUser(_) => {
            ApiError::bad_request("members.unknown_user", e.to_string())
        }
        MembershipError::GithubManaged(_) => ApiError::new(
            StatusCode::CONFLICT,
            "members.github_managed",
            e.to_string(),
        ),
        other => ApiError::internal("changing members", other),
    }
}

async fn list(app: &App, actor: &Actor, name: &str) -> Result<Value, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    let members = memberships::list(&app.db, &repository)
        .await
        .map_err(|e| ApiError::internal("listing members", e))?;
    Ok(json!({ "members": members }))
}

async fn add(app: &App, actor: &Actor, name: &str, input: MemberInput) -> Result<Value, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    require_level(app, actor, &repository, Level::Admin).await?;
    let login = input
        .login
        .filter(|l| !l.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("members.no_login", "The parameter \"login\" is required")
        })?;
    let level = input
        .level
        .as_deref()
        .and_then(Level::parse)
        .ok_or_else(|| {
            ApiError::bad_request(
                "members.invalid_level",
                "The parameter \"level\" must be one of read, maintain, admin",
            )
        })?;
    let member = memberships::grant(&app.db, &repository, login.trim(), level, &actor.audit())
        .await
        .map_err(refused)?;
    Ok(json!(member))
}

async fn remove(app: &App, actor: &Actor, name: &str, login: &str) -> Result<Value, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    require_level(app, actor, &repository, Level::Admin).await?;
    let login = crate::http::path::percent_decode(login).ok_or_else(ApiError::not_found)?;
    let removed = memberships::revoke(&app.db, &repository, &login, &actor.audit())
        .await
        .map_err(refused)?;
    if removed {
        Ok(Value::Null)
    } else {
        Err(ApiError::not_found())
    }
}
