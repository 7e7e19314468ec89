//! Telling "a dependency is down" from "something is broken": the first passes by itself and is
//! answered 503 with `Retry-After`; the second is a 500. Only connection-level failures count as
//! down: a query PostgreSQL rejects or a Redis script error is still a bug.

use std::io::ErrorKind;

/// Seconds a client should wait before retrying a request refused for an outage.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// The dependency found unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Postgresql,
    Redis,
    /// A network peer that could not be named more precisely (the blob store, mostly).
    Other,
}

impl Dependency {
    pub fn code(self) -> &'static str {
        match self {
            Dependency::Postgresql => "unavailable.postgresql",
            Dependency::Redis => "unavailable.redis",
            Dependency::Other => "unavailable",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dependency::Postgresql => "The database",
            Dependency::Redis => "Redis",
            Dependency::Other => "A service this server depends on",
        }
    }
}

/// The first link of the error's cause chain that says a dependency could not be reached.
pub fn dependency_down(error: &anyhow::Error) -> Option<Dependency> {
    error.chain().find_map(|link| {
        if let Some(e) = link.downcast_ref::<sqlx::Error>() {
            return matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
            )
            .then_some(Dependency::Postgresql);
        }
        if let Some(e) = link.downcast_ref::<redis::RedisError>() {
            return (e.is_io_error()
                || e.is_connection_refusal()
                || e.is_connection_dropped()
                || e.is_timeout())
            .then_some(Dependency::Redis);
        }
        let e = link.downcast_ref::<std::io::Error>()?;
        matches!(
            e.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::NotConnected
                | ErrorKind::BrokenPipe
                | ErrorKind::TimedOut
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable
        )
        .then_some(Dependency::Other)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down(error: impl Into<anyhow::Error>) -> Option<Dependency> {
        dependency_down(&error.into())
    }

    /// Shaped as the domain modules' errors are: the cause kept as the source, not flattened.
    #[derive(Debug, thiserror::Error)]
    enum DomainError {
        #[error("{0}")]
        Db(#[from] sqlx::Error),
        #[error("could not queue: {0}")]
        Queue(#[from] crate::queue::QueueError),
    }

    #[test]
    fn outages_are_recognised_through_domain_errors() {
        assert_eq!(
            down(DomainError::Db(sqlx::Error::PoolTimedOut)),
            Some(Dependency::Postgresql)
        );
        let refused = std::io::Error::new(ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            down(DomainError::Queue(redis::RedisError::from(refused).into())),
            Some(Dependency::Redis)
        );
        let reset = std::io::Error::new(ErrorKind::ConnectionReset, "reset");
        assert_eq!(down(reset), Some(Dependency::Other));
    }

    #[test]
    fn bugs_stay_bugs() {
        assert_eq!(down(sqlx::Error::RowNotFound), None);
        assert_eq!(down(anyhow::anyhow!("something else")), None);
        let denied = std::io::Error::new(ErrorKind::PermissionDenied, "denied");
        assert_eq!(down(denied), None);
    }
}
