//! `.cocov.yaml` end to end: text in, manifest or error (kind, line, key, message) out.

use cocov::manifest::{CheckSpec, ManifestError, ManifestErrorKind, Mount, MountSource, parse};

fn refused(text: &str) -> ManifestError {
    match parse(text) {
        Ok(m) => panic!("accepted: {m:?}\n---\n{text}"),
        Err(e) => e,
    }
}

/// `version` plus the given body.
fn refused_body(body: &str) -> ManifestError {
    refused(&format!("version: 0.1.alpha\n{body}"))
}

fn mount(secret: &str, destination: &str, line: usize) -> Mount {
    Mount {
        source: MountSource::Secret(secret.into()),
        destination: destination.into(),
        line,
    }
}

const FULL: &str = r#"version: "0.1.alpha"
coverage:
  min_percent: 90
exclude_paths:
  - coverage/
  - "spec/**/.ignore"
defaults:
  checks:
    envs:
      KEY: "value"
      SHARED: "default"
    mounts:
      - source: secrets:NPM
        destination: ~/.npmrc
      - source: secrets:GEM
        destination: /etc/gemrc
checks:
  - plugin: cocov/rubocop:v0.1
    envs:
      SHARED: "own"
    mounts:
      - source: secrets:OTHER_NPM
        destination: ~/.npmrc
  - plugin: ghcr.io/cocov-ci/brakeman:v1
"#;

#[test]
fn the_documented_example_parses() {
    let m = parse(FULL).unwrap();
    assert_eq!(m.version, "0.1.alpha");
    assert_eq!(m.min_percent(), Some(90));
    assert_eq!(m.exclude_paths, ["coverage/", "spec/**/.ignore"]);
    assert!(m.is_excluded("coverage/index.html"));
    assert!(m.is_excluded("coverage/assets/app.js"));
    assert!(m.is_excluded("spec/models/.ignore"));
    assert!(!m.is_excluded("app/models/user.rb"));

    assert_eq!(m.checks.len(), 2);
    assert_eq!(m.checks[0].plugin, "cocov/rubocop:v0.1");
    assert_eq!(m.checks[0].plugin_name(), "cocov/rubocop");
    assert_eq!(m.checks[0].line, 18);
    assert_eq!(m.checks[1].plugin_name(), "brakeman");
    assert_eq!(m.checks[1].line, 24);
    let defaults = m.defaults.as_ref().unwrap();
    assert_eq!(
        defaults.mounts,
        [mount("NPM", "~/.npmrc", 13), mount("GEM", "/etc/gemrc", 15)]
    );
    assert_eq!(m.checks[0].mounts, [mount("OTHER_NPM", "~/.npmrc", 22)]);
    assert_eq!(
        m.checks[0].mounts[0].source.to_string(),
        "secrets:OTHER_NPM"
    );
    assert_eq!(m.checks[0].mounts[0].source.secret_name(), "OTHER_NPM");
}

#[test]
fn effective_checks_merge_defaults_as_documented() {
    let m = parse(FULL).unwrap();
    let effective = m.effective_checks();
    let first: &CheckSpec = &effective[0];
    assert_eq!(
        first.envs["KEY"], "value",
        "defaults kept for a check with envs (bug 26)"
    );
    assert_eq!(first.envs["SHARED"], "own", "the check wins");
    assert_eq!(
        first.mounts,
        [
            mount("OTHER_NPM", "~/.npmrc", 22),
            mount("GEM", "/etc/gemrc", 15)
        ]
    );
    let second = &effective[1];
    assert_eq!(second.envs.len(), 2);
    assert_eq!(second.envs["SHARED"], "default");
    assert_eq!(second.mounts, defaults_mounts());
    // Unmerged checks stay as written.
    assert!(m.checks[1].envs.is_empty());
}

fn defaults_mounts() -> Vec<Mount> {
    vec![mount("NPM", "~/.npmrc", 13), mount("GEM", "/etc/gemrc", 15)]
}

