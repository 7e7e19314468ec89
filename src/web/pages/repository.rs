//! `/repos/{repo}`: one branch of a repository (the default one, or `?branch=`): the status of
//! its head (coverage and checks), the head commit, coverage and issue charts over 31 days,
//! the active issues by kind, a branch switcher (a GET form: no JavaScript needed) and the
//! commits pushed to the branch, paged.

use askama::Template;
use warp::reply::Response;

use crate::branches::{self, BranchView};
use crate::commits::{self, CommitView};
use crate::issues;
use crate::paging::Paging;
use crate::repositories::{Repository, Viewer, find_visible};
use crate::web::charts::{self, Measure};
use crate::web::format;
use crate::web::page::{self, Chrome, PageError};
use crate::web::{Req, Session};

const COMMITS_PER_PAGE: u32 = 20;

/// One cell of the status box: what to say, how it looks and where "Details" goes.
pub struct Status {
    pub label: String,
    /// `ok`, `bad`, `busy` or `none`: a CSS class, always next to the words.
    pub tone: &'static str,
    pub details: Option<String>,
}

pub struct CommitRow {
    pub sha: String,
    pub short: String,
    pub message: String,
    pub author: String,
    pub when: String,
    pub when_iso: String,
    pub coverage: String,
    pub issues: String,
    pub tone: &'static str,
    /// The tone in words (the dot is colour only): screen readers and the tooltip say it.
    pub state: &'static str,
}

pub struct KindRow {
    pub kind: &'static str,
    pub count: i64,
    /// Bar width in percent of the largest count.
    pub width: u32,
    pub href: String,
}

#[derive(Template)]
#[template(path = "repository.html")]
struct RepositoryPage {
    chrome: Chrome,
    repo: Repository,
    tab: &'static str,
    branch: Option<BranchView>,
    branch_names: Vec<String>,
    selected: String,
    head: Option<CommitRow>,
    coverage_status: Status,
    checks_status: Status,
    coverage_chart: String,
    coverage_summary: String,
    issues_chart: String,
    issues_summary: String,
    kinds: Vec<KindRow>,
    commits: Vec<CommitRow>,
    paging: Paging,
    prev_href: Option<String>,
    next_href: Option<String>,
}

/// The repository called `name` if the session's user may see it, else 404.
pub async fn visible(req: &Req, session: &Session, name: &str) -> Result<Repository, PageError> {
    find_visible(&req.app.db, Viewer::from(&session.actor), name)
        .await?
        .ok_or(PageError::NotFound)
}

pub async fn get(req: &Req, name: &str) -> Result<Response, PageError> {
    let session = req.session().await?;
    let repo = visible(req, &session, name).await?;
    let pool = &req.app.db;
    let selected = req
        .query("branch")
        .unwrap_or(&repo.default_branch)
        .to_string();
    let branch = branches::find(pool, &repo, &selected).await?;
    if branch.is_none() && req.query("branch").is_some() {
        return Err(PageError::NotFound);
    }
    let branch_names = branches::names(pool, &repo).await?;
    let (coverage, issues) = crate::stats::graph_points(
        pool,
        branch.as_ref().map(|b| b.id),
        time::OffsetDateTime::now_utc().date(),
    )
    .await?;
    let head = branch.as_ref().and_then(|b| b.head.as_ref());
    let base = format!("/repos/{}", repo.name);
    let kinds = match head {
        Some(head) => kind_rows(pool, &base, head).await?,
        None => Vec::new(),
    };
    let page_request = req.page(COMMITS_PER_PAGE)?;
    let (commits, paging) = match &branch {
        Some(b) => {
            let listed = commits::list_for_branch(pool, b.id, page_request).await?;
            (listed.items, listed.paging)
        }
        None => (Vec::new(), Paging::new(page_request, 0)),
    };
    let href = |page| page::page_href(&base, &[("branch", &selected)], page);
    let view = RepositoryPage {
        chrome: session.chrome(repo.name.clone(), "repositories"),
        tab: "summary",
        coverage_status: coverage_status(&base, head),
        checks_status: checks_status(&base, head),
        head: head.map(commit_row),
        coverage_chart: charts::line_chart(Measure::Coverage, "Coverage, past 31 days", &coverage),
        coverage_summary: charts::summary(Measure::Coverage, &coverage),
        issues_chart: charts::line_chart(Measure::Issues, "Issues, past 31 days", &issues),
        issues_summary: charts::summary(Measure::Issues, &issues),
        kinds,
        commits: commits.iter().map(commit_row).collect(),
        prev_href: paging.prev_page.map(href),
        next_href: paging.next_page.map(href),
        paging,
        branch_names,
        selected: branch.as_ref().map_or(selected.clone(), |b| b.name.clone()),
        branch,
        repo,
    };
    page::render(&view)
}

