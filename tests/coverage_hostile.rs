//! Hostile and broken reports through the public API: each must end in a clear `ParseError`
//! (never a panic, never unbounded memory), and nothing outside the report is ever read.

use std::path::Path;

use cocov::coverage::{Format, Limits, ParseError, parse, parse_with_limits};

fn parse_as(format: Format, input: &[u8]) -> Result<cocov::coverage::Report, ParseError> {
    parse(Some(format), input)
}

fn err(format: Option<Format>, input: &str) -> ParseError {
    match parse(format, input.as_bytes()) {
        Ok(report) => panic!("accepted {input:?}: {report:?}"),
        Err(e) => e,
    }
}

fn max_rss_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|u| u.max_rss())
        .unwrap_or(0)
}

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE coverage [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<coverage line-rate="1"><sources><source>&lol9;</source></sources><packages>
<package name="p"><classes><class name="a" filename="&lol9;"><lines>
<line number="1" hits="1"/></lines></class></classes></package></packages></coverage>"#;

#[test]
fn billion_laughs_fails_fast_without_expanding() {
    let before = max_rss_kib();
    for _ in 0..100 {
        let e = err(None, BILLION_LAUGHS);
        assert_eq!(e.format, Some(Format::Cobertura));
        assert_eq!(e.line, Some(14));
        assert!(e.message.contains("`&lol9;` is not allowed"), "{e}");
    }
    // In an attribute, for JaCoCo.
    let dtd = &BILLION_LAUGHS[..BILLION_LAUGHS.find("]>").unwrap() + 2];
    let jacoco = format!(
        "{}\n<report name=\"r\"><package name=\"&lol9;\"></package></report>",
        dtd.replace("DOCTYPE coverage", "DOCTYPE report")
    );
    let e = err(Some(Format::Jacoco), &jacoco);
    assert!(e.message.contains("`&lol9;` is not allowed"), "{e}");
    // Expanding would need gigabytes; the limit leaves room for the test harness itself.
    let grown_kib = max_rss_kib() - before;
    assert!(grown_kib < 64 * 1024, "max RSS grew by {grown_kib} KiB");
}

#[test]
fn external_entities_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-MARKER").unwrap();
    let xml = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE coverage SYSTEM \"file://{0}\" [\n\
         <!ENTITY xxe SYSTEM \"file://{0}\">]>\n<coverage line-rate=\"1\"><sources>\
         <source>&xxe;</source></sources><packages/></coverage>",
        secret.display()
    );
    let e = err(None, &xml);
    assert!(e.message.contains("`&xxe;` is not allowed"), "{e}");
    assert!(!format!("{e:?}").contains("TOP-SECRET"));
    // Without any reference, the DOCTYPE (external subset included) is skipped unread.
    let xml = xml.replace("<source>&xxe;</source>", "<source>/src</source>");
    let report = parse(None, xml.as_bytes()).unwrap();
    assert_eq!(report.sources, ["/src"]);
}

#[test]
fn oversized_doctype_is_bounded() {
    let limits = Limits {
        max_token_bytes: 64 * 1024,
        ..Limits::default()
    };
    let body = "<!ENTITY a \"b\">".repeat(100_000);
    let xml = format!("<!DOCTYPE coverage [{body}]><coverage line-rate=\"1\"></coverage>");
    let e = parse_with_limits(Some(Format::Cobertura), xml.as_bytes(), &limits).unwrap_err();
    assert!(e.message.contains("longer than 65536 bytes"), "{e}");
}

#[test]
fn every_format_rejects_its_malformed_lines_clearly() {
    let cases: [(Format, &str, &str); 14] = [
        (
            Format::Lcov,
            "TN:\nDA:3,1\n",
            "lcov report, line 2: DA before SF",
        ),
        (Format::Lcov, "SF:a.c\nDA:0,1\n", "line number 0"),
        (
            Format::Lcov,
            "SF:a.c\nDA:2,1x\n",
            "malformed hit count `1x`",
        ),
        (
            Format::GoCover,
            "mode: set\nm/a.go:9.1,3.1 1 1\n",
            "before it starts",
        ),
        (
            Format::GoCover,
            "mode: count\nm/a.go:1.1,2.1 1 x\n",
            "malformed hit count",
        ),
        (
            Format::SimpleCov,
            r#"{"coverage": {"a.rb": {"lines": [null, [1]]}}}"#,
            "unexpected type array on coverage information for a.rb, line offset 1",
        ),
        (
            Format::SimpleCov,
            r#"{"coverage": {"a.rb": {"lines": "all"}}}"#,
            "array of line hits for a.rb",
        ),
        (
            Format::SimpleCov,
            r#"{"coverage": [1, 2]}"#,
            "object of file paths",
        ),
        (
            Format::Cobertura,
            "<coverage><packages><package><classes><class filename=\"a\"><lines>\
             <line number=\"-1\" hits=\"1\"/></lines></class></classes></package></packages></coverage>",
            "negative line number `-1`",
        ),
        (
            Format::Cobertura,
            "<coverage><packages><package><classes><class><lines/></class></classes></package></packages></coverage>",
            "<class> without a filename attribute",
        ),
        (
            Format::Cobertura,
            "<coverage><packages><package><classes><class filename=\"a\"><lines>\
             <line number=\"1\" hits=\"lots\"/></lines></class></classes></package></packages></coverage>",
            "malformed hit count `lots`",
        ),
        (
            Format::Jacoco,
            "<report name=\"r\"><package name=\"p\"><sourcefile name=\"A.java\">\
             <line nr=\"3\" mi=\"0\"/></sourcefile></package></report>",
            "<line> without a ci attribute",
        ),
        (
            Format::Jacoco,
            "<report><sourcefile name=\"A.java\"/></report>",
            "<sourcefile> outside a <package>",
        ),
        (Format::Cobertura, "<coverage><packages>", "truncated"),
    ];
    for (format, input, want) in cases {
        let e = err(Some(format), input);
        assert_eq!(e.format, Some(format));
        assert!(
            e.to_string().contains(want),
            "{format}: {input:?} gave `{e}`"
        );
    }
}

