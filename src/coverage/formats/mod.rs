//! One streaming parser per format, and what they share: the report builder that enforces
//! [`Limits`], number parsing with clear messages, a bounded line splitter for the text formats
//! and the XML plumbing (line tracking, entity policy) for the XML ones.

pub mod cobertura;
pub mod gocover;
pub mod jacoco;
pub mod lcov;
pub mod simplecov;

mod xml;

use std::io::BufRead;
use std::num::NonZeroU32;

use super::{FileCoverage, Format, Limits, ParseError, Report};

/// Parses `reader` as `format`.
pub fn parse<R: BufRead>(format: Format, reader: R, limits: &Limits) -> Result<Report, ParseError> {
    match format {
        Format::Cobertura => cobertura::parse(reader, limits),
        Format::Jacoco => jacoco::parse(reader, limits),
        Format::Lcov => lcov::parse(reader, limits),
        Format::GoCover => gocover::parse(reader, limits),
        Format::SimpleCov => simplecov::parse(reader, limits),
    }
}

/// Collects finished files into a report, merging repeated paths and enforcing the limits on
/// files, path length and total lines.
pub(crate) struct Builder<'l> {
    report: Report,
    limits: &'l Limits,
    total_lines: u64,
}

impl<'l> Builder<'l> {
    pub(crate) fn new(format: Format, limits: &'l Limits) -> Self {
        Self {
            report: Report::new(format),
            limits,
            total_lines: 0,
        }
    }

    pub(crate) fn limits(&self) -> &'l Limits {
        self.limits
    }

    pub(crate) fn report_mut(&mut self) -> &mut Report {
        &mut self.report
    }

    fn error(&self, line: Option<u64>, message: String) -> ParseError {
        ParseError::new(self.report.format, line, message)
    }

    /// Checks a path before any work is spent on its lines.
    pub(crate) fn check_path(&self, path: &str, line: Option<u64>) -> Result<(), ParseError> {
        if path.is_empty() {
            return Err(self.error(line, "empty file path".into()));
        }
        if path.len() > self.limits.max_path_len {
            return Err(self.error(
                line,
                format!(
                    "file path of {} bytes is longer than the limit of {}",
                    path.len(),
                    self.limits.max_path_len
                ),
            ));
        }
        Ok(())
    }

    /// Adds a file's coverage, merged (hits summed) with what the report already had for it.
    pub(crate) fn add_file(
        &mut self,
        path: String,
        file: FileCoverage,
        line: Option<u64>,
    ) -> Result<(), ParseError> {
        self.check_path(&path, line)?;
        let mut file = file;
        file.shrink_to_fit();
        let added = u64::from(file.len());
        if let Some(existing) = self.report.files.get_mut(&path) {
            let before = u64::from(existing.len());
            existing.merge(&file);
            let grown = u64::from(existing.len()) - before;
            self.total_lines += grown;
            self.charge(0, grown, line)?;
        } else {
            if self.report.files.len() >= self.limits.max_files {
                return Err(self.error(
                    line,
                    format!("more than {} files in one report", self.limits.max_files),
                ));
            }
            self.charge(path.len(), added, line)?;
            self.report.files.insert(path, file);
            self.total_lines += added;
        }
        if self.total_lines > self.limits.max_total_lines {
            return Err(self.error(
                line,
                format!(
                    "more than {} source lines in one report",
                    self.limits.max_total_lines
                ),
            ));
        }
        Ok(())
    }

    /// Charges what a file keeps to the upload budget; a refusal ends the parse (the caller
    /// reads the reason from the meter).
    fn charge(&self, path_len: usize, lines: u64, line: Option<u64>) -> Result<(), ParseError> {
        self.limits
            .meter
            .charge_file(path_len, lines)
            .map_err(|refused| self.error(line, refused.to_string()))
    }

    pub(crate) fn finish(self) -> Report {
        self.report
    }
}

/// A short, printable excerpt of untrusted input for error messages.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    let mut out: String = text.chars().filter(|c| !c.is_control()).collect();
    if bytes.len() > MAX {
        out.push('…');
    }
    out
}

/// Strict unsigned decimal: digits only, no sign, no spaces, no overflow.
#[inline]
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    // Up to 19 digits cannot overflow a u64, so the common case needs no checked arithmetic.
    if s.len() <= 19 {
        let mut value: u64 = 0;
        for &b in s {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            value = value * 10 + u64::from(digit);
        }
        return Some(value);
    }
    let mut value: u64 = 0;
    for &b in s {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    Some(value)
}

/// A 1-based line number within `limits.max_line_number`.
#[inline]
pub(crate) fn line_number(s: &[u8], limits: &Limits) -> Result<NonZeroU32, String> {
    if s.first() == Some(&b'-') && parse_u64(&s[1..]).is_some() {
        return Err(format!("negative line number `{}`", excerpt(s)));
    }
    let n = parse_u64(s).ok_or_else(|| format!("malformed line number `{}`", excerpt(s)))?;
    if n > u64::from(limits.max_line_number) {
        return Err(format!(
            "line number {n} is beyond the limit of {}",
            limits.max_line_number
        ));
    }
    u32::try_from(n)
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(|| "line number 0 (lines are numbered from 1)".to_string())
}

