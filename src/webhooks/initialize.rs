//! A repository added from GitHub starts with the head of its default branch, so it shows
//! results before its next push.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::queue::{JobContext, JobError, JobHandler, JobKind};
use crate::statuses::AnnounceJob;

pub const INITIALIZE_JOB: &str = "repository.initialize";

/// The `repository.initialize` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitializeJob {
    pub repository_id: i64,
}

impl JobKind for InitializeJob {
    const KIND: &'static str = INITIALIZE_JOB;
}

pub async fn enqueue_initialize(app: &App, repository_id: i64) -> Result<(), anyhow::Error> {
    InitializeJob { repository_id }.enqueue(&app.queue).await?;
    Ok(())
}

pub struct Initialize(pub App);

#[async_trait::async_trait]
impl JobHandler for Initialize {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        let app = &self.0;
        let InitializeJob { repository_id: id } = job.job()?;
        let (Some(repo), Some(github)) = (
            crate::repositories::find(&app.db, id)
                .await
                .map_err(JobError::retry)?,
            &app.github,
        ) else {
            return Ok(());
        };
        let head = match github.latest_commit(&repo.name, &repo.default_branch).await {
            Ok(head) => head,
            Err(e) if e.is_transient() => return Err(JobError::retry(e)),
            Err(e) => return Err(JobError::permanent(e)),
        };
        // An empty repository has nothing to check yet; its first push will.
        let Some(head) = head else { return Ok(()) };
        let registered =
            crate::commits::register_push(app, &repo, &head.sha, Some(&repo.default_branch))
                .await
                .map_err(JobError::retry)?;
        AnnounceJob {
            commit_id: registered.commit_id,
        }
        .enqueue(&app.queue)
        .await
        .map_err(JobError::retry)?;
        Ok(())
    }
}
