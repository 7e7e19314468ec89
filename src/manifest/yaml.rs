//! Safe YAML loading into a small tree that remembers where every node and key was written.
//!
//! Built on `saphyr-parser`'s event stream rather than a ready-made document loader, so that
//! anchors, aliases and tags are refused as they appear (no alias expansion, hence no alias
//! bombs) and so that the tree's depth and the document's size stay bounded. Plain scalars are
//! resolved with the YAML 1.2 core schema (`yes`/`on` are strings, unlike Ruby's YAML 1.1);
//! quoted and block scalars are always strings.

use std::collections::HashMap;
use std::fmt::Write as _;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};

use super::error::{ManifestError, ManifestErrorKind};

/// Manifests are a few hundred bytes; anything this large is a mistake or an attack.
pub const MAX_MANIFEST_BYTES: usize = 256 * 1024;
/// The schema nests five levels deep (`checks.0.mounts.0.source`); the margin is for error
/// messages about wrongly nested input. The bound also keeps `Drop` of the tree shallow.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    /// The source text; parsed on demand (it may not fit any machine integer).
    Int(String),
    /// The source text (`1.5`, `.inf`, …).
    Float(String),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_line: usize,
    pub key_column: usize,
    pub value: Node,
}

impl Value {
    /// Ruby-`inspect`-like rendering for validator messages (`"a"`, `1`, `nil`, `[1, 2]`,
    /// `{"a"=>1}`), cut short so that a huge value cannot make a huge message.
    pub fn inspect(&self) -> String {
        const BUDGET: usize = 120;
        let mut out = String::new();
        self.inspect_into(&mut out, BUDGET);
        if out.len() > BUDGET {
            let mut cut = BUDGET;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
        }
        out
    }

    fn inspect_into(&self, out: &mut String, budget: usize) {
        if out.len() > budget {
            return;
        }
        match self {
            Value::Null => out.push_str("nil"),
            Value::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Value::Int(text) | Value::Float(text) => out.push_str(text),
            Value::Str(s) => {
                let _ = write!(out, "{s:?}");
            }
            Value::Seq(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.value.inspect_into(out, budget);
                    if out.len() > budget {
                        return;
                    }
                }
                out.push(']');
            }
            Value::Map(entries) => {
                out.push('{');
                for (i, entry) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{:?}=>", entry.key);
                    entry.value.value.inspect_into(out, budget);
                    if out.len() > budget {
                        return;
                    }
                }
                out.push('}');
            }
        }
    }
}

/// Parses one YAML document. An empty document (nothing but comments) is a `Null` node.
pub(crate) fn load(text: &str) -> Result<Node, ManifestError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::too_large(text.len() as u64));
    }
    // The parser takes a raw NUL for the end of the stream and would ignore what follows.
    if let Some(at) = text.find('\0') {
        let line = text[..at].matches('\n').count() + 1;
        let column = text[..at].rfind('\n').map_or(at, |nl| at - nl - 1) + 1;
        return Err(ManifestError::new(
            ManifestErrorKind::InvalidYaml,
            line,
            column,
            "",
            "The manifest contains a NUL character",
        ));
    }
    let mut builder = Builder::default();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(syntax_error)?;
        builder.event(event, span)?;
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Null,
        line: 1,
        column: 1,
    }))
}

fn syntax_error(e: ScanError) -> ManifestError {
    let mark = e.marker();
    ManifestError::new(
        ManifestErrorKind::InvalidYaml,
        mark.line().max(1),
        mark.col() + 1,
        "",
        format!("YAML syntax error: {}", e.info()),
    )
}

fn yaml_error(span: Span, message: &str) -> ManifestError {
    ManifestError::new(
        ManifestErrorKind::InvalidYaml,
        span.start.line().max(1),
        span.start.col() + 1,
        "",
        message,
    )
}

