//! The blob store's behaviour, written once (`mod cases`) and run against every backend: the
//! filesystem, moto_server and s3s-fs (real servers started per test by `common::s3_servers`).
//! Then the checks that only make sense for one kind of backend.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use cocov::config::{S3Config, StorageConfig, StorageMode};
use cocov::storage::{self, BlobKey, BlobMeta, BlobPrefix, BlobStore, StorageError};
use common::s3_servers::{S3Kind, S3Server, unique_bucket};
use sha2::{Digest, Sha256};

/// A store under test and what keeps it alive.
struct Fixture {
    store: Arc<dyn BlobStore>,
    /// What `describe()` must say for this store.
    description: String,
    /// Scratch space for local files (put_file sources, get_to_file targets), outside the store.
    files: tempfile::TempDir,
    limits: Limits,
    _root: Option<tempfile::TempDir>,
    _server: Option<S3Server>,
}

/// What a backend cannot do for reasons outside our code. The cases still run on it, and assert
/// the documented failure instead of the success.
#[derive(Clone, Copy)]
struct Limits {
    /// The longest key the backend stores. s3s-fs 0.14 writes base64(key) into one file name
    /// (`.bucket-…object-<base64>.internal.json`), so beyond ~134 bytes it fails with
    /// InternalError; ours and moto take the full 512.
    max_key_len: usize,
    /// A key that is also a "directory" of other keys (`7/a` next to `7/a/b`) reads as absent.
    /// s3s-fs 0.14 answers HEAD/GET on such a key with 500 (it opens its directory).
    prefix_key_reads_as_absent: bool,
}

const FULL: Limits = Limits {
    max_key_len: 512,
    prefix_key_reads_as_absent: true,
};
const S3S_FS: Limits = Limits {
    max_key_len: 128,
    prefix_key_reads_as_absent: false,
};

impl Fixture {
    async fn filesystem() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("storage");
        let config = StorageConfig {
            mode: StorageMode::Local,
            local_path: path.clone(),
            ..Default::default()
        };
        let store = storage::open(&config).await.unwrap();
        let description = format!("filesystem {}", path.canonicalize().unwrap().display());
        let files = tempfile::tempdir().unwrap();
        Fixture {
            store,
            description,
            files,
            limits: FULL,
            _root: Some(root),
            _server: None,
        }
    }

    async fn s3(kind: S3Kind) -> Fixture {
        let server = S3Server::start(kind).await;
        let bucket = unique_bucket();
        let config = StorageConfig {
            mode: StorageMode::S3,
            s3: server.config(&bucket),
            ..Default::default()
        };
        let store = storage::open(&config).await.unwrap();
        let description = format!("s3 {}/{bucket}", server.endpoint);
        let limits = if kind == S3Kind::S3sFs { S3S_FS } else { FULL };
        let files = tempfile::tempdir().unwrap();
        Fixture {
            store,
            description,
            files,
            limits,
            _root: None,
            _server: Some(server),
        }
    }
}

fn key(s: &str) -> BlobKey {
    BlobKey::new(s).unwrap()
}

fn prefix(s: &str) -> BlobPrefix {
    BlobPrefix::new(s).unwrap()
}

fn metas(items: &[(&str, u64)]) -> Vec<BlobMeta> {
    items
        .iter()
        .map(|(k, size)| BlobMeta {
            key: key(k),
            size: *size,
        })
        .collect()
}

/// Deterministic, incompressible-looking bytes (xorshift), written in 1 MiB blocks.
fn write_pseudo_random(path: &Path, len: usize, seed: u64) {
    use std::io::Write;
    let mut state = seed | 1;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(block.len());
        out.write_all(&block[..n]).unwrap();
        left -= n;
    }
    out.flush().unwrap();
}