#[test]
fn minimal_manifests() {
    let m = parse("version: 0.1.alpha\n").unwrap();
    assert!(m.checks.is_empty() && m.coverage.is_none() && m.defaults.is_none());
    assert_eq!(m.min_percent(), None);
    assert!(!m.is_excluded("a.rb"));

    let m = parse("version: 0.1.alpha\nchecks: []\n").unwrap();
    assert!(m.checks.is_empty());
    assert!(m.effective_checks().is_empty());

    // `coverage:` present but empty, or without min_percent: a section with no gate.
    for body in ["coverage:\n", "coverage: {}\n"] {
        let m = parse(&format!("version: 0.1.alpha\n{body}")).unwrap();
        assert!(m.coverage.is_some(), "{body}");
        assert_eq!(m.min_percent(), None);
    }
    // `defaults` without `checks` has nothing to merge.
    assert_eq!(
        parse("version: 0.1.alpha\ndefaults: {}\n")
            .unwrap()
            .defaults,
        None
    );
    // Anything goes as env names' values, as long as they are strings.
    let m = parse(
        "version: 0.1.alpha\nchecks:\n  - plugin: a\n    envs: {X: '1', Y: 'true', _z: ''}\n",
    )
    .unwrap();
    assert_eq!(m.checks[0].envs["X"], "1");
    assert_eq!(m.checks[0].envs["_z"], "");
}

#[test]
fn min_percent_bounds() {
    for (value, want) in [("0", 0), ("100", 100), ("75", 75)] {
        let m = parse(&format!(
            "version: 0.1.alpha\ncoverage:\n  min_percent: {value}\n"
        ))
        .unwrap();
        assert_eq!(m.min_percent(), Some(want));
    }
    let e = refused_body("coverage:\n  min_percent: \"a\"\n");
    assert_eq!(e.kind, ManifestErrorKind::InvalidOrMissingData);
    assert_eq!(
        e.message,
        "Expected coverage.min_percent to match Integer. Assertion failed due to current object's value: \"a\""
    );
    assert_eq!((e.line, e.path.as_str()), (Some(3), "coverage.min_percent"));
    let e = refused_body("coverage:\n  min_percent: 90.5\n");
    assert!(
        e.message
            .ends_with("to match Integer. Assertion failed due to current object's value: 90.5")
    );
    let e = refused_body("coverage:\n  min_percent:\n");
    assert!(e.message.ends_with("value: nil"), "{e}");
    for bad in ["101", "-1", "99999999999999999999999"] {
        let e = refused_body(&format!("coverage:\n  min_percent: {bad}\n"));
        assert_eq!(
            e.message,
            format!(
                "Expected coverage.min_percent to be between 0 and 100. Assertion failed due to current object's value: {bad}"
            )
        );
    }
}

#[test]
fn root_and_version_errors_in_the_original_order() {
    use ManifestErrorKind::*;
    let cases: &[(&str, ManifestErrorKind, &str)] = &[
        (
            "",
            RootMustBeMapping,
            "Invalid manifest: Root should be a mapping",
        ),
        (
            "- a\n",
            RootMustBeMapping,
            "Invalid manifest: Root should be a mapping",
        ),
        (
            "just text\n",
            RootMustBeMapping,
            "Invalid manifest: Root should be a mapping",
        ),
        (
            "checks: []\n",
            MissingVersion,
            "Invalid manifest: Missing version field",
        ),
        (
            "version:\n",
            MissingVersion,
            "Invalid manifest: Missing version field",
        ),
        (
            "version: '  '\n",
            MissingVersion,
            "Invalid manifest: Missing version field",
        ),
        (
            "version: 0.1\n",
            VersionTypeMismatch,
            "Invalid manifest: Version must be a string",
        ),
        (
            "version: 1\n",
            VersionTypeMismatch,
            "Invalid manifest: Version must be a string",
        ),
        (
            "version: [a]\n",
            VersionTypeMismatch,
            "Invalid manifest: Version must be a string",
        ),
        (
            "version: '0.1'\n",
            VersionUnsupported,
            "Invalid manifest: Unsupported version 0.1",
        ),
        (
            "version: 0.2.beta\n",
            VersionUnsupported,
            "Invalid manifest: Unsupported version 0.2.beta",
        ),
        // The version is judged before the rest of the schema.
        (
            "foo: 1\nversion: 2.0.0\n",
            VersionUnsupported,
            "Invalid manifest: Unsupported version 2.0.0",
        ),
    ];
    for (text, kind, message) in cases {
        let e = refused(text);
        assert_eq!((e.kind, e.message.as_str()), (*kind, *message), "{text:?}");
    }
    assert_eq!(
        refused("version: 3\n").status_description(),
        "Failure: Invalid manifest"
    );
    assert_eq!(
        refused("version: '3'\n").status_description(),
        "Invalid manifest: Unsupported version"
    );
    let e = refused("a: 1\nb: 2\n");
    assert_eq!(
        e.to_string(),
        ".cocov.yaml line 1, key version: Invalid manifest: Missing version field"
    );
}

