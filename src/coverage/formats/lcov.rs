//! lcov tracefiles (`.info`, `.lcov`: geninfo/`lcov --capture`, coverage.py `coverage lcov`,
//! Istanbul, c8, grcov, cargo-llvm-cov, …).
//!
//! Only `SF`, `DA` and `end_of_record` matter. Other upper-case records (`TN`, `VER`, `FN*`,
//! `BR*`, `LF`, `LH`, and any future lcov 2.x record) are skipped, so reports may start with
//! `SF:` or `VER:`. A file listed twice is merged by summing hits, as `lcov --summary` does
//! (the original replaced the first record).

use std::io::BufRead;
use std::num::NonZeroU32;

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
        // DA is nearly every line of a real report: a well-formed one is read in one pass.
        if let (Some(record), Some((number, hits))) = (current.as_mut(), fast_da(raw))
            && number <= limits.max_line_number
            && let Some(number) = NonZeroU32::new(number)
        {
            record.coverage.add_hits(number, hits);
            return Ok(());
        }
        let line = raw.trim_ascii();
        // Anything else starting with DA: gets the careful parse and its precise message.
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

/// `DA:<digits>,<digits>` optionally followed by `,<checksum>`, with no spaces: the shape every
/// tool writes. Anything else returns None and takes the careful path.
#[inline]
fn fast_da(line: &[u8]) -> Option<(u32, u64)> {
    let rest = line.strip_prefix(b"DA:")?;
    let mut i = 0;
    let mut number: u32 = 0;
    while let Some(&b) = rest.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        // Nine digits cannot overflow a u32; longer numbers take the careful path.
        if i == 9 {
            return None;
        }
        number = number * 10 + u32::from(d);
        i += 1;
    }
    if i == 0 || rest.get(i) != Some(&b',') {
        return None;
    }
    let start = i + 1;
    let mut j = start;
    let mut hits: u64 = 0;
    while let Some(&b) = rest.get(j) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if j - start == 18 {
            return None;
        }
        hits = hits * 10 + u64::from(d);
        j += 1;
    }
    match rest.get(j) {
        _ if j == start => None,
        None | Some(b',') => Some((number, hits)),
        Some(_) => None,
    }
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
    fn fast_da_accepts_only_the_plain_shape() {
        assert_eq!(fast_da(b"DA:12,3"), Some((12, 3)));
        assert_eq!(fast_da(b"DA:12,0,Xy+/=="), Some((12, 0)));
        assert_eq!(
            fast_da(b"DA:123456789,18446744073709551"),
            Some((123456789, 18446744073709551))
        );
        for slow in [
            &b"DA:1234567890,1"[..],
            b"DA:1,1234567890123456789",
            b"DA: 1,1",
            b"DA:1,-1",
            b"DA:-1,1",
            b"DA:1,",
            b"DA:,1",
            b"DA:1",
            b"DA:1,1 ",
            b"DA:1,1\r",
            b"FN:1,1",
        ] {
            assert_eq!(fast_da(slow), None, "{}", String::from_utf8_lossy(slow));
        }
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
