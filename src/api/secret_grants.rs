//! Which repositories an organisation secret reaches: grants and the all-repositories flag.
//! Administrators only (service tokens and other users are refused: a grant hands a secret's
//! value to every pusher of the repository).

use serde::Deserialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::{admin_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::http::{ApiError, body, tag};
use crate::secrets::grants::{self, GrantError, Grants};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantInput {
    repository: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReachInput {
    all_repositories: bool,
}

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let list = warp::path!("v1" / "secrets" / String / "grants")
        .and(warp::get())
        .and(admin_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|secret: String, _actor: Actor, app: App| async move {
            reply(grants::list(&app.db, &secret).await, StatusCode::OK)
        })
        .map(tag("GET /v1/secrets/{secret}/grants"));
    let grant = warp::path!("v1" / "secrets" / String / "grants")
        .and(warp::post())
        .and(admin_actor(app.clone()))
        .and(body::json::<GrantInput>(16 * 1024))
        .and(with_app(app.clone()))
        .then(
            |secret: String, actor: Actor, input: GrantInput, app: App| async move {
                let result = grants::grant(
                    &app.db,
                    &secret,
                    input.repository.trim(),
                    &actor.audit(),
                    actor.user_id(),
                )
                .await;
                reply(result, StatusCode::CREATED)
            },
        )
        .map(tag("POST /v1/secrets/{secret}/grants"));
    let revoke = warp::path!("v1" / "secrets" / String / "grants" / String)
        .and(warp::delete())
        .and(admin_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(
            |secret: String, repository: String, actor: Actor, app: App| async move {
                match grants::revoke(&app.db, &secret, &repository, &actor.audit()).await {
                    Ok(true) => StatusCode::NO_CONTENT.into_response(),
                    Ok(false) => ApiError::not_found().into_response(),
                    Err(e) => error(e).into_response(),
                }
            },
        )
        .map(tag("DELETE /v1/secrets/{secret}/grants/{repository}"));
    let reach = warp::path!("v1" / "secrets" / String)
        .and(warp::patch())
        .and(admin_actor(app.clone()))
        .and(body::json::<ReachInput>(16 * 1024))
        .and(with_app(app))
        .then(
            |secret: String, actor: Actor, input: ReachInput, app: App| async move {
                let result = grants::set_all_repositories(
                    &app.db,
                    &secret,
                    input.all_repositories,
                    &actor.audit(),
                )
                .await;
                reply(result, StatusCode::OK)
            },
        )
        .map(tag("PATCH /v1/secrets/{secret}"));
    list.or(grant)
        .unify()
        .or(revoke)
        .unify()
        .or(reach)
        .unify()
        .boxed()
}

fn reply(result: Result<Grants, GrantError>, status: StatusCode) -> Response {
    match result {
        Ok(grants) => warp::reply::with_status(warp::reply::json(&grants), status).into_response(),
        Err(e) => error(e).into_response(),
    }
}

fn error(e: GrantError) -> ApiError {
    match e {
        GrantError::UnknownSecret(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "secrets.not_found", e.to_string())
        }
        GrantError::UnknownRepository(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "repositories.not_found",
            e.to_string(),
        ),
        GrantError::Db(e) => ApiError::internal("changing a secret's grants", e),
    }
}