#[test]
fn extra_keys_are_refused_everywhere_but_envs() {
    let e = refused_body("coverage:\n  min_percent: 1\n  foo: 2\n");
    assert_eq!(e.message, "Unexpected extra key `foo' on `coverage'");
    assert_eq!((e.line, e.path.as_str()), (Some(4), "coverage.foo"));
    let e = refused_body("foo: 1\n");
    assert_eq!(e.message, "Unexpected extra key `foo' on `'");
    assert_eq!(
        e.to_string(),
        ".cocov.yaml line 2, key foo: Unexpected extra key `foo' on `'"
    );
    let bodies = [
        (
            "defaults: {checks: {}, x: 1}\n",
            "Unexpected extra key `x' on `defaults'",
        ),
        (
            "defaults: {checks: {envs: {}, x: 1}}\n",
            "Unexpected extra key `x' on `defaults.checks'",
        ),
        (
            "checks:\n  - plugin: a\n    image: b\n",
            "Unexpected extra key `image' on `checks.0'",
        ),
        (
            "checks:\n  - plugin: a\n    mounts:\n      - {source: 'secrets:A', destination: /a, mode: 1}\n",
            "Unexpected extra key `mode' on `checks.0.mounts.0'",
        ),
    ];
    for (body, message) in bodies {
        assert_eq!(refused_body(body).message, message, "{body}");
    }
}

#[test]
fn check_entries() {
    let e = refused_body("checks:\n  - plugin: a\n  - envs: {}\n");
    assert_eq!(e.message, "checks.1 is missing a required key: plugin");
    assert_eq!((e.line, e.path.as_str()), (Some(4), "checks.1"));
    assert_eq!(
        e.status_description_with_location(),
        "Failure: Invalid or Missing Data in Manifest (line 4, checks.1)"
    );

    let e = refused_body("checks:\n  - plugin: ' '\n");
    assert_eq!(e.message, "Expected checks.0.plugin to not be blank");
    let e = refused_body("checks:\n  - plugin: 12\n");
    assert_eq!(
        e.message,
        "Expected checks.0.plugin to match string. Assertion failed due to current object's value: 12"
    );
    let e = refused_body("checks:\n  - a\n");
    assert_eq!(
        e.message,
        "Expected checks.0 to match Hash. Assertion failed due to current object's value: \"a\""
    );
    for bad in ["'a b'", "'cocov/'", "':v1'", "'@sha256:x'"] {
        let e = refused_body(&format!("checks:\n  - plugin: {bad}\n"));
        assert!(e.message.starts_with("Invalid plugin `"), "{bad}: {e}");
    }
}

#[test]
fn duplicate_plugins_name_both_lines() {
    let e = refused_body(
        "checks:\n  - plugin: cocov/shellcheck:v1\n  - plugin: cocov/rubocop\n  - plugin: cocov/shellcheck@sha256:ab\n",
    );
    assert_eq!(e.kind, ManifestErrorKind::InvalidOrMissingData);
    assert_eq!((e.line, e.path.as_str()), (Some(5), "checks.2.plugin"));
    assert_eq!(
        e.message,
        "Plugin `cocov/shellcheck' is configured twice: checks.0 (line 3) and checks.2 (line 5); each plugin runs once per commit"
    );
}

