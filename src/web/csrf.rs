//! The per-session form token: every state-changing form carries it in a hidden field
//! (`csrf_token`), and the handler compares it with the one derived from the request's session.
//!
//! Why a token on top of `auth::csrf` (Sec-Fetch-Site/Origin) and SameSite=Lax: defence in
//! depth for browsers or proxies that strip those headers. Derived, not stored: an HMAC of the
//! session token (which only the browser's HttpOnly cookie and our database hash know), so it
//! needs no table and ends with the session.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The hidden field's name.
pub const FIELD: &str = "csrf_token";

/// The form token of the session whose cookie token is `session_token`.
pub fn form_token(session_token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(session_token.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"cocov web form token v1");
    hex::encode(mac.finalize().into_bytes())
}

/// Whether a submitted token is the expected one (constant time).
pub fn matches(expected: &str, submitted: &str) -> bool {
    !expected.is_empty()
        && expected.len() == submitted.len()
        && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_per_session_and_checked_exactly() {
        let a = form_token("coa_one");
        assert_eq!(a, form_token("coa_one"));
        assert_ne!(a, form_token("coa_two"));
        assert!(matches(&a, &a));
        assert!(!matches(&a, &form_token("coa_two")));
        assert!(!matches(&a, ""));
        assert!(!matches("", ""));
    }
}
