//! A repository added from GitHub starts with the head of its default branch, so it shows
//! results before its next push.

use serde_json::json;

use crate::app::App;
use crate::queue::{JobContext, JobError, JobHandler};

pub const INITIALIZE_JOB: &str = "repository.initialize";

pub async fn enqueue_initialize(app: &App, repository_id: i64) -> Result<(), anyhow::Error> {
    app.queue
        .enqueue(INITIALIZE_JOB, json!({"repository_id": repository_id}))
        .await?;
    Ok(())
}

pub struct Initialize(pub App);

#[async_trait::async_trait]
impl JobHandler for Initialize {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        let app = &self.0;
        let id = job.payload["repository_id"]
            .as_i64()
            .ok_or_else(|| JobError::permanent("no repository_id"))?;
        let (Some(repo), Some(github)) = (
            super::find(&app.db, id)
                .await
                .map_err(JobError::from_cause)?,
            &app.github,
        ) else {
            return Ok(());
        };
        let head = match github.latest_commit(&repo.name, &repo.default_branch).await {
            Ok(head) => head,
            Err(e) if e.is_transient() => return Err(JobError::unavailable(e)),
            Err(e) => return Err(JobError::permanent(e)),
        };
        // An empty repository has nothing to check yet; its first push will.
        let Some(head) = head else { return Ok(()) };
        let registered =
            crate::commits::register_push(app, &repo, &head.sha, Some(&repo.default_branch))
                .await
                .map_err(JobError::from_cause)?;
        app.queue
            .enqueue(
                crate::webhooks::ANNOUNCE_JOB,
                json!({"commit_id": registered.commit_id}),
            )
            .await
            .map_err(JobError::from_cause)?;
        Ok(())
    }
}
