//! SimpleCov JSON: the `simplecov_json_formatter` output (`coverage/coverage.json`:
//! `{"meta": {...}, "coverage": {path: {"lines": [...]}}}`) and SimpleCov's own
//! `.resultset.json` (`{command: {"coverage": {path: {"lines": [...]} | [...]}}}`, which the
//! original did not read; several commands merge by summing hits).
//!
//! Element i of `lines` is line i+1: `null` is neutral, a number is hits (0 = missed), the
//! string `"ignored"` is an ignored line (`# :nocov:`); anything else is an error naming the file
//! and line. The document is deserialised with typed serde visitors that write lines straight
//! into the report: no `serde_json::Value` tree is built.

use std::fmt;
use std::io::BufRead;
use std::num::NonZeroU32;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Builder;
use crate::coverage::{FileCoverage, Format, Limits, ParseError, Report};

const FORMAT: Format = Format::SimpleCov;

pub fn parse<R: BufRead>(reader: R, limits: &Limits) -> Result<Report, ParseError> {
    let mut out = Builder::new(FORMAT, limits);
    let mut saw_coverage = false;
    let mut json = serde_json::Deserializer::from_reader(reader);
    let result = Top {
        out: &mut out,
        saw_coverage: &mut saw_coverage,
    }
    .deserialize(&mut json)
    .and_then(|()| json.end());
    if let Err(e) = result {
        return Err(json_error(e));
    }
    if !saw_coverage {
        return Err(ParseError::new(
            FORMAT,
            None,
            "no `coverage` object: not a SimpleCov report",
        ));
    }
    Ok(out.finish())
}

fn json_error(e: serde_json::Error) -> ParseError {
    // serde_json appends " at line L column C"; the line goes into the error's own field.
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) if e.line() > 0 => text[..i].to_string(),
        _ => text,
    };
    let message = match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("malformed JSON: {message}")
        }
        _ => message,
    };
    let line = (e.line() > 0).then_some(e.line() as u64);
    ParseError::new(FORMAT, line, message)
}

/// The top-level object: `meta`/`coverage`/… (formatter output) or command names (resultset).
struct Top<'a, 'l> {
    out: &'a mut Builder<'l>,
    saw_coverage: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SimpleCov JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "coverage" => {
                    *self.saw_coverage = true;
                    map.next_value_seed(Files { out: self.out })?;
                }
                "meta" | "timestamp" | "groups" | "errors" | "total" => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => map.next_value_seed(Command {
                    out: self.out,
                    saw_coverage: self.saw_coverage,
                })?,
            }
        }
        Ok(())
    }
}

