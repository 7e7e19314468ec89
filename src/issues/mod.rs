//! Issues: what plugins found in a commit, with a stable uid per finding, and the rules that
//! ignore them. Owns the `issues` and `issue_ignore_rules` tables and the per-branch issue
//! history.

pub mod affected;
mod ignore;
mod kind;
mod query;
mod register;
mod uid;

pub use affected::{AffectedFile, SnippetLine, affected_files, snippet_line, snippet_range};
pub use ignore::{IgnoreError, IgnoreMode, IgnoreRule, delete_rule, ignore, list_rules, unignore};
pub use kind::IssueKind;
pub use query::{
    Issue, IssueFilter, IssueState, count_active, counts_by_kind, counts_by_source,
    counts_by_source_all, counts_by_state, list,
};
pub use register::register;
pub use uid::default_uid;

/// A finding ready to be stored; `uid` None gets the original SDK's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIssue {
    pub kind: IssueKind,
    pub file: String,
    pub line_start: i64,
    pub line_end: i64,
    pub message: String,
    pub uid: Option<String>,
}

impl NewIssue {
    pub fn uid(&self) -> String {
        self.uid.clone().unwrap_or_else(|| {
            default_uid(
                self.kind,
                &self.file,
                self.line_start,
                self.line_end,
                &self.message,
            )
        })
    }
}
