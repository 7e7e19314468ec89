//! Webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
//! Verified over the raw bytes, before any parsing, with a constant-time comparison.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "sha256=";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not `sha256=` followed by 64 hex digits")]
    Malformed,
    #[error("the X-Hub-Signature-256 signature does not match the body")]
    Mismatch,
    /// An empty secret would let anyone sign; never treat that as verified.
    #[error("no webhook secret is configured")]
    NoSecret,
}

/// Checks `header` (the `X-Hub-Signature-256` value) against the HMAC of `body` under `secret`.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let hex_part = header
        .strip_prefix(PREFIX)
        .ok_or(SignatureError::Malformed)?;
    if hex_part.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let expected = hex::decode(hex_part).map_err(|_| SignatureError::Malformed)?;
    mac(secret, body)
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The header value GitHub would send for `body` (for tests and tools).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!(
        "{PREFIX}{}",
        hex::encode(mac(secret, body).finalize().into_bytes())
    )
}

fn mac(secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's documented example ("Validating webhook deliveries").
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const EXPECTED: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_documented_example() {
        assert_eq!(sign(SECRET, BODY), EXPECTED);
        assert_eq!(verify_signature(SECRET, BODY, Some(EXPECTED)), Ok(()));
        // Upper-case hex is still the same signature.
        let upper = format!("sha256={}", EXPECTED[7..].to_uppercase());
        assert_eq!(verify_signature(SECRET, BODY, Some(&upper)), Ok(()));
    }

    #[test]
    fn wrong_body_secret_or_signature_is_a_mismatch() {
        assert_eq!(
            verify_signature(SECRET, b"Hello, World?", Some(EXPECTED)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"another secret", BODY, Some(EXPECTED)),
            Err(SignatureError::Mismatch)
        );
        let flipped = format!("{}0", &EXPECTED[..EXPECTED.len() - 1]);
        assert_eq!(
            verify_signature(SECRET, BODY, Some(&flipped)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_told_apart() {
        assert_eq!(
            verify_signature(SECRET, BODY, None),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=",
            "sha256=757107ea",
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17ff",
        ] {
            assert_eq!(
                verify_signature(SECRET, BODY, Some(bad)),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_empty_secret_verifies_nothing() {
        let signed = sign(b"", BODY);
        assert_eq!(
            verify_signature(b"", BODY, Some(&signed)),
            Err(SignatureError::NoSecret)
        );
    }
}
