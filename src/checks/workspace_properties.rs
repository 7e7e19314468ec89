//! Property tests of the archive extractor ([`super::unpack`]), which is private to the worker:
//! tar entries with arbitrary names, link targets and types, built raw so that hostile names
//! survive, never write anything outside the destination, never leave a link that resolves
//! outside it, and never unpack more entries or bytes than the caps.
//!
//! Cases: 256, or `PROPTEST_CASES`.

use std::path::{Component, Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::Config;

use super::{TreeLimits, unpack};

const SHA: &str = "abc";
const LIMITS: TreeLimits = TreeLimits {
    max_bytes: 4096,
    max_entries: 16,
};
/// The destination sits this deep below the temp dir that is walked afterwards, so a climb of
/// up to this many levels lands somewhere the walk sees.
const NESTING: &[&str] = &["one", "two", "three"];

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

#[derive(Clone)]
enum Kind {
    Dir,
    File(Vec<u8>, u32),
    Symlink(Vec<u8>),
    HardLink(Vec<u8>),
    /// Any other type byte: FIFOs, devices, PAX and GNU metadata, unknown ones.
    Other(u8),
}

#[derive(Clone)]
struct Spec {
    name: Vec<u8>,
    kind: Kind,
    /// Set the name through a PAX `path` record instead (no 100-byte limit).
    pax: bool,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Names and targets as (lossy) text, so a failing case reads as an archive listing.
impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Dir => write!(f, "dir"),
            Kind::File(data, mode) => write!(f, "file of {} bytes, mode {mode:o}", data.len()),
            Kind::Symlink(target) => write!(f, "-> {:?}", text(target)),
            Kind::HardLink(target) => write!(f, "hard link to {:?}", text(target)),
            Kind::Other(byte) => write!(f, "type {byte}"),
        }
    }
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pax = if self.pax { " (pax)" } else { "" };
        write!(f, "{:?}{pax} {:?}", text(&self.name), self.kind)
    }
}

/// A slash-joined path of components chosen to collide, climb and reach outside.
fn components(words: Vec<&'static str>, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(words), 0..max).prop_map(|c| c.join("/"))
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    let words = vec!["a", "b", "ab", "..", ".", "", "abc", "x/y"];
    prop_oneof![
        6 => components(words.clone(), 5).prop_map(|p| format!("{SHA}/{p}").into_bytes()),
        1 => components(words, 5).prop_map(String::into_bytes),
        1 => prop::sample::select(vec!["/abc/a", "/etc/x", "abc/../abc/a", "./abc/a", "abc//a", "abc"])
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|tail| {
            let mut name = format!("{SHA}/").into_bytes();
            name.extend(tail);
            name
        }),
        1 => prop::collection::vec(any::<u8>(), 0..100),
    ]
}

fn link_target() -> impl Strategy<Value = Vec<u8>> {
    let words = vec![
        "a", "b", "ab", "..", ".", "", "abc", "x/y", "one", "two", "three",
    ];
    prop_oneof![
        6 => components(words, 7).prop_map(String::into_bytes),
        1 => prop::sample::select(vec!["/", "/etc/passwd", "/tmp", "..", "../..", "a/../..", "."])
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..60),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    let kind = prop_oneof![
        2 => Just(Kind::Dir),
        3 => (prop::collection::vec(any::<u8>(), 0..600), any::<u32>())
            .prop_map(|(data, mode)| Kind::File(data, mode)),
        4 => link_target().prop_map(Kind::Symlink),
        1 => link_target().prop_map(Kind::HardLink),
        1 => any::<u8>().prop_map(Kind::Other),
    ];
    (name(), kind, prop::bool::weighted(0.1)).prop_map(|(name, kind, pax)| Spec { name, kind, pax })
}

