//! ID-token verification (OpenID Connect Core §3.1.3.7): the signature against the provider's
//! published keys with the one algorithm the chosen key allows (so never `none`, and never an
//! HMAC keyed with a public key), then `iss`, `aud` (and `azp`), `exp`/`iat` with a small leeway,
//! and the flow's `nonce`.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Clock skew tolerated between the provider and this host.
const LEEWAY_SECONDS: u64 = 60;

/// What the token must say.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
}

/// A verified token's subject and every claim it carries.
#[derive(Debug, Clone)]
pub struct IdClaims {
    pub subject: String,
    pub claims: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("the token names a key the provider does not publish")]
    UnknownKey,
    #[error("algorithm {0:?} is not the one its key allows")]
    WrongAlgorithm(Algorithm),
    #[error("the key cannot verify signatures")]
    UnusableKey,
    #[error("{0}")]
    Rejected(String),
    #[error("the nonce is not this sign-in's")]
    NonceMismatch,
    #[error("`azp` is not this client")]
    WrongAuthorizedParty,
}

/// Verifies `token` against `keys`; `UnknownKey` tells the caller to fetch the keys again.
pub fn verify(
    token: &str,
    keys: &JwkSet,
    expected: &Expected<'_>,
) -> Result<IdClaims, IdTokenError> {
    // The header's `alg` must parse as a signature algorithm: `none` does not.
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| IdTokenError::Malformed(e.to_string()))?;
    let key = match &header.kid {
        Some(kid) => keys.find(kid).ok_or(IdTokenError::UnknownKey)?,
        // Without a key id, only an unambiguous single signing key will do.
        None => match keys
            .keys
            .iter()
            .filter(|k| is_signing_key(k))
            .collect::<Vec<_>>()[..]
        {
            [only] => only,
            _ => return Err(IdTokenError::UnknownKey),
        },
    };
    if !is_signing_key(key) {
        return Err(IdTokenError::UnusableKey);
    }
    if !allowed_algorithms(key).contains(&header.alg) {
        return Err(IdTokenError::WrongAlgorithm(header.alg));
    }
    let decoding_key = DecodingKey::from_jwk(key).map_err(|_| IdTokenError::UnusableKey)?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = LEEWAY_SECONDS;
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(&[expected.client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &decoding_key, &validation)
        .map_err(|e| IdTokenError::Rejected(e.to_string()))?
        .claims;
    check_claims(claims, expected)
}

/// The checks `jsonwebtoken` does not make: `iat` not in the future, `azp`, `nonce`, `sub`.
fn check_claims(
    claims: Map<String, Value>,
    expected: &Expected<'_>,
) -> Result<IdClaims, IdTokenError> {
    let now = jsonwebtoken::get_current_timestamp();
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    if iat > now + LEEWAY_SECONDS {
        return Err(IdTokenError::Rejected("issued in the future".into()));
    }
    let several_audiences = claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1);
    match claims.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != expected.client_id => return Err(IdTokenError::WrongAuthorizedParty),
        None if several_audiences => return Err(IdTokenError::WrongAuthorizedParty),
        _ => {}
    }
    let nonce = claims
        .get("nonce")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if nonce.is_empty()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            nonce.as_bytes(),
            expected.nonce.as_bytes(),
        ))
    {
        return Err(IdTokenError::NonceMismatch);
    }
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| IdTokenError::Rejected("no usable `sub`".into()))?
        .to_string();
    Ok(IdClaims { subject, claims })
}

fn is_signing_key(key: &Jwk) -> bool {
    matches!(
        key.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    )
}

/// The algorithms a published key may verify: the one its `alg` names, or else the ones its
/// type implies. Symmetric keys never: a provider's published keys are public.
fn allowed_algorithms(key: &Jwk) -> Vec<Algorithm> {
    use Algorithm::*;
    let by_type = match &key.algorithm {
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![ES256],
            EllipticCurve::P384 => vec![ES384],
            _ => vec![],
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => vec![EdDSA],
        _ => vec![],
    };
    match key
        .common
        .key_algorithm
        .map(|a| a.to_string().parse::<Algorithm>())
    {
        Some(Ok(named)) if by_type.contains(&named) => vec![named],
        Some(_) => vec![],
        None => by_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://id.example",
            client_id: "cocov",
            nonce: "n-1",
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let now = jsonwebtoken::get_current_timestamp();
        let mut base = serde_json::json!({"sub": "s", "iat": now, "nonce": "n-1", "aud": "cocov"});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base.as_object().unwrap().clone()
    }

    #[test]
    fn nonce_azp_and_iat_are_checked() {
        assert!(check_claims(claims(serde_json::json!({})), &expected()).is_ok());
        let wrong_nonce = check_claims(claims(serde_json::json!({"nonce": "n-2"})), &expected());
        assert!(matches!(wrong_nonce, Err(IdTokenError::NonceMismatch)));
        let no_nonce = check_claims(claims(serde_json::json!({"nonce": ""})), &expected());
        assert!(matches!(no_nonce, Err(IdTokenError::NonceMismatch)));
        let shared = check_claims(
            claims(serde_json::json!({"aud": ["cocov", "other"]})),
            &expected(),
        );
        assert!(matches!(shared, Err(IdTokenError::WrongAuthorizedParty)));
        let other_azp = check_claims(claims(serde_json::json!({"azp": "other"})), &expected());
        assert!(matches!(other_azp, Err(IdTokenError::WrongAuthorizedParty)));
        let future = jsonwebtoken::get_current_timestamp() + 3600;
        let early = check_claims(claims(serde_json::json!({"iat": future})), &expected());
        assert!(matches!(early, Err(IdTokenError::Rejected(_))));
    }

    #[test]
    fn a_key_allows_only_its_algorithm_and_never_hmac() {
        let rsa: Jwk = serde_json::from_value(serde_json::json!(
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "RS256", "kid": "a"}
        ))
        .unwrap();
        assert_eq!(allowed_algorithms(&rsa), vec![Algorithm::RS256]);
        let hmac: Jwk = serde_json::from_value(serde_json::json!(
            {"kty": "oct", "k": "c2VjcmV0", "kid": "h"}
        ))
        .unwrap();
        assert!(allowed_algorithms(&hmac).is_empty());
        let lying: Jwk = serde_json::from_value(serde_json::json!(
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "HS256", "kid": "b"}
        ))
        .unwrap();
        assert!(allowed_algorithms(&lying).is_empty());
    }
}
