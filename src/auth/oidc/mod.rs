//! Sign-in through an OpenID Connect provider: the authorization code flow with PKCE (S256),
//! `state` single-use and bound to the browser, `nonce`, and the ID token's signature and
//! claims verified against the provider's discovery document and JWKS.
//!
//! - [`provider`]: the configured provider, its discovery document and keys (cached; keys
//!   fetched again when a token names an unknown one, at most every few seconds).
//! - [`flow`]: starting a sign-in (the pending state in Redis) and finishing it at the callback.
//! - [`id_token`]: ID-token verification.
//! - [`link`]: from a verified identity to a user: matched by (issuer, subject), created when
//!   sign-up is allowed, admin flag and groups refreshed at each sign-in.
//! - [`super::return_to`]: where the browser may be sent afterwards (same-origin paths only),
//!   shared with GitHub sign-in.
//!
//! Nothing here knows HTTP requests; `api::auth_oidc` maps them in and out.

mod flow;
pub mod id_token;
mod link;
mod provider;

pub use super::return_to::safe_return_to;
pub use flow::{Begun, Callback, PENDING_LIFETIME, SignedIn};
pub use id_token::IdClaims;
pub use link::{Identity, login_from_claim};
pub use provider::Provider;

/// Why a sign-in failed. [`SignInError::code`] is what the browser is sent back with
/// (`/sign-in?error=<code>`), for the sign-in page to explain:
///
/// - `oidc_disabled`: OIDC sign-in is not configured on this instance.
/// - `state_mismatch`: the callback's `state` is unknown, expired, already used, or was made for
///   another browser (start again from the sign-in page).
/// - `provider_error`: the provider answered with an error (for example the user cancelled).
/// - `provider_unavailable`: the provider could not be reached or answered nonsense.
/// - `code_rejected`: the provider refused to exchange the authorization code (expired, already
///   used, or not issued for this sign-in).
/// - `id_token_invalid`: the ID token failed verification (signature, issuer, audience, expiry,
///   nonce).
/// - `login_missing`: neither the ID token nor userinfo carry a usable login claim.
/// - `signup_closed`: no user is linked to this identity and sign-up is off.
/// - `login_taken`: a first sign-in whose login already belongs to another (unlinked) user.
/// - `internal`: the database or Redis failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("OIDC sign-in is not configured")]
    Disabled,
    #[error("unknown, used or foreign sign-in state")]
    StateMismatch,
    #[error("the provider answered with an error: {0}")]
    ProviderError(String),
    #[error("the provider is unavailable: {0}")]
    ProviderUnavailable(String),
    #[error("the provider refused the authorization code: {0}")]
    CodeRejected(String),
    #[error("invalid ID token: {0}")]
    IdTokenInvalid(#[from] id_token::IdTokenError),
    #[error("the provider gave no usable `{0}` claim")]
    LoginMissing(String),
    #[error("no user is linked to this identity and sign-up is closed")]
    SignupClosed,
    #[error("the login `{0}` belongs to another user")]
    LoginTaken(String),
    #[error("{0}")]
    Db(#[from] sqlx::Error),
    #[error("Redis: {0}")]
    Kv(#[from] redis::RedisError),
}

impl SignInError {
    pub fn code(&self) -> &'static str {
        match self {
            SignInError::Disabled => "oidc_disabled",
            SignInError::StateMismatch => "state_mismatch",
            SignInError::ProviderError(_) => "provider_error",
            SignInError::ProviderUnavailable(_) => "provider_unavailable",
            SignInError::CodeRejected(_) => "code_rejected",
            SignInError::IdTokenInvalid(_) => "id_token_invalid",
            SignInError::LoginMissing(_) => "login_missing",
            SignInError::SignupClosed => "signup_closed",
            SignInError::LoginTaken(_) => "login_taken",
            SignInError::Db(_) | SignInError::Kv(_) => "internal",
        }
    }
}
