//! Secrets, write-only: names and dates can be listed, values only written or deleted.
//! Organisation secrets are managed by administrators; a repository's by its maintainers.

use serde::Deserialize;
use serde_json::{Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::access::{require_maintainer, visible_repository};
use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::http::{ApiError, body, tag};
use crate::secrets::{self, Cipher, Scope};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretInput {
    name: String,
    data: String,
}

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let org_list = warp::path!("v1" / "secrets")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|actor: Actor, app: App| async move {
            reply(list(&app, &actor, None).await, StatusCode::OK)
        })
        .map(tag("GET /v1/secrets"));
    let org_put = warp::path!("v1" / "secrets")
        .and(warp::post())
        .and(any_actor(app.clone()))
        .and(body::json::<SecretInput>(
            secrets::MAX_VALUE_BYTES as u64 * 2,
        ))
        .and(with_app(app.clone()))
        .then(|actor: Actor, input: SecretInput, app: App| async move {
            reply(put(&app, &actor, None, input).await, StatusCode::CREATED)
        })
        .map(tag("POST /v1/secrets"));
    let org_delete = warp::path!("v1" / "secrets" / String)
        .and(warp::delete())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|name: String, actor: Actor, app: App| async move {
            reply(
                delete(&app, &actor, None, &name).await,
                StatusCode::NO_CONTENT,
            )
        })
        .map(tag("DELETE /v1/secrets/{secret}"));
    let repo_list = warp::path!("v1" / "repositories" / String / "secrets")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|repo: String, actor: Actor, app: App| async move {
            reply(list(&app, &actor, Some(&repo)).await, StatusCode::OK)
        })
        .map(tag("GET /v1/repositories/{name}/secrets"));
    let repo_put = warp::path!("v1" / "repositories" / String / "secrets")
        .and(warp::post())
        .and(any_actor(app.clone()))
        .and(body::json::<SecretInput>(
            secrets::MAX_VALUE_BYTES as u64 * 2,
        ))
        .and(with_app(app.clone()))
        .then(
            |repo: String, actor: Actor, input: SecretInput, app: App| async move {
                reply(
                    put(&app, &actor, Some(&repo), input).await,
                    StatusCode::CREATED,
                )
            },
        )
        .map(tag("POST /v1/repositories/{name}/secrets"));
    let repo_delete = warp::path!("v1" / "repositories" / String / "secrets" / String)
        .and(warp::delete())
        .and(any_actor(app.clone()))
        .and(with_app(app))
        .then(
            |repo: String, name: String, actor: Actor, app: App| async move {
                reply(
                    delete(&app, &actor, Some(&repo), &name).await,
                    StatusCode::NO_CONTENT,
                )
            },
        )
        .map(tag("DELETE /v1/repositories/{name}/secrets/{secret}"));
    org_list
        .or(org_put)
        .unify()
        .or(org_delete)
        .unify()
        .or(repo_list)
        .unify()
        .or(repo_put)
        .unify()
        .or(repo_delete)
        .unify()
        .boxed()
}

fn reply(result: Result<Value, ApiError>, status: StatusCode) -> Response {
    match result {
        Ok(_) if status == StatusCode::NO_CONTENT => status.into_response(),
        Ok(body) => warp::reply::with_status(warp::reply::json(&body), status).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The scope named by the path, checking that the actor may read (`write` false) or change it.
async fn scope(
    app: &App,
    actor: &Actor,
    repository: Option<&str>,
    write: bool,
) -> Result<Scope, ApiError> {
    let Some(name) = repository else {
        if write && !actor.is_admin() {
            return Err(ApiError::forbidden());
        }
        return Ok(Scope::Organization);
    };
    let repository = visible_repository(app, actor, name).await?;
    if write {
        require_maintainer(app, actor, &repository).await?;
    }
    Ok(Scope::Repository(repository.id))
}

async fn list(app: &App, actor: &Actor, repository: Option<&str>) -> Result<Value, ApiError> {
    let scope = scope(app, actor, repository, false).await?;
    let secrets = secrets::list(&app.db, scope)
        .await
        .map_err(|e| ApiError::internal("listing secrets", e))?;
    Ok(json!({ "secrets": secrets }))
}

async fn put(
    app: &App,
    actor: &Actor,
    repository: Option<&str>,
    input: SecretInput,
) -> Result<Value, ApiError> {
    let scope = scope(app, actor, repository, true).await?;
    let cipher = Cipher::from_config(&app.config.security)
        .map_err(|e| ApiError::unavailable(format!("secrets are not available: {e}")))?;
    let name = input.name.trim();
    let info = secrets::put(
        &app.db,
        &cipher,
        scope,
        name,
        input.data.as_bytes(),
        actor.user_id(),
    )
    .await
    .map_err(super::secret_names::secret_error)?;
    secrets::audit(&app.db, &actor.audit(), "secret.write", scope, &info.name).await;
    Ok(json!(info))
}

async fn delete(
    app: &App,
    actor: &Actor,
    repository: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    let scope = scope(app, actor, repository, true).await?;
    let deleted = secrets::delete(&app.db, scope, name)
        .await
        .map_err(|e| ApiError::internal("deleting a secret", e))?;
    if !deleted {
        return Err(ApiError::not_found());
    }
    secrets::audit(&app.db, &actor.audit(), "secret.delete", scope, name).await;
    Ok(Value::Null)
}
