//! Secret names and values after creation: whether a name is free (`check_name`, for the form
//! that creates one) and replacing a repository secret's value (never reading it).

use serde::Deserialize;
use serde_json::{Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::access::{require_maintainer, respond, visible_repository};
use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::http::{ApiError, body, tag};
use crate::secrets::{self, Cipher, Scope, SecretError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameInput {
    name: Option<String>,
    /// On the organisation route: check as this repository would see the name.
    repo_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueInput {
    data: Option<String>,
}

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let org_check = warp::path!("v1" / "secrets" / "check_name")
        .and(warp::post())
        .and(any_actor(app.clone()))
        .and(body::json::<NameInput>(16 * 1024))
        .and(with_app(app.clone()))
        .then(|actor: Actor, input: NameInput, app: App| async move {
            let repository = input.repo_name.clone();
            respond(check_name(&app, &actor, repository.as_deref(), input).await)
        })
        .map(tag("POST /v1/secrets/check_name"));
    let repo_check = warp::path!("v1" / "repositories" / String / "secrets" / "check_name")
        .and(warp::post())
        .and(any_actor(app.clone()))
        .and(body::json::<NameInput>(16 * 1024))
        .and(with_app(app.clone()))
        .then(
            |repo: String, actor: Actor, input: NameInput, app: App| async move {
                respond(check_name(&app, &actor, Some(&repo), input).await)
            },
        )
        .map(tag("POST /v1/repositories/{name}/secrets/check_name"));
    let update = warp::path!("v1" / "repositories" / String / "secrets" / String)
        .and(warp::patch())
        .and(any_actor(app.clone()))
        .and(body::json::<ValueInput>(
            secrets::MAX_VALUE_BYTES as u64 * 2,
        ))
        .and(with_app(app))
        .then(
            |repo: String, name: String, actor: Actor, input: ValueInput, app: App| async move {
                respond(update(&app, &actor, &repo, &name, input).await)
            },
        )
        .map(tag("PATCH /v1/repositories/{name}/secrets/{secret}"));
    org_check.or(repo_check).unify().or(update).unify().boxed()
}

/// `{"status": "ok" | "conflict" | "override"}`. Parameters are checked before the repository,
/// as the original did.
async fn check_name(
    app: &App,
    actor: &Actor,
    repository: Option<&str>,
    input: NameInput,
) -> Result<Value, ApiError> {
    let name = input
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("secrets.missing_name", "The parameter \"name\" is required")
        })?;
    if !secrets::valid_name(name) {
        return Err(secret_error(SecretError::InvalidName(name.to_string())));
    }
    let scope = match repository {
        Some(repository) => Scope::Repository(visible_repository(app, actor, repository).await?.id),
        None => Scope::Organization,
    };
    let status = secrets::name_status(&app.db, scope, name)
        .await
        .map_err(secret_error)?;
    Ok(json!({ "status": status }))
}

async fn update(
    app: &App,
    actor: &Actor,
    repository: &str,
    name: &str,
    input: ValueInput,
) -> Result<secrets::SecretInfo, ApiError> {
    let repository = visible_repository(app, actor, repository).await?;
    require_maintainer(app, actor, &repository).await?;
    let data = input.data.filter(|d| !d.is_empty()).ok_or_else(|| {
        ApiError::bad_request("secrets.missing_data", "The parameter \"data\" is required")
    })?;
    let cipher = Cipher::from_config(&app.config.security)
        .map_err(|e| ApiError::unavailable(format!("secrets are not available: {e}")))?;
    let info = secrets::update_value(
        &app.db,
        &cipher,
        Scope::Repository(repository.id),
        name,
        data.as_bytes(),
    )
    .await
    .map_err(secret_error)?
    .ok_or_else(ApiError::not_found)?;
    let scope = Scope::Repository(repository.id);
    secrets::audit(&app.db, &actor.audit(), "secret.write", scope, &info.name).await;
    Ok(info)
}

pub(super) fn secret_error(e: SecretError) -> ApiError {
    match e {
        SecretError::InvalidName(_) => ApiError::bad_request("secrets.invalid_name", e.to_string()),
        SecretError::EmptyValue => ApiError::bad_request("secrets.missing_data", e.to_string()),
        SecretError::TooLarge => ApiError::bad_request("secrets.too_large", e.to_string()),
        other => ApiError::internal("storing a secret", other),
    }
}
