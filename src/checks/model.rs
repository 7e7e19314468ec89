//! The rows: a commit's check set and its checks, and their states.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckSetStatus {
    Waiting,
    Queued,
    InProgress,
    Completed,
    Errored,
    NotConfigured,
    Canceled,
    Failure,
}

impl CheckSetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckSetStatus::Waiting => "waiting",
            CheckSetStatus::Queued => "queued",
            CheckSetStatus::InProgress => "in_progress",
            CheckSetStatus::Completed => "completed",
            CheckSetStatus::Errored => "errored",
            CheckSetStatus::NotConfigured => "not_configured",
            CheckSetStatus::Canceled => "canceled",
            CheckSetStatus::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> CheckSetStatus {
        match s {
            "queued" => CheckSetStatus::Queued,
            "in_progress" => CheckSetStatus::InProgress,
            "completed" => CheckSetStatus::Completed,
            "errored" => CheckSetStatus::Errored,
            "not_configured" => CheckSetStatus::NotConfigured,
            "canceled" => CheckSetStatus::Canceled,
            "failure" => CheckSetStatus::Failure,
            _ => CheckSetStatus::Waiting,
        }
    }

    /// No worker will touch it again (until a re-run).
    pub fn is_finished(self) -> bool {
        !matches!(
            self,
            CheckSetStatus::Waiting | CheckSetStatus::Queued | CheckSetStatus::InProgress
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Waiting,
    InProgress,
    Completed,
    Errored,
    Canceled,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Waiting => "waiting",
            CheckStatus::InProgress => "in_progress",
            CheckStatus::Completed => "completed",
            CheckStatus::Errored => "errored",
            CheckStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> CheckStatus {
        match s {
            "in_progress" => CheckStatus::InProgress,
            "completed" => CheckStatus::Completed,
            "errored" => CheckStatus::Errored,
            "canceled" => CheckStatus::Canceled,
            _ => CheckStatus::Waiting,
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            CheckStatus::Completed | CheckStatus::Errored | CheckStatus::Canceled
        )
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CheckSet {
    pub id: i64,
    pub commit_id: i64,
    pub status: String,
    pub error_kind: Option<String>,
    pub error_extra: Option<String>,
    pub canceling: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deadline_at: Option<OffsetDateTime>,
    #[serde(skip)]
    pub job_id: Option<uuid::Uuid>,
}

impl CheckSet {
    pub fn status(&self) -> CheckSetStatus {
        CheckSetStatus::parse(&self.status)
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Check {
    pub id: i64,
    pub plugin_name: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_output: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl Check {
    pub fn status(&self) -> CheckStatus {
        CheckStatus::parse(&self.status)
    }
}

const SET_COLUMNS: &str = "id, commit_id, status, error_kind, error_extra, canceling, started_at, \
    finished_at, deadline_at, job_id";

pub async fn find_set_for_commit(
    db: &PgPool,
    commit_id: i64,
) -> Result<Option<CheckSet>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SET_COLUMNS} FROM check_sets WHERE commit_id = $1"
    )))
    .bind(commit_id)
    .fetch_optional(db)
    .await
}

pub async fn find_set(db: &PgPool, id: i64) -> Result<Option<CheckSet>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SET_COLUMNS} FROM check_sets WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A set's checks, by plugin name.
pub async fn list_checks<'e>(
    db: impl sqlx::PgExecutor<'e>,
    check_set_id: i64,
) -> Result<Vec<Check>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, plugin_name::text AS plugin_name, status, error_output, started_at, \
         finished_at FROM checks WHERE check_set_id = $1 ORDER BY plugin_name",
    )
    .bind(check_set_id)
    .fetch_all(db)
    .await
}

/// Records a check's new state; a finished check is never changed again by a late writer.
pub async fn update_check(
    db: &PgPool,
    check_id: i64,
    status: CheckStatus,
    error_output: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE checks SET status = $2, error_output = $3, updated_at = now(), \
         started_at = CASE WHEN $2 = 'in_progress' THEN now() ELSE COALESCE(started_at, now()) END, \
         finished_at = CASE WHEN $2 IN ('completed', 'errored', 'canceled') THEN now() END \
         WHERE id = $1 AND status NOT IN ('completed', 'errored', 'canceled')",
    )
    .bind(check_id)
    .bind(status.as_str())
    .bind(error_output)
    .execute(db)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// The repository whose check set runs under `job_id` (the id its plugins get as
/// `COCOV_JOB_IDENTIFIER`), while that set is queued or running and not being canceled: the
/// cache service's credential, void the moment the set ends, is canceled or passes its deadline.
pub async fn running_job_repository(
    db: &sqlx::PgPool,
    job_id: uuid::Uuid,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT c.repository_id FROM check_sets s JOIN commits c ON c.id = s.commit_id \
         WHERE s.job_id = $1 AND s.status IN ('queued', 'in_progress') AND NOT s.canceling \
         AND (s.deadline_at IS NULL OR s.deadline_at > now())",
    )
    .bind(job_id)
    .fetch_optional(db)
    .await
}
