//! SARIF 2.1.0: `runs[].results[]`, each with a rule id, a level, a message and its first
//! physical location. Only the fields cocov uses are read; everything else is ignored.

use serde::Deserialize;

use super::{Finding, ReportError};

#[derive(Deserialize)]
struct Log {
    runs: Vec<Run>,
}

#[derive(Deserialize)]
struct Run {
    #[serde(default)]
    results: Vec<SarifResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: Option<String>,
    level: Option<String>,
    message: Message,
    #[serde(default)]
    locations: Vec<Location>,
}

#[derive(Deserialize)]
struct Message {
    text: Option<String>,
    markdown: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: Option<PhysicalLocation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: Option<ArtifactLocation>,
    region: Option<Region>,
}

#[derive(Deserialize)]
struct ArtifactLocation {
    uri: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: Option<i64>,
    end_line: Option<i64>,
}

pub fn parse(report: &[u8]) -> Result<Vec<Finding>, ReportError> {
    if report.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let log: Log =
        serde_json::from_slice(report).map_err(|e| ReportError(format!("SARIF report: {e}")))?;
    let mut findings = Vec::new();
    for result in log.runs.into_iter().flat_map(|r| r.results) {
        let Some(physical) = result
            .locations
            .into_iter()
            .find_map(|l| l.physical_location)
        else {
            // A finding about the whole project has no line to show; nothing to register.
            continue;
        };
        let Some(file) = physical.artifact_location.and_then(|a| a.uri) else {
            continue;
        };
        let file = percent_decode(&file);
        let region = physical.region;
        let line_start = region.as_ref().and_then(|r| r.start_line).unwrap_or(1);
        let line_end = region.and_then(|r| r.end_line).unwrap_or(line_start);
        let message = result
            .message
            .text
            .or(result.message.markdown)
            .unwrap_or_default();
        findings.push(Finding {
            file,
            line_start,
            line_end,
            message,
            kind: None,
            rule: result.rule_id,
            // SARIF's default level is `warning`.
            severity: Some(result.level.unwrap_or_else(|| "warning".into())),
            uid: None,
        });
    }
    Ok(findings)
}

/// URIs escape spaces and other bytes as `%XX`.
fn percent_decode(uri: &str) -> String {
    percent_encoding::percent_decode_str(uri)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_with_locations_become_findings() {
        let doc = br#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t"}},"results":[
          {"ruleId":"F401","level":"error","message":{"text":"unused"},
           "locations":[{"physicalLocation":{"artifactLocation":{"uri":"file:///work/x/a%20b.py"},
             "region":{"startLine":3,"endLine":4}}}]},
          {"ruleId":"X","message":{"text":"project-wide"}},
          {"message":{"markdown":"md"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"b.py"}}}]}
        ]}]}"#;
        let f = parse(doc).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].file, "file:///work/x/a b.py");
        assert_eq!((f[0].line_start, f[0].line_end), (3, 4));
        assert_eq!(f[0].rule.as_deref(), Some("F401"));
        assert_eq!(f[1].severity.as_deref(), Some("warning"));
        assert_eq!((f[1].line_start, f[1].message.as_str()), (1, "md"));
        assert!(parse(b"  ").unwrap().is_empty());
        assert!(parse(b"{\"runs\":3}").unwrap_err().0.contains("SARIF"));
    }
}
