//! XML plumbing shared by Cobertura and JaCoCo: a quick-xml event stream that knows its line,
//! bounds the size of a single event, rejects entities other than XML's five predefined ones
//! (DOCTYPEs are passed through unread, so nothing external is ever fetched and nothing
//! expands), and turns end-of-input inside an element into a "truncated" error.

use std::borrow::Cow;
use std::io::{self, BufRead, Read};

use quick_xml::XmlVersion;
use quick_xml::escape::EscapeError;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesRef, Event};

use super::super::{Format, ParseError};

/// Marker error: one event (tag, text run, comment, DOCTYPE) grew past the limit.
#[derive(Debug)]
struct TokenTooLong;

impl std::fmt::Display for TokenTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("XML token too long")
    }
}

impl std::error::Error for TokenTooLong {}

/// A BufRead that counts consumed newlines (for error lines) and refuses to feed more than
/// `max_token` bytes to the parser between two `mark()`s, which caps quick-xml's event buffer.
struct Tracked<R> {
    inner: R,
    newlines: u64,
    since_mark: usize,
    max_token: usize,
}

impl<R: BufRead> Read for Tracked<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(out.len());
            out[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tracked<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.since_mark > self.max_token {
            return Err(io::Error::other(TokenTooLong));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if amt > 0 {
            // The bytes being consumed are still in the inner buffer, so this does no I/O.
            if let Ok(buf) = self.inner.fill_buf() {
                let seen = &buf[..amt.min(buf.len())];
                self.newlines += seen.iter().filter(|&&b| b == b'\n').count() as u64;
            }
        }
        self.since_mark = self.since_mark.saturating_add(amt);
        self.inner.consume(amt);
    }
}

pub(crate) struct XmlStream<R> {
    reader: quick_xml::Reader<Tracked<R>>,
    buf: Vec<u8>,
    format: Format,
    max_token: usize,
    depth: usize,
    root_seen: bool,
}

impl<R: BufRead> XmlStream<R> {
    pub(crate) fn new(inner: R, format: Format, max_token: usize) -> Self {
        let tracked = Tracked {
            inner,
            newlines: 0,
            since_mark: 0,
            max_token,
        };
        Self {
            reader: quick_xml::Reader::from_reader(tracked),
            buf: Vec::with_capacity(4096),
            format,
            max_token,
            depth: 0,
            root_seen: false,
        }
    }

    /// The next event with the line it ended on. `Eof` is returned only after a complete root
    /// element; entity references are already checked (see [`resolve_ref`]).
    pub(crate) fn next(&mut self) -> Result<(u64, Event<'_>), ParseError> {
        self.buf.clear();
        self.reader.get_mut().since_mark = 0;
        let event = self.reader.read_event_into(&mut self.buf);
        let line = self.reader.get_ref().newlines + 1;
        // A reader that hands over everything in one fill (a byte slice) never trips the
        // check in `fill_buf`, so the event's size is checked here as well.
        if self.reader.get_ref().since_mark > self.max_token {
            return Err(describe(
                self.format,
                line,
                self.max_token,
                quick_xml::Error::Io(std::sync::Arc::new(io::Error::other(TokenTooLong))),
            ));
        }
        let event = match event {
            Ok(event) => event,
            Err(e) => return Err(describe(self.format, line, self.max_token, e)),
        };
        match &event {
            Event::Start(_) => {
                self.depth += 1;
                self.root_seen = true;
            }
            Event::Empty(_) => self.root_seen = true,
            Event::End(_) => self.depth = self.depth.saturating_sub(1),
            Event::GeneralRef(r) => {
                resolve_ref(r).map_err(|m| ParseError::new(self.format, Some(line), m))?;
            }
            Event::Eof if self.depth > 0 => {
                return Err(ParseError::new(
                    self.format,
                    Some(line),
                    "truncated: the document ends inside an element",
                ));
            }
            Event::Eof if !self.root_seen => {
                return Err(ParseError::new(
                    self.format,
                    Some(line),
                    "empty document: no root element",
                ));
            }
            _ => {}
        }
        Ok((line, event))
    }
}

