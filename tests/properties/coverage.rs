//! Coverage reports: every format parser, format detection, decompression with its size cap, and
//! the line-encoded wire format of `POST /v1/reports`.

use std::collections::BTreeMap;
use std::io::Write;

use cocov::coverage::budget::Budget;
use cocov::coverage::formats;
use cocov::coverage::upload::parse_raw;
use cocov::coverage::wire_report::{self, WireData, WireReport};
use cocov::coverage::{
    Compression, FileCoverage, Format, Limits, Line, Mode, RawError, Report, SNIFF_BYTES, Upload,
    parse_with_limits,
};
use cocov::upload_budget::Meter;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};

use crate::alloc;

/// Caps small enough that generated documents reach every one of them.
fn small_limits() -> Limits {
    Limits {
        max_files: 8,
        max_line_number: 1000,
        max_path_len: 64,
        max_total_lines: 2000,
        max_token_bytes: 512,
        max_sources: 4,
        meter: Meter::default(),
    }
}

/// Files per generated document: past `max_files` of the small limits now and then.
const FILES: std::ops::Range<usize> = 0..14;

/// Heap a parse may hold beyond what its input explains: buffers, the report, error messages.
const BASE_MEMORY: usize = 4 << 20;

/// What every parse must satisfy: an error, or a report within `limits`.
fn check_report(report: &Report, limits: &Limits) -> Result<(), TestCaseError> {
    prop_assert!(
        report.files.len() <= limits.max_files,
        "{} files",
        report.files.len()
    );
    let mut total = 0u64;
    for (path, file) in &report.files {
        prop_assert!(!path.is_empty(), "empty path");
        prop_assert!(
            path.len() <= limits.max_path_len,
            "path of {} bytes",
            path.len()
        );
        prop_assert!(
            file.len() <= limits.max_line_number,
            "`{path}` has {} lines",
            file.len()
        );
        total += u64::from(file.len());
    }
    prop_assert!(total <= limits.max_total_lines, "{total} lines in all");
    prop_assert!(report.sources.len() <= limits.max_files);
    for source in &report.sources {
        prop_assert!(source.len() <= limits.max_path_len);
    }
    let totals = report.totals();
    prop_assert!(totals.lines_covered <= totals.lines_total);
    Ok(())
}

/// Parses `input` as `format` (detected when None) and checks the result and the heap used.
fn parse_checked(
    format: Option<Format>,
    input: &[u8],
    limits: &Limits,
) -> Result<Option<Report>, TestCaseError> {
    let (result, peak) = alloc::peak(|| parse_with_limits(format, input, limits));
    let budget = BASE_MEMORY + 4 * input.len();
    prop_assert!(
        peak <= budget,
        "{format:?} parse of {} bytes held {peak} bytes",
        input.len()
    );
    match result {
        Ok(report) => {
            if let Some(format) = format {
                prop_assert_eq!(report.format, format);
            }
            check_report(&report, limits)?;
            Ok(Some(report))
        }
        Err(e) => {
            prop_assert!(!e.message.is_empty());
            if let Some(format) = format {
                prop_assert_eq!(e.format, Some(format));
            }
            Ok(None)
        }
    }
}

fn any_format() -> impl Strategy<Value = Format> {
    prop::sample::select(Format::ALL.to_vec())
}

/// A number as a report might write it: mostly plausible, sometimes huge, negative or not one.
fn number(h: bool) -> BoxedStrategy<String> {
    if !h {
        return (0u32..50).prop_map(|n| n.to_string()).boxed();
    }
    prop_oneof![
        6 => (0u32..1200).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => "[0-9]{18,60}",
        1 => prop::sample::select(vec![
            "", "-0", "+3", " 7", "0x10", "1e9", "1.5", "NaN", "inf", "18446744073709551616",
            "4294967296", "2147483648", "٣",
        ])
        .prop_map(str::to_string),
    ]
    .boxed()
}

/// A file path: mostly plausible, sometimes odd UTF-8, control characters, traversal or long.
fn path(h: bool) -> BoxedStrategy<String> {
    if !h {
        return "[a-z]{1,8}(/[a-z_]{1,8}){0,3}\\.[a-z]{1,3}".boxed();
    }
    prop_oneof![
        6 => "[a-z]{1,8}(/[a-z_]{1,8}){0,3}\\.[a-z]{1,3}",
        2 => any::<String>(),
        1 => "\\PC{0,24}",
        1 => (1usize..200).prop_map(|n| "p".repeat(n)),
        1 => prop::sample::select(vec![
            "", " ", "../../etc/passwd", "/abs/a.c", "a\u{0}b.c", "é\u{202e}x.go", "C:\\w\\a.cs",
            "a\nb", "\u{feff}a.c", "a/./b/../c.c",
        ])
        .prop_map(str::to_string),
    ]
    .boxed()
}

