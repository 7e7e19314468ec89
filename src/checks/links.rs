//! Where the symbolic links of an archive lead, judged by resolution rather than by their text.
//!
//! A link's text alone says little: with `a -> .` in the tree, `x -> a/a/a/../../..` climbs
//! three levels above the root although it reads as going down three and up three. So every
//! link is resolved the way the kernel would, component by component, through every other link
//! of the same archive (all of them, since the worker creates the links only after the files),
//! tracking the real position below the root. Climbing above the root, an absolute target, or
//! more hops than the kernel allows (a loop) is an escape.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// As many links as Linux follows in one path lookup before `ELOOP`.
const MAX_HOPS: u32 = 40;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Escape {
    #[error("its target is absolute")]
    Absolute,
    #[error("it resolves above the root of the tree")]
    AboveRoot,
    #[error("it goes through more than {MAX_HOPS} links")]
    TooManyHops,
}

/// The links of one tree, by tree-relative path.
#[derive(Debug, Default)]
pub struct Links {
    targets: HashMap<PathBuf, PathBuf>,
}

impl Links {
    pub fn insert(&mut self, at: PathBuf, target: PathBuf) {
        self.targets.insert(at, target);
    }

    /// Whether some link lies above `path` (the link itself does not count).
    pub fn below_a_link(&self, path: &Path) -> bool {
        path.ancestors()
            .skip(1)
            .any(|a| self.targets.contains_key(a))
    }

    /// The tree-relative path the link at `at` leads to, following every link on the way.
    pub fn resolve(&self, at: &Path) -> Result<PathBuf, Escape> {
        let Some(target) = self.targets.get(at) else {
            return Ok(at.to_path_buf());
        };
        let mut hops = 0;
        let parent = self.walk(Vec::new(), at.parent().unwrap_or(Path::new("")), &mut hops)?;
        let resolved = self.walk(parent, target, &mut hops)?;
        Ok(resolved.iter().collect())
    }

    /// Walks `path` from `position` (components below the root, none of them a link).
    fn walk(
        &self,
        mut position: Vec<OsString>,
        path: &Path,
        hops: &mut u32,
    ) -> Result<Vec<OsString>, Escape> {
        for component in path.components() {
            match component {
                Component::RootDir | Component::Prefix(_) => return Err(Escape::Absolute),
                Component::CurDir => {}
                Component::ParentDir => {
                    position.pop().ok_or(Escape::AboveRoot)?;
                }
                Component::Normal(name) => {
                    position.push(name.to_os_string());
                    let here: PathBuf = position.iter().collect();
                    if let Some(target) = self.targets.get(&here) {
                        *hops += 1;
                        if *hops > MAX_HOPS {
                            return Err(Escape::TooManyHops);
                        }
                        position.pop();
                        position = self.walk(position, target, hops)?;
                    }
                }
            }
        }
        Ok(position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(pairs: &[(&str, &str)]) -> Links {
        let mut links = Links::default();
        for (at, target) in pairs {
            links.insert(PathBuf::from(at), PathBuf::from(target));
        }
        links
    }

    fn resolve(pairs: &[(&str, &str)], at: &str) -> Result<PathBuf, Escape> {
        links(pairs).resolve(Path::new(at))
    }

    #[test]
    fn links_that_stay_inside_resolve_to_their_real_place() {
        assert_eq!(resolve(&[("docs", "bin")], "docs"), Ok("bin".into()));
        assert_eq!(resolve(&[("d/l", "../x")], "d/l"), Ok("x".into()));
        assert_eq!(resolve(&[("a", ".")], "a"), Ok("".into()));
        assert_eq!(
            resolve(&[("a", "."), ("x", "a/a/a/sub/..")], "x"),
            Ok("".into())
        );
        assert_eq!(
            resolve(&[("b", "c"), ("c", "d/e"), ("l", "b/f")], "l"),
            Ok("d/e/f".into())
        );
    }

    #[test]
    fn chains_through_other_links_are_caught() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, Escape);
        let cases: &[Case<'_>] = &[
            // The classic: `a` is the root itself, so three `a`s are no depth at all.
            (
                &[("a", "."), ("x", "a/a/a/../../..")],
                "x",
                Escape::AboveRoot,
            ),
            (&[("a", "."), ("b", "a/..")], "b", Escape::AboveRoot),
            (
                &[("a", "."), ("b", "a"), ("c", "b/b/../..")],
                "c",
                Escape::AboveRoot,
            ),
            // A link to a link that leaves.
            (&[("d/up", "../.."), ("l", "d/up")], "l", Escape::AboveRoot),
            (&[("l", "/etc/passwd")], "l", Escape::Absolute),
            (&[("m", "l"), ("l", "/dev/zero")], "m", Escape::Absolute),
            // Through a directory that is itself a link: `d -> sub/deeper`, then `d/../../..`.
            (
                &[("d", "sub/deeper"), ("x", "d/../../..")],
                "x",
                Escape::AboveRoot,
            ),
            // A link that lives below a link to `.` and climbs from there.
            (&[("a", "."), ("a/l", "..")], "a/l", Escape::AboveRoot),
            (&[("p", "q"), ("q", "p")], "p", Escape::TooManyHops),
            (&[("s", "s/x")], "s", Escape::TooManyHops),
        ];
        for (pairs, at, why) in cases {
            assert_eq!(resolve(pairs, at).as_ref(), Err(why), "{pairs:?}");
        }
    }

    #[test]
    fn links_below_links_are_spotted() {
        let l = links(&[("a", "."), ("d/e", "x")]);
        assert!(l.below_a_link(Path::new("a/l")));
        assert!(l.below_a_link(Path::new("a/b/c")));
        assert!(!l.below_a_link(Path::new("a")));
        assert!(!l.below_a_link(Path::new("d/f")));
        assert!(l.below_a_link(Path::new("d/e/f")));
    }

    #[test]
    fn a_manifest_text_made_of_links_is_caught() {
        // Many `a`s then as many `..`: lexically back at the root, really far above it.
        let ups = "../".repeat(30);
        let target = format!("{}{ups}dev/zero", "a/".repeat(30));
        assert_eq!(
            resolve(&[("a", "."), (".cocov.yaml", &target)], ".cocov.yaml"),
            Err(Escape::AboveRoot)
        );
    }
}
