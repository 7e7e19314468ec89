//! A private OCI registry (Debian's `docker-registry`, the CNCF distribution server) on a free
//! port with its own storage directory, and images assembled here from Debian's static busybox:
//! layers are tar files written entry by entry (so hostile ones can be made too), pushed with the
//! registry's own upload protocol.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const BUSYBOX: &str = "/bin/busybox";

pub struct Registry {
    child: Option<Child>,
    pub host: String,
    pub storage: tempfile::TempDir,
    client: reqwest::Client,
}

impl Registry {
    pub async fn start() -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists() && Path::new(BUSYBOX).exists(),
            "run scripts/install-test-tools.sh (docker-registry, busybox-static)"
        );
        let storage = tempfile::tempdir().unwrap();
        let port = super::requests::free_port();
        let host = format!("127.0.0.1:{port}");
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {host}\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        let client = reqwest::Client::new();
        let registry = Registry {
            child: Some(child),
            host,
            storage,
            client,
        };
        super::eventually(
            "the registry to answer",
            Duration::from_secs(30),
            || async {
                let resp = registry
                    .client
                    .get(format!("http://{}/v2/", registry.host))
                    .send()
                    .await
                    .ok()?;
                resp.status().is_success().then_some(())
            },
        )
        .await;
        registry
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn push_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let resp = self
            .client
            .post(format!(
                "http://{}/v2/{repository}/blobs/uploads/",
                self.host
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202, "{:?}", resp.text().await);
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        let url = if location.starts_with("http") {
            location
        } else {
            format!("http://{}{location}", self.host)
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let resp = self
            .client
            .put(format!("{url}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{:?}", resp.text().await);
        digest
    }

    pub async fn push_manifest(
        &self,
        repository: &str,
        tag: &str,
        media_type: &str,
        manifest: &Value,
    ) -> String {
        let body = serde_json::to_vec(manifest).unwrap();
        let resp = self
            .client
            .put(format!(
                "http://{}/v2/{repository}/manifests/{tag}",
                self.host
            ))
            .header("content-type", media_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{:?}", resp.text().await);
        sha256(&body)
    }

    /// Pushes `image`'s layers, configuration and manifest; returns the manifest's digest and
    /// size.
    pub async fn push_image(&self, repository: &str, tag: &str, image: &Image) -> (String, usize) {
        let mut layers = Vec::new();
        for layer in &image.layers {
            let gz = gzip(layer);
            let digest = self.push_blob(repository, &gz).await;
            layers.push(json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest,
                "size": gz.len(),
            }));
        }
        let config = image.config_json();
        let config_digest = self.push_blob(repository, &config).await;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": layers,
        });
        let size = serde_json::to_vec(&manifest).unwrap().len();
        let digest = self
            .push_manifest(repository, tag, MANIFEST, &manifest)
            .await;
        (digest, size)
    }

    /// The file the registry keeps a blob's bytes in (to play a compromised registry).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The architecture name images use for this host.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// One layer entry, written with its raw name (hostile names included).
pub enum Entry {
    Dir(String),
    File(String, Vec<u8>, u32),
    Link(String, String),
    Hard(String, String),
}

pub fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (name, data, link): (&str, &[u8], Option<&str>) = match entry {
            Entry::Dir(name) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                (name, b"", None)
            }
            Entry::File(name, data, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                (name, data, None)
            }
            Entry::Link(name, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                (name, b"", Some(target))
            }
            Entry::Hard(name, target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o644);
                (name, b"", Some(target))
            }
        };
        let raw = header.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(target) = link {
            raw.linkname[..target.len()].copy_from_slice(target.as_bytes());
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A busybox root filesystem: the static binary and links for the applets plugins use.
pub fn busybox_layer() -> Vec<u8> {
    let mut entries = vec![
        Entry::Dir("bin".into()),
        Entry::Dir("etc".into()),
        Entry::Dir("tmp".into()),
        Entry::File("bin/busybox".into(), std::fs::read(BUSYBOX).unwrap(), 0o755),
        Entry::File(
            "etc/passwd".into(),
            b"root:x:0:0:root:/root:/bin/sh\ncocov:x:1000:1000:cocov:/home/cocov:/bin/sh\n"
                .to_vec(),
            0o644,
        ),
        // Removed by a whiteout in a later layer.
        Entry::File("etc/stale".into(), b"lower layer".to_vec(), 0o644),
    ];
    for applet in [
        "sh", "cp", "cat", "printf", "grep", "id", "echo", "ls", "test", "[", "wc", "sleep",
    ] {
        entries.push(Entry::Link(format!("bin/{applet}"), "busybox".into()));
    }
    layer(&entries)
}

/// The plugin: the original contract (reads COCOV_WORKDIR, runs as uid 1000, writes
/// NUL-separated JSON issues to COCOV_OUTPUT_FILE): one issue per line containing `TODO`.
pub const TODO_PLUGIN: &str = r#"#!/bin/sh
[ "$(id -u)" = 1000 ] || { echo "not uid 1000: $(id -u)"; exit 2; }
[ -e /etc/stale ] && { echo "the whiteout was not applied"; exit 4; }
# The image's files are the store's: read-only to the plugin, as is the sandbox's root.
for target in /plugin.sh /bin/busybox /etc/passwd /new-file; do
  if ( : > "$target" ) 2>/dev/null; then echo "could write $target"; exit 5; fi
done
cd "$COCOV_WORKDIR" || exit 3
: > "$COCOV_OUTPUT_FILE"
grep -rn TODO . | while IFS=: read -r file line rest; do
  file=${file#./}
  printf '{"kind":"quality","file":"%s","line_start":%s,"line_end":%s,"message":"TODO left (%s)","uid":"todo-%s-%s"}\0' \
    "$file" "$line" "$line" "$MARKER" "$file" "$line" >> "$COCOV_OUTPUT_FILE"
done
exit 0
"#;

pub struct Image {
    pub layers: Vec<Vec<u8>>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub arch: String,
}

impl Image {
    /// busybox + the TODO plugin + a layer whiting out `/etc/stale`.
    pub fn todo_plugin() -> Image {
        Image {
            layers: vec![
                busybox_layer(),
                layer(&[Entry::File(
                    "plugin.sh".into(),
                    TODO_PLUGIN.as_bytes().to_vec(),
                    0o755,
                )]),
                layer(&[Entry::File("etc/.wh.stale".into(), Vec::new(), 0o644)]),
            ],
            entrypoint: vec!["/bin/sh".into()],
            cmd: vec!["/plugin.sh".into()],
            env: vec!["PATH=/bin".into(), "MARKER=from-image".into()],
            arch: host_arch().into(),
        }
    }

    /// busybox plus one extra layer (hostile ones for the refusal tests).
    pub fn with_layer(extra: Vec<u8>) -> Image {
        let mut image = Image::todo_plugin();
        image.layers.push(extra);
        image
    }

    pub fn config_json(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "architecture": self.arch,
            "os": "linux",
            "config": {
                "Entrypoint": self.entrypoint,
                "Cmd": self.cmd,
                "Env": self.env,
                "WorkingDir": "/",
            },
            "rootfs": {
                "type": "layers",
                "diff_ids": self.layers.iter().map(|l| sha256(l)).collect::<Vec<_>>(),
            },
        }))
        .unwrap()
    }
}
