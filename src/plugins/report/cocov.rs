//! The original plugin contract's output file: JSON issue objects each followed by a NUL byte
//! (reference §3.4). Unlike the original, every record is validated here, so a bad record fails
//! the check with its number instead of leaving it stuck.

use serde::Deserialize;

use super::{Finding, ReportError};
use crate::issues::IssueKind;

#[derive(Deserialize)]
struct Record {
    kind: Option<String>,
    file: Option<String>,
    line_start: Option<i64>,
    line_end: Option<i64>,
    message: Option<String>,
    uid: Option<String>,
}

pub fn parse(report: &[u8]) -> Result<Vec<Finding>, ReportError> {
    if report.is_empty() {
        return Ok(Vec::new());
    }
    // One trailing NUL ends the last record; a final record without one is accepted too.
    let body = report.strip_suffix(b"\0").unwrap_or(report);
    body.split(|b| *b == 0)
        .enumerate()
        .map(|(i, piece)| record(i + 1, piece))
        .collect()
}

fn record(n: usize, piece: &[u8]) -> Result<Finding, ReportError> {
    let bad = |why: String| ReportError(format!("output record {n}: {why}"));
    if piece.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("empty record (unexpected end of JSON input)".into()));
    }
    let r: Record = serde_json::from_slice(piece).map_err(|e| bad(e.to_string()))?;
    let kind = r.kind.unwrap_or_default();
    let kind = IssueKind::parse(&kind).ok_or_else(|| {
        bad(format!(
            "unknown kind `{kind}` (expected one of style, performance, security, bug, \
             complexity, duplication, convention, quality)"
        ))
    })?;
    let file = r.file.filter(|f| !f.trim().is_empty());
    let file = file.ok_or_else(|| bad("`file` is missing or blank".into()))?;
    let message = r.message.filter(|m| !m.trim().is_empty());
    let message = message.ok_or_else(|| bad("`message` is missing or blank".into()))?;
    let line_start = r
        .line_start
        .filter(|l| *l >= 1)
        .ok_or_else(|| bad("`line_start` must be an integer of at least 1".into()))?;
    Ok(Finding {
        file,
        line_start,
        line_end: r.line_end.unwrap_or(line_start),
        message,
        kind: Some(kind),
        rule: None,
        severity: None,
        uid: r.uid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str =
        r#"{"kind":"bug","file":"f","line_start":1,"line_end":1,"message":"foo","uid":"3f8f"}"#;

    #[test]
    fn records_with_and_without_final_nul() {
        assert!(parse(b"").unwrap().is_empty());
        let two = format!("{ONE}\0{ONE}\n\0");
        assert_eq!(parse(two.as_bytes()).unwrap().len(), 2);
        let last_unterminated = format!("{ONE}\0{ONE}");
        assert_eq!(parse(last_unterminated.as_bytes()).unwrap().len(), 2);
        let f = &parse(format!("{ONE}\0").as_bytes()).unwrap()[0];
        assert_eq!(f.kind, Some(IssueKind::Bug));
        assert_eq!(f.uid.as_deref(), Some("3f8f"));
    }

    #[test]
    fn empty_pieces_and_bad_records_fail_with_their_number() {
        for bad in [
            format!("\0{ONE}\0"),
            format!("{ONE}\0\0{ONE}\0"),
            format!("{ONE}\0\0"),
        ] {
            let e = parse(bad.as_bytes()).unwrap_err().0;
            assert!(e.contains("empty record"), "{e}");
        }
        let e = parse(b"null\0").unwrap_err().0;
        assert!(e.contains("record 1"), "{e}");
        let e = parse(format!("{ONE}\0{}", ONE.replace("bug", "nope")).as_bytes())
            .unwrap_err()
            .0;
        assert!(e.contains("record 2") && e.contains("nope"), "{e}");
        let e = parse(
            ONE.replace("\"line_start\":1", "\"line_start\":\"1\"")
                .as_bytes(),
        )
        .unwrap_err()
        .0;
        assert!(e.contains("record 1"), "{e}");
    }
}
