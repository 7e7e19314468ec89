//! The two legs of a sign-in. `begin` makes `state`, `nonce` and a PKCE verifier, keeps them in
//! Redis under the state's hash with the hash of a random browser secret (which the browser
//! gets in a short-lived cookie), and names the provider's authorization URL. `finish` takes
//! the pending sign-in out of Redis (GETDEL: a state works once), checks the browser secret,
//! exchanges the code, verifies the ID token and links the identity to a user.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;

use super::link::{self, Identity};
use super::{Provider, SignInError};
use crate::auth::tokens;
use crate::auth::users::User;
use crate::kv::{Db, Kv};

/// How long a started sign-in may take (the browser cookie lives as long).
pub const PENDING_LIFETIME: Duration = Duration::from_secs(600);

/// A started sign-in: where to send the browser, and the secret its cookie must hold.
pub struct Begun {
    pub authorize_url: String,
    pub browser_secret: String,
}

/// What came back to the callback.
pub struct Callback<'a> {
    pub code: Option<&'a str>,
    pub state: Option<&'a str>,
    pub error: Option<&'a str>,
    /// The value of the browser's sign-in cookie, if it sent one.
    pub browser_secret: Option<&'a str>,
}

/// A finished sign-in: the user, and the same-origin path to go to.
pub struct SignedIn {
    pub user: User,
    pub return_to: String,
}

#[derive(Serialize, Deserialize)]
struct Pending {
    nonce: String,
    verifier: String,
    /// SHA-256 of the browser secret.
    browser: String,
    return_to: String,
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn pending_key(kv: &Kv, state: &str) -> String {
    kv.key(&format!("auth:oidc:state:{}", tokens::hash(state)))
}

impl Provider {
    /// Starts a sign-in that will end at `return_to` (already checked by `safe_return_to`).
    pub async fn begin(&self, kv: &Kv, return_to: &str) -> Result<Begun, SignInError> {
        let (state, nonce, verifier, browser_secret) = (random(), random(), random(), random());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let authorize_url = self.authorize_url(&state, &nonce, &challenge).await?;
        let pending = Pending {
            nonce,
            verifier,
            browser: tokens::hash(&browser_secret),
            return_to: return_to.to_string(),
        };
        let mut c = kv.conn(Db::Primary);
        redis::cmd("SET")
            .arg(pending_key(kv, &state))
            .arg(serde_json::to_string(&pending).expect("serialisable"))
            .arg("EX")
            .arg(PENDING_LIFETIME.as_secs())
            .query_async::<()>(&mut c)
            .await?;
        Ok(Begun {
            authorize_url,
            browser_secret,
        })
    }

    /// Finishes a sign-in at the callback.
    pub async fn finish(
        &self,
        db: &PgPool,
        kv: &Kv,
        callback: Callback<'_>,
    ) -> Result<SignedIn, SignInError> {
        let state = callback
            .state
            .filter(|s| !s.is_empty())
            .ok_or(SignInError::StateMismatch)?;
        let mut c = kv.conn(Db::Primary);
        // Taken out whatever follows: a state is spent by its first use, good or bad.
        let stored: Option<String> = redis::cmd("GETDEL")
            .arg(pending_key(kv, state))
            .query_async(&mut c)
            .await?;
        let pending: Pending = stored
            .and_then(|s| serde_json::from_str(&s).ok())
            .ok_or(SignInError::StateMismatch)?;
        let browser = tokens::hash(callback.browser_secret.unwrap_or_default());
        if !bool::from(browser.as_bytes().ct_eq(pending.browser.as_bytes())) {
            return Err(SignInError::StateMismatch);
        }
        if let Some(error) = callback.error {
            return Err(SignInError::ProviderError(
                error.chars().take(100).collect(),
            ));
        }
        let code = callback
            .code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| SignInError::CodeRejected("no code".into()))?;
        let tokens = self.exchange(code, &pending.verifier).await?;
        let verified = self
            .verify_id_token(&tokens.id_token, &pending.nonce)
            .await?;
        let identity = self
            .identity(verified.subject, verified.claims, tokens.access_token)
            .await?;
        let user = link::sign_in(db, self.config(), &identity).await?;
        Ok(SignedIn {
            user,
            return_to: pending.return_to,
        })
    }

    /// The login and groups from the ID token, completed from userinfo when it lacks either.
    async fn identity(
        &self,
        subject: String,
        mut claims: Map<String, Value>,
        access_token: Option<String>,
    ) -> Result<Identity, SignInError> {
        let config = self.config();
        let wanted = [&config.login_claim, &config.groups_claim];
        if let Some(token) =
            access_token.filter(|_| wanted.iter().any(|c| !claims.contains_key(*c)))
            && let Some(info) = self.userinfo(&token).await?
        {
            // Userinfo about someone else is not about this sign-in (OIDC Core §5.3.2).
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(SignInError::ProviderUnavailable(
                    "userinfo is about another subject".into(),
                ));
            }
            for claim in wanted {
                if let (false, Some(value)) = (claims.contains_key(claim), info.get(claim)) {
                    claims.insert(claim.clone(), value.clone());
                }
            }
        }
        let login = claims
            .get(&config.login_claim)
            .and_then(Value::as_str)
            .and_then(link::login_from_claim)
            .ok_or_else(|| SignInError::LoginMissing(config.login_claim.clone()))?;
        Ok(Identity {
            issuer: config.issuer().to_string(),
            subject,
            login,
            groups: link::groups_from_claim(claims.get(&config.groups_claim)),
        })
    }
}
