//! Reading a commit's issues: the filtered, paged list and the counts the API and the `cocov`
//! status show.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::IssueKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueState {
    #[default]
    Active,
    Ignored,
    All,
}

impl IssueState {
    pub fn parse(s: &str) -> Option<IssueState> {
        match s {
            "active" => Some(IssueState::Active),
            "ignored" => Some(IssueState::Ignored),
            "all" => Some(IssueState::All),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct IssueFilter {
    /// Exact plugin name (`check_source`).
    pub source: Option<String>,
    pub kind: Option<IssueKind>,
    /// Exact repository-relative path.
    pub file: Option<String>,
    pub state: IssueState,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Issue {
    pub id: i64,
    pub kind: String,
    pub file: String,
    pub uid: String,
    pub line_start: i32,
    pub line_end: i32,
    pub message: String,
    pub check_source: String,
    #[serde(skip)]
    pub ignored_at: Option<OffsetDateTime>,
    #[serde(skip)]
    pub ignore_source: Option<String>,
    #[serde(skip)]
    pub ignored_by: Option<String>,
    #[serde(skip)]
    pub ignored_by_avatar: Option<String>,
    #[serde(skip)]
    pub ignore_reason: Option<String>,
}

pub(super) const ISSUE_COLUMNS: &str = "i.id, i.kind, i.file, i.uid::text AS uid, i.line_start, \
    i.line_end, i.message, i.check_source::text AS check_source, i.ignored_at, i.ignore_source, \
    COALESCE(u.login, ru.login)::text AS ignored_by, COALESCE(u.avatar_url, ru.avatar_url) AS ignored_by_avatar, \
    COALESCE(i.ignore_user_reason, r.reason) AS ignore_reason";

pub(super) const ISSUE_JOINS: &str = "FROM issues i \
    LEFT JOIN users u ON u.id = i.ignore_user_id \
    LEFT JOIN issue_ignore_rules r ON r.id = i.ignore_rule_id \
    LEFT JOIN users ru ON ru.id = r.user_id";

/// One page of a commit's issues (ordered by file, line, id) and the total matching the filter.
pub async fn list(
    db: &PgPool,
    commit_id: i64,
    filter: &IssueFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Issue>, i64), sqlx::Error> {
    let state = match filter.state {
        IssueState::Active => "i.ignored_at IS NULL",
        IssueState::Ignored => "i.ignored_at IS NOT NULL",
        IssueState::All => "true",
    };
    let condition = format!(
        "i.commit_id = $1 AND {state} \
         AND ($2::text IS NULL OR i.check_source = $2::citext) \
         AND ($3::text IS NULL OR i.kind = $3) \
         AND ($4::text IS NULL OR i.file = $4)"
    );
    let kind = filter.kind.map(|k| k.as_str());
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM issues i WHERE {condition}"
    )))
    .bind(commit_id)
    .bind(&filter.source)
    .bind(kind)
    .bind(&filter.file)
    .fetch_one(db)
    .await?;
    let issues = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ISSUE_COLUMNS} {ISSUE_JOINS} WHERE {condition} \
         ORDER BY i.file, i.line_start, i.id OFFSET $5 LIMIT $6"
    )))
    .bind(commit_id)
    .bind(&filter.source)
    .bind(kind)
    .bind(&filter.file)
    .bind(offset)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok((issues, total))
}

/// Active issues of a commit: the number its `cocov` status and badge show.
pub async fn count_active<'e>(
    db: impl sqlx::PgExecutor<'e>,
    commit_id: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM issues WHERE commit_id = $1 AND ignored_at IS NULL")
        .bind(commit_id)
        .fetch_one(db)
        .await
}

/// Active issues per kind, every kind present (0 when none), in enum order.
pub async fn counts_by_kind(
    db: &PgPool,
    commit_id: i64,
) -> Result<Vec<(IssueKind, i64)>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, count(*) FROM issues WHERE commit_id = $1 AND ignored_at IS NULL \
         GROUP BY kind",
    )
    .bind(commit_id)
    .fetch_all(db)
    .await?;
    let found: BTreeMap<String, i64> = rows.into_iter().collect();
    Ok(IssueKind::ALL
        .into_iter()
        .map(|k| (k, found.get(k.as_str()).copied().unwrap_or(0)))
        .collect())
}

/// Active issues per plugin, for every check of the commit (0 when none).
pub async fn counts_by_source(
    db: &PgPool,
    commit_id: i64,
) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT c.plugin_name::text, count(i.id) \
         FROM check_sets s JOIN checks c ON c.check_set_id = s.id \
         LEFT JOIN issues i ON i.commit_id = s.commit_id AND i.check_source = c.plugin_name \
                           AND i.ignored_at IS NULL \
         WHERE s.commit_id = $1 GROUP BY c.plugin_name",
    )
    .bind(commit_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Every issue per plugin, ignored ones included (the checks view), for plugins with any.
pub async fn counts_by_source_all(
    db: &PgPool,
    commit_id: i64,
) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT check_source::text, count(*) FROM issues WHERE commit_id = $1 GROUP BY 1",
    )
    .bind(commit_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Active and ignored issues of a commit.
pub async fn counts_by_state(db: &PgPool, commit_id: i64) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE ignored_at IS NULL), \
                count(*) FILTER (WHERE ignored_at IS NOT NULL) \
         FROM issues WHERE commit_id = $1",
    )
    .bind(commit_id)
    .fetch_one(db)
    .await
}
