//! Shared by the commit pages (checks, issues, coverage): the repository and commit named in the
//! path as the signed-in user may see them, the header they all show, what the user may do on
//! them, and the `?notice=` codes their forms come back with.

use time::OffsetDateTime;

use crate::commits::{self, CommitView};
use crate::memberships::Level;
use crate::repositories::{self, Repository, Viewer};
use crate::web::format;
use crate::web::page::PageError;
use crate::web::{Req, Session};

/// The commit header: short sha, message, author, when, and the tabs' target paths.
pub struct CommitHead {
    pub repo: String,
    pub sha: String,
    pub short_sha: String,
    pub title: String,
    pub author: String,
    pub when: String,
    pub when_iso: String,
    pub checks_status: String,
    pub coverage_status: String,
    pub issues: String,
    pub coverage: String,
    /// The active tab: `checks`, `issues` or `coverage`.
    pub tab: &'static str,
}

impl CommitHead {
    pub fn new(repo: &Repository, commit: &CommitView, tab: &'static str) -> CommitHead {
        let at: OffsetDateTime = commit.committed_at.unwrap_or(commit.created_at);
        CommitHead {
            repo: repo.name.clone(),
            sha: commit.sha.clone(),
            short_sha: format::short_sha(&commit.sha).to_string(),
            title: format::first_line(&commit.message).to_string(),
            author: commit.author_name.clone(),
            when: format::ago_now(at),
            when_iso: format::iso(at),
            checks_status: commit.checks_status.replace('_', " "),
            coverage_status: commit.coverage_status.replace('_', " "),
            issues: format::count(commit.issues_count.map(i64::from)),
            coverage: format::percent(commit.coverage_percent),
            tab,
        }
    }

    /// The path of one of the commit's pages (`checks`, `issues`, `coverage`).
    pub fn href(&self, page: &str) -> String {
        format!("/repos/{}/commits/{}/{page}", self.repo, self.sha)
    }
}

/// The repository and commit of a commit page; 404 when either is absent or not the user's to
/// see (the same answer, as in the API).
pub async fn load(
    req: &Req,
    session: &Session,
    name: &str,
    sha: &str,
) -> Result<(Repository, CommitView), PageError> {
    let pool = &req.app.db;
    let repo = repositories::find_visible(pool, Viewer::from(&session.actor), name)
        .await?
        .ok_or(PageError::NotFound)?;
    let commit = commits::find_by_sha(pool, repo.id, sha)
        .await?
        .ok_or(PageError::NotFound)?;
    Ok((repo, commit))
}

/// Whether the user is an administrator or a member of `repo` at `level` or above.
pub async fn has_level(
    req: &Req,
    session: &Session,
    repo: &Repository,
    level: Level,
) -> Result<bool, PageError> {
    if session.admin {
        return Ok(true);
    }
    let held = crate::memberships::level_of(&req.app.db, repo.id, session.user_id).await?;
    Ok(held >= Some(level))
}

/// [`has_level`] or 403.
pub async fn require_level(
    req: &Req,
    session: &Session,
    repo: &Repository,
    level: Level,
) -> Result<(), PageError> {
    if has_level(req, session, repo, level).await? {
        Ok(())
    } else {
        Err(PageError::Forbidden)
    }
}

/// A query string from pairs, blank values left out (for filter and paging links).
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            out.append_pair(k, v);
        }
    }
    let q = out.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}
