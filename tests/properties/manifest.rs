//! The `.cocov.yaml` manifest: arbitrary text and near-valid manifests with mutated fields give a
//! manifest or a positioned error with a status description GitHub accepts, in bounded memory.

use cocov::manifest::{self, MAX_MANIFEST_BYTES, STATUS_DESCRIPTION_MAX_CHARS};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::alloc;

/// Heap a parse may hold beyond what the text explains.
const BASE_MEMORY: usize = 4 << 20;
/// A YAML tree costs a few dozen bytes per node and a node can be two bytes of text (`1,`).
const BYTES_PER_TEXT_BYTE: usize = 64;

fn parse_checked(text: &str) -> Result<(), TestCaseError> {
    let (result, peak) = alloc::peak(|| manifest::parse(text));
    let budget = BASE_MEMORY + BYTES_PER_TEXT_BYTE * text.len().min(MAX_MANIFEST_BYTES);
    prop_assert!(
        peak <= budget,
        "{} bytes of manifest held {peak} bytes",
        text.len()
    );
    match result {
        Ok(m) => {
            // Every check came from at least a few bytes of text.
            prop_assert!(m.checks.len() <= text.len() / 8 + 1);
            prop_assert!(m.exclude_paths.len() <= text.len() / 2 + 1);
            for check in m.effective_checks() {
                prop_assert!(!check.plugin.is_empty());
                let _ = check.plugin_name();
            }
            let _ = m.is_excluded("src/a.rb");
            let _ = m.min_percent().map(|p| assert!(p <= 100));
        }
        Err(e) => {
            let short = e.status_description_with_location();
            prop_assert!(
                short.chars().count() <= STATUS_DESCRIPTION_MAX_CHARS,
                "{short}"
            );
            prop_assert!(!e.message.is_empty());
            // Messages quote the input; they must not grow with it.
            let shown = e.to_string();
            prop_assert!(shown.len() <= 4096, "{} bytes of message", shown.len());
            if let Some(line) = e.line {
                // YAML breaks lines at \n, \r\n and a lone \r; an error at the end of the
                // stream (`a: [`) is reported on the line after the last one.
                let breaks = text.matches('\n').count() + text.matches('\r').count()
                    - text.matches("\r\n").count();
                prop_assert!(
                    line >= 1 && line <= breaks + 2,
                    "line {line} of {breaks} breaks"
                );
            }
        }
    }
    Ok(())
}

/// A scalar as a manifest might hold it: plain, quoted, or something YAML reads differently.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9_/.:-]{0,16}",
        2 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        1 => "[0-9]{1,40}",
        1 => (1usize..2000).prop_map(|n| "y".repeat(n)),
        1 => prop::sample::select(vec![
            "~", "null", "yes", "on", "0x1F", "0o17", "-1", "1e309", ".inf", ".nan", "!!binary aGk=",
            "&a x", "*a", "!tag x", "{}", "[]", "{a: [b, {c: d}]}", "'it''s'", "\"\\u0000\"",
            "\"\\uD800\"", "|\n  block", ">-\n  folded", "? complex", "- - -", "\"\\x\"", "%",
            "@", "`", "\t", "secrets:", "secrets:../x",
        ])
        .prop_map(str::to_string),
    ]
}

fn nested() -> impl Strategy<Value = String> {
    prop_oneof![
        (1usize..3000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        (1usize..3000).prop_map(|n| format!("{}x{}", "{a: ".repeat(n), "}".repeat(n))),
        (1usize..200).prop_map(|n| {
            (0..n)
                .map(|i| format!("\n{}- ", "  ".repeat(i)))
                .collect::<String>()
        }),
        // An alias bomb: refused as soon as the first anchor appears.
        Just("\n  a: &a [x, x]\n  b: &b [*a, *a]\n  c: [*b, *b]".to_string()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![8 => scalar(), 1 => nested()]
}

fn env_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Z_][A-Z0-9_]{0,12}",
        1 => prop::sample::select(vec!["LD_PRELOAD", "PATH", "COCOV_X", "1BAD", "a-b", "BASH_FUNC_x%%"])
            .prop_map(str::to_string),
        1 => scalar(),
    ]
}

