//! From the YAML tree to a [`Manifest`], in the original's order (reference §13.1): root,
//! version, schema (§13.2), then mounts (§13.3). The first error wins.
//!
//! Within a mapping, extra keys are reported first (in document order), then the known keys in
//! schema order. Mount source and duplicate-destination errors are remembered and raised only
//! once the whole schema has passed, so that their kinds rank as in the original.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::env_policy;
use super::error::{ManifestError, ManifestErrorKind};
use super::exclude::ExcludeMatcher;
use super::merge::destination_key;
use super::yaml::{Entry, Node, Value, parse_int};
use super::{
    CheckDefaults, CheckSpec, CoverageSettings, Manifest, Mount, MountSource, SUPPORTED_VERSION,
    cleanup_plugin_name,
};

type Result<T> = std::result::Result<T, ManifestError>;

const IDENTIFIER_RULE: &str = "[A-Za-z_][A-Za-z0-9_]*";

pub(super) fn manifest(root: &Node) -> Result<Manifest> {
    let Value::Map(top) = &root.value else {
        return Err(ManifestError::new(
            ManifestErrorKind::RootMustBeMapping,
            root.line,
            root.column,
            "",
            "Invalid manifest: Root should be a mapping",
        ));
    };
    let version = version(root, top)?;
    let mut v = Validator::default();
    extra_keys(
        top,
        "",
        &["version", "coverage", "exclude_paths", "defaults", "checks"],
    )?;
    let coverage = get(top, "coverage").map(coverage).transpose()?;
    let (exclude_paths, exclude) = match get(top, "exclude_paths") {
        Some(node) => exclude_paths(node)?,
        None => (Vec::new(), ExcludeMatcher::default()),
    };
    let defaults = get(top, "defaults")
        .map(|n| v.defaults(n))
        .transpose()?
        .flatten();
    let checks = match get(top, "checks") {
        Some(node) => v.checks(node)?,
        None => Vec::new(),
    };
    if let Some(deferred) = v.deferred {
        return Err(deferred);
    }
    Ok(Manifest {
        version,
        coverage,
        exclude_paths,
        defaults,
        checks,
        exclude,
    })
}

fn version(root: &Node, top: &[Entry]) -> Result<String> {
    let missing = |line, column| {
        ManifestError::new(
            ManifestErrorKind::MissingVersion,
            line,
            column,
            "version",
            "Invalid manifest: Missing version field",
        )
    };
    let Some(node) = get(top, "version") else {
        return Err(missing(root.line, root.column));
    };
    match &node.value {
        Value::Null => Err(missing(node.line, node.column)),
        Value::Str(s) if s.trim().is_empty() => Err(missing(node.line, node.column)),
        Value::Str(s) if s == SUPPORTED_VERSION => Ok(s.clone()),
        Value::Str(s) => Err(ManifestError::new(
            ManifestErrorKind::VersionUnsupported,
            node.line,
            node.column,
            "version",
            format!("Invalid manifest: Unsupported version {s}"),
        )),
        _ => Err(ManifestError::new(
            ManifestErrorKind::VersionTypeMismatch,
            node.line,
            node.column,
            "version",
            "Invalid manifest: Version must be a string",
        )),
    }
}

fn coverage(node: &Node) -> Result<CoverageSettings> {
    let entries = match &node.value {
        // `coverage:` with nothing under it: a section without a gate (no status is sent).
        Value::Null => return Ok(CoverageSettings::default()),
        _ => expect_map(node, "coverage")?,
    };
    extra_keys(entries, "coverage", &["min_percent"])?;
    let Some(min) = get(entries, "min_percent") else {
        return Ok(CoverageSettings::default());
    };
    let path = "coverage.min_percent";
    let Value::Int(text) = &min.value else {
        return Err(mismatch(path, "Integer", min));
    };
    match parse_int(text).and_then(|n| u32::try_from(n).ok()) {
        Some(percent) if percent <= 100 => Ok(CoverageSettings {
            min_percent: Some(percent),
        }),
        _ => Err(data_error(
            min,
            path,
            format!(
                "Expected {path} to be between 0 and 100. Assertion failed due to current object's value: {text}"
            ),
        )),
    }
}

fn exclude_paths(node: &Node) -> Result<(Vec<String>, ExcludeMatcher)> {
    let items = expect_seq(node, "exclude_paths")?;
    let mut patterns = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        patterns.push(non_blank_string(item, &format!("exclude_paths.{i}"))?.to_owned());
    }
    let matcher = ExcludeMatcher::new(&patterns).map_err(|e| {
        let path = format!("exclude_paths.{}", e.index);
        let at = items.get(e.index).unwrap_or(node);
        data_error(
            at,
            &path,
            format!("Invalid pattern `{}' on `{path}': {}", e.pattern, e.reason),
        )
    })?;
    Ok((patterns, matcher))
}

/// Collects the first mount error to raise after the schema has passed.
#[derive(Default)]
struct Validator {
    deferred: Option<ManifestError>,
}

impl Validator {
    fn defer(&mut self, error: ManifestError) {
        self.deferred.get_or_insert(error);
    }