fn entity_message(name: &str) -> String {
    format!(
        "entity `&{name};` is not allowed (only &lt; &gt; &amp; &apos; &quot; and character \
         references are accepted; DTD entities are never expanded)"
    )
}

/// The character an entity reference stands for: one of the five predefined entities or a
/// character reference. Anything else, such as an entity declared in a DOCTYPE (the
/// "billion laughs" bomb), is an error.
pub(crate) fn resolve_ref(r: &BytesRef<'_>) -> Result<char, String> {
    match r.resolve_char_ref() {
        Ok(Some(c)) => return Ok(c),
        Ok(None) => {}
        Err(e) => return Err(format!("invalid character reference `&{};`: {e}", &**r)),
    }
    match &**r {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(entity_message(other)),
    }
}

/// An attribute value with predefined entities and character references replaced.
pub(crate) fn attr_text<'a>(attr: &Attribute<'a>) -> Result<Cow<'a, str>, String> {
    if !attr.value.contains('&') {
        return Ok(attr.value.clone());
    }
    attr.normalized_value(XmlVersion::Implicit1_0)
        .map_err(|e| match e {
            quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
                entity_message(&name)
            }
            other => format!("malformed attribute `{}`: {other}", attr.key.as_ref()),
        })
}

fn describe(format: Format, line: u64, max_token: usize, e: quick_xml::Error) -> ParseError {
    let message = match e {
        quick_xml::Error::Io(io) => {
            if io.get_ref().is_some_and(|inner| inner.is::<TokenTooLong>()) {
                format!("an XML tag, text, comment or DOCTYPE is longer than {max_token} bytes")
            } else {
                format!("could not read the report: {io}")
            }
        }
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => entity_message(&name),
        quick_xml::Error::Syntax(e) => format!("malformed or truncated XML: {e}"),
        quick_xml::Error::Encoding(e) => format!("the report is not UTF-8: {e}"),
        other => format!("malformed XML: {other}"),
    };
    ParseError::new(format, Some(line), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(xml: &str, max_token: usize) -> Result<usize, ParseError> {
        let mut stream = XmlStream::new(xml.as_bytes(), Format::Cobertura, max_token);
        let mut events = 0;
        loop {
            let (_, event) = stream.next()?;
            if matches!(event, Event::Eof) {
                return Ok(events);
            }
            events += 1;
        }
    }

    #[test]
    fn lines_are_tracked() {
        let mut s = XmlStream::new(&b"<a>\n\n<b/>\n</a>"[..], Format::Jacoco, 1024);
        let mut seen = Vec::new();
        loop {
            let (line, event) = s.next().unwrap();
            match event {
                Event::Eof => break,
                Event::Empty(e) => seen.push((e.name().as_ref().to_string(), line)),
                _ => {}
            }
        }
        assert_eq!(seen, [("b".to_string(), 3)]);
    }

    #[test]
    fn oversized_tokens_fail_with_a_clear_message() {
        let comment = format!("<a><!-- {} --></a>", "x".repeat(10_000));
        let err = drain(&comment, 1000).unwrap_err();
        assert!(err.message.contains("longer than 1000 bytes"), "{err}");
        assert_eq!(drain(&comment, 100_000).unwrap(), 3);
    }

    #[test]
    fn truncation_and_empty_input_are_errors() {
        let err = drain("<a><b>", 1024).unwrap_err();
        assert!(err.message.contains("truncated"), "{err}");
        let err = drain("  ", 1024).unwrap_err();
        assert!(err.message.contains("no root element"), "{err}");
        let err = drain("<a><b x=\"1></a>", 1024).unwrap_err();
        assert!(err.message.contains("XML"), "{err}");
    }

    #[test]
    fn only_predefined_entities_and_char_refs_resolve() {
        assert_eq!(drain("<a>&amp;&#65;&#x42;</a>", 1024).unwrap(), 5);
        let err = drain("<a>&lol;</a>", 1024).unwrap_err();
        assert!(err.message.contains("`&lol;` is not allowed"), "{err}");
        assert_eq!(err.line, Some(1));
    }
}
