//! The 31-day series the repository pages chart: a branch's coverage and issues per day up to
//! today (UTC).

use time::{Duration, OffsetDateTime};

use crate::stats::{self, Point, Series};

/// Days in the charts and sparklines, today included (as the original).
pub const DAYS: i64 = 31;

/// A branch's coverage and issue series over the last [`DAYS`] days; empty series (every
/// value null) without a branch.
pub async fn last_31_days(
    pool: &sqlx::PgPool,
    branch_id: Option<i64>,
) -> Result<(Vec<Point>, Vec<Point>), sqlx::Error> {
    let to = OffsetDateTime::now_utc().date();
    let from = to - Duration::days(DAYS - 1);
    let Some(branch_id) = branch_id else {
        let empty: Vec<Point> = (0..DAYS)
            .map(|i| Point {
                date: (from + Duration::days(i)).to_string(),
                value: None,
            })
            .collect();
        return Ok((empty.clone(), empty));
    };
    let coverage = stats::daily(pool, Series::Coverage, branch_id, from, to).await?;
    let issues = stats::daily(pool, Series::Issues, branch_id, from, to).await?;
    Ok((coverage, issues))
}
