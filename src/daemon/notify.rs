//! systemd integration through `sd_notify`: READY=1 once listeners are up, STATUS lines, and
//! WATCHDOG=1 pings while the daemon's dependencies answer. Without systemd these are no-ops.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::task::JoinHandle;

use super::RunningDaemon;
use crate::app::App;

pub fn status(text: &str) {
    let _ = sd_notify::notify(&[NotifyState::Status(text)]);
}

pub fn ready(daemon: &RunningDaemon) {
    let text = format!(
        "ready: api {}, badger {}, roles {:?}",
        daemon
            .api_addr
            .map(|a| a.to_string())
            .unwrap_or_else(|| "off".into()),
        daemon
            .badger_addr
            .map(|a| a.to_string())
            .unwrap_or_else(|| "off".into()),
        daemon.app.config.server.roles,
    );
    let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&text)]);
}

pub fn stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping, NotifyState::Status("draining")]);
}

/// Pings the watchdog at half its interval, only while PostgreSQL and Redis answer: a daemon
/// that cannot reach them for a whole interval is restarted by systemd.
pub fn spawn_watchdog(app: App) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Some(interval) = sd_notify::watchdog_enabled() else {
            return;
        };
        let tick = interval / 2;
        loop {
            let healthy = crate::db::ping(&app.db, tick / 2).await.is_ok()
                && tokio::time::timeout(tick / 2, app.kv.ping())
                    .await
                    .is_ok_and(|r| r.is_ok());
            if healthy {
                let _ = sd_notify::notify(&[NotifyState::Watchdog]);
            } else {
                status("degraded: PostgreSQL or Redis is not answering");
            }
            tokio::time::sleep(tick.max(Duration::from_millis(100))).await;
        }
    })
}