async fn kind_rows(
    pool: &sqlx::PgPool,
    base: &str,
    head: &CommitView,
) -> Result<Vec<KindRow>, PageError> {
    let mut counts = issues::counts_by_kind(pool, head.id).await?;
    counts.retain(|(_, n)| *n > 0);
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_str().cmp(b.0.as_str())));
    let max = counts.first().map_or(1, |c| c.1.max(1));
    Ok(counts
        .into_iter()
        .map(|(kind, count)| KindRow {
            kind: kind.as_str(),
            count,
            width: ((count * 100) / max).max(2) as u32,
            href: format!("{base}/commits/{}/issues?kind={}", head.sha, kind.as_str()),
        })
        .collect())
}

pub fn commit_row(c: &CommitView) -> CommitRow {
    let at = c.committed_at.unwrap_or(c.created_at);
    CommitRow {
        sha: c.sha.clone(),
        short: format::short_sha(&c.sha).to_string(),
        message: format::first_line(&c.message).to_string(),
        author: c
            .user
            .as_ref()
            .map_or_else(|| c.author_name.clone(), |u| u.login.clone()),
        when: format::ago_now(at),
        when_iso: format::iso(at),
        coverage: format::percent(c.coverage_percent),
        issues: format::count(c.issues_count.map(i64::from)),
        tone: match c.condensed_status {
            "green" => "ok",
            "red" => "bad",
            _ => "busy",
        },
        state: match c.condensed_status {
            "green" => "Checks and coverage done",
            "red" => "Checks or coverage errored",
            _ => "Checks or coverage not done",
        },
    }
}

fn coverage_status(base: &str, head: Option<&CommitView>) -> Status {
    let Some(c) = head else {
        return none("No commit yet");
    };
    let details = Some(format!("{base}/commits/{}/coverage", c.sha));
    match c.coverage_status.as_str() {
        "waiting" => none("Waiting for an upload"),
        "queued" | "in_progress" => Status {
            label: "Processing…".into(),
            tone: "busy",
            details: None,
        },
        "errored" => Status {
            label: "Error processing the report".into(),
            tone: "bad",
            details,
        },
        _ => {
            let percent = c.coverage_percent.unwrap_or(0.0);
            match c.minimum_coverage {
                Some(min) if percent < f64::from(min) => Status {
                    label: format!(
                        "{} (at least {min}% required)",
                        format::percent(Some(percent))
                    ),
                    tone: "bad",
                    details,
                },
                _ => Status {
                    label: format::percent(Some(percent)),
                    tone: "ok",
                    details,
                },
            }
        }
    }
}

fn checks_status(base: &str, head: Option<&CommitView>) -> Status {
    let Some(c) = head else {
        return none("No commit yet");
    };
    let checks = Some(format!("{base}/commits/{}/checks", c.sha));
    let (label, tone, details) = match c.checks_status.as_str() {
        "waiting" | "queued" | "in_progress" => ("Running…".to_string(), "busy", checks),
        // `errored`: a check ended in error; `failure`: the set could not run at all (manifest,
        // fetch). The labels said it the other way round.
        "errored" => ("A check failed".to_string(), "bad", checks),
        "failure" => ("Checks could not run".to_string(), "bad", checks),
        "not_configured" => ("Not configured".to_string(), "none", None),
        "canceled" => ("Canceled".to_string(), "none", checks),
        _ => match c.issues_count.unwrap_or(0) {
            0 => ("Passing: no issues".to_string(), "ok", checks),
            1 => (
                "1 issue".to_string(),
                "bad",
                Some(format!("{base}/commits/{}/issues", c.sha)),
            ),
            n => (
                format!("{n} issues"),
                "bad",
                Some(format!("{base}/commits/{}/issues", c.sha)),
            ),
        },
    };
    Status {
        label,
        tone,
        details,
    }
}

fn none(label: &str) -> Status {
    Status {
        label: label.to_string(),
        tone: "none",
        details: None,
    }
}