fn mount() -> impl Strategy<Value = String> {
    (
        prop_oneof!["secrets:[A-Za-z_][A-Za-z0-9_]{0,12}", value(),],
        prop_oneof![
            "/[a-z]{1,8}(/[a-z]{1,8}){0,2}",
            "~/[a-z.]{1,8}",
            Just("/a/../../etc/passwd".to_string()),
            value(),
        ],
    )
        .prop_map(|(source, destination)| {
            format!("\n      - source: {source}\n        destination: {destination}")
        })
}

fn envs() -> impl Strategy<Value = String> {
    prop::collection::vec((env_name(), value()), 0..4).prop_map(|envs| {
        envs.into_iter()
            .map(|(k, v)| format!("\n      {k}: {v}"))
            .collect()
    })
}

fn check() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            "cocov/[a-z]{1,10}:v[0-9]\\.[0-9]",
            "[a-z.]{1,8}(/[a-z]{1,8}){0,2}(:[a-z0-9.]{1,6})?(@sha256:[0-9a-f]{8})?",
            value(),
        ],
        prop::option::of(envs()),
        prop::option::of(prop::collection::vec(mount(), 0..3)),
    )
        .prop_map(|(plugin, envs, mounts)| {
            let mut out = format!("\n  - plugin: {plugin}");
            if let Some(envs) = envs {
                out += &format!("\n    envs:{}", envs);
            }
            if let Some(mounts) = mounts {
                out += &format!("\n    mounts:{}", mounts.concat());
            }
            out
        })
}

fn near_valid_manifest() -> impl Strategy<Value = String> {
    (
        prop_oneof![4 => Just("0.1.alpha".to_string()), 1 => value()],
        prop::option::of(prop_oneof!["[0-9]{1,3}", value(),]),
        prop::option::of(prop::collection::vec(
            prop_oneof!["[a-z*?/{},\\[\\]!.]{0,16}", value()],
            0..4,
        )),
        prop::option::of((envs(), prop::collection::vec(mount(), 0..3))),
        prop::option::of(prop::collection::vec(check(), 0..4)),
        prop::collection::vec((scalar(), value()), 0..2),
    )
        .prop_map(
            |(version, min_percent, excludes, defaults, checks, extra)| {
                let mut out = format!("version: {version}\n");
                if let Some(p) = min_percent {
                    out += &format!("coverage:\n  min_percent: {p}\n");
                }
                if let Some(excludes) = excludes {
                    out += "exclude_paths:";
                    for e in excludes {
                        out += &format!("\n  - {e}");
                    }
                    out += "\n";
                }
                if let Some((envs, mounts)) = defaults {
                    out += &format!(
                        "defaults:\n  checks:\n    envs:{}\n    mounts:{}\n",
                        envs,
                        mounts.concat()
                    );
                }
                if let Some(checks) = checks {
                    out += &format!("checks:{}\n", checks.concat());
                }
                for (k, v) in extra {
                    out += &format!("{k}: {v}\n");
                }
                out
            },
        )
}

/// `text` with a few bytes replaced, inserted or removed, read back as (lossy) UTF-8 the way
/// [`manifest::parse_file`] reads a tree's file.
fn mutated(text: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    let edit = (any::<Index>(), any::<u8>(), 0u8..3);
    (text, prop::collection::vec(edit, 0..4)).prop_map(|(text, edits)| {
        let mut bytes = text.into_bytes();
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let at = at.index(bytes.len());
            match op {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn arbitrary_text_gives_a_manifest_or_a_short_error(text in prop_oneof![
        any::<String>(),
        "[ -~\n\t]{0,400}",
        "([a-z_]{1,6}:( [-a-z0-9\\[\\]{}&*!|>'\"]{0,8})?\n( {1,6}- ?)?){0,30}",
        prop::collection::vec(any::<u8>(), 0..1024)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]) {
        parse_checked(&text)?;
    }

    #[test]
    fn near_valid_manifests_give_a_manifest_or_a_short_error(text in mutated(near_valid_manifest())) {
        parse_checked(&text)?;
    }

    #[test]
    fn oversized_manifests_are_refused_without_parsing(
        extra in 1usize..(64 << 10),
        line in prop::sample::select(vec!["a: b\n", "- [[[[\n", "x"]),
    ) {
        let mut text = line.repeat(MAX_MANIFEST_BYTES / line.len() + 1);
        text.push_str(&"z".repeat(extra));
        let (result, peak) = alloc::peak(|| manifest::parse(&text));
        prop_assert!(result.is_err());
        prop_assert!(peak <= 64 << 10, "held {peak} bytes");
    }
}