/// `doc` with a few bytes replaced, inserted or removed, and sometimes cut short.
fn mutated(doc: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<Index>(), any::<u8>(), 0u8..3);
    (
        doc,
        prop::collection::vec(edit, 0..4),
        prop::option::weighted(0.15, any::<Index>()),
    )
        .prop_map(|(mut doc, edits, cut)| {
            for (at, byte, op) in edits {
                if doc.is_empty() {
                    doc.push(byte);
                    continue;
                }
                let at = at.index(doc.len());
                match op {
                    0 => doc[at] = byte,
                    1 => doc.insert(at, byte),
                    _ => {
                        doc.remove(at);
                    }
                }
            }
            if let Some(cut) = cut {
                doc.truncate(cut.index(doc.len() + 1));
            }
            doc
        })
}

/// A line number: mostly small, so that many files fit under `max_total_lines` and the other
/// caps are reached too.
fn line_number(h: bool) -> BoxedStrategy<String> {
    let small = (1u32..40).prop_map(|n| n.to_string());
    if !h {
        return small.boxed();
    }
    prop_oneof![6 => small, 4 => number(h)].boxed()
}

/// Line numbers and hit counts of one file.
fn line_pairs(h: bool) -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((line_number(h), number(h)), 0..24)
}

fn files(h: bool) -> impl Strategy<Value = Vec<(String, Vec<(String, String)>)>> {
    prop::collection::vec((path(h), line_pairs(h)), FILES)
}

fn eol(h: bool) -> impl Strategy<Value = &'static str> {
    let mut eols = vec!["\n", "\r\n"];
    if h {
        eols.push("\r");
    }
    prop::sample::select(eols)
}

fn lcov(h: bool) -> impl Strategy<Value = Vec<u8>> {
    let junk = prop::collection::vec(
        prop_oneof![
            "\\PC{0,30}",
            (number(h), "\\PC{0,12}").prop_map(|(l, n)| format!("FN:{l},{n}")),
            (number(h), number(h), number(h), number(h))
                .prop_map(|(a, b, c, d)| format!("BRDA:{a},{b},{c},{d}")),
            number(h).prop_map(|n| format!("LF:{n}")),
            (number(h), number(h), "[A-Za-z0-9+/=]{0,8}")
                .prop_map(|(l, h, c)| format!("DA:{l},{h},{c}")),
            Just("end_of_record".to_string()),
        ],
        if h { 0..3 } else { 0..1 },
    );
    let end = if h {
        any::<bool>().boxed()
    } else {
        Just(true).boxed()
    };
    (files(h), junk, eol(h), end).prop_map(|(files, junk, eol, end)| {
        let mut out = format!("TN:{}", eol);
        for (path, lines) in files {
            out += &format!("SF:{path}{eol}");
            for (line, hits) in lines {
                out += &format!("DA:{line},{hits}{eol}");
            }
            if end {
                out += &format!("end_of_record{eol}");
            }
        }
        for line in junk {
            out += &format!("{line}{eol}");
        }
        out.into_bytes()
    })
}

fn gocover(h: bool) -> impl Strategy<Value = Vec<u8>> {
    let mut modes = vec!["set", "count", "atomic"];
    if h {
        modes.extend(["bogus", ""]);
    }
    let mode = prop::sample::select(modes);
    let block = if h {
        (
            line_number(h),
            number(h),
            line_number(h),
            number(h),
            number(h),
            number(h),
        )
            .boxed()
    } else {
        // Well-formed: the block ends after it starts.
        (1u32..40, 1u32..20, 0u32..4, 1u32..20, 0u32..9)
            .prop_map(|(l1, c1, lines, c2, count)| {
                let (l2, c2) = if lines == 0 {
                    (l1, c1 + c2)
                } else {
                    (l1 + lines, c2)
                };
                // A block repeated (as in merged profiles) keeps its statement count.
                let statements = 1 + (l1 + c1 + l2 + c2) % 4;
                let n = |v: u32| v.to_string();
                (n(l1), n(c1), n(l2), n(c2), n(statements), n(count))
            })
            .boxed()
    };
    let blocks = prop::collection::vec((path(h), prop::collection::vec(block, 0..12)), FILES);
    (mode, blocks, eol(h)).prop_map(|(mode, files, eol)| {
        let mut out = format!("mode: {mode}{eol}");
        for (path, blocks) in files {
            for (l1, c1, l2, c2, statements, count) in blocks {
                out += &format!("{path}:{l1}.{c1},{l2}.{c2} {statements} {count}{eol}");
            }
        }
        out.into_bytes()
    })
}