enum Frame {
    Seq {
        at: Node,
        items: Vec<Node>,
    },
    Map {
        at: Node,
        entries: Vec<Entry>,
        /// Key name → line of its first appearance, to refuse duplicates in linear time.
        seen: HashMap<String, usize>,
        pending_key: Option<(String, usize, usize)>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    documents: usize,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), ManifestError> {
        let is_sequence = matches!(event, Event::SequenceStart(..));
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Ok(()),
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(yaml_error(
                        span,
                        "The manifest must be a single YAML document (found a second `---`)",
                    ));
                }
                Ok(())
            }
            Event::Alias(_) => Err(anchors_refused(span)),
            Event::Scalar(text, style, anchor, tag) => {
                refuse_decorations(anchor, tag.is_some(), span)?;
                // A `"\0"` escape (or a raw NUL) would end up in a status description or a
                // check's environment, and PostgreSQL cannot store the character.
                if text.contains('\0') {
                    return Err(yaml_error(span, "Strings cannot contain a NUL character"));
                }
                let (line, column) = (span.start.line().max(1), span.start.col() + 1);
                if let Some(Frame::Map {
                    pending_key: None, ..
                }) = self.stack.last()
                {
                    // Keys are compared as written: `1:`, `true:` and `~:` are keys "1", "true", "~".
                    return self.push_key(text.into_owned(), line, column);
                }
                let implicit = span.is_empty();
                let node = Node {
                    value: resolve_scalar(&text, style),
                    line,
                    column,
                };
                self.complete(node, implicit, span)
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                refuse_decorations(anchor, tag.is_some(), span)?;
                if let Some(Frame::Map {
                    pending_key: None, ..
                }) = self.stack.last()
                {
                    return Err(yaml_error(
                        span,
                        "Mapping keys must be plain strings, not lists or mappings",
                    ));
                }
                if self.stack.len() >= MAX_DEPTH {
                    return Err(yaml_error(
                        span,
                        &format!("The manifest nests deeper than {MAX_DEPTH} levels"),
                    ));
                }
                let at = Node {
                    value: Value::Null,
                    line: span.start.line().max(1),
                    column: span.start.col() + 1,
                };
                self.stack.push(if is_sequence {
                    Frame::Seq {
                        at,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        at,
                        entries: Vec::new(),
                        seen: HashMap::new(),
                        pending_key: None,
                    }
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq { at, items }) => Node {
                        value: Value::Seq(items),
                        ..at
                    },
                    Some(Frame::Map { at, entries, .. }) => Node {
                        value: Value::Map(entries),
                        ..at
                    },
                    // The parser balances its events; stay total anyway.
                    None => return Err(yaml_error(span, "Unbalanced YAML structure")),
                };
                self.complete(node, false, span)
            }
        }
    }

    /// Attaches a finished node to its parent (as a key, a value or a list item).
    fn complete(
        &mut self,
        mut node: Node,
        implicit: bool,
        span: Span,
    ) -> Result<(), ManifestError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => {
                // Scalar keys were taken by `push_key`, collection keys refused at their start.
                let Some((key, key_line, key_column)) = pending_key.take() else {
                    return Err(yaml_error(span, "Mapping keys must be plain strings"));
                };
                // `key:` with nothing after it: point at the key, not at the next line.
                if implicit {
                    node.line = key_line;
                    node.column = key_column;
                }
                entries.push(Entry {
                    key,
                    key_line,
                    key_column,
                    value: node,
                });
                Ok(())
            }
        }
    }

    fn push_key(&mut self, key: String, line: usize, column: usize) -> Result<(), ManifestError> {
        if let Some(Frame::Map {
            seen, pending_key, ..
        }) = self.stack.last_mut()
        {
            if let Some(first) = seen.get(&key) {
                return Err(ManifestError::new(
                    ManifestErrorKind::InvalidYaml,
                    line,
                    column,
                    "",
                    format!("Duplicated key `{key}' (first written on line {first})"),
                ));
            }
            seen.insert(key.clone(), line);
            *pending_key = Some((key, line, column));
        }
        Ok(())
    }
}

