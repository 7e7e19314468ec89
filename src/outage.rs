//! Telling "a dependency is down" from "something is broken": an outage passes by itself (the
//! API answers 503 with `Retry-After`, a job waits without using up an attempt); anything else
//! is a bug. Only connection-level failures count as down: a query PostgreSQL rejects or a Redis
//! script error is still a bug. Below both the queue and the HTTP edge, which share it.

use std::io::ErrorKind;

/// The dependency found unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Postgresql,
    Redis,
    BlobStore,
    /// A network peer that could not be named more precisely (the blob store, mostly).
    Other,
}

impl Dependency {
    pub fn code(self) -> &'static str {
        match self {
            Dependency::Postgresql => "unavailable.postgresql",
            Dependency::Redis => "unavailable.redis",
            Dependency::BlobStore => "unavailable.blob_store",
            Dependency::Other => "unavailable",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dependency::Postgresql => "The database",
            Dependency::Redis => "Redis",
            Dependency::BlobStore => "The blob store",
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
        if let Some(e) = link.downcast_ref::<crate::storage::StorageError>() {
            return e.is_unavailable().then_some(Dependency::BlobStore);
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
        Queue(#[from] redis::RedisError),
        #[error("reading an archive: {0}")]
        Store(#[source] crate::storage::StorageError),
    }

    #[test]
    fn outages_are_recognised_through_domain_errors() {
        assert_eq!(
            down(DomainError::Db(sqlx::Error::PoolTimedOut)),
            Some(Dependency::Postgresql)
        );
        let refused = std::io::Error::new(ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            down(DomainError::Queue(redis::RedisError::from(refused))),
            Some(Dependency::Redis)
        );
        let reset = std::io::Error::new(ErrorKind::ConnectionReset, "reset");
        assert_eq!(down(reset), Some(Dependency::Other));
        let store = crate::storage::StorageError::Unavailable {
            context: "get 1/a".into(),
            message: "connection refused".into(),
        };
        assert_eq!(down(DomainError::Store(store)), Some(Dependency::BlobStore));
        let refused = crate::storage::StorageError::S3 {
            context: "get 1/a".into(),
            message: "AccessDenied".into(),
        };
        assert_eq!(down(refused), None);
    }

    #[test]
    fn bugs_stay_bugs() {
        assert_eq!(down(sqlx::Error::RowNotFound), None);
        assert_eq!(down(anyhow::anyhow!("something else")), None);
        let denied = std::io::Error::new(ErrorKind::PermissionDenied, "denied");
        assert_eq!(down(denied), None);
    }
}