fn sha256_file(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher.finalize().to_vec()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The behaviour every backend must have. Each case gets a fresh, empty store.
mod cases {
    use super::*;

    pub async fn put_get_roundtrip(f: &Fixture) {
        let store = &f.store;
        store
            .put(&key("1/a.txt"), Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert_eq!(
            store.get(&key("1/a.txt")).await.unwrap(),
            Bytes::from_static(b"hello")
        );

        let every_byte: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        store
            .put(&key("1/bin/x.tar.zst"), Bytes::from(every_byte.clone()))
            .await
            .unwrap();
        assert_eq!(
            store.get(&key("1/bin/x.tar.zst")).await.unwrap(),
            every_byte
        );

        store.put(&key("1/empty"), Bytes::new()).await.unwrap();
        assert_eq!(store.get(&key("1/empty")).await.unwrap(), Bytes::new());
        assert!(store.exists(&key("1/empty")).await.unwrap());

        // Dots are fine inside segments; they are stored literally.
        store
            .put(&key("1/.b/..c"), Bytes::from_static(b"dots"))
            .await
            .unwrap();
        assert_eq!(
            store.get(&key("1/.b/..c")).await.unwrap(),
            Bytes::from_static(b"dots")
        );
    }

    pub async fn overwrite_replaces(f: &Fixture) {
        let store = &f.store;
        let k = key("5/coverage/abc.json");
        store
            .put(&k, Bytes::from(vec![b'x'; 10_000]))
            .await
            .unwrap();
        store.put(&k, Bytes::from_static(b"short")).await.unwrap();
        assert_eq!(store.get(&k).await.unwrap(), Bytes::from_static(b"short"));
        assert_eq!(
            store.list(&prefix("5/")).await.unwrap(),
            metas(&[("5/coverage/abc.json", 5)])
        );
    }

    pub async fn missing_key_is_not_found(f: &Fixture) {
        let store = &f.store;
        store
            .put(&key("3/present"), Bytes::from_static(b"p"))
            .await
            .unwrap();
        for absent in ["3/absent", "4/absent", "3/present/below"] {
            match store.get(&key(absent)).await {
                Err(StorageError::NotFound { key }) => assert_eq!(key, absent),
                other => panic!("get {absent}: expected NotFound, got {other:?}"),
            }
        }
        let target = f.files.path().join("out.bin");
        match store.get_to_file(&key("3/absent"), &target).await {
            Err(e) => assert!(e.is_not_found(), "{e}"),
            Ok(n) => panic!("get_to_file of an absent key wrote {n} bytes"),
        }
        assert!(
            entries(f.files.path()).is_empty(),
            "a failed download left files behind"
        );
        let message = store.get(&key("3/absent")).await.unwrap_err().to_string();
        assert!(message.contains("3/absent"), "{message}");
    }

    pub async fn exists_follows_puts_and_deletes(f: &Fixture) {
        let store = &f.store;
        let k = key("7/archives/0123abcd.tar.zst");
        assert!(!store.exists(&k).await.unwrap());
        store.put(&k, Bytes::from_static(b"archive")).await.unwrap();
        assert!(store.exists(&k).await.unwrap());
        // A prefix of an existing key is not an object (and a server error is not "absent").
        let prefix_key = store.exists(&key("7/archives")).await;
        if f.limits.prefix_key_reads_as_absent {
            assert!(!prefix_key.unwrap());
        } else {
            assert!(prefix_key.is_err(), "{prefix_key:?}");
        }
        store.delete(&k).await.unwrap();
        assert!(!store.exists(&k).await.unwrap());
    }

    pub async fn delete_is_idempotent(f: &Fixture) {
        let store = &f.store;
        let k = key("8/x");
        store.delete(&k).await.unwrap();
        store.delete(&key("never/there/at/all")).await.unwrap();
        store.put(&k, Bytes::from_static(b"x")).await.unwrap();
        store
            .put(&key("8/y"), Bytes::from_static(b"y"))
            .await
            .unwrap();
        store.delete(&k).await.unwrap();
        store.delete(&k).await.unwrap();
        assert!(store.get(&k).await.unwrap_err().is_not_found());
        // Only the named object went.
        assert_eq!(
            store.get(&key("8/y")).await.unwrap(),
            Bytes::from_static(b"y")
        );
    }

    /// Keys chosen so that naive prefix matching ("1" vs "12", "1a") or a wrong sort order
    /// (uppercase sorts first in byte order) would show.
    const TREE: &[(&str, usize)] = &[
        ("12/a", 12),
        ("1/b/d", 4),
        ("1a", 1),
        ("1/a", 2),
        ("10/x", 10),
        ("1/b/c", 3),
        ("2/z", 20),
        ("1/Z-upper", 5),
    ];

    async fn plant_tree(store: &dyn BlobStore) {
        for (k, size) in TREE {
            store
                .put(&key(k), Bytes::from(vec![b'.'; *size]))
                .await
                .unwrap();
        }
    }

    pub async fn list_returns_exactly_the_prefix_sorted(f: &Fixture) {
        let store = f.store.as_ref();
        assert!(store.list(&BlobPrefix::all()).await.unwrap().is_empty());
        plant_tree(store).await;
        assert_eq!(
            store.list(&prefix("1/")).await.unwrap(),
            metas(&[("1/Z-upper", 5), ("1/a", 2), ("1/b/c", 3), ("1/b/d", 4)])
        );
        assert_eq!(
            store.list(&prefix("1/b/")).await.unwrap(),
            metas(&[("1/b/c", 3), ("1/b/d", 4)])
        );
        assert_eq!(
            store.list(&prefix("12/")).await.unwrap(),
            metas(&[("12/a", 12)])
        );
        assert!(store.list(&prefix("9/")).await.unwrap().is_empty());
        assert!(
            store.list(&prefix("1/a/")).await.unwrap().is_empty(),
            "an object is not a prefix"
        );
        let mut everything: Vec<(&str, u64)> = TREE.iter().map(|(k, s)| (*k, *s as u64)).collect();
        everything.sort();
        assert_eq!(
            store.list(&BlobPrefix::new("").unwrap()).await.unwrap(),
            metas(&everything)
        );
    }

    pub async fn delete_prefix_removes_only_the_prefix(f: &Fixture) {
        let store = f.store.as_ref();
        plant_tree(store).await;
        assert_eq!(store.delete_prefix(&prefix("1/")).await.unwrap(), 4);
        assert!(store.list(&prefix("1/")).await.unwrap().is_empty());
        assert!(store.get(&key("1/b/c")).await.unwrap_err().is_not_found());
        assert_eq!(
            store.list(&BlobPrefix::all()).await.unwrap(),
            metas(&[("10/x", 10), ("12/a", 12), ("1a", 1), ("2/z", 20)])
        );
        assert_eq!(store.delete_prefix(&prefix("1/")).await.unwrap(), 0);
        // The emptied prefix is usable again.
        store
            .put(&key("1/b/again"), Bytes::from_static(b"!"))
            .await
            .unwrap();
        assert_eq!(
            store.list(&prefix("1/")).await.unwrap(),
            metas(&[("1/b/again", 1)])
        );
        assert_eq!(store.delete_prefix(&BlobPrefix::all()).await.unwrap(), 5);
        assert!(store.list(&BlobPrefix::all()).await.unwrap().is_empty());
    }

    /// 20 MiB through put_file/get_to_file: more than two upload parts on S3, never one buffer.
    pub async fn large_object_streams_through_files(f: &Fixture) {
        const SIZE: usize = 20 * 1024 * 1024 + 12_345;
        let store = &f.store;
        let source = f.files.path().join("source.bin");
        write_pseudo_random(&source, SIZE, 0x5eed);
        let k = key("42/archives/big.tar.zst");
        assert_eq!(store.put_file(&k, &source).await.unwrap(), SIZE as u64);
        assert_eq!(
            store.list(&prefix("42/")).await.unwrap(),
            metas(&[("42/archives/big.tar.zst", SIZE as u64)])
        );

        // The target exists already: it is replaced whole.
        let target = f.files.path().join("target.bin");
        std::fs::write(&target, b"stale").unwrap();
        assert_eq!(store.get_to_file(&k, &target).await.unwrap(), SIZE as u64);
        assert_eq!(std::fs::metadata(&target).unwrap().len(), SIZE as u64);
        assert_eq!(sha256_file(&target), sha256_file(&source));
        assert_eq!(
            entries(f.files.path()),
            ["source.bin", "target.bin"],
            "temporary files left behind"
        );

        let in_memory = store.get(&k).await.unwrap();
        assert_eq!(Sha256::digest(&in_memory).to_vec(), sha256_file(&source));
    }

    pub async fn put_file_of_missing_source_fails(f: &Fixture) {
        let store = &f.store;
        let k = key("6/never");
        let missing = f.files.path().join("does-not-exist");
        let e = store.put_file(&k, &missing).await.unwrap_err();
        assert!(matches!(e, StorageError::Io { .. }), "{e:?}");
        assert!(e.to_string().contains("does-not-exist"), "{e}");
        assert!(!store.exists(&k).await.unwrap());
    }

    pub async fn invalid_keys_are_rejected(f: &Fixture) {
        let too_long = format!("{}/{}", "a".repeat(255), "b".repeat(257));
        let long_segment = "c".repeat(256);
        let bad_keys = [
            "../x",
            "/abs",
            "a//b",
            "a/./b",
            "a b",
            "",
            "a/",
            "a/..",
            "x/../../etc/passwd",
            "a~b",
            "ä",
            "a\\b",
            &too_long,
            &long_segment,
        ];
        for bad in bad_keys {
            match BlobKey::new(bad) {
                Err(StorageError::InvalidKey { key, reason }) => {
                    assert_eq!(key, bad);
                    assert!(!reason.is_empty());
                }
                other => panic!("{bad:?} was accepted as a key: {other:?}"),
            }
        }
        for bad in ["1", "/", "/1/", "a//", "../", "a/./", "a b/"] {
            assert!(
                matches!(BlobPrefix::new(bad), Err(StorageError::InvalidKey { .. })),
                "{bad:?}"
            );
        }
        // The longest key the backend takes (512 bytes, segments of at most 255, where the
        // server allows) works end to end.
        let max = f.limits.max_key_len;
        let (first, second) = (max / 2 - 1, max / 4);
        let third = max - first - second - 2;
        let longest = format!(
            "{}/{}/{}",
            "d".repeat(first),
            "e".repeat(second),
            "f".repeat(third)
        );
        assert_eq!(longest.len(), max);
        f.store
            .put(&key(&longest), Bytes::from_static(b"long"))
            .await
            .unwrap();
        assert_eq!(
            f.store.get(&key(&longest)).await.unwrap(),
            Bytes::from_static(b"long")
        );
        assert_eq!(
            f.store.list(&BlobPrefix::all()).await.unwrap(),
            metas(&[(longest.as_str(), 4)])
        );
    }

    pub async fn check_and_describe(f: &Fixture) {
        f.store.check().await.unwrap();
        assert_eq!(f.store.describe(), f.description);
        // The probe leaves nothing behind.
        assert!(f.store.list(&BlobPrefix::all()).await.unwrap().is_empty());
    }

    /// Readers racing a writer see one complete version or the other, never a mix or a prefix.
    pub async fn readers_never_see_partial_writes(f: &Fixture) {
        const LEN: usize = 3 * 1024 * 1024;
        let k = key("9/racy");
        f.store.put(&k, Bytes::from(vec![b'a'; LEN])).await.unwrap();
        let writer = {
            let (store, k) = (f.store.clone(), k.clone());
            tokio::spawn(async move {
                for i in 0..12 {
                    let byte = if i % 2 == 0 { b'b' } else { b'a' };
                    store.put(&k, Bytes::from(vec![byte; LEN])).await.unwrap();
                }
            })
        };
        let mut reads = 0;
        while !writer.is_finished() || reads < 5 {
            let data = f.store.get(&k).await.unwrap();
            assert_eq!(data.len(), LEN, "partial object read");
            assert!(data.iter().all(|b| *b == data[0]), "mixed object read");
            reads += 1;
        }
        writer.await.unwrap();
    }
}

/// Runs every case against every backend, each test with its own store (and server).
macro_rules! shared_suite {
    ($($case:ident),* $(,)?) => {
        mod filesystem {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::cases::$case(&super::Fixture::filesystem().await).await;
            })*
        }
        mod moto {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::cases::$case(&super::Fixture::s3(super::S3Kind::Moto).await).await;
            })*
        }
        mod s3s_fs {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::cases::$case(&super::Fixture::s3(super::S3Kind::S3sFs).await).await;
            })*
        }
    };
}

