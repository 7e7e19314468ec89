//! What coverage needs from a commit's stored archive (`<repository id>/<sha>.tar.zst`, entries
//! under `<sha>/`): the list of its files (report paths are mapped onto it), its Go modules,
//! its manifest, and one file's text for the file view. The archive is streamed, never unpacked.

use std::io::Read;
use std::path::Path;

use crate::app::App;
use crate::coverage::paths::GoModule;
use crate::git::TreeFile;
use crate::storage::BlobKey;

/// Largest `go.mod` read for its `module` line.
const MAX_GO_MOD_BYTES: u64 = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("the commit's archive is not in the blob store")]
    Missing,
    #[error("reading the commit's archive: {0}")]
    Read(String),
    /// The blob store failed (kept typed: an unavailable store is a 503, not a 500).
    #[error("reading the commit's archive: {0}")]
    Storage(#[from] crate::storage::StorageError),
}

/// The parts of a commit's tree that coverage uses.
#[derive(Debug, Clone, Default)]
pub struct CommitTree {
    /// Repository-relative paths of every regular file.
    pub files: Vec<String>,
    pub go_modules: Vec<GoModule>,
    /// `.cocov.yaml` at the root, when present.
    pub manifest: Option<Vec<u8>>,
}

/// One file's content, or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Text(String),
    /// Longer than the limit given.
    TooLarge,
    NotFound,
}

async fn download(
    app: &App,
    repository_id: i64,
    sha: &str,
) -> Result<tempfile::TempDir, TreeError> {
    let key = BlobKey::new(&crate::commits::archive_key(repository_id, sha))
        .map_err(|e| TreeError::Read(e.to_string()))?;
    let dir = tempfile::tempdir().map_err(|e| TreeError::Read(e.to_string()))?;
    match app.storage.get_to_file(&key, &dir.path().join("a")).await {
        Ok(_) => Ok(dir),
        Err(e) if e.is_not_found() => Err(TreeError::Missing),
        Err(e) => Err(TreeError::Storage(e)),
    }
}

/// Walks the archive's entries, giving each repository-relative path, type, size and reader
/// to `visit`; stops when `visit` returns false. Nothing is unpacked, so no link is followed.
fn walk_entries(
    archive: &Path,
    sha: &str,
    mut visit: impl FnMut(&str, tar::EntryType, u64, &mut dyn Read) -> std::io::Result<bool>,
) -> Result<(), TreeError> {
    let read = |e: std::io::Error| TreeError::Read(e.to_string());
    let file = std::fs::File::open(archive).map_err(read)?;
    let decoder = zstd::stream::read::Decoder::new(file).map_err(read)?;
    let mut tar = tar::Archive::new(decoder);
    let prefix = format!("{sha}/");
    for entry in tar.entries().map_err(read)? {
        let mut entry = entry.map_err(read)?;
        let kind = entry.header().entry_type();
        let size = entry.size();
        let path = entry.path().map_err(read)?.to_string_lossy().into_owned();
        let Some(relative) = path.strip_prefix(&prefix) else {
            continue;
        };
        let relative = relative.trim_end_matches('/');
        if relative.is_empty() {
            continue;
        }
        let relative = relative.to_string();
        if !visit(&relative, kind, size, &mut entry).map_err(read)? {
            break;
        }
    }
    Ok(())
}

/// [`walk_entries`] over the regular files only.
fn walk(
    archive: &Path,
    sha: &str,
    mut visit: impl FnMut(&str, &mut dyn Read) -> std::io::Result<bool>,
) -> Result<(), TreeError> {
    walk_entries(archive, sha, |path, kind, _, reader| {
        if kind.is_file() {
            visit(path, reader)
        } else {
            Ok(true)
        }
    })
}

fn read_capped(reader: &mut dyn Read, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    reader.take(max + 1).read_to_end(&mut out)?;
    Ok((out.len() as u64 <= max).then_some(out))
}

