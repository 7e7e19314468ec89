//! `cocov plugin import FILE`: an image from a `docker save` archive (`manifest.json`) or an OCI
//! image layout archive (`index.json`, `blobs/sha256/…`), for hosts without a registry.
//!
//! The archive is extracted into the store's scratch space (regular files only, paths kept
//! inside); every blob an OCI manifest names is checked against its digest. A Docker archive
//! carries no manifest digest, so the store's content address is the digest of an OCI manifest
//! built from its configuration's and layers' digests: the same archive always lands in the
//! same place.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::store::{LayerFile, Store, StoredImage};
use super::{ImageError, registry};

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    os: String,
    architecture: String,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// Imports the image in `file` under `name` (else the name the archive records). Returns the
/// stored image.
pub fn import(
    store: &Store,
    file: &Path,
    name: Option<&str>,
    max_bytes: u64,
) -> Result<StoredImage, ImageError> {
    let scratch = store.scratch()?;
    let root = scratch.path().join("archive");
    extract(file, &root, max_bytes)?;
    let (digest, recorded, config, layers) = if root.join("index.json").is_file() {
        read_oci(&root)?
    } else if root.join("manifest.json").is_file() {
        read_docker(&root)?
    } else {
        return Err(ImageError::Invalid(
            "neither an OCI archive (index.json) nor a docker save archive (manifest.json)".into(),
        ));
    };
    let reference = match name.map(String::from).or(recorded) {
        Some(name) => registry::tag_name(&registry::parse(&name)?),
        None => {
            return Err(ImageError::Invalid(
                "the archive names no image; give one with --tag".into(),
            ));
        }
    };
    store.install(&digest, &reference, &config, &layers, max_bytes)
}

/// Regular files and directories of the archive, under `root`; links inside are copied as
/// the files they name (docker save links repeated layers).
fn extract(file: &Path, root: &Path, max_bytes: u64) -> Result<(), ImageError> {
    let refused = |what: &str| ImageError::Invalid(what.to_string());
    let mut archive = tar::Archive::new(std::io::BufReader::new(std::fs::File::open(file)?));
    let mut links = Vec::new();
    let mut total: u64 = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = inside(&entry.path()?).ok_or_else(|| refused("a path leaves the archive"))?;
        let target = root.join(&path);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
        } else if kind.is_file() {
            total = total.saturating_add(entry.header().size()?);
            if total > max_bytes {
                return Err(refused("larger than images.max_image_mb"));
            }
            std::fs::create_dir_all(target.parent().unwrap_or(root))?;
            std::io::copy(&mut entry, &mut std::fs::File::create(&target)?)?;
        } else if kind.is_symlink() || kind.is_hard_link() {
            let link = entry
                .link_name()?
                .ok_or_else(|| refused("a link without target"))?;
            let base = if kind.is_symlink() {
                path.parent().unwrap_or(Path::new("")).join(link)
            } else {
                link.into_owned()
            };
            let source = inside(&base).ok_or_else(|| refused("a link leaves the archive"))?;
            links.push((path, source));
        }
    }
    for (path, source) in links {
        let target = root.join(&path);
        std::fs::create_dir_all(target.parent().unwrap_or(root))?;
        std::fs::copy(root.join(source), &target)
            .map_err(|e| refused(&format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

/// The path inside the archive, or None when it is absolute or climbs out.
fn inside(path: &Path) -> Option<PathBuf> {
    if path.is_absolute() {
        return None;
    }
    super::unpack::normalise(path)
}

fn sha256_file(path: &Path) -> Result<String, ImageError> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// A blob of the layout, checked against its digest.
fn blob(root: &Path, digest: &str) -> Result<PathBuf, ImageError> {
    let path = root
        .join("blobs/sha256")
        .join(super::store::digest_hex(digest)?);
    if !path.is_file() {
        return Err(ImageError::Invalid(format!(
            "the archive lacks blob {digest}"
        )));
    }
    let actual = sha256_file(&path)?;
    if actual != digest {
        return Err(ImageError::DigestMismatch {
            registry: "archive".into(),
            detail: format!("blob {digest} has digest {actual}"),
        });
    }
    Ok(path)
}

fn parse<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ImageError> {
    serde_json::from_slice(&std::fs::read(path)?)
        .map_err(|e| ImageError::Invalid(format!("{}: {e}", path.display())))
}

/// The architecture name images use for this host.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

type Parts = (String, Option<String>, Vec<u8>, Vec<LayerFile>);

fn read_oci(root: &Path) -> Result<Parts, ImageError> {
    let index: Index = parse(&root.join("index.json"))?;
    let top = index
        .manifests
        .first()
        .ok_or_else(|| ImageError::Invalid("index.json lists no image".into()))?;
    let recorded = top
        .annotations
        .get("io.containerd.image.name")
        .or_else(|| top.annotations.get("org.opencontainers.image.ref.name"))
        .filter(|name| name.contains(['/', ':']))
        .cloned();
    let mut chosen = top;
    // A nested index: the manifest for this platform.
    let nested;
    if chosen.media_type.contains("index") || chosen.media_type.contains("manifest.list") {
        nested = parse::<Index>(&blob(root, &chosen.digest)?)?;
        chosen = nested
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == host_architecture())
            })
            .ok_or_else(|| {
                ImageError::Invalid(format!(
                    "the archive has no image for linux/{}",
                    host_architecture()
                ))
            })?;
    }
    let manifest: Manifest = parse(&blob(root, &chosen.digest)?)?;
    let config = std::fs::read(blob(root, &manifest.config.digest)?)?;
    let layers = manifest
        .layers
        .iter()
        .map(|layer| {
            Ok(LayerFile {
                path: blob(root, &layer.digest)?,
                media_type: layer.media_type.clone(),
            })
        })
        .collect::<Result<_, ImageError>>()?;
    Ok((chosen.digest.clone(), recorded, config, layers))
}

