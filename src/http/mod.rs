//! The HTTP plumbing shared by every listener (API and badges): warp filters for routing,
//! served by hyper-util, with tower-http for compression, tracing, timeouts, body limits and
//! panic catching. Errors always leave as JSON `{"code","message"}`.

pub mod body;
mod connection;
pub mod error;
pub mod html;
pub mod input;
pub mod path;
pub mod route;
mod server;
mod stack;
// The queue classifies job failures with the same rule (src/queue/handler.rs).
pub(crate) mod unavailable;

pub use connection::ConnectionLimits;
pub use error::{ApiError, recover};
pub use route::{PeerAddr, RouteName, tag};
pub use server::{Listener, serve};
pub use stack::{StackOptions, build_service};
