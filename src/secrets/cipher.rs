//! AES-256-GCM with a random 96-bit nonce per value. The key id (the first 8 bytes of the
//! key's SHA-256, hex) is stored beside each value so a rotation can tell what is left to
//! re-encrypt and a wrong key is reported as such rather than as corrupt data.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use sha2::{Digest, Sha256};

use crate::config::SecurityConfig;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no secret key: set security.cryptographic_key or create {path} (64 hex characters)")]
    Missing { path: String },
    #[error("secret key {source_name}: {reason}")]
    Invalid { source_name: String, reason: String },
    #[error("value sealed with key {found}, but the configured key is {expected}")]
    WrongKey { found: String, expected: String },
    #[error("value does not decrypt: it was altered or its key is wrong")]
    Corrupt,
}

#[derive(Clone)]
pub struct Cipher {
    cipher: Aes256Gcm,
    key_id: String,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cipher(key {})", self.key_id)
    }
}

impl Cipher {
    /// The configured key: inline, else read from `cryptographic_key_file`.
    pub fn from_config(security: &SecurityConfig) -> Result<Cipher, KeyError> {
        if !security.cryptographic_key.is_empty() {
            return Cipher::from_hex(&security.cryptographic_key, "security.cryptographic_key");
        }
        let path = &security.cryptographic_key_file;
        match std::fs::read_to_string(path) {
            Ok(text) => Cipher::from_hex(text.trim(), &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(KeyError::Missing {
                path: path.display().to_string(),
            }),
            Err(e) => Err(KeyError::Invalid {
                source_name: path.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }

    pub fn from_hex(hex_key: &str, source_name: &str) -> Result<Cipher, KeyError> {
        let invalid = |reason: &str| KeyError::Invalid {
            source_name: source_name.to_string(),
            reason: reason.to_string(),
        };
        let bytes = hex::decode(hex_key.trim()).map_err(|_| invalid("not hexadecimal"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| invalid("must be 64 hex characters (256 bits)"))?;
        Ok(Cipher::from_bytes(&key))
    }

    pub fn from_bytes(key: &[u8; 32]) -> Cipher {
        let key_id = hex::encode(&Sha256::digest(key)[..8]);
        Cipher {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)),
            key_id,
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Seals `plaintext`; `context` (e.g. the secret's scope and name) is authenticated too, so
    /// a sealed value copied onto another row does not decrypt there.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> (Vec<u8>, [u8; 12]) {
        let nonce: [u8; 12] = rand::random();
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("AES-GCM encryption of an in-memory value cannot fail");
        (ciphertext, nonce)
    }

    pub fn open(
        &self,
        ciphertext: &[u8],
        nonce: &[u8],
        key_id: &str,
        context: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        if key_id != self.key_id {
            return Err(KeyError::WrongKey {
                found: key_id.to_string(),
                expected: self.key_id.clone(),
            });
        }
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| KeyError::Corrupt)?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| KeyError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let c = Cipher::from_bytes(&[7u8; 32]);
        let (ct, nonce) = c.seal(b"hunter2", b"repository:1:TOKEN");
        assert!(!ct.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            c.open(&ct, &nonce, c.key_id(), b"repository:1:TOKEN")
                .unwrap(),
            b"hunter2"
        );
        assert!(matches!(
            c.open(&ct, &nonce, c.key_id(), b"repository:2:TOKEN"),
            Err(KeyError::Corrupt)
        ));
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(
            c.open(&bad, &nonce, c.key_id(), b"repository:1:TOKEN")
                .is_err()
        );
        let other = Cipher::from_bytes(&[8u8; 32]);
        assert!(matches!(
            other.open(&ct, &nonce, c.key_id(), b"repository:1:TOKEN"),
            Err(KeyError::WrongKey { .. })
        ));
    }

    #[test]
    fn bad_keys_are_named() {
        let e = Cipher::from_hex("abcd", "the file")
            .unwrap_err()
            .to_string();
        assert!(e.contains("the file") && e.contains("64 hex"), "{e}");
        assert!(Cipher::from_hex(&"zz".repeat(32), "k").is_err());
        assert!(Cipher::from_hex(&"ab".repeat(32), "k").is_ok());
    }
}
