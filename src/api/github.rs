//! `POST /v1/github/events`: GitHub webhook deliveries. The body is read raw so the signature is
//! checked over exactly what GitHub signed, before anything is parsed.

use http::StatusCode;
use warp::Filter;
use warp::reply::{Reply, Response};

use super::with_app;
use crate::app::App;
use crate::http::{ApiError, body, tag};
use crate::webhooks::{self, Delivery, WebhookError};

/// GitHub caps webhook payloads at 25 MB.
const PAYLOAD_LIMIT: u64 = 25 * 1024 * 1024;

pub fn routes(app: App) -> warp::filters::BoxedFilter<(Response,)> {
    warp::path!("v1" / "github" / "events")
        .and(warp::post())
        .and(warp::header::optional::<String>("x-hub-signature-256"))
        .and(warp::header::optional::<String>("x-github-event"))
        .and(warp::header::optional::<String>("x-github-delivery"))
        .and(body::deferred(PAYLOAD_LIMIT))
        .and(with_app(app))
        .then(
            |signature: Option<String>,
             event: Option<String>,
             delivery: Option<String>,
             body: body::Deferred,
             app: App| async move {
                // Without GitHub mode there is no secret to check a signature with: refuse
                // before reading a body nobody can vouch for.
                if app.github.is_none() {
                    return error(WebhookError::NotConfigured).into_response();
                }
                let body = match body.bytes().await {
                    Ok(body) => body,
                    Err(e) => return e.into_response(),
                };
                let delivery = Delivery {
                    signature: signature.as_deref(),
                    event: event.as_deref(),
                    delivery_id: delivery.as_deref(),
                    body: &body,
                };
                match webhooks::receive(&app, delivery).await {
                    Ok(outcome) => {
                        warp::reply::with_status(warp::reply::json(&outcome), StatusCode::ACCEPTED)
                            .into_response()
                    }
                    Err(e) => error(e).into_response(),
                }
            },
        )
        .map(tag("POST /v1/github/events"))
        .boxed()
}

fn error(e: WebhookError) -> ApiError {
    let message = e.to_string();
    match e {
        WebhookError::NotConfigured => {
            ApiError::new(StatusCode::NOT_FOUND, "github.not_configured", message)
        }
        WebhookError::Signature(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "github.invalid_signature",
            message,
        ),
        WebhookError::MissingHeader(_) => ApiError::bad_request("github.missing_header", message),
        WebhookError::InvalidJson(_) => ApiError::bad_request("github.invalid_payload", message),
        WebhookError::Unavailable(_) => ApiError::unavailable(message),
    }
}
