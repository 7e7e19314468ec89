//! Route names for metrics (the matched template, never the raw path) and the peer address.

use std::net::SocketAddr;

use warp::reply::Response;

/// The name of the route that answered, e.g. `GET /v1/ping`, stored in response extensions.
#[derive(Debug, Clone, Copy)]
pub struct RouteName(pub &'static str);

/// The client's address, inserted into every request by the server.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Marks a response with the route that produced it.
pub fn tag(name: &'static str) -> impl Fn(Response) -> Response + Clone {
    move |mut response: Response| {
        response.extensions_mut().insert(RouteName(name));
        response
    }
}
