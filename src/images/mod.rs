//! Plugins that are container images, run without a container daemon.
//!
//! A manifest's `plugin:` that no plugin definition names is an OCI image reference
//! (`cocov/rubocop:v0.1`, `registry.example/team/lint:v3`). The image is pulled from its registry
//! (or a mirror) for this host's platform, every blob checked against its digest, its layers
//! applied into a content-addressed store under `images.store_dir` (refusing paths and links that
//! leave the root filesystem), and its entrypoint and command run in the same bubblewrap sandbox
//! as built-in plugins, on the image's root filesystem read-only, as uid 1000, with the
//! original's environment and output contract. A tag is resolved to a digest once per commit
//! (`image_pins`), so a re-run runs the same image; a stored tag is used without a registry.

mod archive;
mod credentials;
pub mod registry;
pub mod store;
pub mod unpack;

use std::collections::BTreeMap;
use std::path::Path;

pub use archive::import;
pub use credentials::Credentials;
pub use store::{Store, StoredImage};

use crate::app::App;
use crate::config::{ImagesConfig, SecurityConfig};
use crate::plugins::{ImageRoot, OutputFormat, PluginDefinition, ReportSource};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Invalid(String),
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("registry {registry} sent content that does not match its digest ({detail}); refused")]
    DigestMismatch { registry: String, detail: String },
    #[error("the image is refused: {0}")]
    Unpack(#[from] unpack::UnpackError),
    #[error("the image store: {0}")]
    Io(#[from] std::io::Error),
    #[error("recording the image's digest: {0}")]
    Database(#[from] sqlx::Error),
}

/// Where [`Images::obtain_from`] found an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Already stored (a pinned digest, or a tag resolved recently).
    Store,
    /// Pulled (or its tag re-resolved) from a registry now; `downloaded_bytes` is what its
    /// layers took on the wire (0 when the digest the tag names was already stored).
    Registry { downloaded_bytes: u64 },
    /// Its registry could not be reached: the tag as last resolved.
    StoreWithoutRegistry,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Store => "store",
            Source::Registry { .. } => "registry",
            Source::StoreWithoutRegistry => "store_without_registry",
        }
    }
}

/// The image store with the registries and credentials of one configuration.
pub struct Images {
    config: ImagesConfig,
    store: Store,
    credentials: Credentials,
}

