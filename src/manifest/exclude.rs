//! `exclude_paths`: which repository files are left out of issues and coverage.
//!
//! Bash-like globs matched against the whole repository-relative path, as the original's
//! `File.fnmatch(FNM_PATHNAME | FNM_EXTGLOB)` did, with two deliberate changes:
//!
//! * `dir/` matches everything below `dir` (the original turned it into `dir/*`, direct
//!   children only, contradicting its own docs: bug 26);
//! * a pattern without wildcards also matches everything below it, so `vendor` excludes
//!   `vendor/a/b.rb` — the paths checked are files, so the original's exact-only match could
//!   never exclude a directory named that way.
//!
//! | pattern            | excluded                               | not excluded                 |
//! |--------------------|----------------------------------------|------------------------------|
//! | `coverage/`        | `coverage/a.rb`, `coverage/x/y.rb`     | `coverage`, `coverage.rb`    |
//! | `vendor`           | `vendor`, `vendor/a/b.rb`              | `vendor.rb`, `lib/vendor/a`  |
//! | `*.rb`             | `a.rb`                                 | `lib/a.rb` (`*` stops at `/`)|
//! | `**/*.rb`          | `a.rb`, `lib/a.rb`, `lib/x/a.rb`       | `a.rbx`                      |
//! | `spec/*`           | `spec/a.rb`                            | `spec/models/a.rb`           |
//! | `spec/**/.ignore`  | `spec/.ignore`, `spec/a/b/.ignore`     | `spec.ignore`                |
//! | `lib/?.rb`         | `lib/a.rb`                             | `lib/ab.rb`                  |
//! | `*.{js,ts}`        | `a.js`, `a.ts`                         | `a.rb`                       |
//! | `[ab].rb`          | `a.rb`, `b.rb`                         | `c.rb`                       |
//! | `*`                | `a.rb`, `.env` (dots are not special)  | `lib/a.rb`                   |
//! | `./src/`, `/src/`  | `src/a.rb` (leading `./` or `/` means the root) | `lib/src/a.rb`      |
//!
//! Unlike fnmatch, wildcards also match a leading dot (`*` matches `.env`, `dir/` covers
//! `dir/.cache/x`): hidden files are usually exactly what people want to exclude.
//! Matching is case-sensitive. Paths to check get the same leading `./` or `/` stripped.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A pattern that does not compile (an unclosed `[` or `{`, a misplaced `**`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExcludePatternError {
    /// Index in the `exclude_paths` list.
    pub index: usize,
    pub pattern: String,
    pub reason: String,
}

/// The compiled `exclude_paths` list.
#[derive(Debug, Clone)]
pub struct ExcludeMatcher {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Default for ExcludeMatcher {
    fn default() -> Self {
        Self {
            patterns: Vec::new(),
            set: GlobSet::empty(),
        }
    }
}

// Two matchers built from the same list behave the same; the compiled set has no equality.
impl PartialEq for ExcludeMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl Eq for ExcludeMatcher {}

impl ExcludeMatcher {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, ExcludePatternError> {
        let mut builder = GlobSetBuilder::new();
        for (index, pattern) in patterns.iter().enumerate() {
            let pattern = pattern.as_ref();
            let error = |reason: String| ExcludePatternError {
                index,
                pattern: pattern.to_owned(),
                reason,
            };
            for glob in expand(pattern) {
                let compiled = GlobBuilder::new(&glob)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .empty_alternates(true)
                    .build()
                    .map_err(|e| error(e.kind().to_string()))?;
                builder.add(compiled);
            }
        }
        let set = builder.build().map_err(|e| ExcludePatternError {
            index: 0,
            pattern: String::new(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            patterns: patterns.iter().map(|p| p.as_ref().to_owned()).collect(),
            set,
        })
    }

