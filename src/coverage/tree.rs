//! What coverage needs from a commit's stored archive (`<repository id>/<sha>.tar.zst`, entries
//! under `<sha>/`): the list of its files (report paths are mapped onto it), its Go modules,
//! its manifest, and one file's text for the file view. The archive (verified by `archive`) is
//! streamed, never unpacked.

use crate::app::App;
use crate::archive::{self, ArchiveError, walk};
use crate::coverage::paths::GoModule;

/// Largest `go.mod` read for its `module` line.
const MAX_GO_MOD_BYTES: u64 = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("the commit's archive is not in the blob store")]
    Missing,
    #[error(transparent)]
    Archive(ArchiveError),
}

impl From<ArchiveError> for TreeError {
    fn from(e: ArchiveError) -> Self {
        match e {
            ArchiveError::Missing => TreeError::Missing,
            e => TreeError::Archive(e),
        }
    }
}

impl From<std::io::Error> for TreeError {
    fn from(e: std::io::Error) -> Self {
        TreeError::Archive(ArchiveError::Io(e))
    }
}

fn joined(e: tokio::task::JoinError) -> TreeError {
    TreeError::Archive(ArchiveError::Io(std::io::Error::other(e.to_string())))
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

/// The commit's files, Go modules and manifest.
pub async fn read_tree(app: &App, repository_id: i64, sha: &str) -> Result<CommitTree, TreeError> {
    let archive = archive::download(app.storage.as_ref(), repository_id, sha).await?;
    let sha = sha.to_string();
    tokio::task::spawn_blocking(move || {
        let mut tree = CommitTree::default();
        walk(archive.path(), &sha, |path, reader| {
            if path == crate::manifest::MANIFEST_FILE_NAME {
                tree.manifest =
                    archive::read_capped(reader, crate::manifest::MAX_MANIFEST_BYTES as u64)?;
            } else if (path == "go.mod" || path.ends_with("/go.mod"))
                && let Some(bytes) = archive::read_capped(reader, MAX_GO_MOD_BYTES)?
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
    .map_err(joined)?
}

/// The text of one file of the commit (invalid UTF-8 replaced), up to `max_bytes`.
pub async fn read_source(
    app: &App,
    repository_id: i64,
    sha: &str,
    file: &str,
    max_bytes: u64,
) -> Result<Source, TreeError> {
    let archive = archive::download(app.storage.as_ref(), repository_id, sha).await?;
    let (sha, file) = (sha.to_string(), file.to_string());
    tokio::task::spawn_blocking(move || {
        let mut found = Source::NotFound;
        walk(archive.path(), &sha, |path, reader| {
            if path != file {
                return Ok(true);
            }
            found = match archive::read_capped(reader, max_bytes)? {
                Some(bytes) => Source::Text(String::from_utf8_lossy(&bytes).into_owned()),
                None => Source::TooLarge,
            };
            Ok(false)
        })?;
        Ok(found)
    })
    .await
    .map_err(joined)?
}
