//! Who may see what, in GitHub mode: each user's level per repository (user, maintainer,
//! admin) from GitHub's collaborator permissions, kept in `repository_members` by GitHub user id
//! so it is known before the user ever logs in. Resynced on membership events, on repository
//! changes and by `cocov admin sync-permissions`.

use std::collections::{HashMap, HashSet};

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::App;
use crate::github::permission_level;
use crate::queue::{JobContext, JobError, JobHandler, JobKind};

pub const SYNC_REPOSITORY_JOB: &str = "permissions.sync_repository";
pub const SYNC_ALL_JOB: &str = "permissions.sync_all";

/// Bursts of membership events within this window resync once.
const SYNC_DEDUP: Duration = Duration::from_secs(5);

/// The `permissions.sync_repository` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncRepositoryJob {
    pub repository_id: i64,
}

impl JobKind for SyncRepositoryJob {
    const KIND: &'static str = SYNC_REPOSITORY_JOB;

    fn dedup(&self) -> Option<(String, Duration)> {
        Some((format!("permissions:{}", self.repository_id), SYNC_DEDUP))
    }
}

/// The `permissions.sync_all` job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncAllJob {}

impl JobKind for SyncAllJob {
    const KIND: &'static str = SYNC_ALL_JOB;

    fn dedup(&self) -> Option<(String, Duration)> {
        Some(("permissions:all".to_string(), SYNC_DEDUP))
    }
}

pub async fn enqueue_sync_repository(app: &App, repository_id: i64) -> Result<(), anyhow::Error> {
    SyncRepositoryJob { repository_id }
        .enqueue(&app.queue)
        .await?;
    Ok(())
}

pub async fn enqueue_sync_all(app: &App) -> Result<(), anyhow::Error> {
    SyncAllJob {}.enqueue(&app.queue).await?;
    Ok(())
}

/// Replaces a repository's members with its current GitHub collaborators; returns how many.
pub async fn sync_repository(app: &App, repository_id: i64) -> Result<usize, anyhow::Error> {
    let Some(github) = &app.github else {
        return Ok(0);
    };
    let Some(repo) = crate::repositories::find(&app.db, repository_id).await? else {
        return Ok(0);
    };
    if repo.github_id.is_none() {
        return Ok(0);
    }
    let mut collaborators = github.collaborators(&repo.name).await?;
    if !app.config.github.allow_outside_collaborators {
        let outside: HashSet<i64> = github
            .outside_collaborators()
            .await?
            .into_iter()
            .map(|u| u.id)
            .collect();
        collaborators.retain(|c| !outside.contains(&c.id));
    }
    let levels: HashMap<i64, &'static str> = collaborators
        .iter()
        .map(|c| (c.id, permission_level(&c.permissions)))
        .collect();
    let mut tx = app.db.begin().await?;
    let ids: Vec<i64> = levels.keys().copied().collect();
    sqlx::query(
        "DELETE FROM repository_members WHERE repository_id = $1 AND github_member_id IS NOT NULL \
         AND NOT (github_member_id = ANY($2))",
    )
    .bind(repository_id)
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    for (github_id, level) in &levels {
        sqlx::query(
            "INSERT INTO repository_members (repository_id, github_member_id, level) VALUES ($1, $2, $3) \
             ON CONFLICT (repository_id, github_member_id) DO UPDATE SET level = EXCLUDED.level",
        )
        .bind(repository_id)
        .bind(github_id)
        .bind(level)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(levels.len())
}

/// A user removed from the organisation loses every token and session at once, and every
/// membership.
pub async fn remove_org_member(app: &App, github_user_id: i64) -> Result<u64, anyhow::Error> {
    let mut tx = app.db.begin().await?;
    let revoked = sqlx::query(
        "DELETE FROM user_tokens WHERE user_id IN (SELECT id FROM users WHERE github_id = $1)",
    )
    .bind(github_user_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM repository_members WHERE github_member_id = $1")
        .bind(github_user_id)
        .execute(&mut *tx)
        .await?;
    crate::audit::record(
        &mut *tx,
        &crate::audit::AuditActor::system(),
        "user.removed_from_organization",
        &format!("github_user:{github_user_id}"),
        json!({"tokens_revoked": revoked}),
    )
    .await?;
    tx.commit().await?;
    Ok(revoked)
}

pub struct SyncRepository(pub App);

#[async_trait::async_trait]
impl JobHandler for SyncRepository {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        let SyncRepositoryJob { repository_id } = job.job()?;
        sync_repository(&self.0, repository_id).await?;
        Ok(())
    }
}

pub struct SyncAll(pub App);

#[async_trait::async_trait]
impl JobHandler for SyncAll {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        let SyncAllJob {} = job.job()?;
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM repositories WHERE github_id IS NOT NULL")
                .fetch_all(&self.0.db)
                .await
                .map_err(JobError::retry)?;
        for id in ids {
            enqueue_sync_repository(&self.0, id).await?;
        }
        Ok(())
    }
}

/// Whether a local user may manage the repository's settings and secrets: a member at the
/// maintainer or admin level, by local membership or by GitHub user id.
pub async fn is_maintainer(
    db: &sqlx::PgPool,
    repository_id: i64,
    user_id: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM repository_members m WHERE m.repository_id = $1 \
         AND m.level IN ('maintainer', 'admin') AND (m.user_id = $2 \
         OR m.github_member_id = (SELECT github_id FROM users WHERE id = $2)))",
    )
    .bind(repository_id)
    .bind(user_id)
    .fetch_one(db)
    .await
}