/// Entries that all pass the name checks (distinct plain names below `<sha>/`, no hard links),
/// so the archive reaches the point where its links are judged and created; only the link
/// targets are hostile. (Most archives [`spec`] makes are refused at an earlier entry.)
fn tree_specs() -> impl Strategy<Value = Vec<Spec>> {
    let name = prop_oneof![
        3 => prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_string),
        1 => components(vec!["a", "b", "ab", "x/y"], 3),
    ]
    .prop_filter("not the root", |p| !p.is_empty());
    let kind = prop_oneof![
        1 => Just(Kind::Dir),
        1 => prop::collection::vec(any::<u8>(), 0..50).prop_map(|d| Kind::File(d, 0o644)),
        1 => link_target().prop_map(Kind::Symlink),
        // Short targets over the same few names, so links chain through each other: with
        // `a -> .`, `b -> a/..` reads as staying inside but leads to the parent.
        1 => Just(Kind::Symlink(b".".to_vec())),
        4 => prop::collection::vec(prop::sample::select(vec!["a", "b", "c", ".."]), 1..4)
            .prop_map(|t| Kind::Symlink(t.join("/").into_bytes())),
    ];
    prop::collection::btree_map(name, kind, 1..8).prop_map(|entries| {
        entries
            .into_iter()
            .map(|(name, kind)| Spec {
                name: format!("{SHA}/{name}").into_bytes(),
                kind,
                pax: false,
            })
            .collect()
    })
}

/// Copies `value` into a fixed header field, cut to fit (a raw write: no validation).
fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

fn archive(specs: &[Spec], at: &Path) {
    let mut builder = tar::Builder::new(Vec::new());
    for spec in specs {
        if spec.pax {
            builder
                .append_pax_extensions([("path", &spec.name[..])])
                .unwrap();
        }
        let mut header = tar::Header::new_ustar();
        put(&mut header.as_old_mut().name, &spec.name);
        let (kind, data, mode): (tar::EntryType, &[u8], u32) = match &spec.kind {
            Kind::Dir => (tar::EntryType::Directory, b"", 0o755),
            Kind::File(data, mode) => (tar::EntryType::Regular, data, *mode),
            Kind::Symlink(target) => {
                put(&mut header.as_old_mut().linkname, target);
                (tar::EntryType::Symlink, b"", 0o777)
            }
            Kind::HardLink(target) => {
                put(&mut header.as_old_mut().linkname, target);
                (tar::EntryType::Link, b"", 0o644)
            }
            Kind::Other(byte) => (tar::EntryType::new(*byte), b"", 0o644),
        };
        header.set_entry_type(kind);
        header.set_mode(mode & 0o7777);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    std::fs::write(at, zstd::encode_all(&tar[..], 1).unwrap()).unwrap();
}

/// Every path below `dir`, links not followed.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push(path.clone());
        if is_dir {
            walk(&path, out);
        }
    }
}

/// Where `target`, read at directory `from` (inside `root`), leads on the real file system,
/// following links the way the kernel does; an error when it climbs above `root` or is
/// absolute, and None when the kernel would give up (`ELOOP`: nothing is reached). Written
/// independently of [`super::super::links`] so it can judge it. Missing components are walked
/// through lexically: a plugin could create them later.
fn resolve(
    root: &Path,
    from: PathBuf,
    target: &Path,
    hops: &mut u32,
) -> Result<Option<PathBuf>, String> {
    let mut position = from;
    for component in target.components() {
        match component {
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("absolute target {}", target.display()));
            }
            Component::CurDir => {}
            Component::ParentDir => {
                if position == root {
                    return Err(format!("{} climbs above the root", target.display()));
                }
                position.pop();
            }
            Component::Normal(name) => {
                position.push(name);
                let is_link = std::fs::symlink_metadata(&position)
                    .map(|m| m.file_type().is_symlink())
                    .unwrap_or(false);
                if is_link {
                    *hops += 1;
                    if *hops > 40 {
                        return Ok(None);
                    }
                    let next = std::fs::read_link(&position).unwrap();
                    position.pop();
                    match resolve(root, position, &next, hops)? {
                        Some(reached) => position = reached,
                        None => return Ok(None),
                    }
                }
            }
        }
    }
    Ok(Some(position))
}

