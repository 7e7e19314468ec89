//! XML plumbing shared by Cobertura and JaCoCo: a quick-xml event stream that knows its line,
//! bounds the size of a single event, rejects entities other than XML's five predefined ones
//! (DOCTYPEs are passed through unread, so nothing external is ever fetched and nothing
//! expands), and turns end-of-input inside an element into a "truncated" error.

use std::borrow::Cow;
use std::io::{self, BufRead, Read};

use quick_xml::escape::EscapeError;
use quick_xml::events::{BytesRef, BytesStart, Event};

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

/// A BufRead that knows the line it has reached (for error messages) and refuses to feed more
/// than `max_token` bytes to the parser between two `mark()`s, which caps quick-xml's event
/// buffer.
///
/// Newlines are counted once per buffer fill, in one vectorised pass, rather than on every
/// `consume` (quick-xml consumes a few dozen bytes at a time); the line inside the current fill
/// is worked out only when an error needs it.
struct Tracked<R> {
    inner: R,
    /// Newlines in fills that were consumed entirely.
    newlines: u64,
    /// Newlines in the current fill as first seen, and how much of it is still unconsumed.
    fill_newlines: u64,
    fill_remaining: usize,
    since_mark: usize,
    max_token: usize,
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

impl<R: BufRead> Tracked<R> {
    /// The 1-based line of the next unconsumed byte.
    fn line(&mut self) -> u64 {
        let mut line = self.newlines + 1;
        if self.fill_remaining > 0 {
            // Still buffered, so this does no I/O.
            if let Ok(rest) = self.inner.fill_buf() {
                line += self.fill_newlines.saturating_sub(count_newlines(rest));
            }
        }
        line
    }
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
        let buf = self.inner.fill_buf()?;
        if self.fill_remaining == 0 && !buf.is_empty() {
            self.fill_newlines = count_newlines(buf);
            self.fill_remaining = buf.len();
        }
        Ok(buf)
    }

    fn consume(&mut self, amt: usize) {
        if self.fill_remaining > 0 {
            self.fill_remaining = self.fill_remaining.saturating_sub(amt);
            if self.fill_remaining == 0 {
                self.newlines += self.fill_newlines;
            }
        }
        self.since_mark = self.since_mark.saturating_add(amt);
        self.inner.consume(amt);
    }
}

pub(crate) struct XmlStream<R> {
    reader: quick_xml::Reader<Tracked<R>>,
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
            fill_newlines: 0,
            fill_remaining: 0,
            since_mark: 0,
            max_token,
        };
        let mut reader = quick_xml::Reader::from_reader(tracked);
        // Whitespace between tags would otherwise be an event of its own (half of all events
        // in an indented report). Side effect: spaces next to an entity inside a text are lost,
        // which only matters for a Cobertura <source> like "a &amp; b".
        reader.config_mut().trim_text(true);
        Self {
            reader,
            format,
            max_token,
            depth: 0,
            root_seen: false,
        }
    }

    /// The 1-based line the parser has reached (the end of the last event).
    pub(crate) fn line(&mut self) -> u64 {
        self.reader.get_mut().line()
    }

    fn fail(&mut self, message: impl Into<String>) -> ParseError {
        ParseError::new(self.format, Some(self.line()), message)
    }

    /// The next event, read into `buf` (cleared first; the caller keeps it between calls so it
    /// is allocated once). `Eof` is returned only after a complete root element; entity
    /// references are already checked (see [`resolve_ref`]).
    pub(crate) fn next<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, ParseError> {
        buf.clear();
        self.reader.get_mut().since_mark = 0;
        let event = self.reader.read_event_into(buf);
        // A reader that hands over everything in one fill (a byte slice) never trips the
        // check in `fill_buf`, so the event's size is checked here as well.
        if self.reader.get_ref().since_mark > self.max_token {
            let message = token_too_long(self.max_token);
            return Err(self.fail(message));
        }
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                let message = describe(self.max_token, e);
                return Err(self.fail(message));
            }
        };
        match &event {
            Event::Start(_) => {
                self.depth += 1;
                self.root_seen = true;
            }
            Event::Empty(_) => self.root_seen = true,
            Event::End(_) => self.depth = self.depth.saturating_sub(1),
            Event::GeneralRef(r) => {
                if let Err(message) = resolve_ref(r) {
                    return Err(self.fail(message));
                }
            }
            Event::Eof if self.depth > 0 => {
                return Err(self.fail("truncated: the document ends inside an element"));
            }
            Event::Eof if !self.root_seen => {
                return Err(self.fail("empty document: no root element"));
            }
            _ => {}
        }
        Ok(event)
    }
}

fn token_too_long(max_token: usize) -> String {
    format!("an XML tag, text, comment or DOCTYPE is longer than {max_token} bytes")
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

/// The attributes of a start tag, scanned straight from its raw bytes: quick-xml's attribute
/// iterator costs about a third of the whole parse on a large report, and coverage reports
/// only need a few plain `name="value"` pairs.
pub(crate) struct RawAttrs<'a> {
    rest: &'a str,
}

impl<'a> RawAttrs<'a> {
    pub(crate) fn new(start: &'a BytesStart<'_>) -> Self {
        Self {
            rest: start.attributes_raw(),
        }
    }

