//! The original reporter's upload (`POST /v1/reports`: `{commit_sha, data: {path: base64 line
//! map}, mode}`) read as it is decompressed: each file's line data is decoded as soon as its
//! string is read and only the decoded coverage is kept, so neither the whole inflated body nor
//! a JSON tree of it is ever held. The same [`Limits`] as a parsed report apply (files, path
//! length, lines per file and in all). The upload budget is charged for every inflated byte (a
//! single string may be most of the body, and the JSON reader holds it whole while it is read)
//! and for the decoded coverage.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufReader, Read};

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::budget::{Budget, OverBudget};
use super::upload::{Compression, RawError, inflate};
use super::{FileCoverage, Limits};
use crate::upload_budget::{Meter, Refused};

/// Why the line-encoded data was refused.
#[derive(Debug, thiserror::Error)]
pub enum WireDataError {
    #[error("\"data\" must be an object of file path → base64 line data")]
    NotAnObject,
    #[error("the line data of `{path}` is not a string")]
    NotAString { path: String },
    #[error("the line data of `{path}`: {error}")]
    Invalid {
        path: String,
        error: super::WireError,
    },
    #[error("file path `{0}` is empty or longer than the limit")]
    BadPath(String),
    /// PostgreSQL cannot store the NUL character (the path is given with it escaped).
    #[error("file path `{0}` contains a NUL character, which cannot be stored")]
    NulInPath(String),
    #[error("the upload has more than {0} files")]
    TooManyFiles(usize),
    #[error("the upload has more than {0} source lines in all")]
    TooManyLines(u64),
}

/// Why the body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireReadError {
    /// Too large once inflated, over the time limit, or no room in the upload budget.
    #[error(transparent)]
    Stopped(#[from] RawError),
    #[error("The body could not be decompressed: {0}")]
    Decompress(String),
    #[error("Invalid JSON body: {0}")]
    Json(String),
    #[error(transparent)]
    Data(#[from] WireDataError),
}

/// The `data` member.
#[derive(Debug, Default)]
pub enum WireData {
    /// Absent or `null`.
    #[default]
    Missing,
    Files(BTreeMap<String, FileCoverage>),
}

/// The body's members; checking which are required is the caller's.
#[derive(Debug, Default)]
pub struct WireReport {
    pub commit_sha: Option<String>,
    pub data: WireData,
    pub mode: Option<String>,
}

/// Reads a `POST /v1/reports` body (see the module docs). Blocking: run it off the runtime.
pub fn read<R: Read>(
    body: R,
    compression: Compression,
    max_bytes: u64,
    budget: &Budget,
    meter: &Meter,
) -> Result<WireReport, WireReadError> {
    let mut capped = inflate(body, compression, max_bytes, budget, Some(meter))
        .map_err(|e| WireReadError::Decompress(e.to_string()))?;
    let refused = RefCell::new(None);
    let context = Context {
        limits: Limits::default(),
        budget,
        meter,
        refused: &refused,
    };
    let result = {
        let mut de =
            serde_json::Deserializer::from_reader(BufReader::with_capacity(64 * 1024, &mut capped));
        ReportSeed(&context)
            .deserialize(&mut de)
            .and_then(|report| de.end().map(|()| report))
    };
    if let Some(stopped) = capped.stopped() {
        return Err(stopped.into());
    }
    if let Some(refused) = meter.refusal() {
        return Err(RawError::Refused(refused).into());
    }
    result.map_err(|e| match refused.into_inner() {
        Some(Stop::Data(data)) => data.into(),
        Some(Stop::OverBudget(over)) => RawError::OverBudget(over).into(),
        None if e.is_io() => WireReadError::Decompress(e.to_string()),
        None => WireReadError::Json(e.to_string()),
    })
}

/// What ended the read inside the deserializer, kept typed beside serde's stringly error.
enum Stop {
    Data(WireDataError),
    OverBudget(OverBudget),
}

struct Context<'a> {
    limits: Limits,
    budget: &'a Budget,
    meter: &'a Meter,
    refused: &'a RefCell<Option<Stop>>,
}

