//! Applying an image's layers to a root filesystem directory, the way a container runtime does,
//! without ever writing outside it.
//!
//! Every entry's path is joined to the root component by component, following the links earlier
//! entries made *inside* the root (an absolute link target means the root, not the host's `/`),
//! so neither `../x` nor a link planted by one layer and written through by the next reaches the
//! host. A link whose target climbs above the root, or a hard link to something outside it, makes
//! the whole image refused: no legitimate image needs one, and a store holding one would be a trap
//! for anything on the host that walks it. Whiteouts (`.wh.NAME`, `.wh..wh..opq`) delete what the
//! layers below put there. Ownership is not kept (the sandbox maps one uid); modes lose set-id
//! bits and group/other write, and gain read for everyone, since the sandbox user is not the
//! store's owner.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Links followed while resolving one path, as the kernel's limit.
const MAX_LINK_HOPS: usize = 40;
const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry `{0}` leaves the image's root filesystem")]
    PathEscape(String),
    #[error("layer entry `{path}` is a link to `{target}`, outside the image's root filesystem")]
    LinkEscape { path: String, target: String },
    #[error("layer entry `{0}`: too many levels of links")]
    LinkLoop(String),
    #[error("the image unpacks to more than {0} MiB")]
    TooLarge(u64),
    #[error("reading the layer: {0}")]
    Io(#[from] std::io::Error),
}

/// The running total of bytes written, shared by all layers of one image.
pub struct Budget {
    pub used: u64,
    pub limit: u64,
}

/// Applies one layer (a tar stream, compressed as its media type says) on top of `root`.
pub fn apply_layer(
    root: &Path,
    blob: impl Read,
    media_type: &str,
    budget: &mut Budget,
) -> Result<(), UnpackError> {
    // `…tar+gzip`, `…tar.gzip` (Docker), `…tar+zstd`; anything else is a plain tar.
    let reader: Box<dyn Read> = if media_type.ends_with("gzip") {
        Box::new(flate2::read::GzDecoder::new(blob))
    } else if media_type.ends_with("zstd") {
        Box::new(zstd::stream::read::Decoder::new(blob)?)
    } else {
        Box::new(blob)
    };
    let mut archive = tar::Archive::new(reader);
    // Paths this layer made: an opaque whiteout hides only what the layers below made.
    let mut made: HashSet<PathBuf> = HashSet::new();
    let mut opaque: Vec<PathBuf> = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let shown = raw.display().to_string();
        let relative = normalise(&raw).ok_or_else(|| UnpackError::PathEscape(shown.clone()))?;
        let Some(name) = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
        else {
            continue; // the root itself
        };
        let parent_rel = relative.parent().unwrap_or(Path::new("")).to_path_buf();
        let parent = resolve(root, &parent_rel, &shown)?;
        if name == OPAQUE {
            opaque.push(parent);
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            remove_any(&parent.join(hidden))?;
            continue;
        }
        std::fs::create_dir_all(&parent)?;
        let target = parent.join(&name);
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644);
        if !kind.is_dir() {
            remove_any(&target)?;
        }
        if kind.is_dir() {
            if std::fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
                remove_any(&target)?;
            }
            std::fs::create_dir_all(&target)?;
            set_mode(&target, dir_mode(mode))?;
        } else if kind.is_symlink() {
            let link = entry
                .link_name()?
                .ok_or_else(|| UnpackError::PathEscape(shown.clone()))?
                .into_owned();
            if !link_stays_inside(&parent_rel, &link) {
                return Err(UnpackError::LinkEscape {
                    path: shown,
                    target: link.display().to_string(),
                });
            }
            std::os::unix::fs::symlink(&link, &target)?;
        } else if kind.is_hard_link() {
            let link = entry
                .link_name()?
                .ok_or_else(|| UnpackError::PathEscape(shown.clone()))?
                .into_owned();
            let escape = || UnpackError::LinkEscape {
                path: shown.clone(),
                target: link.display().to_string(),
            };
            let link_rel = normalise(&link).ok_or_else(escape)?;
            let link_parent = resolve(root, link_rel.parent().unwrap_or(Path::new("")), &shown)?;
            let source = link_parent.join(link_rel.file_name().ok_or_else(escape)?);
            if !std::fs::symlink_metadata(&source).is_ok_and(|m| m.is_file()) {
                return Err(escape());
            }
            std::fs::hard_link(&source, &target)?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let size = entry.header().size()?;
            budget.used = budget.used.saturating_add(size);
            if budget.used > budget.limit {
                return Err(UnpackError::TooLarge(budget.limit / (1024 * 1024)));
            }
            let mut file = std::fs::File::create(&target)?;
            std::io::copy(&mut entry, &mut file)?;
            set_mode(&target, file_mode(mode))?;
        } else {
            // Devices and fifos: nothing an unprivileged sandbox could use.
            continue;
        }
        made.insert(target);
    }
    for dir in opaque {
        if let Ok(children) = std::fs::read_dir(&dir) {
            for child in children {
                let path = child?.path();
                if !made.contains(&path) {
                    remove_any(&path)?;
                }
            }
        }
    }
    Ok(())
}

/// The path relative to the root, or None when `..` climbs above it. A leading `/` means the
/// root, as in image layers made by some tools.
pub(super) fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether a symbolic link in `dir` (root-relative) pointing at `target` resolves inside the
/// root, lexically (links it goes through are resolved inside the root when used).
fn link_stays_inside(dir: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        normalise(target).is_some()
    } else {
        normalise(&dir.join(target)).is_some()
    }
}

