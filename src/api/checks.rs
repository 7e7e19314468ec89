//! A commit's check set and checks: show, one check with its error output, cancel and re-run.

use serde::Serialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::access::{require_maintainer, respond, visible_repository};
use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::checks::{self, Check, ChecksError};
use crate::commits::{self, CommitView};
use crate::http::{ApiError, tag};
use crate::repositories::Repository;

type Path = (String, String);

fn base() -> impl Filter<Extract = (String, String), Error = warp::Rejection> + Clone {
    warp::path!("v1" / "repositories" / String / "commits" / String / "checks" / ..)
}

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let show = base()
        .and(warp::path::end())
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|name, sha, actor: Actor, app: App| async move {
            respond(show(&app, &actor, (name, sha)).await)
        })
        .map(tag("GET /v1/repositories/{name}/commits/{sha}/checks"));
    let one = base()
        .and(warp::path!(i64))
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|name, sha, id: i64, actor: Actor, app: App| async move {
            respond(one(&app, &actor, (name, sha), id).await)
        })
        .map(tag("GET /v1/repositories/{name}/commits/{sha}/checks/{id}"));
    let rerun = base()
        .and(warp::path!("re_run"))
        .and(warp::post())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|name, sha, actor: Actor, app: App| async move {
            no_content(rerun(&app, &actor, (name, sha)).await)
        })
        .map(tag(
            "POST /v1/repositories/{name}/commits/{sha}/checks/re_run",
        ));
    let cancel = base()
        .and(warp::path::end())
        .and(warp::delete())
        .and(any_actor(app.clone()))
        .and(with_app(app))
        .then(|name, sha, actor: Actor, app: App| async move {
            no_content(cancel(&app, &actor, (name, sha)).await)
        })
        .map(tag("DELETE /v1/repositories/{name}/commits/{sha}/checks"));
    show.or(one)
        .unify()
        .or(rerun)
        .unify()
        .or(cancel)
        .unify()
        .boxed()
}

fn no_content(result: Result<(), ApiError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The repository and commit named in the path, as the actor may see them.
pub async fn commit_of(
    app: &App,
    actor: &Actor,
    (name, sha): &Path,
) -> Result<(Repository, CommitView), ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    let commit = commits::find_by_sha(&app.db, repository.id, sha)
        .await
        .map_err(|e| ApiError::internal("loading a commit", e))?
        .ok_or_else(ApiError::not_found)?;
    Ok((repository, commit))
}

#[derive(Serialize)]
struct RepositoryRef {
    id: i64,
    name: String,
}

#[derive(Serialize)]
struct ChecksView {
    repository: RepositoryRef,
    commit: CommitView,
    status: String,
    canceling: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_details: Option<String>,
    checks: Vec<Check>,
    /// Issues per plugin, ignored ones included.
    issues: std::collections::BTreeMap<String, i64>,
}

async fn show(app: &App, actor: &Actor, path: Path) -> Result<ChecksView, ApiError> {
    let (repository, commit) = commit_of(app, actor, &path).await?;
    let internal = |e: sqlx::Error| ApiError::internal("loading checks", e);
    let set = checks::find_set_for_commit(&app.db, commit.id)
        .await
        .map_err(internal)?;
    let mut checks = match &set {
        Some(set) => checks::list_checks(&app.db, set.id)
            .await
            .map_err(internal)?,
        None => Vec::new(),
    };
    // The list shows states; one check's route shows its output.
    for check in &mut checks {
        check.error_output = None;
    }
    let issues = crate::issues::counts_by_source_all(&app.db, commit.id)
        .await
        .map_err(internal)?;
    Ok(ChecksView {
        repository: RepositoryRef {
            id: repository.id,
            name: repository.name,
        },
        commit,
        status: set
            .as_ref()
            .map_or_else(|| "waiting".to_string(), |s| s.status.clone()),
        canceling: set.as_ref().is_some_and(|s| s.canceling),
        failure_reason: set.as_ref().and_then(|s| s.error_kind.clone()),
        failure_details: set.as_ref().and_then(|s| s.error_extra.clone()),
        checks,
        issues,
    })
}

async fn one(app: &App, actor: &Actor, path: Path, id: i64) -> Result<Check, ApiError> {
    let (_, commit) = commit_of(app, actor, &path).await?;
    let internal = |e: sqlx::Error| ApiError::internal("loading checks", e);
    let Some(set) = checks::find_set_for_commit(&app.db, commit.id)
        .await
        .map_err(internal)?
    else {
        return Err(ApiError::not_found());
    };
    checks::list_checks(&app.db, set.id)
        .await
        .map_err(internal)?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(ApiError::not_found)
}

async fn rerun(app: &App, actor: &Actor, path: Path) -> Result<(), ApiError> {
    let (_, commit) = commit_of(app, actor, &path).await?;
    checks::rerun(app, commit.id).await.map_err(checks_error)
}

/// Cancelling stops work others started: maintainers and admins only (re-running stays open to
/// every member).
async fn cancel(app: &App, actor: &Actor, path: Path) -> Result<(), ApiError> {
    let (repository, commit) = commit_of(app, actor, &path).await?;
    require_maintainer(app, actor, &repository).await?;
    checks::cancel(app, commit.id).await.map_err(checks_error)
}

fn checks_error(e: ChecksError) -> ApiError {
    match e {
        ChecksError::NoCheckSet => ApiError::new(
            StatusCode::NOT_FOUND,
            "checks.not_found",
            "this commit has no check set",
        ),
        ChecksError::StillRunning => ApiError::new(
            StatusCode::CONFLICT,
            "checks.cannot_re_run_while_running",
            e.to_string(),
        ),
        ChecksError::NotIngested => ApiError::new(
            StatusCode::CONFLICT,
            "checks.commit_not_ingested",
            e.to_string(),
        ),
        ChecksError::Internal(why) => ApiError::internal("checks", why),
    }
}
