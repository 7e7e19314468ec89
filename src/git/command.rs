//! Running git: a clean environment (no user or system configuration, no prompts), the caller's
//! credentials as `GIT_CONFIG_*` variables, a deadline that kills the process, and errors
//! classified from git's own messages.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitError {
    #[error("the commit does not exist on the remote (it may have been force-pushed away): {0}")]
    CommitNotFound(String),
    #[error("the git server refused the credentials: {0}")]
    Unauthorized(String),
    #[error("the git server could not be reached: {0}")]
    Unreachable(String),
    #[error("git did not finish within {0:?}")]
    Timeout(Duration),
    #[error("git failed: {stderr}")]
    Failed { stderr: String },
    #[error("{0}")]
    Io(String),
}

impl GitError {
    /// Whether trying again later can help (a server that is down or slow may come back).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GitError::Unreachable(_) | GitError::Timeout(_) | GitError::Io(_)
        )
    }
}

/// Base environment for every git process.
pub fn clean_env(home: &Path) -> Vec<(&'static str, String)> {
    vec![
        (
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        ("HOME", home.display().to_string()),
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("GIT_TERMINAL_PROMPT", "0".into()),
        ("GIT_ASKPASS", "true".into()),
        ("SSH_ASKPASS", "true".into()),
        (
            "GIT_SSH_COMMAND",
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new".into(),
        ),
        ("LC_ALL", "C".into()),
    ]
}

/// Runs `git <args>` in `dir`; returns stdout.
pub async fn git(
    dir: &Path,
    args: &[&str],
    extra_env: &[(String, String)],
    timeout: Duration,
) -> Result<Vec<u8>, GitError> {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.kill_on_drop(true);
    for (k, v) in clean_env(dir) {
        cmd.env(k, v);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .map_err(|e| GitError::Io(format!("cannot run git: {e}")))?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(result) => result.map_err(|e| GitError::Io(format!("git: {e}")))?,
        Err(_) => return Err(GitError::Timeout(timeout)),
    };
    if output.status.success() {
        return Ok(output.stdout);
    }
    Err(classify(String::from_utf8_lossy(&output.stderr).trim()))
}

/// Maps git's stderr to what happened, from the messages of git's transports.
fn classify(stderr: &str) -> GitError {
    let lower = stderr.to_ascii_lowercase();
    let detail = stderr.lines().last().unwrap_or(stderr).to_string();
    if [
        "not our ref",
        "couldn't find remote ref",
        "unadvertised object",
        "no such remote ref",
        "not a valid object name",
        "bad object",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        GitError::CommitNotFound(detail)
    } else if [
        "authentication failed",
        "could not read username",
        "could not read password",
        // HTTP statuses as git's curl transport reports them; a bare "403" would also match
        // the many shas and paths that contain those digits.
        "returned error: 403",
        "returned error: 401",
        "permission denied",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        GitError::Unauthorized(detail)
    } else if [
        "could not resolve host",
        "failed to connect",
        "connection refused",
        "connection timed out",
        "operation timed out",
        "could not read from remote",
        "unable to access",
        "does not appear to be a git repository",
        "the remote end hung up",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        GitError::Unreachable(detail)
    } else {
        GitError::Failed {
            stderr: stderr.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_git_messages() {
        assert!(matches!(
            classify("fatal: remote error: upload-pack: not our ref 1234"),
            GitError::CommitNotFound(_)
        ));
        assert!(matches!(
            classify("fatal: could not read Username for 'https://h': terminal prompts disabled"),
            GitError::Unauthorized(_)
        ));
        assert!(matches!(
            classify(
                "fatal: unable to access 'http://127.0.0.1:1/x/': Failed to connect to 127.0.0.1 port 1"
            ),
            GitError::Unreachable(_)
        ));
        assert!(matches!(
            classify("fatal: something else"),
            GitError::Failed { .. }
        ));
        assert!(matches!(
            classify(
                "fatal: unable to access 'https://h/x/': The requested URL returned error: 403"
            ),
            GitError::Unauthorized(_)
        ));
        // A missing file at a sha whose digits happen to contain "403" or "401".
        assert!(matches!(
            classify(
                "fatal: path '.cocov.yaml' does not exist in '0d276c2cad40319b7938b602afc326d175c83e53'"
            ),
            GitError::Failed { .. }
        ));
    }
}
