//! The GitHub organisation's repository list: a copy of `GET /orgs/{org}/repos`
//! kept in the cache database (it may be dropped at any time and is then fetched again), read
//! a page at a time with each repository marked present or absent on this instance.
//!
//! Keys (through [`Kv::key`](crate::kv::Kv::key), cache database):
//!
//! - `github_org_repos:list`: `{"updated_at", "items": [{id, name, description, created_at,
//!   pushed_at}]}` sorted by name, one value so a reader never sees the items of one refresh
//!   with the time of another (the original kept four keys);
//! - `github_org_repos:updating`: present while a refresh is queued or running. It expires
//!   after [`UPDATING_TTL`] and every attempt of the refresh job renews it, so a refresh whose
//!   worker died stops counting as running (the original's status stayed `updating` until
//!   someone asked for another refresh);
//! - `github_org_repos:failure`: why the last refresh was given up, for [`FAILURE_TTL`]; a list
//!   that was never fetched is then reported failed instead of loading forever, and read
//!   again after that time or at the next requested refresh.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::refresh::RefreshJob;
use super::similarity;
use crate::app::App;
use crate::kv::Db;
use crate::paging::{Page, Paged};

/// Longer than a refresh of a large organisation takes (ten pages of a hundred per second).
pub const UPDATING_TTL: Duration = Duration::from_secs(600);
/// How long a failure is shown before the list is fetched again by itself.
pub const FAILURE_TTL: Duration = Duration::from_secs(600);
/// The original's page size, and its cap on search results.
pub const PER_PAGE: u32 = 50;

const LIST: &str = "github_org_repos:list";
const UPDATING: &str = "github_org_repos:updating";
const FAILURE: &str = "github_org_repos:failure";

/// One repository of the organisation as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRepository {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub created_at: Option<String>,
    pub pushed_at: Option<String>,
}

/// The stored copy of the list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrgList {
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub items: Vec<OrgRepository>,
}

/// What is known of the list now.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The last list fetched, if any.
    pub list: Option<OrgList>,
    /// A refresh is queued or running.
    pub updating: bool,
    /// Why the last refresh was given up (until it expires or another refresh is requested).
    pub failure: Option<String>,
}

/// A row of a page: the repository and whether this instance already has it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub repository: OrgRepository,
    pub present: bool,
}

/// The list as stored, starting a refresh when there is none (and none is running or just
/// failed): the first visitor's read is what fetches it.
pub async fn snapshot(app: &App) -> Result<Snapshot, anyhow::Error> {
    let kv = &app.kv;
    let (list, updating, failure): (Option<String>, Option<String>, Option<String>) =
        redis::cmd("MGET")
            .arg(kv.key(LIST))
            .arg(kv.key(UPDATING))
            .arg(kv.key(FAILURE))
            .query_async(&mut kv.conn(Db::Cache))
            .await?;
    // A value that no longer parses (an older layout) is a miss, not an error.
    let list = list.and_then(|json| serde_json::from_str::<OrgList>(&json).ok());
    let mut snapshot = Snapshot {
        updating: updating.is_some(),
        list,
        failure,
    };
    if snapshot.list.is_none() && !snapshot.updating && snapshot.failure.is_none() {
        start_refresh(app).await?;
        snapshot.updating = true;
    }
    Ok(snapshot)
}

/// Asks for a fresh copy (the "Refresh now" button): forgets a failure and queues the job
/// unless one is already queued or running.
pub async fn request_refresh(app: &App) -> Result<(), anyhow::Error> {
    let _: () = redis::cmd("DEL")
        .arg(app.kv.key(FAILURE))
        .query_async(&mut app.kv.conn(Db::Cache))
        .await?;
    start_refresh(app).await
}

/// Queues the refresh job if the `updating` marker was absent. The marker is what makes one
/// refresh serve every request meanwhile; the job deletes it when it stores the list or is
/// given up, so a request after that always queues a new one.
async fn start_refresh(app: &App) -> Result<(), anyhow::Error> {
    if !mark_updating(app, true).await? {
        return Ok(());
    }
    if let Err(e) = RefreshJob::default().enqueue_on(app).await {
        // No job would ever clear the marker before it expires.
        clear_updating(app).await?;
        return Err(e);
    }
    Ok(())
}

