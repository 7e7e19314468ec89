//! What coverage needs from a commit's stored archive (`<repository id>/<sha>.tar.zst`, entries
//! under `<sha>/`): the list of its files (report paths are mapped onto it), its Go modules,
//! its manifest, and one file's text for the file view. The archive is streamed, never unpacked.

use std::io::Read;
use std::path::Path;

use crate::app::App;
use crate::coverage::paths::GoModule;
use crate::storage::BlobKey;

/// Largest `go.mod` read for its `module` line.
const MAX_GO_MOD_BYTES: u64 = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("the commit's archive is not in the blob store")]
    Missing,
    #[error("reading the commit's archive: {0}")]
    Read(String),
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
        Err(e) => Err(TreeError::Read(e.to_string())),
    }
}

/// Walks the archive's regular files, giving each repository-relative path and its reader to
/// `visit`; stops when `visit` returns false.
fn walk(
    archive: &Path,
    sha: &str,
    mut visit: impl FnMut(&str, &mut dyn Read) -> std::io::Result<bool>,
) -> Result<(), TreeError> {
    let read = |e: std::io::Error| TreeError::Read(e.to_string());
    let file = std::fs::File::open(archive).map_err(read)?;
    let decoder = zstd::stream::read::Decoder::new(file).map_err(read)?;
    let mut tar = tar::Archive::new(decoder);
    let prefix = format!("{sha}/");
    for entry in tar.entries().map_err(read)? {
        let mut entry = entry.map_err(read)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(read)?.to_string_lossy().into_owned();
        let Some(relative) = path.strip_prefix(&prefix) else {
            continue;
        };
        if relative.is_empty() {
            continue;
        }
        let relative = relative.to_string();
        if !visit(&relative, &mut entry).map_err(read)? {
            break;
        }
    }
    Ok(())
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
