//! The catalogue (PostgreSQL) and the bytes (blob store) of cached items.
//!
//! A write puts the blob first and the row second, in a transaction holding the zone's lock
//! (one per repository for artifacts, one for tools): the quota is checked and the least
//! recently used items evicted inside it, so two writers of one repository can never together
//! pass the quota. Evicted and purged rows go first and their blobs after the commit; a crash in
//! between leaves blobs without rows, which [`super::sweep`] removes.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::audit::AuditActor;
use crate::config::{CacheConfig, StorageMode};
use crate::storage::{BlobKey, BlobPrefix, BlobStore, StorageError};

/// Where the service keeps every blob.
pub const BLOB_PREFIX: &str = "cache/";
/// Longest item id (`{id}` in the routes, the original's "name hash") and `Filename`.
pub const MAX_ID_LEN: usize = 128;
pub const MAX_NAME_LEN: usize = 512;

/// Artifacts belong to one repository; tools are shared by all, as in the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Artifacts(i64),
    Tools,
}

impl Zone {
    fn table(self) -> &'static str {
        match self {
            Zone::Artifacts(_) => "cache_artifacts",
            Zone::Tools => "cache_tools",
        }
    }

    /// The SQL condition selecting the zone's rows; `$1` is always [`Zone::repository`]. Table
    /// names and conditions are these fixed strings only, never input: the dynamic SQL built
    /// from them is safe.
    fn scope(self) -> &'static str {
        match self {
            Zone::Artifacts(_) => "repository_id = $1",
            Zone::Tools => "$1::bigint IS NULL",
        }
    }

    pub fn repository(self) -> Option<i64> {
        match self {
            Zone::Artifacts(id) => Some(id),
            Zone::Tools => None,
        }
    }

    /// `artifact` or `tool`, as the routes and metrics name them.
    pub fn kind(self) -> &'static str {
        match self {
            Zone::Artifacts(_) => "artifact",
            Zone::Tools => "tool",
        }
    }

    fn blob_prefix(self) -> String {
        match self {
            Zone::Artifacts(id) => format!("{BLOB_PREFIX}artifacts/{id}/"),
            Zone::Tools => format!("{BLOB_PREFIX}tools/"),
        }
    }

    fn lock_key(self) -> String {
        match self {
            Zone::Artifacts(id) => format!("cocov.cache.artifacts:{id}"),
            Zone::Tools => "cocov.cache.tools".into(),
        }
    }
}

/// One cached item, as the admin routes show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Item {
    pub id: i64,
    pub name: String,
    pub name_hash: String,
    pub size: i64,
    pub engine: String,
    pub mime: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(skip)]
    pub blob_key: Option<String>,
}

const COLUMNS: &str = "id, name::text AS name, name_hash, size, engine::text AS engine, mime, \
                       created_at, last_used_at, blob_key";

/// What a writer declares before sending the bytes.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub name_hash: String,
    pub name: String,
    pub mime: String,
    pub size: u64,
}

