//! The rows of a cache table (`templates/cache_items.html`): the shared tool cache on
//! `/admin/caches` and a repository's artifacts in its settings.

use crate::cache::{CacheError, Item};
use crate::web::format;
use crate::web::page::PageError;

/// One cached item as a cache table shows it.
pub struct CacheRow {
    pub id: i64,
    pub name: String,
    pub size: String,
    pub kind: String,
    pub created: String,
    pub used: String,
}

impl CacheRow {
    pub fn of(item: Item) -> CacheRow {
        CacheRow {
            id: item.id,
            size: format::size(item.size),
            // The engine (`local`, `s3`) says where the bytes are; the type what they are.
            kind: format!("{} · {}", item.mime, item.engine),
            created: format::ago_now(item.created_at),
            used: item
                .last_used_at
                .map_or_else(|| "never".into(), format::ago_now),
            name: item.name,
        }
    }
}

/// A removal's outcome for the person who asked: done, or the item was already gone.
pub fn removal(result: Result<Vec<Item>, CacheError>) -> Result<bool, PageError> {
    match result {
        Ok(_) => Ok(true),
        Err(CacheError::NotFound) => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).into()),
    }
}
