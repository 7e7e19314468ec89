//! Reading a verified archive without unpacking it: entries are streamed through zstd and tar,
//! so no link is ever followed and nothing reaches the disk.

use std::io::Read;
use std::path::Path;

use super::{ArchiveError, download};
use crate::git::TreeFile;
use crate::storage::BlobStore;

/// Walks the archive's entries, giving each repository-relative path, type, size and reader
/// to `visit`; stops when `visit` returns false. Nothing is unpacked, so no link is followed.
pub fn walk_entries(
    archive: &Path,
    sha: &str,
    mut visit: impl FnMut(&str, tar::EntryType, u64, &mut dyn Read) -> std::io::Result<bool>,
) -> Result<(), ArchiveError> {
    let file = std::fs::File::open(archive)?;
    let decoder = zstd::stream::read::Decoder::new(file)?;
    let mut tar = tar::Archive::new(decoder);
    let prefix = format!("{sha}/");
    for entry in tar.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        let size = entry.size();
        let path = entry.path()?.to_string_lossy().into_owned();
        let Some(relative) = path.strip_prefix(&prefix) else {
            continue;
        };
        let relative = relative.trim_end_matches('/');
        if relative.is_empty() {
            continue;
        }
        let relative = relative.to_string();
        if !visit(&relative, kind, size, &mut entry)? {
            break;
        }
    }
    Ok(())
}

/// [`walk_entries`] over the regular files only.
pub fn walk(
    archive: &Path,
    sha: &str,
    mut visit: impl FnMut(&str, &mut dyn Read) -> std::io::Result<bool>,
) -> Result<(), ArchiveError> {
    walk_entries(archive, sha, |path, kind, _, reader| {
        if kind.is_file() {
            visit(path, reader)
        } else {
            Ok(true)
        }
    })
}

/// At most `max` bytes of `reader`, or `None` when it holds more.
pub fn read_capped(reader: &mut dyn Read, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    reader.take(max + 1).read_to_end(&mut out)?;
    Ok((out.len() as u64 <= max).then_some(out))
}

/// What the commit holds at `file`: a regular file's bytes up to `max_bytes`, or what else the
/// entry is. A link is reported, never followed.
pub async fn read_tree_file(
    storage: &dyn BlobStore,
    repository_id: i64,
    sha: &str,
    file: &str,
    max_bytes: u64,
) -> Result<TreeFile, ArchiveError> {
    let archive = download(storage, repository_id, sha).await?;
    let (sha, file) = (sha.to_string(), file.to_string());
    tokio::task::spawn_blocking(move || {
        let mut found = TreeFile::Absent;
        walk_entries(archive.path(), &sha, |path, kind, size, reader| {
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
    .map_err(|e| ArchiveError::Io(std::io::Error::other(e.to_string())))?
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
