//! Announcing a GitHub commit's statuses early: the job reads `.cocov.yaml` at a pushed commit
//! through the contents API and records the pending statuses, well before the commit's archive
//! is ready.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::queue::{JobContext, JobError, JobHandler, JobKind};

pub const ANNOUNCE_JOB: &str = "commit.announce_statuses";

/// The `commit.announce_statuses` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnnounceJob {
    pub commit_id: i64,
}

impl JobKind for AnnounceJob {
    const KIND: &'static str = ANNOUNCE_JOB;
}

pub struct AnnounceStatuses(pub App);

#[async_trait::async_trait]
impl JobHandler for AnnounceStatuses {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        let app = &self.0;
        let AnnounceJob { commit_id } = job.job()?;
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT c.sha::text, r.name::text FROM commits c JOIN repositories r ON r.id = c.repository_id WHERE c.id = $1",
        )
        .bind(commit_id)
        .fetch_optional(&app.db)
        .await
        .map_err(JobError::retry)?;
        let (Some((sha, repo)), Some(github)) = (row, &app.github) else {
            return Ok(());
        };
        let manifest = match github.file_contents(&repo, ".cocov.yaml", &sha).await {
            Ok(m) => m,
            Err(e) if e.is_transient() => return Err(JobError::retry(e)),
            Err(e) => return Err(JobError::permanent(e)),
        };
        // GitHub resolves links inside the repository itself; nothing here touches a disk.
        let manifest = match manifest {
            Some(bytes) => crate::git::TreeFile::Regular(bytes),
            None => crate::git::TreeFile::Absent,
        };
        let manifest = crate::manifest::ManifestFile::new(manifest);
        super::announce_from_manifest(app, commit_id, &manifest)
            .await
            .map_err(JobError::retry)
    }
}