shared_suite!(
    put_get_roundtrip,
    overwrite_replaces,
    missing_key_is_not_found,
    exists_follows_puts_and_deletes,
    delete_is_idempotent,
    list_returns_exactly_the_prefix_sorted,
    delete_prefix_removes_only_the_prefix,
    large_object_streams_through_files,
    put_file_of_missing_source_fails,
    invalid_keys_are_rejected,
    check_and_describe,
    readers_never_see_partial_writes,
);

mod filesystem_only {
    use super::*;
    use cocov::storage::fs::FsStore;

    /// Every file under `dir`, relative, with `/` separators.
    fn files_under(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut pending = vec![PathBuf::new()];
        while let Some(rel) = pending.pop() {
            for entry in std::fs::read_dir(dir.join(&rel)).unwrap() {
                let entry = entry.unwrap();
                let path = rel.join(entry.file_name());
                if entry.file_type().unwrap().is_dir() {
                    pending.push(path);
                } else {
                    out.push(path.to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn objects_are_plain_files_under_the_root_and_no_temp_files_remain() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b/storage");
        let store = FsStore::open(&root).await.unwrap();
        assert!(root.is_dir(), "the root and its parents are created");
        for i in 0..5 {
            store
                .put(&key("1/x"), Bytes::from(vec![i; 1000]))
                .await
                .unwrap();
        }
        store
            .put(&key("1/y/z"), Bytes::from_static(b"z"))
            .await
            .unwrap();
        let source = dir.path().join("src.bin");
        std::fs::write(&source, b"from a file").unwrap();
        store.put_file(&key("2/f"), &source).await.unwrap();
        // Failed writes clean up too.
        store
            .put(&key("1/x/under-an-object"), Bytes::from_static(b"no"))
            .await
            .unwrap_err();
        store
            .put(&key("1/y"), Bytes::from_static(b"no"))
            .await
            .unwrap_err();
        store.check().await.unwrap();

        assert_eq!(files_under(&root), ["1/x", "1/y/z", "2/f"]);
        assert_eq!(std::fs::read(root.join("1/x")).unwrap(), vec![4; 1000]);
        assert_eq!(std::fs::read(root.join("2/f")).unwrap(), b"from a file");
    }

    #[tokio::test]
    async fn stray_files_in_the_root_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).await.unwrap();
        store
            .put(&key("1/real"), Bytes::from_static(b"r"))
            .await
            .unwrap();
        // What a crash mid-put leaves, and names that are not keys.
        std::fs::write(dir.path().join("1/.tmp~0123"), b"half").unwrap();
        std::fs::write(dir.path().join("1/has space"), b"?").unwrap();
        assert_eq!(
            store.list(&BlobPrefix::all()).await.unwrap(),
            metas(&[("1/real", 1)])
        );
    }

    #[tokio::test]
    async fn symlinks_inside_the_root_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("storage");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"do not read").unwrap();
        let store = FsStore::open(&root).await.unwrap();
        // A directory link and a file link, both pointing out of the root.
        std::os::unix::fs::symlink(&outside, root.join("7")).unwrap();
        std::fs::create_dir(root.join("8")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("8/file")).unwrap();

        for k in ["7/secret", "8/file"] {
            let e = store.get(&key(k)).await.unwrap_err();
            assert!(e.to_string().contains("symlink"), "get {k}: {e}");
            let target = dir.path().join("download");
            store.get_to_file(&key(k), &target).await.unwrap_err();
            assert!(!target.exists());
            assert!(
                !matches!(store.exists(&key(k)).await, Ok(true)),
                "exists {k} followed the link"
            );
        }
        let e = store
            .put(&key("7/planted"), Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        let source = dir.path().join("src");
        std::fs::write(&source, b"y").unwrap();
        store
            .put_file(&key("7/planted2"), &source)
            .await
            .unwrap_err();
        assert_eq!(
            entries(&outside),
            ["secret"],
            "a write went through the link"
        );

        assert!(store.list(&BlobPrefix::all()).await.unwrap().is_empty());
        assert!(!matches!(store.list(&prefix("7/")).await, Ok(found) if !found.is_empty()));
        let _ = store.delete(&key("7/secret")).await;
        let _ = store.delete_prefix(&prefix("7/")).await;
        let _ = store.delete_prefix(&BlobPrefix::all()).await;

        // Writing over a file link replaces the link itself, never its target.
        store
            .put(&key("8/file"), Bytes::from_static(b"new"))
            .await
            .unwrap();
        assert_eq!(
            store.get(&key("8/file")).await.unwrap(),
            Bytes::from_static(b"new")
        );
        assert_eq!(
            std::fs::read(outside.join("secret")).unwrap(),
            b"do not read"
        );
        assert_eq!(entries(&outside), ["secret"]);
    }

    #[tokio::test]
    async fn check_fails_when_the_root_is_gone_or_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("storage");
        let store = FsStore::open(&root).await.unwrap();
        store.check().await.unwrap();
        std::fs::remove_dir(&root).unwrap();
        let e = store.check().await.unwrap_err();
        assert!(e.to_string().contains(&root.display().to_string()), "{e}");
        // A file where the root should be.
        std::fs::write(&root, b"").unwrap();
        store.check().await.unwrap_err();
        assert!(FsStore::open(&root).await.is_err());
    }
}

