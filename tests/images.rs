//! Image plugins against a real registry (Debian's `docker-registry`) serving images assembled
//! here from busybox: a multi-architecture index, whiteouts, the original plugin contract, use
//! with the registry gone, archives imported without any registry, and every way a pull is
//! refused (wrong digest, hostile layer paths and links, unreachable registry).
//!
//! Runs through `cocov plugin run`, which uses the same resolution and sandbox as a check
//! (tests/checks.rs runs an image through the daemon).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::registry::{Entry, INDEX, Image, MANIFEST, Registry, gzip, host_arch, layer, sha256};
use serde_json::{Value, json};

/// A host's configuration: a store of its own, the test registry (if any) allowed over HTTP.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new(insecure: &[&str]) -> Host {
        let dir = tempfile::tempdir().unwrap();
        // The sandbox user (not this test's) must reach the store.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let list = insecure
            .iter()
            .map(|h| format!("\"{h}\""))
            .collect::<Vec<_>>()
            .join(", ");
        std::fs::write(
            dir.path().join("cocov.toml"),
            format!(
                "[images]\nstore_dir = \"{}\"\ninsecure_registries = [{list}]\n\
                 [security]\ncryptographic_key = \"{}\"\n",
                dir.path().join("store").display(),
                "cd".repeat(32)
            ),
        )
        .unwrap();
        Host { dir }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn cocov(&self, args: &[&str]) -> Output {
        common::cocov_command()
            .env("COCOV_CONFIG", self.dir.path().join("cocov.toml"))
            .args(args)
            .output()
            .unwrap()
    }

    /// `cocov plugin run REF --dir DIR --json`: the issues, or the error text.
    fn run_plugin(&self, reference: &str, dir: &Path) -> Result<Vec<Value>, String> {
        let out = self.cocov(&[
            "plugin",
            "run",
            reference,
            "--dir",
            dir.to_str().unwrap(),
            "--json",
        ]);
        if !out.status.success() {
            return Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect())
    }
}

/// A small tree with two TODOs.
fn source() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "fine\nTODO fix this\n").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/b.py"), "# TODO\nx = 1\n").unwrap();
    dir
}

