//! lcov tracefiles (`.info`, `.lcov`: geninfo/`lcov --capture`, coverage.py `coverage lcov`,
//! Istanbul, c8, grcov, cargo-llvm-cov, …).
//!
//! Only `SF`, `DA` and `end_of_record` matter. Other upper-case records (`TN`, `VER`, `FN*`,
//! `BR*`, `LF`, `LH`, and any future lcov 2.x record) are skipped, so reports may start with
//! `SF:` or `VER:`. A file listed twice is merged by summing hits, as `lcov --summary` does
//! (the original replaced the first record).

use std::io::BufRead;

use super::{Builder, excerpt, for_each_line, hit_count, line_number};
use crate::coverage::{FileCoverage, Format, Limits, ParseError, Report};

const FORMAT: Format = Format::Lcov;

struct Record {
    path: String,
    line: u64,
    coverage: FileCoverage,
}

pub fn parse<R: BufRead>(reader: R, limits: &Limits) -> Result<Report, ParseError> {
    let mut out = Builder::new(FORMAT, limits);
    let mut current: Option<Record> = None;
    for_each_line(reader, FORMAT, limits.max_token_bytes, |n, raw| {
        let error = |message: String| ParseError::new(FORMAT, Some(n), message);
        let line = raw.trim_ascii();
        // DA is nearly every line of a real report, so it is checked first.
        if let Some(value) = line.strip_prefix(b"DA:") {
            let Some(record) = current.as_mut() else {
                return Err(error("DA before SF".into()));
            };
            // DA:<line>,<hits>[,<checksum>]
            let comma = memchr::memchr(b',', value)
                .ok_or_else(|| error(format!("malformed DA record `{}`", excerpt(line))))?;
            let number = &value[..comma];
            let rest = &value[comma + 1..];
            let hits = memchr::memchr(b',', rest).map_or(rest, |end| &rest[..end]);
            let number = line_number(number.trim_ascii(), limits).map_err(&error)?;
            let hits = hit_count(hits.trim_ascii()).map_err(&error)?;
            record.coverage.add_hits(number, hits);
            return Ok(());
        }
        if line.is_empty() {
            return Ok(());
        }
        if line == b"end_of_record" {
            let record = current
                .take()
                .ok_or_else(|| error("end_of_record without a preceding SF".into()))?;
            return out.add_file(record.path, record.coverage, Some(record.line));
        }
        if let Some(path) = line.strip_prefix(b"SF:") {
            // A new SF closes a record that lacked end_of_record.
            if let Some(record) = current.take() {
                out.add_file(record.path, record.coverage, Some(record.line))?;
            }
            let path = std::str::from_utf8(path.trim_ascii())
                .map_err(|_| error("SF path is not UTF-8".into()))?;
            out.check_path(path, Some(n))?;
            current = Some(Record {
                path: path.to_string(),
                line: n,
                coverage: FileCoverage::new(),
            });
            return Ok(());
        }
        match line.iter().position(|&b| b == b':') {
            Some(colon) if line[..colon].iter().all(u8::is_ascii_uppercase) && colon > 0 => Ok(()),
            _ => Err(error(format!("unexpected line `{}`", excerpt(line)))),
        }
    })?;
    if let Some(record) = current.take() {
        out.add_file(record.path, record.coverage, Some(record.line))?;
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::Line;

    fn parse_str(s: &str) -> Result<Report, ParseError> {
        parse(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn original_sample_matches_the_reference_vector() {
        let sample = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/coverage/original/coverage.lcov"
        ));
        let report = parse_str(sample).unwrap();
        assert_eq!(report.files["/app/main.go"].encode_wire(), "AAAxHjEeMQ==");
    }

    #[test]
    fn duplicate_records_merge_and_lcov2_records_are_accepted() {
        let s = "VER:2.0\nSF:a.c\nFNL:0,1,3\nFNA:0,1,main\nDA:1,1\nDA:2,0\nDA:2,0\n\
                 BRDA:2,0,0,-\nLF:2\nLH:1\nend_of_record\n\r\nSF:./b.c\r\nDA:1,0,abc\r\n\
                 end_of_record\r\nSF:a.c\nDA:2,3\nDA:5,0\n";
        let report = parse_str(s).unwrap();
        assert_eq!(
            report.files["a.c"].lines().collect::<Vec<_>>(),
            [
                Line::Hits(1),
                Line::Hits(3),
                Line::Neutral,
                Line::Neutral,
                Line::Hits(0)
            ]
        );
        assert_eq!(report.files["./b.c"].get(1), Some(Line::Hits(0)));
        let t = report.totals();
        assert_eq!((t.lines_total, t.lines_covered), (4, 2));
    }

    #[test]
    fn malformed_records_name_their_line() {
        let cases = [
            ("TN:\nDA:1,1\n", "lcov report, line 2: DA before SF"),
            (
                "SF:a\nDA:0,1\n",
                "lcov report, line 2: line number 0 (lines are numbered from 1)",
            ),
            (
                "SF:a\nDA:-1,1\n",
                "lcov report, line 2: negative line number `-1`",
            ),
            (
                "SF:a\nDA:3\n",
                "lcov report, line 2: malformed DA record `DA:3`",
            ),
            (
                "SF:a\nDA:3,x\n",
                "lcov report, line 2: malformed hit count `x`",
            ),
            (
                "SF:a\nDA:3,-1\n",
                "lcov report, line 2: negative hit count `-1`",
            ),
            (
                "SF:a\n\nDA:4000000000,1\n",
                "lcov report, line 3: line number 4000000000 is beyond the limit of 2000000",
            ),
            (
                "end_of_record\n",
                "lcov report, line 1: end_of_record without a preceding SF",
            ),
            (
                "SF:a\nhello world\n",
                "lcov report, line 2: unexpected line `hello world`",
            ),
            ("SF:\n", "lcov report, line 1: empty file path"),
        ];
        for (input, want) in cases {
            assert_eq!(parse_str(input).unwrap_err().to_string(), want, "{input:?}");
        }
    }

    #[test]
    fn limits_on_files_and_total_lines_hold() {
        let limits = Limits {
            max_files: 2,
            ..Limits::default()
        };
        let s = "SF:a\nend_of_record\nSF:b\nend_of_record\nSF:a\nend_of_record\nSF:c\n";
        let err = parse(s.as_bytes(), &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lcov report, line 7: more than 2 files in one report"
        );
        let limits = Limits {
            max_total_lines: 100,
            ..Limits::default()
        };
        let s = "SF:a\nDA:60,1\nend_of_record\nSF:b\nDA:60,1\nend_of_record\n";
        let err = parse(s.as_bytes(), &limits).unwrap_err();
        assert!(err.message.contains("more than 100 source lines"), "{err}");
    }
}
