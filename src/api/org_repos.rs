//! `GET /v1/repositories/$org_repos` and `POST …/$org_repos/update`: the GitHub organisation's
//! repositories to choose from when adding one (`repositories::org_list`). For those who may
//! register repositories: administrators and service tokens.

use std::collections::HashMap;

use http::StatusCode;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::{Reply, Response};

use super::access::{page, respond};
use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::http::{ApiError, tag};
use crate::org_repos::{self, PER_PAGE};

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let list = warp::path!("v1" / "repositories" / "$org_repos")
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(warp::query::<HashMap<String, String>>())
        .and(with_app(app.clone()))
        .then(
            |actor: Actor, query: HashMap<String, String>, app: App| async move {
                respond(list(&app, &actor, &query).await)
            },
        )
        .map(tag("GET /v1/repositories/$org_repos"));
    let update = warp::path!("v1" / "repositories" / "$org_repos" / "update")
        .and(warp::post())
        .and(any_actor(app.clone()))
        .and(with_app(app))
        .then(|actor: Actor, app: App| async move {
            match update(&app, &actor).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => e.into_response(),
            }
        })
        .map(tag("POST /v1/repositories/$org_repos/update"));
    // Any other method on the list's path would reach `DELETE /v1/repositories/{name}` and be
    // a 404 for a repository named `$org_repos`: it is a 405, as the document says.
    let other = warp::path!("v1" / "repositories" / "$org_repos")
        .and(warp::method())
        .and_then(|method: http::Method| async move {
            if method == http::Method::GET || method == http::Method::HEAD {
                // The list's own refusal (401, 403) stands.
                return Err(warp::reject::not_found());
            }
            Ok(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "HTTP method not allowed",
            )
            .into_response())
        });
    list.or(update).unify().or(other).unify().boxed()
}

/// Who may register repositories (administrators, service tokens), on an instance with an
/// organisation. Checked in the handler, not by a rejecting filter: a rejection here would
/// let `GET /v1/repositories/{name}` answer for a repository named `$org_repos`.
fn authorize(app: &App, actor: &Actor) -> Result<(), ApiError> {
    if !actor.is_admin() && !actor.is_service() {
        return Err(ApiError::forbidden());
    }
    if app.github.is_some() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "github.not_configured",
        "This instance has no GitHub organisation (no [github] section): add repositories by git URL",
    ))
}

/// `{"status":"updating"}` until a first list is stored (`"failed"` with `message` when its
/// refresh was given up), then a page of it as the original answered.
async fn list(
    app: &App,
    actor: &Actor,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    authorize(app, actor)?;
    // Fixed page size, as the original; only `page` is read.
    let mut paging = HashMap::from([("per_page".to_string(), PER_PAGE.to_string())]);
    if let Some(p) = query.get("page") {
        paging.insert("page".to_string(), p.clone());
    }
    let page = page(&paging)?;
    let internal = |e| ApiError::internal("reading the organisation's repositories", e);
    let snapshot = org_repos::snapshot(app).await.map_err(internal)?;
    let Some(list) = snapshot.list else {
        return Ok(match snapshot.failure {
            Some(message) => json!({"status": "failed", "message": message}),
            None => json!({"status": "updating"}),
        });
    };
    let search = query.get("search_term").map(String::as_str);
    let found = org_repos::page(&app.db, &list, search, page)
        .await
        .map_err(|e| internal(e.into()))?;
    let items: Vec<Value> = found
        .items
        .into_iter()
        .map(|e| {
            let r = e.repository;
            json!({
                "name": r.name,
                "description": r.description,
                "created_at": r.created_at,
                "pushed_at": r.pushed_at,
                "status": if e.present { "present" } else { "absent" },
            })
        })
        .collect();
    let mut body = json!({
        "status": "ok",
        "items": items,
        "total_pages": found.paging.total_pages,
        "current_page": found.paging.page,
        "last_updated": list.updated_at.format(&Rfc3339).unwrap_or_default(),
        "updating": snapshot.updating,
    });
    let url = |n: u32| page_url(app, query, n);
    if let Some(n) = found.paging.next_page {
        body["next_page"] = url(n).into();
    }
    if let Some(n) = found.paging.prev_page {
        body["prev_page"] = url(n).into();
    }
    if let Some(message) = snapshot.failure {
        body["last_refresh_error"] = message.into();
    }
    Ok(body)
}

/// The absolute URL of another page (the original's `next_page`/`prev_page`), on this site's
/// configured address with the other parameters kept.
fn page_url(app: &App, query: &HashMap<String, String>, n: u32) -> String {
    let mut params: Vec<(&str, &str)> = query
        .iter()
        .filter(|(k, _)| k.as_str() != "page")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    params.sort_unstable();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .append_pair("page", &n.to_string())
        .finish();
    let base = app.config.server.ui_base_url.trim_end_matches('/');
    format!("{base}/v1/repositories/$org_repos?{query}")
}

async fn update(app: &App, actor: &Actor) -> Result<(), ApiError> {
    authorize(app, actor)?;
    org_repos::request_refresh(app)
        .await
        .map_err(|e| ApiError::internal("queueing a refresh of the organisation's list", e))
}
