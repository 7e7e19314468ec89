//! The image store under `images.store_dir`: one directory per image manifest digest holding its
//! unpacked root filesystem and what running it needs, plus the tag → digest table.
//!
//! ```text
//! <store>/images/<hex>/rootfs/      the layers applied in order (read-only to sandboxes)
//! <store>/images/<hex>/image.json   entrypoint, command, environment, sizes, last use
//! <store>/refs.json                 "registry/repository:tag" → digest, when resolved
//! <store>/tmp/                      downloads and unpacks in progress (renamed into place)
//! ```
//!
//! An image appears only by renaming a complete directory into place, so a crash mid-pull leaves
//! nothing but `tmp/`, which `prune` empties.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ImageError;
use super::unpack::{self, Budget};

/// What running an image needs, and what `cocov plugin images` shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredImage {
    /// The platform manifest's digest, `sha256:<hex>`.
    pub digest: String,
    /// Names it was pulled or imported under.
    pub references: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=value`, as in the image configuration.
    pub env: Vec<String>,
    pub working_dir: String,
    /// Bytes of regular files in the root filesystem.
    pub size_bytes: u64,
    /// Unix seconds.
    pub stored_at: i64,
    pub last_used_at: i64,
}

/// A tag's last resolution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TagEntry {
    pub digest: String,
    /// Unix seconds.
    pub resolved_at: i64,
}

/// The part of an OCI (or Docker) image configuration a run needs.
#[derive(Debug, Default, Deserialize)]
pub struct ImageConfigFile {
    #[serde(default)]
    pub config: Option<RunConfig>,
    /// Docker archives name it `config` too; some old tools wrote `container_config` only.
    #[serde(default)]
    pub container_config: Option<RunConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
}

/// A layer to apply: a blob file already checked against its digest.
pub struct LayerFile {
    pub path: PathBuf,
    /// Says how it is compressed.
    pub media_type: String,
}

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `sha256:<64 hex>` → `<64 hex>`, refusing anything else (it becomes a directory name).
pub fn digest_hex(digest: &str) -> Result<&str, ImageError> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(hex)
        }
        _ => Err(ImageError::Invalid(format!(
            "`{digest}` is not a sha256 digest"
        ))),
    }
}

impl Store {
    pub fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn image_dir(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.dir.join("images").join(digest_hex(digest)?))
    }

    pub fn rootfs(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.image_dir(digest)?.join("rootfs"))
    }

    /// A fresh scratch directory under the store (same filesystem, so renames are atomic).
    pub fn scratch(&self) -> Result<tempfile::TempDir, ImageError> {
        let tmp = self.dir.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        Ok(tempfile::Builder::new().prefix("pull-").tempdir_in(tmp)?)
    }

    pub fn get(&self, digest: &str) -> Result<Option<StoredImage>, ImageError> {
        let path = self.image_dir(digest)?.join("image.json");
        match std::fs::read(&path) {
            Ok(bytes) => {
                Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
                    ImageError::Invalid(format!("{}: {e}", path.display()))
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// What a tag was last resolved to (for use without a registry).
    pub fn lookup(&self, reference: &str) -> Result<Option<TagEntry>, ImageError> {
        Ok(self.refs()?.remove(reference))
    }

    fn refs(&self) -> Result<BTreeMap<String, TagEntry>, ImageError> {
        match std::fs::read(self.dir.join("refs.json")) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn write_json(&self, path: &Path, value: &impl Serialize) -> Result<(), ImageError> {
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(value).expect("serialisable"),
        )?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// Records that `reference` names `digest`, on the image and in the tag table.
    pub fn tag(&self, reference: &str, digest: &str) -> Result<(), ImageError> {
        std::fs::create_dir_all(&self.dir)?;
        let mut refs = self.refs()?;
        refs.insert(
            reference.to_string(),
            TagEntry {
                digest: digest.to_string(),
                resolved_at: now(),
            },
        );
        self.write_json(&self.dir.join("refs.json"), &refs)?;
        if let Some(mut image) = self.get(digest)?
            && !image.references.iter().any(|r| r == reference)
        {
            image.references.push(reference.to_string());
            self.write_json(&self.image_dir(digest)?.join("image.json"), &image)?;
        }
        Ok(())
    }

    /// Marks an image used now (what garbage collection goes by).
    pub fn touch(&self, digest: &str) -> Result<(), ImageError> {
        if let Some(mut image) = self.get(digest)? {
            image.last_used_at = now();
            self.write_json(&self.image_dir(digest)?.join("image.json"), &image)?;
        }
        Ok(())
    }

    /// Unpacks `layers` in order into a new image `digest` and moves it into place. `config`
    /// is the image configuration's JSON (already checked against its digest).
    pub fn install(
        &self,
        digest: &str,
        reference: &str,
        config: &[u8],
        layers: &[LayerFile],
        max_bytes: u64,
    ) -> Result<StoredImage, ImageError> {
        let target = self.image_dir(digest)?;
        if let Some(image) = self.get(digest)? {
            self.tag(reference, digest)?;
            return Ok(image);
        }
        let parsed: ImageConfigFile = serde_json::from_slice(config)
            .map_err(|e| ImageError::Invalid(format!("the image configuration: {e}")))?;
        let run = parsed
            .config
            .or(parsed.container_config)
            .unwrap_or_default();
        let scratch = self.scratch()?;
        let rootfs = scratch.path().join("rootfs");
        std::fs::create_dir(&rootfs)?;
        let mut budget = Budget {
            used: 0,
            limit: max_bytes,
        };
        for layer in layers {
            let file = std::fs::File::open(&layer.path)?;
            unpack::apply_layer(
                &rootfs,
                std::io::BufReader::new(file),
                &layer.media_type,
                &mut budget,
            )?;
        }
        // Mount points the sandbox needs inside directories it binds read-only.
        let home = unpack::resolve(&rootfs, Path::new("home/cocov"), "home/cocov")?;
        std::fs::create_dir_all(&home)?;
        let now = now();
        let image = StoredImage {
            digest: digest.to_string(),
            references: vec![reference.to_string()],
            entrypoint: run.entrypoint.unwrap_or_default(),
            cmd: run.cmd.unwrap_or_default(),
            env: run.env.unwrap_or_default(),
            working_dir: run.working_dir.unwrap_or_default(),
            size_bytes: budget.used,
            stored_at: now,
            last_used_at: now,
        };
        self.write_json(&scratch.path().join("image.json"), &image)?;
        // The sandbox user is not the store's owner: it must be able to enter the image.
        make_public_dir(scratch.path())?;
        make_public_dir(&rootfs)?;
        make_public_dir(&self.dir)?;
        std::fs::create_dir_all(self.dir.join("images"))?;
        make_public_dir(&self.dir.join("images"))?;
        let staged = scratch.keep();
        if let Err(e) = std::fs::rename(&staged, &target) {
            let _ = std::fs::remove_dir_all(&staged);
            // Another pull of the same image finished first: theirs is as good.
            if self.get(digest)?.is_none() {
                return Err(e.into());
            }
        }
        self.tag(reference, digest)?;
        Ok(image)
    }

    /// Every stored image, least recently used first.
    pub fn list(&self) -> Result<Vec<StoredImage>, ImageError> {
        let mut images = Vec::new();
        let entries = match std::fs::read_dir(self.dir.join("images")) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(images),
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(image) = self.get(&format!("sha256:{name}")).ok().flatten() {
                images.push(image);
            }
        }
        images.sort_by_key(|i| (i.last_used_at, i.digest.clone()));
        Ok(images)
    }

    /// Removes one image and the tags naming it.
    pub fn remove(&self, digest: &str) -> Result<(), ImageError> {
        let dir = self.image_dir(digest)?;
        let mut refs = self.refs()?;
        refs.retain(|_, entry| entry.digest != digest);
        self.write_json(&self.dir.join("refs.json"), &refs)?;
        // Renamed away first, so a sandbox starting now never sees half a tree.
        let doomed = self
            .dir
            .join("tmp")
            .join(format!("rm-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(self.dir.join("tmp"))?;
        match std::fs::rename(&dir, &doomed) {
            Ok(()) => Ok(std::fs::remove_dir_all(&doomed)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes images not used since `unused_since` (unix seconds), least recently used first,
    /// while the store is above `max_bytes`; then leftovers of interrupted pulls. Returns the
    /// removed images.
    pub fn collect_garbage(
        &self,
        max_bytes: u64,
        unused_since: i64,
    ) -> Result<Vec<StoredImage>, ImageError> {
        let images = self.list()?;
        let mut total: u64 = images.iter().map(|i| i.size_bytes).sum();
        let mut removed = Vec::new();
        for image in images {
            if total <= max_bytes {
                break;
            }
            if image.last_used_at >= unused_since {
                continue;
            }
            self.remove(&image.digest)?;
            total = total.saturating_sub(image.size_bytes);
            removed.push(image);
        }
        Ok(removed)
    }

    /// Leftovers of pulls and removals that did not finish: older than an hour, so a pull
    /// running meanwhile in the daemon keeps its files.
    pub fn clear_scratch(&self) -> Result<(), ImageError> {
        let entries = match std::fs::read_dir(self.dir.join("tmp")) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for entry in entries {
            let entry = entry?;
            if entry.metadata()?.modified()? < hour_ago {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }
}

fn make_public_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
}
