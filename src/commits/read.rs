//! The read side of commits: one commit with its check and coverage states, the commits a
//! branch has pointed at (newest push first), and recording those pushes.

use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use crate::paging::{Page, Paged, Paging};

/// A commit as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CommitView {
    pub id: i64,
    pub sha: String,
    pub author_name: String,
    pub author_email: String,
    pub message: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub committed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Fetching the commit: queued, in_progress, completed or errored.
    pub ingest_status: String,
    /// Active issues; null until checks have run.
    pub issues_count: Option<i32>,
    pub coverage_percent: Option<f64>,
    pub minimum_coverage: Option<i32>,
    /// The check set's status, `waiting` when there is none yet.
    pub checks_status: String,
    /// The coverage report's status, `waiting` when there is none yet.
    pub coverage_status: String,
    /// `green`, `red` or `yellow`, from the two statuses (see [`condensed_status`]).
    pub condensed_status: &'static str,
    /// The local user with the author's verified e-mail, if any.
    pub user: Option<CommitUser>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommitUser {
    pub login: String,
    pub avatar_url: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    sha: String,
    author_name: String,
    author_email: String,
    message: String,
    committed_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    ingest_status: String,
    issues_count: Option<i32>,
    coverage_percent: Option<f64>,
    minimum_coverage: Option<i32>,
    checks_status: String,
    coverage_status: String,
    user_login: Option<String>,
    user_avatar_url: Option<String>,
}

impl From<Row> for CommitView {
    fn from(r: Row) -> CommitView {
        CommitView {
            condensed_status: condensed_status(&r.checks_status, &r.coverage_status),
            user: r.user_login.map(|login| CommitUser {
                login,
                avatar_url: r.user_avatar_url,
            }),
            id: r.id,
            sha: r.sha,
            author_name: r.author_name,
            author_email: r.author_email,
            message: r.message,
            committed_at: r.committed_at,
            created_at: r.created_at,
            ingest_status: r.ingest_status,
            issues_count: r.issues_count,
            coverage_percent: r.coverage_percent,
            minimum_coverage: r.minimum_coverage,
            checks_status: r.checks_status,
            coverage_status: r.coverage_status,
        }
    }
}

/// The original's rule: green when checks and coverage both completed, red when either errored,
/// yellow otherwise (so a commit without coverage is never green).
pub fn condensed_status(checks: &str, coverage: &str) -> &'static str {
    if checks == "errored" || coverage == "errored" {
        "red"
    } else if checks == "completed" && coverage == "completed" {
        "green"
    } else {
        "yellow"
    }
}

const SELECT: &str = "SELECT c.id, c.sha::text AS sha, c.author_name, c.author_email::text AS author_email, \
     c.message, c.committed_at, c.created_at, c.ingest_status, c.issues_count, c.coverage_percent, \
     c.minimum_coverage, COALESCE(cs.status, 'waiting') AS checks_status, \
     COALESCE(ci.status, 'waiting') AS coverage_status, \
     u.login::text AS user_login, u.avatar_url AS user_avatar_url \
     FROM commits c \
     LEFT JOIN check_sets cs ON cs.commit_id = c.id \
     LEFT JOIN coverage_infos ci ON ci.commit_id = c.id \
     LEFT JOIN users u ON u.id = c.user_id";

/// A repository's commit by its full sha (case-insensitive).
pub async fn find_by_sha(
    pool: &PgPool,
    repository_id: i64,
    sha: &str,
) -> Result<Option<CommitView>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE c.repository_id = $1 AND c.sha = $2::citext"
    )))
    .bind(repository_id)
    .bind(sha)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(CommitView::from))
}

/// One commit by id.
pub async fn view(pool: &PgPool, commit_id: i64) -> Result<Option<CommitView>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE c.id = $1")))
        .bind(commit_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(CommitView::from))
}

/// The commits pushed to a branch, most recently pushed first.
pub async fn list_for_branch(
    pool: &PgPool,
    branch_id: i64,
    page: Page,
) -> Result<Paged<CommitView>, sqlx::Error> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM branch_pushes WHERE branch_id = $1")
        .bind(branch_id)
        .fetch_one(pool)
        .await?;
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} JOIN branch_pushes p ON p.commit_id = c.id WHERE p.branch_id = $1 \
         ORDER BY p.pushed_at DESC, p.id DESC LIMIT $2 OFFSET $3"
    )))
    .bind(branch_id)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(pool)
    .await?;
    Ok(Paged {
        items: rows.into_iter().map(CommitView::from).collect(),
        paging: Paging::new(page, total),
    })
}

/// Remembers that `branch_id` now points at `commit_id` (a repeat moves it to the top).
pub(super) async fn record_push(
    tx: &mut Transaction<'_, Postgres>,
    repository_id: i64,
    branch_id: i64,
    commit_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO branch_pushes (repository_id, branch_id, commit_id) VALUES ($1, $2, $3) \
         ON CONFLICT (branch_id, commit_id) DO UPDATE SET pushed_at = now()",
    )
    .bind(repository_id)
    .bind(branch_id)
    .bind(commit_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::condensed_status;

    #[test]
    fn condensed_status_follows_the_original() {
        assert_eq!(condensed_status("completed", "completed"), "green");
        assert_eq!(condensed_status("errored", "completed"), "red");
        assert_eq!(condensed_status("completed", "errored"), "red");
        assert_eq!(condensed_status("completed", "waiting"), "yellow");
        assert_eq!(condensed_status("failure", "completed"), "yellow");
    }
}