#[test]
fn envs_values_must_be_strings_and_names_identifiers() {
    let body =
        "checks:\n  - plugin: a\n  - plugin: b\n    envs:\n      OK: 'x'\n      DEBUG: true\n";
    let e = refused_body(body);
    assert_eq!(
        e.to_string(),
        ".cocov.yaml line 7, key checks.1.envs.DEBUG: Expected checks.1.envs.DEBUG to match string. Assertion failed due to current object's value: true"
    );
    let e = refused_body("defaults:\n  checks:\n    envs:\n      N: 1\n");
    assert_eq!(e.path, "defaults.checks.envs.N");
    assert!(e.message.ends_with("value: 1"));
    let e = refused_body("checks:\n  - plugin: a\n    envs: {FOO-BAR: x}\n");
    assert_eq!(e.path, "checks.0.envs.FOO-BAR");
    assert!(
        e.message
            .starts_with("Invalid environment variable name `FOO-BAR' on `checks.0.envs'")
    );
    let e = refused_body("checks:\n  - plugin: a\n    envs: {A: \"x\\0y\"}\n");
    assert!(e.message.contains("NUL"), "{e}");
}

#[test]
fn loader_interpreter_and_contract_variables_are_refused_with_line_and_key() {
    let body = "checks:\n  - plugin: a\n    envs:\n      OK: x\n      LD_PRELOAD: /work/evil.so\n";
    let e = refused_body(body);
    assert_eq!(e.kind, ManifestErrorKind::InvalidOrMissingData);
    assert_eq!(
        e.to_string(),
        ".cocov.yaml line 6, key checks.0.envs.LD_PRELOAD: Environment variable `LD_PRELOAD' on `checks.0.envs' is reserved: loader, interpreter and COCOV_ variables cannot be set by a manifest"
    );
    // In defaults too, and whatever the case.
    let e = refused_body("defaults:\n  checks:\n    envs:\n      pythonpath: /work\n");
    assert_eq!(e.path, "defaults.checks.envs.pythonpath");
    assert!(e.message.contains("reserved"), "{e}");
    for name in [
        "LD_LIBRARY_PATH",
        "PATH",
        "PYTHONPATH",
        "NODE_OPTIONS",
        "RUBYOPT",
        "PERL5LIB",
        "COCOV_OUTPUT_FILE",
        "BASH_ENV",
        "GLIBC_TUNABLES",
    ] {
        let e = refused_body(&format!(
            "checks:\n  - plugin: a\n    envs: {{{name}: x}}\n"
        ));
        assert_eq!(e.path, format!("checks.0.envs.{name}"), "{e}");
    }
    for name in cocov::manifest::DENIED_ENV_NAMES {
        assert!(
            parse(&format!(
                "version: 0.1.alpha\ndefaults: {{checks: {{envs: {{{name}: x}}}}}}\n"
            ))
            .is_err(),
            "{name}"
        );
    }
    // Ordinary variables stay allowed.
    parse("version: 0.1.alpha\nchecks:\n  - plugin: a\n    envs: {DEBUG: '1', LDFLAGS: x, NODE_ENV: ci}\n")
        .unwrap();
}

#[test]
fn null_sections_are_errors_not_crashes() {
    // Bug 25: the original validated these and then crashed.
    let cases = [
        ("checks:\n", "checks", "Array", 2),
        ("defaults:\n", "defaults", "Hash", 2),
        ("defaults:\n  checks:\n", "defaults.checks", "Hash", 3),
        (
            "defaults:\n  checks:\n    envs:\n",
            "defaults.checks.envs",
            "Hash",
            4,
        ),
        (
            "defaults:\n  checks:\n    mounts:\n",
            "defaults.checks.mounts",
            "Array",
            4,
        ),
        ("exclude_paths:\n", "exclude_paths", "Array", 2),
        (
            "checks:\n  - plugin: a\n    envs:\n",
            "checks.0.envs",
            "Hash",
            4,
        ),
        (
            "checks:\n  - plugin: a\n    mounts: ~\n",
            "checks.0.mounts",
            "Array",
            4,
        ),
        ("checks:\n  -\n", "checks.0", "Hash", 3),
    ];
    for (body, path, expected, line) in cases {
        let e = refused_body(body);
        assert_eq!(e.kind, ManifestErrorKind::InvalidOrMissingData, "{body}");
        assert_eq!(
            e.message,
            format!(
                "Expected {path} to match {expected}. Assertion failed due to current object's value: nil"
            ),
            "{body}"
        );
        assert_eq!((e.path.as_str(), e.line), (path, Some(line)), "{body}");
    }
}

