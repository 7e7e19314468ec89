//! `/new`: adding a repository (administrators). In GitHub mode, the organisation's
//! repositories (`org_repos`: searchable with `?q=`, paged, "last updated" with a refresh
//! button), each with an "Add to Cocov" button that registers it and opens its page; while the
//! list loads, a notice whose region `app.js` reloads by itself (and a reload link without
//! JavaScript). In standalone mode, the form adding one by git URL (the upload token is shown
//! on the answer page, once).

use askama::Template;
use http::StatusCode;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use warp::reply::Response;

use crate::org_repos::{self, AddFromGithubError, PER_PAGE};
use crate::paging::Paging;
use crate::repositories::{self, NewRepository, RepositoryError, Source};
use crate::web::format;
use crate::web::page::{self, Chrome, PageError};
use crate::web::{Form, Req, Session};

const NOTICES: &[(&str, &str)] = &[(
    "refreshing",
    "The list is being read again from GitHub; it updates here when done.",
)];

struct Row {
    name: String,
    description: Option<String>,
    created: Option<String>,
    pushed: Option<String>,
    present: bool,
}

/// The organisation's list as the page shows it.
struct OrgView {
    /// No list yet: it is being fetched.
    loading: bool,
    /// A list is shown and a newer one is being fetched.
    refreshing: bool,
    failure: Option<String>,
    last_updated: Option<String>,
    rows: Vec<Row>,
    paging: Paging,
    prev_href: Option<String>,
    next_href: Option<String>,
}

#[derive(Template)]
#[template(path = "add_repository.html")]
struct AddRepository {
    chrome: Chrome,
    query: String,
    /// `None` in standalone mode: the git URL form instead.
    org: Option<OrgView>,
    /// The link that shows this page again (the reload link while the list loads).
    here: String,
    notice: Option<&'static str>,
    problem: Option<String>,
    added: Option<(String, String)>,
}

pub async fn get(req: &Req) -> Result<Response, PageError> {
    let session = req.admin_session().await?;
    let mut view = gather(req, &session).await?;
    view.notice = req.message("notice", NOTICES);
    page::render(&view)
}

async fn gather(req: &Req, session: &Session) -> Result<AddRepository, PageError> {
    let query = req.query("q").unwrap_or("").trim().to_string();
    let org = match req.app.github {
        Some(_) => Some(org_view(req, &query).await?),
        None => None,
    };
    Ok(AddRepository {
        chrome: session.chrome("Add a repository", "repositories"),
        here: here(&query),
        query,
        org,
        notice: None,
        problem: None,
        added: None,
    })
}

async fn org_view(req: &Req, query: &str) -> Result<OrgView, PageError> {
    let snapshot = org_repos::snapshot(&req.app).await?;
    let requested = req.page(PER_PAGE)?;
    let Some(list) = snapshot.list else {
        return Ok(OrgView {
            loading: snapshot.failure.is_none(),
            refreshing: false,
            failure: snapshot.failure,
            last_updated: None,
            rows: Vec::new(),
            paging: Paging::new(requested, 0),
            prev_href: None,
            next_href: None,
        });
    };
    let found = org_repos::page(&req.app.db, &list, Some(query), requested).await?;
    let href = |page| page::page_href("/new", &[("q", query)], page);
    let rows = found
        .items
        .into_iter()
        .map(|e| Row {
            created: e.repository.created_at.as_deref().and_then(ago),
            pushed: e.repository.pushed_at.as_deref().and_then(ago),
            description: e.repository.description.filter(|d| !d.trim().is_empty()),
            name: e.repository.name,
            present: e.present,
        })
        .collect();
    Ok(OrgView {
        loading: false,
        refreshing: snapshot.updating,
        failure: snapshot.failure,
        last_updated: Some(format::ago_now(list.updated_at)),
        rows,
        prev_href: found.paging.prev_page.map(href),
        next_href: found.paging.next_page.map(href),
        paging: found.paging,
    })
}

/// This page with the search kept.
fn here(query: &str) -> String {
    if query.is_empty() {
        return "/new".to_string();
    }
    let q: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
    format!("/new?q={q}")
}

/// GitHub's time as "3 days ago".
fn ago(text: &str) -> Option<String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(format::ago_now)
}

/// `action=refresh` (GitHub mode) reads the list again; `action=add` with `name` adds an
/// organisation repository and opens its page; in standalone mode the form adds by git URL.
pub async fn post(req: &Req) -> Result<Response, PageError> {
    let (session, form) = req.admin_form().await?;
    if req.app.github.is_none() {
        return add_by_git_url(req, &session, &form).await;
    }
    match form.get("action") {
        Some("refresh") => {
            org_repos::request_refresh(&req.app).await?;
            let q = form.get("q").unwrap_or("").trim();
            let to = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("q", q)
                .append_pair("notice", "refreshing")
                .finish();
            Ok(page::see_other(&format!("/new?{to}")))
        }
        Some("add") => add_from_github(req, &session, &form).await,
        _ => Err(PageError::BadRequest("The form has no valid action")),
    }
}

async fn add_from_github(req: &Req, session: &Session, form: &Form) -> Result<Response, PageError> {
    let name = form.get("name").unwrap_or("").trim();
    let error = match org_repos::add_from_github(&req.app, name, &session.actor.audit()).await {
        Ok((repo, _)) => {
            let path: String = url::form_urlencoded::byte_serialize(repo.name.as_bytes()).collect();
            return Ok(page::see_other(&format!("/repos/{path}")));
        }
        Err(AddFromGithubError::Repository(RepositoryError::Db(e))) => return Err(e.into()),
        Err(e) => e,
    };
    let status = match error {
        AddFromGithubError::Github(_) => StatusCode::BAD_GATEWAY,
        AddFromGithubError::NotOnGithub => StatusCode::NOT_FOUND,
        AddFromGithubError::Repository(RepositoryError::AlreadyExists(_)) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut view = gather(req, session).await?;
    view.problem = Some(format!("Failed adding the repository “{name}”: {error}"));
    page::render_with(status, &view)
}

/// Standalone mode: registers a repository by git URL; the answer page shows its upload token.
async fn add_by_git_url(req: &Req, session: &Session, form: &Form) -> Result<Response, PageError> {
    let field = |name: &str| form.get(name).unwrap_or("").trim().to_string();
    let new = NewRepository {
        name: field("name"),
        description: Some(field("description")).filter(|d| !d.is_empty()),
        default_branch: Some(field("default_branch"))
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "main".to_string()),
        source: Source::GitUrl(field("git_url")),
    };
    let allowed = &req.app.config.git.allowed_protocols;
    let created = repositories::create(&req.app.db, &new, allowed, &session.actor.audit()).await;
    let mut view = gather(req, session).await?;
    match created {
        Ok((repo, token)) => {
            view.added = Some((repo.name, token));
            page::render_with(StatusCode::CREATED, &view)
        }
        Err(RepositoryError::Db(e)) => Err(e.into()),
        Err(e) => {
            view.problem = Some(e.to_string());
            page::render_with(StatusCode::BAD_REQUEST, &view)
        }
    }
}
