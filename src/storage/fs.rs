//! Filesystem backend: one file per object under a root directory.
//!
//! Every access walks from the root with `openat(O_NOFOLLOW)` one segment at a time, so a
//! symlink planted anywhere inside the root is refused instead of followed (no check-then-open
//! race). Writes go to a temporary file in the target directory, are fsynced, renamed over the
//! target and the directory is fsynced: a reader sees the old object or the new one, never a
//! partial one, and a crash after `put` returns loses nothing. Temporary names contain `~`,
//! which no key may contain, so listings can never mistake them for objects.
//!
//! All file work runs on the blocking pool; the async runtime never waits on the disk.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};

use super::{BlobKey, BlobMeta, BlobPrefix, BlobStore, StorageError, temp_sibling};

/// Objects may hold private source code: owner read-write, group read (for backups).
const FILE_MODE: u32 = 0o640;
const DIR_MODE: u32 = 0o750;
/// A readiness probe must answer even when the disk hangs (NFS); the blocking task may linger.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// A concurrent `delete_prefix` may remove a directory between our walk and our create; retry.
const PUT_ATTEMPTS: usize = 3;

#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    /// Creates the root (with parents) when missing. The root itself may be a symlink chosen by
    /// the operator; it is resolved once here, and nothing below it is ever followed.
    pub async fn open(root: &Path) -> Result<FsStore, StorageError> {
        let root = root.to_path_buf();
        blocking(move || {
            let context = || format!("storage root {}", root.display());
            if root.as_os_str().is_empty() {
                let e = io::Error::new(io::ErrorKind::InvalidInput, "storage.local_path is empty");
                return Err(StorageError::io(context(), e));
            }
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(&root)
                .map_err(|e| StorageError::io(context(), e))?;
            let root = root
                .canonicalize()
                .map_err(|e| StorageError::io(context(), e))?;
            Ok(FsStore { root })
        })
        .await
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[async_trait::async_trait]
impl BlobStore for FsStore {
    fn describe(&self) -> String {
        format!("filesystem {}", self.root.display())
    }

    async fn put(&self, key: &BlobKey, data: Bytes) -> Result<(), StorageError> {
        let (root, key) = (self.root.clone(), key.clone());
        blocking(move || {
            write_object(&root, &key, |file| {
                file.write_all(&data).map(|()| data.len() as u64)
            })
            .map(drop)
            .map_err(|e| e.context(format!("put {key}")))
        })
        .await
    }

    async fn put_file(&self, key: &BlobKey, path: &Path) -> Result<u64, StorageError> {
        let (root, key, path) = (self.root.clone(), key.clone(), path.to_path_buf());
        blocking(move || {
            let context = || format!("put {key} from {}", path.display());
            let mut source = File::open(&path).map_err(|e| StorageError::io(context(), e))?;
            write_object(&root, &key, |file| io::copy(&mut source, file))
                .map_err(|e| e.context(context()))
        })
        .await
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, StorageError> {
        let (root, key) = (self.root.clone(), key.clone());
        blocking(move || {
            let (mut file, size) = open_object(&root, &key, "get")?;
            let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            file.read_to_end(&mut data)
                .map_err(|e| StorageError::io(format!("get {key}"), e))?;
            Ok(Bytes::from(data))
        })
        .await
    }

    async fn get_to_file(&self, key: &BlobKey, path: &Path) -> Result<u64, StorageError> {
        let (root, key, path) = (self.root.clone(), key.clone(), path.to_path_buf());
        blocking(move || {
            let context = || format!("get {key} to {}", path.display());
            let (mut source, _) = open_object(&root, &key, "get")?;
            let tmp = temp_sibling(&path)?;
            let copied = (|| {
                let mut out = File::options()
                    .write(true)
                    .create_new(true)
                    .mode(FILE_MODE)
                    .open(&tmp)?;
                let n = io::copy(&mut source, &mut out)?;
                out.sync_all()?;
                std::fs::rename(&tmp, &path)?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    File::open(dir)?.sync_all()?;
                }
                Ok(n)
            })();
            copied.map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                StorageError::io(context(), e)
            })
        })
        .await
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, StorageError> {
        let (root, key) = (self.root.clone(), key.clone());
        blocking(move || {
            let fail = |e: WalkError| e.context(format!("exists {key}"));
            let (dir, name) = match open_parent(&root, &key, false) {
                Ok(found) => found,
                Err(WalkError::Missing) => return Ok(false),
                Err(e) => return Err(fail(e)),
            };
            match entry_kind(&dir, name) {
                Ok(Kind::File) => Ok(true),
                Ok(Kind::Dir | Kind::Other) | Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(false),
                Ok(Kind::Symlink) => Err(fail(WalkError::Symlink(name.to_owned()))),
                Err(e) => Err(fail(WalkError::Io(e.into()))),
            }
        })
        .await
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        let (root, key) = (self.root.clone(), key.clone());
        blocking(move || delete_object(&root, &key)).await
    }

    async fn list(&self, prefix: &BlobPrefix) -> Result<Vec<BlobMeta>, StorageError> {
        let (root, prefix) = (self.root.clone(), prefix.clone());
        blocking(move || walk(&root, &prefix).map(|(objects, _dirs)| objects)).await
    }

    async fn delete_prefix(&self, prefix: &BlobPrefix) -> Result<u64, StorageError> {
        let (root, prefix) = (self.root.clone(), prefix.clone());
        blocking(move || {
            let (objects, dirs) = walk(&root, &prefix)?;
            for meta in &objects {
                delete_object(&root, &meta.key)?;
            }
            // Prune the emptied directories, deepest first. rmdir refuses non-empty ones, so an
            // object written meanwhile survives (and `put` retries if its directory vanished).
            for dir in dirs.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            Ok(objects.len() as u64)
        })
        .await
    }

    async fn check(&self) -> Result<(), StorageError> {
        let root = self.root.clone();
        let context = format!("storage check {}", root.display());
        let probe = blocking(move || {
            let context = || format!("storage check {}", root.display());
            let dir = open_root(&root).map_err(|e| StorageError::io(context(), e))?;
            // Creating a file is the only honest writability test (read-only mounts, quotas,
            // wrong owner all show up here), and it is cheap: no data, no fsync.
            let name = format!(".check~{}", uuid::Uuid::new_v4().simple());
            let flags = OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC;
            let fd = openat(
                &dir,
                name.as_str(),
                flags,
                Mode::from_bits_truncate(FILE_MODE),
            )
            .map_err(|e| StorageError::io(context(), e.into()))?;
            drop(fd);
            unlinkat(&dir, name.as_str(), UnlinkatFlags::NoRemoveDir)
                .map_err(|e| StorageError::io(context(), e.into()))
        });
        match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
            Ok(result) => result,
            Err(_) => Err(StorageError::Timeout {
                context: format!("{context} (after {CHECK_TIMEOUT:?})"),
            }),
        }
    }
}

