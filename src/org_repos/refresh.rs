//! The refresh job: fetches every page of `GET /orgs/{org}/repos` with the installation token
//! and stores the list; when the queue gives it up, the failure is stored instead, so the list
//! does not show as loading forever.

use serde::{Deserialize, Serialize};

use super::list::{self, OrgRepository};
use crate::app::App;
use crate::queue::{JobContext, JobError, JobHandler, JobKind};

pub const REFRESH_JOB: &str = "repository.refresh_org_list";

/// The `repository.refresh_org_list` job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RefreshJob {}

/// Not de-duplicated by the queue: the list's `updating` marker already makes requests wait
/// for the refresh that is queued or running.
impl JobKind for RefreshJob {
    const KIND: &'static str = REFRESH_JOB;
}

impl RefreshJob {
    pub async fn enqueue_on(&self, app: &App) -> Result<(), anyhow::Error> {
        self.enqueue(&app.queue).await?;
        Ok(())
    }
}

pub struct RefreshOrgList(pub App);

#[async_trait::async_trait]
impl JobHandler for RefreshOrgList {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        let app = &self.0;
        let RefreshJob {} = job.job()?;
        let Some(github) = &app.github else {
            return Err(JobError::permanent("GitHub mode is not configured"));
        };
        // Still running: a retry after an outage keeps the list "updating", not expired.
        list::mark_updating(app, false).await?;
        let repositories = match github.org_repositories().await {
            Ok(r) => r,
            Err(e) if e.is_transient() => return Err(JobError::unavailable(e)),
            Err(e) => return Err(JobError::permanent(e)),
        };
        let items = repositories
            .into_iter()
            .map(|r| OrgRepository {
                id: r.id,
                name: r.name,
                description: r.description,
                created_at: r.created_at,
                pushed_at: r.pushed_at,
            })
            .collect();
        list::store(app, items).await?;
        Ok(())
    }

    async fn gave_up(&self, _job: &JobContext, reason: &str) -> Result<(), JobError> {
        list::record_failure(&self.0, reason).await?;
        Ok(())
    }
}