    /// `None` when `defaults` has no `checks` (nothing to merge).
    fn defaults(&mut self, node: &Node) -> Result<Option<CheckDefaults>> {
        let entries = expect_map(node, "defaults")?;
        extra_keys(entries, "defaults", &["checks"])?;
        let Some(checks) = get(entries, "checks") else {
            return Ok(None);
        };
        let path = "defaults.checks";
        let entries = expect_map(checks, path)?;
        extra_keys(entries, path, &["envs", "mounts"])?;
        Ok(Some(CheckDefaults {
            envs: get(entries, "envs")
                .map(|n| envs(n, "defaults.checks.envs"))
                .transpose()?
                .unwrap_or_default(),
            mounts: get(entries, "mounts")
                .map(|n| self.mounts(n, "defaults.checks.mounts", "defaults definition"))
                .transpose()?
                .unwrap_or_default(),
        }))
    }

    fn checks(&mut self, node: &Node) -> Result<Vec<CheckSpec>> {
        let items = expect_seq(node, "checks")?;
        let mut checks = Vec::with_capacity(items.len());
        // Cleaned plugin name → (index, line): one check per plugin name per commit.
        let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("checks.{i}");
            let entries = expect_map(item, &path)?;
            extra_keys(entries, &path, &["plugin", "envs", "mounts"])?;
            let Some(plugin_node) = get(entries, "plugin") else {
                return Err(data_error(
                    item,
                    &path,
                    format!("{path} is missing a required key: plugin"),
                ));
            };
            let plugin_path = format!("{path}.plugin");
            let plugin = non_blank_string(plugin_node, &plugin_path)?;
            let name = cleanup_plugin_name(plugin);
            if name.is_empty() || name.ends_with('/') || plugin.chars().any(char::is_whitespace) {
                return Err(data_error(
                    plugin_node,
                    &plugin_path,
                    format!(
                        "Invalid plugin `{plugin}' on `{plugin_path}': expected an image reference such as cocov/rubocop:v0.1"
                    ),
                ));
            }
            if let Some(&(first, first_line)) = seen.get(&name) {
                return Err(data_error(
                    plugin_node,
                    &plugin_path,
                    format!(
                        "Plugin `{name}' is configured twice: checks.{first} (line {first_line}) and {path} (line {}); each plugin runs once per commit",
                        item.line
                    ),
                ));
            }
            seen.insert(name, (i, item.line));
            let envs = get(entries, "envs")
                .map(|n| envs(n, &format!("{path}.envs")))
                .transpose()?
                .unwrap_or_default();
            let place = format!("plugin `{plugin}'");
            let mounts = get(entries, "mounts")
                .map(|n| self.mounts(n, &format!("{path}.mounts"), &place))
                .transpose()?
                .unwrap_or_default();
            checks.push(CheckSpec {
                plugin: plugin.to_owned(),
                envs,
                mounts,
                line: item.line,
            });
        }
        Ok(checks)
    }

    /// `place` is how the original named the list in mount errors: "defaults definition" or
    /// "plugin `<plugin>'".
    fn mounts(&mut self, node: &Node, path: &str, place: &str) -> Result<Vec<Mount>> {
        let items = expect_seq(node, path)?;
        let mut mounts = Vec::with_capacity(items.len());
        let mut destinations = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{path}.{i}");
            let entries = expect_map(item, &path)?;
            extra_keys(entries, &path, &["source", "destination"])?;
            let field = |key: &str| -> Result<(&Node, &str)> {
                let Some(node) = get(entries, key) else {
                    return Err(data_error(
                        item,
                        &path,
                        format!("{path} is missing a required key: {key}"),
                    ));
                };
                Ok((node, non_blank_string(node, &join(&path, key))?))
            };
            let (source_node, source) = field("source")?;
            let (destination_node, destination) = field("destination")?;
            check_destination(destination_node, destination, &join(&path, "destination"))?;

            let secret = source.strip_prefix("secrets:").unwrap_or_default();
            if !source.starts_with("secrets:") {
                self.defer(error_at(
                    ManifestErrorKind::InvalidMountSource,
                    source_node,
                    &join(&path, "source"),
                    format!(
                        "Invalid mount source `{source}' in {place}: Only secrets are mountable."
                    ),
                ));
            } else if !is_identifier(secret) {
                self.defer(error_at(
                    ManifestErrorKind::InvalidMountSource,
                    source_node,
                    &join(&path, "source"),
                    format!(
                        "Invalid mount source `{source}' in {place}: secret names must match {IDENTIFIER_RULE}."
                    ),
                ));
            }
            if !destinations.insert(destination_key(destination)) {
                self.defer(error_at(
                    ManifestErrorKind::DuplicatedMountDestination,
                    destination_node,
                    &join(&path, "destination"),
                    format!("Duplicated mount destination `{destination}' in {place}"),
                ));
            }
            mounts.push(Mount {
                source: MountSource::Secret(secret.to_owned()),
                destination: destination.to_owned(),
                line: item.line,
            });
        }
        Ok(mounts)
    }
}

