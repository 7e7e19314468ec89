//! A commit's issues (filtered, paged, counted), ignoring and un-ignoring them, and the
//! repository's ignore rules.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::access::{page, require_maintainer, respond, visible_repository};
use super::checks::commit_of;
use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::commits::CommitView;
use crate::http::{ApiError, body, tag};
use crate::issues::{
    self, IgnoreError, IgnoreMode, IgnoreRule, Issue, IssueFilter, IssueKind, IssueState,
};
use crate::paging::Paging;

type Query = HashMap<String, String>;

fn base() -> impl Filter<Extract = (String, String), Error = warp::Rejection> + Clone {
    warp::path!("v1" / "repositories" / String / "commits" / String / "issues" / ..)
}

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let list = base()
        .and(warp::path::end())
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(warp::query::<Query>())
        .and(with_app(app.clone()))
        .then(|name, sha, actor: Actor, q: Query, app: App| async move {
            respond(list(&app, &actor, (name, sha), &q).await)
        })
        .map(tag("GET /v1/repositories/{name}/commits/{sha}/issues"));
    let counts = base()
        .and(warp::path!(String))
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(
            |name, sha, what: String, actor: Actor, app: App| async move {
                respond(counts(&app, &actor, (name, sha), &what).await)
            },
        )
        .map(tag(
            "GET /v1/repositories/{name}/commits/{sha}/issues/{facet}",
        ));
    let ignore = base()
        .and(warp::path!(i64 / "ignore"))
        .and(warp::post())
        .and(any_actor(app.clone()))
        .and(body::json::<IgnoreInput>(16 * 1024))
        .and(with_app(app.clone()))
        .then(
            |name, sha, id: i64, actor: Actor, input: IgnoreInput, app: App| async move {
                respond(ignore(&app, &actor, (name, sha), id, input).await)
            },
        )
        .map(tag(
            "POST /v1/repositories/{name}/commits/{sha}/issues/{id}/ignore",
        ));
    let unignore = base()
        .and(warp::path!(i64 / "ignore"))
        .and(warp::delete())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|name, sha, id: i64, actor: Actor, app: App| async move {
            respond(unignore(&app, &actor, (name, sha), id).await)
        })
        .map(tag(
            "DELETE /v1/repositories/{name}/commits/{sha}/issues/{id}/ignore",
        ));
    let rules = warp::path!("v1" / "repositories" / String / "ignore_rules")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(with_app(app.clone()))
        .then(|name: String, actor: Actor, app: App| async move {
            respond(rules(&app, &actor, &name).await)
        })
        .map(tag("GET /v1/repositories/{name}/ignore_rules"));
    let delete_rule = warp::path!("v1" / "repositories" / String / "ignore_rules" / i64)
        .and(warp::delete())
        .and(any_actor(app.clone()))
        .and(with_app(app))
        .then(|name: String, id: i64, actor: Actor, app: App| async move {
            match delete_rule(&app, &actor, &name, id).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => e.into_response(),
            }
        })
        .map(tag("DELETE /v1/repositories/{name}/ignore_rules/{id}"));
    list.or(counts)
        .unify()
        .or(ignore)
        .unify()
        .or(unignore)
        .unify()
        .or(rules)
        .unify()
        .or(delete_rule)
        .unify()
        .boxed()
}

#[derive(Serialize)]
struct IssueView {
    #[serde(flatten)]
    issue: Issue,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<Value>,
    /// The lines around the issue; only in lists (`affected_file=false` leaves it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    affected_file: Option<issues::AffectedFile>,
}

impl From<Issue> for IssueView {
    fn from(issue: Issue) -> IssueView {
        let ignored = issue.ignored_at.map(|at| {
            json!({
                "ignore_source": issue.ignore_source,
                "ignored_at": at.format(&time::format_description::well_known::Rfc3339).ok(),
                "ignored_by": issue.ignored_by.as_ref().map(|login| json!({
                    "name": login,
                    "avatar": issue.ignored_by_avatar,
                })),
                "reason": issue.ignore_reason,
            })
        });
        IssueView {
            issue,
            ignored,
            affected_file: None,
        }
    }
}

#[derive(Serialize)]
struct IssueList {
    repository: Value,
    commit: CommitView,
    issues: Vec<IssueView>,
    paging: Paging,
}

fn filter(q: &Query) -> Result<IssueFilter, ApiError> {
    let kind = match q.get("category").or_else(|| q.get("kind")) {
        None => None,
        Some(k) => Some(IssueKind::parse(k).ok_or_else(|| {
            ApiError::bad_request(
                "issues.invalid_kind",
                format!(
                    "unknown kind `{k}`; expected one of {}",
                    IssueKind::ALL.map(|k| k.as_str()).join(", ")
                ),
            )
        })?),
    };
    let state = match q.get("state") {
        None => IssueState::Active,
        Some(s) => IssueState::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "issues.invalid_state",
                format!("unknown state `{s}`; expected active, ignored or all"),
            )
        })?,
    };
    Ok(IssueFilter {
        source: q.get("source").or_else(|| q.get("plugin")).cloned(),
        kind,
        file: q.get("file").cloned(),
        state,
    })
}

