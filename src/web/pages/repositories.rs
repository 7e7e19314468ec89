//! `/`: the repositories the user sees, as cards with the default branch's issues and coverage
//! and their 31-day sparklines; `?q=` searches names (a plain GET form, so it works without
//! JavaScript), `?page=` pages. Administrators get a link to the add page (`/new`).

use askama::Template;
use warp::reply::Response;

use crate::branches;
use crate::paging::Paging;
use crate::repositories::{self, Viewer};
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
    /// Administrators get the "Add repository" link.
    can_add: bool,
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
        can_add: session.admin,
    })
}
