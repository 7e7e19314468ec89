//! JaCoCo XML (`jacococli report --xml`, the Gradle/Maven plugins).
//!
//! Reads `<package name><sourcefile name><line nr ci …>` at any `<group>` depth (multi-module
//! reports nest packages in groups; the original dropped those). Files are keyed
//! `package/File.kt`, which [`crate::coverage::paths`] resolves against the tree. A line's hits
//! are its covered instructions `ci`, as in the original, so a line is covered exactly when
//! JaCoCo's LINE counter counts it covered (at least one instruction ran).
//!
//! Source files without executable code appear with no lines; the original padded every file
//! to the source's line count, which the caller can do with [`FileCoverage::pad_to`].

use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};

use super::xml::{RawAttrs, XmlStream, unescape};
use super::{Builder, hit_count, line_number};
use crate::coverage::{FileCoverage, Format, Limits, ParseError, Report};

const FORMAT: Format = Format::Jacoco;

struct SourceFile {
    path: String,
    coverage: FileCoverage,
}

fn err(line: u64, message: impl Into<String>) -> ParseError {
    ParseError::new(FORMAT, Some(line), message)
}

/// Adds the line to a builder error (worked out only when there is an error).
fn at(mut e: ParseError, line: u64) -> ParseError {
    e.line = Some(line);
    e
}

pub fn parse<R: BufRead>(reader: R, limits: &Limits) -> Result<Report, ParseError> {
    let mut xml = XmlStream::new(reader, FORMAT, limits.max_token_bytes);
    let mut buf = Vec::with_capacity(4096);
    let mut out = Builder::new(FORMAT, limits);
    let mut root_checked = false;
    let mut package: Option<String> = None;
    let mut file: Option<SourceFile> = None;
    loop {
        let event = xml.next(&mut buf)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.name();
                let name = name.as_ref();
                if !root_checked {
                    if name != "report" {
                        return Err(err(
                            xml.line(),
                            format!(
                                "not a JaCoCo report: the root element is <{name}>, \
                                 expected <report>"
                            ),
                        ));
                    }
                    root_checked = true;
                    continue;
                }
                match name {
                    "line" => {
                        if let Some(file) = file.as_mut() {
                            record_line(e, file, limits).map_err(|m| err(xml.line(), m))?;
                        }
                    }
                    "package" if !empty => {
                        package = Some(attr(e, "package", "name").map_err(|m| err(xml.line(), m))?);
                    }
                    "sourcefile" => {
                        let name = attr(e, "sourcefile", "name").map_err(|m| err(xml.line(), m))?;
                        let Some(package) = package.as_deref() else {
                            return Err(err(xml.line(), "<sourcefile> outside a <package>"));
                        };
                        let path = if package.is_empty() {
                            name
                        } else {
                            format!("{package}/{name}")
                        };
                        out.check_path(&path, None).map_err(|e| at(e, xml.line()))?;
                        let started = SourceFile {
                            path,
                            coverage: FileCoverage::new(),
                        };
                        // A sourcefile opened inside another (not valid JaCoCo) ends the outer.
                        if let Some(outer) = file.take() {
                            out.add_file(outer.path, outer.coverage, None)
                                .map_err(|e| at(e, xml.line()))?;
                        }
                        if empty {
                            out.add_file(started.path, started.coverage, None)
                                .map_err(|e| at(e, xml.line()))?;
                        } else {
                            file = Some(started);
                        }
                    }
                    _ => {}
                }
            }
            Event::End(ref e) => match e.name().as_ref() {
                "sourcefile" => {
                    if let Some(done) = file.take() {
                        out.add_file(done.path, done.coverage, None)
                            .map_err(|e| at(e, xml.line()))?;
                    }
                }
                "package" => package = None,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out.finish())
}

fn attr(e: &BytesStart<'_>, element: &str, key: &str) -> Result<String, String> {
    let mut attrs = RawAttrs::new(e);
    while let Some((name, value)) = attrs.next_attr()? {
        if name == key {
            return Ok(unescape(value)?.into_owned());
        }
    }
    Err(format!("<{element}> without a {key} attribute"))
}

