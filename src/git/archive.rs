//! `git archive` streamed through zstd into a file, hashing the compressed bytes on the way so
//! the SHA-256 sidecar needs no second read.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::command::{GitError, environment};
use super::policy::Policy;
use super::url::redact;

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// Bytes of the compressed archive.
    pub size: u64,
    /// Lowercase hex SHA-256 of the compressed archive.
    pub sha256: String,
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Compression level: fast enough to keep up with git, good enough for source trees.
const ZSTD_LEVEL: i32 = 3;

pub async fn archive_to_file(
    repo: &Path,
    sha: &str,
    out: &Path,
    policy: &Policy,
    timeout: Duration,
) -> Result<ArchiveInfo, GitError> {
    let io =
        |e: std::io::Error| GitError::Io(format!("writing the archive {}: {e}", out.display()));
    let prefix = format!("--prefix={sha}/");
    let mut cmd = Command::new("git");
    cmd.current_dir(repo)
        .args(["archive", "--format=tar", &prefix, "--end-of-options", sha])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd.envs(environment(repo, policy, &[]));
    let work = async {
        let mut child = cmd
            .spawn()
            .map_err(|e| GitError::Io(format!("cannot run git archive: {e}")))?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| GitError::Io("git archive has no stdout".into()))?;
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| GitError::Io("git archive has no stderr".into()))?;
        let file = std::fs::File::create(out).map_err(io)?;
        let hashing = Hashing {
            inner: std::io::BufWriter::new(file),
            hasher: Sha256::new(),
            size: 0,
        };
        let mut encoder = zstd::stream::write::Encoder::new(hashing, ZSTD_LEVEL).map_err(io)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stdout.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            encoder.write_all(&buf[..n]).map_err(io)?;
        }
        let mut hashing = encoder.finish().map_err(io)?;
        hashing.flush().map_err(io)?;
        hashing.inner.get_ref().sync_all().map_err(io)?;
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err).await;
        let status = child.wait().await.map_err(io)?;
        if !status.success() {
            return Err(GitError::Failed {
                stderr: redact(err.trim()),
            });
        }
        Ok(ArchiveInfo {
            size: hashing.size,
            sha256: hex::encode(hashing.hasher.finalize()),
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(GitError::Timeout(timeout)),
    }
}
