//! One coverage upload before it is tied to a commit: the report's files keyed by the paths the
//! report used, how it combines with earlier uploads, and the two ways it arrives (a raw report
//! parsed here, or the original reporter's line-encoded JSON). Also the envelope an upload is
//! held in while its commit is not known yet, and the capped decompression of raw bodies.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::budget::{Budget, OverBudget};
use super::merge::CommitCoverage;
use super::paths::{self, GoModule, Mapping};
use super::{FileCoverage, Format, Limits, ParseError, Report, Totals};

/// How an upload combines with the coverage a commit already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Line by line, hits summed (parallel CI jobs each sending part of the coverage).
    #[default]
    Merge,
    /// The upload becomes the commit's whole coverage (the original's only behaviour).
    Replace,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Merge => "merge",
            Mode::Replace => "replace",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "merge" => Some(Mode::Merge),
            "replace" => Some(Mode::Replace),
            _ => None,
        }
    }
}

/// A report's coverage as uploaded, paths as the report wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// None for line-encoded uploads (the reporter parsed the report).
    pub format: Option<Format>,
    /// Cobertura `<source>` directories, tried as prefixes of relative paths.
    pub sources: Vec<String>,
    pub files: BTreeMap<String, FileCoverage>,
    pub mode: Mode,
}

/// Why line-encoded data was refused.
#[derive(Debug, thiserror::Error)]
pub enum WireDataError {
    #[error("the upload has no files")]
    Empty,
    #[error("the line data of `{path}` is not a string")]
    NotAString { path: String },
    #[error("the line data of `{path}`: {error}")]
    Invalid {
        path: String,
        error: super::WireError,
    },
    #[error("file path `{0}` is empty or longer than the limit")]
    BadPath(String),
    #[error("the upload has more than {0} files")]
    TooManyFiles(usize),
    #[error("the upload has more than {0} source lines in all")]
    TooManyLines(u64),
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
}

/// The shape an upload is held in (`coverage_uploads.data`) until its commit arrives.
#[derive(Serialize, Deserialize)]
struct Held {
    format: Option<String>,
    #[serde(default)]
    sources: Vec<String>,
    /// Report path → base64 line map, as in `POST /v1/reports`.
    files: BTreeMap<String, String>,
}

impl Upload {
    /// A file path or source root holding a NUL character, if any (see [`super::submit`]).
    pub fn path_with_nul(&self) -> Option<&str> {
        self.files
            .keys()
            .chain(&self.sources)
            .map(String::as_str)
            .find(|p| p.contains('\0'))
    }

    pub fn from_report(report: Report, mode: Mode) -> Upload {
        Upload {
            format: Some(report.format),
            sources: report.sources,
            files: report.files,
            mode,
        }
    }

    /// From the `data` object of `POST /v1/reports`: path → base64 line map, held to the same
    /// [`Limits`] as a parsed report (files, path length, lines per file and in all).
    pub fn from_wire(
        data: &Map<String, Value>,
        mode: Mode,
        budget: &Budget,
    ) -> Result<Upload, WireDataError> {
        let limits = Limits::default();
        if data.is_empty() {
            return Err(WireDataError::Empty);
        }
        if data.len() > limits.max_files {
            return Err(WireDataError::TooManyFiles(limits.max_files));
        }
        let mut files = BTreeMap::new();
        let mut total_lines: u64 = 0;
        for (path, value) in data {
            budget.check()?;
            if path.trim().is_empty() || path.len() > limits.max_path_len {
                return Err(WireDataError::BadPath(path.clone()));
            }
            let Value::String(encoded) = value else {
                return Err(WireDataError::NotAString { path: path.clone() });
            };
            let file = FileCoverage::decode_wire_within(encoded, limits.max_line_number).map_err(
                |error| WireDataError::Invalid {
                    path: path.clone(),
                    error,
                },
            )?;
            total_lines += u64::from(file.len());
            if total_lines > limits.max_total_lines {
                return Err(WireDataError::TooManyLines(limits.max_total_lines));
            }
            files.insert(path.clone(), file);
        }
        Ok(Upload {
            format: None,
            sources: Vec::new(),
            files,
            mode,
        })
    }

    /// The held form (see [`Held`]).
    pub fn to_held_json(&self) -> Value {
        let held = Held {
            format: self.format.map(|f| f.as_str().to_string()),
            sources: self.sources.clone(),
            files: self
                .files
                .iter()
                .map(|(path, file)| (path.clone(), file.encode_wire()))
                .collect(),
        };
        serde_json::to_value(held).unwrap_or(Value::Null)
    }

    pub fn from_held_json(value: &Value, mode: Mode) -> Result<Upload, String> {
        let held: Held = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        let mut files = BTreeMap::new();
        for (path, encoded) in held.files {
            let file = FileCoverage::decode_wire(&encoded).map_err(|e| format!("{path}: {e}"))?;
            files.insert(path, file);
        }
        Ok(Upload {
            format: held.format.and_then(|f| f.parse().ok()),
            sources: held.sources,
            files,
            mode,
        })
    }