fn anchors_refused(span: Span) -> ManifestError {
    yaml_error(
        span,
        "YAML anchors and aliases (`&name`, `*name`) are not allowed",
    )
}

fn refuse_decorations(anchor: usize, tagged: bool, span: Span) -> Result<(), ManifestError> {
    if anchor > 0 {
        return Err(anchors_refused(span));
    }
    if tagged {
        return Err(yaml_error(
            span,
            "YAML tags (`!name`, `!!type`) are not allowed; quote the value instead",
        ));
    }
    Ok(())
}

/// YAML 1.2 core schema for plain scalars.
fn resolve_scalar(text: &str, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::Str(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ if is_core_int(text) => Value::Int(text.to_owned()),
        _ if is_core_float(text) => Value::Float(text.to_owned()),
        _ => Value::Str(text.to_owned()),
    }
}

fn is_core_int(s: &str) -> bool {
    let digits = |d: &str, radix: u32| !d.is_empty() && d.chars().all(|c| c.is_digit(radix));
    if let Some(hex) = s.strip_prefix("0x") {
        return digits(hex, 16);
    }
    if let Some(oct) = s.strip_prefix("0o") {
        return digits(oct, 8);
    }
    digits(s.strip_prefix(['-', '+']).unwrap_or(s), 10)
}

fn is_core_float(s: &str) -> bool {
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let all_digits = |d: &str| d.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (!int.is_empty() || !frac.is_empty()) && all_digits(int) && all_digits(frac)
        }
        None => !mantissa.is_empty() && all_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok && !is_core_int(s)
}

