//! Coverage reports: parsing the five formats into one line model, mapping report paths onto
//! the commit's files, and the original Cocov wire encoding.
//!
//! Flow for an upload: [`parse`] (detects the format from the content unless one is given) →
//! [`paths::map`] (report paths → repository paths) → [`merge::remap`] (one [`FileCoverage`]
//! per repository file, merged when several report paths land on one file) →
//! [`FileCoverage::totals`] / [`FileCoverage::encode_wire`] / [`FileCoverage::blocks`].
//!
//! Coverage is line-based everywhere, as in the original: a line is covered when its hit count
//! is above zero. Parsers stream their input (no document tree), never resolve DTDs or entities
//! beyond XML's five predefined ones, and stop at [`Limits`] so a hostile report cannot make
//! them allocate without bound.

pub mod browse;
pub mod budget;
pub mod detect;
pub mod formats;
pub mod gate;
pub mod lines;
pub mod merge;
pub mod paths;
pub mod read;
pub mod store;
pub mod submit;
pub mod tree;
pub mod upload;
pub mod wire_report;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Cursor, Read};
use std::str::FromStr;

pub use lines::{Block, BlockKind, FileCoverage, Line, Totals, WireError};
pub use submit::{Diagnostic, SubmitError, apply_early_uploads, expire_early_uploads, submit};
pub use upload::{Compression, Mode, RawError, Upload};

/// The supported report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    Cobertura,
    Jacoco,
    Lcov,
    GoCover,
    SimpleCov,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Cobertura,
        Format::Jacoco,
        Format::Lcov,
        Format::GoCover,
        Format::SimpleCov,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Cobertura => "cobertura",
            Format::Jacoco => "jacoco",
            Format::Lcov => "lcov",
            Format::GoCover => "gocover",
            Format::SimpleCov => "simplecov",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The names accepted by [`Format::from_str`], for error messages.
pub const SUPPORTED_FORMATS: &str = "cobertura, jacoco, lcov, gocover, simplecov";

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown coverage format `{s}` (supported: {SUPPORTED_FORMATS})")
            })
    }
}

/// A parsed report: coverage per path exactly as the report names it (see [`paths`] to map
/// those onto the repository).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub format: Format,
    pub files: BTreeMap<String, FileCoverage>,
    /// Cobertura `<sources><source>` directories, in order; empty for the other formats.
    pub sources: Vec<String>,
}

impl Report {
    pub fn new(format: Format) -> Self {
        Self {
            format,
            files: BTreeMap::new(),
            sources: Vec::new(),
        }
    }

    /// Sum of every file's totals.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for f in self.files.values() {
            t.add(&f.totals());
        }
        t
    }
}

/// Bounds that keep a hostile report from exhausting memory. Every parser checks them while
/// reading, so it fails early instead of allocating first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Distinct files in one report.
    pub max_files: usize,
    /// Highest line number accepted (a file is stored densely up to its highest line).
    pub max_line_number: u32,
    /// Longest path accepted, in bytes.
    pub max_path_len: usize,
    /// Sum of all files' line counts (the report's memory is about 8 bytes per line).
    pub max_total_lines: u64,
    /// Longest single text line (lcov, Go) or XML tag/text run, in bytes.
    pub max_token_bytes: usize,
    /// Cobertura `<source>` roots: each is tried as a prefix of every relative path, so they
    /// multiply the cost of mapping paths.
    pub max_sources: usize,
    /// Where the memory kept for parsed files is charged (the process-wide upload budget).
    pub meter: crate::upload_budget::Meter,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_files: 100_000,
            max_line_number: 2_000_000,
            max_path_len: 4096,
            max_total_lines: 20_000_000,
            max_token_bytes: 1 << 20,
            max_sources: 64,
            meter: crate::upload_budget::Meter::default(),
        }
    }
}

