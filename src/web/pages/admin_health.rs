//! `/admin/health`: whether this host reaches PostgreSQL, Redis and the blob store, how fast,
//! and the error when it does not (the detail `/readyz` gives administrators, as a page).

use std::future::Future;
use std::time::{Duration, Instant};

use askama::Template;
use warp::reply::Response;

use crate::web::Req;
use crate::web::page::{self, Chrome, PageError};

/// A dependency that does not answer within this is shown as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

struct Probe {
    name: &'static str,
    ok: bool,
    latency: String,
    error: Option<String>,
    detail: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/health.html")]
struct HealthPage {
    chrome: Chrome,
    admin_tab: &'static str,
    probes: Vec<Probe>,
    version: &'static str,
    roles: String,
}

async fn probe<E: std::fmt::Display>(
    name: &'static str,
    check: impl Future<Output = Result<(), E>>,
) -> Probe {
    let started = Instant::now();
    let error = match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
    };
    Probe {
        name,
        ok: error.is_none(),
        latency: format!("{} ms", started.elapsed().as_millis()),
        error,
        detail: None,
    }
}

pub async fn get(req: &Req) -> Result<Response, PageError> {
    let session = req.admin_session().await?;
    let app = &req.app;
    let (postgresql, redis, mut storage) = tokio::join!(
        probe("PostgreSQL", crate::db::ping(&app.db, PROBE_TIMEOUT)),
        probe("Redis", app.kv.ping()),
        probe("Blob store", app.storage.check()),
    );
    storage.detail = Some(app.storage.describe());
    let view = HealthPage {
        chrome: session.chrome("Health · Administration", "admin"),
        admin_tab: "health",
        probes: vec![postgresql, redis, storage],
        version: env!("CARGO_PKG_VERSION"),
        roles: app
            .config
            .server
            .roles
            .iter()
            .map(|r| format!("{r:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join(", "),
    };
    page::render(&view)
}
