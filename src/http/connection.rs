//! One accepted connection's life under the listener's limits: hyper's own timers (header read
//! timeout for HTTP/1, keep-alive pings for HTTP/2) need a timer to work at all, and an idle
//! watchdog closes a connection with no request in flight, which also covers a client that
//! connects and sends nothing (hyper-util's protocol sniffing waits for bytes without a limit).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::ServerConfig;

/// The limits every connection of a listener is served under.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// None disables (0 in the configuration).
    pub header_read_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub http2_keep_alive_interval: Option<Duration>,
    pub http2_keep_alive_timeout: Duration,
    pub max_connections: usize,
}

fn seconds(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n))
}

impl ConnectionLimits {
    pub fn from_config(server: &ServerConfig) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: seconds(server.header_read_timeout_seconds),
            idle_timeout: seconds(server.idle_timeout_seconds),
            http2_keep_alive_interval: seconds(server.http2_keep_alive_interval_seconds),
            http2_keep_alive_timeout: Duration::from_secs(
                server.http2_keep_alive_timeout_seconds.max(1),
            ),
            max_connections: server.max_connections.max(1),
        }
    }

    /// The hyper builder with the timeouts in force.
    pub(super) fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // Without a timer hyper ignores its default header timeout (30 s) and panics on a
        // configured one: the timer is what puts the limit in force.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(self.http2_keep_alive_interval)
            .keep_alive_timeout(self.http2_keep_alive_timeout);
        builder
    }
}

/// When the connection last finished a request, and how many it is handling now.
pub(super) struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when the last request finished (0: none yet).
    last_done_ms: AtomicU64,
}

/// Held while a request is being handled.
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.0.opened.elapsed().as_millis() as u64;
        self.0.last_done_ms.store(now, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    pub(super) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        })
    }

    pub(super) fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// When the connection becomes idle for `idle` if nothing happens; a busy connection is
    /// looked at again a full period later.
    fn idle_deadline(&self, idle: Duration) -> Instant {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Instant::now() + idle;
        }
        let last = Duration::from_millis(self.last_done_ms.load(Ordering::Relaxed));
        self.opened + last + idle
    }

    fn is_idle(&self, idle: Duration) -> bool {
        self.idle_deadline(idle) <= Instant::now()
    }
}

/// Resolves once `shutdown` says stop (or its sender is gone).
pub(super) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await: it is not Send.
    let _ = shutdown.wait_for(|stop| *stop).await.is_ok();
}

/// Why a connection is being closed.
enum Closing {
    Open,
    /// Asked to finish its current request; dropped at the deadline if it has not.
    Draining(Instant),
}

/// Drives `connection` to its end: closes it gracefully when it has been idle too long or the
/// server shuts down, and drops it if it has not finished by then.
pub(super) async fn drive<C>(
    connection: C,
    activity: Arc<Activity>,
    limits: &ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) -> Result<(), String>
where
    C: std::future::Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>
        + GracefulShutdown,
{
    let mut connection = std::pin::pin!(connection);
    let mut closing = Closing::Open;
    // An idle connection is asked to close politely (HTTP/2: GOAWAY, which waits for the peer
    // to answer a ping) and dropped if it has not within this long: a request racing the
    // close, or a peer that ignores the GOAWAY, gets no more than the idle time again, and at
    // most a few seconds.
    let idle_grace = limits
        .idle_timeout
        .unwrap_or_default()
        .min(Duration::from_secs(5));
    loop {
        let wake = match closing {
            Closing::Draining(at) => Some(at),
            Closing::Open => limits.idle_timeout.map(|idle| activity.idle_deadline(idle)),
        };
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = connection.as_mut() => return result.map_err(|e| e.to_string()),
            () = stopped(&mut shutdown), if matches!(closing, Closing::Open) => {
                connection.as_mut().shut_down_gracefully();
                closing = Closing::Draining(Instant::now() + grace);
            }
            () = sleep => match closing {
                Closing::Draining(_) => return Err("closed: did not finish in time".into()),
                Closing::Open => {
                    if limits.idle_timeout.is_some_and(|idle| activity.is_idle(idle)) {
                        connection.as_mut().shut_down_gracefully();
                        closing = Closing::Draining(Instant::now() + idle_grace);
                    }
                }
            },
        }
    }
}

/// A connection that can be asked to finish its current request and close.
pub(super) trait GracefulShutdown {
    fn shut_down_gracefully(self: std::pin::Pin<&mut Self>);
}

impl<I, S, E, B> GracefulShutdown for auto::Connection<'_, I, S, E>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: auto::HttpServerConnExec<S::Future, B>,
{
    fn shut_down_gracefully(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}