/// Why a report was rejected. `format` is None when the format could not be detected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub format: Option<Format>,
    /// 1-based line of the report where the problem was found, when known.
    pub line: Option<u64>,
    pub message: String,
}

impl ParseError {
    pub fn new(format: Format, line: Option<u64>, message: impl Into<String>) -> Self {
        Self {
            format: Some(format),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.format {
            Some(format) => write!(f, "{format} report")?,
            None => f.write_str("coverage report")?,
        }
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ParseError {}

/// How many leading bytes detection looks at.
pub const SNIFF_BYTES: usize = 8 * 1024;

/// Parses a report with default limits; see [`parse_with_limits`].
pub fn parse<R: BufRead>(format: Option<Format>, reader: R) -> Result<Report, ParseError> {
    parse_with_limits(format, reader, &Limits::default())
}

/// Parses a report of the given format, or of the format detected from its first
/// [`SNIFF_BYTES`] when `format` is None.
pub fn parse_with_limits<R: BufRead>(
    format: Option<Format>,
    mut reader: R,
    limits: &Limits,
) -> Result<Report, ParseError> {
    if let Some(format) = format {
        return formats::parse(format, reader, limits);
    }
    // Read the head fully (a single fill_buf may return only a few bytes from a decoder or a
    // socket), then hand the parser the head followed by the rest.
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut reader)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| ParseError {
            format: None,
            line: None,
            message: format!("could not read the report: {e}"),
        })?;
    let format = detect::detect(&head).ok_or_else(|| {
        let hint = if head.starts_with(&[0x1f, 0x8b]) {
            "; it looks gzip-compressed, decompress it first"
        } else {
            ""
        };
        ParseError {
            format: None,
            line: None,
            message: format!(
                "could not detect the coverage format from the content \
                 (supported: {SUPPORTED_FORMATS}){hint}"
            ),
        }
    })?;
    formats::parse(format, Cursor::new(head).chain(reader), limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
        }
        assert_eq!("LCOV".parse::<Format>(), Ok(Format::Lcov));
        let err = "clover".parse::<Format>().unwrap_err();
        assert!(
            err.contains("clover") && err.contains(SUPPORTED_FORMATS),
            "{err}"
        );
    }

    #[test]
    fn parse_error_display() {
        let e = ParseError::new(Format::Lcov, Some(12), "DA before SF");
        assert_eq!(e.to_string(), "lcov report, line 12: DA before SF");
        let e = ParseError::new(Format::Jacoco, None, "no <report>");
        assert_eq!(e.to_string(), "jacoco report: no <report>");
    }

    #[test]
    fn undetectable_content_lists_the_formats() {
        let err = parse(None, &b"hello, world\n"[..]).unwrap_err();
        assert_eq!(err.format, None);
        assert!(err.to_string().contains(SUPPORTED_FORMATS), "{err}");
        let err = parse(None, &[0x1f, 0x8b, 8, 0, 0][..]).unwrap_err();
        assert!(err.message.ends_with("decompress it first"), "{err}");
    }

    #[test]
    fn detection_then_parse_reads_past_the_sniffed_head() {
        // The head is shorter than the report, so the parser must continue into the rest.
        let mut lcov = String::from("TN:\n");
        for i in 0..2000 {
            lcov.push_str(&format!("SF:src/f{i}.c\nDA:1,1\nDA:2,0\nend_of_record\n"));
        }
        assert!(lcov.len() > SNIFF_BYTES);
        let report = parse(None, lcov.as_bytes()).unwrap();
        assert_eq!(report.format, Format::Lcov);
        assert_eq!(report.files.len(), 2000);
        assert_eq!(report.totals().lines_total, 4000);
        assert_eq!(report.totals().lines_covered, 2000);
    }

    #[test]
    fn explicit_format_overrides_detection() {
        let err = parse(Some(Format::GoCover), &b"TN:\nSF:a.c\n"[..]).unwrap_err();
        assert_eq!(err.format, Some(Format::GoCover));
    }
}
