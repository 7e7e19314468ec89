//! Blob storage: source archives, coverage payloads and cache artifacts, kept either in a local
//! directory or in any S3-compatible bucket behind one [`BlobStore`] trait.
//!
//! Keys are validated once, in [`BlobKey::new`], to a conservative alphabet so that no backend
//! ever has to interpret `..`, absolute paths, empty segments or URL-special characters; the
//! filesystem backend additionally refuses symlinks, so a key can never reach outside its root.

pub mod fs;
pub mod s3;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::{StorageConfig, StorageMode};

/// Longest accepted key, in bytes. S3 allows 1024; staying well below leaves room for a
/// bucket-side prefix and keeps filesystem paths far from PATH_MAX.
pub const MAX_KEY_LEN: usize = 512;
/// Longest segment: a file name on every common filesystem (NAME_MAX), so that a key accepted
/// on S3 is also storable on disk.
pub const MAX_SEGMENT_LEN: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid blob key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("blob `{key}` not found")]
    NotFound { key: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {message}")]
    S3 { context: String, message: String },
    /// The store could not be reached or said it cannot serve now (connection refused or
    /// reset, a 5xx answer): it passes by itself, so callers retry instead of failing for good.
    #[error("{context}: the blob store is unavailable: {message}")]
    Unavailable { context: String, message: String },
    #[error("{context}: timed out")]
    Timeout { context: String },
}

impl StorageError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    /// Whether the store is down rather than the request or the data wrong: it could not be
    /// reached, answered that it cannot serve now, or did not answer in time. (Connection-level
    /// I/O errors of the S3 client are classified into [`StorageError::Unavailable`] where they
    /// occur; local filesystem errors are not outages.)
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StorageError::Unavailable { .. } | StorageError::Timeout { .. }
        )
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> StorageError {
        StorageError::Io {
            context: context.into(),
            source,
        }
    }
}

/// A validated object key such as `12/archives/0a1b.tar.zst`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn new(s: &str) -> Result<BlobKey, StorageError> {
        validate(s, false)?;
        Ok(BlobKey(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's `/`-separated segments (never empty, never `.` or `..`).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated key prefix: empty (everything) or segments ending in `/`, so that `1/` never
/// matches `12/...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobPrefix(String);

impl BlobPrefix {
    pub fn new(s: &str) -> Result<BlobPrefix, StorageError> {
        if s.is_empty() {
            return Ok(BlobPrefix(String::new()));
        }
        let Some(body) = s.strip_suffix('/') else {
            return Err(invalid(s, "a prefix must end with `/`"));
        };
        validate(body, true).map_err(|e| match e {
            StorageError::InvalidKey { reason, .. } => invalid(s, reason),
            other => other,
        })?;
        Ok(BlobPrefix(s.to_owned()))
    }

    /// The prefix covering every key.
    pub fn all() -> BlobPrefix {
        BlobPrefix(String::new())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, key: &BlobKey) -> bool {
        key.as_str().starts_with(&self.0)
    }
}

impl fmt::Display for BlobPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn invalid(key: &str, reason: &'static str) -> StorageError {
    StorageError::InvalidKey {
        key: key.to_owned(),
        reason,
    }
}

fn validate(s: &str, is_prefix: bool) -> Result<(), StorageError> {
    let max = if is_prefix {
        MAX_KEY_LEN - 1
    } else {
        MAX_KEY_LEN
    };
    if s.is_empty() {
        return Err(invalid(s, "empty"));
    }
    if s.len() > max {
        return Err(invalid(s, "longer than 512 bytes"));
    }
    if s.starts_with('/') {
        return Err(invalid(s, "must not start with `/`"));
    }
    for segment in s.split('/') {
        if segment.is_empty() {
            return Err(invalid(s, "empty path segment"));
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return Err(invalid(s, "a path segment is longer than 255 bytes"));
        }
        if segment == "." || segment == ".." {
            return Err(invalid(s, "`.` and `..` segments are not allowed"));
        }
        if !segment.bytes().all(is_key_byte) {
            return Err(invalid(s, "only A-Z a-z 0-9 . _ - and `/` are allowed"));
        }
    }
    Ok(())
}

/// The key alphabet. Backends rely on it: `~` (never valid) marks temporary files on disk and
/// serves as the S3 listing delimiter (see `s3.rs`).
pub(crate) fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// One stored object, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub key: BlobKey,
    pub size: u64,
}

#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Human name for logs/readiness: "filesystem /var/lib/cocov/storage" or
    /// "s3 http://host:port/bucket".
    fn describe(&self) -> String;
    async fn put(&self, key: &BlobKey, data: Bytes) -> Result<(), StorageError>;
    /// Streams a local file into the store (large archives; S3 multipart). Never reads it whole
    /// into memory. Returns the bytes stored.
    async fn put_file(&self, key: &BlobKey, path: &Path) -> Result<u64, StorageError>;
    /// `StorageError::NotFound` when absent.
    async fn get(&self, key: &BlobKey) -> Result<Bytes, StorageError>;
    /// Streams an object to a local file (written atomically: temp + rename); returns bytes
    /// written. `StorageError::NotFound` when absent (the file is then left untouched).
    async fn get_to_file(&self, key: &BlobKey, path: &Path) -> Result<u64, StorageError>;
    async fn exists(&self, key: &BlobKey) -> Result<bool, StorageError>;
    /// Idempotent: deleting an absent key is Ok.
    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError>;
    /// Lists every object under a prefix ("12/" lists all of repository 12), sorted by key.
    async fn list(&self, prefix: &BlobPrefix) -> Result<Vec<BlobMeta>, StorageError>;
    /// Deletes every object under the prefix; returns how many.
    async fn delete_prefix(&self, prefix: &BlobPrefix) -> Result<u64, StorageError>;
    /// Readiness probe: a cheap round-trip proving the store is reachable and usable
    /// (filesystem: the root is a writable directory; S3: the bucket exists). Bounded in time.
    async fn check(&self) -> Result<(), StorageError>;
}