    /// The next `(name, raw value)`; the value still holds any entity references (see
    /// [`unescape`]). Byte-level loops: names and values are short, and every delimiter is
    /// ASCII, so the slices stay on character boundaries.
    pub(crate) fn next_attr(&mut self) -> Result<Option<(&'a str, &'a str)>, String> {
        let s = self.rest;
        let bytes = s.as_bytes();
        let skip_space = |mut i: usize| {
            while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            i
        };
        let start = skip_space(0);
        if start == bytes.len() || &bytes[start..] == b"/" {
            self.rest = "";
            return Ok(None);
        }
        let malformed = || format!("malformed attributes `{}`", super::excerpt(&bytes[start..]));
        let mut i = start;
        while bytes.get(i).is_some_and(|&b| b != b'=') {
            i += 1;
        }
        let name = s.get(start..i).ok_or_else(malformed)?.trim_ascii_end();
        if i == bytes.len() || name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(malformed());
        }
        i = skip_space(i + 1);
        let quote = match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return Err(malformed()),
        };
        let value_start = i + 1;
        let mut end = value_start;
        while bytes.get(end).is_some_and(|&b| b != quote) {
            end += 1;
        }
        let value = s.get(value_start..end).ok_or_else(malformed)?;
        self.rest = s.get(end + 1..).ok_or_else(malformed)?;
        Ok(Some((name, value)))
    }
}

/// An attribute value with predefined entities and character references replaced.
pub(crate) fn unescape(value: &str) -> Result<Cow<'_, str>, String> {
    if !value.bytes().any(|b| b == b'&') {
        return Ok(Cow::Borrowed(value));
    }
    quick_xml::escape::unescape(value).map_err(|e| match e {
        EscapeError::UnrecognizedEntity(_, name) => entity_message(&name),
        other => format!("malformed attribute value `{value}`: {other}"),
    })
}

fn describe(max_token: usize, e: quick_xml::Error) -> String {
    match e {
        quick_xml::Error::Io(io) => {
            if io.get_ref().is_some_and(|inner| inner.is::<TokenTooLong>()) {
                token_too_long(max_token)
            } else {
                format!("could not read the report: {io}")
            }
        }
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => entity_message(&name),
        quick_xml::Error::Syntax(e) => format!("malformed or truncated XML: {e}"),
        quick_xml::Error::Encoding(e) => format!("the report is not UTF-8: {e}"),
        other => format!("malformed XML: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(xml: &str, max_token: usize) -> Result<usize, ParseError> {
        let mut stream = XmlStream::new(xml.as_bytes(), Format::Cobertura, max_token);
        let mut buf = Vec::new();
        let mut events = 0;
        loop {
            let event = stream.next(&mut buf)?;
            if matches!(event, Event::Eof) {
                return Ok(events);
            }
            events += 1;
        }
    }

    #[test]
    fn lines_are_tracked_across_buffer_fills() {
        let xml = "<a>\n\n<b/>\n<c>\n</c>\n\n\n<b/></a>\n";
        // Tiny fills make events straddle them; one big fill is the other extreme.
        for capacity in [1, 3, 7, 4096] {
            let reader = std::io::BufReader::with_capacity(capacity, xml.as_bytes());
            let mut s = XmlStream::new(reader, Format::Jacoco, 1024);
            let mut buf = Vec::new();
            let mut seen = Vec::new();
            loop {
                let event = s.next(&mut buf).unwrap();
                match event {
                    Event::Eof => break,
                    Event::Empty(e) => {
                        let name = e.name().as_ref().to_string();
                        seen.push((name, s.line()));
                    }
                    _ => {}
                }
            }
            assert_eq!(
                seen,
                [("b".to_string(), 3), ("b".to_string(), 8)],
                "{capacity}"
            );
        }
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

    fn attrs_of(tag: &str) -> Result<Vec<(String, String)>, String> {
        let mut reader = quick_xml::Reader::from_str(tag);
        let event = reader.read_event().map_err(|e| e.to_string())?;
        let (Event::Empty(e) | Event::Start(e)) = event else {
            return Err("not a tag".into());
        };
        let mut attrs = RawAttrs::new(&e);
        let mut out = Vec::new();
        while let Some((k, v)) = attrs.next_attr()? {
            out.push((k.to_string(), unescape(v)?.into_owned()));
        }
        Ok(out)
    }

    #[test]
    fn raw_attributes_scan_like_xml() {
        let got = attrs_of("<line number=\"3\"  hits = '4' x:y=\"a&amp;b&#33;\" e=\"\"/>").unwrap();
        let want = [("number", "3"), ("hits", "4"), ("x:y", "a&b!"), ("e", "")];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
        assert!(
            attrs_of("<line number=3/>")
                .unwrap_err()
                .contains("malformed attributes")
        );
        assert!(
            attrs_of("<line a b=\"1\"/>")
                .unwrap_err()
                .contains("malformed")
        );
        assert!(
            attrs_of("<line a=\"&lol;\"/>")
                .unwrap_err()
                .contains("`&lol;` is not allowed")
        );
        assert_eq!(attrs_of("<line>").unwrap(), []);
    }

    #[test]
    fn only_predefined_entities_and_char_refs_resolve() {
        assert_eq!(drain("<a>&amp;&#65;&#x42;</a>", 1024).unwrap(), 5);
        let err = drain("<a>&lol;</a>", 1024).unwrap_err();
        assert!(err.message.contains("`&lol;` is not allowed"), "{err}");
        assert_eq!(err.line, Some(1));
    }
}
