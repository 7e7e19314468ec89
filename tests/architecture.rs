//! The module graph of `src/` has no cycles: every top-level module may use the ones below it,
//! never one that (directly or through others) uses it back. Read from the source text, not
//! from the compiler: each `crate::<module>` reference (also inside `use crate::{a, b::c}`
//! groups; comments and string literals ignored) is an edge from the file's top-level module.
//! No database, no daemon: this runs in milliseconds (`cargo test --test integration
//! architecture::`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Edges between top-level modules, each with the files that make it.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// `source` without its comments, and with every string and char literal emptied, so that
/// neither a doc line nor a message mentioning `crate::x` counts as a use.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && !ident_before(&chars, i) {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}'), or else a lifetime, kept as it is.
            if next == Some('\\') {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                out.push_str("' '");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == '$')
}

fn skip_space(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

fn ident_at(chars: &[char], mut i: usize) -> (String, usize) {
    let mut name = String::new();
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        name.push(chars[i]);
        i += 1;
    }
    (name, i)
}

/// The first path segment after each `crate::` in `code` (already stripped by [`code_only`]):
/// `crate::a::b` gives `a`, `crate::{a::b, c, d::{e, f}}` gives `a`, `c` and `d`. `$crate`
/// (a macro's own crate) is not a reference of this file.
fn crate_references(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 5 <= chars.len() {
        if chars[i..i + 5].iter().collect::<String>() != "crate"
            || ident_before(&chars, i)
            || chars
                .get(i + 5)
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
        {
            i += 1;
            continue;
        }
        let mut j = skip_space(&chars, i + 5);
        if chars.get(j) != Some(&':') || chars.get(j + 1) != Some(&':') {
            i += 5;
            continue;
        }
        j = skip_space(&chars, j + 2);
        if chars.get(j) == Some(&'{') {
            // A group: the names at its top level, each up to its own `::`.
            let mut depth = 0;
            let mut expect_name = true;
            j += 1;
            while j < chars.len() {
                match chars[j] {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => expect_name = true,
                    c if expect_name && (c.is_alphanumeric() || c == '_') => {
                        let (name, end) = ident_at(&chars, j);
                        found.push(name);
                        expect_name = false;
                        j = end;
                        continue;
                    }
                    _ => {}
                }
                j += 1;
            }
        } else {
            let (name, end) = ident_at(&chars, j);
            if !name.is_empty() {
                found.push(name);
            }
            j = end;
        }
        i = j.max(i + 5);
    }
    found
}

/// The graph of the given files, keyed by their path relative to `src/` (`a/b.rs`, `c.rs`).
/// `lib.rs` and `main.rs` are the crate's root and binary, not modules of the graph.
fn graph(files: &BTreeMap<String, String>) -> Graph {
    let top_of = |path: &str| -> Option<String> {
        let first = path.split('/').next()?;
        if path == "lib.rs" || path == "main.rs" {
            return None;
        }
        Some(first.trim_end_matches(".rs").to_string())
    };
    let modules: BTreeSet<String> = files.keys().filter_map(|p| top_of(p)).collect();
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (path, source) in files {
        let Some(from) = top_of(path) else { continue };
        for to in crate_references(&code_only(source)) {
            if to != from && modules.contains(&to) {
                graph
                    .get_mut(&from)
                    .unwrap()
                    .entry(to)
                    .or_default()
                    .insert(path.clone());
            }
        }
    }
    graph
}

/// The strongly connected components of more than one module (Tarjan's algorithm): each one
/// is a set of modules that all reach each other, i.e. one or more cycles.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a Graph,
        next: usize,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        for w in s.graph[v].keys() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        next: 0,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.found.sort();
    state.found
}

/// Each cycle with the edges inside it and the files that make them: what to cut.
fn describe(graph: &Graph, cycles: &[Vec<String>]) -> String {
    let mut out = String::new();
    for component in cycles {
        out.push_str(&format!("cycle among {}:\n", component.join(", ")));
        for from in component {
            for (to, files) in &graph[from] {
                if component.contains(to) {
                    let files: Vec<&str> = files.iter().map(String::as_str).collect();
                    out.push_str(&format!("  {from} -> {to}  ({})\n", files.join(", ")));
                }
            }
        }
    }
    out
}

fn read_tree(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_tree(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).unwrap().to_string_lossy();
            let relative = relative.replace(std::path::MAIN_SEPARATOR, "/");
            files.insert(relative, std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn the_module_graph_of_src_has_no_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&root, &root, &mut files);
    let graph = graph(&files);
    assert!(graph.len() > 10, "src/ was not read: {:?}", graph.keys());
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "the module graph has cycles; cut one edge of each:\n{}",
        describe(&graph, &found)
    );
}

fn files(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect()
}

