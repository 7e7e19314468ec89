//! Liveness, readiness (each dependency checked; the detail for administrators) and metrics
//! (administrators, or a scraper with the metrics token).

use std::time::{Duration, Instant};

use http::StatusCode;
use serde::Serialize;
use sha2::{Digest, Sha256};
use warp::Filter;
use warp::reply::{Reply, Response};

use super::with_app;
use crate::app::App;
use crate::http::{ApiError, tag};

pub fn routes(app: App) -> warp::filters::BoxedFilter<(Response,)> {
    let ping = warp::path!("v1" / "ping")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"pong": true})).into_response())
        .map(tag("GET /v1/ping"));
    // The original's probe path, kept for existing load balancer configurations.
    let legacy = warp::path!("system" / "probes" / "health")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"pong": true})).into_response())
        .map(tag("GET /system/probes/health"));
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"status": "alive"})).into_response())
        .map(tag("GET /healthz"));
    // Anonymous callers learn only ready or not; the per-dependency detail (error texts,
    // storage location) is for administrators.
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(warp::header::optional::<String>("authorization"))
        .and(with_app(app.clone()))
        .then(|header: Option<String>, app: App| async move {
            if header.is_none() {
                return readiness(&app, false).await;
            }
            match admin(&app, header.as_deref()).await {
                Ok(()) => readiness(&app, true).await,
                Err(e) => e.into_response(),
            }
        })
        .map(tag("GET /readyz"));
    // Metrics describe traffic and queues: an administrator's token, or the scraper's token
    // from `server.metrics_token_file`.
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(warp::header::optional::<String>("authorization"))
        .and(with_app(app))
        .then(|header: Option<String>, app: App| async move {
            match metrics_reader(&app, header.as_deref()).await {
                Ok(()) => metrics(&app).await,
                Err(e) => e.into_response(),
            }
        })
        .map(tag("GET /metrics"));
    ping.or(legacy)
        .unify()
        .or(healthz)
        .unify()
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
        .boxed()
}

#[derive(Serialize)]
struct Check {
    ok: bool,
    latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn timed<F, E>(future: F) -> Check
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let started = Instant::now();
    let result = tokio::time::timeout(CHECK_TIMEOUT, future).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
    };
    Check {
        ok: error.is_none(),
        latency_ms,
        error,
        detail: None,
    }
}

/// 401 without a valid token, 403 for a token that is not an administrator's.
async fn admin(app: &App, header: Option<&str>) -> Result<(), ApiError> {
    let actor = crate::auth::authenticate(&app.db, header).await?;
    if actor.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// The scraper's token (`Authorization: Bearer <token>`) when one is configured, else an
/// administrator.
async fn metrics_reader(app: &App, header: Option<&str>) -> Result<(), ApiError> {
    let file = &app.config.server.metrics_token_file;
    if let (false, Some(presented)) = (file.as_os_str().is_empty(), header) {
        let expected = tokio::fs::read_to_string(file)
            .await
            .map_err(|e| ApiError::internal("reading server.metrics_token_file", e))?;
        let expected = expected.trim();
        let presented = presented
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        // Compared as digests, so the time taken says nothing about the token.
        let digest = |t: &str| Sha256::digest(t.as_bytes());
        if !expected.is_empty() && presented.is_some_and(|p| digest(p) == digest(expected)) {
            return Ok(());
        }
    }
    admin(app, header).await
}

/// Probes every dependency concurrently; 503 when one is down. `detail` adds each
/// dependency's check (errors, latency, where storage is).
pub async fn readiness(app: &App, detail: bool) -> Response {
    let (postgresql, redis, mut storage) = tokio::join!(
        timed(crate::db::ping(&app.db, CHECK_TIMEOUT)),
        timed(app.kv.ping()),
        timed(app.storage.check()),
    );
    storage.detail = Some(app.storage.describe());
    let ready = postgresql.ok && redis.ok && storage.ok;
    let body = if detail {
        serde_json::json!({
            "ready": ready,
            "status": if ready { "ready" } else { "not_ready" },
            "checks": { "postgresql": postgresql, "redis": redis, "storage": storage },
        })
    } else {
        serde_json::json!({ "ready": ready })
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

async fn metrics(app: &App) -> Response {
    crate::jobs::refresh_metrics(app).await;
    let body = app.metrics.render();
    warp::reply::with_header(
        body,
        "content-type",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )
    .into_response()
}
