//! Token strings: a kind prefix followed by 64 hex characters (256 random bits). Only the
//! SHA-256 of the whole string is ever stored; comparisons are constant-time.

use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The token kinds and their prefixes, as in the original Cocov.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `coa_`: a login session.
    Login,
    /// `cop_`: a personal access token.
    Personal,
    /// `cos_`: a service token (workers, integrations).
    Service,
    /// `crt_`: a repository's coverage upload token.
    RepositoryUpload,
    /// `csa_`: a single-use secret access authorisation.
    SecretAccess,
    /// `csl_`: a one-time sign-in link (kept in Redis, never a bearer token).
    SignInLink,
}

impl TokenKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            TokenKind::Login => "coa_",
            TokenKind::Personal => "cop_",
            TokenKind::Service => "cos_",
            TokenKind::RepositoryUpload => "crt_",
            TokenKind::SecretAccess => "csa_",
            TokenKind::SignInLink => "csl_",
        }
    }

    /// The kind named by a token's prefix, if it has a known one.
    pub fn of(token: &str) -> Option<TokenKind> {
        [
            TokenKind::Login,
            TokenKind::Personal,
            TokenKind::Service,
            TokenKind::RepositoryUpload,
            TokenKind::SecretAccess,
            TokenKind::SignInLink,
        ]
        .into_iter()
        .find(|k| token.starts_with(k.prefix()))
    }
}

/// Bytes of randomness per token: 256 bits, well above the 160-bit floor.
const TOKEN_BYTES: usize = 32;

/// A fresh token of the given kind.
pub fn generate(kind: TokenKind) -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{}{}", kind.prefix(), hex::encode(bytes))
}

/// The stored form of a token: lowercase hex SHA-256 of the full string.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Lowercase hex SHA-256 of bytes (archives, bodies).
pub fn hash_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether a presented token matches a stored hash, in constant time.
pub fn matches(token: &str, stored_hash: &str) -> bool {
    hash(token).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Whether a string has the shape of a token of `kind` (prefix + 64 lowercase hex).
pub fn well_formed(token: &str, kind: TokenKind) -> bool {
    token.strip_prefix(kind.prefix()).is_some_and(|rest| {
        rest.len() == 2 * TOKEN_BYTES
            && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_prefix_and_entropy() {
        let a = generate(TokenKind::Service);
        let b = generate(TokenKind::Service);
        assert_ne!(a, b);
        assert!(well_formed(&a, TokenKind::Service), "{a}");
        assert_eq!(TokenKind::of(&a), Some(TokenKind::Service));
        assert_eq!(
            TokenKind::of(&generate(TokenKind::RepositoryUpload)),
            Some(TokenKind::RepositoryUpload)
        );
    }

    #[test]
    fn hash_is_sha256_hex_and_matches() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let t = generate(TokenKind::Personal);
        assert!(matches(&t, &hash(&t)));
        assert!(!matches(&t, &hash("cop_other")));
    }

    #[test]
    fn malformed_tokens_are_recognised() {
        assert!(!well_formed("cos_xyz", TokenKind::Service));
        assert!(!well_formed(
            &generate(TokenKind::Personal),
            TokenKind::Service
        ));
    }
}
