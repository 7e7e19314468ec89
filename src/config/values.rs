//! Parsers for configuration values that other modules act on: kept here, at the bottom of the
//! module graph, so that validating a configuration never reaches up into the modules that use
//! it (badges, git, github), and those modules read one parsed form of each value.

use base64::Engine;
use ipnet::IpNet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// Transports an administrator may allow in `git.allowed_protocols`, by git's own names for
/// `protocol.<name>.allow`.
pub const KNOWN_PROTOCOLS: [&str; 5] = ["https", "ssh", "file", "http", "git"];

/// `badger.trusted_proxies`: addresses (`10.0.0.1`) or networks (`10.0.0.0/8`).
pub fn parse_trusted_proxies(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|entry| {
            let entry = entry.trim();
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{entry}` is not an IP address or CIDR network"))
        })
        .collect()
}

/// Decodes `github.app_private_key` (base64 of a PEM RSA private key, PKCS#1 or PKCS#8) and
/// signs once with it, so a wrong key is reported at start with a message naming what is wrong.
pub fn parse_private_key(base64_pem: &str) -> Result<EncodingKey, String> {
    let pem = decode_private_key(base64_pem)?;
    let text = String::from_utf8_lossy(&pem);
    if !text.contains("-----BEGIN RSA PRIVATE KEY-----")
        && !text.contains("-----BEGIN PRIVATE KEY-----")
    {
        return Err(
            "does not decode to a PEM RSA private key (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)"
                .into(),
        );
    }
    let key = EncodingKey::from_rsa_pem(&pem)
        .map_err(|e| format!("is not a usable RSA private key ({e})"))?;
    let claims = serde_json::json!({"iat": 0, "exp": 1, "iss": "check"});
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key)
        .map_err(|e| format!("cannot sign with this RSA private key ({e})"))?;
    Ok(key)
}

/// The PEM text of `github.app_private_key` (base64, wrapped or not).
pub fn decode_private_key(base64_pem: &str) -> Result<Vec<u8>, String> {
    let compact: String = base64_pem
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if compact.starts_with("-----BEGIN") {
        return Err(
            "is a PEM file itself; give base64 of it (for example `base64 -w0 key.pem`)".into(),
        );
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| format!("is not valid base64 ({e})"))
}
