//! What a repository's settings page reads: the repository, its secret count and what the
//! actor may do there; and its badges' embed snippets.

use serde::Serialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::access::{respond, visible_repository};
use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::http::{ApiError, tag};
use crate::memberships::{Level, SettingsPermissions};
use crate::repositories::{self, Repository, RepositorySummary};
use crate::secrets::{self, Scope};

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let settings = warp::path!("v1" / "repositories" / String / "settings")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|name: String, actor: Actor, app: App| async move {
            respond(settings(&app, &actor, &name).await)
        })
        .map(tag("GET /v1/repositories/{name}/settings"));
    let badges = warp::path!("v1" / "repositories" / String / "badges")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app))
        .then(|name: String, actor: Actor, app: App| async move {
            match badges(&app, &actor, &name).await {
                Ok(Some(embeds)) => warp::reply::json(&embeds).into_response(),
                Ok(None) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => e.into_response(),
            }
        })
        .map(tag("GET /v1/repositories/{name}/badges"));
    settings.or(badges).unify().boxed()
}

#[derive(Serialize)]
struct Settings {
    repository: RepositorySummary,
    secrets_count: usize,
    permissions: SettingsPermissions,
}

/// The actor's level on `repository` (`None` for service tokens and non-members).
pub async fn level(
    app: &App,
    actor: &Actor,
    repository: &Repository,
) -> Result<Option<Level>, ApiError> {
    let Some(user_id) = actor.user_id() else {
        return Ok(None);
    };
    crate::memberships::level_of(&app.db, repository.id, user_id)
        .await
        .map_err(|e| ApiError::internal("checking membership", e))
}

async fn settings(app: &App, actor: &Actor, name: &str) -> Result<Settings, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    let internal = |e| ApiError::internal("loading settings", e);
    let level = level(app, actor, &repository).await?;
    let secrets_count = secrets::list(&app.db, Scope::Repository(repository.id))
        .await
        .map_err(internal)?
        .len();
    Ok(Settings {
        repository: repositories::summary(&app.db, &repository)
            .await
            .map_err(internal)?,
        secrets_count,
        permissions: SettingsPermissions::of(actor, level),
    })
}

/// The embeds, or `None` (204) when no badge base URL is configured. Unlike the original,
/// only those who may see the repository get them.
async fn badges(
    app: &App,
    actor: &Actor,
    name: &str,
) -> Result<Option<crate::badges::Embeds>, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    Ok(crate::badges::embeds(
        &app.config.badger.base_url,
        &app.config.server.ui_base_url,
        &repository.name,
    ))
}
