//! Browsing a commit's coverage files the way the coverage page does: filtered by path and by
//! coverage, sorted, paged (indexed by `coverage_files_info_percent` and the unique
//! `(coverage_info_id, file)` key, so a page costs the same with 5,000 files as with 50); and
//! one file found by its path.

use sqlx::PgPool;

use super::read::{FILE_COLUMNS, FileDetail, FileRow, file};
use crate::paging::{Page, Paged};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileOrder {
    /// Least covered first (the original's only order).
    #[default]
    LeastCovered,
    MostCovered,
    Path,
}

impl FileOrder {
    pub fn parse(word: &str) -> Option<FileOrder> {
        match word {
            "least" => Some(FileOrder::LeastCovered),
            "most" => Some(FileOrder::MostCovered),
            "path" => Some(FileOrder::Path),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FileOrder::LeastCovered => "least",
            FileOrder::MostCovered => "most",
            FileOrder::Path => "path",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            FileOrder::LeastCovered => "f.percent_covered, f.file",
            FileOrder::MostCovered => "f.percent_covered DESC, f.file",
            FileOrder::Path => "f.file",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct FileFilter {
    /// Paths containing this (case-insensitive, taken literally).
    pub path: Option<String>,
    /// Only files covered below this percentage.
    pub below: Option<f64>,
    pub order: FileOrder,
}

/// One page of the commit's completed coverage files matching `filter`.
pub async fn browse(
    pool: &PgPool,
    commit_id: i64,
    filter: &FileFilter,
    page: Page,
) -> Result<Paged<FileRow>, sqlx::Error> {
    let condition = "f.coverage_info_id = (SELECT id FROM coverage_infos \
                     WHERE commit_id = $1 AND status = 'completed') \
                     AND ($2::text IS NULL OR strpos(lower(f.file), lower($2::text)) > 0) \
                     AND ($3::float8 IS NULL OR f.percent_covered < $3::float8)";
    let path = filter
        .path
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM coverage_files f WHERE {condition}"
    )))
    .bind(commit_id)
    .bind(path)
    .bind(filter.below)
    .fetch_one(pool)
    .await?;
    let items = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {FILE_COLUMNS} FROM coverage_files f WHERE {condition} \
         ORDER BY {} LIMIT $4 OFFSET $5",
        filter.order.sql()
    )))
    .bind(commit_id)
    .bind(path)
    .bind(filter.below)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(pool)
    .await?;
    Ok(Paged::new(items, page, total))
}

/// The commit's coverage of the file at `path` (exact), with its lines.
pub async fn file_by_path(
    pool: &PgPool,
    commit_id: i64,
    path: &str,
) -> Result<Option<FileDetail>, sqlx::Error> {
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT f.id FROM coverage_files f JOIN coverage_infos i ON i.id = f.coverage_info_id \
         WHERE i.commit_id = $1 AND f.file = $2",
    )
    .bind(commit_id)
    .bind(path)
    .fetch_optional(pool)
    .await?;
    match id {
        Some(id) => file(pool, commit_id, id).await,
        None => Ok(None),
    }
}
