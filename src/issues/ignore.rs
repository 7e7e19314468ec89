//! Ignoring issues: once (this issue of this commit) or for good (a rule on the uid, applied to
//! every later commit of the repository), each with who, when and why.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::Issue;
use super::query::{ISSUE_COLUMNS, ISSUE_JOINS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreMode {
    /// This issue only (the original's `ephemeral`).
    Once,
    /// Every issue with this uid in the repository, now and later (`permanent`).
    ForGood,
}

impl IgnoreMode {
    pub fn parse(s: &str) -> Option<IgnoreMode> {
        match s {
            "ephemeral" | "once" => Some(IgnoreMode::Once),
            "permanent" | "for_good" => Some(IgnoreMode::ForGood),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("issue not found")]
    NotFound,
    // Not transparent: the sqlx error stays in the cause chain, where outages are recognised.
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct IgnoreRule {
    pub id: i64,
    pub uid: String,
    pub check_source: String,
    pub kind: String,
    pub file: String,
    pub line_start: i32,
    pub line_end: i32,
    pub message: String,
    pub reason: Option<String>,
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

async fn load(db: &PgPool, commit_id: i64, issue_id: i64) -> Result<Issue, IgnoreError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ISSUE_COLUMNS} {ISSUE_JOINS} WHERE i.id = $1 AND i.commit_id = $2"
    )))
    .bind(issue_id)
    .bind(commit_id)
    .fetch_optional(db)
    .await?
    .ok_or(IgnoreError::NotFound)
}

/// Ignores an issue of a commit; an already ignored one is returned unchanged. For good, the
/// repository's rule for the uid is created (or the existing one reused with its own author and
/// reason) and every active issue with that uid in the repository is ignored by it.
pub async fn ignore(
    db: &PgPool,
    repository_id: i64,
    commit_id: i64,
    issue_id: i64,
    mode: IgnoreMode,
    user_id: i64,
    reason: Option<&str>,
) -> Result<Issue, IgnoreError> {
    let issue = load(db, commit_id, issue_id).await?;
    if issue.ignored_at.is_some() {
        return Ok(issue);
    }
    let mut tx = db.begin().await?;
    match mode {
        IgnoreMode::Once => {
            sqlx::query(
                "UPDATE issues SET ignored_at = now(), ignore_source = 'user', \
                 ignore_user_id = $2, ignore_user_reason = $3, updated_at = now() \
                 WHERE id = $1 AND ignored_at IS NULL",
            )
            .bind(issue_id)
            .bind(user_id)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        }
        IgnoreMode::ForGood => {
            let rule_id: i64 = sqlx::query_scalar(
                "WITH created AS ( \
                   INSERT INTO issue_ignore_rules (repository_id, user_id, reason, check_source, \
                          file, kind, line_start, line_end, message, uid) \
                   SELECT $1, $2, $3, check_source, file, kind, line_start, line_end, message, uid \
                   FROM issues WHERE id = $4 \
                   ON CONFLICT (repository_id, uid) DO NOTHING RETURNING id) \
                 SELECT id FROM created \
                 UNION ALL SELECT r.id FROM issue_ignore_rules r JOIN issues i ON i.uid = r.uid \
                 WHERE r.repository_id = $1 AND i.id = $4 LIMIT 1",
            )
            .bind(repository_id)
            .bind(user_id)
            .bind(reason)
            .bind(issue_id)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE issues i SET ignored_at = now(), ignore_source = 'rule', \
                 ignore_rule_id = $2, updated_at = now() \
                 FROM commits c, issue_ignore_rules r \
                 WHERE c.id = i.commit_id AND c.repository_id = $1 AND r.id = $2 \
                   AND i.uid = r.uid AND i.ignored_at IS NULL",
            )
            .bind(repository_id)
            .bind(rule_id)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    load(db, commit_id, issue_id).await
}

/// Makes an issue active again. A rule that ignored it stays (delete it to stop it applying to
/// later commits).
pub async fn unignore(db: &PgPool, commit_id: i64, issue_id: i64) -> Result<Issue, IgnoreError> {
    load(db, commit_id, issue_id).await?;
    sqlx::query(
        "UPDATE issues SET ignored_at = NULL, ignore_source = NULL, ignore_user_id = NULL, \
         ignore_rule_id = NULL, ignore_user_reason = NULL, updated_at = now() \
         WHERE id = $1 AND commit_id = $2",
    )
    .bind(issue_id)
    .bind(commit_id)
    .execute(db)
    .await?;
    load(db, commit_id, issue_id).await
}

pub async fn list_rules(db: &PgPool, repository_id: i64) -> Result<Vec<IgnoreRule>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.uid::text AS uid, r.check_source::text AS check_source, r.kind, r.file, \
         r.line_start, r.line_end, r.message, r.reason, u.login::text AS created_by, r.created_at \
         FROM issue_ignore_rules r LEFT JOIN users u ON u.id = r.user_id \
         WHERE r.repository_id = $1 ORDER BY r.id",
    )
    .bind(repository_id)
    .fetch_all(db)
    .await
}

/// Deletes a rule: later commits report the uid again. Issues it already ignored stay ignored.
pub async fn delete_rule(
    db: &PgPool,
    repository_id: i64,
    rule_id: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM issue_ignore_rules WHERE id = $1 AND repository_id = $2")
        .bind(rule_id)
        .bind(repository_id)
        .execute(db)
        .await?;
    Ok(result.rows_affected() > 0)
}
