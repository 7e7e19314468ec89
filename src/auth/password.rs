//! Passwords of local accounts: Argon2id with the crate's defaults (19 MiB, 2 passes), stored as
//! PHC strings. Hashing costs tens of milliseconds of CPU, so it runs on the blocking pool.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Shortest password accepted, in characters.
pub const MIN_LENGTH: usize = 10;
/// Longest password accepted, in bytes: hashing is linear in it, so bound the work a request buys.
pub const MAX_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must have at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("the password must have at most {MAX_BYTES} bytes")]
    TooLong,
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// Whether a new password is acceptable.
pub fn check_new(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_BYTES {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// The PHC string (`$argon2id$v=19$…`) of a new password, with a fresh random salt.
pub async fn hash(password: &str) -> Result<String, PasswordError> {
    check_new(password)?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))?
}

fn hash_now(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches `stored`. Without a stored hash (no such user, or a user without
/// a password) the same work is done against a throw-away hash, so the answer's timing does not
/// tell which logins exist.
pub async fn verify(password: &str, stored: Option<String>) -> bool {
    if password.len() > MAX_BYTES {
        return false;
    }
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let (phc, real) = match stored {
            Some(phc) => (phc, true),
            None => (decoy().to_owned(), false),
        };
        let matched = Argon2::default()
            .verify_password(password.as_bytes(), phc.as_str())
            .is_ok();
        matched && real
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password with the same parameters as real ones, made once.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random = crate::auth::tokens::generate(crate::auth::tokens::TokenKind::Login);
        hash_now(&random).expect("hashing a random password")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_reject() {
        let phc = hash("correct horse battery").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(verify("correct horse battery", Some(phc.clone())).await);
        assert!(!verify("correct horse batterY", Some(phc.clone())).await);
        assert!(!verify("correct horse battery", None).await);
        assert!(!verify("anything", Some("not a phc string".into())).await);
    }

    #[test]
    fn new_passwords_are_bounded() {
        assert_eq!(check_new("short"), Err(PasswordError::TooShort));
        assert_eq!(
            check_new(&"x".repeat(MAX_BYTES + 1)),
            Err(PasswordError::TooLong)
        );
        assert!(check_new("long enough pass").is_ok());
    }
}
