//! `/`: the repositories the user sees, as cards with the default branch's issues and coverage
//! and their 31-day sparklines; `?q=` searches names (a plain GET form, so it works without
//! JavaScript), `?page=` pages. Administrators of a standalone instance add repositories by git
//! URL here (`POST /`); in GitHub mode the organisation's list belongs to the add page.

use askama::Template;
use http::StatusCode;
use warp::reply::Response;

use crate::branches;
use crate::paging::Paging;
use crate::repositories::{self, NewRepository, RepositoryError, Source, Viewer};
use crate::web::charts::{self, Measure};
use crate::web::format;
use crate::web::page::{self, Chrome, PageError};
use crate::web::{Req, Session};

const PER_PAGE: u32 = 24;

struct Card {
    name: String,
    description: Option<String>,
    coverage: String,
    issues: String,
    coverage_spark: String,
    issues_spark: String,
}

#[derive(Template)]
#[template(path = "repositories.html")]
struct Repositories {
    chrome: Chrome,
    cards: Vec<Card>,
    query: String,
    paging: Paging,
    prev_href: Option<String>,
    next_href: Option<String>,
    /// Administrators of a standalone instance get the "add by git URL" form.
    can_add: bool,
    add_error: Option<String>,
    added: Option<(String, String)>,
}

pub async fn get(req: &Req) -> Result<Response, PageError> {
    let session = req.session().await?;
    let view = gather(req, &session).await?;
    page::render(&view)
}

async fn gather(req: &Req, session: &Session) -> Result<Repositories, PageError> {
    let pool = &req.app.db;
    let query = req.query("q").unwrap_or("").trim().to_string();
    let listed = repositories::list_visible(
        pool,
        Viewer::from(&session.actor),
        Some(&query),
        req.page(PER_PAGE)?,
    )
    .await?;
    let mut cards = Vec::with_capacity(listed.items.len());
    for summary in listed.items {
        let repo = summary.repository;
        let branch = branches::find_id(pool, repo.id, &repo.default_branch).await?;
        let (coverage, issues) =
            crate::stats::graph_points(pool, branch, time::OffsetDateTime::now_utc().date())
                .await?;
        cards.push(Card {
            coverage: format::percent(summary.coverage),
            issues: format::count(summary.issues.map(i64::from)),
            coverage_spark: charts::sparkline(Measure::Coverage, &coverage),
            issues_spark: charts::sparkline(Measure::Issues, &issues),
            name: repo.name,
            description: repo.description.filter(|d| !d.trim().is_empty()),
        });
    }
    let href = |page| page::page_href("/", &[("q", &query)], page);
    Ok(Repositories {
        chrome: session.chrome("Repositories", "repositories"),
        cards,
        prev_href: listed.paging.prev_page.map(href),
        next_href: listed.paging.next_page.map(href),
        paging: listed.paging,
        query,
        can_add: session.admin && req.app.github.is_none(),
        add_error: None,
        added: None,
    })
}

/// Adds a repository by git URL (administrators, standalone mode). The upload token is shown
/// on the answer page, once.
pub async fn post(req: &Req) -> Result<Response, PageError> {
    let (session, form) = req.admin_form().await?;
    if req.app.github.is_some() {
        return Err(PageError::BadRequest(
            "Repositories come from the GitHub organisation on this instance",
        ));
    }
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
    let mut view = gather(req, &session).await?;
    match created {
        Ok((repo, token)) => {
            view.added = Some((repo.name, token));
            page::render_with(StatusCode::CREATED, &view)
        }
        Err(RepositoryError::Db(e)) => Err(e.into()),
        Err(e) => {
            view.add_error = Some(e.to_string());
            page::render_with(StatusCode::BAD_REQUEST, &view)
        }
    }
}
