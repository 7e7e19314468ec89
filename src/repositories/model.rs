//! Repository records and the validation of new ones.

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::git::{GitUrlError, check_url, redact};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Repository {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub default_branch: String,
    pub github_id: Option<i64>,
    /// Shown redacted: a row stored before URLs with credentials were refused may hold some.
    #[serde(serialize_with = "redacted")]
    pub git_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

fn redacted<S: Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    url.as_deref().map(redact).serialize(s)
}

/// Where a repository's commits come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A repository of the GitHub App's organisation.
    GitHub { github_id: i64 },
    /// Any git server (standalone mode), by a URL that passes `git::check_url`.
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
    #[error(transparent)]
    GitUrl(#[from] GitUrlError),
    // Not transparent: the sqlx error stays in the cause chain, where outages are recognised.
    #[error("{0}")]
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

impl NewRepository {
    /// `allowed_protocols`: the configured `git.allowed_protocols`.
    pub fn validate(&self, allowed_protocols: &[String]) -> Result<(), RepositoryError> {
        if !valid_name(&self.name) {
            return Err(RepositoryError::InvalidName(self.name.clone()));
        }
        if !valid_branch(&self.default_branch) {
            return Err(RepositoryError::InvalidBranch(self.default_branch.clone()));
        }
        if let Source::GitUrl(url) = &self.source {
            check_url(url, allowed_protocols)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_branches() {
        assert!(valid_name("api") && valid_name("my.repo-2_x"));
        assert!(!valid_name("") && !valid_name("a/b") && !valid_name("..") && !valid_name("a b"));
        assert!(valid_branch("main") && valid_branch("feature/x-1"));
        for bad in ["", "a..b", "a b", "x.lock", "/x", "x/", "a~1", "-x", "a//b"] {
            assert!(!valid_branch(bad), "{bad}");
        }
    }
}