fn assert_todo_issues(issues: &[Value]) {
    let mut found: Vec<(String, i64, String)> = issues
        .iter()
        .map(|i| {
            (
                i["file"].as_str().unwrap().to_string(),
                i["line_start"].as_i64().unwrap(),
                i["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("a.txt".into(), 2, "TODO left (from-image)".into()),
            ("sub/b.py".into(), 1, "TODO left (from-image)".into()),
        ]
    );
}

/// Pushes the TODO plugin for this host's architecture and a decoy for another one, under one
/// multi-architecture index tagged `tag`.
async fn push_multi_arch(registry: &Registry, repository: &str, tag: &str) -> String {
    let (ours, our_size) = registry
        .push_image(repository, "host-arch", &Image::todo_plugin())
        .await;
    let mut decoy = Image::todo_plugin();
    decoy.arch = "s390x".into();
    decoy.cmd = vec![
        "-c".into(),
        "echo picked the wrong architecture; exit 9".into(),
    ];
    let (theirs, their_size) = registry.push_image(repository, "decoy", &decoy).await;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [
            {"mediaType": MANIFEST, "digest": theirs, "size": their_size,
             "platform": {"architecture": "s390x", "os": "linux"}},
            {"mediaType": MANIFEST, "digest": ours, "size": our_size,
             "platform": {"architecture": host_arch(), "os": "linux"}},
        ],
    });
    registry.push_manifest(repository, tag, INDEX, &index).await;
    ours
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_from_a_multi_arch_index_runs_by_the_original_contract_and_then_offline() {
    let mut registry = Registry::start().await;
    let digest = push_multi_arch(&registry, "team/todo", "v1").await;
    let host = Host::new(&[&registry.host]);
    let reference = format!("{}/team/todo:v1", registry.host);
    let tree = source();

    let issues = host.run_plugin(&reference, tree.path()).unwrap();
    assert_todo_issues(&issues);
    // The tree given is left as it was.
    assert_eq!(std::fs::read_dir(tree.path()).unwrap().count(), 2);

    let out = host.cocov(&["plugin", "images", "--json"]);
    assert!(out.status.success());
    let listed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["digest"], digest.as_str(), "the host's platform");
    assert_eq!(listed[0]["references"][0], reference.as_str());
    assert!(
        listed[0]["size_bytes"].as_u64().unwrap() > 500_000,
        "busybox is in"
    );
    // The whiteout removed the lower layer's file from the store too.
    let hex = digest.strip_prefix("sha256:").unwrap();
    let rootfs = host.store().join("images").join(hex).join("rootfs");
    assert!(rootfs.join("bin/busybox").is_file());
    assert!(!rootfs.join("etc/stale").exists());

    // The registry goes away: the stored tag still runs.
    registry.stop();
    let issues = host.run_plugin(&reference, tree.path()).unwrap();
    assert_todo_issues(&issues);
    // An explicit pull needs the registry, and says which.
    let out = host.cocov(&["plugin", "pull", &reference]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("registry {}", registry.host)),
        "{stderr}"
    );

    // Pruning keeps what was used recently; images name their use.
    let out = host.cocov(&["plugin", "prune"]);
    assert!(out.status.success());
    assert!(rootfs.join("bin/busybox").is_file());
    let out = host.cocov(&["plugin", "images"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&reference));
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_digests_hostile_layers_and_unreachable_registries_are_refused_clearly() {
    let registry = Registry::start().await;
    let host = Host::new(&[&registry.host, "127.0.0.1:1"]);
    let tree = source();
    let outside = tempfile::tempdir().unwrap();
    let marker = outside.path().join("escaped");
    let depth = "../".repeat(16);
    let escape = format!(
        "{depth}{}",
        marker.display().to_string().trim_start_matches('/')
    );

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "path",
            layer(&[Entry::File(escape.clone(), b"x".to_vec(), 0o644)]),
            "leaves the image's root filesystem",
        ),
        (
            "link",
            layer(&[Entry::Link("up".into(), depth.clone())]),
            "outside the image's root filesystem",
        ),
        (
            "hardlink",
            layer(&[Entry::Hard("h".into(), escape.clone())]),
            "outside the image's root filesystem",
        ),
    ];
    for (name, hostile, expected) in cases {
        registry
            .push_image(&format!("evil/{name}"), "v1", &Image::with_layer(hostile))
            .await;
        let reference = format!("{}/evil/{name}:v1", registry.host);
        let error = host.run_plugin(&reference, tree.path()).unwrap_err();
        assert!(error.contains(expected), "{name}: {error}");
        assert!(error.contains("the image is refused"), "{name}: {error}");
    }
    assert!(!marker.exists());
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    // Nothing of the refused images stayed in the store.
    let images = host.cocov(&["plugin", "images", "--json"]);
    assert!(String::from_utf8_lossy(&images.stdout).trim().is_empty());

    // A registry serving other bytes than the digest it names.
    let image = Image::todo_plugin();
    registry.push_image("team/tampered", "v1", &image).await;
    let plugin_layer = gzip(&image.layers[1]);
    let mut evil = TAMPERED_PLUGIN.as_bytes().to_vec();
    evil.resize(plugin_layer.len(), b'\n');
    std::fs::write(registry.blob_file(&sha256(&plugin_layer)), gzip(&evil)).unwrap();
    let error = host
        .run_plugin(&format!("{}/team/tampered:v1", registry.host), tree.path())
        .unwrap_err();
    assert!(error.contains("does not match its digest"), "{error}");

    // Nothing listens there.
    let error = host
        .run_plugin("127.0.0.1:1/team/todo:v1", tree.path())
        .unwrap_err();
    assert!(
        error.contains("as an image: registry 127.0.0.1:1"),
        "{error}"
    );
    // Not a reference at all.
    let error = host.run_plugin("UPPER/Case::x", tree.path()).unwrap_err();
    assert!(error.contains("is not an image reference"), "{error}");
}

const TAMPERED_PLUGIN: &str = "#!/bin/sh\necho tampered\n";

/// An OCI image layout archive of `image`, named `name`.
fn oci_archive(image: &Image, name: &str) -> Vec<u8> {
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut layers = Vec::new();
    for l in &image.layers {
        let gz = gzip(l);
        layers.push(
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                           "digest": sha256(&gz), "size": gz.len()}),
        );
        blobs.push((sha256(&gz), gz));
    }
    let config = image.config_json();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(&config), "size": config.len()},
        "layers": layers,
    }))
    .unwrap();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": MANIFEST, "digest": sha256(&manifest), "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": name}}],
    });
    blobs.push((sha256(&config), config));
    blobs.push((sha256(&manifest), manifest));
    let mut entries = vec![
        Entry::File(
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            0o644,
        ),
        Entry::File("index.json".into(), index.to_string().into_bytes(), 0o644),
        Entry::Dir("blobs".into()),
        Entry::Dir("blobs/sha256".into()),
    ];
    for (digest, bytes) in blobs {
        let hex = digest.strip_prefix("sha256:").unwrap();
        entries.push(Entry::File(format!("blobs/sha256/{hex}"), bytes, 0o644));
    }
    layer(&entries)
}

