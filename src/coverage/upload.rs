//! One coverage upload before it is tied to a commit: the report's files keyed by the paths the
//! report used, how it combines with earlier uploads, and the envelope it is held in while its
//! commit is not known yet. Also the capped, streaming decompression of upload bodies and the
//! parsing of raw reports (line-encoded JSON uploads are read in [`super::wire_report`]).

use std::collections::BTreeMap;
use std::io::{BufReader, Read};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::budget::{Budget, OverBudget};
use super::merge::CommitCoverage;
use super::paths::{self, GoModule, Mapping};
use super::{FileCoverage, Format, Limits, ParseError, Report, Totals};
use crate::upload_budget::{Meter, Refused, ZSTD_WINDOW_LOG_MAX};

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
    /// they read from it (a small body can expand without bound). A zstd frame asking for a
    /// window above [`ZSTD_WINDOW_LOG_MAX`] fails to read instead of being given the memory.
    pub fn reader<'a, R: Read + 'a>(self, body: R) -> std::io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(body),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body)),
            Compression::Zstd => {
                let mut decoder = zstd::stream::read::Decoder::new(body)?;
                decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                Box::new(decoder)
            }
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
    /// The process-wide upload budget had no room (see [`crate::upload_budget`]).
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// A reader that fails once more than `limit` bytes came through, and remembers that it did, so
/// a decompression bomb ends as "too large" however the parser words the read error.
/// It is also where the time budget is checked: the parsers pull every block of input through
/// it, so a report over its time stops at the next block whatever the format.
pub(crate) struct Capped<'b, R> {
    inner: R,
    limit: u64,
    left: u64,
    tripped: bool,
    budget: &'b Budget,
    over_budget: Option<OverBudget>,
    /// Where inflated bytes are charged as they come through, when the reader keeps them.
    meter: Option<&'b Meter>,
    uncharged: u64,
}

/// Inflated bytes are charged in steps of this size, not read by read.
const CHARGE_STEP: u64 = 1024 * 1024;

impl<R> Capped<'_, R> {
    /// Why reading stopped early, when it was the cap or the time budget (a parser's error
    /// then only echoes the read error).
    pub(crate) fn stopped(&self) -> Option<RawError> {
        if let Some(over) = self.over_budget {
            return Some(RawError::OverBudget(over));
        }
        self.tripped
            .then_some(RawError::TooLarge { limit: self.limit })
    }
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
            self.tripped = true;
            return Err(std::io::Error::other("decompressed size limit exceeded"));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        if let Some(meter) = self.meter {
            self.uncharged += n as u64;
            if self.uncharged >= CHARGE_STEP {
                meter
                    .charge_bytes(self.uncharged)
                    .map_err(std::io::Error::other)?;
                self.uncharged = 0;
            }
        }
        Ok(n)
    }
}

/// The body decompressed as it is read, at most `max_bytes` of it, within `budget`; with
/// `keeps`, every inflated byte is charged to that meter (for readers that may keep what they
/// read).
pub(crate) fn inflate<'b, R: Read + 'b>(
    body: R,
    compression: Compression,
    max_bytes: u64,
    budget: &'b Budget,
    keeps: Option<&'b Meter>,
) -> std::io::Result<Capped<'b, Box<dyn Read + 'b>>> {
    let inner = compression.reader(body)?;
    Ok(Capped {
        inner,
        limit: max_bytes,
        left: max_bytes,
        tripped: false,
        budget,
        over_budget: None,
        meter: keeps,
        uncharged: 0,
    })
}

/// Parses a raw report body (decompressing it first), reading at most `max_bytes` of report
/// and charging what it keeps to `meter`. Blocking: run it off the async runtime.
pub fn parse_raw<R: Read>(
    body: R,
    compression: Compression,
    format: Option<Format>,
    max_bytes: u64,
    budget: &Budget,
    meter: &Meter,
) -> Result<Report, RawError> {
    let mut capped = inflate(body, compression, max_bytes, budget, None).map_err(|e| {
        RawError::Parse(ParseError {
            format,
            line: None,
            message: format!("could not start decompression: {e}"),
        })
    })?;
    let limits = Limits {
        meter: meter.clone(),
        ..Limits::default()
    };
    let result = super::parse_with_limits(
        format,
        BufReader::with_capacity(256 * 1024, &mut capped),
        &limits,
    );
    if let Some(stopped) = capped.stopped() {
        return Err(stopped);
    }
    if let Some(refused) = meter.refusal() {
        return Err(RawError::Refused(refused));
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
            let report = parse_raw(
                &body[..],
                c,
                None,
                1 << 20,
                &Budget::unlimited(),
                &Meter::default(),
            )
            .unwrap();
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
            &Meter::default(),
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
            &Meter::default(),
        );
        assert!(exact.is_ok());
    }

    #[test]
    fn held_envelope_round_trips() {
        let mut files = BTreeMap::new();
        files.insert(
            "src/a.rb".to_string(),
            FileCoverage::decode_wire("MTAeMjAAGxU=").unwrap(),
        );
        let upload = Upload {
            format: None,
            sources: Vec::new(),
            files,
            mode: Mode::Merge,
        };
        assert_eq!(upload.totals().lines_total, 3);
        let held = upload.to_held_json();
        assert_eq!(Upload::from_held_json(&held, Mode::Merge).unwrap(), upload);
        assert_eq!(Mode::parse("REPLACE"), Some(Mode::Replace));
        assert_eq!(Mode::parse("sum"), None);
    }
}
