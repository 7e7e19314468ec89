//! Commit archives: the one owner of their names, writing, verification and reading.
//!
//! Ingestion stores each commit's tree as `<repository id>/<sha>.tar.zst` (entries under
//! `<sha>/`) with the SHA-256 sidecar `<repository id>/<sha>.shasum` (`sha256:<hex>`), written
//! after the archive so a sidecar always means a complete archive. Every reader goes through
//! [`download`], which checks the archive against its sidecar (and against the digest recorded
//! on the commit when the reader has it) before anything is read from it.

mod entries;
mod verify;

pub use entries::{read_capped, read_tree_file, walk, walk_entries};
pub use verify::verify;

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::storage::{BlobKey, BlobStore, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The store could not be read now; worth retrying. Kept as the source, so the HTTP edge
    /// can tell an unavailable store from a bug.
    #[error("fetching the commit archive: {0}")]
    Storage(#[source] StorageError),
    #[error("the commit archive is missing from storage")]
    Missing,
    #[error("the commit archive failed verification: {0}")]
    Integrity(String),
    #[error("reading the commit archive: {0}")]
    Io(#[from] std::io::Error),
}

impl ArchiveError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ArchiveError::Storage(_) | ArchiveError::Io(_))
    }
}

pub fn archive_key(repository_id: i64, sha: &str) -> String {
    format!("{repository_id}/{sha}.tar.zst")
}

pub fn shasum_key(repository_id: i64, sha: &str) -> String {
    format!("{repository_id}/{sha}.shasum")
}

fn blob_key(key: String) -> Result<BlobKey, StorageError> {
    BlobKey::new(&key)
}

/// Stores the archive at `file` (whose SHA-256 is `sha256`) and then its sidecar.
pub async fn store(
    storage: &dyn BlobStore,
    repository_id: i64,
    sha: &str,
    file: &Path,
    sha256: &str,
) -> Result<(), StorageError> {
    storage
        .put_file(&blob_key(archive_key(repository_id, sha))?, file)
        .await?;
    // The sidecar goes last: its presence means the archive is complete.
    storage
        .put(
            &blob_key(shasum_key(repository_id, sha))?,
            Bytes::from(format!("sha256:{sha256}")),
        )
        .await?;
    Ok(())
}

/// Fetches the archive into `dest` and verifies it against its sidecar and, when given, the
/// digest recorded at ingestion. On any error `dest` must not be read.
pub async fn fetch_verified(
    storage: &dyn BlobStore,
    repository_id: i64,
    sha: &str,
    recorded_sha256: Option<&str>,
    dest: &Path,
) -> Result<(), ArchiveError> {
    let key = |k: String| blob_key(k).map_err(ArchiveError::Storage);
    match storage
        .get_to_file(&key(archive_key(repository_id, sha))?, dest)
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Err(ArchiveError::Missing),
        Err(e) => return Err(ArchiveError::Storage(e)),
    }
    let sidecar = storage
        .get(&key(shasum_key(repository_id, sha))?)
        .await
        .map_err(|e| {
            if e.is_not_found() {
                ArchiveError::Integrity("its checksum file is missing".into())
            } else {
                ArchiveError::Storage(e)
            }
        })?;
    let sidecar = String::from_utf8_lossy(&sidecar).into_owned();
    let recorded = recorded_sha256.map(str::to_string);
    let path = dest.to_path_buf();
    tokio::task::spawn_blocking(move || verify(&path, &sidecar, recorded.as_deref()))
        .await
        .map_err(|e| ArchiveError::Io(std::io::Error::other(e.to_string())))?
}

/// A verified archive in a private temporary directory, removed when dropped.
pub struct Downloaded {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Downloaded {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// [`fetch_verified`] into a fresh temporary directory: for readers that stream the archive.
pub async fn download(
    storage: &dyn BlobStore,
    repository_id: i64,
    sha: &str,
) -> Result<Downloaded, ArchiveError> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("archive.tar.zst");
    fetch_verified(storage, repository_id, sha, None, &path).await?;
    Ok(Downloaded { _dir: dir, path })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::TreeFile;
    use crate::storage::fs::FsStore;

    /// A one-file archive of commit `sha`, and its SHA-256.
    fn archive(dir: &Path, sha: &str) -> (PathBuf, String) {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        let data = b"# manifest\n";
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, format!("{sha}/.cocov.yaml"), &data[..])
            .unwrap();
        let path = dir.join("built.tar.zst");
        let tar = builder.into_inner().unwrap();
        std::fs::write(&path, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
        let digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(std::fs::read(&path).unwrap()))
        };
        (path, digest)
    }

    #[tokio::test]
    async fn every_read_verifies_the_archive_against_its_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsStore::open(&dir.path().join("blobs")).await.unwrap();
        let sha = "a".repeat(40);
        let (file, digest) = archive(dir.path(), &sha);

        assert!(matches!(
            download(&blobs, 7, &sha).await,
            Err(ArchiveError::Missing)
        ));
        store(&blobs, 7, &sha, &file, &digest).await.unwrap();
        let found = read_tree_file(&blobs, 7, &sha, ".cocov.yaml", 1024)
            .await
            .unwrap();
        assert_eq!(found, TreeFile::Regular(b"# manifest\n".to_vec()));

        // The archive changed after it was stored: no reader gets to see it.
        let key = BlobKey::new(&archive_key(7, &sha)).unwrap();
        let mut tampered = std::fs::read(&file).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        blobs.put(&key, Bytes::from(tampered)).await.unwrap();
        let e = read_tree_file(&blobs, 7, &sha, ".cocov.yaml", 1024)
            .await
            .unwrap_err();
        assert!(matches!(e, ArchiveError::Integrity(_)), "{e}");

        // An archive without its sidecar is incomplete, not trusted.
        blobs.put_file(&key, &file).await.unwrap();
        let sidecar = BlobKey::new(&shasum_key(7, &sha)).unwrap();
        blobs.delete(&sidecar).await.unwrap();
        let e = download(&blobs, 7, &sha).await.err().unwrap();
        assert!(e.to_string().contains("checksum file is missing"), "{e}");
    }
}
