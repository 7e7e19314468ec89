//! The git CLI, as the reference implementation of fetching: exactly one commit at depth 1 into
//! a scratch bare repository, then reading what we need from it (metadata, files, the tree as an
//! archive). Credentials arrive through git's environment configuration, never argv or a URL;
//! prompts are off, every command has a deadline and runs under the host's `Policy` (allowed
//! transports, trusted ssh host keys), and `--` or `--end-of-options` comes before every URL,
//! ref and sha so none of them can be read as an option. `url` holds the check every stored
//! repository URL passes and the redaction of credentials in anything shown.

mod archive;
mod command;
mod policy;
mod tree_file;
mod url;

pub use archive::{ArchiveInfo, archive_to_file};
pub use command::{GitError, git};
pub use policy::{Policy, config_env};
pub use tree_file::TreeFile;
pub use url::{GitUrlError, KNOWN_PROTOCOLS, check as check_url, redact};

use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

/// A scratch bare repository holding fetched commits; deleted with its temporary directory.
pub struct Scratch {
    dir: tempfile::TempDir,
    policy: Policy,
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
    /// An empty scratch repository whose every git command runs under `policy`.
    pub async fn new(policy: Policy, timeout: Duration) -> Result<Scratch, GitError> {
        let dir = tempfile::Builder::new()
            .prefix("cocov-git-")
            .tempdir()
            .map_err(|e| GitError::Io(format!("cannot create a scratch directory: {e}")))?;
        let scratch = Scratch { dir, policy };
        scratch
            .git(&["init", "-q", "--bare", "."], &[], timeout)
            .await?;
        Ok(scratch)
    }

    async fn git(
        &self,
        args: &[&str],
        config: &[(String, String)],
        timeout: Duration,
    ) -> Result<Vec<u8>, GitError> {
        git(self.path(), args, &self.policy, config, timeout).await
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fetches exactly `sha` (depth 1) from `url`. `auth_config` carries credentials as git
    /// configuration entries.
    pub async fn fetch(
        &self,
        url: &str,
        sha: &str,
        auth_config: &[(String, String)],
        timeout: Duration,
    ) -> Result<(), GitError> {
        self.git(
            &[
                "fetch",
                "-q",
                "--depth=1",
                "--no-tags",
                "--no-write-fetch-head",
                "--",
                url,
                sha,
            ],
            auth_config,
            timeout,
        )
        .await
        .map(|_| ())
    }

    pub async fn commit_info(&self, sha: &str, timeout: Duration) -> Result<CommitInfo, GitError> {
        let out = self
            .git(
                &[
                    "log",
                    "-1",
                    "--format=%an%x00%ae%x00%aI%x00%B",
                    "--end-of-options",
                    sha,
                    "--",
                ],
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

    /// Every file path of the tree at `sha`.
    pub async fn list_files(&self, sha: &str, timeout: Duration) -> Result<Vec<String>, GitError> {
        let out = self
            .git(
                &[
                    "ls-tree",
                    "-r",
                    "-z",
                    "--name-only",
                    "--end-of-options",
                    sha,
                ],
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
        archive_to_file(self.path(), sha, out, &self.policy, timeout).await
    }

    pub fn scratch_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Whether a string is a full object name (40 hex for SHA-1, 64 for SHA-256).
pub fn is_full_sha(sha: &str) -> bool {
    matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}
