//! Go coverprofiles (`go test -coverprofile=c.out -covermode=set|count|atomic`).
//!
//! Each line is `import/path/file.go:startLine.startCol,endLine.endCol numStmt count`. As in the
//! original (which used `golang.org/x/tools/cover`), blocks with identical positions merge first
//! (OR of counts in `set` mode, sum otherwise; a differing statement count is an error). Then
//! every block marks every line it spans, columns ignored, and overlapping blocks add their
//! counts: a line is covered when any block on it ran. Keys are the import-path file names; see
//! [`crate::coverage::paths`] for mapping them through `go.mod`.
//!
//! Lines are filled with a sweep over block start/end events, so a hostile profile of many
//! long blocks costs O(blocks · log blocks + lines), not O(blocks · lines).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::num::NonZeroU32;

use super::{Builder, excerpt, for_each_line, hit_count, line_number, parse_u64};
use crate::coverage::lines::MAX_HITS;
use crate::coverage::{FileCoverage, Format, Limits, ParseError, Report};

const FORMAT: Format = Format::GoCover;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Set,
    Count,
    Atomic,
}

#[derive(Clone, Copy, Debug)]
struct Block {
    start: (u32, u32),
    end: (u32, u32),
    statements: u64,
    count: u64,
    /// Report line, for errors found when merging.
    line: u64,
}

pub fn parse<R: BufRead>(reader: R, limits: &Limits) -> Result<Report, ParseError> {
    let mut mode: Option<Mode> = None;
    let mut files: BTreeMap<String, Vec<Block>> = BTreeMap::new();
    let mut blocks_seen: u64 = 0;
    let out = Builder::new(FORMAT, limits);
    for_each_line(reader, FORMAT, limits.max_token_bytes, |n, raw| {
        let error = |message: String| ParseError::new(FORMAT, Some(n), message);
        let line = raw.trim_ascii();
        if line.is_empty() {
            return Ok(());
        }
        if let Some(value) = line.strip_prefix(b"mode:") {
            let parsed = match value.trim_ascii() {
                b"set" => Mode::Set,
                b"count" => Mode::Count,
                b"atomic" => Mode::Atomic,
                other => {
                    return Err(error(format!(
                        "unknown mode `{}` (expected set, count or atomic)",
                        excerpt(other)
                    )));
                }
            };
            // Concatenated profiles repeat the mode line; mixing modes is meaningless.
            return match mode {
                Some(m) if m != parsed => Err(error("profile mixes coverage modes".into())),
                _ => {
                    mode = Some(parsed);
                    Ok(())
                }
            };
        }
        if mode.is_none() {
            return Err(error(
                "missing `mode:` line (expected `mode: set|count|atomic` first)".into(),
            ));
        }
        let (name, block) = parse_block(line, n, limits).map_err(error)?;
        blocks_seen += 1;
        if blocks_seen > limits.max_total_lines {
            return Err(error(format!(
                "more than {} blocks in one profile",
                limits.max_total_lines
            )));
        }
        match files.get_mut(name) {
            Some(blocks) => blocks.push(block),
            None => {
                out.check_path(name, Some(n))?;
                if files.len() >= limits.max_files {
                    return Err(error(format!(
                        "more than {} files in one report",
                        limits.max_files
                    )));
                }
                files.insert(name.to_string(), vec![block]);
            }
        }
        Ok(())
    })?;
    let Some(mode) = mode else {
        return Err(ParseError::new(
            FORMAT,
            None,
            "empty profile: no `mode:` line",
        ));
    };
    let mut out = out;
    for (name, blocks) in files {
        let coverage = lines_of(blocks, mode)?;
        out.add_file(name, coverage, None)?;
    }
    Ok(out.finish())
}

fn parse_block<'a>(line: &'a [u8], n: u64, limits: &Limits) -> Result<(&'a str, Block), String> {
    let malformed = || {
        format!(
            "malformed block `{}` (expected `file.go:line.col,line.col statements count`)",
            excerpt(line)
        )
    };
    let mut fields = line.rsplitn(3, |&b| b == b' ');
    let count = fields.next().ok_or_else(malformed)?;
    let statements = fields.next().ok_or_else(malformed)?;
    let location = fields.next().ok_or_else(malformed)?;
    let colon = location
        .iter()
        .rposition(|&b| b == b':')
        .ok_or_else(malformed)?;
    let name = std::str::from_utf8(&location[..colon])
        .map_err(|_| "file name is not UTF-8".to_string())?;
    let (start, end) = split_once(&location[colon + 1..], b',').ok_or_else(malformed)?;
    let position = |p: &[u8]| -> Result<(u32, u32), String> {
        let (line, col) = split_once(p, b'.').ok_or_else(malformed)?;
        let line = line_number(line, limits)?;
        let col = parse_u64(col)
            .and_then(|c| u32::try_from(c).ok())
            .ok_or_else(|| format!("malformed column `{}`", excerpt(col)))?;
        Ok((line.get(), col))
    };
    let start = position(start)?;
    let end = position(end)?;
    if end < start {
        return Err(format!(
            "block ends at {}.{} before it starts at {}.{}",
            end.0, end.1, start.0, start.1
        ));
    }
    let statements = parse_u64(statements)
        .ok_or_else(|| format!("malformed statement count `{}`", excerpt(statements)))?;
    let count = hit_count(count)?;
    Ok((
        name,
        Block {
            start,
            end,
            statements,
            count,
            line: n,
        },
    ))
}

fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

