//! Mapping the paths a report names onto the files of the commit's tree.
//!
//! Reports name files as the tool saw them: absolute container paths (`/app/src/x.rb`), paths
//! relative to a Cobertura `<source>`, JaCoCo `package/File.kt`, Go import paths
//! (`github.com/org/mod/pkg/f.go`), Windows separators. For each report path, in order:
//!
//! 1. normalise (`\` → `/`, drop `.` and empty components, resolve `..`);
//! 2. build candidates: Go import paths rewritten through the longest matching `go.mod` module
//!    path, each Cobertura source joined with the path, and the path itself;
//! 3. a candidate equal to a repository file wins;
//! 4. otherwise a suffix match on whole components: the repository file and the candidate must
//!    agree on all components of the shorter one (so a prefix is stripped from the report path,
//!    or added to it). The match sharing the most trailing components wins; a tie between
//!    different files is ambiguous and the path stays unmatched rather than being guessed.
//!
//! Unlike the original's prefix finder this never touches the filesystem (the tree is a list)
//! and cannot loop.

use std::collections::{HashMap, HashSet};

use super::budget::{Budget, OverBudget};
use super::{Format, Report};

/// A Go module of the tree: its module path and the directory of its `go.mod`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoModule {
    /// Module path from the `module` directive, e.g. `github.com/org/mod`.
    pub path: String,
    /// Directory holding the `go.mod`, relative to the repository root; "" for the root.
    pub dir: String,
}

impl GoModule {
    /// Reads a module from a `go.mod` at `go_mod_path` (repository-relative) with `content`;
    /// None when it has no `module` directive.
    pub fn from_go_mod(go_mod_path: &str, content: &str) -> Option<GoModule> {
        let path = parse_go_mod_module(content)?;
        let normalized = normalize(go_mod_path);
        let dir = match normalized.rsplit_once('/') {
            Some((dir, _)) => dir.to_string(),
            None => String::new(),
        };
        Some(GoModule { path, dir })
    }
}

/// The module path declared by a `go.mod` file.
pub fn parse_go_mod_module(content: &str) -> Option<String> {
    for line in content.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("module") else {
            continue;
        };
        if !rest.starts_with([' ', '\t']) {
            continue;
        }
        let path = rest.trim().trim_matches(|c| c == '"' || c == '`');
        if !path.is_empty() {
            return Some(path.to_string());
        }
    }
    None
}

/// Result of [`map`]: report paths paired with repository paths, and the ones without a match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    /// `(report path, repository path)`, in input order.
    pub matched: Vec<(String, String)>,
    /// Report paths with no repository file, or with several equally good ones.
    pub unmatched: Vec<String>,
}

/// Normalises a path: `/` separators, no `.` or empty components, `..` resolved where it can
/// be, no leading or trailing `/`.
pub fn normalize(path: &str) -> String {
    components(path).join("/")
}

fn components(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." if out.last().is_some_and(|p| *p != "..") => {
                out.pop();
            }
            _ => out.push(part),
        }
    }
    out
}

/// Maps a parsed report's paths, using its Cobertura sources.
pub fn map_report<S: AsRef<str>>(
    report: &Report,
    repo_files: &[S],
    go_modules: &[GoModule],
) -> Mapping {
    let paths: Vec<&str> = report.files.keys().map(String::as_str).collect();
    let sources: &[String] = if report.format == Format::Cobertura {
        &report.sources
    } else {
        &[]
    };
    map_with_sources(&paths, sources, repo_files, go_modules)
}

/// Maps report paths onto repository files (see the module docs for the rules).
pub fn map<S: AsRef<str>, T: AsRef<str>>(
    report_paths: &[S],
    repo_files: &[T],
    go_modules: &[GoModule],
) -> Mapping {
    map_with_sources(report_paths, &[] as &[String], repo_files, go_modules)
}

/// [`map`] with Cobertura `<source>` directories tried as prefixes of relative paths.
pub fn map_with_sources<S: AsRef<str>, U: AsRef<str>, T: AsRef<str>>(
    report_paths: &[S],
    sources: &[U],
    repo_files: &[T],
    go_modules: &[GoModule],
) -> Mapping {
    map_within(
        report_paths,
        sources,
        repo_files,
        go_modules,
        &Budget::unlimited(),
    )
    .unwrap_or_default()
}