impl Images {
    pub fn new(config: &ImagesConfig, security: &SecurityConfig) -> Result<Images, ImageError> {
        let store = Store::new(&config.store_dir);
        let credentials = Credentials::load(&store, security)?;
        Ok(Images {
            config: config.clone(),
            store,
            credentials,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The image `reference` names: `pinned` (a digest) when given, else a stored tag resolved
    /// less than `images.tag_ttl_seconds` ago, else the registry's answer; a registry that cannot
    /// be reached leaves a stored image of that tag in use.
    pub async fn obtain(
        &self,
        reference: &str,
        pinned: Option<&str>,
    ) -> Result<StoredImage, ImageError> {
        self.obtain_from(reference, pinned)
            .await
            .map(|(image, _)| image)
    }

    /// [`Images::obtain`], saying where the image came from.
    pub async fn obtain_from(
        &self,
        reference: &str,
        pinned: Option<&str>,
    ) -> Result<(StoredImage, Source), ImageError> {
        let parsed = registry::parse(reference)?;
        let tag = registry::tag_name(&parsed);
        let wanted = pinned.or(parsed.digest()).map(String::from);
        let stored = match &wanted {
            Some(digest) => self.store.get(digest)?,
            None => match self.store.lookup(&tag)? {
                Some(entry) => self
                    .store
                    .get(&entry.digest)?
                    .map(|i| (i, entry.resolved_at)),
                None => None,
            }
            .and_then(|(image, resolved_at)| {
                (store::now() - resolved_at < self.config.tag_ttl_seconds as i64).then_some(image)
            }),
        };
        let (image, source) = match stored {
            Some(image) => (image, Source::Store),
            None => {
                let pulled = registry::pull(
                    &self.config,
                    &self.store,
                    &self.credentials,
                    &parsed,
                    wanted.as_deref(),
                )
                .await;
                match pulled {
                    Ok((image, downloaded_bytes)) => (image, Source::Registry { downloaded_bytes }),
                    Err(ImageError::Registry { .. }) if wanted.is_none() => {
                        let offline = self.store.lookup(&tag)?;
                        match offline.and_then(|e| self.store.get(&e.digest).transpose()) {
                            Some(image) => (image?, Source::StoreWithoutRegistry),
                            None => return Err(pulled.unwrap_err()),
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        self.store.touch(&image.digest)?;
        let max = self.config.max_store_mb.saturating_mul(1024 * 1024);
        let hour_ago = store::now() - 3600;
        for removed in self.store.collect_garbage(max, hour_ago)? {
            tracing::info!(digest = %removed.digest, "image removed: the store is over its size");
        }
        Ok((image, source))
    }

    /// Pulls `reference` from its registry now (no stored tag stands in for an answer).
    pub async fn pull(&self, reference: &str) -> Result<StoredImage, ImageError> {
        let parsed = registry::parse(reference)?;
        registry::pull(&self.config, &self.store, &self.credentials, &parsed, None)
            .await
            .map(|(image, _)| image)
    }

    /// The plugin definition that runs `image` for the manifest's `plugin`.
    pub fn definition(
        &self,
        plugin: &str,
        image: &StoredImage,
    ) -> Result<PluginDefinition, ImageError> {
        let mut argv = image.entrypoint.iter().chain(&image.cmd).cloned();
        let command = argv.next().ok_or_else(|| {
            ImageError::Invalid(format!(
                "the image {} has neither an entrypoint nor a command",
                image.digest
            ))
        })?;
        let rootfs = self.store.rootfs(&image.digest)?;
        let name = crate::manifest::cleanup_plugin_name(plugin).to_ascii_lowercase();
        let repository = registry::parse(plugin)?.repository().to_string();
        let network = self
            .config
            .network_plugins
            .iter()
            .any(|allowed| *allowed == name || *allowed == repository || allowed == plugin);
        let env: BTreeMap<String, String> = image
            .env
            .iter()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(PluginDefinition {
            name,
            description: format!("image {plugin} ({})", image.digest),
            command,
            args: argv.collect(),
            format: OutputFormat::Cocov,
            report: Some(ReportSource::File),
            success_exit_codes: vec![0],
            kinds: BTreeMap::new(),
            network,
            timeout_seconds: None,
            memory_mb: None,
            env,
            image: Some(ImageRoot {
                working_dir: working_dir(&rootfs, &image.working_dir),
                rootfs,
            }),
        })
    }
}

/// The image's working directory when the sandbox will have it, else `/` (bubblewrap cannot
/// start in a directory missing from a read-only root).
fn working_dir(rootfs: &Path, wanted: &str) -> String {
    let relative = wanted.trim_start_matches('/');
    let first = relative.split('/').next().unwrap_or("");
    let provided = ["proc", "dev", "sys", "tmp", "work", "run"].contains(&first);
    match unpack::resolve(rootfs, Path::new(relative), wanted) {
        Ok(path) if !relative.is_empty() && !provided && path.is_dir() => {
            format!("/{relative}")
        }
        _ => "/".into(),
    }
}

/// The definition for a check whose plugin is an image: the digest pinned for this commit, or
/// the tag resolved now and pinned for the re-runs.
pub async fn for_check(
    app: &App,
    commit_id: i64,
    plugin: &str,
) -> Result<PluginDefinition, ImageError> {
    let images = Images::new(&app.config.images, &app.config.security)?;
    let key = plugin.to_ascii_lowercase();
    let pinned: Option<String> =
        sqlx::query_scalar("SELECT digest FROM image_pins WHERE commit_id = $1 AND plugin = $2")
            .bind(commit_id)
            .bind(&key)
            .fetch_optional(&app.db)
            .await?;
    let (image, source) = match images.obtain_from(plugin, pinned.as_deref()).await {
        Ok(found) => found,
        Err(e) => {
            app.metrics.external_call("registry", "image", "error");
            return Err(e);
        }
    };
    // cocov_external_calls{service="registry",operation="image"}: pulls against store hits.
    app.metrics
        .external_call("registry", "image", source.as_str());
    if let Source::Registry { downloaded_bytes } = source {
        app.metrics.image_pulled_bytes.inc_by(downloaded_bytes);
    }
    if pinned.is_none() {
        sqlx::query(
            "INSERT INTO image_pins (commit_id, plugin, digest) VALUES ($1, $2, $3) \
             ON CONFLICT (commit_id, plugin) DO NOTHING",
        )
        .bind(commit_id)
        .bind(&key)
        .bind(&image.digest)
        .execute(&app.db)
        .await?;
    }
    images.definition(plugin, &image)
}

/// Whether `host` answers the registry protocol (`/v2/`: 200, or 401 asking for a token), over
/// HTTPS, or plain HTTP when it is an insecure registry. For `cocov doctor`.
pub async fn registry_answers(config: &ImagesConfig, host: &str) -> Result<(), String> {
    let insecure = config.insecure_registries.iter().any(|h| h == host);
    let api_host = if host == "docker.io" {
        "registry-1.docker.io"
    } else {
        host
    };
    let scheme = if insecure { "http" } else { "https" };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .tls_danger_accept_invalid_certs(insecure)
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .get(format!("{scheme}://{api_host}/v2/"))
        .send()
        .await
        .map_err(|e| registry::describe(&e))?;
    match resp.status().as_u16() {
        200 | 401 => Ok(()),
        status => Err(format!("answered HTTP {status} on /v2/")),
    }
}
