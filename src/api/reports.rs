//! Coverage uploads with a repository token (`Authorization: token crt_…`):
//!
//! * `POST /v1/reports`: the original reporter's JSON, `{commit_sha, data: {path: base64 line
//!   map}}` (optionally `mode`), 204 when accepted;
//! * `POST /v1/reports/raw?commit_sha=&format=&mode=`: one report file as the body (plain, gzip
//!   or zstd), parsed here; answers the diagnostic (200 applied, 202 held for a commit not yet
//!   ingested).
//!
//! Both validate in the request: an upload that matches no file of its commit is a 422 naming
//! the unmatched paths, and nothing is stored.

use std::collections::HashMap;

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use warp::Filter;
use warp::reply::{Reply, Response};

use super::with_app;
use crate::app::App;
use crate::auth::AuthError;
use crate::auth::tokens::{self, TokenKind};
use crate::coverage::budget::{self, Budget, OverBudget};
use crate::coverage::upload::WireDataError;
use crate::coverage::{self, Compression, Format, Mode, RawError, SubmitError, Upload};
use crate::http::{ApiError, body, tag};
use crate::repositories::{self, Repository};

pub fn routes(app: App) -> warp::filters::BoxedFilter<(Response,)> {
    let limit = app.config.server.request_body_limit_bytes;
    // The token is checked before the body is read: an unauthenticated client cannot make the
    // daemon buffer up to `limit` bytes.
    let wire = warp::path!("v1" / "reports")
        .and(warp::post())
        .and(uploader(app.clone()))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(body::bytes(limit))
        .and(with_app(app.clone()))
        .then(wire_upload)
        .map(tag("POST /v1/reports"));
    let raw = warp::path!("v1" / "reports" / "raw")
        .and(warp::post())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(uploader(app.clone()))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(body::bytes(limit))
        .and(with_app(app))
        .then(raw_upload)
        .map(tag("POST /v1/reports/raw"));
    wire.or(raw).unify().boxed()
}

/// The repository whose upload token the request carries.
fn uploader(app: App) -> impl Filter<Extract = (Repository,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("authorization").and_then(move |header: Option<String>| {
        let app = app.clone();
        async move {
            find_uploader(&app, header.as_deref())
                .await
                .map_err(warp::reject::custom)
        }
    })
}

async fn find_uploader(app: &App, header: Option<&str>) -> Result<Repository, ApiError> {
    let header = header.ok_or_else(|| ApiError::from(AuthError::NoAuthorization))?;
    let token = super::repositories::upload_token(header)
        .filter(|t| tokens::well_formed(t, TokenKind::RepositoryUpload))
        .ok_or_else(|| ApiError::from(AuthError::InvalidToken))?;
    // An unknown repository token is a 403, as the original answered.
    repositories::find_by_upload_token(&app.db, token)
        .await
        .map_err(|e| ApiError::internal("checking an upload token", e))?
        .ok_or_else(ApiError::forbidden)
}

fn compression(header: Option<&str>) -> Result<Compression, ApiError> {
    Compression::from_content_encoding(header).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "report.unsupported_encoding",
            "Content-Encoding must be gzip, zstd or absent",
        )
    })
}

/// The report needed more time than `coverage.processing_time_limit_ms`.
fn over_budget(e: OverBudget) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "report.over_time_limit",
        e.to_string(),
    )
}

fn raw_error(e: RawError) -> ApiError {
    match e {
        RawError::OverBudget(over) => over_budget(over),
        RawError::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "report.too_large",
            e.to_string(),
        ),
        RawError::Parse(p) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "report.invalid_report",
            p.to_string(),
        ),
    }
}

fn submit_error(e: SubmitError) -> Response {
    match e {
        SubmitError::InvalidSha(_) => {
            ApiError::bad_request("report.invalid_commit_sha", e.to_string()).into_response()
        }
        SubmitError::NulInPath(_) => {
            ApiError::bad_request("report.invalid_path", e.to_string()).into_response()
        }
        SubmitError::NoMatch(ref diagnostic) => {
            let body = json!({
                "code": "report.no_matching_files",
                "message": e.to_string(),
                "diagnostic": diagnostic,
            });
            warp::reply::with_status(warp::reply::json(&body), StatusCode::UNPROCESSABLE_ENTITY)
                .into_response()
        }
        SubmitError::OverBudget(over) => over_budget(over).into_response(),
        SubmitError::TooManyHeld { .. } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "report.too_many_held",
            e.to_string(),
        )
        .into_response(),
        SubmitError::Tree(_)
        | SubmitError::Db(_)
        | SubmitError::Status(_)
        | SubmitError::Unsettled => ApiError::internal("storing coverage", e).into_response(),
    }
}