#[test]
fn a_two_module_cycle_is_reported_with_the_files_that_make_it() {
    let files = files(&[
        ("lib.rs", "pub mod a; pub mod b; pub mod c;"),
        ("a/mod.rs", "use crate::b::Thing;\n"),
        ("a/inner.rs", "fn f() { crate::c::g() }"),
        ("b.rs", "use crate::{\n    a::{self, Other},\n    c,\n};\n"),
        ("c.rs", "pub fn g() {}"),
    ]);
    let graph = graph(&files);
    let found = cycles(&graph);
    assert_eq!(found, [vec!["a".to_string(), "b".to_string()]]);
    let text = describe(&graph, &found);
    assert!(text.contains("a -> b  (a/mod.rs)"), "{text}");
    assert!(text.contains("b -> a  (b.rs)"), "{text}");
    assert!(!text.contains("-> c"), "{text}");
}

#[test]
fn comments_strings_and_macro_crates_are_not_references() {
    let files = files(&[
        ("a.rs", "use crate::b::X;\n"),
        (
            "b.rs",
            "// crate::a::Y\n/* crate::a /* nested */ crate::a */\n/// see [`crate::a`]\n\
             const S: &str = \"crate::a::Z\";\nconst R: &str = r#\"crate::a\"#;\n\
             const C: char = '\"'; macro_rules! m { () => { $crate::a::f() } }\n\
             pub(crate) fn f<'a>(x: &'a str) -> &'a str { x }\n",
        ),
    ]);
    let graph = graph(&files);
    assert!(cycles(&graph).is_empty(), "{graph:?}");
    assert_eq!(graph["a"].keys().collect::<Vec<_>>(), ["b"]);
    assert!(graph["b"].is_empty(), "{graph:?}");
}

#[test]
fn a_longer_cycle_is_one_component() {
    let files = files(&[
        ("a.rs", "fn f() { crate::b::f() }"),
        ("b.rs", "fn f() { crate :: c :: f() }"),
        ("c.rs", "use crate::{d, a};"),
        ("d.rs", ""),
    ]);
    assert_eq!(
        cycles(&graph(&files)),
        [vec!["a".to_string(), "b".to_string(), "c".to_string()]]
    );
}

/// The modules in the order `src/lib.rs`'s opening map names them (``[`name`]`` links).
fn layout_map_order(lib_rs: &str, modules: &BTreeSet<String>) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for line in lib_rs.lines().take_while(|l| l.starts_with("//!")) {
        for link in line.split("[`").skip(1) {
            let name = link.split('`').next().unwrap_or("");
            if modules.contains(name) && !order.iter().any(|m| m == name) {
                order.push(name.to_string());
            }
        }
    }
    order
}

/// Edges that point forward in `order` (a module using one the map lists after it).
fn forward_edges(graph: &Graph, order: &[String]) -> Vec<String> {
    let position = |m: &str| order.iter().position(|o| o == m);
    let mut found = Vec::new();
    for (from, edges) in graph {
        for to in edges.keys() {
            if let (Some(f), Some(t)) = (position(from), position(to))
                && t > f
            {
                found.push(format!("{from} -> {to}"));
            }
        }
    }
    found
}

#[test]
fn the_layout_map_of_lib_rs_and_the_readme_tree_match_the_modules() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("src");
    let mut files = BTreeMap::new();
    read_tree(&root, &root, &mut files);
    let graph = graph(&files);
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    let order = layout_map_order(&files["lib.rs"], &modules);
    let missing: Vec<&String> = modules.iter().filter(|m| !order.contains(m)).collect();
    assert!(
        missing.is_empty(),
        "src/lib.rs's map does not name {missing:?}"
    );
    let forward = forward_edges(&graph, &order);
    assert!(
        forward.is_empty(),
        "src/lib.rs's map lists these modules before what they use: {forward:?}"
    );
    let readme = std::fs::read_to_string(manifest_dir.join("README.md")).unwrap();
    let tree: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let unlisted: Vec<&String> = modules
        .iter()
        .filter(|m| {
            !tree.contains(&format!("{m}/").as_str()) && !tree.contains(&format!("{m}.rs").as_str())
        })
        .collect();
    assert!(
        unlisted.is_empty(),
        "the README's architecture tree does not list {unlisted:?}"
    );
}

#[test]
fn a_map_that_lists_a_module_before_what_it_uses_is_reported() {
    let files = files(&[
        (
            "lib.rs",
            "//! [`a`] first, then [`b`] and [`c::Thing`].\npub mod a;",
        ),
        ("a.rs", "use crate::b::X;"),
        ("b.rs", ""),
        ("c.rs", ""),
    ]);
    let graph = graph(&files);
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    let order = layout_map_order(&files["lib.rs"], &modules);
    assert_eq!(order, ["a", "b"]);
    assert_eq!(forward_edges(&graph, &order), ["a -> b"]);
}
