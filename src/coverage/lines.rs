//! The line model shared by every format, and the original Cocov wire encoding.
//!
//! A file is a dense vector of lines 1..=N, each Neutral (not executable), Ignored (excluded by the
//! tool, e.g. `# :nocov:`) or Hits(n), where Hits(0) is a missed line. Only Hits lines count
//! towards totals.
//!
//! Wire encoding (reference: reporter §1.8, API §12.3), one token per line: decimal digits for
//! n > 0 (with 0x1E between two consecutive numbers), 0x15 for a missed line, 0x1B for an ignored
//! one and 0x00 for a neutral one; standard base64 with padding around the whole byte string.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

/// The state of one source line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// Not executable (comments, blank lines, declarations).
    Neutral,
    /// Executable but excluded from coverage by the tool.
    Ignored,
    /// Executable; 0 means missed.
    Hits(u64),
}

// Lines are stored as one u32 each (a quarter of `Line`) because a large report holds
// millions of them: the top values mark the non-executable kinds and "look in `big`", where the
// rare counts that do not fit (gcov's 64-bit counters) are kept exactly.
const NEUTRAL: u32 = u32::MAX;
const IGNORED: u32 = u32::MAX - 1;
const BIG: u32 = u32::MAX - 2;
/// Largest representable hit count; sums saturate here.
pub const MAX_HITS: u64 = u64::MAX - 2;

const TOKEN_NEUTRAL: u8 = 0x00;
const TOKEN_MISSED: u8 = 0x15;
const TOKEN_IGNORED: u8 = 0x1B;
const TOKEN_SEPARATOR: u8 = 0x1E;

/// Combines two states of the same line: hits add up, and evidence that the line ran (or was
/// expected to run) wins over "ignored", which wins over "neutral".
fn combine(a: Line, b: Line) -> Line {
    match (a, b) {
        (Line::Hits(x), Line::Hits(y)) => Line::Hits(x.saturating_add(y).min(MAX_HITS)),
        (Line::Hits(x), _) | (_, Line::Hits(x)) => Line::Hits(x),
        (Line::Ignored, _) | (_, Line::Ignored) => Line::Ignored,
        _ => Line::Neutral,
    }
}

/// Coverage of one source file.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FileCoverage {
    slots: Vec<u32>,
    /// Hit counts ≥ `BIG`, by 0-based index; such slots hold `BIG`.
    big: BTreeMap<usize, u64>,
}

impl fmt::Debug for FileCoverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.lines()).finish()
    }
}

/// Line counts of a file or a whole report, as the original API computes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Executable lines (covered + missed).
    pub lines_total: u64,
    pub lines_covered: u64,
    pub lines_missed: u64,
    /// Lines the tool excluded explicitly; not part of `lines_total`.
    pub lines_ignored: u64,
}

impl Totals {
    /// Covered / total × 100, or 0 when there is nothing executable (as the original).
    pub fn percent(&self) -> f64 {
        if self.lines_total == 0 {
            0.0
        } else {
            self.lines_covered as f64 * 100.0 / self.lines_total as f64
        }
    }

    pub fn add(&mut self, other: &Totals) {
        self.lines_total += other.lines_total;
        self.lines_covered += other.lines_covered;
        self.lines_missed += other.lines_missed;
        self.lines_ignored += other.lines_ignored;
    }
}

/// Kind of a run of lines in [`FileCoverage::blocks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    Neutral,
    Covered,
    Missed,
    Ignored,
}

/// A run of consecutive lines of one kind, 1-based and inclusive (the UI's file view).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Block {
    pub kind: BlockKind,
    pub start: u32,
    pub end: u32,
}

/// Why a wire value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("line data is not valid base64: {0}")]
    Base64(String),
    #[error("unexpected byte 0x{byte:02X} at offset {offset} of the line data")]
    UnexpectedByte { byte: u8, offset: usize },
    #[error("hit count at offset {offset} of the line data is too large")]
    Overflow { offset: usize },
    #[error("line data has more than {max} lines")]
    TooManyLines { max: u32 },
}