/// Sets the `updating` marker for [`UPDATING_TTL`]; with `only_if_absent`, says whether this
/// call set it (the caller then queues the refresh).
pub(super) async fn mark_updating(app: &App, only_if_absent: bool) -> Result<bool, anyhow::Error> {
    let mut cmd = redis::cmd("SET");
    cmd.arg(app.kv.key(UPDATING)).arg("1");
    if only_if_absent {
        cmd.arg("NX");
    }
    cmd.arg("EX").arg(UPDATING_TTL.as_secs());
    let set: Option<String> = cmd.query_async(&mut app.kv.conn(Db::Cache)).await?;
    Ok(set.is_some())
}

async fn clear_updating(app: &App) -> Result<(), anyhow::Error> {
    let _: () = redis::cmd("DEL")
        .arg(app.kv.key(UPDATING))
        .query_async(&mut app.kv.conn(Db::Cache))
        .await?;
    Ok(())
}

/// Stores a fetched list (sorted by name) and ends the refresh.
pub(super) async fn store(app: &App, mut items: Vec<OrgRepository>) -> Result<(), anyhow::Error> {
    items.sort_by_key(|r| r.name.to_lowercase());
    let list = OrgList {
        updated_at: OffsetDateTime::now_utc(),
        items,
    };
    let _: () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(app.kv.key(LIST))
        .arg(serde_json::to_string(&list)?)
        .cmd("DEL")
        .arg(app.kv.key(UPDATING))
        .arg(app.kv.key(FAILURE))
        .query_async(&mut app.kv.conn(Db::Cache))
        .await?;
    Ok(())
}

/// Ends a refresh that was given up, keeping why for [`FAILURE_TTL`].
pub(super) async fn record_failure(app: &App, reason: &str) -> Result<(), anyhow::Error> {
    let _: () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(app.kv.key(FAILURE))
        .arg(reason)
        .arg("EX")
        .arg(FAILURE_TTL.as_secs())
        .cmd("DEL")
        .arg(app.kv.key(UPDATING))
        .query_async(&mut app.kv.conn(Db::Cache))
        .await?;
    Ok(())
}

/// One page of `list`, or of the names most similar to `search` (the best [`PER_PAGE`] at or
/// above [`similarity::THRESHOLD`], best first, as the original; the term is cut at
/// [`similarity::MAX_TERM_CHARS`]), each marked present when a repository of this instance has
/// its GitHub id.
pub async fn page(
    pool: &sqlx::PgPool,
    list: &OrgList,
    search: Option<&str>,
    page: Page,
) -> Result<Paged<Entry>, sqlx::Error> {
    let matches: Vec<&OrgRepository> = match search.map(str::trim).filter(|s| !s.is_empty()) {
        None => list.items.iter().collect(),
        Some(term) => {
            let term = similarity::Term::new(term);
            let mut scored: Vec<(f64, &OrgRepository)> = list
                .items
                .iter()
                .map(|r| (term.score(&r.name), r))
                .filter(|(score, _)| *score >= similarity::THRESHOLD)
                .collect();
            // Stable: equal scores stay in name order.
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            scored
                .into_iter()
                .take(PER_PAGE as usize)
                .map(|(_, r)| r)
                .collect()
        }
    };
    let total = matches.len() as i64;
    let on_page: Vec<&OrgRepository> = matches
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
        .collect();
    let ids: Vec<i64> = on_page.iter().map(|r| r.id).collect();
    let present: Vec<i64> =
        sqlx::query_scalar("SELECT github_id FROM repositories WHERE github_id = ANY($1)")
            .bind(&ids)
            .fetch_all(pool)
            .await?;
    let items = on_page
        .into_iter()
        .map(|r| Entry {
            present: present.contains(&r.id),
            repository: r.clone(),
        })
        .collect();
    Ok(Paged::new(items, page, total))
}
