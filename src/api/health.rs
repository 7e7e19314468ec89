//! Liveness, readiness (each dependency checked, with detail) and metrics.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde::Serialize;
use warp::Filter;
use warp::reply::{Reply, Response};

use super::with_app;
use crate::app::App;
use crate::http::tag;

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
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(with_app(app.clone()))
        .then(|app: App| async move { readiness(&app).await })
        .map(tag("GET /readyz"));
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_app(app))
        .then(|app: App| async move { metrics(&app).await })
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

/// Probes every dependency concurrently; 503 when one is down.
pub async fn readiness(app: &App) -> Response {
    let (postgresql, redis, mut storage) = tokio::join!(
        timed(crate::db::ping(&app.db, CHECK_TIMEOUT)),
        timed(app.kv.ping()),
        timed(app.storage.check()),
    );
    storage.detail = Some(app.storage.describe());
    let ready = postgresql.ok && redis.ok && storage.ok;
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": { "postgresql": postgresql, "redis": redis, "storage": storage },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

async fn metrics(app: &App) -> Response {
    crate::daemon::refresh_queue_metrics(app).await;
    let body = app.metrics.render();
    warp::reply::with_header(
        body,
        "content-type",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )
    .into_response()
}
