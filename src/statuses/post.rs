//! The job that posts a commit status to GitHub, retrying transient failures. In standalone
//! mode (no GitHub, or a repository registered by git URL) there is nowhere to post: the recorded
//! state is what the API shows.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::github::{CommitStatus, StatusState};
use crate::queue::{JobContext, JobError, JobHandler, JobKind};

pub const POST_JOB: &str = "status.post";

/// The `status.post` job: post the latest recorded state of one context of one commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostJob {
    pub commit_id: i64,
    pub context: String,
}

impl JobKind for PostJob {
    const KIND: &'static str = POST_JOB;
}

#[derive(sqlx::FromRow)]
struct Row {
    state: String,
    description: String,
    target_url: Option<String>,
    version: i32,
    posted_version: Option<i32>,
    sha: String,
    repository: String,
    github_id: Option<i64>,
}

pub struct PostStatus(pub App);

#[async_trait::async_trait]
impl JobHandler for PostStatus {
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        let app = &self.0;
        let payload: PostJob = job.job()?;
        let row: Option<Row> = sqlx::query_as(
            "SELECT s.state, s.description, s.target_url, s.version, s.posted_version, c.sha::text AS sha, \
                    r.name::text AS repository, r.github_id \
             FROM commit_statuses s JOIN commits c ON c.id = s.commit_id JOIN repositories r ON r.id = c.repository_id \
             WHERE s.commit_id = $1 AND s.context = $2",
        )
        .bind(payload.commit_id)
        .bind(&payload.context)
        .fetch_optional(&app.db)
        .await
        .map_err(JobError::retry)?;
        let Some(row) = row else { return Ok(()) };
        if row.posted_version.is_some_and(|v| v >= row.version) {
            return Ok(());
        }
        let (Some(github), Some(_)) = (&app.github, row.github_id) else {
            return Ok(());
        };
        let state = match row.state.as_str() {
            "pending" => StatusState::Pending,
            "success" => StatusState::Success,
            "failure" => StatusState::Failure,
            _ => StatusState::Error,
        };
        let status = CommitStatus {
            state,
            context: payload.context.clone(),
            description: row.description.clone(),
            target_url: row.target_url.clone(),
        };
        match github
            .create_status(&row.repository, &row.sha, &status)
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_transient() => return Err(JobError::retry(e)),
            Err(e) => return Err(JobError::permanent(e)),
        }
        sqlx::query(
            "UPDATE commit_statuses SET posted_version = GREATEST(COALESCE(posted_version, 0), $3), posted_at = now() \
             WHERE commit_id = $1 AND context = $2",
        )
        .bind(payload.commit_id)
        .bind(&payload.context)
        .bind(row.version)
        .execute(&app.db)
        .await
        .map_err(JobError::retry)?;
        Ok(())
    }
}
