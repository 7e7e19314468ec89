//! `/admin/repositories`: every repository (search, pages) with where it comes from, and
//! deletion (queued: a job removes it with everything it owns). Administrators only.
//! Storage sizes join this page when the domain offers them.

use askama::Template;
use warp::reply::Response;

use crate::paging::Paging;
use crate::repositories::{self, Viewer};
use crate::web::Req;
use crate::web::format;
use crate::web::page::{self, Chrome, PageError, see_other};

const PER_PAGE: u32 = 25;

struct RepositoryRow {
    id: i64,
    name: String,
    description: String,
    source: String,
    default_branch: String,
    added: String,
}

#[derive(Template)]
#[template(path = "admin/repositories.html")]
struct RepositoriesPage {
    chrome: Chrome,
    admin_tab: &'static str,
    query: String,
    rows: Vec<RepositoryRow>,
    paging: Paging,
    prev_href: Option<String>,
    next_href: Option<String>,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
}

const NOTICES: &[(&str, &str)] = &[(
    "deleted",
    "The repository is being deleted with its commits, reports and files.",
)];

pub async fn get(req: &Req) -> Result<Response, PageError> {
    let session = req.admin_session().await?;
    let query = req.query("q").unwrap_or("").trim().to_string();
    let listed = repositories::list_visible(
        &req.app.db,
        Viewer::Everything,
        Some(&query),
        req.page(PER_PAGE)?,
    )
    .await?;
    let href = |page| page::page_href("/admin/repositories", &[("q", &query)], page);
    let view = RepositoriesPage {
        chrome: session.chrome("Repositories · Administration", "admin"),
        admin_tab: "repositories",
        rows: listed
            .items
            .into_iter()
            .map(|s| {
                let r = s.repository;
                RepositoryRow {
                    id: r.id,
                    source: match (&r.git_url, r.github_id) {
                        (Some(url), _) => crate::git::redact(url),
                        (None, Some(_)) => "GitHub".into(),
                        (None, None) => "—".into(),
                    },
                    description: r.description.unwrap_or_default(),
                    default_branch: r.default_branch,
                    added: format::ago_now(r.created_at),
                    name: r.name,
                }
            })
            .collect(),
        prev_href: listed.paging.prev_page.map(href),
        next_href: listed.paging.next_page.map(href),
        paging: listed.paging,
        query,
        notice: req.message("notice", NOTICES),
        problem: None,
    };
    page::render(&view)
}

/// Deletes repository `repository_id` (queued).
pub async fn post(req: &Req) -> Result<Response, PageError> {
    let (session, form) = req.admin_form().await?;
    let id = form.id("repository_id")?;
    if repositories::find(&req.app.db, id).await?.is_none() {
        return Err(PageError::NotFound);
    }
    repositories::enqueue_delete(&req.app, id, &session.actor.audit()).await?;
    Ok(see_other("/admin/repositories?notice=deleted"))
}
