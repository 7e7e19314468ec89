//! The `.cocov.yaml` manifest, version `0.1.alpha` (reference cocov-api.md §13).
//!
//! [`parse`] turns the file's text into a [`Manifest`] or a [`ManifestError`] whose kind is the
//! check set's `error_kind` and whose `Display` names the line and key. Nothing here panics on
//! bad input: the original crashed on YAML errors, aliases and `null` sections (bug 25) and
//! left the check set waiting; here each of those is an error with a kind.
//!
//! Pure: no I/O, no database, no HTTP. Secrets named by mounts are resolved by the caller,
//! which raises [`ManifestError::unknown_secret`] for names it cannot find.

mod env_policy;
mod error;
mod exclude;
mod merge;
mod plugin_name;
mod validate;
mod yaml;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::git::TreeFile;

pub use env_policy::{DENIED_NAMES as DENIED_ENV_NAMES, DENIED_PREFIXES as DENIED_ENV_PREFIXES};
pub use error::{
    ManifestError, ManifestErrorKind, STATUS_DESCRIPTION_MAX_CHARS, UnknownErrorKind,
    truncate_status,
};
pub use exclude::{ExcludeMatcher, ExcludePatternError};
pub use plugin_name::cleanup_plugin_name;
pub use yaml::MAX_MANIFEST_BYTES;

/// The manifest's file name at the repository root.
pub const MANIFEST_FILE_NAME: &str = ".cocov.yaml";
/// The only `version` the original ever defined.
pub const SUPPORTED_VERSION: &str = "0.1.alpha";

/// A validated manifest. Checks are in manifest order, without the defaults applied; use
/// [`Manifest::effective_checks`] for what to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub version: String,
    /// `None` when the manifest has no `coverage` key. `Some` with no `min_percent` (also for
    /// an empty `coverage:`) means "no gate and no coverage status", as the original did.
    pub coverage: Option<CoverageSettings>,
    /// As written; matching uses the matcher compiled from them by [`parse`].
    pub exclude_paths: Vec<String>,
    /// `defaults.checks`; `None` when absent.
    pub defaults: Option<CheckDefaults>,
    /// May be empty: the check set is then not configured.
    pub checks: Vec<CheckSpec>,
    exclude: ExcludeMatcher,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageSettings {
    /// 0..=100.
    pub min_percent: Option<u32>,
}

/// `defaults.checks`: envs and mounts every check gets unless it sets its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckDefaults {
    pub envs: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSpec {
    /// The image reference as written (`cocov/rubocop:v0.1`).
    pub plugin: String,
    pub envs: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    /// Where the check's entry starts in the manifest (1-based).
    pub line: usize,
}

impl CheckSpec {
    /// The short name stored in `checks.plugin_name` (see [`cleanup_plugin_name`]).
    pub fn plugin_name(&self) -> String {
        cleanup_plugin_name(&self.plugin)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub source: MountSource,
    /// As written: absolute or `~/…` (left unexpanded for the worker), never with `..`.
    pub destination: String,
    /// Where the mount's entry starts in the manifest (1-based), for
    /// [`ManifestError::unknown_secret`].
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountSource {
    /// `secrets:NAME`: resolved in the repository's scope first, then the organization's.
    Secret(String),
}

impl MountSource {
    pub fn secret_name(&self) -> &str {
        match self {
            MountSource::Secret(name) => name,
        }
    }
}

impl fmt::Display for MountSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountSource::Secret(name) => write!(f, "secrets:{name}"),
        }
    }
}

/// Reads and validates a manifest.
pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
    let root = yaml::load(text)?;
    validate::manifest(&root)
}

/// A commit's `.cocov.yaml` as its tree holds it (read without following links, up to
/// [`MAX_MANIFEST_BYTES`]): `None` when there is none, else the manifest or why it is refused.
pub fn parse_file(file: &TreeFile) -> Option<Result<Manifest, ManifestError>> {
    match file {
        TreeFile::Absent => None,
        TreeFile::Regular(bytes) => Some(parse(&String::from_utf8_lossy(bytes))),
        TreeFile::TooLarge(bytes) => Some(Err(ManifestError::too_large(*bytes))),
        TreeFile::NotRegular(what) => Some(Err(ManifestError::not_a_file(what))),
    }
}

/// A commit's manifest file and its parse, done once and handed to every stage that needs it
/// (the statuses it calls for, the check set that keeps its bytes).
#[derive(Debug, Clone)]
pub struct ManifestFile {
    pub file: TreeFile,
    /// [`parse_file`] of `file`.
    pub parsed: Option<Result<Manifest, ManifestError>>,
}

impl ManifestFile {
    pub fn new(file: TreeFile) -> ManifestFile {
        let parsed = parse_file(&file);
        ManifestFile { file, parsed }
    }

    /// The file's bytes, when it is a regular file.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.file {
            TreeFile::Regular(bytes) => Some(bytes),
            _ => None,
        }
    }
}

impl Manifest {
    /// The coverage gate, if any.
    pub fn min_percent(&self) -> Option<u32> {
        self.coverage.as_ref().and_then(|c| c.min_percent)
    }

    /// Whether a repository-relative path is left out of issues and coverage (see the table in
    /// [`ExcludeMatcher`]'s module).
    pub fn is_excluded(&self, path: &str) -> bool {
        self.exclude.is_excluded(path)
    }

    pub fn exclude_matcher(&self) -> &ExcludeMatcher {
        &self.exclude
    }

    /// The checks to run, with `defaults.checks` merged in: envs per name and mounts per
    /// destination, the check's own winning, the other default mounts appended.
    pub fn effective_checks(&self) -> Vec<CheckSpec> {
        self.checks
            .iter()
            .map(|check| merge::with_defaults(self.defaults.as_ref(), check))
            .collect()
    }
}
