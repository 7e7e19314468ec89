//! Backup and restore of a whole installation: the database (pg_dump), every blob (through the
//! [`BlobStore`] trait, so the filesystem and S3 backends both work), the key that decrypts
//! secrets, and the configuration file, with a checksum manifest over all of it.
//!
//! Consistency: the dump is one snapshot; blobs are copied after it, so every blob the dump
//! refers to is copied unless it was deleted in between (a blob written later is harmless
//! extra). Redis holds no state a restore needs: work PostgreSQL records as pending is queued
//! again from it.
//!
//! Restore checks everything before writing anything: the manifest's checksums, the schema
//! versions, the key, and that the database and store are empty (unless forced).

mod key;
pub mod manifest;
mod postgres;

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::storage::{BlobPrefix, BlobStore, StorageError};
use key::{Key, KeyPlan};
use manifest::{Item, Manifest};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A refusal: the backup, the target or the arguments are not acceptable.
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Tool(String),
    /// The database is restored but the blobs are not all back.
    #[error("{0}")]
    Incomplete(String),
    #[error("blob store: {0}")]
    Storage(#[from] StorageError),
    #[error("PostgreSQL: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Db(#[from] crate::db::DbError),
    #[error("Redis: {0}")]
    Kv(#[from] crate::kv::KvError),
}

impl BackupError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> BackupError {
        BackupError::Io {
            context: context.into(),
            source,
        }
    }
}

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupReport {
    pub manifest: Manifest,
    pub blobs: usize,
    pub key_included: bool,
    pub config_included: bool,
}

/// Writes a backup of the installation `config` describes into `dir`, which must be absent or
/// empty. `config_file` is the configuration file in use, copied when it exists.
pub async fn backup(
    config: &Config,
    config_file: Option<&Path>,
    pool: &sqlx::PgPool,
    store: Arc<dyn BlobStore>,
    dir: &Path,
) -> Result<BackupReport, BackupError> {
    prepare_empty_dir(dir)?;
    let schema_version = crate::db::check_schema(pool).await?.ok_or_else(|| {
        BackupError::Invalid("the database has no cocov schema: nothing to back up".into())
    })?;
    // The key first: a backup whose secrets cannot be decrypted is not worth the dump.
    let key = Key::configured(&config.security)?;

    let mut files = Vec::new();
    let dump = dir.join(manifest::DUMP_FILE);
    postgres::dump(&config.database, &dump).await?;
    // pg_dump honours the umask; the dump holds every secret (sealed) and token hash.
    std::fs::set_permissions(&dump, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| BackupError::io(format!("restrict {}", dump.display()), e))?;
    files.push(manifest::entry(dir, manifest::DUMP_FILE).await?);

    let blobs = store.list(&BlobPrefix::all()).await?;
    let mut vanished = 0;
    for blob in &blobs {
        let path = manifest::blob_path(dir, &blob.key);
        let parent = path.parent().expect("a blob path has a parent");
        std::fs::create_dir_all(parent)
            .map_err(|e| BackupError::io(format!("create {}", parent.display()), e))?;
        match store.get_to_file(&blob.key, &path).await {
            Ok(_) => files.push(manifest::entry(dir, &manifest::blob_entry_path(&blob.key)).await?),
            // Deleted since it was listed: nothing refers to it any more.
            Err(e) if e.is_not_found() => vanished += 1,
            Err(e) => return Err(e.into()),
        }
    }

    if let Some(key) = &key {
        key.write_file(&dir.join(manifest::KEY_FILE))?;
        files.push(manifest::entry(dir, manifest::KEY_FILE).await?);
    }
    let config_file = config_file.filter(|p| p.is_file());
    if let Some(source) = config_file {
        let text = tokio::fs::read(source)
            .await
            .map_err(|e| BackupError::io(format!("read {}", source.display()), e))?;
        write_private(&dir.join(manifest::CONFIG_FILE), &text)?;
        files.push(manifest::entry(dir, manifest::CONFIG_FILE).await?);
    }

    let manifest = Manifest {
        format: manifest::FORMAT,
        cocov_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_version,
        created_at: time::OffsetDateTime::now_utc(),
        storage: store.describe(),
        files,
    };
    manifest.write(dir).await?;
    Ok(BackupReport {
        manifest,
        blobs: blobs.len() - vanished,
        key_included: key.is_some(),
        config_included: config_file.is_some(),
    })
}

/// How restore treats an existing target.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Replace a database that holds data, empty a store that holds blobs, and empty the
    /// Redis key prefix (its queued jobs and caches name rows of the replaced database).
    pub force: bool,
    /// Where to write the backup's key when the configured key differs from it (the operator
    /// then points `security.cryptographic_key_file` there).
    pub key_file: Option<PathBuf>,
}