#[test]
fn exclude_paths_entries() {
    let e = refused_body("exclude_paths: [a/, '']\n");
    assert_eq!(e.message, "Expected exclude_paths.1 to not be blank");
    let e = refused_body("exclude_paths: [1]\n");
    assert!(
        e.message
            .starts_with("Expected exclude_paths.0 to match string.")
    );
    let e = refused_body("exclude_paths:\n  - ok/\n  - '[a-'\n");
    assert_eq!((e.line, e.path.as_str()), (Some(4), "exclude_paths.1"));
    assert!(
        e.message
            .starts_with("Invalid pattern `[a-' on `exclude_paths.1': "),
        "{e}"
    );
    let e = refused_body("exclude_paths: a/\n");
    assert!(
        e.message
            .starts_with("Expected exclude_paths to match Array.")
    );
}

#[test]
fn mount_errors() {
    use ManifestErrorKind::*;
    let cases: &[(&str, ManifestErrorKind, &str)] = &[
        (
            "defaults:\n  checks:\n    mounts:\n      - {source: 'secrets:A', destination: ~/.npmrc}\n      - {source: 'secrets:B', destination: ~/.npmrc/}\n",
            DuplicatedMountDestination,
            "Duplicated mount destination `~/.npmrc/' in defaults definition",
        ),
        (
            "checks:\n  - plugin: cocov/x\n    mounts:\n      - {source: 'secrets:A', destination: /a}\n      - {source: 'secrets:B', destination: /a}\n",
            DuplicatedMountDestination,
            "Duplicated mount destination `/a' in plugin `cocov/x'",
        ),
        (
            "checks:\n  - mounts:\n      - {source: 'env:FOO', destination: /a}\n    plugin: cocov/x\n",
            InvalidMountSource,
            "Invalid mount source `env:FOO' in plugin `cocov/x': Only secrets are mountable.",
        ),
        (
            "defaults:\n  checks:\n    mounts:\n      - {source: 'file:/etc/passwd', destination: /a}\n",
            InvalidMountSource,
            "Invalid mount source `file:/etc/passwd' in defaults definition: Only secrets are mountable.",
        ),
        (
            // Ruby's line-anchored `^secrets:` accepted this.
            "checks:\n  - plugin: a\n    mounts:\n      - {source: \"x\\nsecrets:A\", destination: /a}\n",
            InvalidMountSource,
            "Invalid mount source `x\nsecrets:A' in plugin `a': Only secrets are mountable.",
        ),
        (
            "checks:\n  - plugin: a\n    mounts:\n      - {source: 'secrets:', destination: /a}\n",
            InvalidMountSource,
            "Invalid mount source `secrets:' in plugin `a': secret names must match [A-Za-z_][A-Za-z0-9_]*.",
        ),
        (
            "checks:\n  - plugin: a\n    mounts:\n      - {source: 'secrets:A-B', destination: /a}\n",
            InvalidMountSource,
            "Invalid mount source `secrets:A-B' in plugin `a': secret names must match [A-Za-z_][A-Za-z0-9_]*.",
        ),
        (
            "checks:\n  - plugin: a\n    mounts:\n      - {source: 'secrets:A'}\n",
            InvalidOrMissingData,
            "checks.0.mounts.0 is missing a required key: destination",
        ),
        (
            "checks:\n  - plugin: a\n    mounts:\n      - {source: '', destination: /a}\n",
            InvalidOrMissingData,
            "Expected checks.0.mounts.0.source to not be blank",
        ),
        (
            "checks:\n  - plugin: a\n    mounts:\n      - {source: 'secrets:A', destination: ../x}\n",
            InvalidOrMissingData,
            "Invalid mount destination `../x' on `checks.0.mounts.0.destination': it must be an absolute path or start with ~/, name a file, and not contain `..'",
        ),
    ];
    for (body, kind, message) in cases {
        let e = refused_body(body);
        assert_eq!((e.kind, e.message.as_str()), (*kind, *message), "{body}");
    }
    let e = refused_body(cases[0].0);
    assert_eq!(
        (e.line, e.path.as_str()),
        (Some(6), "defaults.checks.mounts.1.destination")
    );
    assert_eq!(
        e.status_description(),
        "Failure: Duplicated mount destination"
    );
    assert_eq!(
        refused_body(cases[2].0).status_description(),
        "Failure: Invalid mount source"
    );
}

