//! Running git: a clean environment (no user or system configuration, no prompts), the host's
//! policy (allowed transports, ssh host keys) and the caller's credentials as `GIT_CONFIG_*`
//! variables, a deadline that kills the process, and errors classified from git's own messages
//! with any credential in them redacted.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::policy::{Policy, config_env};
use super::url::redact;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitError {
    #[error("the commit does not exist on the remote (it may have been force-pushed away): {0}")]
    CommitNotFound(String),
    #[error("the git server refused the credentials: {0}")]
    Unauthorized(String),
    #[error(
        "the git server's ssh host key is not trusted: add it to git.known_hosts_file \
         (for example `ssh-keyscan HOST >> FILE`, after checking the key): {0}"
    )]
    UnknownHostKey(String),
    #[error("the git transport is not allowed on this instance (git.allowed_protocols): {0}")]
    TransportNotAllowed(String),
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

/// The whole environment of a git process: nothing inherited but PATH, the policy's transports
/// and ssh command, then the caller's `config` entries (credentials).
pub fn environment(
    home: &Path,
    policy: &Policy,
    config: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        (
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        ("HOME", home.display().to_string()),
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("GIT_TERMINAL_PROMPT", "0".into()),
        ("GIT_ASKPASS", "true".into()),
        ("SSH_ASKPASS", "true".into()),
        ("GIT_SSH_COMMAND", policy.ssh_command()),
        ("LC_ALL", "C".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut entries = policy.config_entries();
    entries.extend_from_slice(config);
    env.extend(config_env(&entries));
    env
}

/// Runs `git <args>` in `dir` under `policy`, with the extra `config` entries; returns stdout.
pub async fn git(
    dir: &Path,
    args: &[&str],
    policy: &Policy,
    config: &[(String, String)],
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
    cmd.envs(environment(dir, policy, config));
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

/// Maps git's stderr to what happened, from the messages of git's transports and ssh.
pub(super) fn classify(stderr: &str) -> GitError {
    let stderr = &redact(stderr);
    let lower = stderr.to_ascii_lowercase();
    let detail = stderr.lines().last().unwrap_or(stderr).to_string();
    if lower.contains("host key verification failed") {
        // Permanent until an administrator trusts the key; ssh names the host on an earlier line.
        GitError::UnknownHostKey(stderr.lines().next().unwrap_or(stderr).to_string())
    } else if lower.contains("transport '") && lower.contains("' not allowed") {
        GitError::TransportNotAllowed(detail)
    } else if [
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
            classify("fatal: transport 'ext' not allowed"),
            GitError::TransportNotAllowed(_)
        ));
        let e = classify(
            "No ED25519 host key is known for h and you have requested strict checking.\n\
             Host key verification failed.\nfatal: Could not read from remote repository.",
        );
        assert!(matches!(e, GitError::UnknownHostKey(_)) && !e.is_transient());
        assert!(e.to_string().contains("No ED25519 host key is known for h"));
        let e = classify("fatal: unable to access 'https://u:hunter2@h/x/': Failed to connect");
        assert!(!e.to_string().contains("hunter2"), "{e}");
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
