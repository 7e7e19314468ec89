//! Cobertura XML (coverage.py `coverage xml`, gcovr, Istanbul, cobertura-maven, …).
//!
//! Reads `<sources><source>` and, for each `<class filename>`, the `<line number hits>` elements
//! directly under the class. Lines repeated under `<methods>` are skipped (they duplicate the
//! class lines; counting both would double the hits). Classes naming the same file merge by
//! summing hits. Branch attributes are ignored: coverage is line-based.

use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};

use super::xml::{RawAttrs, XmlStream, resolve_ref, unescape};
use super::{Builder, hit_count, line_number};
use crate::coverage::{FileCoverage, Format, Limits, ParseError, Report};

const FORMAT: Format = Format::Cobertura;

/// The class being read: its file and lines so far.
struct Class {
    filename: String,
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
    let mut class: Option<Class> = None;
    let mut methods_depth = 0usize;
    let mut source: Option<String> = None;
    loop {
        let event = xml.next(&mut buf)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.name();
                let name = name.as_ref();
                if !root_checked {
                    if name != "coverage" {
                        return Err(err(
                            xml.line(),
                            format!(
                                "not a Cobertura report: the root element is <{name}>, \
                                 expected <coverage>"
                            ),
                        ));
                    }
                    root_checked = true;
                    continue;
                }
                match name {
                    "line" if methods_depth == 0 => {
                        if let Some(class) = class.as_mut() {
                            record_line(e, class, limits).map_err(|m| err(xml.line(), m))?;
                        }
                    }
                    "methods" if !empty => methods_depth += 1,
                    "class" => {
                        let filename = filename(e).map_err(|m| err(xml.line(), m))?;
                        out.check_path(&filename, None)
                            .map_err(|e| at(e, xml.line()))?;
                        let started = Class {
                            filename,
                            coverage: FileCoverage::new(),
                        };
                        // A class opened inside another (not valid Cobertura) ends the outer.
                        if let Some(outer) = class.take() {
                            out.add_file(outer.filename, outer.coverage, None)
                                .map_err(|e| at(e, xml.line()))?;
                        }
                        if empty {
                            out.add_file(started.filename, started.coverage, None)
                                .map_err(|e| at(e, xml.line()))?;
                        } else {
                            class = Some(started);
                        }
                    }
                    "source" if !empty => source = Some(String::new()),
                    _ => {}
                }
            }
            Event::End(ref e) => match e.name().as_ref() {
                "methods" => methods_depth = methods_depth.saturating_sub(1),
                "class" => {
                    if let Some(done) = class.take() {
                        out.add_file(done.filename, done.coverage, None)
                            .map_err(|e| at(e, xml.line()))?;
                    }
                }
                "source" => {
                    if let Some(text) = source.take() {
                        let text = text.trim();
                        if !text.is_empty() {
                            let sources = &mut out.report_mut().sources;
                            if sources.len() >= limits.max_sources {
                                return Err(err(
                                    xml.line(),
                                    format!(
                                        "more than {} <source> elements (the limit)",
                                        limits.max_sources
                                    ),
                                ));
                            }
                            sources.push(text.to_string());
                        }
                    }
                }
                _ => {}
            },
            Event::Text(ref t) => {
                if let Some(text) = source.as_mut() {
                    text.push_str(&t.xml10_content());
                    check_source_len(text, limits).map_err(|m| err(xml.line(), m))?;
                }
            }
            Event::CData(ref t) => {
                if let Some(text) = source.as_mut() {
                    text.push_str(&t.xml10_content());
                    check_source_len(text, limits).map_err(|m| err(xml.line(), m))?;
                }
            }
            Event::GeneralRef(ref r) => {
                if let Some(text) = source.as_mut() {
                    // Already validated by the stream; resolve again to get the character.
                    text.push(resolve_ref(r).map_err(|m| err(xml.line(), m))?);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out.finish())
}

fn check_source_len(text: &str, limits: &Limits) -> Result<(), String> {
    if text.len() > limits.max_path_len {
        return Err(format!(
            "<source> of {} bytes is longer than the limit of {}",
            text.len(),
            limits.max_path_len
        ));
    }
    Ok(())
}

fn filename(e: &BytesStart<'_>) -> Result<String, String> {
    let mut attrs = RawAttrs::new(e);
    while let Some((key, value)) = attrs.next_attr()? {
        if key == "filename" {
            return Ok(unescape(value)?.into_owned());
        }
    }
    Err("<class> without a filename attribute".into())
}

// The hot loop: one call per <line>. Values are parsed where they lie in the event buffer, so
// a line costs no allocation.
fn record_line(e: &BytesStart<'_>, class: &mut Class, limits: &Limits) -> Result<(), String> {
    let mut number = None;
    let mut hits = None;
    let mut attrs = RawAttrs::new(e);
    while let Some((key, value)) = attrs.next_attr()? {
        match key {
            "number" => number = Some(line_number(unescape(value)?.as_bytes(), limits)?),
            "hits" => hits = Some(hit_count(unescape(value)?.as_bytes())?),
            _ => {}
        }
    }
    let number = number.ok_or("<line> without a number attribute")?;
    let hits = hits.ok_or("<line> without a hits attribute")?;
    class.coverage.add_hits(number, hits);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::Line;

    fn parse_str(xml: &str) -> Result<Report, ParseError> {
        parse(xml.as_bytes(), &Limits::default())
    }

    const SAMPLE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/coverage/original/cobertura.xml"
    ));

    #[test]
    fn original_sample_parses_to_the_reference_vector() {
        let report = parse_str(SAMPLE).unwrap();
        assert_eq!(report.sources, ["/app"]);
        let f = &report.files["src/config.js"];
        assert_eq!(f.encode_wire(), "MgAAAAAAMg==");
        let t = f.totals();
        assert_eq!((t.lines_total, t.lines_covered), (2, 2));
    }

    #[test]
    fn classes_of_one_file_merge_and_method_lines_are_not_counted_twice() {
        let xml = r#"<?xml version="1.0"?>
<coverage line-rate="0.5"><sources><source>/w/a&amp;b</source></sources><packages>
<package name="p"><classes>
 <class name="A" filename="p/A.java">
  <methods><method name="m"><lines><line number="3" hits="4"/></lines></method></methods>
  <lines><line number="3" hits="4"/><line number="4" hits="0" branch="true">
   <conditions><condition number="0" type="jump" coverage="0%"/></conditions></line></lines>
 </class>
 <class name="A$Inner" filename="p/A.java"><lines><line number="3" hits="1"/></lines></class>
 <class name="Empty" filename="p/Empty.java"/>
</classes></package></packages></coverage>"#;
        let report = parse_str(xml).unwrap();
        assert_eq!(report.sources, ["/w/a&b"]);
        let a = &report.files["p/A.java"];
        assert_eq!(
            a.lines().collect::<Vec<_>>(),
            [Line::Neutral, Line::Neutral, Line::Hits(5), Line::Hits(0)]
        );
        assert!(report.files["p/Empty.java"].is_empty());
    }

    #[test]
    fn bad_lines_are_clear_errors() {
        let wrap = |line: &str| {
            format!(
                "<coverage>\n<packages><package><classes><class filename=\"a.py\"><lines>\n\
                 {line}\n</lines></class></classes></package></packages></coverage>"
            )
        };
        let cases = [
            (r#"<line number="0" hits="1"/>"#, "line number 0"),
            (r#"<line number="-2" hits="1"/>"#, "negative line number"),
            (
                r#"<line number="x" hits="1"/>"#,
                "malformed line number `x`",
            ),
            (
                r#"<line number="2" hits="1.5"/>"#,
                "malformed hit count `1.5`",
            ),
            (r#"<line hits="1"/>"#, "without a number"),
            (
                r#"<line number="4000000000" hits="1"/>"#,
                "beyond the limit",
            ),
            (
                r#"<line number="&lol;" hits="1"/>"#,
                "`&lol;` is not allowed",
            ),
        ];
        for (line, want) in cases {
            let err = parse_str(&wrap(line)).unwrap_err();
            assert!(err.message.contains(want), "{line}: {err}");
            assert_eq!(err.line, Some(3), "{line}: {err}");
            assert_eq!(err.format, Some(Format::Cobertura));
        }
    }

    #[test]
    fn other_roots_are_rejected() {
        let err = parse_str("<report name=\"x\"></report>").unwrap_err();
        assert!(err.message.contains("root element is <report>"), "{err}");
    }
}
