//! Reading a commit's coverage: `…/commits/{sha}/coverage/summary`, `…/commits/{sha}/coverage`
//! (files, least covered first, paged) and `…/commits/{sha}/coverage/file/{id}` (one file's
//! lines with its source from the archived commit). Any authenticated actor who can see the
//! repository; a repository they cannot see is answered as absent (404).

use std::collections::HashMap;

use serde_json::{Value, json};
use warp::Filter;
use warp::reply::Response;

use super::access::{page, respond, visible_repository};
use super::{any_actor, with_app};
use crate::app::App;
use crate::archive::ArchiveError;
use crate::auth::Actor;
use crate::coverage::read::{self, CoverageCommit};
use crate::coverage::tree::{self, Source, TreeError};
use crate::http::{ApiError, tag};
use crate::repositories::Repository;

/// Largest source file shown next to its coverage.
const MAX_SOURCE_BYTES: u64 = 4 * 1024 * 1024;

pub fn routes(app: App) -> warp::filters::BoxedFilter<(Response,)> {
    let summary =
        warp::path!("v1" / "repositories" / String / "commits" / String / "coverage" / "summary")
            .and(warp::get())
            .and(any_actor(app.clone()))
            .and(with_app(app.clone()))
            .then(
                |name: String, sha: String, actor: Actor, app: App| async move {
                    respond(summary(&app, &actor, &name, &sha).await)
                },
            )
            .map(tag(
                "GET /v1/repositories/{name}/commits/{sha}/coverage/summary",
            ));
    let list =
        warp::path!("v1" / "repositories" / String / "commits" / String / "coverage")
            .and(warp::get())
            .and(warp::query::<HashMap<String, String>>())
            .and(any_actor(app.clone()))
            .and(with_app(app.clone()))
            .then(
                |name: String,
                 sha: String,
                 query: HashMap<String, String>,
                 actor: Actor,
                 app: App| async move {
                    respond(files(&app, &actor, &name, &sha, &query).await)
                },
            )
            .map(tag("GET /v1/repositories/{name}/commits/{sha}/coverage"));
    let file = warp::path!(
        "v1" / "repositories" / String / "commits" / String / "coverage" / "file" / String
    )
    .and(warp::get())
    .and(any_actor(app.clone()))
    .and(with_app(app))
    .then(
        |name: String, sha: String, id: String, actor: Actor, app: App| async move {
            respond(file(&app, &actor, &name, &sha, &id).await)
        },
    )
    .map(tag(
        "GET /v1/repositories/{name}/commits/{sha}/coverage/file/{id}",
    ));
    summary.or(list).unify().or(file).unify().boxed()
}

fn db_error(e: sqlx::Error) -> ApiError {
    ApiError::internal("reading coverage", e)
}

/// The repository (if the actor may see it) and its commit.
async fn visible_commit(
    app: &App,
    actor: &Actor,
    name: &str,
    sha: &str,
) -> Result<(Repository, CoverageCommit), ApiError> {
    let repository = visible_repository(app, actor, name).await?;
    let commit = read::find_commit(&app.db, repository.id, sha)
        .await
        .map_err(db_error)?
        .ok_or_else(ApiError::not_found)?;
    Ok((repository, commit))
}

async fn summary(app: &App, actor: &Actor, name: &str, sha: &str) -> Result<Value, ApiError> {
    let (repository, commit) = visible_commit(app, actor, name, sha).await?;
    let summary = read::summary(&app.db, commit.id).await.map_err(db_error)?;
    let mut body = serde_json::to_value(&summary).unwrap_or_default();
    body["repository"] = json!(repository);
    body["commit"] = json!(commit);
    Ok(body)
}

async fn files(
    app: &App,
    actor: &Actor,
    name: &str,
    sha: &str,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let page = page(query)?;
    let (repository, commit) = visible_commit(app, actor, name, sha).await?;
    let paged = read::files(&app.db, commit.id, page)
        .await
        .map_err(db_error)?;
    Ok(json!({
        "repository": repository,
        "status": commit.coverage_status,
        "commit": commit,
        "files": paged.items,
        "paging": paged.paging,
    }))
}

async fn file(
    app: &App,
    actor: &Actor,
    name: &str,
    sha: &str,
    id: &str,
) -> Result<Value, ApiError> {
    let (repository, commit) = visible_commit(app, actor, name, sha).await?;
    let id: i64 = id.parse().map_err(|_| ApiError::not_found())?;
    let detail = read::file(&app.db, commit.id, id)
        .await
        .map_err(db_error)?
        .ok_or_else(ApiError::not_found)?;
    let path = detail.row.file.clone();
    let (base_path, file_name) = match path.rsplit_once('/') {
        Some((dir, base)) => (format!("{dir}/"), base.to_string()),
        None => ("./".to_string(), path.clone()),
    };
    // One unreadable source does not fail the view: its status says why it is missing.
    let (source_status, source) = match tree::read_source(
        app,
        repository.id,
        &commit.sha,
        &path,
        MAX_SOURCE_BYTES,
    )
    .await
    {
        Ok(Source::Text(text)) => ("ok", source_lines(&text)),
        Ok(Source::TooLarge) => ("too_large", Vec::new()),
        Ok(Source::NotFound) => ("not_found", Vec::new()),
        Err(TreeError::Missing) => ("not_downloaded", Vec::new()),
        // The store being down passes: 503 and a retry show the source, "errored" would not.
        Err(e) if matches!(&e, TreeError::Archive(ArchiveError::Storage(s)) if s.is_unavailable()) =>
        {
            return Err(ApiError::internal("reading a coverage source", e));
        }
        Err(e) => {
            tracing::warn!(error = %e, file = %path, "coverage source unreadable");
            ("errored", Vec::new())
        }
    };
    Ok(json!({
        "file": {
            "id": detail.row.id,
            "path": path,
            "base_path": base_path,
            "name": file_name,
            "source_status": source_status,
            "source": source,
        },
        "coverage": {
            "lines_total": detail.row.lines_total,
            "lines_covered": detail.row.lines_covered,
            "lines_missed": detail.row.lines_missed,
            "percent_covered": detail.row.percent_covered,
            "blocks": detail.blocks,
            "lines": detail.lines,
        },
    }))
}

/// The original's `[{type: "line", line, source}]`, `source` being HTML (escaped text here:
/// no highlighter yet).
fn source_lines(text: &str) -> Vec<Value> {
    text.lines()
        .enumerate()
        .map(|(i, line)| json!({"type": "line", "line": i + 1, "source": crate::http::html::escape(line)}))
        .collect()
}
