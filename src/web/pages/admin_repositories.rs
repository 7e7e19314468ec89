//! `/admin/repositories`: every repository (search, pages) with where it comes from, and
//! deletion (queued: a job removes it with everything it owns), and what each stores (commit
//! archives, artifact cache) with the total of all repositories. Administrators only.

use askama::Template;
use warp::reply::Response;

use crate::paging::Paging;
use crate::repositories::{self, Viewer};
use crate::stats;
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
    archives: String,
    cache: String,
}

#[derive(Template)]
#[template(path = "admin/repositories.html")]
struct RepositoriesPage {
    chrome: Chrome,
    admin_tab: &'static str,
    query: String,
    rows: Vec<RepositoryRow>,
    /// Every repository's archives and caches together (not only this page's).
    total_archives: String,
    total_cache: String,
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
    let ids: Vec<i64> = listed.items.iter().map(|s| s.repository.id).collect();
    let storage = stats::storage_of(&req.app.db, &ids).await?;
    let total = stats::storage_total(&req.app.db).await?;
    let href = |page| page::page_href("/admin/repositories", &[("q", &query)], page);
    let view = RepositoriesPage {
        chrome: session.chrome("Repositories · Administration", "admin"),
        admin_tab: "repositories",
        rows: listed
            .items
            .into_iter()
            .map(|s| {
                let r = s.repository;
                let stored = storage.get(&r.id).copied().unwrap_or_default();
                RepositoryRow {
                    archives: format::size(stored.commits_size),
                    cache: format::size(stored.cache_size),
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
        total_archives: format::size(total.commits_size),
        total_cache: format::size(total.cache_size),
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
