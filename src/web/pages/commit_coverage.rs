//! `/repos/{repo}/commits/{sha}/coverage`: the commit's coverage totals and its files, least
//! covered first (or most covered, or by path), filtered by path and by a coverage ceiling (a
//! GET form), 50 per page; each file links to its source view.

use askama::Template;
use warp::reply::Response;

use super::commit::{self, CommitHead};
use crate::coverage::browse::{self, FileFilter, FileOrder};
use crate::coverage::read;
use crate::paging::Paging;
use crate::repositories::Repository;
use crate::web::format;
use crate::web::page::{self, Chrome, PageError};
use crate::web::{Req, Session};

pub const PER_PAGE: u32 = 50;

struct FileLine {
    path: String,
    href: String,
    percent: i64,
    lines: String,
}

#[derive(Template)]
#[template(path = "commit_coverage.html")]
struct CoveragePage {
    chrome: Chrome,
    repo: Repository,
    head: CommitHead,
    status: String,
    /// The totals sentence once completed.
    totals: Option<String>,
    error: Option<String>,
    files: Vec<FileLine>,
    paging: Paging,
    prev_href: Option<String>,
    next_href: Option<String>,
    q: String,
    below: String,
    sort: &'static str,
    filtered: bool,
}

pub async fn get(req: &Req, name: &str, sha: &str) -> Result<Response, PageError> {
    let session = req.session().await?;
    page::render(&gather(req, &session, name, sha).await?)
}

async fn gather(
    req: &Req,
    session: &Session,
    name: &str,
    sha: &str,
) -> Result<CoveragePage, PageError> {
    let q = req.query("q").unwrap_or("").trim().to_string();
    let below_raw = req.query("below").unwrap_or("").trim().to_string();
    let below = match below_raw.as_str() {
        "" => None,
        raw => Some(
            raw.parse::<f64>()
                .ok()
                .filter(|v| (0.0..=100.0).contains(v))
                .ok_or(PageError::BadRequest(
                    "“Covered below” must be a percentage from 0 to 100",
                ))?,
        ),
    };
    let order = match req.query("sort") {
        None => FileOrder::default(),
        Some(s) => FileOrder::parse(s).ok_or(PageError::BadRequest("Unknown sort order"))?,
    };
    let page = req.page(PER_PAGE)?;
    let (repo, commit) = commit::load(req, session, name, sha).await?;
    let pool = &req.app.db;
    let summary = read::summary(pool, commit.id).await?;
    let filter = FileFilter {
        path: (!q.is_empty()).then(|| q.clone()),
        below,
        order,
    };
    let listed = browse::browse(pool, commit.id, &filter, page).await?;
    let base = format!("/repos/{}/commits/{}/coverage", repo.name, commit.sha);
    let files = listed
        .items
        .into_iter()
        .map(|f| FileLine {
            href: format!("{base}/file{}", commit::query(&[("path", &f.file)])),
            lines: format!("{} of {} lines", f.lines_covered, f.lines_total),
            percent: f.percent_covered,
            path: f.file,
        })
        .collect();
    let sort = order.as_str();
    let href = |p: u32| {
        let p = p.to_string();
        let sort = if order == FileOrder::default() {
            ""
        } else {
            sort
        };
        format!(
            "{base}{}",
            commit::query(&[
                ("q", &q),
                ("below", &below_raw),
                ("sort", sort),
                ("page", &p)
            ])
        )
    };
    let totals = match (
        summary.percent_covered,
        summary.lines_total,
        summary.lines_covered,
    ) {
        (Some(percent), Some(total), Some(covered)) => Some(format!(
            "{} covered: {covered} of {total} relevant lines, {} missed.",
            format::percent(Some(percent)),
            total - covered
        )),
        _ => None,
    };
    Ok(CoveragePage {
        chrome: session.chrome(format!("Coverage · {}", repo.name), "repositories"),
        head: CommitHead::new(&repo, &commit, "coverage"),
        repo,
        status: summary.status,
        totals,
        error: summary.error,
        files,
        prev_href: listed.paging.prev_page.map(href),
        next_href: listed.paging.next_page.map(href),
        paging: listed.paging,
        filtered: !q.is_empty() || below.is_some(),
        q,
        below: below_raw,
        sort,
    })
}
