//! The lines around each issue (the original's `affected_file`), read from the commit's
//! verified archive. File content and paths are the pusher's, so they are treated as hostile:
//! entries are streamed from the archive (no link is followed, nothing is unpacked), only
//! regular files are read, each up to a size cap, and only the wanted lines are kept, each
//! cut to a length cap, so a page of issues costs bounded memory whatever the files hold.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};

use serde::Serialize;

use super::Issue;
use crate::archive::{self, ArchiveError};
use crate::storage::BlobStore;

/// Lines shown before the first and after the last line of an issue (as the original).
pub const CONTEXT_LINES: i64 = 2;
/// At most this many lines per snippet: an issue spanning a whole file shows its start.
pub const MAX_SNIPPET_LINES: i64 = 40;
/// Files larger than this are not read for snippets.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Longer lines are cut (at a character boundary) and marked.
pub const MAX_LINE_CHARS: usize = 400;

/// One line of a snippet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnippetLine {
    /// 1-based line number in the file.
    pub line: i64,
    /// The line without its end, invalid UTF-8 replaced, cut to [`MAX_LINE_CHARS`].
    pub text: String,
    /// Whether the line was cut.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// An issue's snippet and why there may be none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffectedFile {
    /// `ok`; `not_downloaded` (the commit is not archived yet); `missing` (no regular file at
    /// that path, or the lines are past its end); `too_large`; `errored` (the archive could not
    /// be read).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<SnippetLine>>,
}

impl AffectedFile {
    fn without(status: &'static str) -> AffectedFile {
        AffectedFile {
            status,
            content: None,
        }
    }
}

/// The lines `[first, last]` an issue's snippet shows.
pub fn snippet_range(line_start: i32, line_end: i32) -> (i64, i64) {
    let start = i64::from(line_start.max(1));
    let end = i64::from(line_end).max(start);
    let first = (start - CONTEXT_LINES).max(1);
    let last = (end + CONTEXT_LINES).min(first + MAX_SNIPPET_LINES - 1);
    (first, last)
}

/// The snippet of each issue, in order. `archived` says whether the commit's archive exists
/// (its ingestion completed); without it nothing is read. The archive is fetched and verified
/// once for the whole list; a failure marks every snippet `errored`, never fails the list.
pub async fn affected_files(
    storage: &dyn BlobStore,
    repository_id: i64,
    sha: &str,
    archived: bool,
    issues: &[Issue],
) -> Vec<AffectedFile> {
    if !archived {
        return vec![AffectedFile::without("not_downloaded"); issues.len()];
    }
    if issues.is_empty() {
        return Vec::new();
    }
    let mut wanted: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for issue in issues {
        wanted
            .entry(issue.file.clone())
            .or_default()
            .push(snippet_range(issue.line_start, issue.line_end));
    }
    let files = match read_lines(storage, repository_id, sha, wanted).await {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!(repository_id, sha, error = %e, "reading issue snippets");
            return vec![AffectedFile::without("errored"); issues.len()];
        }
    };
    issues
        .iter()
        .map(|issue| {
            let (first, last) = snippet_range(issue.line_start, issue.line_end);
            match files.get(&issue.file) {
                Some(FileLines::Lines(lines)) => {
                    let content: Vec<SnippetLine> =
                        lines.range(first..=last).map(|(_, l)| l.clone()).collect();
                    if content.is_empty() {
                        AffectedFile::without("missing")
                    } else {
                        AffectedFile {
                            status: "ok",
                            content: Some(content),
                        }
                    }
                }
                Some(FileLines::TooLarge) => AffectedFile::without("too_large"),
                None => AffectedFile::without("missing"),
            }
        })
        .collect()
}

enum FileLines {
    Lines(BTreeMap<i64, SnippetLine>),
    TooLarge,
}

/// Streams the archive once, keeping from each wanted regular file only the wanted lines.
async fn read_lines(
    storage: &dyn BlobStore,
    repository_id: i64,
    sha: &str,
    wanted: HashMap<String, Vec<(i64, i64)>>,
) -> Result<HashMap<String, FileLines>, ArchiveError> {
    let downloaded = archive::download(storage, repository_id, sha).await?;
    let sha = sha.to_string();
    tokio::task::spawn_blocking(move || {
        let mut found = HashMap::new();
        archive::walk_entries(downloaded.path(), &sha, |path, kind, size, reader| {
            let Some(ranges) = wanted.get(path) else {
                return Ok(true);
            };
            if !kind.is_file() {
                return Ok(true);
            }
            let lines = if size > MAX_FILE_BYTES {
                FileLines::TooLarge
            } else {
                FileLines::Lines(keep_lines(reader, ranges)?)
            };
            found.insert(path.to_string(), lines);
            Ok(found.len() < wanted.len())
        })?;
        Ok(found)
    })
    .await
    .map_err(|e| ArchiveError::Io(std::io::Error::other(e.to_string())))?
}

/// The lines of `reader` inside any of `ranges`, read up to [`MAX_FILE_BYTES`].
fn keep_lines(
    reader: &mut dyn Read,
    ranges: &[(i64, i64)],
) -> std::io::Result<BTreeMap<i64, SnippetLine>> {
    let last_wanted = ranges.iter().map(|r| r.1).max().unwrap_or(0);
    let mut out = BTreeMap::new();
    let mut reader = BufReader::new(reader.take(MAX_FILE_BYTES));
    let mut buffer = Vec::new();
    let mut number = 0i64;
    loop {
        buffer.clear();
        if reader.read_until(b'\n', &mut buffer)? == 0 {
            break;
        }
        number += 1;
        if ranges.iter().any(|(a, b)| (*a..=*b).contains(&number)) {
            out.insert(number, snippet_line(number, &buffer));
        }
        if number >= last_wanted {
            break;
        }
    }
    Ok(out)
}

/// One line as shown: its end removed, invalid UTF-8 replaced, cut to [`MAX_LINE_CHARS`].
pub fn snippet_line(number: i64, raw: &[u8]) -> SnippetLine {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let text = String::from_utf8_lossy(raw);
    let truncated = text.chars().count() > MAX_LINE_CHARS;
    let text = if truncated {
        text.chars().take(MAX_LINE_CHARS).collect()
    } else {
        text.into_owned()
    };
    SnippetLine {
        line: number,
        text,
        truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_have_context_and_a_cap() {
        assert_eq!(snippet_range(1, 1), (1, 3));
        assert_eq!(snippet_range(10, 12), (8, 14));
        assert_eq!(snippet_range(0, -5), (1, 3));
        assert_eq!(snippet_range(5, 100_000), (3, 3 + MAX_SNIPPET_LINES - 1));
    }

    #[test]
    fn only_wanted_lines_are_kept_and_long_ones_cut() {
        let long = "é".repeat(MAX_LINE_CHARS + 10);
        let text = format!("one\r\ntwo\nthree\n{long}\nfive\nsix\n");
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"\xffseven\n");
        let kept = keep_lines(&mut &bytes[..], &[(2, 4), (7, 9)]).unwrap();
        let numbers: Vec<i64> = kept.keys().copied().collect();
        assert_eq!(numbers, [2, 3, 4, 7]);
        assert_eq!(kept[&2].text, "two");
        assert!(kept[&4].truncated);
        assert_eq!(kept[&4].text.chars().count(), MAX_LINE_CHARS);
        assert_eq!(kept[&7].text, "\u{fffd}seven");
    }
}