    /// Sum of the report's files, before mapping.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for f in self.files.values() {
            t.add(&f.totals());
        }
        t
    }

    /// Maps the report paths onto a commit's files, within `budget`.
    pub fn map(
        &self,
        repo_files: &[String],
        go_modules: &[GoModule],
        budget: &Budget,
    ) -> Result<Mapping, OverBudget> {
        let report_paths: Vec<&str> = self.files.keys().map(String::as_str).collect();
        let sources: &[String] = if self.format == Some(Format::Cobertura) {
            &self.sources
        } else {
            &[]
        };
        paths::map_within(&report_paths, sources, repo_files, go_modules, budget)
    }

    /// The coverage keyed by repository path (report paths landing on one file merged).
    pub fn remap(&self, mapping: &Mapping) -> CommitCoverage {
        let mut out = CommitCoverage::new();
        for (from, to) in &mapping.matched {
            let Some(file) = self.files.get(from) else {
                continue;
            };
            match out.get_mut(to) {
                Some(existing) => existing.merge(file),
                None => {
                    out.insert(to.clone(), file.clone());
                }
            }
        }
        out
    }
}

/// How a raw report body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From a `Content-Encoding` value; None when unsupported.
    pub fn from_content_encoding(value: Option<&str>) -> Option<Compression> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("identity") => Some(Compression::None),
            Some("gzip") | Some("x-gzip") => Some(Compression::Gzip),
            Some("zstd") => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The one decompressor of uploads: `body` read through this compression. Callers cap what
    /// they read from it (a small body can expand without bound).
    pub fn reader<'a, R: Read + 'a>(self, body: R) -> std::io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(body),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(body)?),
        })
    }
}

/// Why a raw report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("the report is larger than {limit} bytes once decompressed")]
    TooLarge { limit: u64 },
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
}

/// A reader that fails once more than `limit` bytes came through, and remembers that it did, so
/// a decompression bomb ends as "too large" however the parser words the read error.
/// It is also where the time budget is checked: the parsers pull every block of input through
/// it, so a report over its time stops at the next block whatever the format.
struct Capped<'b, R> {
    inner: R,
    left: u64,
    tripped: Arc<AtomicBool>,
    budget: &'b Budget,
    over_budget: Option<OverBudget>,
}

impl<R: Read> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Err(over) = self.budget.check() {
            self.over_budget = Some(over);
            return Err(std::io::Error::other(over.to_string()));
        }
        if self.left == 0 {
            // One probe byte tells a report of exactly `limit` bytes from a longer one.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.tripped.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("decompressed size limit exceeded"));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Parses a raw report body (decompressing it first), reading at most `max_bytes` of report.
/// Blocking: run it off the async runtime.
pub fn parse_raw<R: Read>(
    body: R,
    compression: Compression,
    format: Option<Format>,
    max_bytes: u64,
    budget: &Budget,
) -> Result<Report, RawError> {
    let tripped = Arc::new(AtomicBool::new(false));
    let inner = match compression.reader(body) {
        Ok(reader) => reader,
        Err(e) => {
            return Err(RawError::Parse(ParseError {
                format,
                line: None,
                message: format!("could not start zstd decompression: {e}"),
            }));
        }
    };
    let mut capped = Capped {
        inner,
        left: max_bytes,
        tripped: tripped.clone(),
        budget,
        over_budget: None,
    };
    let result = super::parse(format, BufReader::with_capacity(256 * 1024, &mut capped));
    if let Some(over) = capped.over_budget {
        return Err(RawError::OverBudget(over));
    }
    if tripped.load(Ordering::Relaxed) {
        return Err(RawError::TooLarge { limit: max_bytes });
    }
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const LCOV: &str = "SF:/ci/src/a.c\nDA:1,1\nDA:2,0\nend_of_record\n";

    #[test]
    fn gzip_and_zstd_bodies_parse() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(LCOV.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(LCOV.as_bytes(), 3).unwrap();
        for (body, c) in [
            (LCOV.as_bytes().to_vec(), Compression::None),
            (gz, Compression::Gzip),
            (zst, Compression::Zstd),
        ] {
            let report = parse_raw(&body[..], c, None, 1 << 20, &Budget::unlimited()).unwrap();
            assert_eq!(report.totals().lines_total, 2, "{c:?}");
        }
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        // 64 MiB of zeros compress to about 64 KiB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        let gz = gz.finish().unwrap();
        assert!(gz.len() < 1 << 20);
        let err = parse_raw(
            &gz[..],
            Compression::Gzip,
            Some(Format::Lcov),
            1 << 20,
            &Budget::unlimited(),
        )
        .unwrap_err();
        assert!(
            matches!(err, RawError::TooLarge { limit } if limit == 1 << 20),
            "{err}"
        );
        // Exactly at the cap is fine.
        let exact = parse_raw(
            LCOV.as_bytes(),
            Compression::None,
            None,
            LCOV.len() as u64,
            &Budget::unlimited(),
        );
        assert!(exact.is_ok());
    }

    #[test]
    fn wire_data_and_held_envelope_round_trip() {
        let data: Map<String, Value> =
            serde_json::from_str(r#"{"src/a.rb": "MTAeMjAAGxU="}"#).unwrap();
        let upload = Upload::from_wire(&data, Mode::Merge, &Budget::unlimited()).unwrap();
        assert_eq!(upload.totals().lines_total, 3);
        let held = upload.to_held_json();
        assert_eq!(Upload::from_held_json(&held, Mode::Merge).unwrap(), upload);
        let bad: Map<String, Value> = serde_json::from_str(r#"{"a.rb": "%%%"}"#).unwrap();
        assert!(matches!(
            Upload::from_wire(&bad, Mode::Merge, &Budget::unlimited()),
            Err(WireDataError::Invalid { .. })
        ));
        assert!(matches!(
            Upload::from_wire(&Map::new(), Mode::Merge, &Budget::unlimited()),
            Err(WireDataError::Empty)
        ));
        assert_eq!(Mode::parse("REPLACE"), Some(Mode::Replace));
        assert_eq!(Mode::parse("sum"), None);
    }
}
