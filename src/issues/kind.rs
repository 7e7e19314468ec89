//! The eight issue kinds of the plugin contract, in the original's enum order.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueKind {
    Style,
    Performance,
    Security,
    Bug,
    Complexity,
    Duplication,
    Convention,
    Quality,
}

impl IssueKind {
    pub const ALL: [IssueKind; 8] = [
        IssueKind::Style,
        IssueKind::Performance,
        IssueKind::Security,
        IssueKind::Bug,
        IssueKind::Complexity,
        IssueKind::Duplication,
        IssueKind::Convention,
        IssueKind::Quality,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IssueKind::Style => "style",
            IssueKind::Performance => "performance",
            IssueKind::Security => "security",
            IssueKind::Bug => "bug",
            IssueKind::Complexity => "complexity",
            IssueKind::Duplication => "duplication",
            IssueKind::Convention => "convention",
            IssueKind::Quality => "quality",
        }
    }

    pub fn parse(s: &str) -> Option<IssueKind> {
        IssueKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for IssueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
