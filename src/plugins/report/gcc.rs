//! Compiler-style lines, the lowest common denominator of linters (yamllint's `parsable`,
//! cppcheck and bandit templates, `gcc`-style output of many tools):
//!
//! ```text
//! path:line[:column]: [severity] message [rule]      yamllint: `[error] … (rule)`
//! path:line[:column]: severity: message [rule]       cppcheck, bandit templates
//! ```
//!
//! Lines that do not have this shape (banners, code excerpts, summaries) are skipped.

use super::Finding;

pub fn parse(report: &[u8]) -> Vec<Finding> {
    String::from_utf8_lossy(report)
        .lines()
        .filter_map(line)
        .collect()
}

fn line(text: &str) -> Option<Finding> {
    let (file, rest) = text.split_once(':')?;
    let (line_no, rest) = rest.split_once(':')?;
    let line_no: i64 = line_no.trim().parse().ok()?;
    // An optional column.
    let rest = match rest.split_once(':') {
        Some((column, after)) if column.trim().parse::<i64>().is_ok() => after,
        _ => rest,
    };
    let rest = rest.trim();
    let (severity, rest) = severity(rest);
    let (message, rule) = rule(rest);
    if file.is_empty() || message.is_empty() {
        return None;
    }
    Some(Finding {
        file: file.to_string(),
        line_start: line_no,
        line_end: line_no,
        message: message.to_string(),
        kind: None,
        rule: rule.map(str::to_string),
        severity: severity.map(str::to_ascii_lowercase),
        uid: None,
    })
}

/// `[error] rest` or `error: rest`.
fn severity(text: &str) -> (Option<&str>, &str) {
    if let Some(inner) = text.strip_prefix('[')
        && let Some((sev, rest)) = inner.split_once(']')
        && is_word(sev)
    {
        return (Some(sev), rest.trim_start());
    }
    if let Some((sev, rest)) = text.split_once(':')
        && is_word(sev)
    {
        return (Some(sev), rest.trim_start());
    }
    (None, text)
}

/// `message [rule]` or `message (rule)` at the end of the line.
fn rule(text: &str) -> (&str, Option<&str>) {
    for (open, close) in [('[', ']'), ('(', ')')] {
        if let Some(body) = text.strip_suffix(close)
            && let Some(at) = body.rfind(open)
        {
            let rule = &body[at + 1..];
            if !rule.is_empty() && !rule.contains(char::is_whitespace) {
                return (body[..at].trim_end(), Some(rule));
            }
        }
    }
    (text, None)
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 && s.chars().all(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yamllint_cppcheck_and_bandit_lines() {
        let report = b"./x.yaml:2:4: [error] too many spaces after colon (colons)\n\
            m.c:1:23: error: Array 'a[2]' accessed at index 5, which is out of bounds. [arrayIndexOutOfBounds]\n\
            a.py:2:11: LOW: Possible hardcoded password: 'hunter2' [B105]\n\
            Checking m.c ...\n\
            nocol.txt:7: just a message\n";
        let f = parse(report);
        assert_eq!(f.len(), 4, "{f:#?}");
        assert_eq!(f[0].file, "./x.yaml");
        assert_eq!(f[0].line_start, 2);
        assert_eq!(f[0].severity.as_deref(), Some("error"));
        assert_eq!(f[0].rule.as_deref(), Some("colons"));
        assert_eq!(f[0].message, "too many spaces after colon");
        assert_eq!(f[1].rule.as_deref(), Some("arrayIndexOutOfBounds"));
        assert_eq!(
            f[1].message,
            "Array 'a[2]' accessed at index 5, which is out of bounds."
        );
        assert_eq!(f[2].severity.as_deref(), Some("low"));
        assert_eq!(f[2].message, "Possible hardcoded password: 'hunter2'");
        assert_eq!((f[3].line_start, f[3].severity.as_deref()), (7, None));
    }
}
