//! The daemon's life: start the roles this host has, report readiness to systemd, keep the
//! watchdog fed while healthy, and on SIGTERM stop accepting, finish in-flight requests and
//! jobs within the grace period, hand unfinished jobs back, and exit 0.

pub mod logging;
mod notify;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use warp::Filter;

use crate::app::App;
use crate::config::{Config, Role};
use crate::http::{ConnectionLimits, Listener, StackOptions, build_service, serve};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("cannot listen on {addr} for the {listener} listener: {source}")]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("interrupted while waiting for PostgreSQL")]
    Interrupted,
}

/// A started daemon: its listeners' addresses and the handle to stop it.
pub struct RunningDaemon {
    pub app: App,
    pub api_addr: Option<SocketAddr>,
    pub badger_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningDaemon {
    /// Asks every listener and the job consumer to stop (idempotent).
    pub fn trigger_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Stops and waits until everything has drained.
    pub async fn shutdown(self) {
        self.trigger_shutdown();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Builds the app, migrates the database (waiting for PostgreSQL if it is not up yet), binds the
/// listeners of this host's roles and starts the job consumer.
pub async fn start(
    config: Config,
    stop: watch::Receiver<bool>,
) -> Result<RunningDaemon, StartError> {
    let app = App::build(config).await?;
    migrate_when_reachable(&app, stop).await?;
    let config = app.config.clone();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let mut tasks = Vec::new();

    let mut api_addr = None;
    if config.server.has_role(Role::Api) {
        let listener = Listener::bind("api", config.server.bind_address)
            .await
            .map_err(|source| StartError::Bind {
                listener: "api",
                addr: config.server.bind_address,
                source,
            })?;
        api_addr = Some(listener.local_addr);
        // The web UI claims its own paths first; everything else is the JSON API's.
        let routes = crate::web::routes(app.clone())
            .or(crate::api::routes(app.clone()))
            .unify()
            .boxed();
        let service = build_service(routes, stack_options(&app, "api"));
        tasks.push(tokio::spawn(serve(
            listener,
            service,
            ConnectionLimits::from_config(&config.server),
            shutdown_rx.clone(),
            grace,
        )));
    }

    let mut badger_addr = None;
    if config.server.has_role(Role::Badger) {
        let addr = SocketAddr::new(config.badger.bind_address, config.badger.bind_port);
        let listener = Listener::bind("badger", addr)
            .await
            .map_err(|source| StartError::Bind {
                listener: "badger",
                addr,
                source,
            })?;
        badger_addr = Some(listener.local_addr);
        let service = build_service(
            crate::badges::routes(app.clone()),
            stack_options(&app, "badger"),
        );
        tasks.push(tokio::spawn(serve(
            listener,
            service,
            ConnectionLimits::from_config(&config.server),
            shutdown_rx.clone(),
            grace,
        )));
    }

    if config.server.has_role(Role::Worker) {
        // What the host offers the sandbox (cgroup, seccomp, userns switch), found and logged
        // once now rather than inside the first check.
        let _ = tokio::task::spawn_blocking(crate::sandbox::host).await;
        tasks.push(tokio::spawn(sweep_deadlines(
            app.clone(),
            shutdown_rx.clone(),
        )));
        tasks.push(tokio::spawn(crate::reconcile::run(
            app.clone(),
            shutdown_rx.clone(),
        )));
        let registry = crate::jobs::registry(&app);
        let consumer = crate::queue::Consumer::new(app.queue.clone(), registry);
        let rx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = consumer.run(rx, grace).await {
                tracing::error!(error = %e, "job consumer stopped with an error");
            }
        }));
    }

    tracing::info!(
        roles = ?config.server.roles,
        api = ?api_addr,
        badger = ?badger_addr,
        storage = %app.storage.describe(),
        "cocov started"
    );
    Ok(RunningDaemon {
        app,
        api_addr,
        badger_addr,
        shutdown,
        tasks,
    })
}

fn stack_options(app: &App, listener: &'static str) -> StackOptions {
    StackOptions {
        listener,
        body_limit_bytes: app.config.server.request_body_limit_bytes,
        timeout: Duration::from_secs(app.config.server.request_timeout_seconds),
        metrics: app.metrics.clone(),
    }
}

/// Applies migrations, retrying while PostgreSQL is unreachable (it may start after us); a schema
/// newer than this binary is fatal.
async fn migrate_when_reachable(
    app: &App,
    mut stop: watch::Receiver<bool>,
) -> Result<(), StartError> {
    let mut delay = Duration::from_millis(500);
    loop {
        match crate::db::migrate(&app.config.database).await {
            Ok(report) => {
                if report.applied > 0 {
                    tracing::info!(
                        applied = report.applied,
                        version = report.after,
                        "database migrated"
                    );
                }
                return Ok(());
            }
            Err(crate::db::DbError::Sql(e)) => {
                notify::status(&format!("waiting for PostgreSQL: {e}"));
                tracing::warn!(error = %e, retry_in = ?delay, "PostgreSQL is not reachable yet");
            }
            Err(e) => return Err(e.into()),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return Err(StartError::Interrupted),
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// `cocov serve`: runs until SIGTERM or SIGINT, then drains and returns.
pub async fn run(config: Config) -> Result<(), StartError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let signals = tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    notify::status("starting");
    let daemon = start(config, stop_rx.clone()).await?;
    notify::ready(&daemon);
    let watchdog = notify::spawn_watchdog(daemon.app.clone());
    let mut stop_rx = stop_rx;
    while !*stop_rx.borrow() {
        if stop_rx.changed().await.is_err() {
            break;
        }
    }
    tracing::info!("shutting down");
    notify::stopping();
    watchdog.abort();
    daemon.shutdown().await;
    signals.abort();
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    tokio::select! {
        _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
        _ = async { match int.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// Ends whatever passed its deadline (pending statuses, and later check sets and coverage), so
/// nothing stays pending even when the component that should have finished it died.
async fn sweep_deadlines(app: App, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = crate::checks::sweep_expired(&app).await {
            tracing::warn!(error = %e, "check set deadline sweep failed; will retry");
        }
        if let Err(e) = crate::coverage::expire_early_uploads(&app).await {
            tracing::warn!(error = %e, "expiring early coverage uploads failed; will retry");
        }
        if let Err(e) = crate::statuses::sweep_expired(&app).await {
            tracing::warn!(error = %e, "deadline sweep failed; will retry");
        }
        tokio::select! {
            _ = tokio::time::sleep(crate::statuses::sweep_interval(&app)) => {}
            _ = shutdown.changed() => return,
        }
    }
}
