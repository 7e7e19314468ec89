//! Memberships of standalone repositories: which local user may read, maintain or administer
//! which repository. Kept in `repository_members` beside the GitHub-synced rows (those keep
//! coming from GitHub, see `permissions`, and are never edited here).
//!
//! The API speaks `read`/`maintain`/`admin`; the table keeps the original's words
//! (`user`/`maintainer`/`admin`), which GitHub sync writes too.
//!
//! A membership is granted to a user or to an OIDC group (everyone whose last OIDC sign-in
//! listed that group, see `auth::oidc`). A user's level is the highest of their own and their
//! groups' memberships.

mod abilities;

pub use abilities::SettingsPermissions;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::audit::{self, AuditActor};
use crate::repositories::Repository;

/// What a member may do: read it, maintain it (settings, secrets, ignore rules, cancelling
/// checks), or administer it (all that, and its members).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Read,
    Maintain,
    Admin,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Maintain => "maintain",
            Level::Admin => "admin",
        }
    }

    pub fn parse(word: &str) -> Option<Level> {
        match word {
            "read" => Some(Level::Read),
            "maintain" => Some(Level::Maintain),
            "admin" => Some(Level::Admin),
            _ => None,
        }
    }

    fn stored(self) -> &'static str {
        match self {
            Level::Read => "user",
            Level::Maintain => "maintainer",
            Level::Admin => "admin",
        }
    }

    fn from_stored(word: &str) -> Level {
        match word {
            "admin" => Level::Admin,
            "maintainer" => Level::Maintain,
            _ => Level::Read,
        }
    }
}

/// Who a membership is for: a user (by login) or an OIDC group (by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    User(&'a str),
    Group(&'a str),
}

impl Subject<'_> {
    fn describe(self) -> serde_json::Value {
        match self {
            Subject::User(login) => serde_json::json!({"login": login}),
            Subject::Group(group) => serde_json::json!({"group": group}),
        }
    }
}

/// One member as listed: a user (`login`) or a group (`group`), told apart by `kind`.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// `user` or `group`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub level: Level,
    /// `local` (granted here) or `github` (synced from GitHub).
    pub source: &'static str,
}

