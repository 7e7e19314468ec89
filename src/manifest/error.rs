//! Manifest errors: a kind (stored as `check_sets.error_kind`), a location and the message.
//!
//! The message keeps the original validator's wording where users have seen it (reference
//! §13.1–13.3); `Display` prefixes it with the line and key so that people can find the mistake.

use std::fmt;
use std::str::FromStr;

/// GitHub rejects commit-status descriptions longer than this many characters.
pub const STATUS_DESCRIPTION_MAX_CHARS: usize = 140;

/// Why a manifest was refused. The words of [`ManifestErrorKind::as_str`] are persisted, so they
/// must not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManifestErrorKind {
    /// Not readable as (safe, single-document, bounded) YAML.
    InvalidYaml,
    RootMustBeMapping,
    MissingVersion,
    VersionTypeMismatch,
    VersionUnsupported,
    InvalidOrMissingData,
    DuplicatedMountDestination,
    InvalidMountSource,
    /// Raised at run time, when a mounted secret does not exist.
    UnknownSecret,
    /// `.cocov.yaml` is a symbolic link, a submodule or a directory: never followed or read.
    NotAFile,
}

impl ManifestErrorKind {
    pub const ALL: [ManifestErrorKind; 10] = [
        Self::InvalidYaml,
        Self::RootMustBeMapping,
        Self::MissingVersion,
        Self::VersionTypeMismatch,
        Self::VersionUnsupported,
        Self::InvalidOrMissingData,
        Self::DuplicatedMountDestination,
        Self::InvalidMountSource,
        Self::UnknownSecret,
        Self::NotAFile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidYaml => "manifest_invalid_yaml",
            Self::RootMustBeMapping => "manifest_root_must_be_mapping",
            Self::MissingVersion => "manifest_missing_version",
            Self::VersionTypeMismatch => "manifest_version_type_mismatch",
            Self::VersionUnsupported => "manifest_version_unsupported",
            Self::InvalidOrMissingData => "manifest_invalid_or_missing_data",
            Self::DuplicatedMountDestination => "manifest_duplicated_mount_destination",
            Self::InvalidMountSource => "manifest_invalid_mount_source",
            Self::UnknownSecret => "manifest_unknown_secret",
            Self::NotAFile => "manifest_not_a_file",
        }
    }

    /// The short `cocov` status description (reference §5, `config/checks_statuses.yml`).
    /// The original had no entry for an unsupported version (it said "An unknown error
    /// occurred") and crashed on YAML errors; both get a text of their own here.
    pub fn status_description(self) -> &'static str {
        match self {
            Self::InvalidYaml => "Invalid manifest: YAML syntax error",
            Self::RootMustBeMapping => "Invalid manifest: Root should be a mapping",
            Self::MissingVersion | Self::VersionTypeMismatch => "Failure: Invalid manifest",
            Self::VersionUnsupported => "Invalid manifest: Unsupported version",
            Self::InvalidOrMissingData => "Failure: Invalid or Missing Data in Manifest",
            Self::DuplicatedMountDestination => "Failure: Duplicated mount destination",
            Self::InvalidMountSource => "Failure: Invalid mount source",
            Self::UnknownSecret => "Failure: Unknown secret",
            Self::NotAFile => "Invalid manifest: not a regular file",
        }
    }
}

impl fmt::Display for ManifestErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The word read back from the database is not a manifest error kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownErrorKind(pub String);

impl fmt::Display for UnknownErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown manifest error kind `{}`", self.0)
    }
}

impl std::error::Error for UnknownErrorKind {}

impl FromStr for ManifestErrorKind {
    type Err = UnknownErrorKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownErrorKind(s.to_owned()))
    }
}

/// A refused manifest. `line` and `column` are 1-based; `path` is the dot-joined key path
/// (list indices 0-based, as the original printed them), empty for the whole document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub kind: ManifestErrorKind,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub path: String,
    pub message: String,
}

