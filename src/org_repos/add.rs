//! Adding a repository of the GitHub App's organisation by name: its id, description and
//! default branch come from GitHub, then its members are synced and its default branch's head
//! is checked, so it shows results before its next push.

use crate::app::App;
use crate::audit::AuditActor;
use crate::github::GithubError;

use crate::repositories::{self, NewRepository, Repository, RepositoryError, Source};

#[derive(Debug, thiserror::Error)]
pub enum AddFromGithubError {
    #[error("GitHub mode is not configured")]
    NotGithub,
    #[error("Repository could not be found on GitHub. Check spelling and try again.")]
    NotOnGithub,
    #[error("GitHub: {0}")]
    Github(#[from] GithubError),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Registers the organisation's repository `name`; returns it and its upload token (shown once).
pub async fn add_from_github(
    app: &App,
    name: &str,
    actor: &AuditActor,
) -> Result<(Repository, String), AddFromGithubError> {
    let github = app.github.as_ref().ok_or(AddFromGithubError::NotGithub)?;
    let gh = github
        .repository(name.trim())
        .await?
        .ok_or(AddFromGithubError::NotOnGithub)?;
    let new = NewRepository {
        name: gh.name,
        description: gh.description,
        default_branch: gh.default_branch,
        source: Source::GitHub { github_id: gh.id },
    };
    let allowed = &app.config.git.allowed_protocols;
    let (repo, token) = repositories::create(&app.db, &new, allowed, actor).await?;
    let initial = async {
        crate::permissions::enqueue_sync_repository(app, repo.id).await?;
        crate::webhooks::enqueue_initialize(app, repo.id).await
    };
    if let Err(e) = initial.await {
        tracing::warn!(error = %e, repository = %repo.name, "could not queue the first sync");
    }
    Ok((repo, token))
}