/// Decompresses a body (JSON uploads may be compressed too), at most `max` bytes of it.
fn decompressed(body: &Bytes, compression: Compression, max: u64) -> Result<Vec<u8>, ApiError> {
    use std::io::Read;
    if compression == Compression::None {
        return Ok(body.to_vec());
    }
    let reader = compression
        .reader(&body[..])
        .map_err(|e| ApiError::bad_request("report.invalid_body", e.to_string()))?;
    let mut out = Vec::new();
    reader.take(max + 1).read_to_end(&mut out).map_err(|e| {
        ApiError::bad_request(
            "report.invalid_body",
            format!("The body could not be decompressed: {e}"),
        )
    })?;
    if out.len() as u64 > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "report.too_large",
            format!("the report is larger than {max} bytes once decompressed"),
        ));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct WireReport {
    commit_sha: Option<String>,
    data: Option<Value>,
    mode: Option<String>,
}

fn missing(param: &str) -> ApiError {
    ApiError::bad_request(
        format!("report.missing_{param}"),
        format!("The parameter \"{param}\" is required"),
    )
}

fn parse_mode(raw: Option<&str>) -> Result<Mode, ApiError> {
    match raw {
        None => Ok(Mode::default()),
        Some(m) => Mode::parse(m).ok_or_else(|| {
            ApiError::bad_request(
                "report.invalid_mode",
                format!("Invalid \"mode\" `{m}`: use merge or replace"),
            )
        }),
    }
}

async fn wire_upload(
    repository: Repository,
    encoding: Option<String>,
    body: Bytes,
    app: App,
) -> Response {
    match wire_upload_inner(repository, encoding, body, &app).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn wire_upload_inner(
    repository: Repository,
    encoding: Option<String>,
    body: Bytes,
    app: &App,
) -> Result<Response, ApiError> {
    let compression = compression(encoding.as_deref())?;
    let max = app.config.coverage.max_report_bytes;
    // Decompressing, parsing and decoding run off the runtime, within the time limit.
    let (sha, upload) = budget::run(app.config.coverage.processing_time_limit(), move |b| {
        read_wire(&body, compression, max, b)
    })
    .await
    .map_err(over_budget)??;
    Ok(
        match coverage::submit(app, &repository, &sha, upload).await {
            Ok(_) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => submit_error(e),
        },
    )
}

/// The commit and the upload of a `POST /v1/reports` body.
fn read_wire(
    body: &Bytes,
    compression: Compression,
    max: u64,
    budget: &Budget,
) -> Result<(String, Upload), ApiError> {
    let json = decompressed(body, compression, max)?;
    let report: WireReport = body::parse_json(&json)?;
    let sha = report
        .commit_sha
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| missing("commit_sha"))?;
    let data = match report.data {
        None | Some(Value::Null) => return Err(missing("data")),
        Some(Value::Object(map)) if map.is_empty() => return Err(missing("data")),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(ApiError::bad_request(
                "report.invalid_data",
                "\"data\" must be an object of file path → base64 line data",
            ));
        }
    };
    let mode = parse_mode(report.mode.as_deref())?;
    let upload = Upload::from_wire(&data, mode, budget).map_err(|e| match e {
        WireDataError::OverBudget(over) => over_budget(over),
        e => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "report.invalid_data",
            e.to_string(),
        ),
    })?;
    Ok((sha, upload))
}

async fn raw_upload(
    query: String,
    repository: Repository,
    encoding: Option<String>,
    body: Bytes,
    app: App,
) -> Response {
    match raw_upload_inner(query, repository, encoding, body, &app).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn raw_upload_inner(
    query: String,
    repository: Repository,
    encoding: Option<String>,
    body: Bytes,
    app: &App,
) -> Result<Response, ApiError> {
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let sha = params
        .get("commit_sha")
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| missing("commit_sha"))?
        .clone();
    let format = match params.get("format").filter(|f| !f.trim().is_empty()) {
        None => None,
        Some(f) => Some(
            f.parse::<Format>()
                .map_err(|e| ApiError::bad_request("report.invalid_format", e))?,
        ),
    };
    let mode = parse_mode(params.get("mode").map(String::as_str))?;
    let compression = compression(encoding.as_deref())?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "report.missing_data",
            "The request body must be the coverage report",
        ));
    }
    let max = app.config.coverage.max_report_bytes;
    let report = budget::run(app.config.coverage.processing_time_limit(), move |b| {
        coverage::upload::parse_raw(&body[..], compression, format, max, b)
    })
    .await
    .map_err(over_budget)?
    .map_err(raw_error)?;
    if report.files.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "report.empty",
            format!("The {} report names no source files", report.format),
        ));
    }
    let upload = Upload::from_report(report, mode);
    Ok(
        match coverage::submit(app, &repository, &sha, upload).await {
            Ok(diagnostic) => {
                let status = if diagnostic.status == "held" {
                    StatusCode::ACCEPTED
                } else {
                    StatusCode::OK
                };
                warp::reply::with_status(warp::reply::json(&diagnostic), status).into_response()
            }
            Err(e) => submit_error(e),
        },
    )
}