impl ManifestError {
    pub fn new(
        kind: ManifestErrorKind,
        line: usize,
        column: usize,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            line: Some(line),
            column: Some(column),
            path: path.into(),
            message: message.into(),
        }
    }

    /// An error about the document as a whole, with no position (e.g. it is too large).
    pub fn whole_document(kind: ManifestErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            line: None,
            column: None,
            path: String::new(),
            message: message.into(),
        }
    }

    /// `.cocov.yaml` is `what` ("a symbolic link", …) instead of a regular file.
    pub fn not_a_file(what: &str) -> Self {
        Self::whole_document(
            ManifestErrorKind::NotAFile,
            format!("The manifest is {what}; it must be a regular file (links are not followed)"),
        )
    }

    /// The manifest is `bytes` long, over [`super::MAX_MANIFEST_BYTES`].
    pub fn too_large(bytes: u64) -> Self {
        Self::whole_document(
            ManifestErrorKind::InvalidYaml,
            format!(
                "The manifest is {bytes} bytes; at most {} bytes are allowed",
                super::MAX_MANIFEST_BYTES
            ),
        )
    }

    /// A mount names a secret that neither the repository nor its organization has. Raised by
    /// the code that resolves secrets when checks are run; `line` is [`super::Mount::line`].
    pub fn unknown_secret(name: &str, line: usize) -> Self {
        Self {
            kind: ManifestErrorKind::UnknownSecret,
            line: Some(line),
            column: None,
            path: String::new(),
            message: format!("Unknown secret `{name}'"),
        }
    }

    /// The short `cocov` status description for this error (see
    /// [`ManifestErrorKind::status_description`]).
    pub fn status_description(&self) -> &'static str {
        self.kind.status_description()
    }

    /// The short description plus where the mistake is, e.g.
    /// `Failure: Invalid or Missing Data in Manifest (line 7, checks.1.envs.DEBUG)`, cut to
    /// GitHub's limit. For statuses that should say more than the original's fixed text.
    pub fn status_description_with_location(&self) -> String {
        let short = self.status_description();
        let text = match (self.line, self.path.is_empty()) {
            (Some(line), false) => format!("{short} (line {line}, {})", self.path),
            (Some(line), true) => format!("{short} (line {line})"),
            (None, false) => format!("{short} ({})", self.path),
            (None, true) => short.to_owned(),
        };
        truncate_status(&text)
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(".cocov.yaml")?;
        let mut sep = " ";
        if let Some(line) = self.line {
            write!(f, "{sep}line {line}")?;
            sep = ", ";
            // A column only helps when there is no key to look for (YAML syntax errors).
            if let (Some(column), true) = (self.column, self.path.is_empty()) {
                write!(f, ", column {column}")?;
            }
        }
        if !self.path.is_empty() {
            if sep == " " {
                sep = ", ";
            }
            write!(f, "{sep}key {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ManifestError {}

/// Cuts `text` to GitHub's 140-character limit for status descriptions, at a character
/// boundary, ending with "…" when something was cut.
pub fn truncate_status(text: &str) -> String {
    if text.chars().count() <= STATUS_DESCRIPTION_MAX_CHARS {
        return text.to_owned();
    }
    let mut out: String = text
        .chars()
        .take(STATUS_DESCRIPTION_MAX_CHARS - 1)
        .collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_words() {
        for kind in ManifestErrorKind::ALL {
            assert_eq!(kind.as_str().parse::<ManifestErrorKind>(), Ok(kind));
            assert!(kind.as_str().starts_with("manifest_"));
        }
        assert!("manifest_nope".parse::<ManifestErrorKind>().is_err());
    }

    #[test]
    fn status_descriptions_follow_the_original_table() {
        use ManifestErrorKind::*;
        assert_eq!(
            RootMustBeMapping.status_description(),
            "Invalid manifest: Root should be a mapping"
        );
        assert_eq!(
            MissingVersion.status_description(),
            "Failure: Invalid manifest"
        );
        assert_eq!(
            VersionTypeMismatch.status_description(),
            "Failure: Invalid manifest"
        );
        assert_eq!(
            UnknownSecret.status_description(),
            "Failure: Unknown secret"
        );
        assert_eq!(
            DuplicatedMountDestination.status_description(),
            "Failure: Duplicated mount destination"
        );
        assert_eq!(
            InvalidMountSource.status_description(),
            "Failure: Invalid mount source"
        );
        assert_eq!(
            InvalidOrMissingData.status_description(),
            "Failure: Invalid or Missing Data in Manifest"
        );
        // The original's gap: it fell back to "An unknown error occurred".
        assert_eq!(
            VersionUnsupported.status_description(),
            "Invalid manifest: Unsupported version"
        );
        for kind in ManifestErrorKind::ALL {
            assert!(kind.status_description().chars().count() <= STATUS_DESCRIPTION_MAX_CHARS);
        }
    }

    #[test]
    fn display_names_line_and_key() {
        let e = ManifestError::new(
            ManifestErrorKind::InvalidOrMissingData,
            7,
            5,
            "checks.1.envs.DEBUG",
            "Expected checks.1.envs.DEBUG to match string. Assertion failed due to current object's value: true",
        );
        assert_eq!(
            e.to_string(),
            ".cocov.yaml line 7, key checks.1.envs.DEBUG: Expected checks.1.envs.DEBUG to match string. Assertion failed due to current object's value: true"
        );
        let syntax = ManifestError::new(
            ManifestErrorKind::InvalidYaml,
            3,
            9,
            "",
            "YAML syntax error: x",
        );
        assert_eq!(
            syntax.to_string(),
            ".cocov.yaml line 3, column 9: YAML syntax error: x"
        );
        let whole = ManifestError::whole_document(ManifestErrorKind::InvalidYaml, "too large");
        assert_eq!(whole.to_string(), ".cocov.yaml: too large");
    }

    #[test]
    fn unknown_secret_constructor() {
        let e = ManifestError::unknown_secret("NPM_TOKEN", 12);
        assert_eq!(e.kind, ManifestErrorKind::UnknownSecret);
        assert_eq!(e.line, Some(12));
        assert_eq!(
            e.to_string(),
            ".cocov.yaml line 12: Unknown secret `NPM_TOKEN'"
        );
        assert_eq!(e.status_description(), "Failure: Unknown secret");
        assert_eq!(
            e.status_description_with_location(),
            "Failure: Unknown secret (line 12)"
        );
    }

    #[test]
    fn truncation_keeps_char_boundaries() {
        assert_eq!(truncate_status("short"), "short");
        let exact = "a".repeat(140);
        assert_eq!(truncate_status(&exact), exact);
        let long = "é".repeat(200);
        let cut = truncate_status(&long);
        assert_eq!(cut.chars().count(), 140);
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("éé"));
        let e = ManifestError::new(
            ManifestErrorKind::InvalidOrMissingData,
            1,
            1,
            "x".repeat(300),
            "m",
        );
        assert_eq!(e.status_description_with_location().chars().count(), 140);
    }
}
