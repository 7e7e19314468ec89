//! What a git process may do on this host, enforced through git's own configuration rather than
//! by trusting the URL: only the allowed transports run (`protocol.allow=never`, then
//! `protocol.<name>.allow=always` for each), so even a URL stored before validation existed
//! cannot reach `ext::` or a remote helper; and ssh trusts only host keys an administrator put
//! into the known-hosts file (no trust on first use).

use std::path::{Path, PathBuf};

use crate::config::GitConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    protocols: Vec<String>,
    known_hosts: PathBuf,
}

impl Policy {
    pub fn new(protocols: &[String], known_hosts: &Path) -> Policy {
        Policy {
            protocols: protocols.to_vec(),
            known_hosts: known_hosts.to_path_buf(),
        }
    }

    pub fn from_config(config: &GitConfig) -> Policy {
        Policy::new(&config.allowed_protocols, &config.known_hosts_file)
    }

    /// Also allows `protocol` (the scheme of a URL the administrator configured, such as the
    /// GitHub App's git host).
    pub fn allowing(mut self, protocol: &str) -> Policy {
        if !self.protocols.iter().any(|p| p == protocol) {
            self.protocols.push(protocol.to_string());
        }
        self
    }

    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// `git config` entries: every transport refused, then the allowed ones let through.
    pub(super) fn config_entries(&self) -> Vec<(String, String)> {
        let mut entries = vec![("protocol.allow".to_string(), "never".to_string())];
        for p in &self.protocols {
            entries.push((format!("protocol.{p}.allow"), "always".to_string()));
        }
        entries
    }

    /// `GIT_SSH_COMMAND` (run by a shell, hence the quoting): batch mode, strict host keys from
    /// the configured file only.
    pub(super) fn ssh_command(&self) -> String {
        format!(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={}",
            shell_quote(&self.known_hosts.display().to_string())
        )
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `GIT_CONFIG_COUNT` / `GIT_CONFIG_KEY_<n>` / `GIT_CONFIG_VALUE_<n>` for `entries`: git
/// configuration through the environment, which no file and no argument can override.
pub fn config_env(entries: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = vec![("GIT_CONFIG_COUNT".to_string(), entries.len().to_string())];
    for (i, (key, value)) in entries.iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{i}"), key.clone()));
        env.push((format!("GIT_CONFIG_VALUE_{i}"), value.clone()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowed_transports_are_let_through() {
        let policy = Policy::new(&["https".into(), "file".into()], Path::new("/k h"));
        let entries = policy.clone().allowing("http").config_entries();
        assert_eq!(entries[0], ("protocol.allow".into(), "never".into()));
        let allowed: Vec<&str> = entries[1..].iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            allowed,
            [
                "protocol.https.allow",
                "protocol.file.allow",
                "protocol.http.allow"
            ]
        );
        assert!(
            policy
                .ssh_command()
                .ends_with("StrictHostKeyChecking=yes -o UserKnownHostsFile='/k h'")
        );
        let env = config_env(&entries);
        assert_eq!(env[0], ("GIT_CONFIG_COUNT".into(), "4".into()));
        assert_eq!(env[1], ("GIT_CONFIG_KEY_0".into(), "protocol.allow".into()));
    }
}
