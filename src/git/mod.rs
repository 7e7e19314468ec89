//! The git CLI, as the reference implementation of fetching: exactly one commit at depth 1 into
//! a scratch bare repository, then reading what we need from it (metadata, files, the tree as an
//! archive). Credentials arrive through git's environment configuration, never argv or a URL;
//! prompts are off and every command has a deadline.

mod archive;
mod command;
mod tree_file;

pub use archive::{ArchiveInfo, archive_to_file};
pub use command::{GitError, git};
pub use tree_file::TreeFile;

use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

/// A scratch bare repository holding fetched commits; deleted with its temporary directory.
pub struct Scratch {
    dir: tempfile::TempDir,
}

/// Metadata of a fetched commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub author_name: String,
    pub author_email: String,
    pub message: String,
    pub committed_at: Option<OffsetDateTime>,
}

impl Scratch {
    pub async fn new(timeout: Duration) -> Result<Scratch, GitError> {
        let dir = tempfile::Builder::new()
            .prefix("cocov-git-")
            .tempdir()
            .map_err(|e| GitError::Io(format!("cannot create a scratch directory: {e}")))?;
        git(dir.path(), &["init", "-q", "--bare", "."], &[], timeout).await?;
        Ok(Scratch { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fetches exactly `sha` (depth 1) from `url`. `auth_env` carries credentials.
    pub async fn fetch(
        &self,
        url: &str,
        sha: &str,
        auth_env: &[(String, String)],
        timeout: Duration,
    ) -> Result<(), GitError> {
        git(
            self.path(),
            &[
                "fetch",
                "-q",
                "--depth=1",
                "--no-tags",
                "--no-write-fetch-head",
                url,
                sha,
            ],
            auth_env,
            timeout,
        )
        .await
        .map(|_| ())
    }

    pub async fn commit_info(&self, sha: &str, timeout: Duration) -> Result<CommitInfo, GitError> {
        let out = git(
            self.path(),
            &["log", "-1", "--format=%an%x00%ae%x00%aI%x00%B", sha],
            &[],
            timeout,
        )
        .await?;
        let text = String::from_utf8_lossy(&out);
        let mut parts = text.splitn(4, '\0');
        let author_name = parts.next().unwrap_or_default().to_string();
        let author_email = parts.next().unwrap_or_default().to_string();
        let date = parts.next().unwrap_or_default();
        let message = parts.next().unwrap_or_default().trim_end().to_string();
        let committed_at = OffsetDateTime::parse(
            date,
            &time::format_description::well_known::Iso8601::DEFAULT,
        )
        .ok();
        Ok(CommitInfo {
            author_name,
            author_email,
            message,
            committed_at,
        })
    }

    /// A file's content at `sha`, or None when the path does not exist there.
    pub async fn read_file(
        &self,
        sha: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, GitError> {
        let spec = format!("{sha}:{path}");
        match git(self.path(), &["cat-file", "blob", &spec], &[], timeout).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(GitError::Failed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every file path of the tree at `sha`.
    pub async fn list_files(&self, sha: &str, timeout: Duration) -> Result<Vec<String>, GitError> {
        let out = git(
            self.path(),
            &["ls-tree", "-r", "-z", "--name-only", sha],
            &[],
            timeout,
        )
        .await?;
        Ok(out
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect())
    }

    /// Writes the tree at `sha` as a zstd-compressed tar under `<sha>/` to `out`.
    pub async fn archive(
        &self,
        sha: &str,
        out: &Path,
        timeout: Duration,
    ) -> Result<ArchiveInfo, GitError> {
        archive_to_file(self.path(), sha, out, timeout).await
    }

    pub fn scratch_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Whether a string is a full object name (40 hex for SHA-1, 64 for SHA-256).
pub fn is_full_sha(sha: &str) -> bool {
    matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}
