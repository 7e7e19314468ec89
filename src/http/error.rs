//! API errors and the mapping of warp's rejections to JSON bodies. Domain modules return their
//! own error types; handlers convert them to [`ApiError`] with the right status and code.

use std::convert::Infallible;

use http::StatusCode;
use serde::Serialize;
use warp::reply::Response;
use warp::{Rejection, Reply};

/// An error answered to the client as `{"code": …, "message": …}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The requested resource could not be found.",
        )
    }

    pub fn bad_request(code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn forbidden() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "auth.forbidden",
            "Access to the requested resource was denied",
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            message,
        )
    }

    /// A failure: logged in full, answered without internals. A dependency that cannot be
    /// reached (PostgreSQL, Redis, the blob store) is not the request's fault and will pass:
    /// that is a 503 with `Retry-After`, so clients retry instead of giving up.
    pub fn internal(context: &str, error: impl Into<anyhow::Error>) -> Self {
        let error = error.into();
        if let Some(dependency) = super::unavailable::dependency_down(&error) {
            tracing::warn!(error = %format!("{error:#}"), context, "a dependency is down");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                dependency.code(),
                format!("{} is unavailable; please retry later.", dependency.name()),
            );
        }
        tracing::error!(error = %format!("{error:#}"), context, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An error prevented the operation from completing. Please try again.",
        )
    }

    pub fn into_response(self) -> Response {
        json_error(self.status, &self.code, &self.message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl warp::reject::Reject for ApiError {}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        ApiError::into_response(self)
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError::*;
        let status = match e {
            NoAuthorization | InvalidToken => StatusCode::UNAUTHORIZED,
            Forbidden => StatusCode::FORBIDDEN,
            Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let code = match e {
            NoAuthorization => "auth.no_authorization",
            InvalidToken => "auth.invalid_token",
            Forbidden => "auth.forbidden",
            Unavailable(_) => "service_unavailable",
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// A JSON error response. Every 503 says when to come back (`Retry-After`, seconds).
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = warp::reply::json(&Body { code, message }).into_response();
    *response.status_mut() = status;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(super::unavailable::RETRY_AFTER_SECONDS),
        );
    }
    response
}

/// Turns every rejection into a JSON error with the right status; nothing leaks as HTML/text.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(e) = rejection.find::<ApiError>() {
        return Ok(e.clone().into_response());
    }
    let (status, code, message) = if rejection.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "not_found",
            "The requested resource could not be found.".to_string(),
        )
    } else if let Some(e) = rejection.find::<warp::reject::MethodNotAllowed>() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            e.to_string(),
        )
    } else if let Some(e) = rejection.find::<warp::reject::PayloadTooLarge>() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request.too_large",
            e.to_string(),
        )
    } else if let Some(e) = rejection.find::<warp::reject::LengthRequired>() {
        (
            StatusCode::LENGTH_REQUIRED,
            "request.length_required",
            e.to_string(),
        )
    } else if let Some(e) = rejection.find::<warp::reject::UnsupportedMediaType>() {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request.unsupported_media_type",
            e.to_string(),
        )
    } else if let Some(e) = rejection.find::<warp::reject::MissingHeader>() {
        (
            StatusCode::BAD_REQUEST,
            "request.missing_header",
            e.to_string(),
        )
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        (
            StatusCode::BAD_REQUEST,
            "request.invalid_header",
            e.to_string(),
        )
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        (
            StatusCode::BAD_REQUEST,
            "request.invalid_query",
            e.to_string(),
        )
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        (
            StatusCode::BAD_REQUEST,
            "request.invalid",
            format!("The request could not be processed: {rejection:?}"),
        )
    };
    Ok(json_error(status, code, &message))
}
