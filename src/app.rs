//! The shared handles every part of the daemon uses: configuration, PostgreSQL pool, Redis,
//! blob store, job queue and metrics. Cheap to clone.

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Config;
use crate::github::GitHub;
use crate::kv::Kv;
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::storage::{self, BlobStore};
use crate::upload_budget::UploadBudget;

/// The queue every background job goes through.
pub const MAIN_QUEUE: &str = "default";

#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub kv: Kv,
    pub storage: Arc<dyn BlobStore>,
    pub queue: Queue,
    pub metrics: Arc<Metrics>,
    /// The GitHub App client; None in standalone mode.
    pub github: Option<GitHub>,
    /// What coverage uploads share: decompression slots and bytes in flight.
    pub uploads: Arc<UploadBudget>,
    /// The OIDC provider for sign-in; None unless `[oidc]` is configured.
    pub oidc: Option<Arc<crate::auth::oidc::Provider>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Kv(#[from] crate::kv::KvError),
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("GitHub: {0}")]
    GitHub(#[from] crate::github::GithubError),
    #[error("oidc: {0}")]
    Oidc(String),
}

impl App {
    /// Whether local accounts may sign in: `accounts.local`, where "auto" means no other way in
    /// works. GitHub mode without its OAuth client lets nobody sign in with GitHub, so it does
    /// not count. The JSON sign-in and the sign-in page both ask this.
    pub fn local_sign_in_open(&self) -> bool {
        let github = self.github.is_some() && self.config.github.sign_in_configured();
        self.config
            .accounts
            .local_enabled(github || self.oidc.is_some())
    }

    /// Connects (lazily where the client allows) to every store. Storage is opened eagerly
    /// because a misconfigured store should stop the daemon at start, not at the first job.
    pub async fn build(config: Config) -> Result<App, AppError> {
        let db = crate::db::connect(&config.database)?;
        let kv = Kv::connect(&config.redis)?;
        let storage = storage::open(&config.storage).await?;
        let queue = Queue::new(kv.clone(), MAIN_QUEUE, config.queue.clone());
        let metrics = Arc::new(Metrics::new());
        let github = GitHub::from_config(&config.github, kv.clone(), metrics.clone())?;
        let uploads = Arc::new(UploadBudget::new(&config.coverage));
        let oidc = match config.oidc.enabled() {
            true => Some(Arc::new(
                crate::auth::oidc::Provider::new(&config.oidc, &config.server.ui_base_url)
                    .map_err(AppError::Oidc)?,
            )),
            false => None,
        };
        Ok(App {
            config: Arc::new(config),
            db,
            kv,
            storage,
            queue,
            metrics,
            github,
            uploads,
            oidc,
        })
    }
}
