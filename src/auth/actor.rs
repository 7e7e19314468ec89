//! Authentication of API requests: `Authorization: bearer <token>` → the acting user or service.

use sqlx::PgPool;

use super::tokens::{self, TokenKind};
use crate::audit::AuditActor;

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User { id: i64, login: String, admin: bool },
    Service { token_id: i64 },
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        matches!(self, Actor::User { admin: true, .. })
    }

    pub fn is_service(&self) -> bool {
        matches!(self, Actor::Service { .. })
    }

    pub fn user_id(&self) -> Option<i64> {
        match self {
            Actor::User { id, .. } => Some(*id),
            Actor::Service { .. } => None,
        }
    }

    pub fn audit(&self) -> AuditActor {
        match self {
            Actor::User { id, login, .. } => AuditActor::user(*id, login),
            Actor::Service { token_id } => AuditActor::service(*token_id),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Authorization is required to access this endpoint.")]
    NoAuthorization,
    #[error("The provided authorization token is either expired or invalid")]
    InvalidToken,
    #[error("Access to the requested resource was denied")]
    Forbidden,
    #[error("authentication is temporarily unavailable: {0}")]
    Unavailable(String),
}

/// The token of a `bearer` header: the scheme is case-insensitive and the token is the last
/// whitespace-separated word, as the original accepted.
pub fn bearer_token(header: &str) -> Option<&str> {
    let mut words = header.split_whitespace();
    let scheme = words.next()?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    words.last()
}

/// Resolves the `Authorization` header to an actor. Tokens are looked up by their SHA-256 only.
pub async fn authenticate(pool: &PgPool, header: Option<&str>) -> Result<Actor, AuthError> {
    let header = header.ok_or(AuthError::NoAuthorization)?;
    let token = bearer_token(header).ok_or(AuthError::InvalidToken)?;
    authenticate_token(pool, token).await
}

/// Resolves a token string (from a header or a session cookie) to an actor. A session (`coa_`)
/// also ends when unused for its idle timeout.
pub async fn authenticate_token(pool: &PgPool, token: &str) -> Result<Actor, AuthError> {
    let hash = tokens::hash(token);
    let unavailable = |e: sqlx::Error| AuthError::Unavailable(e.to_string());
    match TokenKind::of(token) {
        Some(TokenKind::Login | TokenKind::Personal) => {
            let row: Option<(i64, i64, String, bool)> = sqlx::query_as(
                "SELECT t.id, u.id, u.login::text, u.admin FROM user_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > now()) \
                 AND (t.idle_timeout_seconds IS NULL OR coalesce(t.last_used_at, t.created_at) \
                      > now() - t.idle_timeout_seconds * interval '1 second')",
            )
            .bind(&hash)
            .fetch_optional(pool)
            .await
            .map_err(unavailable)?;
            let (token_id, id, login, admin) = row.ok_or(AuthError::InvalidToken)?;
            touch(pool, "user_tokens", token_id);
            Ok(Actor::User { id, login, admin })
        }
        Some(TokenKind::Service) => {
            let token_id: i64 =
                sqlx::query_scalar("SELECT id FROM service_tokens WHERE token_hash = $1")
                    .bind(&hash)
                    .fetch_optional(pool)
                    .await
                    .map_err(unavailable)?
                    .ok_or(AuthError::InvalidToken)?;
            touch(pool, "service_tokens", token_id);
            Ok(Actor::Service { token_id })
        }
        _ => Err(AuthError::InvalidToken),
    }
}

/// Records use at most once a minute, off the request path.
fn touch(pool: &PgPool, table: &'static str, id: i64) {
    let pool = pool.clone();
    tokio::spawn(async move {
        let sql = format!(
            "UPDATE {table} SET last_used_at = now() WHERE id = $1 \
             AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')"
        );
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, table, id, "could not record token use");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_parsing_follows_the_original() {
        assert_eq!(bearer_token("bearer cos_abc"), Some("cos_abc"));
        assert_eq!(bearer_token("Bearer   cos_abc"), Some("cos_abc"));
        assert_eq!(bearer_token("BEARER x cos_abc"), Some("cos_abc"));
        assert_eq!(bearer_token("token crt_abc"), None);
        assert_eq!(bearer_token("lol?"), None);
        assert_eq!(bearer_token("bearer"), None);
    }
}
