//! Badge values → message and colour, and the SVG renderer: shield-maker 0.1.0's Plastic style
//! reproduced byte for byte (element and attribute order, f32 maths, f32 `Display` formatting),
//! without its panics and without the badger's i8 overflow.

use std::fmt::Write as _;

use super::text_width::preferred_width;

/// Which number a badge shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Coverage,
    Issues,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Coverage, Kind::Issues];

    /// The label text, which is also the route's last segment.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Coverage => "coverage",
            Kind::Issues => "issues",
        }
    }
}

/// An opaque background colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// shields.io's named colours, as the original used them.
pub const BRIGHTGREEN: Rgb = Rgb(68, 204, 17); // #4c1
pub const GREEN: Rgb = Rgb(151, 202, 0); // #97ca00
pub const YELLOW: Rgb = Rgb(223, 179, 23); // #dfb317
pub const RED: Rgb = Rgb(224, 93, 68); // #e05d44
pub const ORANGE: Rgb = Rgb(254, 125, 55); // #fe7d37, "important"
pub const LIGHTGREY: Rgb = Rgb(159, 159, 159); // #9f9f9f
/// The label's background, #555.
pub const LABEL_GREY: Rgb = Rgb(85, 85, 85);

/// What a badge says: label, message and the message's colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Badge {
    pub label: &'static str,
    pub message: String,
    pub color: Rgb,
}

impl Badge {
    /// The grey `unknown` badge: no branch, no value.
    pub fn unknown(kind: Kind) -> Badge {
        Badge {
            label: kind.label(),
            message: "unknown".into(),
            color: LIGHTGREY,
        }
    }

    /// The coverage badge for a branch's `coverage` column. The value is truncated to an integer
    /// as the original did, and clamped to 0..=100 (the original parsed it as i8).
    pub fn coverage(value: Option<f64>) -> Badge {
        let Some(value) = value.filter(|v| v.is_finite()) else {
            return Badge::unknown(Kind::Coverage);
        };
        let percent = value.trunc().clamp(0.0, 100.0) as u8;
        let color = match percent {
            90..=100 => BRIGHTGREEN,
            70..=89 => GREEN,
            50..=69 => YELLOW,
            _ => RED,
        };
        Badge {
            label: Kind::Coverage.label(),
            message: format!("{percent}%"),
            color,
        }
    }

    /// The issues badge for a branch's `issues` column: green at zero, orange otherwise, at any
    /// count (the original turned 128 and more grey through an i8 overflow). A negative count
    /// cannot be stored (CHECK constraint) and would be reported as unknown.
    pub fn issues(value: Option<i64>) -> Badge {
        match value {
            Some(n) if n >= 0 => Badge {
                label: Kind::Issues.label(),
                message: n.to_string(),
                color: if n == 0 { BRIGHTGREEN } else { ORANGE },
            },
            _ => Badge::unknown(Kind::Issues),
        }
    }

    pub fn render(&self) -> String {
        render(self.label, &self.message, self.color)
    }
}

/// The numbers of the layout, kept apart from the markup so the tests can check them one by one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Whole width (`W`).
    pub width: f32,
    /// Label box width (`LW`) and message box width (`RW`).
    pub label_box: f32,
    pub message_box: f32,
    /// Centre x of each text, scaled by 10 (the texts are drawn at `scale(.1)`).
    pub label_x: f32,
    pub message_x: f32,
    /// `textLength` of each text, scaled by 10.
    pub label_length: f32,
    pub message_length: f32,
}

const HORIZONTAL_PADDING: f32 = 5.0;
const SCALE_UP: f32 = 10.0;
const LABEL_MARGIN: f32 = 1.0;

impl Geometry {
    /// shield-maker's `Renderer::new` and `make_text_element`, operation for operation in f32 so
    /// that every printed number comes out the same.
    pub fn of(label: &str, message: &str) -> Geometry {
        let label_width = preferred_width(label);
        let label_box = label_width + 2.0 * HORIZONTAL_PADDING;
        let message_width = preferred_width(message);
        let message_margin = label_box - 1.0;
        let message_box = message_width + 2.0 * HORIZONTAL_PADDING;
        let x = |margin: f32, text_width: f32| {
            SCALE_UP * (margin + 0.5 * text_width + HORIZONTAL_PADDING)
        };
        Geometry {
            width: label_box + message_box,
            label_box,
            message_box,
            label_x: x(LABEL_MARGIN, label_width),
            message_x: x(message_margin, message_width),
            label_length: SCALE_UP * label_width,
            message_length: SCALE_UP * message_width,
        }
    }
}

