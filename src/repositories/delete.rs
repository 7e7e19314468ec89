//! Deleting a repository: its blobs under `<id>/` and then its rows (every dependent row goes
//! with it through ON DELETE CASCADE). Done as a job so a large repository never holds up a
//! request; both steps are idempotent, so a retry after a crash finishes the work.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::App;
use crate::audit::{self, AuditActor};
use crate::queue::{JobContext, JobError, JobHandler, JobKind};
use crate::storage::BlobPrefix;

pub const DELETE_JOB: &str = "repository.delete";

/// The `repository.delete` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteJob {
    pub repository_id: i64,
}

impl JobKind for DeleteJob {
    const KIND: &'static str = DELETE_JOB;
}

/// Queues the deletion of a repository and records who asked for it.
pub async fn enqueue_delete(
    app: &App,
    repository_id: i64,
    actor: &AuditActor,
) -> Result<(), anyhow::Error> {
    audit::record(
        &app.db,
        actor,
        "repository.delete",
        &format!("repository:{repository_id}"),
        json!({}),
    )
    .await?;
    DeleteJob { repository_id }.enqueue(&app.queue).await?;
    Ok(())
}

/// Removes everything the repository owns; returns the number of blobs deleted.
pub async fn delete_repository_data(app: &App, repository_id: i64) -> Result<u64, anyhow::Error> {
    let prefix = BlobPrefix::new(&format!("{repository_id}/"))?;
    let blobs = app.storage.delete_prefix(&prefix).await?;
    sqlx::query("DELETE FROM repositories WHERE id = $1")
        .bind(repository_id)
        .execute(&app.db)
        .await?;
    Ok(blobs)
}

pub struct DeleteRepository(pub App);

#[async_trait::async_trait]
impl JobHandler for DeleteRepository {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        let payload: DeleteJob = job.job()?;
        let blobs = delete_repository_data(&self.0, payload.repository_id).await?;
        tracing::info!(
            repository_id = payload.repository_id,
            blobs,
            "repository deleted"
        );
        Ok(())
    }
}