async fn blocking<T, F>(f: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::io("filesystem storage task", io::Error::other(e)))?
}

/// Why walking from the root to a key's directory stopped.
#[derive(Debug)]
enum WalkError {
    /// A segment does not exist (or is an object where a directory was expected).
    Missing,
    Symlink(String),
    /// An object exists where the key needs a directory (only an error when writing).
    NotADirectory(String),
    Io(io::Error),
}

impl WalkError {
    fn context(self, context: String) -> StorageError {
        match self {
            WalkError::Missing => {
                StorageError::io(context, io::Error::from(io::ErrorKind::NotFound))
            }
            WalkError::Symlink(name) => StorageError::io(
                context,
                io::Error::other(format!(
                    "refusing to follow the symlink `{name}` inside the storage root"
                )),
            ),
            WalkError::NotADirectory(name) => StorageError::io(
                context,
                io::Error::other(format!(
                    "`{name}` is an object, so it cannot also hold objects"
                )),
            ),
            WalkError::Io(e) => StorageError::io(context, e),
        }
    }
}

enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

fn entry_kind(dir: &OwnedFd, name: &str) -> Result<Kind, Errno> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    Ok(if kind == SFlag::S_IFREG {
        Kind::File
    } else if kind == SFlag::S_IFDIR {
        Kind::Dir
    } else if kind == SFlag::S_IFLNK {
        Kind::Symlink
    } else {
        Kind::Other
    })
}

