//! Text widths for badge layout, measured from the embedded DejaVu Sans exactly as the original
//! badger did (shield-maker 0.1.0 on ab_glyph), so that the SVG geometry is byte-identical.
//!
//! The original scaled the font with `PxScale(11)`. ab_glyph's scale is the pixel height of
//! ascent − descent, not the em size, so one font unit is 11 / (1901 + 483) = 11/2384 px — not
//! 11/2048. Keeping that quirk is what keeps the widths (and so every badge) identical.
//!
//! The font is Debian's `fonts-dejavu-core` 2.37 rather than the original's 622,020-byte file
//! (a different build); for every character a badge shows (ASCII letters, digits, `%`) its
//! advances and kerning give the same widths as the reference table, which the tests check.

use std::sync::LazyLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};

/// DejaVu Sans 2.37; licence in `assets/fonts/LICENSE-DejaVu.txt`.
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The `PxScale` the original measured with (see the module comment).
const SCALE: f32 = 11.0;

/// The embedded font is constant, so parsing cannot fail at run time once the unit tests pass;
/// it is still handled (see [`raw_width`]) rather than unwrapped.
static FONT: LazyLock<Option<FontRef<'static>>> = LazyLock::new(|| {
    match FontRef::try_from_slice(FONT_BYTES) {
        Ok(font) => Some(font),
        Err(e) => {
            tracing::error!(error = %e, "the embedded badge font does not parse; widths are estimated");
            None
        }
    }
});

/// The width in pixels of `text` on one line: the sum of horizontal advances plus pair kerning
/// over the non-control characters, from the first glyph's origin to the end of the last advance,
/// rounded up. Unlike the original, empty text measures 0 instead of panicking.
pub fn raw_width(text: &str) -> f32 {
    let Some(font) = FONT.as_ref() else {
        // Unreachable with the shipped font; a rough DejaVu average keeps badges legible.
        return (text.chars().filter(|c| !c.is_control()).count() as f32 * 6.5).ceil();
    };
    let font = font.as_scaled(PxScale::from(SCALE));
    // The same f32 operations in the same order as shield-maker's `measure_line`: the caret
    // starts at 0, kerning is added before each glyph after the first, then its advance.
    let mut caret = 0.0f32;
    let mut previous = None;
    for c in text.chars().filter(|c| !c.is_control()) {
        let id = font.glyph_id(c);
        if let Some(prev) = previous {
            caret += font.kern(prev, id);
        }
        caret += font.h_advance(id);
        previous = Some(id);
    }
    caret.ceil()
}

/// The width the layout uses for `text`: the measured width forced odd (so the text centres on
/// a whole pixel), times 1.0345 — shield-maker's `preferred_width_of`, in f32.
pub fn preferred_width(text: &str) -> f32 {
    let width = raw_width(text);
    // Kept verbatim: `% 2.0` cast to i32, then round (a no-op on the whole numbers seen here).
    let odd = if (width % 2.0) as i32 == 0 {
        width + 1.0
    } else {
        width
    }
    .round();
    odd * 1.0345
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's measured-width table (DejaVu Sans at PxScale 11): text, ceil'd width, tw.
    const TABLE: &[(&str, f32, f32)] = &[
        ("coverage", 44.0, 46.5525),
        ("issues", 30.0, 32.0695),
        ("unknown", 43.0, 44.4835),
        ("0%", 15.0, 15.5175),
        ("5%", 15.0, 15.5175),
        ("97%", 22.0, 23.7935),
        ("100%", 28.0, 30.0005),
        ("0", 7.0, 7.2415),
        ("4", 7.0, 7.2415),
        ("12", 13.0, 13.4485),
        ("127", 19.0, 19.6555),
        ("1000", 25.0, 25.8625),
    ];

    #[test]
    fn embedded_font_parses() {
        assert!(FONT.is_some());
    }

    #[test]
    fn widths_match_the_reference_table() {
        for &(text, ceiled, tw) in TABLE {
            assert_eq!(raw_width(text), ceiled, "raw width of {text:?}");
            // Exact f32 equality on purpose: the SVG prints these numbers.
            assert_eq!(preferred_width(text), tw, "preferred width of {text:?}");
        }
    }

    #[test]
    fn unrounded_widths_match_the_reference_to_four_decimals() {
        // The reference lists the raw sums; recompute them without the ceil to check the scale
        // (11/2384 per font unit, not 11/2048) and kerning, not just the rounding.
        let font = FONT.as_ref().expect("font").as_scaled(PxScale::from(SCALE));
        let sum = |text: &str| {
            let mut caret = 0.0f32;
            let mut previous = None;
            for c in text.chars() {
                let id = font.glyph_id(c);
                if let Some(p) = previous {
                    caret += font.kern(p, id);
                }
                caret += font.h_advance(id);
                previous = Some(id);
            }
            caret
        };
        for (text, expected) in [
            ("coverage", 43.8708),
            ("issues", 29.1980),
            ("unknown", 42.9388),
            ("97%", 21.0034),
            ("1000", 24.0487),
        ] {
            assert!((sum(text) - expected).abs() < 5e-5, "{text}: {}", sum(text));
        }
    }

    #[test]
    fn every_two_digit_percentage_has_the_same_width() {
        // Digits share one advance in DejaVu Sans; the reference relies on it ("any two digits").
        for n in 10..100 {
            assert_eq!(preferred_width(&format!("{n}%")), 23.7935, "{n}%");
        }
    }

    #[test]
    fn empty_and_control_only_text_measure_zero_without_panicking() {
        assert_eq!(raw_width(""), 0.0);
        assert_eq!(raw_width("\n\t"), 0.0);
        // 0 is even, so the odd rule makes it 1.
        assert_eq!(preferred_width(""), 1.0345);
    }
}