/// A `.resultset.json` command entry (`{"coverage": …, "timestamp": …}`); other values are
/// skipped.
struct Command<'a, 'l> {
    out: &'a mut Builder<'l>,
    saw_coverage: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for Command<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Command<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "coverage" {
                *self.saw_coverage = true;
                map.next_value_seed(Files {
                    out: &mut *self.out,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// `{path: {"lines": [...]}}` or, in old resultsets, `{path: [...]}`.
struct Files<'a, 'l> {
    out: &'a mut Builder<'l>,
}

impl<'de> DeserializeSeed<'de> for Files<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Files<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of file paths to coverage")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(path) = map.next_key::<String>()? {
            self.out.check_path(&path, None).map_err(de_error)?;
            let limits = self.out.limits();
            let coverage = map.next_value_seed(FileEntry {
                path: &path,
                limits,
            })?;
            self.out.add_file(path, coverage, None).map_err(de_error)?;
        }
        Ok(())
    }
}

fn de_error<E: de::Error>(e: ParseError) -> E {
    E::custom(e.message)
}

struct FileEntry<'p, 'l> {
    path: &'p str,
    limits: &'l Limits,
}

impl<'de> DeserializeSeed<'de> for FileEntry<'_, '_> {
    type Value = FileCoverage;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FileCoverage, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FileEntry<'_, '_> {
    type Value = FileCoverage;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with `lines` for {}", self.path)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileCoverage, A::Error> {
        let mut lines = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "lines" {
                lines = Some(map.next_value_seed(Lines {
                    path: self.path,
                    limits: self.limits,
                })?);
            } else {
                // branches, methods: coverage is line-based.
                map.next_value::<IgnoredAny>()?;
            }
        }
        lines.ok_or_else(|| de::Error::custom(format!("no `lines` for {}", self.path)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<FileCoverage, A::Error> {
        Lines {
            path: self.path,
            limits: self.limits,
        }
        .visit_seq(seq)
    }
}

struct Lines<'p, 'l> {
    path: &'p str,
    limits: &'l Limits,
}

impl<'de> DeserializeSeed<'de> for Lines<'_, '_> {
    type Value = FileCoverage;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FileCoverage, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Lines<'_, '_> {
    type Value = FileCoverage;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of line hits for {}", self.path)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FileCoverage, A::Error> {
        let mut coverage = FileCoverage::new();
        let mut number: u32 = 0;
        loop {
            let seed = LineValue {
                path: self.path,
                offset: number,
            };
            let Some(value) = seq.next_element_seed(seed)? else {
                break;
            };
            number += 1;
            if number > self.limits.max_line_number {
                return Err(de::Error::custom(format!(
                    "{} has more than {} lines",
                    self.path, self.limits.max_line_number
                )));
            }
            let line = NonZeroU32::new(number).unwrap_or(NonZeroU32::MIN);
            match value {
                Value::Neutral => coverage.pad_to(number),
                Value::Ignored => coverage.set_ignored(line),
                Value::Hits(n) => coverage.add_hits(line, n),
            }
        }
        Ok(coverage)
    }
}

enum Value {
    Neutral,
    Ignored,
    Hits(u64),
}

/// One element of `lines`, with the original's error wording for wrong values.
struct LineValue<'p> {
    path: &'p str,
    offset: u32,
}

impl LineValue<'_> {
    fn wrong<E: de::Error>(&self, what: String) -> E {
        E::custom(format!(
            "{what} on coverage information for {}, line offset {}",
            self.path, self.offset
        ))
    }
}

impl<'de> DeserializeSeed<'de> for LineValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LineValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, a hit count or \"ignored\"")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Neutral)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Hits(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        u64::try_from(v)
            .map(Value::Hits)
            .map_err(|_| self.wrong(format!("negative hit count {v}")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // The original truncated fractional counts; NaN cannot come from JSON.
        if v.is_finite() && v >= 0.0 {
            Ok(Value::Hits(v as u64))
        } else {
            Err(self.wrong(format!("invalid hit count {v}")))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        if v == "ignored" {
            Ok(Value::Ignored)
        } else {
            let shown: String = v.chars().take(40).collect();
            Err(self.wrong(format!("unexpected string value `{shown}`")))
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value, E> {
        Err(self.wrong("unexpected type boolean".into()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        Err(self.wrong("unexpected type array".into()))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        Err(self.wrong("unexpected type object".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::Line;

    fn parse_str(s: &str) -> Result<Report, ParseError> {
        parse(s.as_bytes(), &Limits::default())
    }

    fn sample(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/coverage/original/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn original_sample_matches_the_reference_vector() {
        let report = parse_str(&sample("simplecov-coverage.json")).unwrap();
        let f = &report.files["/app/app/controllers/application_controller.rb"];
        assert_eq!(
            f.encode_wire(),
            "AAAxHjEeMQAxHjIAADEeMzQAADEAODgAADg4ADg4AAAAMQAb"
        );
        let t = f.totals();
        assert_eq!(
            (t.lines_total, t.lines_covered, t.lines_ignored),
            (12, 12, 1)
        );
        assert_eq!(f.len(), 28);
    }

    #[test]
    fn original_negative_samples_are_rejected() {
        let err = parse_str(&sample("simplecov-not-json.json")).unwrap_err();
        assert!(err.message.starts_with("malformed JSON"), "{err}");
        assert_eq!(err.line, Some(1));
        let err = parse_str(&sample("simplecov-not-simplecov.json")).unwrap_err();
        assert!(err.message.contains("not a SimpleCov report"), "{err}");
    }

    #[test]
    fn resultsets_merge_commands_and_accept_bare_arrays() {
        let s = r#"{
          "RSpec": {"coverage": {"/a/x.rb": {"lines": [1, 0, null], "branches": {}}},
                    "timestamp": 1},
          "Minitest": {"coverage": {"/a/x.rb": [2, null, 0, "ignored"]}, "timestamp": 2}
        }"#;
        let report = parse_str(s).unwrap();
        assert_eq!(
            report.files["/a/x.rb"].lines().collect::<Vec<_>>(),
            [Line::Hits(3), Line::Hits(0), Line::Hits(0), Line::Ignored]
        );
    }

    #[test]
    fn trailing_nulls_keep_the_file_length() {
        let s = r#"{"meta": {}, "coverage": {"a.rb": {"lines": [null, 1, null, null]}}}"#;
        let report = parse_str(s).unwrap();
        assert_eq!(report.files["a.rb"].len(), 4);
    }

    #[test]
    fn wrong_types_are_clear_errors() {
        let wrap = |lines: &str| {
            format!(
                "{{\"meta\": {{}},\n\"coverage\": {{\"a.rb\": {{\"lines\": [null,\n{lines}]}}}}}}"
            )
        };
        let cases = [
            (
                "\"nope\"",
                "simplecov report, line 3: unexpected string value `nope` on coverage \
                 information for a.rb, line offset 1",
            ),
            (
                "true",
                "simplecov report, line 3: unexpected type boolean on coverage information \
                 for a.rb, line offset 1",
            ),
            ("-4", "negative hit count -4"),
            ("{}", "unexpected type object"),
        ];
        for (value, want) in cases {
            let err = parse_str(&wrap(value)).unwrap_err();
            assert!(err.to_string().contains(want), "{value}: {err}");
        }
        let err = parse_str(r#"{"coverage": {"a.rb": {"branches": {}}}}"#).unwrap_err();
        assert!(err.message.contains("no `lines` for a.rb"), "{err}");
        let err = parse_str(r#"{"coverage": {"a.rb": 3}}"#).unwrap_err();
        assert!(err.message.contains("`lines` for a.rb"), "{err}");
        let err = parse_str(r#"{"coverage": {}} trailing"#).unwrap_err();
        assert!(err.message.contains("trailing"), "{err}");
        let err = parse_str(r#"{"coverage": {"a.rb": {"lines": [1, 2"#).unwrap_err();
        assert!(err.message.contains("EOF"), "{err}");
    }

    #[test]
    fn too_many_lines_is_bounded() {
        let limits = Limits {
            max_line_number: 3,
            ..Limits::default()
        };
        let s = r#"{"coverage": {"a.rb": {"lines": [1, 1, 1, 1]}}}"#;
        let err = parse(s.as_bytes(), &limits).unwrap_err();
        assert!(err.message.contains("a.rb has more than 3 lines"), "{err}");
    }
}