impl FileCoverage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a file from its lines in order (line 1 first).
    pub fn from_lines<I: IntoIterator<Item = Line>>(lines: I) -> Self {
        let mut file = Self::new();
        for (index, line) in lines.into_iter().enumerate() {
            file.slots.push(NEUTRAL);
            file.store(index, line);
        }
        file
    }

    fn load(&self, index: usize) -> Line {
        match self.slots.get(index) {
            None | Some(&NEUTRAL) => Line::Neutral,
            Some(&IGNORED) => Line::Ignored,
            Some(&BIG) => Line::Hits(self.big.get(&index).copied().unwrap_or(MAX_HITS)),
            Some(&n) => Line::Hits(u64::from(n)),
        }
    }

    /// Writes slot `index`, which must exist.
    fn store(&mut self, index: usize, line: Line) {
        let slot = match line {
            Line::Neutral => NEUTRAL,
            Line::Ignored => IGNORED,
            Line::Hits(n) => match u32::try_from(n) {
                Ok(small) if small < BIG => small,
                _ => {
                    self.big.insert(index, n.min(MAX_HITS));
                    BIG
                }
            },
        };
        if self.slots[index] == BIG && slot != BIG {
            self.big.remove(&index);
        }
        self.slots[index] = slot;
    }

    #[inline]
    fn grow_to(&mut self, len: usize) {
        // Parsers mostly add the next line or one a few further: push instead of resize's
        // memset for those.
        while self.slots.len() < len && len - self.slots.len() <= 4 {
            self.slots.push(NEUTRAL);
        }
        if self.slots.len() < len {
            self.slots.resize(len, NEUTRAL);
        }
    }

    /// Number of lines held (the highest line recorded, or padded to).
    pub fn len(&self) -> u32 {
        // Parsers cap line numbers far below u32::MAX; saturate for hand-built values.
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The state of a 1-based line; lines past the end are Neutral, line 0 is None.
    pub fn get(&self, line: u32) -> Option<Line> {
        let index = usize::try_from(line.checked_sub(1)?).ok()?;
        Some(self.load(index))
    }

    /// Lines in order, line 1 first.
    pub fn lines(&self) -> impl ExactSizeIterator<Item = Line> + '_ {
        (0..self.slots.len()).map(|i| self.load(i))
    }

    /// Records `hits` executions of `line`; repeated records add up (several classes or blocks
    /// on one line), and a Neutral or Ignored line becomes executable.
    #[inline]
    pub fn add_hits(&mut self, line: NonZeroU32, hits: u64) {
        let index = line.get() as usize - 1;
        self.grow_to(index + 1);
        // The parsers' hot path: small counts on a fresh or small slot, no map involved.
        let current = self.slots[index];
        if let Ok(hits) = u32::try_from(hits) {
            let sum = match current {
                NEUTRAL | IGNORED => Some(hits),
                BIG => None,
                n => n.checked_add(hits),
            };
            if let Some(sum) = sum.filter(|s| *s < BIG) {
                self.slots[index] = sum;
                return;
            }
        }
        let merged = combine(self.load(index), Line::Hits(hits));
        self.store(index, merged);
    }

    /// Marks `line` as ignored unless it already has hits.
    pub fn set_ignored(&mut self, line: NonZeroU32) {
        let index = line.get() as usize - 1;
        self.grow_to(index + 1);
        let merged = combine(self.load(index), Line::Ignored);
        self.store(index, merged);
    }

    /// Extends the file with Neutral lines up to `lines` lines. The original did this for JaCoCo
    /// with the source's newline count, so files without executable code still show up.
    pub fn pad_to(&mut self, lines: u32) {
        self.grow_to(lines as usize);
    }

    /// Releases spare capacity left by growing line by line.
    pub fn shrink_to_fit(&mut self) {
        self.slots.shrink_to_fit();
    }

    /// Adds another coverage of the same file line by line (hits summed).
    pub fn merge(&mut self, other: &FileCoverage) {
        self.grow_to(other.slots.len());
        for index in 0..other.slots.len() {
            let merged = combine(self.load(index), other.load(index));
            self.store(index, merged);
        }
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for &slot in &self.slots {
            match slot {
                NEUTRAL => {}
                IGNORED => t.lines_ignored += 1,
                0 => {
                    t.lines_total += 1;
                    t.lines_missed += 1;
                }
                _ => {
                    t.lines_total += 1;
                    t.lines_covered += 1;
                }
            }
        }
        t
    }

    /// Runs of equal kinds, 1-based inclusive; an empty file gives no blocks (the original
    /// returned a bogus `{kind: null, start: 1, end: 1}`).
    pub fn blocks(&self) -> Vec<Block> {
        let mut blocks: Vec<Block> = Vec::new();
        for (i, &slot) in self.slots.iter().enumerate() {
            let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let kind = match slot {
                NEUTRAL => BlockKind::Neutral,
                IGNORED => BlockKind::Ignored,
                0 => BlockKind::Missed,
                _ => BlockKind::Covered,
            };
            match blocks.last_mut() {
                Some(last) if last.kind == kind => last.end = line,
                _ => blocks.push(Block {
                    kind,
                    start: line,
                    end: line,
                }),
            }
        }
        blocks
    }

    /// The token bytes, before base64 (what the original API stored as `raw_data`).
    pub fn to_raw_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.slots.len() * 2);
        let mut previous_numeric = false;
        for line in self.lines() {
            let numeric = match line {
                Line::Neutral => {
                    out.push(TOKEN_NEUTRAL);
                    false
                }
                Line::Ignored => {
                    out.push(TOKEN_IGNORED);
                    false
                }
                Line::Hits(0) => {
                    out.push(TOKEN_MISSED);
                    false
                }
                Line::Hits(n) => {
                    if previous_numeric {
                        out.push(TOKEN_SEPARATOR);
                    }
                    // Writing to a Vec cannot fail.
                    let _ = write!(out, "{n}");
                    true
                }
            };
            previous_numeric = numeric;
        }
        out
    }

    /// Parses token bytes. 0x1E only ends a number, wherever it appears, as in the original API;
    /// any byte that is not a token is an error naming its offset.
    pub fn from_raw_bytes(raw: &[u8]) -> Result<Self, WireError> {
        Self::from_raw_bytes_within(raw, u32::MAX)
    }

    /// [`Self::from_raw_bytes`] refusing more than `max_lines` lines, so an upload is held to
    /// the same line limit as a parsed report before the memory is spent.
    pub fn from_raw_bytes_within(raw: &[u8], max_lines: u32) -> Result<Self, WireError> {
        let mut file = FileCoverage::new();
        let mut number: Option<u64> = None;
        let push = |file: &mut FileCoverage, line: Line| -> Result<(), WireError> {
            if file.slots.len() >= max_lines as usize {
                return Err(WireError::TooManyLines { max: max_lines });
            }
            file.slots.push(NEUTRAL);
            file.store(file.slots.len() - 1, line);
            Ok(())
        };
        for (offset, &byte) in raw.iter().enumerate() {
            if byte.is_ascii_digit() {
                let digit = u64::from(byte - b'0');
                let value = number
                    .unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(digit))
                    .filter(|v| *v <= MAX_HITS)
                    .ok_or(WireError::Overflow { offset })?;
                number = Some(value);
                continue;
            }
            if let Some(n) = number.take() {
                push(&mut file, Line::Hits(n))?;
            }
            match byte {
                TOKEN_SEPARATOR => {}
                TOKEN_NEUTRAL => push(&mut file, Line::Neutral)?,
                TOKEN_IGNORED => push(&mut file, Line::Ignored)?,
                TOKEN_MISSED => push(&mut file, Line::Hits(0))?,
                _ => return Err(WireError::UnexpectedByte { byte, offset }),
            }
        }
        if let Some(n) = number {
            push(&mut file, Line::Hits(n))?;
        }
        Ok(file)
    }

    /// The value sent in `POST /v1/reports` `data`: base64 of [`Self::to_raw_bytes`].
    pub fn encode_wire(&self) -> String {
        STANDARD.encode(self.to_raw_bytes())
    }

    /// Decodes a `data` value: base64 once, then tokens (the original decoded a second time when
    /// the bytes held no control byte, which lost one-line files).
    pub fn decode_wire(value: &str) -> Result<Self, WireError> {
        Self::decode_wire_within(value, u32::MAX)
    }

    /// [`Self::decode_wire`] with at most `max_lines` lines.
    pub fn decode_wire_within(value: &str, max_lines: u32) -> Result<Self, WireError> {
        let raw = STANDARD
            .decode(value.trim())
            .map_err(|e| WireError::Base64(e.to_string()))?;
        Self::from_raw_bytes_within(&raw, max_lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn original_unit_vector_encodes_and_decodes() {
        // Reporter's CoverageSet test: {1: 5+5, 2: 20, 3: gap, 4: ignored, 5: 0}.
        let mut f = FileCoverage::new();
        f.add_hits(nz(1), 5);
        f.add_hits(nz(1), 5);
        f.add_hits(nz(2), 20);
        f.set_ignored(nz(4));
        f.add_hits(nz(5), 0);
        assert_eq!(
            f.to_raw_bytes(),
            [0x31, 0x30, 0x1E, 0x32, 0x30, 0x00, 0x1B, 0x15]
        );
        assert_eq!(f.encode_wire(), "MTAeMjAAGxU=");
        let back = FileCoverage::decode_wire("MTAeMjAAGxU=").unwrap();
        assert_eq!(back, f);
        let t = back.totals();
        assert_eq!(
            (
                t.lines_total,
                t.lines_covered,
                t.lines_missed,
                t.lines_ignored
            ),
            (3, 2, 1, 1)
        );
        assert!((t.percent() - 66.666_666).abs() < 1e-3);
    }

    #[test]
    fn single_covered_line_is_decoded_once() {
        // "NQ==" is base64("5"); the original API decoded it twice and lost it.
        let f = FileCoverage::decode_wire("NQ==").unwrap();
        assert_eq!(f.lines().collect::<Vec<_>>(), [Line::Hits(5)]);
    }

    #[test]
    fn unexpected_bytes_name_their_offset() {
        let err = FileCoverage::from_raw_bytes(b"1\x00\x1B\x0A").unwrap_err();
        assert_eq!(
            err,
            WireError::UnexpectedByte {
                byte: 0x0A,
                offset: 3
            }
        );
        assert_eq!(
            err.to_string(),
            "unexpected byte 0x0A at offset 3 of the line data"
        );
        assert!(matches!(
            FileCoverage::decode_wire("not base64!"),
            Err(WireError::Base64(_))
        ));
        let huge = b"99999999999999999999999";
        assert!(matches!(
            FileCoverage::from_raw_bytes(huge),
            Err(WireError::Overflow { .. })
        ));
    }

    #[test]
    fn separator_only_ends_numbers() {
        let f = FileCoverage::from_raw_bytes(b"\x1E3\x1E\x1E4\x1E\x15").unwrap();
        assert_eq!(
            f.lines().collect::<Vec<_>>(),
            [Line::Hits(3), Line::Hits(4), Line::Hits(0)]
        );
    }

    #[test]
    fn blocks_group_runs_and_empty_is_empty() {
        assert!(FileCoverage::new().blocks().is_empty());
        let f = FileCoverage::from_lines([
            Line::Neutral,
            Line::Neutral,
            Line::Hits(1),
            Line::Hits(7),
            Line::Hits(0),
            Line::Ignored,
        ]);
        let blocks = f.blocks();
        assert_eq!(
            blocks,
            [
                Block {
                    kind: BlockKind::Neutral,
                    start: 1,
                    end: 2
                },
                Block {
                    kind: BlockKind::Covered,
                    start: 3,
                    end: 4
                },
                Block {
                    kind: BlockKind::Missed,
                    start: 5,
                    end: 5
                },
                Block {
                    kind: BlockKind::Ignored,
                    start: 6,
                    end: 6
                },
            ]
        );
        let json = serde_json::to_string(&blocks[1]).unwrap();
        assert_eq!(json, r#"{"kind":"covered","start":3,"end":4}"#);
    }

    #[test]
    fn merge_sums_hits_and_keeps_executable_lines() {
        let mut a = FileCoverage::from_lines([Line::Hits(1), Line::Neutral, Line::Ignored]);
        let b =
            FileCoverage::from_lines([Line::Hits(2), Line::Hits(0), Line::Neutral, Line::Hits(0)]);
        a.merge(&b);
        assert_eq!(
            a.lines().collect::<Vec<_>>(),
            [Line::Hits(3), Line::Hits(0), Line::Ignored, Line::Hits(0)]
        );
        let mut c = FileCoverage::from_lines([Line::Hits(MAX_HITS)]);
        c.add_hits(nz(1), 10);
        assert_eq!(c.get(1), Some(Line::Hits(MAX_HITS)));
        assert_eq!(c.get(0), None);
        assert_eq!(c.get(99), Some(Line::Neutral));
    }

    #[test]
    fn counts_beyond_u32_stay_exact() {
        let big = u64::from(u32::MAX) + 10;
        let mut f = FileCoverage::new();
        f.add_hits(nz(2), big);
        f.add_hits(nz(2), 5);
        f.add_hits(nz(3), u64::from(u32::MAX - 3));
        f.add_hits(nz(3), 1);
        assert_eq!(f.get(2), Some(Line::Hits(big + 5)));
        assert_eq!(f.get(3), Some(Line::Hits(u64::from(u32::MAX - 2))));
        let back = FileCoverage::decode_wire(&f.encode_wire()).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.totals().lines_covered, 2);
        let mut g = FileCoverage::from_lines([Line::Neutral, Line::Hits(u64::MAX)]);
        g.merge(&f);
        assert_eq!(g.get(2), Some(Line::Hits(MAX_HITS)));
        assert_eq!(g.get(3), f.get(3));
    }

    #[test]
    fn padding_keeps_trailing_neutral_lines_on_the_wire() {
        let mut f = FileCoverage::new();
        f.pad_to(6);
        assert_eq!(f.encode_wire(), "AAAAAAAA");
        assert_eq!(FileCoverage::decode_wire("AAAAAAAA").unwrap().len(), 6);
        assert_eq!(f.totals(), Totals::default());
        assert_eq!(f.totals().percent(), 0.0);
    }
}