async fn list(
    app: &App,
    actor: &Actor,
    path: (String, String),
    q: &Query,
) -> Result<IssueList, ApiError> {
    let page = page(q)?;
    let filter = filter(q)?;
    let (repository, commit) = commit_of(app, actor, &path).await?;
    let (found, total) = issues::list(&app.db, commit.id, &filter, page.offset(), page.limit())
        .await
        .map_err(|e| ApiError::internal("listing issues", e))?;
    // Snippets cost an archive read: a client that does not show them can skip it.
    let snippets = if q.get("affected_file").map(String::as_str) == Some("false") {
        vec![None; found.len()]
    } else {
        issues::affected_files(
            app.storage.as_ref(),
            repository.id,
            &commit.sha,
            commit.ingest_status == "completed",
            &found,
        )
        .await
        .into_iter()
        .map(Some)
        .collect()
    };
    let issues = found
        .into_iter()
        .zip(snippets)
        .map(|(issue, affected_file)| IssueView {
            affected_file,
            ..IssueView::from(issue)
        })
        .collect();
    Ok(IssueList {
        repository: json!({"id": repository.id, "name": repository.name}),
        commit,
        issues,
        paging: Paging::new(page, total),
    })
}

async fn counts(
    app: &App,
    actor: &Actor,
    path: (String, String),
    what: &str,
) -> Result<Value, ApiError> {
    if !matches!(what, "sources" | "categories" | "states") {
        return Err(ApiError::not_found());
    }
    let (_, commit) = commit_of(app, actor, &path).await?;
    let internal = |e: sqlx::Error| ApiError::internal("counting issues", e);
    Ok(match what {
        "sources" => json!(
            issues::counts_by_source(&app.db, commit.id)
                .await
                .map_err(internal)?
        ),
        "categories" => {
            let counts = issues::counts_by_kind(&app.db, commit.id)
                .await
                .map_err(internal)?;
            Value::Object(
                counts
                    .into_iter()
                    .map(|(k, n)| (k.as_str().to_string(), json!(n)))
                    .collect(),
            )
        }
        _ => {
            let (active, ignored) = issues::counts_by_state(&app.db, commit.id)
                .await
                .map_err(internal)?;
            json!({"active": active, "ignored": ignored})
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IgnoreInput {
    /// `ephemeral` (this issue) or `permanent` (every issue with its uid, now and later).
    mode: String,
    reason: Option<String>,
}

async fn ignore(
    app: &App,
    actor: &Actor,
    path: (String, String),
    id: i64,
    input: IgnoreInput,
) -> Result<IssueView, ApiError> {
    let mode = IgnoreMode::parse(&input.mode).ok_or_else(|| {
        ApiError::bad_request(
            "issues.invalid_ignore_mode",
            format!(
                "unknown mode `{}`; expected ephemeral or permanent",
                input.mode
            ),
        )
    })?;
    let Some(user_id) = actor.user_id() else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "issues.user_required",
            "issues are ignored by a person: use a user's token",
        ));
    };
    let (repository, commit) = commit_of(app, actor, &path).await?;
    // A permanent rule hides the issue in every later commit too: maintainers decide that.
    if mode == IgnoreMode::ForGood {
        require_maintainer(app, actor, &repository).await?;
    }
    let reason = input
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let issue = issues::ignore(&app.db, repository.id, commit.id, id, mode, user_id, reason)
        .await
        .map_err(ignore_error)?;
    crate::checks::refresh_status(app, commit.id)
        .await
        .map_err(|e| ApiError::internal("updating the status", e))?;
    Ok(issue.into())
}

async fn unignore(
    app: &App,
    actor: &Actor,
    path: (String, String),
    id: i64,
) -> Result<IssueView, ApiError> {
    let (_, commit) = commit_of(app, actor, &path).await?;
    let issue = issues::unignore(&app.db, commit.id, id)
        .await
        .map_err(ignore_error)?;
    crate::checks::refresh_status(app, commit.id)
        .await
        .map_err(|e| ApiError::internal("updating the status", e))?;
    Ok(issue.into())
}

fn ignore_error(e: IgnoreError) -> ApiError {
    match e {
        IgnoreError::NotFound => ApiError::not_found(),
        IgnoreError::Db(e) => ApiError::internal("ignoring an issue", e),
    }
}

async fn rules(app: &App, actor: &Actor, name: &str) -> Result<Value, ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    let rules: Vec<IgnoreRule> = issues::list_rules(&app.db, repository.id)
        .await
        .map_err(|e| ApiError::internal("listing ignore rules", e))?;
    Ok(json!({"rules": rules}))
}

async fn delete_rule(app: &App, actor: &Actor, name: &str, id: i64) -> Result<(), ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    require_maintainer(app, actor, &repository).await?;
    let deleted = issues::delete_rule(&app.db, repository.id, id)
        .await
        .map_err(|e| ApiError::internal("deleting an ignore rule", e))?;
    if deleted {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}