impl Context<'_> {
    fn stop<E: serde::de::Error>(&self, stop: Stop) -> E {
        let message = match &stop {
            Stop::Data(e) => e.to_string(),
            Stop::OverBudget(e) => e.to_string(),
        };
        self.refused.borrow_mut().get_or_insert(stop);
        E::custom(message)
    }

    fn charge<E: serde::de::Error>(&self, path_len: usize, lines: u64) -> Result<(), E> {
        self.meter
            .charge_file(path_len, lines)
            .map_err(|refused: Refused| E::custom(refused))
    }
}

struct ReportSeed<'c, 'a>(&'c Context<'a>);

impl<'de> DeserializeSeed<'de> for ReportSeed<'_, '_> {
    type Value = WireReport;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<WireReport, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ReportSeed<'_, '_> {
    type Value = WireReport;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with commit_sha and data")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireReport, A::Error> {
        let mut report = WireReport::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "commit_sha" => report.commit_sha = map.next_value()?,
                "mode" => report.mode = map.next_value()?,
                "data" => report.data = map.next_value_seed(DataSeed(self.0))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(report)
    }
}

struct DataSeed<'c, 'a>(&'c Context<'a>);

impl DataSeed<'_, '_> {
    fn not_an_object<E: serde::de::Error>(self) -> Result<WireData, E> {
        Err(self.0.stop(Stop::Data(WireDataError::NotAnObject)))
    }
}