/// XML text: escaped, or with a reference the parser must judge (unknown, out of range, NUL).
fn xml_text(text: String, reference: Option<&'static str>) -> String {
    let mut out = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;");
    if let Some(reference) = reference {
        out.push_str(reference);
    }
    out
}

fn reference(h: bool) -> impl Strategy<Value = Option<&'static str>> {
    prop::option::weighted(
        if h { 0.1 } else { 1e-9 },
        prop::sample::select(vec![
            "&amp;",
            "&#x41;",
            "&#0;",
            "&#x110000;",
            "&#99999999999999999999;",
            "&foo;",
            "&#xD800;",
            "&",
            "&#;",
        ]),
    )
}

/// Elements wrapped around the real content, to test nesting depth.
fn depth(h: bool) -> BoxedStrategy<usize> {
    if !h {
        return (0usize..3).boxed();
    }
    prop_oneof![8 => Just(0usize), 1 => 1usize..50, 1 => 1000usize..20_000].boxed()
}

fn cobertura(h: bool) -> impl Strategy<Value = Vec<u8>> {
    let doctype = prop::sample::select(vec![
        "",
        "<!DOCTYPE coverage SYSTEM \"http://cobertura.sourceforge.net/xml/coverage-04.dtd\">",
        "<!DOCTYPE coverage [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;\">]>",
        "<!DOCTYPE coverage [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>",
    ]);
    let sources = prop::collection::vec((path(h), reference(h)), if h { 0..12 } else { 0..3 });
    let files = prop::collection::vec((path(h), reference(h), line_pairs(h)), FILES);
    (doctype, number(h), sources, files, depth(h)).prop_map(
        |(doctype, rate, sources, files, depth)| {
            let mut out = format!(
                "<?xml version=\"1.0\"?>\n{doctype}\n<coverage line-rate=\"{rate}\" version=\"1\">\
                 <sources>"
            );
            for (source, reference) in sources {
                out += &format!("<source>{}</source>\n", xml_text(source, reference));
            }
            out += "</sources><packages><package name=\"p\"><classes>";
            out += &"<x>".repeat(depth);
            for (path, reference, lines) in files {
                out += &format!(
                    "<class name=\"c\" filename=\"{}\"><methods/><lines>\n",
                    xml_text(path, reference)
                );
                for (number, hits) in lines {
                    out +=
                        &format!("<line number=\"{number}\" hits=\"{hits}\" branch=\"false\"/>\n");
                }
                out += "</lines></class>\n";
            }
            out += &"</x>".repeat(depth);
            out += "</classes></package></packages></coverage>\n";
            out.into_bytes()
        },
    )
}

fn jacoco(h: bool) -> impl Strategy<Value = Vec<u8>> {
    let line = (line_number(h), number(h), number(h), number(h), number(h));
    let files = prop::collection::vec(
        (
            path(h),
            path(h),
            reference(h),
            prop::collection::vec(line, 0..16),
        ),
        FILES,
    );
    (files, depth(h)).prop_map(|(files, depth)| {
        let mut out = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><!DOCTYPE report PUBLIC \
             \"-//JACOCO//DTD Report 1.1//EN\" \"report.dtd\"><report name=\"r\">\
             <sessioninfo id=\"s\" start=\"1\" dump=\"2\"/>",
        );
        out += &"<group name=\"g\">".repeat(depth);
        for (package, file, reference, lines) in files {
            out += &format!(
                "<package name=\"{}\"><sourcefile name=\"{}\">\n",
                xml_text(package, None),
                xml_text(file, reference)
            );
            for (nr, mi, ci, mb, cb) in lines {
                out += &format!(
                    "<line nr=\"{nr}\" mi=\"{mi}\" ci=\"{ci}\" mb=\"{mb}\" cb=\"{cb}\"/>\n"
                );
            }
            out += "<counter type=\"LINE\" missed=\"1\" covered=\"2\"/></sourcefile></package>\n";
        }
        out += &"</group>".repeat(depth);
        out += "</report>";
        out.into_bytes()
    })
}

