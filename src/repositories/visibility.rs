//! Who sees which repository, and the read side built on it (the list with search, one
//! repository with its default branch's numbers).
//!
//! Administrators and service tokens see every repository. Other users see:
//! * a GitHub repository when they are among its members (synced from GitHub collaborators, by
//!   GitHub user id, or a local-user membership);
//! * a standalone repository (registered by git URL, no GitHub) when they are one of its local
//!   members (`memberships`); one without members is seen by administrators only, so nothing is
//!   shown to a user before someone decided they may see it.
//!
//! A repository the viewer may not see is answered exactly like one that does not exist.

use serde::Serialize;
use sqlx::PgPool;

use super::Repository;
use crate::auth::Actor;
use crate::paging::{Page, Paged, Paging};

/// Whose view of the repositories a query takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// Administrators and service tokens.
    Everything,
    /// A user who is not an administrator (the local user id).
    User(i64),
}

impl From<&Actor> for Viewer {
    fn from(actor: &Actor) -> Viewer {
        match actor {
            Actor::User {
                id, admin: false, ..
            } => Viewer::User(*id),
            _ => Viewer::Everything,
        }
    }
}

impl Viewer {
    /// The user id bound as the visibility parameter: NULL means everything.
    fn bind(self) -> Option<i64> {
        match self {
            Viewer::Everything => None,
            Viewer::User(id) => Some(id),
        }
    }
}

/// The SQL condition "repository `r` is visible to the user bound at `$param`" (NULL: all).
pub fn visible_condition(param: u8) -> String {
    format!(
        "(${param}::bigint IS NULL \
          OR EXISTS (SELECT 1 FROM repository_members m WHERE m.repository_id = r.id \
                     AND (m.user_id = ${param}::bigint \
                          OR m.github_member_id = (SELECT github_id FROM users WHERE id = ${param}::bigint) \
                          OR m.oidc_group IN (SELECT group_name FROM user_oidc_groups \
                                              WHERE user_id = ${param}::bigint))))"
    )
}

const COLUMNS: &str = "r.id, r.name::text AS name, r.description, r.default_branch::text AS default_branch, \
                       r.github_id, r.git_url, r.created_at";

/// A repository with its default branch's numbers (NULL until known, or without that branch).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RepositorySummary {
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub repository: Repository,
    pub coverage: Option<f64>,
    pub issues: Option<i32>,
}

/// The repository called `name` (case-insensitive) if `viewer` may see it.
pub async fn find_visible(
    pool: &PgPool,
    viewer: Viewer,
    name: &str,
) -> Result<Option<Repository>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM repositories r WHERE r.name = $1::citext AND {}",
        visible_condition(2)
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .bind(viewer.bind())
        .fetch_optional(pool)
        .await
}

/// One repository with its default branch's numbers.
pub async fn summary(
    pool: &PgPool,
    repository: &Repository,
) -> Result<RepositorySummary, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, b.coverage, b.issues FROM repositories r \
         LEFT JOIN branches b ON b.repository_id = r.id AND b.name = r.default_branch \
         WHERE r.id = $1"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(repository.id)
        .fetch_one(pool)
        .await
}

/// The repositories `viewer` sees, by name; with `search`, only names containing it
/// (case-insensitive), the exact name first, then names starting with it, then shorter names.
pub async fn list_visible(
    pool: &PgPool,
    viewer: Viewer,
    search: Option<&str>,
    page: Page,
) -> Result<Paged<RepositorySummary>, sqlx::Error> {
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    let filter = format!(
        "{} AND ($2::text IS NULL OR strpos(lower(r.name::text), lower($2::text)) > 0)",
        visible_condition(1)
    );
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM repositories r WHERE {filter}"
    )))
    .bind(viewer.bind())
    .bind(search)
    .fetch_one(pool)
    .await?;
    let sql = format!(
        "SELECT {COLUMNS}, b.coverage, b.issues FROM repositories r \
         LEFT JOIN branches b ON b.repository_id = r.id AND b.name = r.default_branch \
         WHERE {filter} \
         ORDER BY ($2::text IS NOT NULL AND r.name = $2::citext) DESC, \
                  ($2::text IS NOT NULL AND strpos(lower(r.name::text), lower($2::text)) = 1) DESC, \
                  CASE WHEN $2::text IS NULL THEN 0 ELSE length(r.name::text) END, \
                  r.name, r.id \
         LIMIT $3 OFFSET $4"
    );
    let items = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(viewer.bind())
        .bind(search)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(pool)
        .await?;
    Ok(Paged {
        items,
        paging: Paging::new(page, total),
    })
}
