//! A commit's ingestion state, stored as today's strings in `commits.ingest_status`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestStatus {
    /// Registered; its ingestion is queued (or waiting for a retry).
    Queued,
    InProgress,
    /// The archive is stored and the metadata recorded.
    Completed,
    /// Gave up; `ingest_error` says why.
    Errored,
}

impl IngestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestStatus::Queued => "queued",
            IngestStatus::InProgress => "in_progress",
            IngestStatus::Completed => "completed",
            IngestStatus::Errored => "errored",
        }
    }

    /// The stored text; anything unknown reads as not ingested yet.
    pub fn parse(s: &str) -> IngestStatus {
        match s {
            "in_progress" => IngestStatus::InProgress,
            "completed" => IngestStatus::Completed,
            "errored" => IngestStatus::Errored,
            _ => IngestStatus::Queued,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IngestStatus;

    #[test]
    fn every_state_reads_back_as_itself() {
        for s in [
            IngestStatus::Queued,
            IngestStatus::InProgress,
            IngestStatus::Completed,
            IngestStatus::Errored,
        ] {
            assert_eq!(IngestStatus::parse(s.as_str()), s);
        }
    }
}
