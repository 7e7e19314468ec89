//! `/repos/{repo}/commits/{sha}/issues`: the commit's issues filtered by kind, plugin, file and
//! state (a GET form, so filters are links and work without JavaScript), 25 per page, each with
//! the lines around it highlighted on the server and the issue's message under its first line;
//! ignoring once (members) or for good (maintainers) with a reason, un-ignoring, and the
//! repository's ignore rules with their removal (maintainers).

use askama::Template;
use warp::reply::Response;

use super::commit::{self, CommitHead};
use crate::issues::{self, IgnoreError, IgnoreMode, Issue, IssueFilter, IssueKind, IssueState};
use crate::memberships::Level;
use crate::paging::Paging;
use crate::repositories::Repository;
use crate::web::highlight;
use crate::web::page::{self, Chrome, PageError};
use crate::web::{Req, Session};

pub const PER_PAGE: u32 = 25;

/// One row of a snippet: a source line, or the issue's message after its first line.
pub struct SnippetRow {
    pub number: i64,
    /// Highlighted HTML (escaped by the highlighter); for the message row, plain text.
    pub html: String,
    /// Inside the issue's lines.
    pub marked: bool,
    pub message: Option<String>,
}

struct IssueCard {
    id: i64,
    kind: String,
    plugin: String,
    file: String,
    lines: String,
    message: String,
    snippet: Vec<SnippetRow>,
    /// Why there is no snippet, when there is none.
    snippet_note: Option<&'static str>,
    ignored: Option<String>,
    reason: Option<String>,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

struct RuleRow {
    id: i64,
    summary: String,
    reason: Option<String>,
    by: String,
}

#[derive(Template)]
#[template(path = "commit_issues.html")]
struct IssuesPage {
    chrome: Chrome,
    repo: Repository,
    head: CommitHead,
    kinds: Vec<Choice>,
    plugins: Vec<Choice>,
    states: Vec<Choice>,
    file: String,
    cards: Vec<IssueCard>,
    paging: Paging,
    prev_href: Option<String>,
    next_href: Option<String>,
    /// This page with its filters, where the forms come back to.
    here: String,
    filtered: bool,
    can_ignore_for_good: bool,
    rules: Vec<RuleRow>,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
}

struct Filters {
    kind: String,
    plugin: String,
    file: String,
    state: String,
}

impl Filters {
    fn read(req: &Req) -> Result<(Filters, IssueFilter), PageError> {
        let raw = Filters {
            kind: req.query("kind").unwrap_or("").to_string(),
            plugin: req.query("plugin").unwrap_or("").to_string(),
            file: req.query("file").unwrap_or("").trim().to_string(),
            state: req.query("state").unwrap_or("active").to_string(),
        };
        let kind = match raw.kind.as_str() {
            "" => None,
            k => Some(IssueKind::parse(k).ok_or(PageError::BadRequest("Unknown issue kind"))?),
        };
        let state =
            IssueState::parse(&raw.state).ok_or(PageError::BadRequest("Unknown issue state"))?;
        let filter = IssueFilter {
            source: (!raw.plugin.is_empty()).then(|| raw.plugin.clone()),
            kind,
            file: (!raw.file.is_empty()).then(|| raw.file.clone()),
            state,
        };
        Ok((raw, filter))
    }