/// The host path of root-relative `relative`, following links already in the root as the
/// sandbox would see them. Refuses (never follows) anything that would leave the root.
pub fn resolve(root: &Path, relative: &Path, shown: &str) -> Result<PathBuf, UnpackError> {
    let mut hops = 0;
    let mut done = PathBuf::new();
    let mut pending: Vec<PathBuf> = relative
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    while let Some(part) = pending.pop() {
        match part.to_str() {
            Some("/") | Some(".") | Some("") => continue,
            Some("..") => {
                if !done.pop() {
                    return Err(UnpackError::PathEscape(shown.to_string()));
                }
                continue;
            }
            _ => {}
        }
        let candidate = done.join(&part);
        let host = root.join(&candidate);
        match std::fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_LINK_HOPS {
                    return Err(UnpackError::LinkLoop(shown.to_string()));
                }
                let target = std::fs::read_link(&host)?;
                if target.is_absolute() {
                    done = PathBuf::new();
                }
                pending.extend(
                    target
                        .components()
                        .rev()
                        .map(|c| PathBuf::from(c.as_os_str())),
                );
            }
            _ => done = candidate,
        }
    }
    Ok(root.join(done))
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Owner may always write (later layers add to it); everyone may list and enter.
fn dir_mode(mode: u32) -> u32 {
    (mode & 0o755) | 0o755
}

/// No set-id bits, no group/other write, readable by the sandbox user.
fn file_mode(mode: u32) -> u32 {
    let exec = if mode & 0o111 != 0 { 0o111 } else { 0 };
    (mode & 0o755) | 0o644 | exec
}

#[cfg(test)]
mod tests {
    use super::*;

    enum E<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Link(&'a str, &'a str),
        Hard(&'a str, &'a str),
    }

    /// A tar built with raw header names, so hostile paths go in as written.
    fn layer(entries: &[E]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in entries {
            let mut header = tar::Header::new_gnu();
            let (name, data): (&str, &[u8]) = match entry {
                E::File(name, data) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(0o4755);
                    (name, data)
                }
                E::Dir(name) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o700);
                    (name, b"")
                }
                E::Link(name, target) | E::Hard(name, target) => {
                    header.set_entry_type(if matches!(entry, E::Link(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                    (name, b"")
                }
            };
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(data.len() as u64);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn apply(root: &Path, entries: &[E]) -> Result<(), UnpackError> {
        let mut budget = Budget {
            used: 0,
            limit: 1 << 30,
        };
        apply_layer(
            root,
            layer(entries).as_slice(),
            "application/vnd.oci.image.layer.v1.tar",
            &mut budget,
        )
    }

    #[test]
    fn layers_stack_with_whiteouts_and_opaque_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir(&root).unwrap();
        apply(
            &root,
            &[
                E::Dir("etc"),
                E::File("etc/a", b"a"),
                E::File("etc/b", b"b"),
                E::Dir("opt"),
                E::File("opt/old", b"old"),
                E::Link("bin", "usr/bin"),
                E::File("usr/bin/tool", b"x"),
                E::Hard("usr/bin/tool2", "usr/bin/tool"),
            ],
        )
        .unwrap();
        apply(
            &root,
            &[
                E::File("etc/.wh.a", b""),
                E::File("opt/new", b"new"),
                E::File("opt/.wh..wh..opq", b""),
                // Written through the link the lower layer made: lands in usr/bin.
                E::File("bin/other", b"y"),
            ],
        )
        .unwrap();
        assert!(!root.join("etc/a").exists());
        assert_eq!(std::fs::read(root.join("etc/b")).unwrap(), b"b");
        assert!(!root.join("opt/old").exists());
        assert_eq!(std::fs::read(root.join("opt/new")).unwrap(), b"new");
        assert_eq!(std::fs::read(root.join("usr/bin/other")).unwrap(), b"y");
        assert_eq!(std::fs::read(root.join("usr/bin/tool2")).unwrap(), b"x");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("usr/bin/tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755, "set-uid dropped");
        let mode = std::fs::metadata(root.join("etc"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o755,
            "directories readable by the sandbox user"
        );
    }

    #[test]
    fn hostile_paths_and_links_are_refused_and_nothing_lands_outside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&outside).unwrap();
        let cases: Vec<Vec<E>> = vec![
            vec![E::File("../outside/x", b"x")],
            vec![E::File("a/../../outside/x", b"x")],
            vec![E::Link("up", "../outside")],
            vec![E::Link("d/up", "../../outside")],
            vec![E::Link("abs", "/../outside")],
            vec![E::Hard("h", "../outside/x")],
        ];
        for case in &cases {
            let e = apply(&root, case).unwrap_err();
            assert!(
                matches!(
                    e,
                    UnpackError::PathEscape(_) | UnpackError::LinkEscape { .. }
                ),
                "{e}"
            );
        }
        // An absolute link is the image's own root: writing through it stays inside.
        apply(
            &root,
            &[E::Link("etcl", "/etc"), E::File("etcl/passwd", b"p")],
        )
        .unwrap();
        assert_eq!(std::fs::read(root.join("etc/passwd")).unwrap(), b"p");
        // A link chain back to the root and up is refused when used.
        apply(&root, &[E::Link("loop", "loop2"), E::Link("loop2", "loop")]).unwrap();
        assert!(matches!(
            apply(&root, &[E::File("loop/x", b"x")]).unwrap_err(),
            UnpackError::LinkLoop(_)
        ));
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