/// Text and shadow colours for a background: shield-maker's brightness rule. Every colour used
/// here is dark enough for white text (yellow is the brightest at 0.68), but the rule is kept so
/// the output stays right if a colour changes.
fn text_colors(background: Rgb) -> (&'static str, &'static str) {
    let Rgb(r, g, b) = background;
    let brightness = (((r as f32 * 299.0 + g as f32 * 587.0 + b as f32 * 114.0) / 255000.0).abs()
        * 100.0)
        .trunc()
        / 100.0;
    if brightness <= 0.69 {
        ("#fff", "#010101")
    } else {
        ("#333", "#ccc")
    }
}

/// Escapes text and attribute values the way shield-maker does (all five XML specials).
fn escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// `rgba(r,g,b,1)`, as shield-maker prints css-color-parser colours.
fn rgba(Rgb(r, g, b): Rgb) -> String {
    format!("rgba({r},{g},{b},1)")
}

/// The Plastic-style SVG, with nothing between elements (no prolog, no whitespace, no trailing
/// newline). Numbers use f32 `Display`, the shortest string that round-trips.
pub fn render(label: &str, message: &str, color: Rgb) -> String {
    let g = Geometry::of(label, message);
    let mut accessible = String::new();
    escape(&mut accessible, &format!("{label}: {message}"));
    let mut s = String::with_capacity(1400);
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="{w}" height="18" role="img" aria-label="{accessible}"><title>{accessible}</title>"##,
        w = g.width,
    );
    s.push_str(concat!(
        r##"<linearGradient id="s" x2="0" y2="100%">"##,
        r##"<stop offset="0" stop-color="#fff" stop-opacity=".7"/>"##,
        r##"<stop offset=".1" stop-color="#aaa" stop-opacity=".1"/>"##,
        r##"<stop offset=".9" stop-color="#000" stop-opacity=".3"/>"##,
        r##"<stop offset="1" stop-color="#000" stop-opacity=".5"/>"##,
        r##"</linearGradient>"##,
    ));
    let _ = write!(
        s,
        r##"<clipPath id="r"><rect fill="#fff" width="{w}" height="18" rx="4"/></clipPath><g clip-path="url(#r)"><rect width="{lw}" height="18" fill="{lc}"/><rect x="{lw}" width="{rw}" height="18" fill="{mc}"/><rect fill="url(#s)" width="{w}" height="18"/></g>"##,
        w = g.width,
        lw = g.label_box,
        rw = g.message_box,
        lc = rgba(LABEL_GREY),
        mc = rgba(color),
    );
    s.push_str(r##"<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="110">"##);
    push_text(&mut s, label, LABEL_GREY, g.label_x, g.label_length);
    push_text(&mut s, message, color, g.message_x, g.message_length);
    s.push_str("</g></svg>");
    s
}

