//! `MANIFEST.json`: what a backup holds, each file's size and SHA-256, and the versions that
//! wrote it. Written last, so a backup interrupted half-way has no manifest and is refused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::BackupError;
use crate::storage::BlobKey;

pub const MANIFEST_FILE: &str = "MANIFEST.json";
pub const DUMP_FILE: &str = "database.dump";
pub const KEY_FILE: &str = "secret.key";
pub const CONFIG_FILE: &str = "cocov.toml";
pub const BLOBS_DIR: &str = "blobs";
/// Bumped when the layout changes in a way an older `cocov restore` would misread.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub cocov_version: String,
    pub schema_version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// The store the blobs came from (for the operator; restore writes to the configured one).
    pub storage: String,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the backup directory, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// What a manifest path names. Anything else is refused, so an edited manifest can never make
/// restore read outside the backup directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Dump,
    Key,
    Config,
    Blob(BlobKey),
}

impl Item {
    pub fn parse(path: &str) -> Option<Item> {
        match path {
            DUMP_FILE => Some(Item::Dump),
            KEY_FILE => Some(Item::Key),
            CONFIG_FILE => Some(Item::Config),
            _ => {
                let key = path.strip_prefix(BLOBS_DIR)?.strip_prefix('/')?;
                BlobKey::new(key).ok().map(Item::Blob)
            }
        }
    }
}

/// Where a blob lives inside the backup. Keys are validated to a path-safe alphabet.
pub fn blob_path(dir: &Path, key: &BlobKey) -> PathBuf {
    key.segments()
        .fold(dir.join(BLOBS_DIR), |path, segment| path.join(segment))
}

pub fn blob_entry_path(key: &BlobKey) -> String {
    format!("{BLOBS_DIR}/{key}")
}

/// Size and SHA-256 of a file, streamed.
pub async fn checksum(path: &Path) -> Result<(u64, String), BackupError> {
    let context = || format!("read {}", path.display());
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| BackupError::io(context(), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| BackupError::io(context(), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

pub async fn entry(dir: &Path, path: &str) -> Result<FileEntry, BackupError> {
    let (size, sha256) = checksum(&dir.join(path)).await?;
    Ok(FileEntry {
        path: path.to_string(),
        size,
        sha256,
    })
}

impl Manifest {
    pub async fn read(dir: &Path) -> Result<Manifest, BackupError> {
        let path = dir.join(MANIFEST_FILE);
        let text = tokio::fs::read(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BackupError::Invalid(format!(
                    "{} is missing: {} is not a cocov backup, or its backup did not finish",
                    path.display(),
                    dir.display()
                ))
            } else {
                BackupError::io(format!("read {}", path.display()), e)
            }
        })?;
        let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
            BackupError::Invalid(format!("{} is not a valid manifest: {e}", path.display()))
        })?;
        if manifest.format != FORMAT {
            return Err(BackupError::Invalid(format!(
                "{} has format {}; this cocov reads format {FORMAT}",
                path.display(),
                manifest.format
            )));
        }
        Ok(manifest)
    }

    pub async fn write(&self, dir: &Path) -> Result<(), BackupError> {
        let path = dir.join(MANIFEST_FILE);
        let mut text = serde_json::to_vec_pretty(self).expect("a manifest serialises");
        text.push(b'\n');
        super::write_private(&path, &text)
    }

    /// Every listed file exists with its size and SHA-256, and names something restore knows;
    /// returns the parsed items. The first mismatch is reported by path.
    pub async fn verify(&self, dir: &Path) -> Result<Vec<(Item, &FileEntry)>, BackupError> {
        let mut items = Vec::with_capacity(self.files.len());
        for file in &self.files {
            let item = Item::parse(&file.path).ok_or_else(|| {
                BackupError::Invalid(format!(
                    "the manifest lists {:?}, which is not a file a backup holds",
                    file.path
                ))
            })?;
            let path = dir.join(&file.path);
            let (size, sha256) = match checksum(&path).await {
                Ok(found) => found,
                Err(_) if !path.is_file() => {
                    return Err(BackupError::Invalid(format!(
                        "{} is missing from the backup",
                        path.display()
                    )));
                }
                Err(e) => return Err(e),
            };
            if size != file.size || sha256 != file.sha256 {
                return Err(BackupError::Invalid(format!(
                    "{} does not match the manifest (size {size}, expected {}; or its SHA-256 \
                     differs): the backup was altered or truncated",
                    path.display(),
                    file.size
                )));
            }
            items.push((item, file));
        }
        if !items.iter().any(|(item, _)| *item == Item::Dump) {
            return Err(BackupError::Invalid(format!(
                "the manifest in {} lists no {DUMP_FILE}",
                dir.display()
            )));
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_paths_are_items() {
        assert_eq!(Item::parse("database.dump"), Some(Item::Dump));
        assert!(matches!(
            Item::parse("blobs/1/archives/a.tar.zst"),
            Some(Item::Blob(_))
        ));
        for bad in [
            "../etc/passwd",
            "blobs/../x",
            "blobs//x",
            "/database.dump",
            "blobs",
            "x",
        ] {
            assert_eq!(Item::parse(bad), None, "{bad}");
        }
    }
}
