//! Identity: random tokens (stored only as SHA-256), users with the first-admin rule, service
//! tokens, and turning an `Authorization` header into an [`Actor`].

mod actor;
pub mod csrf;
pub mod github_accounts;
pub mod local;
pub mod login_limit;
pub mod oauth_state;
pub mod oidc;
pub mod password;
pub mod personal_tokens;
pub mod return_to;
pub mod service_tokens;
pub mod sessions;
pub mod sign_in_links;
pub mod tokens;
pub mod user_admin;
pub mod users;

pub use actor::{Actor, AuthError, authenticate, authenticate_token, bearer_token};