#[test]
fn line_numbers_beyond_the_limit_never_allocate_them() {
    let huge = "4000000000";
    let inputs = [
        (Format::Lcov, format!("SF:a.c\nDA:{huge},1\n")),
        (
            Format::GoCover,
            format!("mode: set\nm/a.go:1.1,{huge}.2 1 1\n"),
        ),
        (
            Format::Cobertura,
            format!(
                "<coverage><packages><package><classes><class filename=\"a\"><lines>\
                 <line number=\"{huge}\" hits=\"1\"/></lines></class></classes></package>\
                 </packages></coverage>"
            ),
        ),
        (
            Format::Jacoco,
            format!(
                "<report><package name=\"p\"><sourcefile name=\"A\"><line nr=\"{huge}\" \
                 mi=\"0\" ci=\"1\"/></sourcefile></package></report>"
            ),
        ),
    ];
    for (format, input) in inputs {
        let e = err(Some(format), &input);
        assert!(
            e.message
                .contains("line number 4000000000 is beyond the limit of 2000000"),
            "{format}: {e}"
        );
    }
    // Within the limit but too many in total across files.
    let limits = Limits {
        max_total_lines: 1_000_000,
        ..Limits::default()
    };
    let mut lcov = String::new();
    for i in 0..5 {
        lcov.push_str(&format!("SF:f{i}.c\nDA:1999999,1\nend_of_record\n"));
    }
    let e = parse_with_limits(None, lcov.as_bytes(), &limits).unwrap_err();
    assert!(e.message.contains("more than 1000000 source lines"), "{e}");
}

#[test]
fn deeply_nested_json_is_refused() {
    let deep = format!("{{\"coverage\": {{\"a.rb\": {}}}}}", "[".repeat(100_000));
    let e = err(Some(Format::SimpleCov), &deep);
    assert_eq!(e.format, Some(Format::SimpleCov));
}

/// Every prefix of the committed real reports (many cut points each) parses or fails cleanly;
/// for XML and JSON, whose documents have an end, every strict prefix must fail.
#[test]
fn truncated_real_reports_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/coverage");
    let reports = [
        ("cobertura/coverage.xml", Format::Cobertura, true),
        ("jacoco/jacoco.xml", Format::Jacoco, true),
        ("simplecov/coverage.json", Format::SimpleCov, true),
        ("lcov/lcov.info", Format::Lcov, false),
        ("gocover/c.count.out", Format::GoCover, false),
    ];
    for (file, format, must_fail) in reports {
        let bytes = std::fs::read(root.join(file)).unwrap();
        let full = bytes.trim_ascii_end().len();
        let step = (full / 300).max(1);
        for cut in (0..full).step_by(step) {
            let result = parse_as(format, &bytes[..cut]);
            if must_fail {
                assert!(result.is_err(), "{file} cut at {cut} was accepted");
            }
        }
        assert!(parse_as(format, &bytes).is_ok(), "{file}");
    }
}

/// Deterministic garbage (a fixed xorshift stream, mixed with format keywords) never panics.
#[test]
fn garbage_never_panics() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let words: [&[u8]; 16] = [
        b"<coverage ",
        b"<line number=\"",
        b"hits=\"",
        b"\"/>",
        b"SF:",
        b"DA:",
        b"\n",
        b"mode: set\n",
        b":1.2,3.4 1 1",
        b"{\"coverage\":",
        b"[",
        b"null,",
        b"&lol;",
        b"<!DOCTYPE",
        b"end_of_record",
        b"\xff\xfe",
    ];
    for _ in 0..2000 {
        let mut input = Vec::new();
        for _ in 0..(next() % 40) {
            let r = next();
            if r % 3 == 0 {
                input.push((r >> 8) as u8);
            } else {
                input.extend_from_slice(words[(r >> 16) as usize % words.len()]);
            }
        }
        let _ = parse(None, &input[..]);
        for format in Format::ALL {
            let _ = parse_as(format, &input);
        }
    }
}