/// A stored item and what made room for it.
#[derive(Debug)]
pub struct Written {
    pub id: i64,
    pub evicted: Vec<Item>,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("an item with this id or file name already exists; cache items are write-once")]
    Exists,
    #[error("the item ({size} bytes) is larger than the repository's cache quota ({quota} bytes)")]
    LargerThanQuota { size: u64, quota: u64 },
    #[error("the item ({size} bytes) is larger than the largest accepted ({max} bytes)")]
    TooLarge { size: u64, max: u64 },
    #[error("the item is not in the cache")]
    NotFound,
    #[error("cache catalogue: {0}")]
    Db(#[from] sqlx::Error),
    #[error("cache blob: {0}")]
    Storage(#[from] StorageError),
}

/// The catalogue and blob store with the cache's limits.
#[derive(Clone)]
pub struct CacheStore {
    db: PgPool,
    storage: Arc<dyn BlobStore>,
    /// The store the blobs are in (`local` or `s3`), recorded per row as the original did.
    engine: &'static str,
    quota: u64,
    max_item: u64,
}

impl CacheStore {
    pub fn new(
        db: PgPool,
        storage: Arc<dyn BlobStore>,
        mode: StorageMode,
        config: &CacheConfig,
    ) -> CacheStore {
        CacheStore {
            db,
            storage,
            engine: match mode {
                StorageMode::Local => "local",
                StorageMode::S3 => "s3",
            },
            quota: config.repository_max_size,
            max_item: config.max_item_size,
        }
    }

    pub fn from_app(app: &crate::app::App) -> CacheStore {
        CacheStore::new(
            app.db.clone(),
            app.storage.clone(),
            app.config.storage.mode,
            &app.config.cache,
        )
    }

    /// The item called `name_hash`, if its bytes were stored.
    pub async fn find(&self, zone: Zone, name_hash: &str) -> Result<Option<Item>, CacheError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} WHERE {} AND name_hash = $2 AND blob_key IS NOT NULL",
            zone.table(),
            zone.scope()
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(zone.repository())
            .bind(name_hash)
            .fetch_optional(&self.db)
            .await?)
    }

    /// Marks a hit: eviction goes least recently used first.
    pub async fn touch(&self, zone: Zone, id: i64) -> Result<(), CacheError> {
        let sql = format!(
            "UPDATE {} SET last_used_at = now() WHERE {} AND id = $2",
            zone.table(),
            zone.scope()
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(zone.repository())
            .bind(id)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Refuses before any byte is read what [`CacheStore::write`] would refuse after.
    pub async fn admit(&self, zone: Zone, item: &NewItem) -> Result<(), CacheError> {
        if self.max_item > 0 && item.size > self.max_item {
            return Err(CacheError::TooLarge {
                size: item.size,
                max: self.max_item,
            });
        }
        if matches!(zone, Zone::Artifacts(_)) && self.quota > 0 && item.size > self.quota {
            return Err(CacheError::LargerThanQuota {
                size: item.size,
                quota: self.quota,
            });
        }
        if self.taken(&self.db, zone, item).await? {
            return Err(CacheError::Exists);
        }
        Ok(())
    }

    async fn taken<'e>(
        &self,
        db: impl sqlx::PgExecutor<'e>,
        zone: Zone,
        item: &NewItem,
    ) -> Result<bool, sqlx::Error> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE {} AND (name_hash = $2 OR name = $3))",
            zone.table(),
            zone.scope()
        );
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(zone.repository())
            .bind(&item.name_hash)
            .bind(&item.name)
            .fetch_one(db)
            .await
    }

    /// Stores the bytes of `file` (exactly `item.size` of them) as `item`, evicting the zone's
    /// least recently used items first when the quota needs the room.
    pub async fn write(
        &self,
        zone: Zone,
        item: &NewItem,
        file: &Path,
    ) -> Result<Written, CacheError> {
        self.admit(zone, item).await?;
        // The time in the key lets the sweeper tell a write in progress from an orphan.
        let key = BlobKey::new(&format!(
            "{}{}-{}",
            zone.blob_prefix(),
            OffsetDateTime::now_utc().unix_timestamp(),
            uuid::Uuid::new_v4().simple()
        ))?;
        self.storage.put_file(&key, file).await?;
        match self.record(zone, item, &key).await {
            Ok(written) => {
                self.delete_blobs(&written.evicted).await;
                Ok(written)
            }
            Err(e) => {
                let _ = self.storage.delete(&key).await;
                Err(e)
            }
        }
    }

    async fn record(
        &self,
        zone: Zone,
        item: &NewItem,
        key: &BlobKey,
    ) -> Result<Written, CacheError> {
        let mut tx = self.db.begin().await?;
        lock(&mut tx, zone).await?;
        // Another writer of the same id may have got the lock first.
        if self.taken(&mut *tx, zone, item).await? {
            return Err(CacheError::Exists);
        }
        let size = i64::try_from(item.size).unwrap_or(i64::MAX);
        let evicted = match zone {
            Zone::Artifacts(_) if self.quota > 0 => {
                let quota = i64::try_from(self.quota).unwrap_or(i64::MAX);
                self.make_room(&mut tx, zone, quota.saturating_sub(size))
                    .await?
            }
            _ => Vec::new(),
        };
        let id: i64 = insert(&mut tx, zone, item, size, self.engine, key).await?;
        update_total(&mut tx, zone).await?;
        tx.commit().await?;
        Ok(Written { id, evicted })
    }

    /// Deletes the zone's least recently used rows until at most `room` bytes remain in it.
    async fn make_room(
        &self,
        tx: &mut sqlx::PgConnection,
        zone: Zone,
        room: i64,
    ) -> Result<Vec<Item>, CacheError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} WHERE {} ORDER BY last_used_at ASC NULLS FIRST, id",
            zone.table(),
            zone.scope()
        );
        let items: Vec<Item> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(zone.repository())
            .fetch_all(&mut *tx)
            .await?;
        let mut total: i64 = items.iter().map(|i| i.size).sum();
        let mut victims = Vec::new();
        for item in items {
            if total <= room {
                break;
            }
            total -= item.size;
            victims.push(item);
        }
        let ids: Vec<i64> = victims.iter().map(|v| v.id).collect();
        let sql = format!("DELETE FROM {} WHERE id = ANY($1)", zone.table());
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        Ok(victims)
    }

    /// The zone's items, most recently used first.
    pub async fn list(&self, zone: Zone) -> Result<Vec<Item>, CacheError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} WHERE {} ORDER BY last_used_at DESC NULLS LAST, id DESC",
            zone.table(),
            zone.scope()
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(zone.repository())
            .fetch_all(&self.db)
            .await?)
    }

    /// Copies an item's bytes to `path`. A row whose blob is gone is a miss, and is dropped.
    pub async fn read_to(&self, zone: Zone, item: &Item, path: &Path) -> Result<u64, CacheError> {
        let Some(key) = item.blob_key.as_deref() else {
            return Err(CacheError::NotFound);
        };
        match self.storage.get_to_file(&BlobKey::new(key)?, path).await {
            Ok(n) => Ok(n),
            Err(e) if e.is_not_found() => {
                self.remove(zone, Some(item.id), &AuditActor::system(), "cache.lost")
                    .await?;
                Err(CacheError::NotFound)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes one item (`id`) or all of the zone's (`None`), rows first, then blobs; returns
    /// what was removed. Recorded in the audit log as `action`.
    pub async fn remove(
        &self,
        zone: Zone,
        id: Option<i64>,
        actor: &AuditActor,
        action: &str,
    ) -> Result<Vec<Item>, CacheError> {
        let mut tx = self.db.begin().await?;
        lock(&mut tx, zone).await?;
        let sql = format!(
            "DELETE FROM {} WHERE {} AND ($2::bigint IS NULL OR id = $2) RETURNING {COLUMNS}",
            zone.table(),
            zone.scope()
        );
        let removed: Vec<Item> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(zone.repository())
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        if id.is_some() && removed.is_empty() {
            return Err(CacheError::NotFound);
        }
        update_total(&mut tx, zone).await?;
        let target = match (zone.repository(), id) {
            (Some(repo), Some(id)) => format!("repository:{repo}:artifact:{id}"),
            (Some(repo), None) => format!("repository:{repo}"),
            (None, Some(id)) => format!("tool:{id}"),
            (None, None) => "tools".into(),
        };
        let bytes: i64 = removed.iter().map(|i| i.size).sum();
        crate::audit::record(
            &mut *tx,
            actor,
            action,
            &target,
            serde_json::json!({ "items": removed.len(), "bytes": bytes }),
        )
        .await?;
        tx.commit().await?;
        self.delete_blobs(&removed).await;
        Ok(removed)
    }

    /// Best effort: a blob left behind has no row, and the sweeper removes it.
    async fn delete_blobs(&self, items: &[Item]) {
        for key in items.iter().filter_map(|i| i.blob_key.as_deref()) {
            if let Ok(key) = BlobKey::new(key)
                && let Err(e) = self.storage.delete(&key).await
            {
                tracing::warn!(%key, error = %e, "cache: could not delete a blob; the sweeper will");
            }
        }
    }

    /// Bytes a repository's artifacts take (the `cache_size` the quota applies to).
    pub async fn repository_size(&self, repository_id: i64) -> Result<i64, CacheError> {
        Ok(
            sqlx::query_scalar("SELECT cache_size FROM repositories WHERE id = $1")
                .bind(repository_id)
                .fetch_optional(&self.db)
                .await?
                .unwrap_or(0),
        )
    }

    pub fn quota(&self) -> u64 {
        self.quota
    }

    /// The blob store's whole cache prefix.
    pub fn prefix() -> BlobPrefix {
        BlobPrefix::new(BLOB_PREFIX).expect("a valid prefix")
    }
}

async fn insert(
    tx: &mut sqlx::PgConnection,
    zone: Zone,
    item: &NewItem,
    size: i64,
    engine: &str,
    key: &BlobKey,
) -> Result<i64, CacheError> {
    // Tools have no repository column; `$1` is still bound, so it must appear.
    let (column, value, condition) = match zone {
        Zone::Artifacts(_) => ("repository_id, ", "$1, ", ""),
        Zone::Tools => ("", "", " WHERE $1::bigint IS NULL"),
    };
    let sql = format!(
        "INSERT INTO {} ({column}name, name_hash, size, engine, mime, blob_key, last_used_at) \
         SELECT {value}$2, $3, $4, $5, $6, $7, now(){condition} RETURNING id",
        zone.table(),
    );
    let inserted = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(zone.repository())
        .bind(&item.name)
        .bind(&item.name_hash)
        .bind(size)
        .bind(engine)
        .bind(&item.mime)
        .bind(key.as_str())
        .fetch_one(&mut *tx)
        .await;
    match inserted {
        Ok(id) => Ok(id),
        // unique_violation: the same id or name under another engine, or a race the lock missed.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            Err(CacheError::Exists)
        }
        Err(e) => Err(e.into()),
    }
}

/// The zone's lock, held until the transaction ends (PostgreSQL releases it if this process
/// dies): writers, evictions and purges of one zone take turns.
async fn lock(tx: &mut sqlx::PgConnection, zone: Zone) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(zone.lock_key())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `repositories.cache_size`, the original's column, kept equal to the sum of its artifacts.
async fn update_total(tx: &mut sqlx::PgConnection, zone: Zone) -> Result<(), sqlx::Error> {
    if let Zone::Artifacts(repo) = zone {
        sqlx::query(
            "UPDATE repositories SET cache_size = \
             (SELECT COALESCE(SUM(size), 0) FROM cache_artifacts WHERE repository_id = $1) \
             WHERE id = $1",
        )
        .bind(repo)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// What the whole cache holds: items and bytes of artifacts, then of tools.
pub async fn usage(db: &PgPool) -> Result<[(i64, i64); 2], sqlx::Error> {
    let (artifacts, artifact_bytes, tools, tool_bytes): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM cache_artifacts), \
         (SELECT COALESCE(SUM(size), 0)::bigint FROM cache_artifacts), \
         (SELECT COUNT(*) FROM cache_tools), \
         (SELECT COALESCE(SUM(size), 0)::bigint FROM cache_tools)",
    )
    .fetch_one(db)
    .await?;
    Ok([(artifacts, artifact_bytes), (tools, tool_bytes)])
}
