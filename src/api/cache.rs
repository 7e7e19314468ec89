//! The cache, seen by people: a repository's artifacts with their sizes and total (its members),
//! purged or evicted one by one (its administrators); the shared tools (site administrators).
//! The original's routes: `…/settings/cache` and `/v1/admin/tool_cache`.

use serde_json::{Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::access::{require_level, visible_repository};
use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::cache::{CacheError, CacheStore, Zone};
use crate::http::{ApiError, tag};
use crate::memberships::Level;

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let repo_list = warp::path!("v1" / "repositories" / String / "settings" / "cache")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|repo: String, actor: Actor, app: App| async move {
            reply(list_repository(&app, &actor, &repo).await)
        })
        .map(tag("GET /v1/repositories/{name}/settings/cache"));
    let repo_purge = warp::path!("v1" / "repositories" / String / "settings" / "cache" / "purge")
        .and(warp::post())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|repo: String, actor: Actor, app: App| async move {
            reply(remove_artifacts(&app, &actor, &repo, None).await)
        })
        .map(tag("POST /v1/repositories/{name}/settings/cache/purge"));
    let repo_evict = warp::path!("v1" / "repositories" / String / "settings" / "cache" / i64)
        .and(warp::delete())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|repo: String, id: i64, actor: Actor, app: App| async move {
            reply(remove_artifacts(&app, &actor, &repo, Some(id)).await)
        })
        .map(tag("DELETE /v1/repositories/{name}/settings/cache/{id}"));
    let tools_list = warp::path!("v1" / "admin" / "tool_cache")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|actor: Actor, app: App| async move { reply(list_tools(&app, &actor).await) })
        .map(tag("GET /v1/admin/tool_cache"));
    let tools_purge = warp::path!("v1" / "admin" / "tool_cache" / "purge")
        .and(warp::post())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|actor: Actor, app: App| async move { reply(remove_tools(&app, &actor, None).await) })
        .map(tag("POST /v1/admin/tool_cache/purge"));
    let tools_evict = warp::path!("v1" / "admin" / "tool_cache" / i64)
        .and(warp::delete())
        .and(any_actor(app.clone()))
        .and(with_app(app))
        .then(|id: i64, actor: Actor, app: App| async move {
            reply(remove_tools(&app, &actor, Some(id)).await)
        })
        .map(tag("DELETE /v1/admin/tool_cache/{id}"));
    repo_list
        .or(repo_purge)
        .unify()
        .or(repo_evict)
        .unify()
        .or(tools_list)
        .unify()
        .or(tools_purge)
        .unify()
        .or(tools_evict)
        .unify()
        .boxed()
}

/// `Null` is the 204 of a removal.
fn reply(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(Value::Null) => StatusCode::NO_CONTENT.into_response(),
        Ok(body) => warp::reply::json(&body).into_response(),
        Err(e) => e.into_response(),
    }
}

fn cache_error(e: CacheError) -> ApiError {
    match e {
        CacheError::NotFound => ApiError::not_found(),
        other => ApiError::internal("the cache", other),
    }
}

fn disabled() -> ApiError {
    ApiError::bad_request(
        "cache_settings.cache_disabled",
        "Cache is disabled on this instance",
    )
}

async fn list_repository(app: &App, actor: &Actor, name: &str) -> Result<Value, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    if !app.config.cache.enabled {
        return Ok(json!({ "repository": repository.name, "enabled": false }));
    }
    let store = CacheStore::from_app(app);
    let artifacts = store
        .list(Zone::Artifacts(repository.id))
        .await
        .map_err(cache_error)?;
    let used = store
        .repository_size(repository.id)
        .await
        .map_err(cache_error)?;
    Ok(json!({
        "repository": repository.name,
        "enabled": true,
        "storage_used": used,
        "storage_limit": store.quota(),
        "artifacts": artifacts,
    }))
}

/// One artifact (`id`) or all of them: the repository's administrators and site administrators.
async fn remove_artifacts(
    app: &App,
    actor: &Actor,
    name: &str,
    id: Option<i64>,
) -> Result<Value, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    require_level(app, actor, &repository, Level::Admin).await?;
    if !app.config.cache.enabled {
        return Err(disabled());
    }
    let action = if id.is_some() {
        "cache.evict"
    } else {
        "cache.purge"
    };
    CacheStore::from_app(app)
        .remove(Zone::Artifacts(repository.id), id, &actor.audit(), action)
        .await
        .map_err(cache_error)?;
    Ok(Value::Null)
}

async fn list_tools(app: &App, actor: &Actor) -> Result<Value, ApiError> {
    if !actor.is_admin() {
        return Err(ApiError::forbidden());
    }
    if !app.config.cache.enabled {
        return Ok(json!({ "enabled": false }));
    }
    let tools = CacheStore::from_app(app)
        .list(Zone::Tools)
        .await
        .map_err(cache_error)?;
    Ok(json!({ "enabled": true, "artifacts": tools }))
}

async fn remove_tools(app: &App, actor: &Actor, id: Option<i64>) -> Result<Value, ApiError> {
    if !actor.is_admin() {
        return Err(ApiError::forbidden());
    }
    if !app.config.cache.enabled {
        return Err(disabled());
    }
    let action = if id.is_some() {
        "cache.evict_tool"
    } else {
        "cache.purge_tools"
    };
    CacheStore::from_app(app)
        .remove(Zone::Tools, id, &actor.audit(), action)
        .await
        .map_err(cache_error)?;
    Ok(Value::Null)
}
