//! Members of a standalone repository: `GET/POST /v1/repositories/{name}/members` (a user
//! `{login, level}` or an OIDC group `{group, level}`), `DELETE
//! /v1/repositories/{name}/members/{login}` and `DELETE
//! /v1/repositories/{name}/members/groups/{group}`. Whoever sees the repository may list its
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
use crate::memberships::{self, Level, MembershipError, Subject};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberInput {
    login: Option<String>,
    group: Option<String>,
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
    let remove_user = warp::path!("v1" / "repositories" / String / "members" / String)
        .and(warp::delete())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(
            |repo: String, login: String, actor: Actor, app: App| async move {
                let removed = remove(&app, &actor, &repo, Who::User(&login)).await;
                reply(removed, StatusCode::NO_CONTENT)
            },
        )
        .map(tag("DELETE /v1/repositories/{name}/members/{login}"));
    let remove_group = warp::path!("v1" / "repositories" / String / "members" / "groups" / String)
        .and(warp::delete())
        .and(any_actor(app.clone()))
        .and(with_app(app))
        .then(
            |repo: String, group: String, actor: Actor, app: App| async move {
                let removed = remove(&app, &actor, &repo, Who::Group(&group)).await;
                reply(removed, StatusCode::NO_CONTENT)
            },
        )
        .map(tag("DELETE /v1/repositories/{name}/members/groups/{group}"));
    list.or(add)
        .unify()
        .or(remove_group)
        .unify()
        .or(remove_user)
        .unify()
        .boxed()
}

/// The member named in a DELETE path, still percent-encoded.
enum Who<'a> {
    User(&'a str),
    Group(&'a str),
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
        MembershipError::InvalidGroup(_) => {
            ApiError::bad_request("members.invalid_group", e.to_string())
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
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let group = input.group.as_deref().filter(|g| !g.trim().is_empty());
    let subject = match (login, group) {
        (Some(login), None) => Subject::User(login),
        (None, Some(group)) => Subject::Group(group),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "members.login_and_group",
                "Give either \"login\" or \"group\", not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "members.no_login",
                "The parameter \"login\" (or \"group\") is required",
            ));
        }
    };
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
    let member = memberships::grant(&app.db, &repository, subject, level, &actor.audit())
        .await
        .map_err(refused)?;
    Ok(json!(member))
}

async fn remove(app: &App, actor: &Actor, name: &str, who: Who<'_>) -> Result<Value, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    require_level(app, actor, &repository, Level::Admin).await?;
    let decode = |raw: &str| crate::http::path::percent_decode(raw).ok_or_else(ApiError::not_found);
    let (login, group);
    let subject = match who {
        Who::User(raw) => {
            login = decode(raw)?;
            Subject::User(&login)
        }
        Who::Group(raw) => {
            group = decode(raw)?;
            Subject::Group(&group)
        }
    };
    let removed = memberships::revoke(&app.db, &repository, subject, &actor.audit())
        .await
        .map_err(refused)?;
    if removed {
        Ok(Value::Null)
    } else {
        Err(ApiError::not_found())
    }
}