/// Unpacks the archive `specs` make and checks what landed on disk, whatever the outcome.
fn unpack_checked(specs: &[Spec]) -> Result<(), TestCaseError> {
    let temp = tempfile::tempdir().unwrap();
    let parent = NESTING
        .iter()
        .fold(temp.path().to_path_buf(), |p, c| p.join(c));
    std::fs::create_dir_all(&parent).unwrap();
    let archive_path = parent.join("archive.tar.zst");
    archive(specs, &archive_path);
    let dest = parent.join("tree");
    let _ = unpack(&archive_path, &dest, SHA, LIMITS);

    let mut everything = Vec::new();
    walk(temp.path(), &mut everything);
    let mut ancestors: Vec<PathBuf> = dest.ancestors().map(Path::to_path_buf).collect();
    ancestors.push(archive_path.clone());
    let (mut entries, mut bytes) = (0u64, 0u64);
    for path in &everything {
        if !path.starts_with(&dest) {
            prop_assert!(
                ancestors.contains(path),
                "written outside: {}",
                path.display()
            );
            continue;
        }
        if path == &dest {
            continue;
        }
        entries += 1;
        let meta = std::fs::symlink_metadata(path).unwrap();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path).unwrap();
            let from = path.parent().unwrap().to_path_buf();
            let resolved = resolve(&dest, from, &target, &mut 0);
            prop_assert!(
                resolved
                    .as_ref()
                    .is_ok_and(|r| r.as_ref().is_none_or(|r| r.starts_with(&dest))),
                "link {} -> {} leads outside: {resolved:?}",
                path.display(),
                target.display()
            );
        } else if meta.is_file() {
            bytes += meta.len();
            prop_assert!(
                meta.permissions().mode() & 0o7000 == 0,
                "{} keeps special mode bits",
                path.display()
            );
        } else {
            prop_assert!(
                meta.is_dir(),
                "{} is neither file, dir nor link",
                path.display()
            );
        }
    }
    // Directories made for a file's parents are not entries of the archive, so allow for them.
    prop_assert!(
        entries <= LIMITS.max_entries * 5,
        "{entries} paths unpacked"
    );
    prop_assert!(bytes <= LIMITS.max_bytes, "{bytes} bytes unpacked");
    Ok(())
}

use std::os::unix::fs::PermissionsExt;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn hostile_archives_stay_inside_the_destination(
        specs in prop::collection::vec(spec(), 0..24),
    ) {
        unpack_checked(&specs)?;
    }

    #[test]
    fn links_never_lead_outside_the_destination(
        specs in tree_specs(),
    ) {
        unpack_checked(&specs)?;
    }

    /// Archives made only of plain names, directories and in-tree links: what is accepted
    /// unpacks exactly the files the archive holds.
    #[test]
    fn plain_archives_unpack_their_files(
        files in prop::collection::btree_map("[a-e]{1,3}", prop::collection::vec(any::<u8>(), 0..200), 0..10),
    ) {
        let specs: Vec<Spec> = files
            .iter()
            .map(|(name, data)| Spec {
                name: format!("{SHA}/d/{name}").into_bytes(),
                kind: Kind::File(data.clone(), 0o644),
                pax: false,
            })
            .collect();
        let temp = tempfile::tempdir().unwrap();
        let archive_path = temp.path().join("a.tar.zst");
        archive(&specs, &archive_path);
        let dest = temp.path().join("tree");
        unpack(&archive_path, &dest, SHA, LIMITS).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (name, data) in &files {
            prop_assert_eq!(&std::fs::read(dest.join("d").join(name)).unwrap(), data);
        }
        unpack_checked(&specs)?;
    }
}