fn lines_of(mut blocks: Vec<Block>, mode: Mode) -> Result<FileCoverage, ParseError> {
    blocks.sort_by_key(|b| (b.start, b.end));
    let mut merged: Vec<Block> = Vec::with_capacity(blocks.len());
    for block in blocks {
        match merged.last_mut() {
            Some(last) if last.start == block.start && last.end == block.end => {
                if last.statements != block.statements {
                    return Err(ParseError::new(
                        FORMAT,
                        Some(block.line),
                        format!(
                            "inconsistent statement count for the block at {}.{} \
                             ({} here, {} before)",
                            block.start.0, block.start.1, block.statements, last.statements
                        ),
                    ));
                }
                last.count = match mode {
                    Mode::Set => last.count | block.count,
                    Mode::Count | Mode::Atomic => last.count.saturating_add(block.count),
                };
            }
            _ => merged.push(block),
        }
    }
    // Sweep: +count where a block starts, -count one line after it ends.
    let mut events: Vec<(u32, i128, i64)> = Vec::with_capacity(merged.len() * 2);
    for b in &merged {
        events.push((b.start.0, i128::from(b.count), 1));
        events.push((b.end.0.saturating_add(1), -i128::from(b.count), -1));
    }
    events.sort_unstable_by_key(|e| e.0);
    let mut coverage = FileCoverage::new();
    let (mut hits, mut active) = (0i128, 0i64);
    let mut i = 0;
    while i < events.len() {
        let line = events[i].0;
        while i < events.len() && events[i].0 == line {
            hits += events[i].1;
            active += events[i].2;
            i += 1;
        }
        let Some(&(next, _, _)) = events.get(i) else {
            break;
        };
        if active > 0 {
            let value = u64::try_from(hits.max(0)).unwrap_or(MAX_HITS);
            for l in line..next {
                if let Some(l) = NonZeroU32::new(l) {
                    coverage.add_hits(l, value);
                }
            }
        }
    }
    Ok(coverage)
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
            "/tests/fixtures/coverage/original/c.out"
        ));
        let report = parse_str(sample).unwrap();
        let f = &report.files["github.com/cocov-ci/golang-sample/main.go"];
        assert_eq!(f.encode_wire(), "AAAxHjEeMQ==");
    }

    #[test]
    fn a_line_is_covered_when_any_block_on_it_ran() {
        let s = "mode: count\n\
                 m/a.go:3.10,5.2 2 0\n\
                 m/a.go:5.2,7.3 1 4\n\
                 m/a.go:9.1,9.20 1 0\n\
                 m/a.go:3.10,5.2 2 1\n";
        let report = parse_str(s).unwrap();
        let f = &report.files["m/a.go"];
        assert_eq!(
            f.lines().collect::<Vec<_>>(),
            [
                Line::Neutral,
                Line::Neutral,
                Line::Hits(1),
                Line::Hits(1),
                Line::Hits(5),
                Line::Hits(4),
                Line::Hits(4),
                Line::Neutral,
                Line::Hits(0),
            ]
        );
        let t = f.totals();
        assert_eq!((t.lines_total, t.lines_covered), (6, 5));
    }

    #[test]
    fn set_mode_ors_identical_blocks() {
        let s =
            "mode: set\nm/a.go:1.1,2.2 1 1\nm/a.go:1.1,2.2 1 1\nmode: set\nm/b.go:1.1,1.5 1 0\n";
        let report = parse_str(s).unwrap();
        assert_eq!(report.files["m/a.go"].get(1), Some(Line::Hits(1)));
        assert_eq!(report.files["m/b.go"].get(1), Some(Line::Hits(0)));
    }

    #[test]
    fn long_blocks_do_not_cost_per_block_per_line() {
        // 50,000 identical-span blocks over 100,000 lines: quadratic filling would take minutes.
        let mut s = String::from("mode: atomic\n");
        for i in 0..50_000 {
            s.push_str(&format!("m/big.go:1.{},100000.1 1 1\n", i % 1000 + 1));
        }
        let report = parse_str(&s).unwrap();
        let f = &report.files["m/big.go"];
        assert_eq!(f.len(), 100_000);
        assert_eq!(f.get(100_000), Some(Line::Hits(50_000)));
    }

    #[test]
    fn malformed_profiles_are_clear_errors() {
        let cases = [
            ("", "gocover report: empty profile: no `mode:` line"),
            ("m/a.go:1.1,2.1 1 1\n", "missing `mode:` line"),
            ("mode: fast\n", "unknown mode `fast`"),
            ("mode: set\nmode: count\n", "mixes coverage modes"),
            (
                "mode: set\nm/a.go:5.1,3.2 1 1\n",
                "block ends at 3.2 before it starts at 5.1",
            ),
            ("mode: set\nm/a.go:0.1,3.2 1 1\n", "line number 0"),
            ("mode: set\nm/a.go:1.1,3.2 1 -1\n", "negative hit count"),
            ("mode: set\nm/a.go 1 1\n", "malformed block"),
            ("mode: set\nm/a.go:1.x,3.2 1 1\n", "malformed column `x`"),
            (
                "mode: set\nm/a.go:1.1,9999999999.2 1 1\n",
                "beyond the limit",
            ),
            (
                "mode: set\nm/a.go:1.1,2.1 1 1\nm/a.go:1.1,2.1 2 1\n",
                "line 3: inconsistent statement count",
            ),
        ];
        for (input, want) in cases {
            let err = parse_str(input).unwrap_err();
            assert!(err.to_string().contains(want), "{input:?}: {err}");
        }
    }
}
