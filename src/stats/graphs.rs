//! The 31-day series the repository and branch pages chart (the original's `graphs`): one value
//! per UTC day for coverage and active issues, ending today.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::PgPool;
use time::{Date, Duration};

use super::{Point, Series, daily};

/// How many days the charts cover, today included (as the original).
pub const GRAPH_DAYS: i64 = 31;

/// Both series of one branch, keyed by `YYYY-MM-DD` (a `BTreeMap`, so the days stay in order in
/// the JSON and in the page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graphs {
    pub coverage: BTreeMap<String, Option<f64>>,
    pub issues: BTreeMap<String, Option<f64>>,
}

/// The last [`GRAPH_DAYS`] days up to `today` of `branch_id`; without a branch (a repository
/// whose default branch has no row yet) every day is null.
pub async fn graphs(
    pool: &PgPool,
    branch_id: Option<i64>,
    today: Date,
) -> Result<Graphs, sqlx::Error> {
    let series = |points: Vec<Point>| -> BTreeMap<String, Option<f64>> {
        points.into_iter().map(|p| (p.date, p.value)).collect()
    };
    let (coverage, issues) = graph_points(pool, branch_id, today).await?;
    Ok(Graphs {
        coverage: series(coverage),
        issues: series(issues),
    })
}

/// [`graphs`] as ordered points (coverage, issues), for charts.
pub async fn graph_points(
    pool: &PgPool,
    branch_id: Option<i64>,
    today: Date,
) -> Result<(Vec<Point>, Vec<Point>), sqlx::Error> {
    let from = today - Duration::days(GRAPH_DAYS - 1);
    Ok(match branch_id {
        Some(id) => (
            daily(pool, Series::Coverage, id, from, today).await?,
            daily(pool, Series::Issues, id, from, today).await?,
        ),
        None => {
            let empty = super::fill(from, today, None, &[]);
            (empty.clone(), empty)
        }
    })
}