/// [`map_with_sources`] that stops when `budget` runs out: a report of many paths against a
/// tree of many same-named files costs paths × candidates × namesakes.
pub fn map_within<S: AsRef<str>, U: AsRef<str>, T: AsRef<str>>(
    report_paths: &[S],
    sources: &[U],
    repo_files: &[T],
    go_modules: &[GoModule],
    budget: &Budget,
) -> Result<Mapping, OverBudget> {
    let tree = Tree::new(repo_files);
    let mut modules: Vec<(Vec<&str>, Vec<&str>)> = go_modules
        .iter()
        .map(|m| (components(&m.path), components(&m.dir)))
        .filter(|(path, _)| !path.is_empty())
        .collect();
    // Longest module path first, so nested modules win over their parents.
    modules.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    let sources: Vec<Vec<&str>> = sources.iter().map(|s| components(s.as_ref())).collect();

    let mut mapping = Mapping::default();
    for original in report_paths {
        budget.check()?;
        let original = original.as_ref();
        let path = components(original);
        let mut candidates: Vec<Vec<&str>> = Vec::new();
        if let Some((module, dir)) = modules
            .iter()
            .find(|(module, _)| path.len() > module.len() && path.starts_with(module))
        {
            let mut c = dir.clone();
            c.extend_from_slice(&path[module.len()..]);
            candidates.push(c);
        }
        let relative = !original.starts_with(['/', '\\']) && !has_drive(original);
        if relative {
            for source in &sources {
                let mut c = source.clone();
                c.extend_from_slice(&path);
                candidates.push(c);
            }
        }
        candidates.push(path);
        match tree.resolve(&candidates) {
            Some(found) => mapping
                .matched
                .push((original.to_string(), found.to_string())),
            None => mapping.unmatched.push(original.to_string()),
        }
    }
    Ok(mapping)
}

fn has_drive(path: &str) -> bool {
    let b = path.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// The repository files, indexed by base name for suffix matching.
struct Tree<'a> {
    exact: HashSet<String>,
    by_name: HashMap<&'a str, Vec<(&'a str, Vec<&'a str>)>>,
}

impl<'a> Tree<'a> {
    fn new<T: AsRef<str>>(files: &'a [T]) -> Self {
        let mut exact = HashSet::with_capacity(files.len());
        let mut by_name: HashMap<&'a str, Vec<(&'a str, Vec<&'a str>)>> = HashMap::new();
        for file in files {
            let file = file.as_ref();
            let parts = components(file);
            let Some(&name) = parts.last() else { continue };
            exact.insert(parts.join("/"));
            by_name.entry(name).or_default().push((file, parts));
        }
        Self { exact, by_name }
    }

    fn resolve(&self, candidates: &[Vec<&str>]) -> Option<&'a str> {
        for c in candidates {
            if self.exact.contains(&c.join("/")) {
                // Return the repository's own spelling of the path.
                let name = c.last()?;
                return self
                    .by_name
                    .get(name)?
                    .iter()
                    .find(|(_, p)| p == c)
                    .map(|(f, _)| *f);
            }
        }
        let mut best: Option<(usize, &'a str)> = None;
        let mut tied = false;
        for c in candidates {
            let Some(name) = c.last() else { continue };
            for (file, parts) in self.by_name.get(name).into_iter().flatten() {
                let common = c
                    .iter()
                    .rev()
                    .zip(parts.iter().rev())
                    .take_while(|(a, b)| a == b)
                    .count();
                if common < c.len().min(parts.len()) {
                    continue;
                }
                match best {
                    Some((score, f)) if score == common && f != *file => tied = true,
                    Some((score, _)) if score >= common => {}
                    _ => {
                        best = Some((common, file));
                        tied = false;
                    }
                }
            }
        }
        if tied { None } else { best.map(|(_, f)| f) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize("./src//a/../b\\c.rb"), "src/b/c.rb");
        assert_eq!(normalize("/app/./x.rb/"), "app/x.rb");
        assert_eq!(normalize("../x.rb"), "../x.rb");
    }

