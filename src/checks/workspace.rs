//! A check set's files on the worker: the commit archive fetched from the blob store and
//! verified against its SHA-256 (both by `archive`), unpacked once with every hostile-archive
//! trick refused, and one private writable copy per check so no plugin can change what another
//! sees.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::app::App;
use crate::archive::ArchiveError;

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// Fetching or verifying the archive (`archive` says which, and whether it may pass).
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    #[error("the commit archive was refused: {0}")]
    Unsafe(String),
    #[error("preparing the work directory: {0}")]
    Io(#[from] std::io::Error),
}

impl WorkspaceError {
    pub fn is_transient(&self) -> bool {
        match self {
            WorkspaceError::Archive(e) => e.is_transient(),
            WorkspaceError::Unsafe(_) => false,
            WorkspaceError::Io(_) => true,
        }
    }
}

/// Caps on what one commit may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct TreeLimits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

pub struct Workspace {
    root: PathBuf,
    tree: PathBuf,
}

impl Workspace {
    /// Fetches, verifies and unpacks the commit into `<work_dir>/<name>/tree`.
    pub async fn prepare(
        app: &App,
        name: &str,
        repository_id: i64,
        sha: &str,
        recorded_sha256: Option<&str>,
    ) -> Result<Workspace, WorkspaceError> {
        let root = app.config.worker.work_dir.join(name);
        if root.exists() {
            remove_tree(&root)?;
        }
        std::fs::create_dir_all(&root)?;
        // Traversable (not listable) so a sandbox running as another user reaches its own copy.
        set_mode(&root, 0o711)?;
        let archive = root.join("archive.tar.zst");
        crate::archive::fetch_verified(
            app.storage.as_ref(),
            repository_id,
            sha,
            recorded_sha256,
            &archive,
        )
        .await?;
        let limits = TreeLimits {
            max_bytes: app.config.worker.max_tree_mb.saturating_mul(1024 * 1024),
            max_entries: app.config.worker.max_tree_entries,
        };
        let tree = root.join("tree");
        let (archive_path, tree_path, sha) = (archive.clone(), tree.clone(), sha.to_string());
        tokio::task::spawn_blocking(move || unpack(&archive_path, &tree_path, &sha, limits))
            .await
            .map_err(|e| WorkspaceError::Io(std::io::Error::other(e.to_string())))??;
        std::fs::remove_file(&archive)?;
        Ok(Workspace { root, tree })
    }

    pub fn tree(&self) -> &Path {
        &self.tree
    }

    /// A fresh private directory for one check: `src/`, a copy of the tree owned by `owner`
    /// when given, from which the sandbox makes its writable work copy.
    pub fn check_dir(&self, index: usize, owner: Option<(u32, u32)>) -> std::io::Result<PathBuf> {
        let dir = self.root.join(format!("check-{index}"));
        if dir.exists() {
            remove_tree(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        copy_tree(&self.tree, &dir.join("src"), owner)?;
        Ok(dir)
    }

    pub fn remove(self) {
        if let Err(e) = remove_tree(&self.root) {
            tracing::warn!(path = %self.root.display(), error = %e, "leaving a work directory behind");
        }
    }
}

/// Unpacks `<sha>/…` entries into `dest`. Refused: paths that are absolute, contain `..` or lie
/// outside `<sha>/`, hard links, links whose target leaves the tree, and archives over the caps.
/// Device nodes, FIFOs and metadata entries are skipped; modes are normalised (no setuid).
fn unpack(
    archive: &Path,
    dest: &Path,
    sha: &str,
    limits: TreeLimits,
) -> Result<(), WorkspaceError> {
    let refuse = |why: String| WorkspaceError::Unsafe(why);
    std::fs::create_dir_all(dest)?;
    let decoder = zstd::stream::read::Decoder::new(std::fs::File::open(archive)?)?;
    let mut tar = tar::Archive::new(decoder);
    let (mut bytes, mut count) = (0u64, 0u64);
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    for entry in tar.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            continue;
        }
        count += 1;
        if count > limits.max_entries {
            return Err(refuse(format!("more than {} entries", limits.max_entries)));
        }
        let path = entry.path()?.into_owned();
        let Some(relative) = inside_prefix(&path, sha) else {
            return Err(refuse(format!(
                "entry `{}` is outside `{sha}/`",
                path.display()
            )));
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(&relative);
        if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
        } else if kind.is_file() {
            bytes = bytes.saturating_add(entry.size());
            if bytes > limits.max_bytes {
                return Err(refuse(format!(
                    "it unpacks to more than {} MiB",
                    limits.max_bytes / (1024 * 1024)
                )));
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let executable = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)?;
            std::io::copy(&mut (&mut entry).take(limits.max_bytes), &mut file)?;
            set_mode(&target, if executable { 0o755 } else { 0o644 })?;
        } else if kind.is_symlink() {
            let link = entry
                .link_name()?
                .ok_or_else(|| refuse(format!("link `{}` has no target", path.display())))?
                .into_owned();
            if !link_stays_inside(&relative, &link) {
                return Err(refuse(format!(
                    "link `{}` points outside the tree (`{}`)",
                    relative.display(),
                    link.display()
                )));
            }
            links.push((relative, link));
        } else if kind.is_hard_link() {
            return Err(refuse(format!("hard link `{}`", path.display())));
        }
        // Character and block devices, FIFOs and the like are dropped.
    }
    // Links last, so no file is ever written through one. Each link is judged by where it
    // resolves through all the others (`a -> .` makes `a/a/../..` leave the tree), and one
    // below another link is refused outright: it is not where it looks.
    let mut map = super::links::Links::default();
    for (relative, link) in &links {
        map.insert(relative.clone(), link.clone());
    }
    for (relative, link) in &links {
        if map.below_a_link(relative) {
            return Err(refuse(format!(
                "link `{}` lies below another link",
                relative.display()
            )));
        }
        if let Err(escape) = map.resolve(relative) {
            return Err(refuse(format!(
                "link `{}` points outside the tree (`{}`: {escape})",
                relative.display(),
                link.display()
            )));
        }
    }
    for (relative, link) in links {
        let target = dest.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(&link, &target).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                refuse(format!(
                    "link `{}` is also a file or directory",
                    relative.display()
                ))
            } else {
                e.into()
            }
        })?;
    }
    Ok(())
}

