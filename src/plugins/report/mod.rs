//! Reading a plugin's report into findings. Each format has its own reader; all of them are
//! strict about structure (a broken report fails the check with the reason) and lenient about
//! content the original tolerated (unknown keys, whitespace around records).

mod checkstyle;
mod cocov;
mod gcc;
mod sarif;

use super::{OutputFormat, PluginDefinition};
use crate::issues::{IssueKind, NewIssue};

/// One finding as the tool reported it, before kinds and uids are settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line_start: i64,
    pub line_end: i64,
    pub message: String,
    /// Set by `cocov`-format plugins; other formats get theirs from the definition's `kinds`.
    pub kind: Option<IssueKind>,
    pub rule: Option<String>,
    pub severity: Option<String>,
    /// Set by `cocov`-format plugins that compute their own.
    pub uid: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ReportError(pub String);

/// Parses a report and turns its findings into issues for `definition`. `workdir` is the
/// sandbox path of the source tree, stripped from absolute paths in the report.
pub fn read(
    definition: &PluginDefinition,
    report: &[u8],
    workdir: &str,
) -> Result<Vec<NewIssue>, ReportError> {
    let findings = match definition.format {
        OutputFormat::Cocov => cocov::parse(report)?,
        OutputFormat::Sarif => sarif::parse(report)?,
        OutputFormat::Checkstyle => checkstyle::parse(report)?,
        OutputFormat::Gcc => gcc::parse(report),
    };
    Ok(findings
        .into_iter()
        .filter_map(|f| to_issue(definition, f, workdir))
        .collect())
}

fn to_issue(definition: &PluginDefinition, f: Finding, workdir: &str) -> Option<NewIssue> {
    let file = relative_path(&f.file, workdir)?;
    let kind = f
        .kind
        .unwrap_or_else(|| definition.kind_for(f.rule.as_deref(), f.severity.as_deref()));
    let line_start = f.line_start.max(1);
    let line_end = f.line_end.max(line_start);
    let message = match (&f.rule, definition.format) {
        // Tool reports name the rule separately; keep it visible in the message.
        (Some(rule), OutputFormat::Sarif | OutputFormat::Checkstyle | OutputFormat::Gcc)
            if !f.message.contains(rule.as_str()) =>
        {
            format!("{} ({rule})", f.message)
        }
        _ => f.message,
    };
    Some(NewIssue {
        kind,
        file,
        line_start,
        line_end,
        message,
        uid: f.uid.filter(|u| !u.trim().is_empty()),
    })
}

/// A repository-relative path, or None for a path outside the tree (which cannot be an issue
/// of this commit).
pub fn relative_path(path: &str, workdir: &str) -> Option<String> {
    let path = path.strip_prefix("file://").unwrap_or(path);
    let workdir = workdir.trim_end_matches('/');
    let path = match path.strip_prefix(workdir) {
        Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/'),
        // Absolute, but not below the work directory.
        _ if path.starts_with('/') => return None,
        _ => path,
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::relative_path;

    #[test]
    fn paths_become_repository_relative() {
        let w = "/work/abc";
        assert_eq!(relative_path("./a/b.sh", w).as_deref(), Some("a/b.sh"));
        assert_eq!(relative_path("a/./b.sh", w).as_deref(), Some("a/b.sh"));
        assert_eq!(
            relative_path("file:///work/abc/x/y.py", w).as_deref(),
            Some("x/y.py")
        );
        assert_eq!(relative_path("/work/abc/y.py", w).as_deref(), Some("y.py"));
        assert_eq!(relative_path("/etc/passwd", w), None);
        assert_eq!(relative_path("../outside", w), None);
        assert_eq!(relative_path("a/../b", w).as_deref(), Some("b"));
        assert_eq!(relative_path(".", w), None);
    }
}
