//! The original's user administration routes, administrators only: list users with their roles,
//! promote/demote, sign out everywhere, delete, and resync permissions from GitHub.

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use warp::Filter;
use warp::reply::{Reply, Response};

use super::{admin_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::auth::user_admin::{self, UserAdminError};
use crate::http::{ApiError, body, tag};

#[derive(Deserialize)]
struct Membership {
    admin: Option<bool>,
}

fn refused(e: UserAdminError) -> ApiError {
    match e {
        UserAdminError::NotFound => ApiError::not_found(),
        UserAdminError::LastAdmin => {
            ApiError::new(StatusCode::CONFLICT, "admin.last_admin", e.to_string())
        }
        other => ApiError::internal("administering a user", other),
    }
}

fn answer(result: Result<(StatusCode, serde_json::Value), ApiError>) -> Response {
    match result {
        Ok((StatusCode::NO_CONTENT, _)) => StatusCode::NO_CONTENT.into_response(),
        Ok((status, body)) => {
            warp::reply::with_status(warp::reply::json(&body), status).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// 404 unless user `id` exists.
async fn existing(app: &App, id: i64) -> Result<(), ApiError> {
    user_admin::get(&app.db, id)
        .await
        .map_err(|e| ApiError::internal("loading a user", e))?
        .map(|_| ())
        .ok_or_else(ApiError::not_found)
}

pub fn routes(app: App) -> warp::filters::BoxedFilter<(Response,)> {
    let list = warp::path!("v1" / "admin" / "users")
        .and(warp::get())
        .and(admin_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|_actor: Actor, app: App| async move {
            answer(
                user_admin::list(&app.db)
                    .await
                    .map(|users| (StatusCode::OK, json!({ "users": users })))
                    .map_err(|e| ApiError::internal("listing users", e)),
            )
        })
        .map(tag("GET /v1/admin/users"));
    let membership = warp::path!("v1" / "admin" / "users" / i64 / "membership")
        .and(warp::patch())
        .and(admin_actor(app.clone()))
        .and(body::json::<Membership>(16 * 1024))
        .and(with_app(app.clone()))
        .then(
            |id: i64, actor: Actor, input: Membership, app: App| async move {
                let result = async {
                    let admin = input.admin.ok_or_else(|| {
                        ApiError::bad_request(
                            "admin.no_admin",
                            "The parameter \"admin\" is required",
                        )
                    })?;
                    let user = user_admin::set_admin(&app.db, id, admin, &actor.audit())
                        .await
                        .map_err(refused)?;
                    Ok((StatusCode::OK, json!(user)))
                }
                .await;
                answer(result)
            },
        )
        .map(tag("PATCH /v1/admin/users/{id}/membership"));
    let logout = warp::path!("v1" / "admin" / "users" / i64 / "logout")
        .and(warp::post())
        .and(admin_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|id: i64, actor: Actor, app: App| async move {
            let result = async {
                existing(&app, id).await?;
                let revoked = crate::auth::sessions::revoke_all(&app.db, id, &actor.audit())
                    .await
                    .map_err(|e| ApiError::internal("revoking tokens", e))?;
                Ok((StatusCode::OK, json!({ "tokens_revoked": revoked })))
            }
            .await;
            answer(result)
        })
        .map(tag("POST /v1/admin/users/{id}/logout"));
    let sync = warp::path!("v1" / "admin" / "users" / i64 / "sync_perms")
        .and(warp::post())
        .and(admin_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|id: i64, _actor: Actor, app: App| async move {
            let result = async {
                existing(&app, id).await?;
                if app.github.is_none() {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "admin.not_github",
                        "Permissions come from GitHub only in GitHub mode; standalone memberships are managed directly",
                    ));
                }
                // GitHub lists collaborators per repository, so a user's permissions are
                // refreshed by resyncing every repository.
                crate::permissions::enqueue_sync_all(&app)
                    .await
                    .map_err(|e| ApiError::internal("queueing a permission sync", e))?;
                Ok((StatusCode::ACCEPTED, json!({ "queued": true })))
            }
            .await;
            answer(result)
        })
        .map(tag("POST /v1/admin/users/{id}/sync_perms"));
    let delete = warp::path!("v1" / "admin" / "users" / i64)
        .and(warp::delete())
        .and(admin_actor(app.clone()))
        .and(with_app(app))
        .then(|id: i64, actor: Actor, app: App| async move {
            answer(
                user_admin::delete(&app.db, id, &actor.audit())
                    .await
                    .map(|()| (StatusCode::NO_CONTENT, json!(null)))
                    .map_err(refused),
            )
        })
        .map(tag("DELETE /v1/admin/users/{id}"));
    list.or(membership)
        .unify()
        .or(logout)
        .unify()
        .or(sync)
        .unify()
        .or(delete)
        .unify()
        .boxed()
}