/// Opens the configured store: creates the local root, or connects to S3 and makes sure the
/// bucket exists (creating it when `storage.s3.create_bucket` allows).
pub async fn open(config: &StorageConfig) -> Result<Arc<dyn BlobStore>, StorageError> {
    Ok(match config.mode {
        StorageMode::Local => Arc::new(fs::FsStore::open(&config.local_path).await?),
        StorageMode::S3 => Arc::new(s3::S3Store::open(&config.s3).await?),
    })
}

/// Where to write a download before renaming it over `path`: the same directory (so the rename
/// is atomic), a name no caller would pick.
pub(crate) fn temp_sibling(path: &Path) -> Result<std::path::PathBuf, StorageError> {
    let name = path.file_name().ok_or_else(|| {
        StorageError::io(
            format!("download to {}", path.display()),
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path has no file name",
            ),
        )
    })?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp~{}", uuid::Uuid::new_v4().simple()));
    Ok(path.with_file_name(tmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        for good in ["a", "12/archives/x.tar.zst", "a-b_c.d/E9", ".hidden/x"] {
            assert!(BlobKey::new(good).is_ok(), "{good}");
        }
        let longest = format!("{}/{}/x", "s".repeat(MAX_SEGMENT_LEN), "t".repeat(254));
        assert_eq!(longest.len(), MAX_KEY_LEN);
        assert!(BlobKey::new(&longest).is_ok());
        let too_long = format!("{longest}y");
        let long_segment = "a".repeat(MAX_SEGMENT_LEN + 1);
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/./b",
            "../x",
            "a/..",
            "a b",
            "a/",
            "a~b",
            "é",
            &too_long,
            &long_segment,
        ] {
            assert!(
                matches!(BlobKey::new(bad), Err(StorageError::InvalidKey { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn prefixes_end_with_a_slash() {
        assert!(BlobPrefix::new("").unwrap().is_empty());
        let p = BlobPrefix::new("1/").unwrap();
        assert!(p.contains(&BlobKey::new("1/a").unwrap()));
        assert!(!p.contains(&BlobKey::new("12/a").unwrap()));
        for bad in ["1", "/", "a//", "../", "/x/"] {
            assert!(BlobPrefix::new(bad).is_err(), "{bad:?}");
        }
    }
}