    /// The patterns as written in the manifest.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether a repository-relative file path is excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        !self.patterns.is_empty() && self.set.is_match(strip_root(path))
    }
}

fn strip_root(mut path: &str) -> &str {
    loop {
        if let Some(rest) = path.strip_prefix("./") {
            path = rest;
        } else if let Some(rest) = path.strip_prefix('/') {
            path = rest;
        } else {
            return path;
        }
    }
}

/// The globs one manifest pattern stands for.
fn expand(pattern: &str) -> Vec<String> {
    let below = pattern.ends_with('/');
    let pattern = strip_root(pattern);
    if below {
        let dir = pattern.trim_end_matches('/');
        if dir.is_empty() {
            // `/` or `./`: the whole repository.
            return vec!["**".to_owned()];
        }
        return vec![format!("{dir}/**")];
    }
    if pattern.contains(['*', '?', '[', '{', '\\']) {
        vec![pattern.to_owned()]
    } else {
        vec![pattern.to_owned(), format!("{pattern}/**")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(pattern: &str, path: &str) -> bool {
        ExcludeMatcher::new(&[pattern]).unwrap().is_excluded(path)
    }

    #[test]
    fn semantics_table() {
        let table: &[(&str, &str, bool)] = &[
            // `dir/`: everything below, at any depth (bug 26 fixed).
            ("coverage/", "coverage/a.rb", true),
            ("coverage/", "coverage/a/b.rb", true),
            ("coverage/", "coverage/.last_run.json", true),
            ("coverage/", "coverage", false),
            ("coverage/", "coverage.rb", false),
            ("coverage/", "lib/coverage/a.rb", false),
            ("coverage//", "coverage/a.rb", true),
            // Literal: the path itself or anything below it.
            ("vendor", "vendor", true),
            ("vendor", "vendor/a/b.rb", true),
            ("vendor", "vendor.rb", false),
            ("vendor", "lib/vendor/a.rb", false),
            ("lib/a.rb", "lib/a.rb", true),
            ("lib/a.rb", "lib/a.rbx", false),
            // `*` and `?` stop at `/`.
            ("*.rb", "a.rb", true),
            ("*.rb", "lib/a.rb", false),
            ("lib/*.rb", "lib/a.rb", true),
            ("lib/*.rb", "lib/x/a.rb", false),
            ("spec/*", "spec/a.rb", true),
            ("spec/*", "spec/models/a.rb", false),
            ("lib/?.rb", "lib/a.rb", true),
            ("lib/?.rb", "lib/ab.rb", false),
            ("a?b", "a/b", false),
            // `**` crosses directories; `**/` is zero or more of them.
            ("**/*.rb", "a.rb", true),
            ("**/*.rb", "lib/x/a.rb", true),
            ("**/*.rb", "a.rbx", false),
            ("spec/**/.ignore", "spec/.ignore", true),
            ("spec/**/.ignore", "spec/a/b/.ignore", true),
            ("spec/**/.ignore", "spec.ignore", false),
            ("spec/**", "spec/a/b.rb", true),
            ("**/node_modules/", "web/node_modules/x/y.js", true),
            ("**/node_modules/", "node_modules/y.js", true),
            ("**", "anything/at/all", true),
            // `**` inside a component is a plain `*`, as in fnmatch.
            ("a**b", "axyb", true),
            ("a**b", "a/b", false),
            // Braces and classes.
            ("*.{js,ts}", "a.js", true),
            ("*.{js,ts}", "a.ts", true),
            ("*.{js,ts}", "a.rb", false),
            ("{app,lib}/", "lib/x/y.rb", true),
            ("a{,.min}.js", "a.js", true),
            ("a{,.min}.js", "a.min.js", true),
            ("[ab].rb", "a.rb", true),
            ("[ab].rb", "c.rb", false),
            ("[!ab].rb", "c.rb", true),
            ("[!ab].rb", "a.rb", false),
            ("[a-c]x", "bx", true),
            ("[*]", "*", true),
            ("[*]", "a", false),
            // Leading dots are not special (a deliberate difference from fnmatch).
            ("*", ".env", true),
            ("*", "a.rb", true),
            ("*", "lib/a.rb", false),
            // Case-sensitive.
            ("*.RB", "a.rb", false),
            // The root: leading `./` and `/` on patterns and paths.
            ("./src/", "src/a.rb", true),
            ("/src/", "src/a.rb", true),
            ("src/", "./src/a.rb", true),
            ("src/a.rb", "/src/a.rb", true),
            ("src/", "lib/src/a.rb", false),
            ("./", "x/y", true),
            ("/", "x", true),
            // Backslash escapes a metacharacter.
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
        ];
        for &(pattern, path, want) in table {
            assert_eq!(
                excluded(pattern, path),
                want,
                "pattern {pattern:?} path {path:?}"
            );
        }
    }

    #[test]
    fn any_pattern_of_the_list_excludes() {
        let m = ExcludeMatcher::new(&["coverage/", "*.md"]).unwrap();
        assert!(m.is_excluded("coverage/x.json"));
        assert!(m.is_excluded("README.md"));
        assert!(!m.is_excluded("src/main.rs"));
        assert_eq!(m.patterns(), ["coverage/", "*.md"]);
    }

    #[test]
    fn empty_list_excludes_nothing() {
        let m = ExcludeMatcher::default();
        assert!(!m.is_excluded(""));
        assert!(!m.is_excluded("a.rb"));
        assert_eq!(m, ExcludeMatcher::new::<&str>(&[]).unwrap());
    }

    #[test]
    fn broken_patterns_are_reported_with_their_index() {
        for bad in ["[a-", "{a,b", "[]"] {
            let e = ExcludeMatcher::new(&["ok/", bad]).expect_err(bad);
            assert_eq!((e.index, e.pattern.as_str()), (1, bad));
            assert!(!e.reason.is_empty());
        }
    }
}
