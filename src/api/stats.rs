//! Statistics: a branch's coverage or active-issue count per day, `GET
//! /v1/repositories/{name}/stats/{coverage|issues}?from=DATE&to=DATE[&branch=NAME]`, the
//! default branch unless `branch` names another. Dates are `YYYY-MM-DD` or RFC 3339 times (their
//! UTC day); both ends are included.

use std::collections::HashMap;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::access::{respond, visible_repository};
use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::http::{ApiError, tag};
use crate::stats::{self, Point, RangeError, Series};

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let coverage = route(app.clone(), Series::Coverage, "coverage")
        .map(tag("GET /v1/repositories/{name}/stats/coverage"));
    let issues =
        route(app, Series::Issues, "issues").map(tag("GET /v1/repositories/{name}/stats/issues"));
    coverage.or(issues).unify().boxed()
}

fn route(
    app: App,
    series: Series,
    segment: &'static str,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("v1" / "repositories" / String / "stats" / ..)
        .and(warp::path(segment))
        .and(warp::path::end())
        .and(warp::get())
        .and(any_actor(app.clone()))
        .and(warp::query::<HashMap<String, String>>())
        .and(with_app(app))
        .then(
            move |name: String, actor: Actor, query: HashMap<String, String>, app: App| async move {
                respond(series_for(&app, &actor, &name, series, &query).await)
            },
        )
}

async fn series_for(
    app: &App,
    actor: &Actor,
    name: &str,
    series: Series,
    query: &HashMap<String, String>,
) -> Result<Vec<Point>, ApiError> {
    // Parameters first: they are wrong whatever the repository.
    let from = date_param(query, "from")?;
    let to = date_param(query, "to")?;
    stats::check_range(from, to).map_err(|e| {
        let code = match e {
            RangeError::Reversed { .. } => "repositories.invalid_stats_range",
            RangeError::TooLarge => "repositories.stats_range_too_large",
        };
        ApiError::bad_request(code, e.to_string())
    })?;
    let repository = visible_repository(app, actor, name).await?;
    let branch = query
        .get("branch")
        .filter(|b| !b.is_empty())
        .map_or(repository.default_branch.as_str(), String::as_str);
    let internal = |e| ApiError::internal("loading statistics", e);
    let branch_id = crate::branches::find_id(&app.db, repository.id, branch)
        .await
        .map_err(internal)?
        .ok_or_else(ApiError::not_found)?;
    stats::daily(&app.db, series, branch_id, from, to)
        .await
        .map_err(internal)
}

fn date_param(query: &HashMap<String, String>, name: &str) -> Result<Date, ApiError> {
    let raw = query.get(name).map(|s| s.trim()).filter(|s| !s.is_empty());
    let Some(raw) = raw else {
        return Err(ApiError::bad_request(
            format!("repositories.missing_{name}_date"),
            format!("The parameter \"{name}\" is required"),
        ));
    };
    parse_date(raw).ok_or_else(|| {
        ApiError::bad_request(
            format!("repositories.invalid_{name}_date"),
            format!(
                "The parameter \"{name}\" (`{raw}`) could not be interpreted as a date: use YYYY-MM-DD or an RFC 3339 time"
            ),
        )
    })
}

fn parse_date(raw: &str) -> Option<Date> {
    Date::parse(raw, format_description!("[year]-[month]-[day]"))
        .ok()
        .or_else(|| {
            OffsetDateTime::parse(raw, &Rfc3339)
                .ok()
                .map(|t| t.to_offset(time::UtcOffset::UTC).date())
        })
}

#[cfg(test)]
mod tests {
    use super::parse_date;
    use time::macros::date;

    #[test]
    fn dates_and_times() {
        assert_eq!(parse_date("2026-03-01"), Some(date!(2026 - 03 - 01)));
        assert_eq!(
            parse_date("2026-03-01T23:30:00-02:00"),
            Some(date!(2026 - 03 - 02))
        );
        for bad in ["yesterday", "2026-13-01", "2026-3-1x", "1"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