/// A `docker save` archive of `image` (uncompressed layers, a repeated layer as a link).
fn docker_archive(image: &Image, name: &str) -> Vec<u8> {
    let config = image.config_json();
    let config_name = format!("{}.json", &sha256(&config)[7..]);
    let mut entries = vec![Entry::File(config_name.clone(), config, 0o644)];
    let mut names = Vec::new();
    for (i, l) in image.layers.iter().enumerate() {
        let dir = format!("layer{i}");
        entries.push(Entry::Dir(dir.clone()));
        entries.push(Entry::File(format!("{dir}/layer.tar"), l.clone(), 0o644));
        names.push(format!("{dir}/layer.tar"));
    }
    // docker save links a layer it already wrote.
    entries.push(Entry::Dir("again".into()));
    entries.push(Entry::Link(
        "again/layer.tar".into(),
        "../layer1/layer.tar".into(),
    ));
    names.push("again/layer.tar".into());
    let manifest = json!([{"Config": config_name, "RepoTags": [name], "Layers": names}]);
    entries.push(Entry::File(
        "manifest.json".into(),
        manifest.to_string().into_bytes(),
        0o644,
    ));
    layer(&entries)
}

#[test]
fn archives_import_and_run_with_no_registry_at_all() {
    let host = Host::new(&[]);
    let tree = source();
    let files = tempfile::tempdir().unwrap();
    let image = Image::todo_plugin();

    let oci = files.path().join("todo.oci.tar");
    std::fs::write(&oci, oci_archive(&image, "registry.invalid/team/todo:v2")).unwrap();
    let out = host.cocov(&["plugin", "import", oci.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issues = host
        .run_plugin("registry.invalid/team/todo:v2", tree.path())
        .unwrap();
    assert_todo_issues(&issues);

    let docker = files.path().join("todo.docker.tar");
    std::fs::write(
        &docker,
        docker_archive(&image, "registry.invalid/team/saved:v3"),
    )
    .unwrap();
    let out = host.cocov(&["plugin", "import", docker.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issues = host
        .run_plugin("registry.invalid/team/saved:v3", tree.path())
        .unwrap();
    assert_todo_issues(&issues);
    // --tag names an image the archive does not.
    let out = host.cocov(&[
        "plugin",
        "import",
        docker.to_str().unwrap(),
        "--tag",
        "registry.invalid/other/name:v9",
    ]);
    assert!(out.status.success());
    host.run_plugin("registry.invalid/other/name:v9", tree.path())
        .unwrap();

    // A blob altered inside an OCI archive is refused, naming the file.
    let mut bytes = oci_archive(&image, "registry.invalid/team/bad:v1");
    let blob = gzip(&image.layers[1]);
    let at = bytes
        .windows(blob.len())
        .position(|w| w == blob.as_slice())
        .unwrap();
    bytes[at + blob.len() / 2] ^= 0xff;
    let bad = files.path().join("bad.tar");
    std::fs::write(&bad, bytes).unwrap();
    let out = host.cocov(&["plugin", "import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.tar"), "{stderr}");
    assert!(stderr.contains("does not match its digest"), "{stderr}");
    // Not an archive; no file.
    let out = host.cocov(&["plugin", "import", "/etc/hostname"]);
    assert_eq!(out.status.code(), Some(1));
    let out = host.cocov(&["plugin", "import", "/nonexistent.tar"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.tar: no such file"));
}

#[test]
fn registry_credentials_are_stored_sealed() {
    let host = Host::new(&[]);
    let mut child = common::cocov_command()
        .env("COCOV_CONFIG", host.dir.path().join("cocov.toml"))
        .args([
            "plugin",
            "login",
            "registry.example:5000",
            "--username",
            "bot",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret-password\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let file = std::fs::read_to_string(host.store().join("credentials.json")).unwrap();
    assert!(file.contains("registry.example:5000") && file.contains("bot"));
    assert!(!file.contains("s3cret"), "{file}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(host.store().join("credentials.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0);
    let out = host.cocov(&["plugin", "logout", "registry.example:5000"]);
    assert!(out.status.success());
    let out = host.cocov(&["plugin", "logout", "registry.example:5000"]);
    assert_eq!(out.status.code(), Some(1));
}
