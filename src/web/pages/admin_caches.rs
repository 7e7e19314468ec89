//! `/admin/caches`: the shared tool cache (tools plugins keep for every repository, such as a
//! Node.js install): its items with sizes and last use, one removed or all purged; and what the
//! repositories' artifact caches hold together (each is managed in its repository's settings).
//! When the cache service is off in the configuration, the page says so. Administrators only.

use askama::Template;
use warp::reply::Response;

use super::cache_items::{CacheRow, removal};
use crate::cache::{self, CacheStore, Zone};
use crate::web::format;
use crate::web::page::{self, Chrome, PageError, see_other};
use crate::web::{Req, Session};

#[derive(Template)]
#[template(path = "admin/caches.html")]
struct CachesPage {
    chrome: Chrome,
    admin_tab: &'static str,
    enabled: bool,
    /// The tools, for `cache_items.html`.
    cache_rows: Vec<CacheRow>,
    cache_can_remove: bool,
    cache_post: &'static str,
    tools_total: String,
    artifacts_count: i64,
    artifacts_total: String,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
}

const NOTICES: &[(&str, &str)] = &[
    ("removed", "The tool was removed from the cache."),
    ("purged", "The tool cache was emptied."),
];
const PROBLEMS: &[(&str, &str)] = &[("not_found", "That tool is not in the cache any more.")];

async fn view(req: &Req, session: &Session) -> Result<CachesPage, PageError> {
    let enabled = req.app.config.cache.enabled;
    let tools = if enabled {
        CacheStore::from_app(&req.app)
            .list(Zone::Tools)
            .await
            .map_err(anyhow::Error::new)?
    } else {
        Vec::new()
    };
    let [(artifacts_count, artifact_bytes), (_, tool_bytes)] = cache::usage(&req.app.db).await?;
    Ok(CachesPage {
        chrome: session.chrome("Tool cache · Administration", "admin"),
        admin_tab: "caches",
        enabled,
        cache_rows: tools.into_iter().map(CacheRow::of).collect(),
        cache_can_remove: true,
        cache_post: "/admin/caches",
        tools_total: format::size(tool_bytes),
        artifacts_count,
        artifacts_total: format::size(artifact_bytes),
        notice: req.message("notice", NOTICES),
        problem: req.message("problem", PROBLEMS),
    })
}

pub async fn get(req: &Req) -> Result<Response, PageError> {
    let session = req.admin_session().await?;
    page::render(&view(req, &session).await?)
}

/// `action` = `cache_remove` (with `item_id`) or `cache_purge`.
pub async fn post(req: &Req) -> Result<Response, PageError> {
    let (session, form) = req.admin_form().await?;
    if !req.app.config.cache.enabled {
        return Err(PageError::BadRequest(
            "The cache service is disabled in this server's configuration.",
        ));
    }
    let store = CacheStore::from_app(&req.app);
    let actor = session.actor.audit();
    let (id, action, notice) = match form.get("action") {
        Some("cache_remove") => (Some(form.id("item_id")?), "cache.evict_tool", "removed"),
        Some("cache_purge") => (None, "cache.purge_tools", "purged"),
        _ => return Err(PageError::BadRequest("Unknown action")),
    };
    if removal(store.remove(Zone::Tools, id, &actor, action).await)? {
        Ok(see_other(&format!("/admin/caches?notice={notice}")))
    } else {
        Ok(see_other("/admin/caches?problem=not_found"))
    }
}
