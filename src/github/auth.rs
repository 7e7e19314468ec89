//! GitHub App credentials: the app JWT (RS256, signed with the App's private key) and the
//! installation token minted with it.
//!
//! Signing costs about 30 ms, so the JWT is kept in memory for most of its 9-minute life. The
//! installation token (valid one hour) is shared by every host through Redis under
//! `github:installation_token`, and refreshed when less than 5 minutes remain. A refresh runs
//! under the Redis lock `locks:github:installation_token` so that hosts do not all mint at once;
//! a host that loses the race waits for the winner's token. If Redis is unreachable the host
//! mints for itself and keeps the token in memory: GitHub calls do not depend on Redis.
//!
//! The token is sealed (AES-256-GCM, `secrets::Cipher`) before it goes to Redis, so reading
//! Redis does not yield a token that acts as the App. The key is derived from the App's private
//! key, which every GitHub-mode host has by definition and which is worth more than the token
//! (it mints new ones): sealing adds no configuration a host could lack, and whoever can open
//! the value could have minted a token anyway.

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::GithubError;
use super::http::Http;
use super::types::AccessToken;
use crate::kv::{Db, Kv};
use crate::secrets::Cipher;

/// GitHub accepts app JWTs living at most 10 minutes; `iat` is backdated a minute for clock
/// drift, so `exp` is 9 minutes ahead.
const JWT_BACKDATE_SECONDS: i64 = 60;
const JWT_LIFETIME_SECONDS: i64 = 540;
/// A cached JWT is re-signed when less than this remains.
const JWT_MARGIN_SECONDS: i64 = 60;
/// An installation token is refreshed when less than this remains.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
const LOCK_TTL_MS: u64 = 10_000;
/// How long a host waits for another host's refresh before minting on its own.
const LOCK_WAIT: Duration = Duration::from_secs(12);
const LOCK_POLL: Duration = Duration::from_millis(100);

const RELEASE_LOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

use crate::config::decode_private_key;
pub use crate::config::parse_private_key;

