//! Numbers, sizes and times as the pages show them.

use time::OffsetDateTime;

/// `81.3%`, or `—` when unknown.
pub fn percent(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{}%", one_decimal(v)),
        _ => "—".to_string(),
    }
}

/// A count, or `—` when unknown.
pub fn count(value: Option<i64>) -> String {
    value.map_or_else(|| "—".to_string(), |v| v.to_string())
}

/// One decimal, without a trailing `.0` (`80`, `80.5`).
pub fn one_decimal(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// Bytes in 1024-based units (`1.5 MB`); `0 B` for zero.
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{} {}", one_decimal(value), UNITS[unit])
    }
}

/// "just now", "5 minutes ago", "3 days ago", … relative to `now`.
pub fn ago(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let seconds = (now - at).whole_seconds();
    if seconds < 30 {
        return "just now".to_string();
    }
    let (n, unit) = match seconds {
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s if s < 30 * 86_400 => (s / 86_400, "day"),
        s if s < 365 * 86_400 => (s / (30 * 86_400), "month"),
        s => (s / (365 * 86_400), "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// [`ago`] from now.
pub fn ago_now(at: OffsetDateTime) -> String {
    ago(at, OffsetDateTime::now_utc())
}

/// The absolute time for a tooltip or `<time datetime>`: RFC 3339 in UTC.
pub fn iso(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The first line of a commit message.
pub fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("")
}

/// The short form of a commit sha.
pub fn short_sha(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn values_read_like_the_original() {
        assert_eq!(percent(Some(80.0)), "80%");
        assert_eq!(percent(Some(80.46)), "80.5%");
        assert_eq!(percent(None), "—");
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1536), "1.5 kB");
        assert_eq!(size(3 * 1024 * 1024), "3 MB");
        let now = datetime!(2026-12-05 12:00 UTC);
        assert_eq!(ago(datetime!(2026-12-05 11:59:50 UTC), now), "just now");
        assert_eq!(ago(datetime!(2026-12-05 11:00 UTC), now), "1 hour ago");
        assert_eq!(ago(datetime!(2026-12-02 12:00 UTC), now), "3 days ago");
        assert_eq!(short_sha("0123456789abcdef"), "0123456");
        assert_eq!(first_line("fix: x\n\nbody"), "fix: x");
    }
}
