//! Branches as readers see them: the names of a repository's branches, and one branch with its
//! numbers (active issues and coverage of its head) and its head commit. Branch names are citext,
//! so lookups are case-insensitive; they may contain `/`.

use serde::Serialize;
use sqlx::PgPool;

use crate::commits::{self, CommitView};
use crate::issues::{self, IssueKind};
use crate::repositories::Repository;

/// A branch as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BranchView {
    pub id: i64,
    pub name: String,
    pub default: bool,
    /// The head commit's total coverage; null until known.
    pub coverage: Option<f64>,
    /// The head commit's active issues; null until checks have run.
    pub issues: Option<i32>,
    /// `gray` without a head commit, else the head's condensed status.
    pub condensed_status: &'static str,
    pub head: Option<CommitView>,
}

/// The branch names, the default branch first and the others in ascending order.
pub async fn names(pool: &PgPool, repository: &Repository) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT name::text FROM branches WHERE repository_id = $1 \
         ORDER BY (name = $2::citext) DESC, name",
    )
    .bind(repository.id)
    .bind(&repository.default_branch)
    .fetch_all(pool)
    .await
}

/// The id of the repository's branch called `name`.
pub async fn find_id(
    pool: &PgPool,
    repository_id: i64,
    name: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM branches WHERE repository_id = $1 AND name = $2::citext")
        .bind(repository_id)
        .bind(name)
        .fetch_optional(pool)
        .await
}

#[derive(sqlx::FromRow)]
struct BranchRow {
    id: i64,
    name: String,
    coverage: Option<f64>,
    issues: Option<i32>,
    head_commit_id: Option<i64>,
}

/// One branch with its head commit.
pub async fn find(
    pool: &PgPool,
    repository: &Repository,
    name: &str,
) -> Result<Option<BranchView>, sqlx::Error> {
    let row: Option<BranchRow> = sqlx::query_as(
        "SELECT id, name::text AS name, coverage, issues, head_commit_id FROM branches \
         WHERE repository_id = $1 AND name = $2::citext",
    )
    .bind(repository.id)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    let Some(BranchRow {
        id,
        name,
        coverage,
        issues,
        head_commit_id: head_id,
    }) = row
    else {
        return Ok(None);
    };
    let head = match head_id {
        Some(commit_id) => commits::view(pool, commit_id).await?,
        None => None,
    };
    Ok(Some(BranchView {
        default: name.eq_ignore_ascii_case(&repository.default_branch),
        id,
        name,
        coverage,
        issues,
        condensed_status: head.as_ref().map_or("gray", |h| h.condensed_status),
        head,
    }))
}

/// Kinds with their counts in a fixed order; serialized as a JSON object whose keys keep that
/// order (the original's `top_issues` answer is ordered by count).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KindCounts(pub Vec<(IssueKind, i64)>);

impl Serialize for KindCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (kind, count) in &self.0 {
            map.serialize_entry(kind.as_str(), count)?;
        }
        map.end()
    }
}

/// The active issues of the branch's head commit per kind, most first (ties in kind order),
/// kinds without any left out; empty without a head, `None` for an unknown branch (the
/// original answered that with a 500).
pub async fn top_issues(
    pool: &PgPool,
    repository: &Repository,
    name: &str,
) -> Result<Option<KindCounts>, sqlx::Error> {
    let head: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT head_commit_id FROM branches WHERE repository_id = $1 AND name = $2::citext",
    )
    .bind(repository.id)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    let Some(head) = head else {
        return Ok(None);
    };
    let Some(commit_id) = head else {
        return Ok(Some(KindCounts::default()));
    };
    let mut counts: Vec<(IssueKind, i64)> = issues::counts_by_kind(pool, commit_id)
        .await?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    // Stable: equal counts keep the kinds' own order.
    counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    Ok(Some(KindCounts(counts)))
}
