//! The parts of GitHub's REST payloads cocov reads and writes. Unknown fields are ignored, so
//! these stay valid as GitHub adds fields.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// GitHub limits a status description to 140 characters.
pub const STATUS_DESCRIPTION_MAX_CHARS: usize = 140;

/// A repository (`GET /repos/{org}/{name}`, `/repositories/{id}`, `/orgs/{org}/repos`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    pub id: i64,
    pub name: String,
    pub full_name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Absent for a repository that has no commits yet; "main" then, as GitHub would create.
    #[serde(default = "default_branch")]
    pub default_branch: String,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub archived: bool,
    /// ISO 8601 times as GitHub sends them; kept as text for the organisation list.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Absent for a repository nobody pushed to yet.
    #[serde(default)]
    pub pushed_at: Option<String>,
}

fn default_branch() -> String {
    "main".into()
}

/// A user's rights on a repository. `maintain` and `triage` are missing on old GHES versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub maintain: bool,
    #[serde(default)]
    pub push: bool,
    #[serde(default)]
    pub triage: bool,
    #[serde(default)]
    pub pull: bool,
}

/// A repository collaborator with its effective permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collaborator {
    pub id: i64,
    pub login: String,
    #[serde(default)]
    pub permissions: Permissions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub login: String,
}

/// The signed-in user (`GET /user` with their token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticatedUser {
    pub id: i64,
    pub login: String,
    #[serde(default)]
    pub avatar_url: Option<String>,
}

/// One of the signed-in user's addresses (`GET /user/emails`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEmail {
    pub email: String,
    #[serde(default)]
    pub verified: bool,
    #[serde(default)]
    pub primary: bool,
}

/// A repository as listed for a user's token, with that user's permissions on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryAccess {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub permissions: Permissions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

/// A commit status to post. An empty `description` and a `None` `target_url` are left out of
/// the request, as the original did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    pub state: StatusState,
    pub context: String,
    pub description: String,
    pub target_url: Option<String>,
}

impl CommitStatus {
    /// The request body, with the description cut to GitHub's 140 characters (GitHub answers
    /// 422 to a longer one).
    pub(crate) fn to_body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "state": self.state, "context": self.context });
        if !self.description.is_empty() {
            body["description"] = truncate_chars(&self.description, STATUS_DESCRIPTION_MAX_CHARS)
                .to_string()
                .into();
        }
        if let Some(url) = &self.target_url {
            body["target_url"] = url.clone().into();
        }
        body
    }
}

/// At most `max` characters of `s`, cut at a character boundary.
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// The newest commit of a branch (`GET /repos/{org}/{name}/commits?sha=…&per_page=1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitSummary {
    pub sha: String,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    /// The author date.
    #[serde(with = "time::serde::rfc3339")]
    pub date: OffsetDateTime,
}

/// The wire shape of one entry of the commits list.
#[derive(Debug, Deserialize)]
pub(crate) struct CommitListEntry {
    pub sha: String,
    pub commit: CommitDetail,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommitDetail {
    pub message: String,
    pub author: Option<GitActor>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct GitActor {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(with = "time::serde::rfc3339")]
    pub date: OffsetDateTime,
}

/// `GET /repos/{org}/{name}/contents/{path}` for a file. Directories answer with an array and
/// symlinks/submodules with other `type`s; those are not files.
#[derive(Debug, Deserialize)]
pub(crate) struct ContentEntry {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub size: u64,
}

/// `POST /app/installations/{id}/access_tokens` → 201.
#[derive(Debug, Deserialize)]
pub(crate) struct AccessToken {
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// GitHub's error body: `{"message": "...", "documentation_url": "..."}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_chars("abc", 5), "abc");
        assert_eq!(truncate_chars("abcdef", 3), "abc");
        assert_eq!(truncate_chars("ééé", 2), "éé");
        let long = "✓".repeat(200);
        assert_eq!(truncate_chars(&long, 140).chars().count(), 140);
    }

    #[test]
    fn status_body_leaves_out_empty_fields() {
        let status = CommitStatus {
            state: StatusState::Pending,
            context: "cocov".into(),
            description: String::new(),
            target_url: None,
        };
        assert_eq!(
            status.to_body(),
            serde_json::json!({"state": "pending", "context": "cocov"})
        );
    }
}
