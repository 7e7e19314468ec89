//! Repository records and the validation of new ones.

use serde::Serialize;
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Repository {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub default_branch: String,
    pub github_id: Option<i64>,
    pub git_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Where a repository's commits come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A repository of the GitHub App's organisation.
    GitHub { github_id: i64 },
    /// Any git server (standalone mode): `file://`, `https://` or `ssh://`.
    GitUrl(String),
}

#[derive(Debug, Clone)]
pub struct NewRepository {
    pub name: String,
    pub description: Option<String>,
    pub default_branch: String,
    pub source: Source,
}

#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("Repository already exists on this instance: `{0}`")]
    AlreadyExists(String),
    #[error(
        "`{0}` is not a valid repository name: use letters, digits, `-`, `_` and `.` (at most 100)"
    )]
    InvalidName(String),
    #[error("`{0}` is not a valid branch name")]
    InvalidBranch(String),
    #[error(
        "`{0}` is not a supported git URL: use file://, https:// or ssh:// (or user@host:path)"
    )]
    InvalidGitUrl(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// GitHub's rule for repository names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A conservative subset of git's ref-name rules (git check-ref-format).
pub fn valid_branch(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.ends_with(".lock")
        && !name.starts_with('-')
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && name
            .chars()
            .all(|c| !c.is_control() && !" ~^:?*[\\".contains(c))
}

pub fn valid_git_url(url: &str) -> bool {
    let scheme_ok = ["file://", "https://", "http://", "ssh://", "git://"]
        .iter()
        .any(|s| url.starts_with(s) && url.len() > s.len());
    // scp-like `user@host:path`
    let scp_ok = !url.contains("://")
        && url
            .split_once(':')
            .is_some_and(|(host, path)| host.contains('@') && !path.is_empty());
    (scheme_ok || scp_ok) && !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

impl NewRepository {
    pub fn validate(&self) -> Result<(), RepositoryError> {
        if !valid_name(&self.name) {
            return Err(RepositoryError::InvalidName(self.name.clone()));
        }
        if !valid_branch(&self.default_branch) {
            return Err(RepositoryError::InvalidBranch(self.default_branch.clone()));
        }
        if let Source::GitUrl(url) = &self.source
            && !valid_git_url(url)
        {
            return Err(RepositoryError::InvalidGitUrl(url.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_branches_and_urls() {
        assert!(valid_name("api") && valid_name("my.repo-2_x"));
        assert!(!valid_name("") && !valid_name("a/b") && !valid_name("..") && !valid_name("a b"));
        assert!(valid_branch("main") && valid_branch("feature/x-1"));
        for bad in ["", "a..b", "a b", "x.lock", "/x", "x/", "a~1", "-x", "a//b"] {
            assert!(!valid_branch(bad), "{bad}");
        }
        for ok in [
            "file:///srv/git/a.git",
            "https://git.example/a.git",
            "ssh://git@h/a.git",
            "git@h:a.git",
        ] {
            assert!(valid_git_url(ok), "{ok}");
        }
        for bad in [
            "",
            "/srv/a.git",
            "ftp://h/a",
            "https://",
            "https://h/a b",
            "file://",
        ] {
            assert!(!valid_git_url(bad), "{bad}");
        }
    }
}