mod s3_only {
    use super::*;
    use cocov::storage::s3::S3Store;

    async fn bucket_is_created_when_allowed(kind: S3Kind) {
        let server = S3Server::start(kind).await;
        let bucket = unique_bucket();
        let store = S3Store::open(&server.config(&bucket)).await.unwrap();
        store
            .put(&key("1/a"), Bytes::from_static(b"a"))
            .await
            .unwrap();
        // Opening again, now without permission to create, finds the bucket and its object.
        let again = S3Store::open(&S3Config {
            create_bucket: false,
            ..server.config(&bucket)
        })
        .await
        .unwrap();
        assert_eq!(
            again.get(&key("1/a")).await.unwrap(),
            Bytes::from_static(b"a")
        );
        if kind == S3Kind::S3sFs {
            assert!(server.data_dir().join(&bucket).join("1/a").is_file());
        }
    }

    async fn missing_bucket_without_create_fails_clearly(kind: S3Kind) {
        let server = S3Server::start(kind).await;
        let bucket = unique_bucket();
        let config = S3Config {
            create_bucket: false,
            ..server.config(&bucket)
        };
        let e = match S3Store::open(&config).await {
            Err(e) => e,
            Ok(_) => panic!("opened a bucket that does not exist"),
        };
        let message = e.to_string();
        assert!(matches!(e, StorageError::S3 { .. }), "{e:?}");
        assert!(
            message.contains(&bucket) && message.contains("does not exist"),
            "{message}"
        );
        assert!(
            message.contains("create_bucket"),
            "the message should name the setting: {message}"
        );
        // Nothing was created behind our back: it still fails.
        assert!(S3Store::open(&config).await.is_err());
    }

