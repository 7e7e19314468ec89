//! The configured provider: its discovery document and signing keys, fetched over HTTPS
//! (http only for loopback, checked at load) and cached, and the back-channel calls of the
//! flow (code exchange, userinfo).

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::SignInError;
use super::id_token::{self, IdClaims, IdTokenError};
use crate::config::OidcConfig;

/// The discovery document is fetched again after this long.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Keys are fetched again after this long, or when a token names an unknown key, but not more
/// often than [`KEYS_MIN_INTERVAL`], so tokens with made-up key ids cannot flood the provider.
const KEYS_TTL: Duration = Duration::from_secs(3600);
const KEYS_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Every call to the provider gives up after this long.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read from the provider.
const MAX_BODY: usize = 1024 * 1024;

/// What the flow needs from the discovery document.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: String,
}

#[derive(Default)]
struct Cache {
    metadata: Option<(Metadata, Instant)>,
    keys: Option<(JwkSet, Instant)>,
}

/// The token endpoint's answer.
#[derive(Debug, Deserialize)]
pub struct Tokens {
    pub id_token: String,
    pub access_token: Option<String>,
}

pub struct Provider {
    config: OidcConfig,
    secret: String,
    redirect_uri: String,
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

impl Provider {
    /// Reads the client secret (at start-up) and prepares the HTTP client; nothing is fetched
    /// yet, so the daemon starts while the provider is down.
    pub fn new(config: &OidcConfig, ui_base_url: &str) -> Result<Provider, String> {
        let secret = config.read_client_secret()?;
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            // Endpoints come from the discovery document; a redirect would leave them.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("OIDC HTTP client: {e}"))?;
        Ok(Provider {
            config: config.clone(),
            secret,
            redirect_uri: format!("{}/auth/oidc/callback", ui_base_url.trim_end_matches('/')),
            http,
            cache: Mutex::new(Cache::default()),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The discovery document, cached; its `issuer` must be the configured one exactly.
    pub async fn metadata(&self) -> Result<Metadata, SignInError> {
        let mut cache = self.cache.lock().await;
        if let Some((m, at)) = &cache.metadata
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer());
        let metadata: Metadata = serde_json::from_value(self.get_json(&url, None).await?)
            .map_err(|e| unavailable(format!("discovery document: {e}")))?;
        if metadata.issuer.trim_end_matches('/') != self.config.issuer() {
            return Err(unavailable(format!(
                "the discovery document names issuer {}, not {}",
                metadata.issuer,
                self.config.issuer()
            )));
        }
        cache.metadata = Some((metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    /// The provider's keys; fetched again when `refresh` (a token named an unknown key) and
    /// the last fetch is old enough, or when the cache expired.
    async fn keys(&self, refresh: bool) -> Result<JwkSet, SignInError> {
        let metadata = self.metadata().await?;
        let mut cache = self.cache.lock().await;
        if let Some((keys, at)) = &cache.keys {
            let fresh = at.elapsed() < KEYS_TTL;
            let may_refetch = at.elapsed() >= KEYS_MIN_INTERVAL;
            if fresh && !(refresh && may_refetch) {
                return Ok(keys.clone());
            }
        }
        let document = self.get_json(&metadata.jwks_uri, None).await?;
        // Keys of kinds this client does not know are skipped, not fatal for the others.
        let keys = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| unavailable("the JWKS has no `keys`".into()))?
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .collect();
        let set = JwkSet { keys };
        cache.keys = Some((set.clone(), Instant::now()));
        Ok(set)
    }

    /// Verifies an ID token from this provider for this client with the `nonce` of its flow.
    pub async fn verify_id_token(&self, token: &str, nonce: &str) -> Result<IdClaims, SignInError> {
        let issuer = self.metadata().await?.issuer;
        let expected = id_token::Expected {
            issuer: &issuer,
            client_id: &self.config.client_id,
            nonce,
        };
        match id_token::verify(token, &self.keys(false).await?, &expected) {
            Err(IdTokenError::UnknownKey) => {
                Ok(id_token::verify(token, &self.keys(true).await?, &expected)?)
            }
            other => Ok(other?),
        }
    }

    /// The authorization endpoint URL for one sign-in.
    pub async fn authorize_url(
        &self,
        state: &str,
        nonce: &str,
        challenge: &str,
    ) -> Result<String, SignInError> {
        let metadata = self.metadata().await?;
        let mut url = url::Url::parse(&metadata.authorization_endpoint)
            .map_err(|e| unavailable(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.config.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Exchanges the code (with the PKCE verifier and the client secret, HTTP Basic).
    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<Tokens, SignInError> {
        let metadata = self.metadata().await?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("code_verifier", verifier)
            .finish();
        let response = self
            .http
            .post(&metadata.token_endpoint)
            .basic_auth(
                form_encode(&self.config.client_id),
                Some(form_encode(&self.secret)),
            )
            // Form-encoded by hand: reqwest's `form` feature is not enabled in this tree.
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| unavailable(format!("token endpoint: {e}")))?;
        let status = response.status();
        let body = read_body(response).await?;
        if status.is_client_error() {
            let error: Value = serde_json::from_slice(&body).unwrap_or_default();
            return Err(SignInError::CodeRejected(
                error["error"].as_str().unwrap_or("refused").to_string(),
            ));
        }
        if !status.is_success() {
            return Err(unavailable(format!("token endpoint answered {status}")));
        }
        serde_json::from_slice(&body).map_err(|e| unavailable(format!("token answer: {e}")))
    }

    /// The userinfo claims for `access_token`, when the provider has that endpoint.
    pub async fn userinfo(
        &self,
        access_token: &str,
    ) -> Result<Option<Map<String, Value>>, SignInError> {
        let Some(endpoint) = self.metadata().await?.userinfo_endpoint else {
            return Ok(None);
        };
        match self.get_json(&endpoint, Some(access_token)).await? {
            Value::Object(claims) => Ok(Some(claims)),
            _ => Err(unavailable("userinfo is not an object".into())),
        }
    }

    async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<Value, SignInError> {
        let mut request = self.http.get(url).header("accept", "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| unavailable(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("{url} answered {}", response.status())));
        }
        let body = read_body(response).await?;
        serde_json::from_slice(&body).map_err(|e| unavailable(format!("{url}: {e}")))
    }
}

fn unavailable(message: String) -> SignInError {
    SignInError::ProviderUnavailable(message)
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before HTTP Basic.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, SignInError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| unavailable(format!("reading the answer: {e}")))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(unavailable("the answer is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