    #[test]
    fn exact_strip_and_add_prefix() {
        let repo = files(&[
            "src/x.rb",
            "lib/src/x.rb",
            "app/src/main/kotlin/com/acme/File.kt",
            "README.md",
        ]);
        let m = map(
            &[
                "./src/x.rb",
                "/app/src/x.rb",
                "C:\\build\\lib\\src\\x.rb",
                "com/acme/File.kt",
                "missing.rb",
            ],
            &repo,
            &[],
        );
        assert_eq!(
            m.matched,
            [
                ("./src/x.rb".into(), "src/x.rb".into()),
                ("/app/src/x.rb".into(), "src/x.rb".into()),
                ("C:\\build\\lib\\src\\x.rb".into(), "lib/src/x.rb".into()),
                (
                    "com/acme/File.kt".into(),
                    "app/src/main/kotlin/com/acme/File.kt".into()
                ),
            ]
        );
        assert_eq!(m.unmatched, ["missing.rb"]);
    }

    #[test]
    fn ambiguity_stays_unmatched_and_longest_suffix_wins() {
        let repo = files(&[
            "app/src/main/kotlin/p/A.kt",
            "lib/src/main/kotlin/p/A.kt",
            "x.rb",
            "deep/x.rb",
        ]);
        let m = map(&["p/A.kt", "/ci/work/deep/x.rb"], &repo, &[]);
        assert_eq!(m.unmatched, ["p/A.kt"]);
        // Both `x.rb` and `deep/x.rb` are suffixes; the longer one wins.
        assert_eq!(
            m.matched,
            [("/ci/work/deep/x.rb".into(), "deep/x.rb".into())]
        );
        // Suffixes are whole components: `ox.rb` does not match `x.rb`.
        assert_eq!(map(&["src/ox.rb"], &repo, &[]).unmatched, ["src/ox.rb"]);
    }

    #[test]
    fn go_import_paths_go_through_modules() {
        let root = GoModule::from_go_mod("go.mod", "// c\nmodule github.com/org/mod\n\ngo 1.19\n")
            .unwrap();
        let tools =
            GoModule::from_go_mod("./tools/go.mod", "module \"github.com/org/mod/tools\"").unwrap();
        assert_eq!(tools.dir, "tools");
        let repo = files(&["main.go", "pkg/a.go", "tools/pkg/a.go"]);
        let m = map(
            &[
                "github.com/org/mod/main.go",
                "github.com/org/mod/tools/pkg/a.go",
                "github.com/org/mod/pkg/a.go",
                "github.com/other/pkg/a.go",
            ],
            &repo,
            &[root, tools],
        );
        assert_eq!(
            m.matched,
            [
                ("github.com/org/mod/main.go".into(), "main.go".into()),
                (
                    "github.com/org/mod/tools/pkg/a.go".into(),
                    "tools/pkg/a.go".into()
                ),
                ("github.com/org/mod/pkg/a.go".into(), "pkg/a.go".into()),
                ("github.com/other/pkg/a.go".into(), "pkg/a.go".into()),
            ]
        );
        // Not under any module: the suffix rule strips `github.com/other` (only `pkg/a.go`
        // agrees on all its components).
        assert_eq!(m.unmatched, Vec::<String>::new());
        assert_eq!(
            map(&["github.com/other/pkg/a.go"], &repo, &[]).matched,
            [("github.com/other/pkg/a.go".into(), "pkg/a.go".into())]
        );
        assert_eq!(parse_go_mod_module("go 1.19\n"), None);
        assert_eq!(parse_go_mod_module("modulex foo\n"), None);
    }

    #[test]
    fn cobertura_sources_prefix_relative_paths() {
        // coverage.py writes filenames relative to a <source>, here a sub-directory.
        let repo = files(&["pkg/src/calc/core.py", "other/calc/core.py"]);
        let m = map_with_sources(
            &["calc/core.py"],
            &["/home/ci/checkout/pkg/src"],
            &repo,
            &[],
        );
        assert_eq!(
            m.matched,
            [("calc/core.py".into(), "pkg/src/calc/core.py".into())]
        );
    }
}
