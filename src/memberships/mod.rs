//! Memberships of standalone repositories: which local user may read, maintain or administer
//! which repository. Kept in `repository_members` beside the GitHub-synced rows (those keep
//! coming from GitHub, see `permissions`, and are never edited here).
//!
//! The API speaks `read`/`maintain`/`admin`; the table keeps the original's words
//! (`user`/`maintainer`/`admin`), which GitHub sync writes too.

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

/// One member as listed.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub login: String,
    pub level: Level,
    /// `local` (granted here) or `github` (synced from GitHub).
    pub source: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("no user named `{0}`")]
    UnknownUser(String),
    #[error("`{0}` is a GitHub repository: its members come from GitHub")]
    GithubManaged(String),
    // Not transparent: the sqlx error stays in the cause chain, where outages are recognised.
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

/// Everyone with a membership, by login: local grants, and GitHub members who have signed in.
pub async fn list(pool: &PgPool, repository: &Repository) -> Result<Vec<Member>, sqlx::Error> {
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT u.login::text, m.level, m.user_id IS NOT NULL FROM repository_members m \
         JOIN users u ON u.id = m.user_id OR (m.user_id IS NULL AND u.github_id = m.github_member_id) \
         WHERE m.repository_id = $1 ORDER BY u.login",
    )
    .bind(repository.id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(login, level, local)| Member {
            login,
            level: Level::from_stored(&level),
            source: if local { "local" } else { "github" },
        })
        .collect())
}

/// Grants (or changes) `login`'s level on a standalone repository.
pub async fn grant(
    pool: &PgPool,
    repository: &Repository,
    login: &str,
    level: Level,
    actor: &AuditActor,
) -> Result<Member, MembershipError> {
    if repository.github_id.is_some() {
        return Err(MembershipError::GithubManaged(repository.name.clone()));
    }
    let mut tx = pool.begin().await?;
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
    audit::record(
        &mut *tx,
        actor,
        "repository.member_grant",
        &format!("repository:{}", repository.id),
        serde_json::json!({"login": user.1, "level": level.as_str()}),
    )
    .await?;
    tx.commit().await?;
    Ok(Member {
        login: user.1,
        level,
        source: "local",
    })
}

/// Ends `login`'s local membership; returns whether there was one. Access ends with it, at
/// once: every request checks membership afresh.
pub async fn revoke(
    pool: &PgPool,
    repository: &Repository,
    login: &str,
    actor: &AuditActor,
) -> Result<bool, MembershipError> {
    if repository.github_id.is_some() {
        return Err(MembershipError::GithubManaged(repository.name.clone()));
    }
    let mut tx = pool.begin().await?;
    let removed = sqlx::query(
        "DELETE FROM repository_members WHERE repository_id = $1 \
         AND user_id = (SELECT id FROM users WHERE login = $2::citext)",
    )
    .bind(repository.id)
    .bind(login)
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
            serde_json::json!({"login": login}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(removed)
}

/// A user's level on a repository (local grant or GitHub-synced), the highest if both.
pub async fn level_of(
    pool: &PgPool,
    repository_id: i64,
    user_id: i64,
) -> Result<Option<Level>, sqlx::Error> {
    let levels: Vec<String> = sqlx::query_scalar(
        "SELECT m.level FROM repository_members m WHERE m.repository_id = $1 AND (m.user_id = $2 \
         OR m.github_member_id = (SELECT github_id FROM users WHERE id = $2))",
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
