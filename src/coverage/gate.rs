//! The `cocov/coverage` gate: which state and description a commit's coverage gets, with the
//! original's wording (reference: API §5, "Context `cocov/coverage`").

use crate::manifest::Manifest;
use crate::statuses::State;

/// The status to post, or None when the original posted nothing (a `coverage` section without
/// `min_percent`).
pub fn status(percent: f64, manifest: Option<&Manifest>) -> Option<(State, String)> {
    let covered = format!("{}% covered", ruby_percent(percent));
    let Some(manifest) = manifest else {
        return Some((State::Success, covered));
    };
    if manifest.coverage.is_none() {
        return Some((State::Success, covered));
    }
    let min = manifest.min_percent()?;
    if percent >= f64::from(min) {
        Some((State::Success, covered))
    } else {
        Some((
            State::Failure,
            format!("{covered} (at least {min}% is required)"),
        ))
    }
}

/// The percentage rounded to two decimals and printed as Ruby prints a Float: the shortest
/// form that reads back exactly, with at least one decimal (`94.29`, `90.0`, `0.0`, `100.0`).
pub fn ruby_percent(percent: f64) -> String {
    let rounded = (percent * 100.0).round() / 100.0;
    // Debug is Rust's shortest round-trip form and keeps the `.0` that Display drops.
    format!("{rounded:?}")
}

/// The percentage shown with exactly two decimals (the reporter's and the diagnostics' form).
pub fn two_decimals(percent: f64) -> String {
    format!("{percent:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;

    fn manifest(text: &str) -> Manifest {
        manifest::parse(text).unwrap()
    }

    #[test]
    fn percent_prints_like_ruby() {
        assert_eq!(ruby_percent(94.28571428571429), "94.29");
        assert_eq!(ruby_percent(90.0), "90.0");
        assert_eq!(ruby_percent(0.0), "0.0");
        assert_eq!(ruby_percent(100.0), "100.0");
        assert_eq!(ruby_percent(66.666666), "66.67");
        assert_eq!(ruby_percent(12.5), "12.5");
        assert_eq!(two_decimals(66.666666), "66.67");
        assert_eq!(two_decimals(90.0), "90.00");
    }

    #[test]
    fn descriptions_follow_the_original() {
        assert_eq!(
            status(94.28571428571429, None),
            Some((State::Success, "94.29% covered".into()))
        );
        let no_section = manifest("version: \"0.1.alpha\"\n");
        assert_eq!(
            status(50.0, Some(&no_section)),
            Some((State::Success, "50.0% covered".into()))
        );
        let gate = manifest("version: \"0.1.alpha\"\ncoverage:\n  min_percent: 80\n");
        assert_eq!(
            status(80.0, Some(&gate)),
            Some((State::Success, "80.0% covered".into()))
        );
        assert_eq!(
            status(79.999, Some(&gate)),
            Some((
                State::Failure,
                "80.0% covered (at least 80% is required)".into()
            ))
        );
    }
}