fn read_docker(root: &Path) -> Result<Parts, ImageError> {
    let entries: Vec<DockerEntry> = parse(&root.join("manifest.json"))?;
    let entry = entries
        .into_iter()
        .next()
        .ok_or_else(|| ImageError::Invalid("manifest.json lists no image".into()))?;
    let member = |name: &str| {
        let path = inside(Path::new(name))
            .map(|p| root.join(p))
            .filter(|p| p.is_file());
        path.ok_or_else(|| ImageError::Invalid(format!("the archive lacks {name}")))
    };
    let config_path = member(&entry.config)?;
    let config = std::fs::read(&config_path)?;
    let mut layers = Vec::new();
    let mut descriptors = Vec::new();
    for name in &entry.layers {
        let path = member(name)?;
        let media_type = sniff(&path)?;
        descriptors.push(serde_json::json!({
            "mediaType": media_type,
            "digest": sha256_file(&path)?,
        }));
        layers.push(LayerFile {
            path,
            media_type: media_type.to_string(),
        });
    }
    let synthetic = serde_json::json!({
        "schemaVersion": 2,
        "config": {"digest": sha256_file(&config_path)?},
        "layers": descriptors,
    });
    let digest = format!(
        "sha256:{}",
        hex::encode(Sha256::digest(synthetic.to_string().as_bytes()))
    );
    let recorded = entry.repo_tags.and_then(|tags| tags.into_iter().next());
    Ok((digest, recorded, config, layers))
}

/// A docker save layer's media type, from its first bytes (the archive does not say).
fn sniff(path: &Path) -> Result<&'static str, ImageError> {
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(path)?.read(&mut magic)?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => "application/vnd.oci.image.layer.v1.tar+gzip",
        [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.oci.image.layer.v1.tar+zstd",
        _ => "application/vnd.oci.image.layer.v1.tar",
    })
}