/// The visitor methods for JSON's numbers and booleans, all answered by `self.$answer()`.
macro_rules! scalars {
    ($answer:ident) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            self.$answer()
        }

        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            self.$answer()
        }

        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            self.$answer()
        }

        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            self.$answer()
        }
    };
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_, '_> {
    type Value = WireData;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<WireData, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, '_> {
    type Value = WireData;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of file path → base64 line data")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<WireData, E> {
        Ok(WireData::Missing)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<WireData, E> {
        Ok(WireData::Missing)
    }

    scalars!(not_an_object);

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<WireData, E> {
        self.not_an_object()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<WireData, A::Error> {
        self.not_an_object()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireData, A::Error> {
        let cx = self.0;
        let limits = &cx.limits;
        let mut files = BTreeMap::new();
        let mut total_lines: u64 = 0;
        while let Some(path) = map.next_key::<String>()? {
            cx.budget
                .check()
                .map_err(|over| cx.stop::<A::Error>(Stop::OverBudget(over)))?;
            if path.contains('\0') {
                let path = path.replace('\0', "\\u0000");
                return Err(cx.stop(Stop::Data(WireDataError::NulInPath(path))));
            }
            if path.trim().is_empty() || path.len() > limits.max_path_len {
                return Err(cx.stop(Stop::Data(WireDataError::BadPath(path))));
            }
            if files.len() >= limits.max_files {
                let e = WireDataError::TooManyFiles(limits.max_files);
                return Err(cx.stop(Stop::Data(e)));
            }
            let Some(encoded) = map.next_value::<LineData>()?.0 else {
                return Err(cx.stop(Stop::Data(WireDataError::NotAString { path })));
            };
            let file = match FileCoverage::decode_wire_within(&encoded, limits.max_line_number) {
                Ok(file) => file,
                Err(error) => {
                    return Err(cx.stop(Stop::Data(WireDataError::Invalid { path, error })));
                }
            };
            total_lines += u64::from(file.len());
            if total_lines > limits.max_total_lines {
                let e = WireDataError::TooManyLines(limits.max_total_lines);
                return Err(cx.stop(Stop::Data(e)));
            }
            cx.charge::<A::Error>(path.len(), u64::from(file.len()))?;
            files.insert(path, file);
        }
        Ok(WireData::Files(files))
    }
}

/// A file's line data: the string, or None for any other JSON value (skipped, not built).
struct LineData(Option<String>);

impl<'de> serde::Deserialize<'de> for LineData {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<LineData, D::Error> {
        de.deserialize_any(LineDataVisitor)
    }
}

struct LineDataVisitor;

impl<'de> Visitor<'de> for LineDataVisitor {
    type Value = LineData;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a base64 string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LineData, E> {
        Ok(LineData(Some(v.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<LineData, E> {
        Ok(LineData(Some(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LineData, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(LineData(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LineData, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(LineData(None))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<LineData, E> {
        self.none()
    }

    scalars!(none);
}

impl LineDataVisitor {
    fn none<E>(self) -> Result<LineData, E> {
        Ok(LineData(None))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn read_plain(body: &str) -> Result<WireReport, WireReadError> {
        read(
            body.as_bytes(),
            Compression::None,
            1 << 20,
            &Budget::unlimited(),
            &Meter::default(),
        )
    }

    fn files(report: WireReport) -> BTreeMap<String, FileCoverage> {
        match report.data {
            WireData::Files(files) => files,
            WireData::Missing => panic!("no data"),
        }
    }

    #[test]
    fn members_are_read_in_any_order() {
        let report =
            read_plain(r#"{"mode":"replace","data":{"src/a.rb":"MTAeMjAAGxU="},"x":[1,{"y":2}],"commit_sha":"ab"}"#)
                .unwrap();
        assert_eq!(report.commit_sha.as_deref(), Some("ab"));
        assert_eq!(report.mode.as_deref(), Some("replace"));
        assert_eq!(files(report)["src/a.rb"].totals().lines_total, 3);
        assert!(matches!(
            read_plain(r#"{"commit_sha":"ab","data":null}"#)
                .unwrap()
                .data,
            WireData::Missing
        ));
    }

    #[test]
    fn bad_data_is_named() {
        let cases = [
            (r#"{"data":[1,2]}"#, "must be an object"),
            (r#"{"data":"x"}"#, "must be an object"),
            (r#"{"data":{"a.rb":"%%%"}}"#, "line data of `a.rb`"),
            (r#"{"data":{"a.rb":[1]}}"#, "is not a string"),
            (r#"{"data":{" ":"MTAeMjAAGxU="}}"#, "empty or longer"),
        ];
        for (body, says) in cases {
            let err = read_plain(body).unwrap_err();
            assert!(matches!(err, WireReadError::Data(_)), "{body}: {err:?}");
            assert!(err.to_string().contains(says), "{body}: {err}");
        }
        for body in ["", "[]", "{\"data\":{}} trailing", "{\"data\":"] {
            let err = read_plain(body).unwrap_err();
            assert!(matches!(err, WireReadError::Json(_)), "{body:?}: {err:?}");
        }
    }

    #[test]
    fn a_compressed_bomb_stops_at_the_cap() {
        // A valid document whose padding inflates past the cap: the cap, not the parser, ends it.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(br#"{"commit_sha":"ab","pad":""#).unwrap();
        let spaces = vec![b' '; 1 << 20];
        for _ in 0..8 {
            gz.write_all(&spaces).unwrap();
        }
        gz.write_all(br#"","data":{"a.rb":"MTAeMjAAGxU="}}"#)
            .unwrap();
        let gz = gz.finish().unwrap();
        let err = read(
            &gz[..],
            Compression::Gzip,
            1 << 20,
            &Budget::unlimited(),
            &Meter::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, WireReadError::Stopped(RawError::TooLarge { limit }) if limit == 1 << 20),
            "{err:?}"
        );
        let zst = zstd::encode_all(
            &br#"{"commit_sha":"ab","data":{"a.rb":"MTAeMjAAGxU="}}"#[..],
            3,
        )
        .unwrap();
        let report = read(
            &zst[..],
            Compression::Zstd,
            1 << 20,
            &Budget::unlimited(),
            &Meter::default(),
        )
        .unwrap();
        assert_eq!(files(report).len(), 1);
    }
}