/// The commit's files, Go modules and manifest.
pub async fn read_tree(app: &App, repository_id: i64, sha: &str) -> Result<CommitTree, TreeError> {
    let dir = download(app, repository_id, sha).await?;
    let sha = sha.to_string();
    tokio::task::spawn_blocking(move || {
        let mut tree = CommitTree::default();
        walk(&dir.path().join("a"), &sha, |path, reader| {
            if path == crate::manifest::MANIFEST_FILE_NAME {
                tree.manifest = read_capped(reader, crate::manifest::MAX_MANIFEST_BYTES as u64)?;
            } else if (path == "go.mod" || path.ends_with("/go.mod"))
                && let Some(bytes) = read_capped(reader, MAX_GO_MOD_BYTES)?
            {
                let text = String::from_utf8_lossy(&bytes);
                tree.go_modules.extend(GoModule::from_go_mod(path, &text));
            }
            tree.files.push(path.to_string());
            Ok(true)
        })?;
        Ok(tree)
    })
    .await
    .map_err(|e| TreeError::Read(e.to_string()))?
}

/// The text of one file of the commit (invalid UTF-8 replaced), up to `max_bytes`.
pub async fn read_source(
    app: &App,
    repository_id: i64,
    sha: &str,
    file: &str,
    max_bytes: u64,
) -> Result<Source, TreeError> {
    let dir = download(app, repository_id, sha).await?;
    let (sha, file) = (sha.to_string(), file.to_string());
    tokio::task::spawn_blocking(move || {
        let mut found = Source::NotFound;
        walk(&dir.path().join("a"), &sha, |path, reader| {
            if path != file {
                return Ok(true);
            }
            found = match read_capped(reader, max_bytes)? {
                Some(bytes) => Source::Text(String::from_utf8_lossy(&bytes).into_owned()),
                None => Source::TooLarge,
            };
            Ok(false)
        })?;
        Ok(found)
    })
    .await
    .map_err(|e| TreeError::Read(e.to_string()))?
}

/// What the commit holds at `file`: a regular file's bytes up to `max_bytes`, or what else the
/// entry is. Unlike [`read_source`], a link is reported rather than skipped.
pub async fn read_tree_file(
    app: &App,
    repository_id: i64,
    sha: &str,
    file: &str,
    max_bytes: u64,
) -> Result<TreeFile, TreeError> {
    let dir = download(app, repository_id, sha).await?;
    let (sha, file) = (sha.to_string(), file.to_string());
    tokio::task::spawn_blocking(move || {
        let mut found = TreeFile::Absent;
        walk_entries(&dir.path().join("a"), &sha, |path, kind, size, reader| {
            if path != file {
                return Ok(true);
            }
            found = if kind.is_file() {
                match read_capped(reader, max_bytes)? {
                    Some(bytes) => TreeFile::Regular(bytes),
                    None => TreeFile::TooLarge(size.max(max_bytes + 1)),
                }
            } else if kind.is_symlink() {
                TreeFile::NotRegular("a symbolic link")
            } else if kind.is_hard_link() {
                TreeFile::NotRegular("a hard link")
            } else if kind.is_dir() {
                TreeFile::NotRegular("a directory")
            } else {
                TreeFile::NotRegular("not a regular file")
            };
            Ok(false)
        })?;
        Ok(found)
    })
    .await
    .map_err(|e| TreeError::Read(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar.zst of `<sha>/…` entries: regular files, and links when `link` is given.
    fn archive(dir: &Path, entries: &[(&str, &[u8], Option<&str>)]) -> std::path::PathBuf {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data, link) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            match link {
                Some(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    builder.append_link(&mut header, name, target).unwrap();
                }
                None => builder.append_data(&mut header, name, *data).unwrap(),
            }
        }
        let path = dir.join("a.tar.zst");
        let tar = builder.into_inner().unwrap();
        std::fs::write(&path, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
        path
    }

    #[test]
    fn links_are_reported_with_their_type_and_never_read_as_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = archive(
            dir.path(),
            &[
                ("s/.cocov.yaml", b"", Some("/dev/zero")),
                ("s/src/a.rs", b"fn main() {}", None),
            ],
        );
        let mut seen = Vec::new();
        walk_entries(&path, "s", |p, kind, size, _| {
            seen.push((p.to_string(), kind.is_symlink(), size));
            Ok(true)
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (".cocov.yaml".to_string(), true, 0),
                ("src/a.rs".to_string(), false, 12)
            ]
        );
        let mut files = Vec::new();
        walk(&path, "s", |p, _| {
            files.push(p.to_string());
            Ok(true)
        })
        .unwrap();
        assert_eq!(files, ["src/a.rs"]);
    }
}
