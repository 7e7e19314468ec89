//! The read side of coverage, as the API shows it: a commit with its coverage status, the
//! summary, the files (worst first, paged) and one file's line data. Percentages are stored as
//! floats; where the original truncated to an integer (files, the commit, badges) the rendering
//! here truncates too.

use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::{Block, FileCoverage, Line};
use crate::commits::CommitView;
use crate::paging::{Page, Paged, Paging};

/// A commit as the coverage routes show it: the commit's one view (`commits::CommitView`)
/// narrowed to what the original's coverage pages carried.
#[derive(Debug, Clone, Serialize)]
pub struct CoverageCommit {
    pub id: i64,
    pub sha: String,
    pub author_name: String,
    pub author_email: String,
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Truncated, as the original stored it.
    pub coverage_percent: Option<i64>,
    pub minimum_coverage: Option<i32>,
    /// `waiting` until an upload is applied.
    pub coverage_status: String,
}

impl From<CommitView> for CoverageCommit {
    fn from(c: CommitView) -> Self {
        CoverageCommit {
            id: c.id,
            sha: c.sha,
            author_name: c.author_name,
            author_email: c.author_email,
            message: c.message,
            created_at: c.created_at,
            coverage_percent: c.coverage_percent.map(|p| p.trunc() as i64),
            minimum_coverage: c.minimum_coverage,
            coverage_status: c.coverage_status,
        }
    }
}

/// A commit of the repository by sha (case-insensitive).
pub async fn find_commit(
    pool: &PgPool,
    repository_id: i64,
    sha: &str,
) -> Result<Option<CoverageCommit>, sqlx::Error> {
    Ok(crate::commits::find_by_sha(pool, repository_id, sha.trim())
        .await?
        .map(CoverageCommit::from))
}

/// One file in a list.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct FileRow {
    pub id: i64,
    pub file: String,
    /// Truncated to an integer, as the original.
    pub percent_covered: i64,
    pub lines_total: i32,
    pub lines_covered: i32,
    pub lines_missed: i32,
}

pub(super) const FILE_COLUMNS: &str = "f.id, f.file, trunc(f.percent_covered)::bigint AS percent_covered, \
                            f.lines_total, f.lines_covered, f.lines_missed";

/// The summary: totals once completed, and the ten least covered files.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub status: String,
    pub percent_covered: Option<f64>,
    pub lines_total: Option<i32>,
    pub lines_covered: Option<i32>,
    /// Why processing failed, when it did.
    pub error: Option<String>,
    pub least_covered: Vec<FileRow>,
}

/// status, percent_covered, lines_total, lines_covered, error
type InfoRow = (
    String,
    Option<f64>,
    Option<i32>,
    Option<i32>,
    Option<String>,
);

pub async fn summary(pool: &PgPool, commit_id: i64) -> Result<Summary, sqlx::Error> {
    let info: Option<InfoRow> = sqlx::query_as(
        "SELECT status, percent_covered, lines_total, lines_covered, error \
             FROM coverage_infos WHERE commit_id = $1",
    )
    .bind(commit_id)
    .fetch_optional(pool)
    .await?;
    let Some((status, percent, total, covered, error)) = info else {
        return Ok(Summary {
            status: "waiting".into(),
            percent_covered: None,
            lines_total: None,
            lines_covered: None,
            error: None,
            least_covered: Vec::new(),
        });
    };
    let completed = status == "completed";
    let least_covered = if completed {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {FILE_COLUMNS} FROM coverage_files f JOIN coverage_infos i \
             ON i.id = f.coverage_info_id WHERE i.commit_id = $1 \
             ORDER BY f.percent_covered, f.file LIMIT 10"
        )))
        .bind(commit_id)
        .fetch_all(pool)
        .await?
    } else {
        Vec::new()
    };
    Ok(Summary {
        status,
        percent_covered: percent.filter(|_| completed),
        lines_total: total.filter(|_| completed),
        lines_covered: covered.filter(|_| completed),
        error,
        least_covered,
    })
}

/// The commit's files, least covered first (then by path).
pub async fn files(
    pool: &PgPool,
    commit_id: i64,
    page: Page,
) -> Result<Paged<FileRow>, sqlx::Error> {
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM coverage_files f JOIN coverage_infos i ON i.id = f.coverage_info_id \
         WHERE i.commit_id = $1 AND i.status = 'completed'",
    )
    .bind(commit_id)
    .fetch_one(pool)
    .await?;
    let items = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {FILE_COLUMNS} FROM coverage_files f JOIN coverage_infos i \
         ON i.id = f.coverage_info_id WHERE i.commit_id = $1 AND i.status = 'completed' \
         ORDER BY f.percent_covered, f.file LIMIT $2 OFFSET $3"
    )))
    .bind(commit_id)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(pool)
    .await?;
    Ok(Paged {
        items,
        paging: Paging::new(page, total),
    })
}

/// One file's coverage with its lines.
#[derive(Debug, Clone, Serialize)]
pub struct FileDetail {
    #[serde(flatten)]
    pub row: FileRow,
    /// Runs of neutral / covered / missed / ignored lines (the UI's gutter).
    pub blocks: Vec<Block>,
    /// One entry per source line: null (not executable), "ignored", or the hit count.
    pub lines: Vec<Value>,
}

/// A file of the commit's coverage by its id; None when it is not this commit's.
pub async fn file(
    pool: &PgPool,
    commit_id: i64,
    file_id: i64,
) -> Result<Option<FileDetail>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        row: FileRow,
        raw_data: Vec<u8>,
    }
    let found: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {FILE_COLUMNS}, f.raw_data FROM coverage_files f JOIN coverage_infos i \
         ON i.id = f.coverage_info_id WHERE i.commit_id = $1 AND f.id = $2"
    )))
    .bind(commit_id)
    .bind(file_id)
    .fetch_optional(pool)
    .await?;
    let Some(found) = found else { return Ok(None) };
    // Written by us from valid line maps; an unreadable one shows as no lines.
    let coverage = FileCoverage::from_raw_bytes(&found.raw_data).unwrap_or_default();
    let lines = coverage
        .lines()
        .map(|line| match line {
            Line::Neutral => Value::Null,
            Line::Ignored => Value::from("ignored"),
            Line::Hits(n) => Value::from(n),
        })
        .collect();
    Ok(Some(FileDetail {
        row: found.row,
        blocks: coverage.blocks(),
        lines,
    }))
}