/// What a restore did.
#[derive(Debug)]
pub struct RestoreReport {
    pub manifest: Manifest,
    pub blobs: usize,
    /// Where the backup's key was written, when it was.
    pub key_written: Option<PathBuf>,
    pub schema_after: i64,
}

/// Restores the backup in `dir` onto the installation `config` describes.
pub async fn restore(
    config: &Config,
    pool: &sqlx::PgPool,
    store: Arc<dyn BlobStore>,
    kv: &crate::kv::Kv,
    dir: &Path,
    options: &RestoreOptions,
) -> Result<RestoreReport, BackupError> {
    let manifest = Manifest::read(dir).await?;
    let items = manifest.verify(dir).await?;

    let binary = crate::db::binary_schema_version();
    if manifest.schema_version > binary {
        return Err(BackupError::Invalid(format!(
            "the backup's database schema is version {}, newer than this cocov knows (up to \
             {binary}): restore it with cocov {} or newer",
            manifest.schema_version, manifest.cocov_version
        )));
    }
    let target_schema = crate::db::check_schema(pool).await?;
    if let Some(target) = target_schema
        && target > manifest.schema_version
    {
        return Err(BackupError::Invalid(format!(
            "the target database is at schema {target}, newer than the backup's {}: restore \
             into an empty database",
            manifest.schema_version
        )));
    }

    let backup_key = if items.iter().any(|(item, _)| *item == Item::Key) {
        Key::read_file(&dir.join(manifest::KEY_FILE))?
    } else {
        None
    };
    let key_plan = key::plan(
        &config.security,
        backup_key.as_ref(),
        options.key_file.as_deref(),
    )?;

    if options.force {
        // Reachable before anything is replaced, so a forced restore never stops half-way
        // for want of Redis.
        kv.ping().await?;
    } else {
        let used = postgres::tables_in_use(pool).await?;
        if !used.is_empty() {
            return Err(BackupError::Invalid(format!(
                "the target database is not empty (it has {}): restore into an empty \
                 database, or pass --force to replace it",
                used.join(", ")
            )));
        }
        let existing = store.list(&BlobPrefix::all()).await?;
        if !existing.is_empty() {
            return Err(BackupError::Invalid(format!(
                "the target blob store ({}) is not empty ({} blobs): restore into an empty \
                 store, or pass --force to replace its contents",
                store.describe(),
                existing.len()
            )));
        }
    }

    postgres::restore(&config.database, &dir.join(manifest::DUMP_FILE)).await?;
    if options.force {
        kv.delete_all_prefixed().await?;
        store.delete_prefix(&BlobPrefix::all()).await?;
    }
    let mut blobs = 0;
    for (item, _) in &items {
        if let Item::Blob(key) = item {
            store
                .put_file(key, &manifest::blob_path(dir, key))
                .await
                .map_err(|e| {
                    BackupError::Incomplete(format!(
                        "the database is restored, but restoring the blobs failed: {e}; run \
                         the restore again with --force once the store is reachable"
                    ))
                })?;
            blobs += 1;
        }
    }
    let key_written = match (key_plan, &backup_key) {
        (KeyPlan::Write(path), Some(key)) => {
            key.write_file(&path)?;
            Some(path)
        }
        _ => None,
    };
    // A backup from an older cocov is brought up to this binary's schema.
    let migrated = crate::db::migrate(&config.database).await?;
    Ok(RestoreReport {
        manifest,
        blobs,
        key_written,
        schema_after: migrated.after,
    })
}

/// Creates `dir` (mode 0700: the backup holds the key and every secret) or accepts an existing
/// empty directory; refuses anything else.
fn prepare_empty_dir(dir: &Path) -> Result<(), BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::Invalid(format!(
                    "{} is not empty: back up into a new or empty directory",
                    dir.display()
                )));
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| BackupError::io(format!("restrict {}", dir.display()), e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| BackupError::io(format!("create {}", dir.display()), e)),
        Err(e) => Err(BackupError::io(format!("open {}", dir.display()), e)),
    }
}

/// Writes a file readable by its owner only (keys, configuration, the manifest).
pub(crate) fn write_private(path: &Path, data: &[u8]) -> Result<(), BackupError> {
    use std::io::Write;
    let context = || format!("write {}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| BackupError::io(context(), e))?;
    file.write_all(data)
        .and_then(|()| file.sync_all())
        .map_err(|e| BackupError::io(context(), e))
}