fn record_line(e: &BytesStart<'_>, file: &mut SourceFile, limits: &Limits) -> Result<(), String> {
    let mut nr = None;
    let mut ci = None;
    let mut attrs = RawAttrs::new(e);
    while let Some((key, value)) = attrs.next_attr()? {
        match key {
            "nr" => nr = Some(line_number(unescape(value)?.as_bytes(), limits)?),
            "ci" => ci = Some(hit_count(unescape(value)?.as_bytes())?),
            // Validated so a corrupt report is not half-read, though only ci decides coverage.
            "mi" | "mb" | "cb" => {
                hit_count(unescape(value)?.as_bytes())?;
            }
            _ => {}
        }
    }
    let nr = nr.ok_or("<line> without an nr attribute")?;
    let ci = ci.ok_or("<line> without a ci attribute")?;
    file.coverage.add_hits(nr, ci);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::Line;

    const SAMPLE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/coverage/original/jacocoTestReport.xml"
    ));
    const PKG: &str = "com/company/project/batch/parsing";

    fn parse_str(xml: &str) -> Result<Report, ParseError> {
        parse(xml.as_bytes(), &Limits::default())
    }

    #[test]
    fn original_sample_matches_the_reference_vectors_once_padded() {
        let report = parse_str(SAMPLE).unwrap();
        assert_eq!(report.files.len(), 2);
        // The original padded each file to its source's newline count (6 and 17).
        let mut empty = report.files[&format!("{PKG}/FileWithNoExecutableCode.kt")].clone();
        assert!(empty.is_empty());
        empty.pad_to(6);
        assert_eq!(empty.encode_wire(), "AAAAAAAA");
        let mut writer = report.files[&format!("{PKG}/ParsedBatchWriter.kt")].clone();
        writer.pad_to(17);
        assert_eq!(writer.encode_wire(), "AAAAAAAAOQA1HjQeMx4xAAAzHjEA");
        let t = writer.totals();
        assert_eq!((t.lines_total, t.lines_covered, t.lines_missed), (7, 7, 0));
    }

    #[test]
    fn groups_are_traversed_and_ci_decides_coverage() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<!DOCTYPE report PUBLIC "-//JACOCO//DTD Report 1.1//EN" "report.dtd">
<report name="multi"><sessioninfo id="s" start="1" dump="2"/>
 <group name="core"><package name="org/x">
  <class name="org/x/A" sourcefilename="A.java"><method name="m" desc="()V" line="3">
   <counter type="LINE" missed="1" covered="1"/></method></class>
  <sourcefile name="A.java">
   <line nr="3" mi="2" ci="1" mb="1" cb="1"/><line nr="4" mi="5" ci="0" mb="0" cb="0"/>
   <counter type="LINE" missed="1" covered="1"/></sourcefile>
 </package></group>
 <package name=""><sourcefile name="Main.java"><line nr="1" mi="0" ci="3" mb="0" cb="0"/>
 </sourcefile></package>
</report>"#;
        let report = parse_str(xml).unwrap();
        let a = &report.files["org/x/A.java"];
        assert_eq!(
            a.lines().collect::<Vec<_>>(),
            [Line::Neutral, Line::Neutral, Line::Hits(1), Line::Hits(0)]
        );
        assert_eq!(report.files["Main.java"].get(1), Some(Line::Hits(3)));
    }

    #[test]
    fn non_jacoco_xml_and_bad_lines_are_rejected() {
        let random = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/coverage/original/jacoco-random-file.xml"
        ));
        let err = parse_str(random).unwrap_err();
        assert!(
            err.message.contains("root element is <configuration>"),
            "{err}"
        );
        let bad = "<report name=\"r\">\n<package name=\"p\"><sourcefile name=\"A.java\">\n\
                   <line nr=\"0\" mi=\"0\" ci=\"1\"/></sourcefile></package></report>";
        let err = parse_str(bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "jacoco report, line 3: line number 0 (lines are numbered from 1)"
        );
        let bad = "<report><package name=\"p\"><sourcefile name=\"A.java\">\
                   <line nr=\"2\" mi=\"x\" ci=\"1\"/></sourcefile></package></report>";
        assert!(
            parse_str(bad)
                .unwrap_err()
                .message
                .contains("malformed hit count")
        );
        let truncated = &SAMPLE[..SAMPLE.len() / 2];
        assert!(parse_str(truncated).is_err());
    }
}
