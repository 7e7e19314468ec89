//! Pulling an image from a registry into the store: the manifest for this host's platform (from a
//! multi-architecture index when there is one), its configuration and every layer, each checked
//! against its digest by the client as it streams in.
//!
//! Docker Hub references try the configured mirrors first. A registry is spoken to over plain
//! HTTP, or over TLS without verifying its certificate, only when it is listed in
//! `images.insecure_registries` (Docker's setting of that name).

use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::store::{LayerFile, Store, StoredImage};
use super::{Credentials, ImageError};
use crate::config::ImagesConfig;

const DOCKER_HUB: &str = "docker.io";

/// A parsed image reference, in its canonical spelling (`docker.io/library/alpine:latest`).
pub fn parse(reference: &str) -> Result<Reference, ImageError> {
    reference
        .parse::<Reference>()
        .map_err(|e| ImageError::Invalid(format!("`{reference}` is not an image reference: {e}")))
}

/// `registry/repository:tag`, without any digest, for the tag table.
pub fn tag_name(reference: &Reference) -> String {
    format!(
        "{}/{}:{}",
        reference.registry(),
        reference.repository(),
        reference.tag().unwrap_or("latest")
    )
}

/// The registries to try for `reference`, in order.
fn sources(config: &ImagesConfig, reference: &Reference) -> Vec<String> {
    let mut hosts = Vec::new();
    if reference.registry() == DOCKER_HUB {
        hosts.extend(config.mirrors.iter().cloned());
    }
    hosts.push(reference.registry().to_string());
    hosts
}

fn client_for(config: &ImagesConfig, host: &str) -> Client {
    let insecure = config.insecure_registries.iter().any(|h| h == host);
    Client::new(ClientConfig {
        protocol: if insecure {
            ClientProtocol::HttpsExcept(vec![host.to_string()])
        } else {
            ClientProtocol::Https
        },
        accept_invalid_certificates: insecure,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        ..ClientConfig::default()
    })
}

/// Pulls `reference` (a tag, or `pinned` digest when given) into the store, trying each source
/// in turn; the last source's error is the one reported. Returns the image and the bytes its
/// layers took to download (0 when it was already stored).
pub async fn pull(
    config: &ImagesConfig,
    store: &Store,
    credentials: &Credentials,
    reference: &Reference,
    pinned: Option<&str>,
) -> Result<(StoredImage, u64), ImageError> {
    let mut last = None;
    for host in sources(config, reference) {
        let at = match pinned.or(reference.digest()) {
            Some(digest) => {
                Reference::with_digest(host.clone(), reference.repository().into(), digest.into())
            }
            None => Reference::with_tag(
                host.clone(),
                reference.repository().into(),
                reference.tag().unwrap_or("latest").into(),
            ),
        };
        let auth = credentials.for_registry(&host);
        let attempt = tokio::time::timeout(
            Duration::from_secs(config.pull_timeout_seconds.max(1)),
            pull_from(config, store, &at, &auth, &tag_name(reference)),
        )
        .await
        .unwrap_or_else(|_| {
            Err(ImageError::Registry {
                registry: host.clone(),
                message: format!(
                    "the pull did not finish within {} s",
                    config.pull_timeout_seconds
                ),
            })
        });
        match attempt {
            Ok(image) => return Ok(image),
            // A wrong digest is an attack or a broken mirror, never a reason to look elsewhere
            // quietly: refused as is.
            Err(e @ ImageError::DigestMismatch { .. }) => return Err(e),
            Err(e) => {
                tracing::info!(registry = %host, error = %e, "image source failed");
                last = Some(e);
            }
        }
    }
    Err(last.expect("at least the reference's own registry is tried"))
}

async fn pull_from(
    config: &ImagesConfig,
    store: &Store,
    at: &Reference,
    auth: &RegistryAuth,
    name: &str,
) -> Result<(StoredImage, u64), ImageError> {
    let host = at.registry().to_string();
    let client = client_for(config, &host);
    let registry_error = |e: OciDistributionError| classify(&host, e);
    let (manifest, digest, config_json) = client
        .pull_manifest_and_config(at, auth)
        .await
        .map_err(registry_error)?;
    if let Some(image) = store.get(&digest)? {
        store.tag(name, &digest)?;
        return Ok((image, 0));
    }
    let scratch = store.scratch()?;
    let mut layers = Vec::new();
    let mut downloaded = 0u64;
    for (i, layer) in manifest.layers.iter().enumerate() {
        let path = scratch.path().join(format!("layer-{i}"));
        download(&client, at, layer, &path)
            .await
            .map_err(registry_error)?;
        downloaded += tokio::fs::metadata(&path).await?.len();
        layers.push(LayerFile {
            path,
            media_type: layer.media_type.clone(),
        });
    }
    let store = store.clone();
    let name = name.to_string();
    let max = config.max_image_mb.saturating_mul(1024 * 1024);
    tokio::task::spawn_blocking(move || {
        let image = store.install(&digest, &name, config_json.as_bytes(), &layers, max);
        drop(scratch);
        image.map(|image| (image, downloaded))
    })
    .await
    .map_err(|e| ImageError::Invalid(format!("unpacking: {e}")))?
}

async fn download(
    client: &Client,
    at: &Reference,
    layer: &OciDescriptor,
    path: &std::path::Path,
) -> Result<(), OciDistributionError> {
    let file = tokio::fs::File::create(path).await?;
    client.pull_blob(at, layer, file).await
}

fn classify(registry: &str, error: OciDistributionError) -> ImageError {
    match error {
        OciDistributionError::DigestError(e) => ImageError::DigestMismatch {
            registry: registry.to_string(),
            detail: e.to_string(),
        },
        other => ImageError::Registry {
            registry: registry.to_string(),
            message: describe(&other),
        },
    }
}

/// The error with its causes (reqwest's top line alone says only "error sending request").
pub(super) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
