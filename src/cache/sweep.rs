//! Blobs without a catalogue row: a write whose process died between putting the blob and
//! committing its row, or a delete whose blob removal failed. The blob's key carries the time it
//! was written, so one younger than the grace (a write still in progress) is left alone.

use std::collections::HashSet;

use time::OffsetDateTime;

use super::store::{BLOB_PREFIX, CacheStore};
use crate::app::App;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("cache sweep: {0}")]
    Db(#[from] sqlx::Error),
    #[error("cache sweep: {0}")]
    Storage(#[from] StorageError),
}

/// Removes the orphan blobs older than `cache.orphan_grace_seconds`; returns how many.
pub async fn sweep_orphans(app: &App) -> Result<u64, SweepError> {
    let grace = i64::try_from(app.config.cache.orphan_grace_seconds).unwrap_or(i64::MAX);
    let cutoff = OffsetDateTime::now_utc()
        .unix_timestamp()
        .saturating_sub(grace);
    let listed = app.storage.list(&CacheStore::prefix()).await?;
    let old: Vec<String> = listed
        .iter()
        .map(|blob| blob.key.as_str().to_string())
        .filter(|key| written_at(key).is_none_or(|at| at < cutoff))
        .collect();
    if old.is_empty() {
        return Ok(0);
    }
    let known: HashSet<String> = sqlx::query_scalar(
        "SELECT blob_key FROM cache_artifacts WHERE blob_key = ANY($1) \
         UNION ALL SELECT blob_key FROM cache_tools WHERE blob_key = ANY($1)",
    )
    .bind(&old)
    .fetch_all(&app.db)
    .await?
    .into_iter()
    .collect();
    let mut removed = 0;
    for key in old.iter().filter(|k| !known.contains(*k)) {
        app.storage
            .delete(&crate::storage::BlobKey::new(key)?)
            .await?;
        removed += 1;
    }
    if removed > 0 {
        tracing::info!(removed, "cache: removed blobs no catalogue row names");
    }
    Ok(removed)
}

/// The Unix time in a blob key's last segment (`<seconds>-<uuid>`).
fn written_at(key: &str) -> Option<i64> {
    let name = key.strip_prefix(BLOB_PREFIX)?.rsplit('/').next()?;
    name.split_once('-')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_write_time_is_read_from_the_key() {
        assert_eq!(
            super::written_at("cache/artifacts/3/1733400000-0a1b"),
            Some(1_733_400_000)
        );
        assert_eq!(
            super::written_at("cache/tools/1733400000-ff"),
            Some(1_733_400_000)
        );
        assert_eq!(super::written_at("cache/tools/garbage"), None);
        assert_eq!(super::written_at("3/archives/x"), None);
    }
}
