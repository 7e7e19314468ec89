//! Checkstyle XML, as written by checkstyle itself, ShellCheck, ESLint and many others:
//! `<checkstyle><file name="…"><error line column severity message source/></file></checkstyle>`.
//! Several documents in a row (a tool run once per batch of files) are read as one.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{Finding, ReportError};

pub fn parse(report: &[u8]) -> Result<Vec<Finding>, ReportError> {
    let mut reader = Reader::from_reader(report);
    let mut findings = Vec::new();
    let mut file: Option<String> = None;
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| bad(&reader, e.to_string()))?;
        match event {
            Event::Start(e) if e.name().as_ref() == "file" => {
                file = Some(attribute(&reader, &e, "name")?.unwrap_or_default());
            }
            Event::Empty(e) if e.name().as_ref() == "file" => file = None,
            Event::End(e) if e.name().as_ref() == "file" => file = None,
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "error" => {
                let Some(file) = file.clone() else {
                    return Err(bad(&reader, "<error> outside of a <file>".into()));
                };
                let line = attribute(&reader, &e, "line")?
                    .and_then(|l| l.trim().parse::<i64>().ok())
                    .unwrap_or(1);
                findings.push(Finding {
                    file,
                    line_start: line,
                    line_end: line,
                    message: attribute(&reader, &e, "message")?.unwrap_or_default(),
                    kind: None,
                    rule: attribute(&reader, &e, "source")?.map(short_rule),
                    severity: attribute(&reader, &e, "severity")?,
                    uid: None,
                });
            }
            Event::Eof => break,
            // DOCTYPE is refused rather than expanded: a report has no business declaring
            // entities.
            Event::DocType(_) => return Err(bad(&reader, "DOCTYPE is not allowed".into())),
            _ => {}
        }
        buf.clear();
    }
    Ok(findings)
}

/// `ShellCheck.SC2086` → `SC2086`, `com.puppycrawl…checks.whitespace.FooCheck` → `FooCheck`.
fn short_rule(source: String) -> String {
    match source.rsplit_once('.') {
        Some((_, last)) if !last.is_empty() => last.to_string(),
        _ => source,
    }
}

fn attribute(
    reader: &Reader<&[u8]>,
    element: &BytesStart<'_>,
    name: &str,
) -> Result<Option<String>, ReportError> {
    let Some(attr) = element
        .try_get_attribute(name)
        .map_err(|e| bad(reader, e.to_string()))?
    else {
        return Ok(None);
    };
    let value = attr
        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .map_err(|e| bad(reader, e.to_string()))?;
    Ok(Some(value.into_owned()))
}

fn bad(reader: &Reader<&[u8]>, why: String) -> ReportError {
    ReportError(format!(
        "checkstyle report, byte {}: {why}",
        reader.buffer_position()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shellcheck_output_in_two_batches() {
        let one = "<?xml version='1.0' encoding='UTF-8'?>\n<checkstyle version='4.3'>\n\
            <file name='./s.sh' >\n<error line='2' column='6' severity='info' \
            message='Use &#39;cd ... &#124;&#124; exit&#39;' source='ShellCheck.SC2164' />\n\
            </file>\n<file name='ok.sh'/>\n</checkstyle>\n";
        let two = format!("{one}{one}");
        let f = parse(two.as_bytes()).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].file, "./s.sh");
        assert_eq!(f[0].line_start, 2);
        assert_eq!(f[0].message, "Use 'cd ... || exit'");
        assert_eq!(f[0].rule.as_deref(), Some("SC2164"));
        assert_eq!(f[0].severity.as_deref(), Some("info"));
    }

    #[test]
    fn broken_and_hostile_documents_are_refused() {
        assert!(parse(b"<checkstyle><error line='1'/></checkstyle>").is_err());
        let doctype = b"<!DOCTYPE x [<!ENTITY a 'b'>]><checkstyle/>";
        assert!(parse(doctype).unwrap_err().0.contains("DOCTYPE"));
        assert!(parse(b"").unwrap().is_empty());
    }
}
