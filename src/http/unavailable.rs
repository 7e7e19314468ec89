//! The HTTP side of outages: a request refused because a dependency is down (see
//! [`crate::outage`]) is answered 503 with `Retry-After`.

pub use crate::outage::dependency_down;

/// Seconds a client should wait before retrying a request refused for an outage.
pub const RETRY_AFTER_SECONDS: u32 = 5;