impl Member {
    /// The login, or `group:NAME`, for messages and listings.
    pub fn name(&self) -> String {
        match (&self.login, &self.group) {
            (Some(login), _) => login.clone(),
            (None, Some(group)) => format!("group:{group}"),
            (None, None) => String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("no user named `{0}`")]
    UnknownUser(String),
    #[error("`{0}` is not a valid group name: use 1 to 255 characters, no control characters")]
    InvalidGroup(String),
    #[error("`{0}` is a GitHub repository: its members come from GitHub")]
    GithubManaged(String),
    // Not transparent: the sqlx error stays in the cause chain, where outages are recognised.
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

fn valid_group(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && !name.chars().any(char::is_control)
}

/// Everyone with a membership: users by login (local grants, and GitHub members who have
/// signed in), then groups by name.
pub async fn list(pool: &PgPool, repository: &Repository) -> Result<Vec<Member>, sqlx::Error> {
    let rows: Vec<(Option<String>, Option<String>, String, bool)> = sqlx::query_as(
        "SELECT u.login::text, NULL::text, m.level, m.user_id IS NOT NULL FROM repository_members m \
         JOIN users u ON u.id = m.user_id OR (m.user_id IS NULL AND u.github_id = m.github_member_id) \
         WHERE m.repository_id = $1 \
         UNION ALL SELECT NULL, m.oidc_group, m.level, true FROM repository_members m \
         WHERE m.repository_id = $1 AND m.oidc_group IS NOT NULL \
         ORDER BY 2 NULLS FIRST, 1",
    )
    .bind(repository.id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(login, group, level, local)| Member {
            kind: if group.is_some() { "group" } else { "user" },
            login,
            group,
            level: Level::from_stored(&level),
            source: if local { "local" } else { "github" },
        })
        .collect())
}

/// Grants (or changes) a user's or group's level on a standalone repository.
pub async fn grant(
    pool: &PgPool,
    repository: &Repository,
    subject: Subject<'_>,
    level: Level,
    actor: &AuditActor,
) -> Result<Member, MembershipError> {
    if repository.github_id.is_some() {
        return Err(MembershipError::GithubManaged(repository.name.clone()));
    }
    let mut tx = pool.begin().await?;
    let (member, mut details) = match subject {
        Subject::User(login) => {
            let user: (i64, String) =
                sqlx::query_as("SELECT id, login::text FROM users WHERE login = $1::citext")
                    .bind(login)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| MembershipError::UnknownUser(login.to_string()))?;
            sqlx::query(
                "INSERT INTO repository_members (repository_id, user_id, level) VALUES ($1, $2, $3) \
                 ON CONFLICT (repository_id, user_id) DO UPDATE SET level = EXCLUDED.level",
            )
            .bind(repository.id)
            .bind(user.0)
            .bind(level.stored())
            .execute(&mut *tx)
            .await?;
            let details = Subject::User(&user.1).describe();
            let member = Member {
                kind: "user",
                login: Some(user.1),
                group: None,
                level,
                source: "local",
            };
            (member, details)
        }
        Subject::Group(group) => {
            if !valid_group(group) {
                return Err(MembershipError::InvalidGroup(group.to_string()));
            }
            sqlx::query(
                "INSERT INTO repository_members (repository_id, oidc_group, level) VALUES ($1, $2, $3) \
                 ON CONFLICT (repository_id, oidc_group) DO UPDATE SET level = EXCLUDED.level",
            )
            .bind(repository.id)
            .bind(group)
            .bind(level.stored())
            .execute(&mut *tx)
            .await?;
            let member = Member {
                kind: "group",
                login: None,
                group: Some(group.to_string()),
                level,
                source: "local",
            };
            (member, subject.describe())
        }
    };
    details["level"] = level.as_str().into();
    audit::record(
        &mut *tx,
        actor,
        "repository.member_grant",
        &format!("repository:{}", repository.id),
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(member)
}

/// Ends a user's or group's local membership; returns whether there was one. Access ends
/// with it, at once: every request checks membership afresh.
pub async fn revoke(
    pool: &PgPool,
    repository: &Repository,
    subject: Subject<'_>,
    actor: &AuditActor,
) -> Result<bool, MembershipError> {
    if repository.github_id.is_some() {
        return Err(MembershipError::GithubManaged(repository.name.clone()));
    }
    let (sql, name) = match subject {
        Subject::User(login) => (
            "DELETE FROM repository_members WHERE repository_id = $1 \
             AND user_id = (SELECT id FROM users WHERE login = $2::citext)",
            login,
        ),
        Subject::Group(group) => (
            "DELETE FROM repository_members WHERE repository_id = $1 AND oidc_group = $2",
            group,
        ),
    };
    let mut tx = pool.begin().await?;
    let removed = sqlx::query(sql)
        .bind(repository.id)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    if removed {
        audit::record(
            &mut *tx,
            actor,
            "repository.member_revoke",
            &format!("repository:{}", repository.id),
            subject.describe(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(removed)
}

/// A user's level on a repository (local grant, GitHub-synced, or through one of their OIDC
/// groups), the highest of them.
pub async fn level_of(
    pool: &PgPool,
    repository_id: i64,
    user_id: i64,
) -> Result<Option<Level>, sqlx::Error> {
    let levels: Vec<String> = sqlx::query_scalar(
        "SELECT m.level FROM repository_members m WHERE m.repository_id = $1 AND (m.user_id = $2 \
         OR m.github_member_id = (SELECT github_id FROM users WHERE id = $2) \
         OR m.oidc_group IN (SELECT group_name FROM user_oidc_groups WHERE user_id = $2))",
    )
    .bind(repository_id)
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(levels.iter().map(|l| Level::from_stored(l)).max())
}

#[cfg(test)]
mod tests {
    use super::Level;

    #[test]
    fn levels_order_and_words() {
        assert!(Level::Read < Level::Maintain && Level::Maintain < Level::Admin);
        for level in [Level::Read, Level::Maintain, Level::Admin] {
            assert_eq!(Level::parse(level.as_str()), Some(level));
            assert_eq!(Level::from_stored(level.stored()), level);
        }
        assert_eq!(Level::parse("owner"), None);
    }
}
