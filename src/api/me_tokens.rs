//! `GET/POST /v1/me/tokens` and `DELETE /v1/me/tokens/{id}`: a user's own personal tokens and
//! sessions. A lost token is replaced here (sign in, make a new one, revoke the old one).

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use warp::Filter;
use warp::reply::{Reply, Response};

use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::auth::personal_tokens::{self, PersonalTokenError};
use crate::http::{ApiError, body, tag};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: Option<String>,
    expires_in_days: Option<i64>,
}

/// The user behind the request; service tokens have no tokens of their own here.
fn user_of(actor: &Actor) -> Result<i64, ApiError> {
    actor.user_id().ok_or_else(ApiError::forbidden)
}

pub fn routes(app: App) -> warp::filters::BoxedFilter<(Response,)> {
    let list = warp::path!("v1" / "me" / "tokens")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|actor: Actor, app: App| async move {
            let result = async {
                let tokens = personal_tokens::list(&app.db, user_of(&actor)?)
                    .await
                    .map_err(|e| ApiError::internal("listing tokens", e))?;
                Ok(json!({ "tokens": tokens }))
            }
            .await;
            super::access::respond(result)
        })
        .map(tag("GET /v1/me/tokens"));
    let create = warp::path!("v1" / "me" / "tokens")
        .and(warp::post())
        .and(any_actor(app.clone()))
        .and(body::json::<NewToken>(16 * 1024))
        .and(with_app(app.clone()))
        .then(|actor: Actor, input: NewToken, app: App| async move {
            match create(&app, &actor, input).await {
                Ok(body) => warp::reply::with_status(warp::reply::json(&body), StatusCode::CREATED)
                    .into_response(),
                Err(e) => e.into_response(),
            }
        })
        .map(tag("POST /v1/me/tokens"));
    let revoke = warp::path!("v1" / "me" / "tokens" / i64)
        .and(warp::delete())
        .and(any_actor(app.clone()))
        .and(with_app(app))
        .then(|id: i64, actor: Actor, app: App| async move {
            let result = async {
                let revoked =
                    personal_tokens::revoke(&app.db, user_of(&actor)?, id, &actor.audit())
                        .await
                        .map_err(|e| ApiError::internal("revoking a token", e))?;
                if revoked {
                    Ok(())
                } else {
                    Err(ApiError::not_found())
                }
            }
            .await;
            match result {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => e.into_response(),
            }
        })
        .map(tag("DELETE /v1/me/tokens/{id}"));
    list.or(create).unify().or(revoke).unify().boxed()
}

async fn create(app: &App, actor: &Actor, input: NewToken) -> Result<serde_json::Value, ApiError> {
    let user_id = user_of(actor)?;
    let name = input.name.unwrap_or_default();
    let (id, token) = personal_tokens::create(
        &app.db,
        user_id,
        &name,
        input.expires_in_days,
        &actor.audit(),
    )
    .await
    .map_err(|e| match e {
        PersonalTokenError::InvalidName => {
            ApiError::bad_request("tokens.invalid_name", e.to_string())
        }
        PersonalTokenError::InvalidExpiry => {
            ApiError::bad_request("tokens.invalid_expiry", e.to_string())
        }
        other => ApiError::internal("creating a token", other),
    })?;
    Ok(json!({"id": id, "token": token, "name": name.trim()}))
}