fn envs(node: &Node, path: &str) -> Result<BTreeMap<String, String>> {
    let entries = expect_map(node, path)?;
    let mut envs = BTreeMap::new();
    for entry in entries {
        let key_path = join(path, &entry.key);
        if !is_identifier(&entry.key) {
            return Err(ManifestError::new(
                ManifestErrorKind::InvalidOrMissingData,
                entry.key_line,
                entry.key_column,
                &key_path,
                format!(
                    "Invalid environment variable name `{}' on `{path}': names must match {IDENTIFIER_RULE}",
                    entry.key
                ),
            ));
        }
        if env_policy::is_denied(&entry.key) {
            return Err(ManifestError::new(
                ManifestErrorKind::InvalidOrMissingData,
                entry.key_line,
                entry.key_column,
                &key_path,
                format!(
                    "Environment variable `{}' on `{path}' is reserved: loader, interpreter and COCOV_ variables cannot be set by a manifest",
                    entry.key
                ),
            ));
        }
        let Value::Str(value) = &entry.value.value else {
            return Err(mismatch(&key_path, "string", &entry.value));
        };
        // A process environment cannot carry NUL; refuse it here rather than fail the run.
        if value.contains('\0') {
            return Err(data_error(
                &entry.value,
                &key_path,
                format!("Expected {key_path} to not contain NUL characters"),
            ));
        }
        envs.insert(entry.key.clone(), value.clone());
    }
    Ok(envs)
}

/// Absolute or `~/…`, naming a file (not `/` or `~/` alone), with no `..` to climb out.
fn check_destination(node: &Node, destination: &str, path: &str) -> Result<()> {
    let rest = destination
        .strip_prefix("~/")
        .or_else(|| destination.strip_prefix('/'));
    let ok = rest.is_some_and(|rest| {
        let parts = rest.split('/').filter(|p| !p.is_empty() && *p != ".");
        let mut any = false;
        for part in parts {
            if part == ".." {
                return false;
            }
            any = true;
        }
        any && !destination.contains('\0')
    });
    if ok {
        return Ok(());
    }
    Err(data_error(
        node,
        path,
        format!(
            "Invalid mount destination `{destination}' on `{path}': it must be an absolute path or start with ~/, name a file, and not contain `..'"
        ),
    ))
}

fn extra_keys(entries: &[Entry], path: &str, allowed: &[&str]) -> Result<()> {
    match entries.iter().find(|e| !allowed.contains(&e.key.as_str())) {
        None => Ok(()),
        Some(e) => Err(ManifestError::new(
            ManifestErrorKind::InvalidOrMissingData,
            e.key_line,
            e.key_column,
            join(path, &e.key),
            format!("Unexpected extra key `{}' on `{path}'", e.key),
        )),
    }
}

fn get<'a>(entries: &'a [Entry], key: &str) -> Option<&'a Node> {
    entries.iter().find(|e| e.key == key).map(|e| &e.value)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn data_error(node: &Node, path: &str, message: String) -> ManifestError {
    error_at(ManifestErrorKind::InvalidOrMissingData, node, path, message)
}

fn error_at(kind: ManifestErrorKind, node: &Node, path: &str, message: String) -> ManifestError {
    ManifestError::new(kind, node.line, node.column, path, message)
}

/// The original validator's type-mismatch text; `expected` is `Integer`, `Hash`, `Array` or
/// `string`.
fn mismatch(path: &str, expected: &str, node: &Node) -> ManifestError {
    data_error(
        node,
        path,
        format!(
            "Expected {path} to match {expected}. Assertion failed due to current object's value: {}",
            node.value.inspect()
        ),
    )
}

fn expect_map<'a>(node: &'a Node, path: &str) -> Result<&'a [Entry]> {
    match &node.value {
        Value::Map(entries) => Ok(entries),
        _ => Err(mismatch(path, "Hash", node)),
    }
}

fn expect_seq<'a>(node: &'a Node, path: &str) -> Result<&'a [Node]> {
    match &node.value {
        Value::Seq(items) => Ok(items),
        _ => Err(mismatch(path, "Array", node)),
    }
}

fn non_blank_string<'a>(node: &'a Node, path: &str) -> Result<&'a str> {
    match &node.value {
        Value::Str(s) if s.trim().is_empty() => Err(data_error(
            node,
            path,
            format!("Expected {path} to not be blank"),
        )),
        Value::Str(s) => Ok(s),
        _ => Err(mismatch(path, "string", node)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in ["A", "_", "NPM_TOKEN", "a1", "_x_9"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "É", "A.B", "secrets:x"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn destinations() {
        let node = Node {
            value: Value::Null,
            line: 1,
            column: 1,
        };
        for ok in ["/etc/key", "~/.npmrc", "~/a/./b", "//x", "/a b/c"] {
            assert!(check_destination(&node, ok, "p").is_ok(), "{ok}");
        }
        for bad in [
            "key", "./key", "~", "~/", "/", "~user/x", "/a/../b", "~/..", "/a/\0",
        ] {
            assert!(check_destination(&node, bad, "p").is_err(), "{bad:?}");
        }
    }
}