/// The cipher sealing the cached installation token: its key is SHA-256 over a purpose label
/// and the App's private key (see the module documentation for why that key).
pub(crate) fn token_cache_cipher(base64_pem: &str) -> Result<Cipher, String> {
    use sha2::{Digest, Sha256};
    let pem = decode_private_key(base64_pem)?;
    let mut hasher = Sha256::new();
    hasher.update(b"cocov github installation token cache v1\0");
    hasher.update(&pem);
    Ok(Cipher::from_bytes(&hasher.finalize().into()))
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AppClaims {
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

/// The App's identity: signs (and caches) app JWTs.
pub(crate) struct AppAuth {
    app_id: String,
    key: EncodingKey,
    jwt: Mutex<Option<(String, i64)>>,
}

impl AppAuth {
    pub fn new(app_id: &str, key: EncodingKey) -> AppAuth {
        AppAuth {
            app_id: app_id.trim().to_string(),
            key,
            jwt: Mutex::new(None),
        }
    }

    /// A JWT valid for at least another minute.
    pub fn jwt(&self) -> Result<String, GithubError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut cached = self.jwt.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((jwt, exp)) = cached.as_ref()
            && exp - now > JWT_MARGIN_SECONDS
        {
            return Ok(jwt.clone());
        }
        let claims = AppClaims {
            iat: now - JWT_BACKDATE_SECONDS,
            exp: now + JWT_LIFETIME_SECONDS,
            iss: self.app_id.clone(),
        };
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| GithubError::BadConfig(format!("cannot sign the app JWT: {e}")))?;
        *cached = Some((jwt.clone(), claims.exp));
        Ok(jwt)
    }

    /// Drops the cached JWT (GitHub refused it: clock jump, key rotated).
    pub fn forget_jwt(&self) {
        *self.jwt.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// What is stored in Redis and in memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedToken {
    token: String,
    /// Unix seconds.
    expires_at: i64,
}

impl CachedToken {
    fn remaining(&self) -> Duration {
        let left = self.expires_at - OffsetDateTime::now_utc().unix_timestamp();
        Duration::from_secs(u64::try_from(left).unwrap_or(0))
    }

    fn is_fresh(&self) -> bool {
        self.remaining() > TOKEN_REFRESH_MARGIN
    }
}

/// What Redis holds: the sealed `CachedToken` JSON.
#[derive(Debug, Serialize, Deserialize)]
struct SealedToken {
    key_id: String,
    nonce: String,
    ciphertext: String,
}

/// The installation token cache, in memory and in Redis (sealed).
pub(crate) struct InstallationTokens {
    kv: Kv,
    cipher: Cipher,
    installation_id: String,
    memory: Mutex<Option<CachedToken>>,
    /// One refresh at a time in this process; the Redis lock covers other hosts.
    refreshing: tokio::sync::Mutex<()>,
}

impl InstallationTokens {
    pub fn new(kv: Kv, cipher: Cipher, installation_id: &str) -> InstallationTokens {
        InstallationTokens {
            kv,
            cipher,
            installation_id: installation_id.trim().to_string(),
            memory: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn cache_key(&self) -> String {
        self.kv.key("github:installation_token")
    }

    fn lock_key(&self) -> String {
        self.kv.key("locks:github:installation_token")
    }

    fn remembered(&self) -> Option<CachedToken> {
        let cached = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        cached.as_ref().filter(|t| t.is_fresh()).cloned()
    }

    fn remember(&self, token: &CachedToken) {
        *self.memory.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
    }

    /// A token with more than 5 minutes left: memory, then Redis, then a new one from GitHub.
    pub async fn get(&self, app: &AppAuth, http: &Http) -> Result<String, GithubError> {
        if let Some(t) = self.remembered() {
            return Ok(t.token);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        if let Some(t) = self.remembered() {
            return Ok(t.token);
        }
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            match self.read_redis().await {
                Ok(Some(t)) if t.is_fresh() => {
                    self.remember(&t);
                    return Ok(t.token);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "Redis unavailable for the GitHub token cache; minting locally");
                    return self.mint_and_store(app, http, false).await;
                }
            }
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            match self.try_lock(&nonce).await {
                Ok(true) => {
                    // Another host may have stored a token between our read and our lock.
                    let result = match self.read_redis().await {
                        Ok(Some(t)) if t.is_fresh() => {
                            self.remember(&t);
                            Ok(t.token)
                        }
                        _ => self.mint_and_store(app, http, true).await,
                    };
                    self.release_lock(&nonce).await;
                    return result;
                }
                Ok(false) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(LOCK_POLL).await;
                }
                Ok(false) => {
                    tracing::warn!(
                        "waited too long for another host's GitHub token refresh; minting"
                    );
                    return self.mint_and_store(app, http, true).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Redis unavailable for the GitHub token lock; minting locally");
                    return self.mint_and_store(app, http, false).await;
                }
            }
        }
    }

    /// Forgets `token` after GitHub refused it (revoked, or the App was reinstalled).
    pub async fn forget(&self, token: &str) {
        {
            let mut cached = self.memory.lock().unwrap_or_else(|p| p.into_inner());
            if cached.as_ref().is_some_and(|t| t.token == token) {
                *cached = None;
            }
        }
        if let Ok(Some(stored)) = self.read_redis().await
            && stored.token == token
        {
            let mut conn = self.kv.conn(Db::Primary);
            let deleted: redis::RedisResult<usize> = conn.del(self.cache_key()).await;
            if let Err(e) = deleted {
                tracing::warn!(error = %e, "could not drop the refused GitHub token from Redis");
            }
        }
    }

    async fn mint_and_store(
        &self,
        app: &AppAuth,
        http: &Http,
        use_redis: bool,
    ) -> Result<String, GithubError> {
        let minted = self.mint(app, http).await?;
        let cached = CachedToken {
            token: minted.token,
            expires_at: minted.expires_at.unix_timestamp(),
        };
        self.remember(&cached);
        if use_redis && let Err(e) = self.write_redis(&cached).await {
            tracing::warn!(error = %e, "could not store the GitHub installation token in Redis");
        }
        Ok(cached.token)
    }

    /// `POST /app/installations/{id}/access_tokens` with the app JWT; a refused JWT is
    /// re-signed once (the cached one may predate a clock jump).
    async fn mint(&self, app: &AppAuth, http: &Http) -> Result<AccessToken, GithubError> {
        const OP: &str = "installation_token";
        let url = http.url(&[
            "app",
            "installations",
            &self.installation_id,
            "access_tokens",
        ]);
        let mut response = http
            .execute(OP, http::Method::POST, &url, Some(&app.jwt()?), None)
            .await?;
        if response.status == http::StatusCode::UNAUTHORIZED {
            app.forget_jwt();
            response = http
                .execute(OP, http::Method::POST, &url, Some(&app.jwt()?), None)
                .await?;
        }
        if !response.status.is_success() {
            return Err(response.into_error(OP));
        }
        let token: AccessToken = response.json(OP)?;
        tracing::debug!(expires_at = %token.expires_at, "minted a GitHub installation token");
        Ok(token)
    }

    /// Authenticated with the sealed value, so a value copied from another key or installation
    /// does not open.
    fn seal_context(&self) -> Vec<u8> {
        format!("github:installation_token:{}", self.installation_id).into_bytes()
    }

    async fn read_redis(&self) -> redis::RedisResult<Option<CachedToken>> {
        let mut conn = self.kv.conn(Db::Primary);
        let raw: Option<String> = conn.get(self.cache_key()).await?;
        // A value we cannot read (older format, another key) is treated as absent and
        // overwritten by the next refresh.
        Ok(raw.and_then(|r| self.open(&r)))
    }

    fn open(&self, raw: &str) -> Option<CachedToken> {
        let sealed: SealedToken = serde_json::from_str(raw).ok()?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let plain = self
            .cipher
            .open(
                &b64.decode(&sealed.ciphertext).ok()?,
                &b64.decode(&sealed.nonce).ok()?,
                &sealed.key_id,
                &self.seal_context(),
            )
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }

    fn seal(&self, token: &CachedToken) -> String {
        let plain = serde_json::to_vec(token).expect("a token serialises");
        let (ciphertext, nonce) = self.cipher.seal(&plain, &self.seal_context());
        let b64 = base64::engine::general_purpose::STANDARD;
        serde_json::to_string(&SealedToken {
            key_id: self.cipher.key_id().to_string(),
            nonce: b64.encode(nonce),
            ciphertext: b64.encode(ciphertext),
        })
        .expect("a sealed token serialises")
    }

    /// Stores the token until it stops being fresh, so Redis drops it by itself.
    async fn write_redis(&self, token: &CachedToken) -> redis::RedisResult<()> {
        let Some(useful) = token.remaining().checked_sub(TOKEN_REFRESH_MARGIN) else {
            return Ok(());
        };
        let ms = u64::try_from(useful.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return Ok(());
        }
        let value = self.seal(token);
        let mut conn = self.kv.conn(Db::Primary);
        conn.pset_ex(self.cache_key(), value, ms).await
    }

    async fn try_lock(&self, nonce: &str) -> redis::RedisResult<bool> {
        let mut conn = self.kv.conn(Db::Primary);
        let set: Option<String> = redis::cmd("SET")
            .arg(self.lock_key())
            .arg(nonce)
            .arg("NX")
            .arg("PX")
            .arg(LOCK_TTL_MS)
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    async fn release_lock(&self, nonce: &str) {
        let mut conn = self.kv.conn(Db::Primary);
        let released: redis::RedisResult<i64> = redis::Script::new(RELEASE_LOCK)
            .key(self.lock_key())
            .arg(nonce)
            .invoke_async(&mut conn)
            .await;
        if let Err(e) = released {
            // It expires by itself within LOCK_TTL_MS.
            tracing::warn!(error = %e, "could not release the GitHub token lock");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_errors_say_what_is_wrong() {
        let e = parse_private_key("-----BEGIN RSA PRIVATE KEY-----\nabc\n")
            .err()
            .unwrap();
        assert!(e.contains("base64 of it"), "{e}");
        let e = parse_private_key("not base64!").err().unwrap();
        assert!(e.contains("not valid base64"), "{e}");
        let b64 = base64::engine::general_purpose::STANDARD.encode("hello");
        let e = parse_private_key(&b64).err().unwrap();
        assert!(e.contains("PEM RSA private key"), "{e}");
        let b64 = base64::engine::general_purpose::STANDARD
            .encode("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n");
        let e = parse_private_key(&b64).err().unwrap();
        assert!(e.contains("not a usable RSA private key"), "{e}");
    }

    #[test]
    fn the_test_key_parses_as_pkcs1_pkcs8_and_wrapped_base64() {
        let pem = include_str!("../../tests/fixtures/github/app-key.pem");
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        assert!(parse_private_key(&b64).is_ok());
        // `base64` without -w0 wraps at 76 columns.
        let wrapped: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
            .collect();
        assert!(parse_private_key(&wrapped).is_ok());
        let pkcs8 = include_str!("../../tests/fixtures/github/app-key.pkcs8.pem");
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
        let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8);
        assert!(parse_private_key(&b64).is_ok());
    }
}