/// The path below `<sha>/`, made only of normal components.
fn inside_prefix(path: &Path, sha: &str) -> Option<PathBuf> {
    let mut components = path.components();
    match components.next() {
        Some(Component::Normal(first)) if first == sha => {}
        _ => return None,
    }
    let mut relative = PathBuf::new();
    for component in components {
        match component {
            Component::Normal(c) => relative.push(c),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(relative)
}

/// Whether a relative link at `at` (tree-relative) resolves inside the tree, lexically.
fn link_stays_inside(at: &Path, link: &Path) -> bool {
    if link.is_absolute() {
        return false;
    }
    let mut depth: i64 = at.components().count() as i64 - 1;
    for component in link.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::CurDir => {}
            _ => return false,
        }
    }
    true
}

/// Copies a tree without following links, optionally giving every entry to `owner`.
pub(crate) fn copy_tree(from: &Path, to: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    let chown = |path: &Path| match owner {
        Some((uid, gid)) => std::os::unix::fs::lchown(path, Some(uid), Some(gid)),
        None => Ok(()),
    };
    chown(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target, owner)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
            chown(&target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
            chown(&target)?;
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Removes a directory a plugin may have left unreadable (mode 000 directories).
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    if std::fs::remove_dir_all(path).is_ok() || !path.exists() {
        return Ok(());
    }
    fn open_up(path: &Path) {
        if let Ok(meta) = std::fs::symlink_metadata(path)
            && meta.is_dir()
        {
            let _ = set_mode(path, 0o700);
            if let Ok(entries) = std::fs::read_dir(path) {
                for entry in entries.flatten() {
                    open_up(&entry.path());
                }
            }
        }
    }
    open_up(path);
    std::fs::remove_dir_all(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_checked_lexically() {
        assert!(link_stays_inside(Path::new("a"), Path::new("b")));
        assert!(link_stays_inside(Path::new("d/a"), Path::new("../b")));
        assert!(!link_stays_inside(Path::new("a"), Path::new("../b")));
        assert!(!link_stays_inside(Path::new("d/a"), Path::new("../../b")));
        assert!(!link_stays_inside(Path::new("a"), Path::new("/etc/passwd")));
        assert!(link_stays_inside(Path::new("a"), Path::new("x/..")));
    }

    const SHA: &str = "abc";

    enum Entry<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8], u32),
        Link(&'a str, &'a str),
        HardLink(&'a str, &'a str),
    }

    /// A tar.zst whose entry names are written raw, so hostile names (`..`, absolute) survive.
    fn archive(dir: &Path, entries: &[Entry<'_>]) -> PathBuf {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in entries {
            let mut header = tar::Header::new_old();
            let (name, kind, data, mode, link): (&str, tar::EntryType, &[u8], u32, Option<&str>) =
                match entry {
                    Entry::Dir(n) => (n, tar::EntryType::Directory, b"", 0o755, None),
                    Entry::File(n, d, m) => (n, tar::EntryType::Regular, d, *m, None),
                    Entry::Link(n, t) => (n, tar::EntryType::Symlink, b"", 0o777, Some(t)),
                    Entry::HardLink(n, t) => (n, tar::EntryType::Link, b"", 0o644, Some(t)),
                };
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(target) = link {
                header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
            }
            header.set_entry_type(kind);
            header.set_mode(mode);
            header.set_size(data.len() as u64);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let path = dir.join("a.tar.zst");
        std::fs::write(&path, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
        path
    }

    fn limits() -> TreeLimits {
        TreeLimits {
            max_bytes: 1024,
            max_entries: 10,
        }
    }

    fn try_unpack(entries: &[Entry<'_>], limits: TreeLimits) -> Result<PathBuf, String> {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = archive(&dir, entries);
        let dest = dir.join("tree");
        unpack(&path, &dest, SHA, limits).map_err(|e| e.to_string())?;
        Ok(dest)
    }

    #[test]
    fn a_normal_tree_unpacks_with_normalised_modes() {
        let dest = try_unpack(
            &[
                Entry::Dir("abc/"),
                Entry::File("abc/bin/run.sh", b"echo\n", 0o4755),
                Entry::File("abc/README", b"hi", 0o666),
                Entry::Link("abc/docs", "bin"),
            ],
            limits(),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| {
            std::fs::metadata(dest.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("bin/run.sh"), 0o755);
        assert_eq!(mode("README"), 0o644);
        assert_eq!(
            std::fs::read_link(dest.join("docs")).unwrap(),
            Path::new("bin")
        );
    }

    #[test]
    fn hostile_archives_are_refused() {
        let cases: Vec<(Vec<Entry<'_>>, &str)> = vec![
            (vec![Entry::File("abc/../evil", b"x", 0o644)], "outside"),
            (vec![Entry::File("/etc/evil", b"x", 0o644)], "outside"),
            (vec![Entry::File("other/x", b"x", 0o644)], "outside"),
            (
                vec![Entry::Link("abc/l", "../../etc/passwd")],
                "points outside",
            ),
            (vec![Entry::Link("abc/l", "/etc/passwd")], "points outside"),
            (vec![Entry::HardLink("abc/h", "/etc/passwd")], "hard link"),
            (
                vec![Entry::Link("abc/d", "."), Entry::Link("abc/d/l", "../x")],
                "below another link",
            ),
            // Chains judged by where they resolve, not by their text.
            (
                vec![
                    Entry::Link("abc/a", "."),
                    Entry::Link("abc/x", "a/a/a/../../.."),
                ],
                "points outside",
            ),
            (
                vec![Entry::Link("abc/b", "a/.."), Entry::Link("abc/a", ".")],
                "points outside",
            ),
            (
                vec![
                    Entry::Link("abc/a", "."),
                    Entry::Link("abc/b", "a"),
                    Entry::Link("abc/c", "b/b/../.."),
                ],
                "points outside",
            ),
            (
                vec![
                    Entry::Link("abc/m", "l"),
                    Entry::Link("abc/l", "d/up"),
                    Entry::Link("abc/d/up", "../.."),
                ],
                "points outside",
            ),
            (
                vec![
                    Entry::Dir("abc/sub/deeper/"),
                    Entry::Link("abc/d", "sub/deeper"),
                    Entry::Link("abc/x", "d/../../.."),
                ],
                "points outside",
            ),
            (
                vec![Entry::Link("abc/p", "q"), Entry::Link("abc/q", "p")],
                "more than 40 links",
            ),
            (
                vec![Entry::Link("abc/d/l", "../x"), Entry::Link("abc/d", ".")],
                "below another link",
            ),
            (
                vec![
                    Entry::File("abc/d/x", b"x", 0o644),
                    Entry::Link("abc/d", "e"),
                ],
                "also a file or directory",
            ),
            (
                vec![Entry::File("abc/big", &[b'x'; 2048], 0o644)],
                "more than",
            ),
            (
                (0..11).map(|_| Entry::Dir("abc/d/")).collect(),
                "more than 10 entries",
            ),
        ];
        for (entries, why) in cases {
            let e = try_unpack(&entries, limits()).unwrap_err();
            assert!(e.contains(why), "{e} (expected {why})");
        }
    }

    #[test]
    fn entries_must_stay_below_the_commit_prefix() {
        let sha = "abc";
        assert_eq!(
            inside_prefix(Path::new("abc/x/y"), sha),
            Some(PathBuf::from("x/y"))
        );
        assert_eq!(inside_prefix(Path::new("abc/"), sha), Some(PathBuf::new()));
        assert_eq!(inside_prefix(Path::new("abc/../x"), sha), None);
        assert_eq!(inside_prefix(Path::new("/abc/x"), sha), None);
        assert_eq!(inside_prefix(Path::new("other/x"), sha), None);
    }
}

#[cfg(test)]
#[path = "workspace_properties.rs"]
mod properties;
