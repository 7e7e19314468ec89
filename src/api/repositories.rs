//! Repositories: registration by git URL (standalone), upload-token regeneration, deletion,
//! and the standalone push trigger. Reading them is in `repository_reads`.

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::{admin_actor, any_actor, with_app};
use crate::app::App;
use crate::auth::{self, Actor};
use crate::commits::{self, CommitError};
use crate::http::{ApiError, body, tag};
use crate::memberships::Level;
use crate::org_repos::{self, AddFromGithubError};
use crate::repositories::{self, NewRepository, Repository, RepositoryError, Source};

const BODY_LIMIT: u64 = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRepository {
    name: String,
    git_url: Option<String>,
    default_branch: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Trigger {
    sha: String,
    branch: Option<String>,
}

pub fn routes(app: App) -> warp::filters::BoxedFilter<(Response,)> {
    let create = warp::path!("v1" / "repositories")
        .and(warp::post())
        .and(admin_or_service(app.clone()))
        .and(body::json::<CreateRepository>(BODY_LIMIT))
        .and(with_app(app.clone()))
        .then(create)
        .map(tag("POST /v1/repositories"));
    // Repository admins manage their repository's upload token (site admins any).
    let regen = warp::path!("v1" / "repositories" / String / "settings" / "regen-token")
        .and(warp::post())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|name: String, actor: Actor, app: App| async move {
            let repo = match super::access::visible_repository(&app, &actor, &name).await {
                Ok(r) => r,
                Err(e) => return e.into_response(),
            };
            if let Err(e) = super::access::require_level(&app, &actor, &repo, Level::Admin).await {
                return e.into_response();
            }
            match repositories::regenerate_token(&app.db, &repo, &actor.audit()).await {
                Ok(token) => warp::reply::json(&json!({"new_token": token})).into_response(),
                Err(e) => ApiError::internal("regenerating an upload token", e).into_response(),
            }
        })
        .map(tag("POST /v1/repositories/{name}/settings/regen-token"));
    // The original's `POST …/settings/delete` and the REST form; each tagged on its own so
    // metrics and the OpenAPI check see both.
    let delete = warp::path!("v1" / "repositories" / String)
        .and(warp::delete())
        .and(admin_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(delete_repository)
        .map(tag("DELETE /v1/repositories/{name}"));
    let settings_delete = warp::path!("v1" / "repositories" / String / "settings" / "delete")
        .and(warp::post())
        .and(admin_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(delete_repository)
        .map(tag("POST /v1/repositories/{name}/settings/delete"));
    // Authorized before the body is read.
    let trigger = warp::path!("v1" / "repositories" / String / "commits")
        .and(warp::post())
        .and(warp::header::optional::<String>("authorization"))
        .and(body::deferred(BODY_LIMIT))
        .and(with_app(app))
        .then(trigger)
        .map(tag("POST /v1/repositories/{name}/commits"));
    create
        .or(regen)
        .unify()
        .or(delete)
        .unify()
        .or(settings_delete)
        .unify()
        .or(trigger)
        .unify()
        .boxed()
}

/// Queues the deletion of the repository with all its data (a job); 202.
async fn delete_repository(name: String, actor: Actor, app: App) -> Response {
    let repo = match repository(&app, &name).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match repositories::enqueue_delete(&app, repo.id, &actor.audit()).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => ApiError::internal("queueing a repository deletion", e).into_response(),
    }
}

/// Registering repositories is for administrators and automation (service tokens).
fn admin_or_service(app: App) -> impl Filter<Extract = (Actor,), Error = Rejection> + Clone {
    any_actor(app).and_then(|actor: Actor| async move {
        if actor.is_admin() || actor.is_service() {
            Ok(actor)
        } else {
            Err(warp::reject::custom(ApiError::forbidden()))
        }
    })
}

async fn repository(app: &App, name: &str) -> Result<Repository, ApiError> {
    repositories::find_by_name(&app.db, name)
        .await
        .map_err(|e| ApiError::internal("loading a repository", e))?
        .ok_or_else(ApiError::not_found)
}

fn repository_error(e: RepositoryError) -> ApiError {
    match e {
        RepositoryError::AlreadyExists(_) => ApiError::new(
            StatusCode::CONFLICT,
            "repositories.already_exists",
            e.to_string(),
        ),
        RepositoryError::InvalidName(_) => {
            ApiError::bad_request("repositories.invalid_name", e.to_string())
        }
        RepositoryError::InvalidBranch(_) => {
            ApiError::bad_request("repositories.invalid_branch", e.to_string())
        }
        RepositoryError::GitUrl(rule) => {
            ApiError::bad_request(format!("repositories.{}", rule.code()), rule.to_string())
        }
        RepositoryError::Db(e) => ApiError::internal("creating a repository", e),
    }
}

async fn create(actor: Actor, input: CreateRepository, app: App) -> Response {
    match create_repository(&actor, input, &app).await {
        Ok((repo, token)) => {
            let mut body = serde_json::to_value(&repo).unwrap_or_default();
            body["token"] = token.into();
            warp::reply::with_status(warp::reply::json(&body), StatusCode::CREATED).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// By git URL (standalone), or from the GitHub App's organisation by name.
async fn create_repository(
    actor: &Actor,
    input: CreateRepository,
    app: &App,
) -> Result<(Repository, String), ApiError> {
    let name = input.name.trim().to_string();
    let Some(git_url) = input.git_url else {
        return org_repos::add_from_github(app, &name, &actor.audit())
            .await
            .map_err(add_from_github_error);
    };
    let new = NewRepository {
        name,
        description: input.description,
        default_branch: input.default_branch.unwrap_or_else(|| "main".into()),
        source: Source::GitUrl(git_url),
    };
    let allowed = &app.config.git.allowed_protocols;
    repositories::create(&app.db, &new, allowed, &actor.audit())
        .await
        .map_err(repository_error)
}

fn add_from_github_error(e: AddFromGithubError) -> ApiError {
    match e {
        AddFromGithubError::NotGithub => ApiError::bad_request(
            "repositories.missing_git_url",
            "The parameter \"git_url\" is required to register a repository by git URL",
        ),
        AddFromGithubError::NotOnGithub => ApiError::new(
            StatusCode::NOT_FOUND,
            "repositories.not_on_github",
            e.to_string(),
        ),
        AddFromGithubError::Github(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "github.unavailable", e.to_string())
        }
        AddFromGithubError::Repository(e) => repository_error(e),
    }
}

/// `POST /v1/repositories/{name}/commits`: a service token (`bearer cos_…`) or the repository's
/// own upload token (`token crt_…`, as coverage uploads use) announces a pushed commit.
async fn trigger(
    name: String,
    authorization: Option<String>,
    body: body::Deferred,
    app: App,
) -> Response {
    let repo = match authorize_trigger(&app, &name, authorization.as_deref()).await {
        Ok(repo) => repo,
        Err(e) => return e.into_response(),
    };
    let input: Trigger = match body.json().await {
        Ok(input) => input,
        Err(e) => return e.into_response(),
    };
    match commits::register_push(&app, &repo, input.sha.trim(), input.branch.as_deref()).await {
        Ok(registered) => {
            warp::reply::with_status(warp::reply::json(&registered), StatusCode::ACCEPTED)
                .into_response()
        }
        Err(e @ CommitError::InvalidSha(_)) => {
            ApiError::bad_request("commits.invalid_sha", e.to_string()).into_response()
        }
        Err(e @ CommitError::InvalidBranch(_)) => {
            ApiError::bad_request("commits.invalid_branch", e.to_string()).into_response()
        }
        Err(e) => ApiError::internal("registering a push", e).into_response(),
    }
}

async fn authorize_trigger(
    app: &App,
    name: &str,
    header: Option<&str>,
) -> Result<Repository, ApiError> {
    let header = header.ok_or_else(|| ApiError::from(auth::AuthError::NoAuthorization))?;
    if let Some(token) = upload_token(header) {
        let repo = repositories::find_by_upload_token(&app.db, token)
            .await
            .map_err(|e| ApiError::internal("checking an upload token", e))?
            .ok_or_else(ApiError::forbidden)?;
        // A repository token only speaks for its own repository.
        return if repo.name.eq_ignore_ascii_case(name) {
            Ok(repo)
        } else {
            Err(ApiError::not_found())
        };
    }
    let actor = auth::authenticate(&app.db, Some(header)).await?;
    if !actor.is_service() && !actor.is_admin() {
        return Err(ApiError::forbidden());
    }
    repository(app, name).await
}

/// The token of a `token crt_…` header (scheme case-insensitive, last word), as the original's
/// upload endpoint accepted it.
pub fn upload_token(header: &str) -> Option<&str> {
    let mut words = header.split_whitespace();
    let scheme = words.next()?;
    if !scheme.eq_ignore_ascii_case("token") {
        return None;
    }
    words.last()
}