#[test]
fn schema_errors_outrank_earlier_mount_errors() {
    // As in the original, mounts are judged after the whole schema has passed.
    let body = "checks:\n  - plugin: a\n    mounts:\n      - {source: 'env:X', destination: /a}\n  - plugin: b\n    envs: {A: 1}\n";
    let e = refused_body(body);
    assert_eq!(
        (e.kind, e.path.as_str()),
        (ManifestErrorKind::InvalidOrMissingData, "checks.1.envs.A")
    );
    // Without the schema error, the mount error shows.
    let e = refused_body(&body.replace("{A: 1}", "{A: '1'}"));
    assert_eq!(e.kind, ManifestErrorKind::InvalidMountSource);
    assert_eq!(
        (e.line, e.path.as_str()),
        (Some(5), "checks.0.mounts.0.source")
    );
}

#[test]
fn yaml_problems_are_manifest_errors() {
    let cases = [
        "version: 0.1.alpha\nchecks:\n  - plugin: [a\n",
        "version: 0.1.alpha\nchecks: &c []\nother: *c\n",
        "version: 0.1.alpha\n---\nversion: 0.1.alpha\n",
        "version: !!str 0.1.alpha\n",
        "version: 0.1.alpha\nversion: 0.1.alpha\n",
        "version: 0.1.alpha\n  checks: []\n",
    ];
    for text in cases {
        let e = refused(text);
        assert_eq!(e.kind, ManifestErrorKind::InvalidYaml, "{text:?}: {e}");
        assert!(e.line.is_some(), "{text:?}");
        assert_eq!(
            e.status_description(),
            "Invalid manifest: YAML syntax error"
        );
    }
    let e = refused("version: 0.1.alpha\nchecks:\n  - plugin: [a\n");
    assert!(e.to_string().starts_with(".cocov.yaml line "), "{e}");
    assert!(e.to_string().contains(", column "), "{e}");
    let huge = format!(
        "version: 0.1.alpha\n#{}\n",
        "x".repeat(cocov::manifest::MAX_MANIFEST_BYTES)
    );
    assert_eq!(refused(&huge).kind, ManifestErrorKind::InvalidYaml);
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "\n",
    " ",
    "  ",
    "- ",
    ": ",
    ":",
    "{",
    "}",
    "[",
    "]",
    ",",
    "'",
    "\"",
    "&a ",
    "*a",
    "!!str ",
    "!x ",
    "---\n",
    "...\n",
    "#",
    "~",
    "null",
    "true",
    "1",
    "1.5",
    "-1",
    "0x1F",
    "secrets:",
    "/",
    "~/",
    "..",
    "plugin",
    "envs",
    "mounts",
    "source",
    "destination",
    "checks",
    "defaults",
    "coverage",
    "min_percent",
    "exclude_paths",
    "version",
    "0.1.alpha",
    "? ",
    "|\n",
    ">\n",
    "\t",
    "é",
    "\\",
    "%YAML 1.2\n",
    "\u{feff}",
    "\0",
    "**",
    "{a,b}",
    "[!a]",
];

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for _ in 0..=rng.below(6) {
        let at = rng.below(chars.len() + 1);
        match rng.below(5) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => {
                let end = (at + rng.below(20)).min(chars.len());
                chars.drain(at..end);
            }
            2 => chars.truncate(at),
            _ => {
                let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())];
                for (i, c) in fragment.chars().enumerate() {
                    chars.insert(at + i, c);
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn random_document(rng: &mut Rng) -> String {
    (0..rng.below(60))
        .map(|_| FRAGMENTS[rng.below(FRAGMENTS.len())])
        .collect()
}

#[test]
fn thousands_of_mutated_manifests_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut refused_count) = (0, 0);
    for i in 0..4000 {
        let text = if i % 4 == 0 {
            random_document(&mut rng)
        } else {
            mutate(&mut rng, FULL)
        };
        match parse(&text) {
            Ok(m) => {
                ok += 1;
                // A manifest that parsed is usable: merging and matching must hold up too.
                let _ = m.effective_checks();
                let _ = m.is_excluded("coverage/a/b.rb");
            }
            Err(e) => {
                refused_count += 1;
                assert!(ManifestErrorKind::ALL.contains(&e.kind));
                assert!(!e.message.is_empty(), "{text:?}");
                let lines = text.lines().count() + 1;
                if let Some(line) = e.line {
                    assert!(
                        (1..=lines).contains(&line),
                        "line {line} of {lines}: {e}\n{text:?}"
                    );
                }
                assert!(e.status_description_with_location().chars().count() <= 140);
                assert!(e.to_string().starts_with(".cocov.yaml"));
            }
        }
    }
    // Both outcomes are exercised, or the mutations are too weak (or too strong) to test much.
    assert!(
        ok > 100 && refused_count > 1000,
        "ok {ok}, refused {refused_count}"
    );
}