fn open_root(root: &Path) -> io::Result<OwnedFd> {
    let file = File::options()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_CLOEXEC).bits())
        .open(root)?;
    Ok(OwnedFd::from(file))
}

/// Opens the directory that holds `key`'s last segment, never following a symlink. With
/// `create`, missing directories are made on the way.
fn open_parent<'k>(
    root: &Path,
    key: &'k BlobKey,
    create: bool,
) -> Result<(OwnedFd, &'k str), WalkError> {
    let mut dir = open_root(root).map_err(WalkError::Io)?;
    let mut segments: Vec<&str> = key.segments().collect();
    let name = segments.pop().ok_or(WalkError::Missing)?;
    for segment in segments {
        dir = open_subdir(&dir, segment, create)?;
    }
    Ok((dir, name))
}

fn open_subdir(parent: &OwnedFd, name: &str, create: bool) -> Result<OwnedFd, WalkError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOENT) if create => {
            match mkdirat(parent, name, Mode::from_bits_truncate(DIR_MODE)) {
                // The new entry must survive a crash like the object that will live below it.
                Ok(()) => fsync(parent.as_fd()).map_err(|e| WalkError::Io(e.into()))?,
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(WalkError::Io(e.into())),
            }
            // Opened again, still without following: whatever won a race to this name is checked.
            open_subdir(parent, name, false)
        }
        Err(Errno::ENOENT) => Err(WalkError::Missing),
        // O_NOFOLLOW|O_DIRECTORY on a symlink or a file: find out which, for an honest message.
        Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => match entry_kind(parent, name) {
            Ok(Kind::Symlink) => Err(WalkError::Symlink(name.to_owned())),
            Ok(_) if create => Err(WalkError::NotADirectory(name.to_owned())),
            Ok(_) => Err(WalkError::Missing),
            Err(_) => Err(WalkError::Io(e.into())),
        },
        Err(e) => Err(WalkError::Io(e.into())),
    }
}

/// Opens an object for reading: a regular file reached without following any symlink.
fn open_object(root: &Path, key: &BlobKey, operation: &str) -> Result<(File, u64), StorageError> {
    let not_found = || StorageError::NotFound {
        key: key.to_string(),
    };
    let walk_failed = |e: WalkError| match e {
        WalkError::Missing => not_found(),
        other => other.context(format!("{operation} {key}")),
    };
    let (dir, name) = open_parent(root, key, false).map_err(walk_failed)?;
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match openat(&dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Err(not_found()),
        Err(Errno::ELOOP) => return Err(walk_failed(WalkError::Symlink(name.to_owned()))),
        Err(e) => return Err(StorageError::io(format!("{operation} {key}"), e.into())),
    };
    let file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| StorageError::io(format!("{operation} {key}"), e))?;
    if !meta.is_file() {
        // A directory here is a prefix of other keys, not an object.
        return Err(not_found());
    }
    Ok((file, meta.size()))
}