    fn href(&self, base: &str, page: u32) -> String {
        let page = if page > 1 {
            page.to_string()
        } else {
            String::new()
        };
        let state = if self.state == "active" {
            ""
        } else {
            &self.state
        };
        format!(
            "{base}{}",
            commit::query(&[
                ("kind", &self.kind),
                ("plugin", &self.plugin),
                ("file", &self.file),
                ("state", state),
                ("page", &page),
            ])
        )
    }
}

pub async fn get(req: &Req, name: &str, sha: &str) -> Result<Response, PageError> {
    let session = req.session().await?;
    let notice = match req.query("notice") {
        Some("ignored") => Some("The issue is ignored."),
        Some("ignored_for_good") => Some("The issue is ignored in this and every later commit."),
        Some("unignored") => Some("The issue is active again."),
        Some("rule_deleted") => {
            Some("The rule was removed: later commits report that issue again.")
        }
        _ => None,
    };
    let problem = match req.query("problem") {
        Some("gone") => Some("That issue or rule no longer exists."),
        _ => None,
    };
    page::render(&gather(req, &session, name, sha, notice, problem).await?)
}

async fn gather(
    req: &Req,
    session: &Session,
    name: &str,
    sha: &str,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
) -> Result<IssuesPage, PageError> {
    let (filters, filter) = Filters::read(req)?;
    let page = req.page(PER_PAGE)?;
    let (repo, commit) = commit::load(req, session, name, sha).await?;
    let pool = &req.app.db;
    let (found, total) =
        issues::list(pool, commit.id, &filter, page.offset(), page.limit()).await?;
    let snippets = issues::affected_files(
        req.app.storage.as_ref(),
        repo.id,
        &commit.sha,
        commit.ingest_status == "completed",
        &found,
    )
    .await;
    let cards = found
        .into_iter()
        .zip(snippets)
        .map(|(issue, affected)| card(issue, affected))
        .collect();

    let kinds = issues::counts_by_kind(pool, commit.id).await?;
    let mut kind_choices = vec![choice("", "All kinds", &filters.kind)];
    kind_choices.extend(
        kinds
            .into_iter()
            .map(|(k, n)| choice(k.as_str(), &format!("{} ({n})", k.as_str()), &filters.kind)),
    );
    let sources = issues::counts_by_source(pool, commit.id).await?;
    let mut plugin_choices = vec![choice("", "All plugins", &filters.plugin)];
    plugin_choices.extend(
        sources
            .iter()
            .map(|(p, n)| choice(p, &format!("{p} ({n})"), &filters.plugin)),
    );
    let (active, ignored) = issues::counts_by_state(pool, commit.id).await?;
    let states = vec![
        choice("active", &format!("Active ({active})"), &filters.state),
        choice("ignored", &format!("Ignored ({ignored})"), &filters.state),
        choice(
            "all",
            &format!("All ({})", active + ignored),
            &filters.state,
        ),
    ];
    let can_ignore_for_good = commit::has_level(req, session, &repo, Level::Maintain).await?;
    let rules = issues::list_rules(pool, repo.id)
        .await?
        .into_iter()
        .map(|r| RuleRow {
            id: r.id,
            summary: format!(
                "{} · {} · {}:{} · {}",
                r.check_source, r.kind, r.file, r.line_start, r.message
            ),
            reason: r.reason,
            by: r.created_by.unwrap_or_else(|| "a former user".into()),
        })
        .collect();
    let paging = Paging::new(page, total);
    let base = format!("/repos/{}/commits/{}/issues", repo.name, commit.sha);
    let current = paging.page;
    Ok(IssuesPage {
        chrome: session.chrome(format!("Issues · {}", repo.name), "repositories"),
        head: CommitHead::new(&repo, &commit, "issues"),
        prev_href: paging.prev_page.map(|p| filters.href(&base, p)),
        next_href: paging.next_page.map(|p| filters.href(&base, p)),
        here: filters.href(&base, current),
        filtered: !(filters.kind.is_empty()
            && filters.plugin.is_empty()
            && filters.file.is_empty()
            && filters.state == "active"),
        repo,
        kinds: kind_choices,
        plugins: plugin_choices,
        states,
        file: filters.file,
        cards,
        paging,
        can_ignore_for_good,
        rules,
        notice,
        problem,
    })
}

fn choice(value: &str, label: &str, current: &str) -> Choice {
    Choice {
        value: value.to_string(),
        label: label.to_string(),
        selected: value == current,
    }
}

fn card(issue: Issue, affected: issues::AffectedFile) -> IssueCard {
    let snippet_note = match affected.status {
        "ok" => None,
        "not_downloaded" => Some("The code is not shown: this commit has not been fetched yet."),
        "too_large" => Some("The code is not shown: the file is too large."),
        "missing" => Some("The code is not shown: the file is not in this commit."),
        _ => Some("The code could not be read."),
    };
    let snippet = affected
        .content
        .map(|lines| snippet_rows(&issue, &lines))
        .unwrap_or_default();
    let lines = if issue.line_end > issue.line_start {
        format!("lines {}–{}", issue.line_start, issue.line_end)
    } else {
        format!("line {}", issue.line_start)
    };
    let ignored = issue.ignored_at.map(|at| {
        let how = if issue.ignore_source.as_deref() == Some("rule") {
            "Ignored for good"
        } else {
            "Ignored in this commit"
        };
        let by = issue
            .ignored_by
            .clone()
            .unwrap_or_else(|| "a former user".into());
        format!("{how} by {by}, {}", crate::web::format::ago_now(at))
    });
    IssueCard {
        id: issue.id,
        kind: issue.kind,
        plugin: issue.check_source,
        lines,
        snippet,
        snippet_note,
        ignored,
        reason: issue.ignore_reason,
        message: issue.message,
        file: issue.file,
    }
}

/// The snippet's lines highlighted, the issue's lines marked, the message after its first line.
pub fn snippet_rows(issue: &Issue, lines: &[issues::SnippetLine]) -> Vec<SnippetRow> {
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let html = highlight::lines_html(&issue.file, &texts);
    let (start, end) = (i64::from(issue.line_start), i64::from(issue.line_end));
    let mut rows = Vec::with_capacity(lines.len() + 1);
    for (line, html) in lines.iter().zip(html) {
        rows.push(SnippetRow {
            number: line.line,
            html,
            marked: (start..=end).contains(&line.line),
            message: None,
        });
        if line.line == start {
            rows.push(SnippetRow {
                number: line.line,
                html: String::new(),
                marked: true,
                message: Some(issue.message.clone()),
            });
        }
    }
    rows
}

/// `action=ignore` (`mode=once|for_good`, `reason`), `action=unignore` or `action=delete_rule`,
/// then back to the page with the same filters.
pub async fn post(req: &Req, name: &str, sha: &str) -> Result<Response, PageError> {
    let session = req.session().await?;
    let form = req.form(&session)?;
    let (repo, commit) = commit::load(req, &session, name, sha).await?;
    let pool = &req.app.db;
    let back = form
        .get("return_to")
        .filter(|r| {
            r.starts_with(&format!(
                "/repos/{}/commits/{}/issues",
                repo.name, commit.sha
            ))
        })
        .map(|r| page::same_origin_path(Some(r)))
        .unwrap_or_else(|| format!("/repos/{}/commits/{}/issues", repo.name, commit.sha));
    let outcome = match form.get("action") {
        Some("ignore") => {
            let mode = form
                .get("mode")
                .and_then(IgnoreMode::parse)
                .ok_or(PageError::BadRequest("Choose how to ignore the issue"))?;
            if mode == IgnoreMode::ForGood {
                commit::require_level(req, &session, &repo, Level::Maintain).await?;
            }
            let reason = form.get("reason").map(str::trim).filter(|r| !r.is_empty());
            let reason = reason.map(|r| r.chars().take(1000).collect::<String>());
            let id = form.id("issue")?;
            let done = issues::ignore(
                pool,
                repo.id,
                commit.id,
                id,
                mode,
                session.user_id,
                reason.as_deref(),
            )
            .await;
            done.map(|_| {
                if mode == IgnoreMode::ForGood {
                    "ignored_for_good"
                } else {
                    "ignored"
                }
            })
        }
        Some("unignore") => issues::unignore(pool, commit.id, form.id("issue")?)
            .await
            .map(|_| "unignored"),
        Some("delete_rule") => {
            commit::require_level(req, &session, &repo, Level::Maintain).await?;
            match issues::delete_rule(pool, repo.id, form.id("rule")?).await? {
                true => Ok("rule_deleted"),
                false => Err(IgnoreError::NotFound),
            }
        }
        _ => return Err(PageError::BadRequest("Unknown action")),
    };
    let query = match outcome {
        Ok(notice) => {
            crate::checks::refresh_status(&req.app, commit.id).await?;
            format!("notice={notice}")
        }
        Err(IgnoreError::NotFound) => "problem=gone".to_string(),
        Err(IgnoreError::Db(e)) => return Err(e.into()),
    };
    let separator = if back.contains('?') { '&' } else { '?' };
    Ok(page::see_other(&format!("{back}{separator}{query}")))
}