/// A SimpleCov `lines` entry: mostly valid, sometimes a JSON value it does not expect.
fn simplecov_value(h: bool) -> BoxedStrategy<String> {
    if !h {
        return prop_oneof![3 => (0u32..50).prop_map(|n| n.to_string()), 1 => Just("null".to_string())].boxed();
    }
    prop_oneof![
        3 => (0u32..50).prop_map(|n| n.to_string()),
        2 => Just("null".to_string()),
        1 => Just("\"ignored\"".to_string()),
        1 => number(h),
        1 => prop::sample::select(vec![
            "-1", "1.5", "1e400", "true", "\"x\"", "{}", "[]", "18446744073709551616",
            "99999999999999999999999999999999999999",
        ])
        .prop_map(str::to_string),
        1 => (1usize..5000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
    ]
    .boxed()
}

fn simplecov(h: bool) -> impl Strategy<Value = Vec<u8>> {
    // Sometimes more lines than `max_line_number` of the small limits.
    let lines = prop_oneof![
        4 => prop::collection::vec(simplecov_value(h), 0..24),
        1 => (900usize..1200).prop_map(|n| vec!["1".to_string(); n]),
    ];
    let files = prop::collection::vec((path(h), lines), FILES);
    (files, any::<bool>(), depth(h)).prop_map(|(files, resultset, depth)| {
        let mut coverage = String::from("{");
        for (i, (path, lines)) in files.into_iter().enumerate() {
            if i > 0 {
                coverage.push(',');
            }
            let key = serde_json::to_string(&path).unwrap();
            coverage += &format!("{key}: {{\"lines\": [{}]}}", lines.join(", "));
        }
        coverage.push('}');
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let out = if resultset {
            format!("{{\"RSpec\": {{\"coverage\": {coverage}, \"timestamp\": {nested}}}}}")
        } else {
            format!(
                "{{\"meta\": {{\"simplecov_version\": \"0.22.0\", \"x\": {nested}}}, \
                 \"coverage\": {coverage}}}"
            )
        };
        out.into_bytes()
    })
}

/// A document of `format`: every field valid (so reports get past the first file and reach
/// the caps), or with hostile fields mixed in.
fn document(format: Format) -> BoxedStrategy<Vec<u8>> {
    let hostile = match format {
        Format::Lcov => lcov(true).boxed(),
        Format::GoCover => gocover(true).boxed(),
        Format::Cobertura => cobertura(true).boxed(),
        Format::Jacoco => jacoco(true).boxed(),
        Format::SimpleCov => simplecov(true).boxed(),
    };
    prop_oneof![clean_document(format), hostile].boxed()
}

/// A document of `format` with every field valid.
fn clean_document(format: Format) -> BoxedStrategy<Vec<u8>> {
    match format {
        Format::Lcov => lcov(false).boxed(),
        Format::GoCover => gocover(false).boxed(),
        Format::Cobertura => cobertura(false).boxed(),
        Format::Jacoco => jacoco(false).boxed(),
        Format::SimpleCov => simplecov(false).boxed(),
    }
}

/// A near-valid document of some format, with that format.
fn near_valid() -> impl Strategy<Value = (Format, Vec<u8>)> {
    any_format().prop_flat_map(|format| (Just(format), mutated(document(format))))
}

fn compress(data: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(data, 1).unwrap(),
    }
}

fn any_compression() -> impl Strategy<Value = Compression> {
    prop::sample::select(vec![
        Compression::None,
        Compression::Gzip,
        Compression::Zstd,
    ])
}

