//! Charts as inline SVG, rendered on the server: no chart library in the browser, nothing to
//! load, and readable without colour or sight: every chart has a `<title>` and a `<desc>`, and
//! [`summary`] gives the same facts as text next to it. Values are numbers formatted here and
//! labels are escaped, so the markup is safe to insert with askama's `|safe`.

use std::fmt::Write;

use crate::stats::Point;

use super::format::one_decimal;
use crate::http::html::escape;

/// What a series measures: how values are labelled and the y axis is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// 0–100, shown with `%`.
    Coverage,
    /// 0–max, whole numbers.
    Issues,
}

impl Measure {
    fn label(self, v: f64) -> String {
        match self {
            Measure::Coverage => format!("{}%", one_decimal(v)),
            Measure::Issues if v >= 1000.0 => format!("{}k", one_decimal(v / 1000.0)),
            Measure::Issues => format!("{}", v.round() as i64),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Measure::Coverage => "Coverage",
            Measure::Issues => "Issues",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Measure::Coverage => "chart-coverage",
            Measure::Issues => "chart-issues",
        }
    }

    /// The top of the y axis.
    fn top(self, values: &[f64]) -> f64 {
        match self {
            Measure::Coverage => 100.0,
            // Even, so the middle rule is a whole number too (a top of 1 labelled it "1" twice).
            Measure::Issues => {
                let top = values.iter().copied().fold(0.0, f64::max).max(1.0).ceil();
                top + top % 2.0
            }
        }
    }
}

/// `Dec 5` for a `YYYY-MM-DD` date.
fn short_date(date: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = date.split('-').skip(1);
    let month = parts.next().and_then(|m| m.parse::<usize>().ok());
    let day = parts.next().and_then(|d| d.parse::<u32>().ok());
    match (month, day) {
        (Some(m @ 1..=12), Some(d)) => format!("{} {d}", MONTHS[m - 1]),
        _ => date.to_string(),
    }
}

/// The facts of a series in one sentence: first and last known values, low and high.
pub fn summary(measure: Measure, points: &[Point]) -> String {
    let known: Vec<(&str, f64)> = points
        .iter()
        .filter_map(|p| p.value.map(|v| (p.date.as_str(), v)))
        .collect();
    let (Some(first), Some(last)) = (known.first(), known.last()) else {
        return format!(
            "{}: no data in the last {} days.",
            measure.noun(),
            points.len()
        );
    };
    if known.len() == 1 {
        // A new repository's first day: "80% on Dec 5, 80% on Dec 5; lowest 80%, highest 80%"
        // would say the same thing four times.
        return format!(
            "{}: {} on {}, the only day with data so far.",
            measure.noun(),
            measure.label(first.1),
            short_date(first.0),
        );
    }
    let low = known.iter().map(|k| k.1).fold(f64::INFINITY, f64::min);
    let high = known.iter().map(|k| k.1).fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{}: {} on {}, {} on {}; lowest {}, highest {}.",
        measure.noun(),
        measure.label(first.1),
        short_date(first.0),
        measure.label(last.1),
        short_date(last.0),
        measure.label(low),
        measure.label(high),
    )
}

/// The polyline segments of a series (a missing value breaks the line), scaled to a box.
fn segments(values: &[Option<f64>], top: f64, width: f64, height: f64) -> Vec<Vec<(f64, f64)>> {
    let step = if values.len() > 1 {
        width / (values.len() - 1) as f64
    } else {
        0.0
    };
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let y = height - (v.clamp(0.0, top) / top) * height;
                current.push((i as f64 * step, y));
            }
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn points_attr(segment: &[(f64, f64)], dx: f64, dy: f64) -> String {
    let mut s = String::new();
    for (x, y) in segment {
        let _ = write!(s, "{:.1},{:.1} ", x + dx, y + dy);
    }
    s.trim_end().to_string()
}

