//! Statistics: a branch's coverage or issue count per day over a date range, from the history
//! series appended whenever a branch's head gets new numbers.
//!
//! The original leaked another branch's value into the first day and dropped the first day of
//! every multi-day range (reference §16.2, bug 17). Here every day of the range is present, a day
//! with several points takes the last one, a day without any takes the previous day's value, and
//! the value carried into the range is this branch's last point before it (null if none).

mod admin;
mod graphs;

pub use admin::{
    Counters, RepositoryStorage, Storage, counters, repository_storage, storage_of, storage_total,
};
pub use graphs::{GRAPH_DAYS, Graphs, graph_points, graphs};

use serde::Serialize;
use sqlx::PgPool;
use time::{Date, Duration, OffsetDateTime, Time};

/// The longest range one request may ask for, in days (as the original).
pub const MAX_RANGE_DAYS: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    Coverage,
    Issues,
}

impl Series {
    /// Table and value column; both are fixed strings, never input.
    fn source(self) -> (&'static str, &'static str) {
        match self {
            Series::Coverage => ("coverage_histories", "percentage::float8"),
            Series::Issues => ("issue_histories", "quantity::float8"),
        }
    }
}

/// One day of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    pub value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("The date \"to\" ({to}) is before \"from\" ({from})")]
    Reversed { from: Date, to: Date },
    #[error(
        "Requested range is too large. Please provide a range spanning less than {MAX_RANGE_DAYS} days."
    )]
    TooLarge,
}

/// Checks an inclusive range of UTC days.
pub fn check_range(from: Date, to: Date) -> Result<(), RangeError> {
    if to < from {
        return Err(RangeError::Reversed { from, to });
    }
    if (to - from).whole_days() >= MAX_RANGE_DAYS {
        return Err(RangeError::TooLarge);
    }
    Ok(())
}

/// The daily series of `branch_id` from `from` to `to` inclusive (UTC days; the range must have
/// passed [`check_range`]).
pub async fn daily(
    pool: &PgPool,
    series: Series,
    branch_id: i64,
    from: Date,
    to: Date,
) -> Result<Vec<Point>, sqlx::Error> {
    let (table, value) = series.source();
    let start = from.with_time(Time::MIDNIGHT).assume_utc();
    let end = (to + Duration::days(1))
        .with_time(Time::MIDNIGHT)
        .assume_utc();
    let before: Option<f64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT {value} FROM {table} WHERE branch_id = $1 AND created_at < $2 \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    )))
    .bind(branch_id)
    .bind(start)
    .fetch_optional(pool)
    .await?;
    let points: Vec<(OffsetDateTime, f64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT created_at, {value} FROM {table} WHERE branch_id = $1 \
         AND created_at >= $2 AND created_at < $3 ORDER BY created_at, id"
    )))
    .bind(branch_id)
    .bind(start)
    .bind(end)
    .fetch_all(pool)
    .await?;
    Ok(fill(from, to, before, &points))
}

/// One value per day: the day's last point, else the value carried from before.
fn fill(from: Date, to: Date, before: Option<f64>, points: &[(OffsetDateTime, f64)]) -> Vec<Point> {
    let mut out = Vec::new();
    let mut carried = before;
    let mut next = points.iter().peekable();
    let mut day = from;
    loop {
        while let Some((_, v)) =
            next.next_if(|(at, _)| at.to_offset(time::UtcOffset::UTC).date() <= day)
        {
            carried = Some(*v);
        }
        out.push(Point {
            date: day.to_string(),
            value: carried,
        });
        match day.next_day() {
            Some(d) if d <= to => day = d,
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn every_day_is_present_and_values_carry_forward() {
        let points = [
            (datetime!(2026-03-02 09:00 UTC), 10.0),
            (datetime!(2026-03-02 18:00 UTC), 12.0),
            (datetime!(2026-03-04 00:00 UTC), 7.0),
        ];
        let got = fill(
            date!(2026 - 03 - 01),
            date!(2026 - 03 - 05),
            Some(3.0),
            &points,
        );
        let values: Vec<_> = got.iter().map(|p| p.value).collect();
        assert_eq!(
            values,
            [Some(3.0), Some(12.0), Some(12.0), Some(7.0), Some(7.0)]
        );
        assert_eq!(got[0].date, "2026-03-01");
        assert_eq!(got[4].date, "2026-03-05");
    }

    #[test]
    fn no_history_is_null_and_a_single_day_is_one_point() {
        let got = fill(date!(2026 - 03 - 01), date!(2026 - 03 - 02), None, &[]);
        assert_eq!(
            got.iter().map(|p| p.value).collect::<Vec<_>>(),
            [None, None]
        );
        let one = fill(date!(2026 - 03 - 01), date!(2026 - 03 - 01), None, &[]);
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn ranges_are_checked() {
        assert!(check_range(date!(2026 - 03 - 01), date!(2026 - 03 - 01)).is_ok());
        assert!(check_range(date!(2026 - 01 - 01), date!(2026 - 04 - 10)).is_ok());
        assert_eq!(
            check_range(date!(2026 - 01 - 01), date!(2026 - 04 - 11)),
            Err(RangeError::TooLarge)
        );
        assert!(matches!(
            check_range(date!(2026 - 03 - 02), date!(2026 - 03 - 01)),
            Err(RangeError::Reversed { .. })
        ));
    }
}
