//! Accepting connections and serving them with hyper-util, with graceful shutdown: stop
//! accepting, let in-flight requests finish within the grace period, then close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::{Service, ServiceExt};

use super::connection::{self, Activity, ConnectionLimits};
use super::route::PeerAddr;
use super::stack::ResponseBody;

/// A bound listener and the address it actually got (port 0 resolves here).
pub struct Listener {
    pub name: &'static str,
    pub listener: TcpListener,
    pub local_addr: SocketAddr,
}

impl Listener {
    pub async fn bind(name: &'static str, addr: SocketAddr) -> std::io::Result<Listener> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(Listener {
            name,
            listener,
            local_addr,
        })
    }
}

/// Serves until `shutdown` flips to true, then drains for at most `grace`. At most
/// `limits.max_connections` connections are open at once: the next one is accepted only when one
/// ends (until then it waits in the kernel's listen backlog).
pub async fn serve<S>(
    listener: Listener,
    service: S,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) where
    S: Service<
            Request<Incoming>,
            Response = Response<ResponseBody>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = limits.builder();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let name = listener.name;
    loop {
        // A permit first, so a full listener stops accepting instead of queueing in memory.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = connection::stopped(&mut shutdown) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = connection::stopped(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let tracker = activity.clone();
        let svc = service
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            })
            .map_future(move |future| {
                let in_flight = tracker.request_started();
                async move {
                    let response = future.await;
                    drop(in_flight);
                    response
                }
            });
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
            .into_owned();
        let limits = limits.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = connection::drive(connection, activity, &limits, shutdown, grace).await
            {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(
        listener = name,
        "stopped accepting; draining in-flight requests"
    );
    // Every open connection holds a permit: having them all back means everything drained.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            ?grace,
            "in-flight requests did not finish within the grace period"
        );
    }
}
