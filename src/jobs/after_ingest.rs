//! What follows an ingestion, in data-flow order: the pending statuses the manifest calls for,
//! the check set, and the coverage uploaded before the commit arrived. Chained here, by the job
//! layer, so that `commits` never calls up into the stages that read its results.

use anyhow::Context as _;

use crate::app::App;
use crate::commits::{FollowUp, Ingested};
use crate::manifest::ManifestFile;
use crate::{checks, coverage, statuses};

pub struct AfterIngest;

#[async_trait::async_trait]
impl FollowUp for AfterIngest {
    async fn run(&self, app: &App, ingested: &Ingested) -> Result<(), anyhow::Error> {
        after_ingest(app, ingested).await
    }
}

/// Runs every stage that follows the ingestion of `ingested.commit_id`. Each stage is
/// idempotent, so running this again for the same commit (a retried ingestion, a reconciler)
/// changes nothing already done.
pub async fn after_ingest(app: &App, ingested: &Ingested) -> Result<(), anyhow::Error> {
    let commit_id = ingested.commit_id;
    // Parsed once, here, for every stage.
    let manifest = ManifestFile::new(ingested.manifest.clone());
    statuses::announce_from_manifest(app, commit_id, &manifest)
        .await
        .context("recording statuses")?;
    checks::schedule(app, commit_id, &manifest)
        .await
        .context("scheduling checks")?;
    // Coverage uploaded before the commit arrived (held in coverage_uploads) applies now.
    coverage::apply_early_uploads(app, commit_id).await;
    Ok(())
}
