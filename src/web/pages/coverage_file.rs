//! `/repos/{repo}/commits/{sha}/coverage/file?path=…`: one file's source from the commit's
//! archive, highlighted, each line marked covered, missed, ignored or not executable: by a
//! symbol and words in their own column, not by colour alone.

use askama::Template;
use serde_json::Value;
use warp::reply::Response;

use super::commit::{self, CommitHead};
use crate::archive::ArchiveError;
use crate::coverage::browse;
use crate::coverage::tree::{self, Source, TreeError};
use crate::repositories::Repository;
use crate::web::highlight;
use crate::web::page::{self, Chrome, PageError};
use crate::web::{Req, Session};

/// Larger sources are not shown (the API's limit too).
const MAX_SOURCE_BYTES: u64 = 4 * 1024 * 1024;

struct SourceLine {
    number: usize,
    html: String,
    /// `covered`, `missed`, `ignored` or `neutral` (the row's class).
    state: &'static str,
    /// The gutter: a symbol, and words for screen readers.
    symbol: &'static str,
    words: String,
}

#[derive(Template)]
#[template(path = "coverage_file.html")]
struct FilePage {
    chrome: Chrome,
    repo: Repository,
    head: CommitHead,
    path: String,
    percent: i64,
    summary: String,
    lines: Vec<SourceLine>,
    note: Option<&'static str>,
    back: String,
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
) -> Result<FilePage, PageError> {
    let path = req
        .query("path")
        .ok_or(PageError::BadRequest(
            "Which file? The address needs ?path=",
        ))?
        .to_string();
    let (repo, commit) = commit::load(req, session, name, sha).await?;
    let detail = browse::file_by_path(&req.app.db, commit.id, &path)
        .await?
        .ok_or(PageError::NotFound)?;
    let (text, note) = match tree::read_source(
        &req.app,
        repo.id,
        &commit.sha,
        &path,
        MAX_SOURCE_BYTES,
    )
    .await
    {
        Ok(Source::Text(text)) => (text, None),
        Ok(Source::TooLarge) => (String::new(), Some("The source is too large to show.")),
        Ok(Source::NotFound) => (
            String::new(),
            Some("The file is not in this commit's tree."),
        ),
        Err(TreeError::Missing) => (
            String::new(),
            Some("This commit's code has not been fetched yet."),
        ),
        Err(e) if matches!(&e, TreeError::Archive(ArchiveError::Storage(s)) if s.is_unavailable()) =>
        {
            return Err(PageError::Unavailable);
        }
        Err(e) => {
            tracing::warn!(error = %e, file = %path, "coverage source unreadable");
            (String::new(), Some("The source could not be read."))
        }
    };
    let texts: Vec<&str> = text.lines().collect();
    let html = highlight::lines_html(&path, &texts);
    let lines = html
        .into_iter()
        .enumerate()
        .map(|(i, html)| {
            let (state, symbol, words) = match detail.lines.get(i) {
                Some(Value::Number(n)) if n.as_u64() > Some(0) => (
                    "covered",
                    "✓",
                    format!(
                        "covered, {n} hit{}",
                        if n.as_u64() == Some(1) { "" } else { "s" }
                    ),
                ),
                Some(Value::Number(_)) => ("missed", "✗", "missed".to_string()),
                Some(Value::String(_)) => ("ignored", "–", "ignored".to_string()),
                _ => ("neutral", "", String::new()),
            };
            SourceLine {
                number: i + 1,
                html,
                state,
                symbol,
                words,
            }
        })
        .collect();
    let row = &detail.row;
    Ok(FilePage {
        chrome: session.chrome(format!("{path} · coverage"), "repositories"),
        head: CommitHead::new(&repo, &commit, "coverage"),
        back: format!("/repos/{}/commits/{}/coverage", repo.name, commit.sha),
        summary: format!(
            "{} relevant lines: {} covered, {} missed.",
            row.lines_total, row.lines_covered, row.lines_missed
        ),
        percent: row.percent_covered,
        repo,
        path,
        lines,
        note,
    })
}
