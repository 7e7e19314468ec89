//! What each event means for us. Only cheap database changes happen here; fetching, statuses
//! and permission syncs run as jobs.

use serde::Serialize;
use serde_json::Value;

use crate::app::App;
use crate::audit::AuditActor;
use crate::commits;
use crate::permissions;
use crate::queue::JobKind;
use crate::repositories::{self, Repository};
use crate::statuses::AnnounceJob;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Acted on; `detail` says how.
    Accepted { detail: String },
    /// A well-formed delivery we do not act on (other events, unknown repositories, tags).
    Ignored { reason: String },
    /// The delivery id was seen before.
    Duplicate,
}

fn ignored(reason: impl Into<String>) -> Outcome {
    Outcome::Ignored {
        reason: reason.into(),
    }
}

fn accepted(detail: impl Into<String>) -> Outcome {
    Outcome::Accepted {
        detail: detail.into(),
    }
}

async fn local_repository(app: &App, payload: &Value) -> Result<Option<Repository>, anyhow::Error> {
    let Some(github_id) = payload["repository"]["id"].as_i64() else {
        return Ok(None);
    };
    Ok(repositories::find_by_github_id(&app.db, github_id).await?)
}

pub async fn handle(app: &App, event: &str, payload: &Value) -> Result<Outcome, anyhow::Error> {
    let action = payload["action"].as_str().unwrap_or("");
    match event {
        "ping" => Ok(accepted("pong")),
        "push" => push(app, payload).await,
        "repository" => repository(app, action, payload).await,
        "installation_repositories" | "member" | "membership" | "team_add" | "public" => {
            permissions::enqueue_sync_all(app).await?;
            Ok(accepted("permissions resync queued"))
        }
        "organization" => organization(app, action, payload).await,
        other => Ok(ignored(format!("event `{other}` is not used"))),
    }
}

async fn push(app: &App, payload: &Value) -> Result<Outcome, anyhow::Error> {
    let Some(reference) = payload["ref"].as_str() else {
        return Ok(ignored("push without ref"));
    };
    let Some(branch) = reference.strip_prefix("refs/heads/") else {
        return Ok(ignored("tags are not checked"));
    };
    let Some(repo) = local_repository(app, payload).await? else {
        return Ok(ignored("repository is not registered on this instance"));
    };
    if payload["deleted"].as_bool() == Some(true) {
        let deleted = commits::delete_branch(&app.db, repo.id, branch).await?;
        return Ok(accepted(if deleted {
            "branch deleted"
        } else {
            "branch was not known"
        }));
    }
    let sha = payload["after"]
        .as_str()
        .or_else(|| payload["head_commit"]["id"].as_str())
        .unwrap_or("");
    let registered = commits::register_push(app, &repo, sha, Some(branch)).await?;
    AnnounceJob {
        commit_id: registered.commit_id,
    }
    .enqueue(&app.queue)
    .await?;
    Ok(accepted(format!(
        "commit {} registered on {branch}",
        registered.sha
    )))
}

async fn repository(app: &App, action: &str, payload: &Value) -> Result<Outcome, anyhow::Error> {
    let Some(repo) = local_repository(app, payload).await? else {
        return Ok(ignored("repository is not registered on this instance"));
    };
    let actor = AuditActor::system();
    match action {
        "deleted" => {
            repositories::enqueue_delete(app, repo.id, &actor).await?;
            Ok(accepted("repository deletion queued"))
        }
        "renamed" | "edited" => {
            let name = payload["repository"]["name"].as_str().unwrap_or(&repo.name);
            let default_branch = payload["repository"]["default_branch"]
                .as_str()
                .unwrap_or(&repo.default_branch);
            let description = payload["repository"]["description"].as_str();
            repositories::update_from_github(&app.db, repo.id, name, default_branch, description)
                .await?;
            permissions::enqueue_sync_repository(app, repo.id).await?;
            Ok(accepted("repository updated"))
        }
        _ => {
            permissions::enqueue_sync_repository(app, repo.id).await?;
            Ok(accepted("permissions resync queued"))
        }
    }
}

async fn organization(app: &App, action: &str, payload: &Value) -> Result<Outcome, anyhow::Error> {
    match action {
        "member_removed" => {
            let Some(github_id) = payload["membership"]["user"]["id"].as_i64() else {
                return Ok(ignored("member_removed without a user"));
            };
            let revoked = permissions::remove_org_member(app, github_id).await?;
            Ok(accepted(format!(
                "member removed: {revoked} token(s) revoked"
            )))
        }
        "member_added" => {
            permissions::enqueue_sync_all(app).await?;
            Ok(accepted("permissions resync queued"))
        }
        other => Ok(ignored(format!(
            "organization action `{other}` is not used"
        ))),
    }
}