    #[tokio::test]
    async fn moto_bucket_is_created_when_allowed() {
        bucket_is_created_when_allowed(S3Kind::Moto).await;
    }

    #[tokio::test]
    async fn s3s_fs_bucket_is_created_when_allowed() {
        bucket_is_created_when_allowed(S3Kind::S3sFs).await;
    }

    #[tokio::test]
    async fn moto_missing_bucket_without_create_fails_clearly() {
        missing_bucket_without_create_fails_clearly(S3Kind::Moto).await;
    }

    #[tokio::test]
    async fn s3s_fs_missing_bucket_without_create_fails_clearly() {
        missing_bucket_without_create_fails_clearly(S3Kind::S3sFs).await;
    }

    /// s3s-fs verifies signatures: a wrong secret fails, the right one (control) works. moto
    /// accepts anything, which is why s3s-fs is in the suite.
    #[tokio::test]
    async fn s3s_fs_rejects_a_wrong_secret() {
        let server = S3Server::s3s_fs().await;
        let bucket = unique_bucket();
        let good = S3Store::open(&server.config(&bucket)).await.unwrap();
        good.put(&key("1/a"), Bytes::from_static(b"a"))
            .await
            .unwrap();

        let wrong = S3Config {
            secret_access_key: "not-the-secret".into(),
            ..server.config(&bucket)
        };
        let e = match S3Store::open(&wrong).await {
            Err(e) => e,
            Ok(_) => panic!("s3s-fs accepted a wrong secret"),
        };
        let message = e.to_string();
        assert!(matches!(e, StorageError::S3 { .. }), "{e:?}");
        assert!(message.contains(&bucket), "{message}");
        assert!(
            message.contains("AccessDenied") || message.contains("Signature"),
            "{message}"
        );
        // Also with bucket creation off, and on another bucket: still refused, nothing created.
        let other = unique_bucket();
        let wrong_new = S3Config {
            secret_access_key: "nope".into(),
            ..server.config(&other)
        };
        assert!(S3Store::open(&wrong_new).await.is_err());
        assert!(
            !server.data_dir().join(&other).exists(),
            "a bucket was created with a wrong secret"
        );
        assert_eq!(
            good.get(&key("1/a")).await.unwrap(),
            Bytes::from_static(b"a")
        );
    }

    #[tokio::test]
    async fn moto_accepts_any_secret() {
        let server = S3Server::moto().await;
        let wrong = S3Config {
            secret_access_key: "anything".into(),
            ..server.config(&unique_bucket())
        };
        S3Store::open(&wrong).await.unwrap().check().await.unwrap();
    }

    /// A server that accepts connections and never answers: every call ends in Timeout.
    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let config = S3Config {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "silent".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
            timeout_seconds: 1,
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let e = match S3Store::open(&config).await {
            Err(e) => e,
            Ok(_) => panic!("opened a store on a server that never answers"),
        };
        assert!(matches!(e, StorageError::Timeout { .. }), "{e:?}");
        assert!(e.to_string().contains("silent"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        held.abort();
    }

    #[tokio::test]
    async fn bad_configuration_is_reported() {
        let empty = S3Config {
            endpoint: String::new(),
            ..Default::default()
        };
        let e = match S3Store::open(&empty).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("opened without an endpoint"),
        };
        assert!(e.contains("endpoint"), "{e}");
        let bad = S3Config {
            endpoint: "ftp://example.com".into(),
            ..Default::default()
        };
        assert!(S3Store::open(&bad).await.is_err());
    }
}
