//! Administration: service tokens (create, list, revoke). Admin users only.

use http::StatusCode;
use serde::Deserialize;
use warp::Filter;
use warp::reply::{Reply, Response};

use super::{admin_actor, with_app};
use crate::app::App;
use crate::auth::{Actor, service_tokens};
use crate::http::{ApiError, body, tag};

#[derive(Deserialize)]
struct CreateServiceToken {
    #[serde(default)]
    description: String,
}

pub fn routes(app: App) -> warp::filters::BoxedFilter<(Response,)> {
    let list = warp::path!("v1" / "admin" / "service_tokens")
        .and(warp::get())
        .and(admin_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|_actor: Actor, app: App| async move {
            match service_tokens::list(&app.db).await {
                Ok(tokens) => {
                    warp::reply::json(&serde_json::json!({"tokens": tokens})).into_response()
                }
                Err(e) => ApiError::internal("listing service tokens", e).into_response(),
            }
        })
        .map(tag("GET /v1/admin/service_tokens"));
    let create = warp::path!("v1" / "admin" / "service_tokens")
        .and(warp::post())
        .and(admin_actor(app.clone()))
        .and(body::json::<CreateServiceToken>(64 * 1024))
        .and(with_app(app.clone()))
        .then(
            |actor: Actor, input: CreateServiceToken, app: App| async move {
                match service_tokens::create(
                    &app.db,
                    &input.description,
                    actor.user_id(),
                    &actor.audit(),
                )
                .await
                {
                    Ok((record, token)) => {
                        let mut body = serde_json::to_value(&record).unwrap_or_default();
                        body["token_value"] = token.into();
                        warp::reply::with_status(warp::reply::json(&body), StatusCode::CREATED)
                            .into_response()
                    }
                    Err(service_tokens::ServiceTokenError::MissingDescription) => {
                        ApiError::bad_request(
                            "admin.service_token_description_missing",
                            "The parameter \"description\" is required",
                        )
                        .into_response()
                    }
                    Err(e) => ApiError::internal("creating a service token", e).into_response(),
                }
            },
        )
        .map(tag("POST /v1/admin/service_tokens"));
    let revoke = warp::path!("v1" / "admin" / "service_tokens" / i64)
        .and(warp::delete())
        .and(admin_actor(app.clone()))
        .and(with_app(app))
        .then(|id: i64, actor: Actor, app: App| async move {
            match service_tokens::revoke(&app.db, id, &actor.audit()).await {
                Ok(true) => StatusCode::NO_CONTENT.into_response(),
                Ok(false) => ApiError::not_found().into_response(),
                Err(e) => ApiError::internal("revoking a service token", e).into_response(),
            }
        })
        .map(tag("DELETE /v1/admin/service_tokens/{id}"));
    list.or(create).unify().or(revoke).unify().boxed()
}