/// A small trend line (120×28) for a repository card.
pub fn sparkline(measure: Measure, points: &[Point]) -> String {
    const W: f64 = 120.0;
    const H: f64 = 28.0;
    let values: Vec<Option<f64>> = points.iter().map(|p| p.value).collect();
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let text = escape(&summary(measure, points));
    let mut svg = format!(
        "<svg class=\"sparkline {}\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"{text}\"><title>{text}</title>",
        measure.class()
    );
    if known.is_empty() {
        let _ = write!(
            svg,
            "<line class=\"chart-empty\" x1=\"0\" y1=\"{y}\" x2=\"{W}\" y2=\"{y}\"/>",
            y = H / 2.0
        );
    } else {
        for segment in segments(&values, measure.top(&known), W - 4.0, H - 4.0) {
            let _ = write!(
                svg,
                "<polyline class=\"chart-line\" points=\"{}\"/>",
                points_attr(&segment, 2.0, 2.0)
            );
            // A line through one point draws nothing: a lone day (a new repository) is a dot.
            if let [(x, y)] = segment[..] {
                let _ = write!(
                    svg,
                    "<circle class=\"chart-dot\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\"/>",
                    x + 2.0,
                    y + 2.0
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A line and area chart of a daily series with axis labels: y at 0, half and top; x at
/// every fifth day.
pub fn line_chart(measure: Measure, title: &str, points: &[Point]) -> String {
    const W: f64 = 520.0;
    const H: f64 = 180.0;
    const LEFT: f64 = 44.0;
    const BOTTOM: f64 = 24.0;
    const TOP: f64 = 8.0;
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - BOTTOM - TOP;
    let values: Vec<Option<f64>> = points.iter().map(|p| p.value).collect();
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let top = measure.top(&known);
    let title = escape(title);
    let desc = escape(&summary(measure, points));
    let mut svg = format!(
        "<svg class=\"chart {}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\">\
         <title id=\"{id}-t\">{title}</title><desc id=\"{id}-d\">{desc}</desc>",
        measure.class(),
        id = measure.class(),
    );
    for fraction in [0.0, 0.5, 1.0] {
        let y = TOP + plot_h - fraction * plot_h;
        let _ = write!(
            svg,
            "<line class=\"chart-rule\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"chart-axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            measure.label(top * fraction)
        );
    }
    let step = if points.len() > 1 {
        plot_w / (points.len() - 1) as f64
    } else {
        0.0
    };
    for (i, point) in points.iter().enumerate().step_by(5) {
        // The last day sits on the right edge: centred there, its label was cut ("Dec").
        let anchor = if i > 0 && i + 1 == points.len() {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            svg,
            "<text class=\"chart-axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            LEFT + i as f64 * step,
            H - 6.0,
            escape(&short_date(&point.date))
        );
    }
    if known.is_empty() {
        let _ = write!(
            svg,
            "<text class=\"chart-nodata\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">No data yet</text>",
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    for segment in segments(&values, top, plot_w, plot_h) {
        let line = points_attr(&segment, LEFT, TOP);
        let (first_x, last_x) = (segment[0].0 + LEFT, segment[segment.len() - 1].0 + LEFT);
        let base = TOP + plot_h;
        let _ = write!(
            svg,
            "<polygon class=\"chart-area\" points=\"{first_x:.1},{base:.1} {line} {last_x:.1},{base:.1}\"/>\
             <polyline class=\"chart-line\" points=\"{line}\"/>"
        );
        if segment.len() == 1 {
            let (x, y) = segment[0];
            let _ = write!(
                svg,
                "<circle class=\"chart-dot\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"/>",
                x + LEFT,
                y + TOP
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[Option<f64>]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                date: format!("2026-11-{:02}", i + 1),
                value: *v,
            })
            .collect()
    }

    #[test]
    fn summaries_state_the_numbers() {
        let s = series(&[None, Some(70.0), Some(82.5), Some(80.0)]);
        assert_eq!(
            summary(Measure::Coverage, &s),
            "Coverage: 70% on Nov 2, 80% on Nov 4; lowest 70%, highest 82.5%."
        );
        assert_eq!(
            summary(Measure::Issues, &series(&[None, None])),
            "Issues: no data in the last 2 days."
        );
        assert_eq!(Measure::Issues.label(1234.0), "1.2k");
    }

    #[test]
    fn charts_are_accessible_svg_with_gaps_for_missing_days() {
        let s = series(&[Some(10.0), None, Some(30.0), Some(20.0)]);
        let chart = line_chart(Measure::Issues, "Issues <over> time", &s);
        assert!(chart.starts_with("<svg") && chart.ends_with("</svg>"));
        assert!(chart.contains("<title id=\"chart-issues-t\">Issues &lt;over&gt; time</title>"));
        assert!(chart.contains("<desc"));
        assert_eq!(
            chart.matches("<polyline").count(),
            2,
            "a gap splits the line"
        );
        assert!(chart.contains("text-anchor=\"middle\">Nov 1</text>"));
        let month = series(&[Some(1.0); 31]);
        assert!(
            line_chart(Measure::Issues, "Issues", &month)
                .contains("text-anchor=\"end\">Nov 31</text>"),
            "the label on the right edge ends there"
        );
        let spark = sparkline(Measure::Coverage, &series(&[None, None]));
        assert!(spark.contains("chart-empty") && spark.contains("no data"));
    }

    #[test]
    fn the_issue_axis_has_whole_numbers() {
        assert_eq!(Measure::Issues.top(&[]), 2.0);
        assert_eq!(Measure::Issues.top(&[1.0]), 2.0);
        assert_eq!(Measure::Issues.top(&[3.0, 2.0]), 4.0);
        assert_eq!(Measure::Issues.top(&[4.0]), 4.0);
        let chart = line_chart(Measure::Issues, "Issues", &series(&[None, Some(1.0)]));
        assert!(chart.contains(">1</text>") && chart.contains(">2</text>"));
    }

    #[test]
    fn a_single_day_is_a_dot_and_said_once() {
        let s = series(&[None, None, Some(80.0)]);
        assert_eq!(
            summary(Measure::Coverage, &s),
            "Coverage: 80% on Nov 3, the only day with data so far."
        );
        let spark = sparkline(Measure::Coverage, &s);
        assert_eq!(spark.matches("<circle class=\"chart-dot\"").count(), 1);
        let two = sparkline(Measure::Coverage, &series(&[Some(70.0), Some(80.0)]));
        assert!(!two.contains("<circle"), "a line needs no dots");
    }
}