/// Parses an integer scalar's text (`12`, `-3`, `+4`, `0x1F`, `0o17`); `None` if it does not
/// fit an `i64`.
pub(crate) fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(node: &Node) -> &[Entry] {
        match &node.value {
            Value::Map(entries) => entries,
            other => panic!("not a map: {other:?}"),
        }
    }

    fn err(text: &str) -> ManifestError {
        load(text).expect_err("should be refused")
    }

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let doc = load("version: 0.1.alpha\ncoverage:\n  min_percent: 90\n").unwrap();
        let top = map(&doc);
        assert_eq!(top[0].key, "version");
        assert_eq!((top[0].key_line, top[0].key_column), (1, 1));
        assert_eq!(top[0].value.value, Value::Str("0.1.alpha".into()));
        assert_eq!((top[0].value.line, top[0].value.column), (1, 10));
        let coverage = map(&top[1].value);
        assert_eq!((coverage[0].key_line, coverage[0].key_column), (3, 3));
        assert_eq!(coverage[0].value.value, Value::Int("90".into()));
    }

    #[test]
    fn empty_values_point_at_their_key() {
        let doc = load("version: x\nchecks:\n\n\nexclude_paths: []\n").unwrap();
        let checks = &map(&doc)[1];
        assert_eq!(checks.value.value, Value::Null);
        assert_eq!(checks.value.line, 2);
    }

    #[test]
    fn resolves_plain_scalars_with_the_core_schema() {
        let cases = [
            ("a: 1", Value::Int("1".into())),
            ("a: -12", Value::Int("-12".into())),
            ("a: 0x1F", Value::Int("0x1F".into())),
            ("a: 1.5", Value::Float("1.5".into())),
            ("a: .5e3", Value::Float(".5e3".into())),
            ("a: .inf", Value::Float(".inf".into())),
            ("a: 0.1", Value::Float("0.1".into())),
            ("a: 0.1.alpha", Value::Str("0.1.alpha".into())),
            ("a: true", Value::Bool(true)),
            ("a: yes", Value::Str("yes".into())),
            ("a: ~", Value::Null),
            ("a:", Value::Null),
            ("a: '1'", Value::Str("1".into())),
            ("a: \"true\"", Value::Str("true".into())),
            ("a: 2024-01-01", Value::Str("2024-01-01".into())),
            ("a: .", Value::Str(".".into())),
            ("a: 1e", Value::Str("1e".into())),
        ];
        for (text, want) in cases {
            assert_eq!(map(&load(text).unwrap())[0].value.value, want, "{text}");
        }
    }

    #[test]
    fn refuses_anchors_aliases_and_tags() {
        let e = err("a: &x [1]\nb: *x\n");
        assert_eq!(e.kind, ManifestErrorKind::InvalidYaml);
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("anchors and aliases"), "{e}");
        assert!(err("a: *x\n").message.contains("unknown anchor"));
        let tagged = err("a: !!str 1\n");
        assert!(tagged.message.contains("tags"), "{tagged}");
        assert!(err("a: !custom {}\n").message.contains("tags"));
    }

    #[test]
    fn refuses_an_alias_bomb_without_expanding_it() {
        let mut bomb =
            String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
        for i in 1..20 {
            let prev = (b'a' + i - 1) as char;
            let cur = (b'a' + i) as char;
            bomb.push_str(&format!("{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        }
        assert_eq!(err(&bomb).kind, ManifestErrorKind::InvalidYaml);
    }

    #[test]
    fn refuses_multiple_documents_large_and_deep_input() {
        let e = err("a: 1\n---\nb: 2\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("single YAML document"));
        assert!(load("---\na: 1\n...\n").is_ok());

        let big = format!("a: \"{}\"\n", "x".repeat(MAX_MANIFEST_BYTES));
        let e = err(&big);
        assert_eq!((e.kind, e.line), (ManifestErrorKind::InvalidYaml, None));

        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(err(&deep).message.contains("nests deeper than 32"));
        // Far deeper input stops at the parser's own recursion limit, still an error.
        let deeper = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(err(&deeper).kind, ManifestErrorKind::InvalidYaml);
        let nested_maps = format!("{}1{}", "{a: ".repeat(40), "}".repeat(40));
        assert_eq!(err(&nested_maps).kind, ManifestErrorKind::InvalidYaml);
    }

    #[test]
    fn syntax_errors_have_a_line_and_column() {
        let e = err("version: x\nchecks:\n  - plugin: [a\n");
        assert_eq!(e.kind, ManifestErrorKind::InvalidYaml);
        assert!(e.message.starts_with("YAML syntax error: "), "{e}");
        assert!(e.line.is_some() && e.column.is_some());

        let e = err("a: b\n c: d\n");
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn refuses_duplicate_and_complex_keys() {
        let e = err("version: a\ncoverage: {}\nversion: b\n");
        assert_eq!(e.line, Some(3));
        assert!(
            e.message
                .contains("Duplicated key `version' (first written on line 1)")
        );
        assert!(
            err("? [a]\n: 1\n")
                .message
                .contains("Mapping keys must be plain strings")
        );
        assert!(
            err("{ {a: 1}: 2 }")
                .message
                .contains("Mapping keys must be plain strings")
        );
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(load("").unwrap().value, Value::Null);
        assert_eq!(load("# only a comment\n").unwrap().value, Value::Null);
    }

    #[test]
    fn inspect_looks_like_ruby_and_stays_short() {
        let doc = load("a: [1, \"b\", ~, true, {c: 2.5}]").unwrap();
        assert_eq!(
            map(&doc)[0].value.value.inspect(),
            r#"[1, "b", nil, true, {"c"=>2.5}]"#
        );
        let long = load(&format!("a: [{}]", vec!["1"; 1000].join(","))).unwrap();
        let text = map(&long)[0].value.value.inspect();
        assert!(text.chars().count() <= 121 && text.ends_with('…'), "{text}");
    }

    #[test]
    fn parses_integers() {
        assert_eq!(parse_int("90"), Some(90));
        assert_eq!(parse_int("+4"), Some(4));
        assert_eq!(parse_int("0x10"), Some(16));
        assert_eq!(parse_int("0o10"), Some(8));
        assert_eq!(parse_int("99999999999999999999999"), None);
    }
}