/// Writes an object atomically: temp file in the target directory, fsync, rename, fsync dir.
fn write_object(
    root: &Path,
    key: &BlobKey,
    mut fill: impl FnMut(&mut File) -> io::Result<u64>,
) -> Result<u64, WalkError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (dir, name) = open_parent(root, key, true)?;
        let tmp = format!(".tmp~{}", uuid::Uuid::new_v4().simple());
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match openat(
            &dir,
            tmp.as_str(),
            flags,
            Mode::from_bits_truncate(FILE_MODE),
        ) {
            Ok(fd) => fd,
            // The directory was pruned by a concurrent delete_prefix after we opened it.
            Err(Errno::ENOENT) if attempt < PUT_ATTEMPTS => continue,
            Err(e) => return Err(WalkError::Io(e.into())),
        };
        let mut file = File::from(fd);
        let written = (|| {
            let n = fill(&mut file)?;
            file.sync_all()?;
            renameat(&dir, tmp.as_str(), &dir, name).map_err(|e| match e {
                Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST => io::Error::other(format!(
                    "`{name}` is a directory of other objects, so it cannot also be an object"
                )),
                e => e.into(),
            })?;
            fsync(dir.as_fd())?;
            Ok(n)
        })();
        return written.map_err(|e| {
            let _ = unlinkat(&dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
            WalkError::Io(e)
        });
    }
}

fn delete_object(root: &Path, key: &BlobKey) -> Result<(), StorageError> {
    let (dir, name) = match open_parent(root, key, false) {
        Ok(found) => found,
        Err(WalkError::Missing) => return Ok(()),
        Err(e) => return Err(e.context(format!("delete {key}"))),
    };
    // unlinkat never follows: a planted symlink is removed itself, its target is untouched.
    match unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir) {
        // EISDIR: the name is a directory of other keys, so there is no object to delete.
        Ok(()) | Err(Errno::ENOENT | Errno::ENOTDIR | Errno::EISDIR) => Ok(()),
        Err(e) => Err(StorageError::io(format!("delete {key}"), e.into())),
    }
}

/// Lists objects under `prefix`, sorted, plus the directories visited (parents first).
///
/// The path down to the prefix is checked with the same no-follow walk as every other access;
/// below it, `DirEntry::file_type` does not follow symlinks, so links are skipped, never
/// descended. Names that are not valid keys (temporary files, foreign files) are skipped.
fn walk(root: &Path, prefix: &BlobPrefix) -> Result<(Vec<BlobMeta>, Vec<PathBuf>), StorageError> {
    let context = || format!("list `{prefix}`");
    let start_dir = match prefix.as_str().strip_suffix('/') {
        None => root.to_path_buf(),
        Some(body) => {
            let mut dir = open_root(root).map_err(|e| StorageError::io(context(), e))?;
            for segment in body.split('/') {
                dir = match open_subdir(&dir, segment, false) {
                    Ok(d) => d,
                    Err(WalkError::Missing) => return Ok((Vec::new(), Vec::new())),
                    Err(e) => return Err(e.context(context())),
                };
            }
            root.join(body)
        }
    };
    let mut objects = Vec::new();
    let mut dirs = Vec::new();
    let mut pending = vec![(start_dir, prefix.as_str().to_owned())];
    while let Some((dir, key_prefix)) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // Removed by a concurrent delete_prefix: it holds nothing any more.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StorageError::io(context(), e)),
        };
        if dir != root {
            dirs.push(dir.clone());
        }
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(context(), e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let file_type = entry
                .file_type()
                .map_err(|e| StorageError::io(context(), e))?;
            if !name.bytes().all(super::is_key_byte) {
                continue;
            }
            let key = format!("{key_prefix}{name}");
            if file_type.is_dir() {
                pending.push((entry.path(), format!("{key}/")));
            } else if file_type.is_file() {
                let Ok(key) = BlobKey::new(&key) else {
                    continue;
                };
                match entry.metadata() {
                    Ok(meta) => objects.push(BlobMeta {
                        key,
                        size: meta.len(),
                    }),
                    // Deleted between readdir and stat: not an object any more.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::io(context(), e)),
                }
            }
        }
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    dirs.sort_by_key(|d| d.components().count());
    Ok((objects, dirs))
}
