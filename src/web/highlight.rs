//! Syntax highlighting on the server, so the pages need no script for it: syntect's bundled
//! grammars, classed HTML (`hl-…` classes styled by the CSS asset, no inline styles, which the
//! CSP forbids). Each line is rendered on its own, with the spans still open from earlier lines
//! reopened and every span closed at its end, so a line can sit in its own table row.
//!
//! The code is the pusher's: the text is escaped by syntect, and work is bounded: files over
//! [`MAX_BYTES`] or lines over [`MAX_LINE_CHARS`] are shown plain (escaped) instead, since
//! grammar regexes can be slow on pathological input.

use std::sync::OnceLock;

use crate::http::html::escape;
use syntect::html::{ClassStyle, line_tokens_to_classed_spans};
use syntect::parsing::{ParseState, Scope, ScopeStack, SyntaxReference, SyntaxSet};

/// Larger sources are not highlighted.
pub const MAX_BYTES: usize = 512 * 1024;
/// Longer lines end highlighting for the rest of the source.
pub const MAX_LINE_CHARS: usize = 2000;

const STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

/// Loads the grammars now (about 20 ms) instead of on the first page that needs them.
pub fn warm_up() {
    let _ = syntaxes();
}

fn syntax_for(path: &str) -> &'static SyntaxReference {
    let set = syntaxes();
    let name = path.rsplit('/').next().unwrap_or(path);
    let extension = name.rsplit_once('.').map(|(_, e)| e).unwrap_or(name);
    set.find_syntax_by_extension(extension)
        .or_else(|| set.find_syntax_by_extension(name))
        .unwrap_or_else(|| set.find_syntax_plain_text())
}

/// `lines` of the file at `path` (a contiguous run, without line ends) as HTML, one string per
/// line.
pub fn lines_html(path: &str, lines: &[&str]) -> Vec<String> {
    let total: usize = lines.iter().map(|l| l.len() + 1).sum();
    let syntax = syntax_for(path);
    if total > MAX_BYTES || syntax.name == "Plain Text" {
        return lines.iter().map(|l| escape(l)).collect();
    }
    let mut state = ParseState::new(syntax);
    let mut stack = ScopeStack::new();
    let mut out = Vec::with_capacity(lines.len());
    let mut plain = false;
    for line in lines {
        if plain || line.chars().count() > MAX_LINE_CHARS {
            plain = true;
            out.push(escape(line));
            continue;
        }
        match highlight_line(&mut state, &mut stack, line) {
            Some(html) => out.push(html),
            None => {
                plain = true;
                out.push(escape(line));
            }
        }
    }
    out
}

/// One line: the spans open before it reopened, its tokens, every span closed at its end.
fn highlight_line(state: &mut ParseState, stack: &mut ScopeStack, line: &str) -> Option<String> {
    let with_end = format!("{line}\n");
    let ops = state.parse_line(&with_end, syntaxes()).ok()?;
    let mut html = String::new();
    for scope in stack.as_slice() {
        open(&mut html, *scope);
    }
    let (body, _) = line_tokens_to_classed_spans(&with_end, &ops, STYLE, stack).ok()?;
    html.push_str(body.trim_end_matches('\n'));
    for _ in 0..stack.len() {
        html.push_str("</span>");
    }
    Some(html)
}

fn open(html: &mut String, scope: Scope) {
    html.push_str("<span class=\"");
    for (i, atom) in scope.build_string().split('.').enumerate() {
        if i > 0 {
            html.push(' ');
        }
        html.push_str("hl-");
        html.push_str(atom);
    }
    html.push_str("\">");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_classed_and_escaped_line_by_line() {
        let lines = ["/* a <b>", "still comment */ fn main() {}"];
        let html = lines_html("src/main.rs", &lines);
        assert_eq!(html.len(), 2);
        assert!(html[0].contains("hl-comment"), "{}", html[0]);
        assert!(html[0].contains("&lt;b&gt;"), "{}", html[0]);
        // The comment opened on line 1 is reopened and closed on line 2.
        assert!(
            html[1].starts_with("<span class=\"hl-source hl-rust\"><span class=\"hl-comment"),
            "{}",
            html[1]
        );
        for line in &html {
            assert_eq!(
                line.matches("<span").count(),
                line.matches("</span>").count(),
                "{line}"
            );
            assert!(!line.contains("style="), "{line}");
        }
    }

    #[test]
    fn unknown_types_and_huge_lines_are_plain() {
        assert_eq!(lines_html("notes.unknownext", &["<x>"]), ["&lt;x&gt;"]);
        let long = "a".repeat(MAX_LINE_CHARS + 1);
        let html = lines_html("x.py", &["x = 1", &long, "y = 2"]);
        assert!(html[0].contains("<span"));
        assert_eq!(html[1], long);
        assert_eq!(html[2], "y = 2", "plain after a long line");
    }
}
