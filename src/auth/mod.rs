//! Identity: random tokens (stored only as SHA-256), users with the first-admin rule, service
//! tokens, and turning an `Authorization` header into an [`Actor`].

mod actor;
pub mod service_tokens;
pub mod tokens;
pub mod users;

pub use actor::{Actor, AuthError, authenticate, bearer_token};