#[test]
fn a_manifest_that_is_not_a_regular_file_is_refused_with_its_own_kind() {
    use cocov::git::TreeFile;
    use cocov::manifest::{MAX_MANIFEST_BYTES, parse_file};
    assert!(parse_file(&TreeFile::Absent).is_none());
    let ok = TreeFile::Regular(b"version: 0.1.alpha\n".to_vec());
    assert!(parse_file(&ok).unwrap().is_ok());
    let e = parse_file(&TreeFile::NotRegular("a symbolic link"))
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind, ManifestErrorKind::NotAFile);
    assert_eq!(e.kind.as_str(), "manifest_not_a_file");
    assert_eq!(
        e.to_string(),
        ".cocov.yaml: The manifest is a symbolic link; it must be a regular file (links are not followed)"
    );
    let e = parse_file(&TreeFile::TooLarge(MAX_MANIFEST_BYTES as u64 + 1))
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind, ManifestErrorKind::InvalidYaml);
    assert!(e.message.contains("at most 262144 bytes"), "{e}");
}

/// PostgreSQL cannot store a NUL character (check names, environments and error messages are
/// stored), so a manifest string holding one — written as a `"\0"` escape, a `\x00` escape or a
/// raw byte, as a value or as a key — is refused like a YAML error, at its line.
#[test]
fn strings_with_a_nul_character_are_refused() {
    for body in [
        "checks:\n  - plugin: \"cocov/a\\0b:v1\"\n",
        "checks:\n  - plugin: cocov/a:v1\n    envs:\n      K: \"\\x00\"\n",
        "checks:\n  - plugin: cocov/a:v1\n    envs:\n      \"K\\0\": v\n",
        "exclude_paths:\n  - \"a\u{0}\"\n",
        // Unquoted: the YAML parser alone would stop reading here and accept the rest unread.
        "exclude_paths:\n  - a\u{0}\nchecks: 1\n",
    ] {
        let e = refused_body(body);
        assert_eq!(e.kind, ManifestErrorKind::InvalidYaml, "{body:?}: {e}");
        assert!(e.to_string().contains("NUL"), "{body:?}: {e}");
        assert!(e.line.is_some_and(|l| l > 1), "{body:?}: {e}");
        assert!(!e.to_string().contains('\0'), "{body:?}: {e}");
    }
}