/// A non-negative hit count.
#[inline]
pub(crate) fn hit_count(s: &[u8]) -> Result<u64, String> {
    if s.first() == Some(&b'-') && parse_u64(&s[1..]).is_some() {
        return Err(format!("negative hit count `{}`", excerpt(s)));
    }
    parse_u64(s).ok_or_else(|| format!("malformed hit count `{}`", excerpt(s)))
}

/// Calls `f(line_number, line)` for each line (without `\n` or `\r\n`), borrowing from the
/// reader's buffer and copying only lines that straddle two buffer fills. A line longer than
/// `max_len` is an error, so memory stays bounded whatever the input.
pub(crate) fn for_each_line<R, F>(
    mut reader: R,
    format: Format,
    max_len: usize,
    mut f: F,
) -> Result<(), ParseError>
where
    R: BufRead,
    F: FnMut(u64, &[u8]) -> Result<(), ParseError>,
{
    let too_long = |n: u64| {
        ParseError::new(
            format,
            Some(n),
            format!("line is longer than {max_len} bytes"),
        )
    };
    let mut carry: Vec<u8> = Vec::new();
    let mut number: u64 = 0;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ParseError::new(
                    format,
                    Some(number + 1),
                    format!("could not read the report: {e}"),
                ));
            }
        };
        let filled = buf.len();
        if filled == 0 {
            if !carry.is_empty() {
                f(number + 1, trim_cr(&carry))?;
            }
            return Ok(());
        }
        let mut rest = buf;
        if !carry.is_empty() {
            let Some(end) = find_newline(rest) else {
                carry.extend_from_slice(rest);
                if carry.len() > max_len {
                    return Err(too_long(number + 1));
                }
                reader.consume(filled);
                continue;
            };
            carry.extend_from_slice(&rest[..end]);
            number += 1;
            if carry.len() > max_len {
                return Err(too_long(number));
            }
            f(number, trim_cr(&carry))?;
            carry.clear();
            rest = &rest[end + 1..];
        }
        while let Some(end) = find_newline(rest) {
            number += 1;
            if end > max_len {
                return Err(too_long(number));
            }
            f(number, trim_cr(&rest[..end]))?;
            rest = &rest[end + 1..];
        }
        if rest.len() > max_len {
            return Err(too_long(number + 1));
        }
        carry.extend_from_slice(rest);
        reader.consume(filled);
    }
}

/// Position of the next `\n`. Report lines are short, so a plain scan of the first bytes
/// usually finds it before memchr's setup would pay off.
#[inline]
fn find_newline(s: &[u8]) -> Option<usize> {
    let head = s.len().min(24);
    if let Some(i) = s[..head].iter().position(|&b| b == b'\n') {
        return Some(i);
    }
    memchr::memchr(b'\n', &s[head..]).map(|i| i + head)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn numbers_are_strict_and_explained() {
        let l = Limits::default();
        assert_eq!(line_number(b"12", &l).unwrap().get(), 12);
        assert_eq!(
            line_number(b"0", &l).unwrap_err(),
            "line number 0 (lines are numbered from 1)"
        );
        assert_eq!(
            line_number(b"-3", &l).unwrap_err(),
            "negative line number `-3`"
        );
        assert_eq!(
            line_number(b"1e3", &l).unwrap_err(),
            "malformed line number `1e3`"
        );
        assert_eq!(
            line_number(b"4000000000", &l).unwrap_err(),
            "line number 4000000000 is beyond the limit of 2000000"
        );
        assert!(line_number(b"", &l).is_err());
        assert_eq!(hit_count(b"18446744073709551615").unwrap(), u64::MAX);
        assert!(hit_count(b"18446744073709551616").is_err());
        assert_eq!(hit_count(b"-1").unwrap_err(), "negative hit count `-1`");
        assert_eq!(hit_count(b" 1").unwrap_err(), "malformed hit count ` 1`");
    }

    fn lines_of(input: &[u8], capacity: usize, max: usize) -> Result<Vec<(u64, String)>, String> {
        let mut out = Vec::new();
        let reader = BufReader::with_capacity(capacity, input);
        for_each_line(reader, Format::Lcov, max, |n, l| {
            out.push((n, String::from_utf8_lossy(l).into_owned()));
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn lines_straddling_buffer_fills_are_whole() {
        // A 3-byte buffer splits almost every line across fills.
        let got = lines_of(b"a\nbcdefg\r\n\nhij", 3, 100).unwrap();
        let want: Vec<(u64, String)> = [(1, "a"), (2, "bcdefg"), (3, ""), (4, "hij")]
            .into_iter()
            .map(|(n, s)| (n, s.to_string()))
            .collect();
        assert_eq!(got, want);
        // The reference's line-reader vector: the last line has no newline.
        let got = lines_of(b"a\nb\nc\nd\ne\nf", 8192, 100).unwrap();
        assert_eq!(got.len(), 6);
        assert_eq!(got[5].1, "f");
    }

    #[test]
    fn overlong_lines_are_rejected_in_any_buffer_position() {
        for capacity in [2, 5, 8192] {
            let err = lines_of(b"ok\n0123456789abcdef\nok\n", capacity, 8).unwrap_err();
            assert_eq!(err, "lcov report, line 2: line is longer than 8 bytes");
        }
    }
}
