//! What the admin screens count: the sidebar counters and each repository's storage.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::paging::{Page, Paged};

/// The admin sidebar's numbers (the original's `sidebar_counters`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Counters {
    /// Service tokens.
    pub tokens: i64,
    /// Organisation secrets.
    pub secrets: i64,
    pub repositories: i64,
    pub users: i64,
}

pub async fn counters(pool: &PgPool) -> Result<Counters, sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM service_tokens) AS tokens, \
                (SELECT count(*) FROM secrets WHERE scope = 'organization') AS secrets, \
                (SELECT count(*) FROM repositories) AS repositories, \
                (SELECT count(*) FROM users) AS users",
    )
    .fetch_one(pool)
    .await
}

/// One repository as the admin list shows it, with what it stores.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RepositoryStorage {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// Bytes of the artifact cache.
    pub cache_size: i64,
    /// Bytes of the stored commit archives, summed from the commits (always current, unlike
    /// the original's column recomputed by a job).
    pub commits_size: i64,
    /// Member rows (local grants and GitHub's).
    pub accessible_by_count: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The bytes of `r`'s stored commit archives (a fixed SQL expression, never input).
const COMMITS_SIZE: &str =
    "COALESCE((SELECT sum(c.archive_size) FROM commits c WHERE c.repository_id = r.id), 0)::bigint";

/// What repositories store: bytes of commit archives and of the artifact cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Storage {
    pub commits_size: i64,
    pub cache_size: i64,
}

/// [`RepositoryStorage`]'s sizes for the repositories `ids` (a page of another list), by id.
pub async fn storage_of(pool: &PgPool, ids: &[i64]) -> Result<HashMap<i64, Storage>, sqlx::Error> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT r.id, {COMMITS_SIZE}, r.cache_size FROM repositories r WHERE r.id = ANY($1)"
    )))
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, commits_size, cache_size)| {
            let storage = Storage {
                commits_size,
                cache_size,
            };
            (id, storage)
        })
        .collect())
}

/// What every repository together stores.
pub async fn storage_total(pool: &PgPool) -> Result<Storage, sqlx::Error> {
    sqlx::query_as(
        "SELECT COALESCE((SELECT sum(archive_size) FROM commits), 0)::bigint AS commits_size, \
                COALESCE((SELECT sum(cache_size) FROM repositories), 0)::bigint AS cache_size",
    )
    .fetch_one(pool)
    .await
}

/// Every repository (names starting with `search`, case-insensitive, when given) by name, with
/// its storage. The original answered an empty page with a 500; here it is an empty list.
pub async fn repository_storage(
    pool: &PgPool,
    search: Option<&str>,
    page: Page,
) -> Result<Paged<RepositoryStorage>, sqlx::Error> {
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    // A prefix match with LIKE's wildcards taken literally.
    let filter = "($1::text IS NULL OR starts_with(lower(r.name::text), lower($1::text)))";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM repositories r WHERE {filter}"
    )))
    .bind(search)
    .fetch_one(pool)
    .await?;
    let items = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT r.id, r.name::text AS name, r.description, r.cache_size, \
                {COMMITS_SIZE} AS commits_size, \
                (SELECT count(*) FROM repository_members m \
                 WHERE m.repository_id = r.id) AS accessible_by_count, \
                r.created_at \
         FROM repositories r WHERE {filter} ORDER BY r.name, r.id LIMIT $2 OFFSET $3"
    )))
    .bind(search)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(pool)
    .await?;
    Ok(Paged::new(items, page, total))
}
