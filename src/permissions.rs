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
        set_level(&mut tx, repository_id, *github_id, level).await?;
    }
    tx.commit().await?;
    Ok(levels.len())
}

/// Replaces one user's memberships with what GitHub shows that user (the organisation's
/// repositories listed for their own token, with their permissions), as the original's
/// `UpdateUserPermissionsJob` did: the other side of [`sync_repository`], run at sign-in so a
/// user sees their repositories at once. Returns how many repositories they may see.
pub async fn sync_user(
    app: &App,
    github_user_id: i64,
    user_token: &str,
) -> Result<usize, anyhow::Error> {
    let Some(github) = &app.github else {
        return Ok(0);
    };
    let visible = github.user_org_repositories(user_token).await?;
    let levels: HashMap<i64, &'static str> = visible
        .iter()
        .map(|r| (r.id, permission_level(&r.permissions)))
        .collect();
    let github_ids: Vec<i64> = levels.keys().copied().collect();
    // Only repositories this instance checks; GitHub knows many more.
    let known: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, github_id FROM repositories WHERE github_id = ANY($1)")
            .bind(&github_ids)
            .fetch_all(&app.db)
            .await?;
    let mut tx = app.db.begin().await?;
    let keep: Vec<i64> = known.iter().map(|(id, _)| *id).collect();
    sqlx::query(
        "DELETE FROM repository_members WHERE github_member_id = $1 \
         AND NOT (repository_id = ANY($2))",
    )
    .bind(github_user_id)
    .bind(&keep)
    .execute(&mut *tx)
    .await?;
    for (repository_id, github_id) in &known {
        set_level(&mut tx, *repository_id, github_user_id, levels[github_id]).await?;
    }
    tx.commit().await?;
    Ok(known.len())
}

/// A GitHub user's level on a repository, added or updated.
async fn set_level(
    tx: &mut sqlx::PgConnection,
    repository_id: i64,
    github_user_id: i64,
    level: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO repository_members (repository_id, github_member_id, level) VALUES ($1, $2, $3) \
         ON CONFLICT (repository_id, github_member_id) DO UPDATE SET level = EXCLUDED.level",
    )
    .bind(repository_id)
    .bind(github_user_id)
    .bind(level)
    .execute(tx)
    .await?;
    Ok(())
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
                .map_err(JobError::from_cause)?;
        for id in ids {
            enqueue_sync_repository(&self.0, id).await?;
        }
        Ok(())
    }
}