fn any_line() -> impl Strategy<Value = Line> {
    prop_oneof![
        Just(Line::Neutral),
        Just(Line::Ignored),
        (0u64..1000).prop_map(Line::Hits),
        (0..=cocov::coverage::lines::MAX_HITS).prop_map(Line::Hits),
    ]
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn arbitrary_bytes_give_an_error_or_a_bounded_report(
        format in prop::option::of(any_format()),
        input in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        parse_checked(format, &input, &small_limits())?;
        parse_checked(format, &input, &Limits::default())?;
    }

    #[test]
    fn near_valid_documents_give_an_error_or_a_bounded_report((format, doc) in near_valid()) {
        parse_checked(Some(format), &doc, &small_limits())?;
        parse_checked(None, &doc, &small_limits())?;
        // Default limits: the same document mostly parses, and must still be bounded.
        if let Some(report) = parse_checked(Some(format), &doc, &Limits::default())? {
            // Each of the (at most 4) byte edits can make one more distinct path, no more.
            prop_assert!(report.files.len() < FILES.end + 4, "{} files", report.files.len());
        }
    }

    /// The generators' valid documents are valid: they parse and are detected as their format,
    /// so the properties above really reach the parsers' inner paths and caps.
    #[test]
    fn clean_documents_parse_and_are_detected(
        (format, doc) in any_format().prop_flat_map(|f| (Just(f), clean_document(f))),
    ) {
        let report = parse_checked(Some(format), &doc, &Limits::default())?;
        prop_assert!(report.is_some(), "{}", String::from_utf8_lossy(&doc));
        let detected = cocov::coverage::detect::detect(&doc[..doc.len().min(SNIFF_BYTES)]);
        // A SimpleCov result set with no files has nothing to recognise it by.
        if format != Format::SimpleCov || doc.windows(7).any(|w| w == b"\"lines\"") {
            prop_assert_eq!(detected, Some(format));
        }
    }

    #[test]
    fn a_document_of_one_format_parsed_as_another_is_refused_or_bounded(
        (_, doc) in near_valid(),
        other in any_format(),
    ) {
        parse_checked(Some(other), &doc, &small_limits())?;
    }

    /// One line or token far over `max_token_bytes` is refused without being held: the heap a
    /// parse uses does not grow with the line (SimpleCov has no token limit; its whole input is
    /// bounded by the upload cap, so it is allowed memory in proportion).
    #[test]
    fn long_lines_are_refused_without_holding_them(
        format in any_format(),
        length in (64usize << 10)..(3usize << 20),
        filler in prop::sample::select(vec![b'a', b'1', b' ', b'\xc3']),
    ) {
        let limits = small_limits();
        let long = vec![filler; length];
        let mut doc = match format {
            Format::Lcov => b"TN:\nSF:".to_vec(),
            Format::GoCover => b"mode: set\na.go:".to_vec(),
            Format::Cobertura => b"<coverage line-rate=\"1\"><sources><source>".to_vec(),
            Format::Jacoco => b"<report name=\"".to_vec(),
            Format::SimpleCov => b"{\"coverage\": {\"".to_vec(),
        };
        doc.extend_from_slice(&long);
        // Read through a buffer like an upload is (`parse_raw`): from one in-memory slice the
        // XML reader sees the whole line in one fill and may copy it before its check.
        let reader = std::io::BufReader::with_capacity(64 << 10, &doc[..]);
        let (result, peak) = alloc::peak(|| formats::parse(format, reader, &limits));
        let budget = match format {
            Format::SimpleCov => BASE_MEMORY + 4 * doc.len(),
            _ => BASE_MEMORY / 4,
        };
        prop_assert!(peak <= budget, "{format} held {peak} bytes for a {length}-byte line");
        if let Ok(report) = result {
            check_report(&report, &limits)?;
        }
    }

    /// Decompression never yields more than the cap, whatever the compressed body; a body that
    /// decompresses past it is "too large" unless the parser refused it first.
    #[test]
    fn decompression_is_capped(
        (format, doc) in near_valid(),
        compression in any_compression(),
        garbage in prop::option::weighted(0.2, prop::collection::vec(any::<u8>(), 0..512)),
        cap_fraction in 0u64..=120,
        hint in any::<bool>(),
    ) {
        let max_bytes = doc.len() as u64 * cap_fraction / 100;
        // How much the body decompresses to, when known (garbage mostly fails to decompress).
        let (body, decompressed) = match garbage {
            Some(garbage) if compression == Compression::None => (garbage.clone(), Some(garbage.len())),
            Some(garbage) => (garbage, None),
            None => (compress(&doc, compression), Some(doc.len())),
        };
        let format = hint.then_some(format);
        let (result, peak) = alloc::peak(|| parse_raw(&body[..], compression, format, max_bytes, &Budget::unlimited(), &Meter::default()));
        prop_assert!(peak <= BASE_MEMORY + 4 * doc.len() + (1 << 20), "held {peak} bytes");
        match result {
            Ok(report) => {
                if let Some(decompressed) = decompressed {
                    prop_assert!(decompressed as u64 <= max_bytes, "{decompressed} bytes read");
                }
                check_report(&report, &Limits::default())?;
            }
            Err(RawError::TooLarge { limit }) => prop_assert_eq!(limit, max_bytes),
            Err(RawError::Parse(e)) => prop_assert!(!e.message.is_empty()),
            Err(RawError::OverBudget(_)) => prop_assert!(false, "no time budget was set"),
            Err(RawError::Refused(_)) => prop_assert!(false, "no upload budget was set"),
        }
    }

    /// A compression bomb (many megabytes of valid, repetitive report) stops at the cap.
    #[test]
    fn a_compression_bomb_stops_at_the_cap(
        compression in prop::sample::select(vec![Compression::Gzip, Compression::Zstd]),
        megabytes in 4usize..24,
        cap_kib in 1u64..512,
    ) {
        let mut doc = b"TN:\nSF:a.c\n".to_vec();
        doc.extend(b"DA:1,1\n".repeat((megabytes << 20) / 7));
        let body = compress(&doc, compression);
        drop(doc);
        let max_bytes = cap_kib << 10;
        let (result, peak) =
            alloc::peak(|| parse_raw(
                    &body[..],
                    compression,
                    Some(Format::Lcov),
                    max_bytes,
                    &Budget::unlimited(),
                    &Meter::default(),
                ));
        prop_assert!(
            matches!(result, Err(RawError::TooLarge { limit }) if limit == max_bytes),
            "{result:?}"
        );
        prop_assert!(peak <= BASE_MEMORY, "held {peak} bytes");
    }

    #[test]
    fn wire_data_decodes_to_at_most_one_line_per_byte(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(file) = FileCoverage::from_raw_bytes(&raw) {
            prop_assert!(file.len() as usize <= raw.len());
        }
    }

    #[test]
    fn arbitrary_wire_strings_decode_or_are_refused(value in prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..512).prop_map(|b| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(b)
        }),
    ]) {
        if let Ok(file) = FileCoverage::decode_wire(&value) {
            prop_assert!(file.len() as usize <= value.len());
        }
    }

    #[test]
    fn wire_encoding_round_trips(lines in prop::collection::vec(any_line(), 0..200)) {
        let file = FileCoverage::from_lines(lines.iter().copied());
        let decoded = FileCoverage::decode_wire(&file.encode_wire()).unwrap();
        prop_assert_eq!(decoded.lines().collect::<Vec<_>>(), lines);
    }

    /// `POST /v1/reports` `data` and the held form read back from the database: arbitrary JSON
    /// is refused or gives an upload within the limits, and what is accepted survives holding.
    #[test]
    fn wire_uploads_are_refused_or_bounded(
        entries in prop::collection::btree_map(
            path(true),
            prop_oneof![
                prop::collection::vec(any_line(), 0..50)
                    .prop_map(|l| Value::String(FileCoverage::from_lines(l).encode_wire())),
                any::<String>().prop_map(Value::String),
                any::<i64>().prop_map(Value::from),
                Just(Value::Null),
            ],
            0..12,
        ),
        held in prop_oneof![
            Just(Value::Null),
            any::<String>().prop_map(Value::String),
            prop::collection::btree_map("[a-z]{1,8}", any::<String>(), 0..4).prop_map(|m| {
                serde_json::json!({ "format": "lcov", "files": m })
            }),
        ],
    ) {
        let data: Map<String, Value> = entries.into_iter().collect();
        let limits = Limits::default();
        let body = serde_json::to_vec(&serde_json::json!({"data": data})).unwrap();
        let read = wire_report::read(
            &body[..],
            Compression::None,
            u64::MAX,
            &Budget::unlimited(),
            &Meter::default(),
        );
        if let Ok(WireReport { data: WireData::Files(files), .. }) = read {
            let upload = Upload { format: None, sources: Vec::new(), files, mode: Mode::Merge };
            // An empty `data` is read as such; the route answers it 400 (missing data).
            prop_assert!(upload.files.len() <= limits.max_files);
            for path in upload.files.keys() {
                prop_assert!(!path.trim().is_empty() && path.len() <= limits.max_path_len);
            }
            let again = Upload::from_held_json(&upload.to_held_json(), Mode::Merge).unwrap();
            prop_assert_eq!(again, upload);
        }
        let _ = Upload::from_held_json(&held, Mode::Replace);
        let files: BTreeMap<String, Value> = BTreeMap::new();
        let _ = Upload::from_held_json(&serde_json::json!({ "files": files }), Mode::Merge);
    }
}