/// One text: its shadow (1 px lower, translucent), then the text itself.
fn push_text(s: &mut String, text: &str, background: Rgb, x: f32, length: f32) {
    let (fill, shadow) = text_colors(background);
    let _ = write!(
        s,
        r##"<text aria-hidden="true" fill="{shadow}" x="{x}" y="140" fill-opacity=".3" transform="scale(.1)" textLength="{length}">"##
    );
    escape(s, text);
    let _ = write!(
        s,
        r##"</text><text fill="{fill}" x="{x}" y="130" transform="scale(.1)" textLength="{length}">"##
    );
    escape(s, text);
    s.push_str("</text>");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row of the reference's golden geometry table (cocov-reporter-badger-web.md §2.5).
    struct Row {
        badge: Badge,
        w: &'static str,
        lw: &'static str,
        rw: &'static str,
        fill: &'static str,
        label_x: &'static str,
        label_len: &'static str,
        msg_x: &'static str,
        msg_len: &'static str,
    }

    fn row(
        badge: Badge,
        [w, lw, rw, fill]: [&'static str; 4],
        [label_x, label_len, msg_x, msg_len]: [&'static str; 4],
    ) -> Row {
        Row {
            badge,
            w,
            lw,
            rw,
            fill,
            label_x,
            label_len,
            msg_x,
            msg_len,
        }
    }

    fn table() -> Vec<Row> {
        let cov = ["292.7625", "465.52502"];
        let iss = ["220.3475", "320.695"];
        let c = |v: f64| Badge::coverage(Some(v));
        let i = |v: i64| Badge::issues(Some(v));
        vec![
            row(
                c(100.0),
                ["96.553", "56.5525", "40.0005", "rgba(68,204,17,1)"],
                [cov[0], cov[1], "755.52747", "300.005"],
            ),
            row(
                c(97.0),
                ["90.34601", "56.5525", "33.793503", "rgba(68,204,17,1)"],
                [cov[0], cov[1], "724.4925", "237.93501"],
            ),
            row(
                c(70.0),
                ["90.34601", "56.5525", "33.793503", "rgba(151,202,0,1)"],
                [cov[0], cov[1], "724.4925", "237.93501"],
            ),
            row(
                c(50.0),
                ["90.34601", "56.5525", "33.793503", "rgba(223,179,23,1)"],
                [cov[0], cov[1], "724.4925", "237.93501"],
            ),
            row(
                c(0.0),
                ["82.07", "56.5525", "25.5175", "rgba(224,93,68,1)"],
                [cov[0], cov[1], "683.1125", "155.175"],
            ),
            row(
                c(5.0),
                ["82.07", "56.5525", "25.5175", "rgba(224,93,68,1)"],
                [cov[0], cov[1], "683.1125", "155.175"],
            ),
            row(
                Badge::coverage(None),
                ["111.036", "56.5525", "54.4835", "rgba(159,159,159,1)"],
                [cov[0], cov[1], "827.9425", "444.83502"],
            ),
            row(
                i(0),
                ["59.311", "42.0695", "17.2415", "rgba(68,204,17,1)"],
                [iss[0], iss[1], "496.9025", "72.415"],
            ),
            row(
                i(4),
                ["59.311", "42.0695", "17.2415", "rgba(254,125,55,1)"],
                [iss[0], iss[1], "496.9025", "72.415"],
            ),
            row(
                i(12),
                ["65.518", "42.0695", "23.4485", "rgba(254,125,55,1)"],
                [iss[0], iss[1], "527.9375", "134.485"],
            ),
            row(
                i(127),
                ["71.725", "42.0695", "29.6555", "rgba(254,125,55,1)"],
                [iss[0], iss[1], "558.97253", "196.55501"],
            ),
            // The original drew 128 grey (i8 overflow); fixed: orange like any other count.
            row(
                i(128),
                ["71.725", "42.0695", "29.6555", "rgba(254,125,55,1)"],
                [iss[0], iss[1], "558.97253", "196.55501"],
            ),
            row(
                Badge::issues(None),
                ["96.553", "42.0695", "54.4835", "rgba(159,159,159,1)"],
                [iss[0], iss[1], "683.1125", "444.83502"],
            ),
        ]
    }

    #[test]
    fn geometry_matches_every_row_of_the_reference_table() {
        for r in table() {
            let name = format!("{}: {}", r.badge.label, r.badge.message);
            let g = Geometry::of(r.badge.label, &r.badge.message);
            assert_eq!(g.width.to_string(), r.w, "W of {name}");
            assert_eq!(g.label_box.to_string(), r.lw, "LW of {name}");
            assert_eq!(g.message_box.to_string(), r.rw, "RW of {name}");
            assert_eq!(rgba(r.badge.color), r.fill, "fill of {name}");
            assert_eq!(g.label_x.to_string(), r.label_x, "label x of {name}");
            assert_eq!(
                g.label_length.to_string(),
                r.label_len,
                "label length {name}"
            );
            assert_eq!(g.message_x.to_string(), r.msg_x, "message x of {name}");
            assert_eq!(g.message_length.to_string(), r.msg_len, "msg length {name}");

            // …and the numbers are the ones actually printed in the SVG.
            let svg = r.badge.render();
            for needle in [
                format!(r#"width="{}" height="18" role="img""#, r.w),
                format!(
                    r#"<rect width="{}" height="18" fill="rgba(85,85,85,1)"/>"#,
                    r.lw
                ),
                format!(
                    r#"<rect x="{}" width="{}" height="18" fill="{}"/>"#,
                    r.lw, r.rw, r.fill
                ),
                format!(
                    r#"x="{}" y="130" transform="scale(.1)" textLength="{}">{}</text>"#,
                    r.msg_x, r.msg_len, r.badge.message
                ),
                format!(
                    r#"x="{}" y="140" fill-opacity=".3" transform="scale(.1)" textLength="{}">{}</text>"#,
                    r.label_x, r.label_len, r.badge.label
                ),
            ] {
                assert!(svg.contains(&needle), "{name}: missing {needle}\nin {svg}");
            }
        }
    }

    /// The golden files were produced by shield-maker 0.1.0 itself (the original's renderer,
    /// Plastic style, default font family, colours `brightgreen`/`important`) measuring with
    /// the same embedded font, in a scratch crate; their numbers equal the reference's table,
    /// and their element order is the one the reference documents. They hold no trailing newline.
    #[test]
    fn golden_svgs_are_byte_identical() {
        let cases = [
            (
                Badge::coverage(Some(97.0)),
                include_str!("../../tests/fixtures/badges/coverage-97.svg"),
            ),
            (
                Badge::coverage(Some(100.0)),
                include_str!("../../tests/fixtures/badges/coverage-100.svg"),
            ),
            (
                Badge::issues(Some(4)),
                include_str!("../../tests/fixtures/badges/issues-4.svg"),
            ),
        ];
        for (badge, golden) in cases {
            assert_eq!(badge.render(), golden, "{badge:?}");
        }
    }

    #[test]
    fn coverage_thresholds_truncation_and_clamping() {
        let case = |v: f64| {
            let b = Badge::coverage(Some(v));
            (b.message, b.color)
        };
        assert_eq!(case(89.99), ("89%".into(), GREEN)); // truncated, not rounded
        assert_eq!(case(90.0), ("90%".into(), BRIGHTGREEN));
        assert_eq!(case(69.9), ("69%".into(), YELLOW));
        assert_eq!(case(49.99), ("49%".into(), RED));
        assert_eq!(case(0.5), ("0%".into(), RED));
        assert_eq!(case(150.0), ("100%".into(), BRIGHTGREEN)); // the original: red 101–127
        assert_eq!(case(-3.0), ("0%".into(), RED));
        assert_eq!(
            Badge::coverage(Some(f64::NAN)),
            Badge::unknown(Kind::Coverage)
        );
        assert_eq!(Badge::coverage(None).message, "unknown");
    }

    #[test]
    fn issues_colours_at_any_count() {
        assert_eq!(Badge::issues(Some(0)).color, BRIGHTGREEN);
        assert_eq!(Badge::issues(Some(1)).color, ORANGE);
        assert_eq!(Badge::issues(Some(128)).color, ORANGE);
        assert_eq!(Badge::issues(Some(1_000_000)).message, "1000000");
        assert_eq!(Badge::issues(Some(-1)), Badge::unknown(Kind::Issues));
        assert_eq!(Badge::issues(None).color, LIGHTGREY);
    }

    #[test]
    fn every_colour_takes_white_text_like_the_original() {
        for c in [
            BRIGHTGREEN,
            GREEN,
            YELLOW,
            RED,
            ORANGE,
            LIGHTGREY,
            LABEL_GREY,
        ] {
            assert_eq!(text_colors(c), ("#fff", "#010101"), "{c:?}");
        }
        assert_eq!(text_colors(Rgb(255, 255, 255)), ("#333", "#ccc"));
    }

    #[test]
    fn text_is_escaped() {
        let svg = render("a&b", "<'\">", RED);
        assert!(
            svg.contains("<title>a&amp;b: &lt;&apos;&quot;&gt;</title>"),
            "{svg}"
        );
        assert!(
            svg.contains(r#"aria-label="a&amp;b: &lt;&apos;&quot;&gt;""#),
            "{svg}"
        );
        assert!(!svg.contains("<'"));
    }

    #[test]
    fn an_empty_message_renders() {
        let svg = render("issues", "", ORANGE);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
    }
}
