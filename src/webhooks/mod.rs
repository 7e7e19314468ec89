//! GitHub webhook deliveries: signature checked over the raw body before anything is parsed,
//! de-duplicated by delivery id and by a hash of the signed body (so a replay under a new id
//! is caught), then turned into quick database changes and jobs, so GitHub
//! gets its answer in milliseconds. Also the other way GitHub commits arrive: the head of a
//! repository's default branch when it is added ([`Initialize`]).

mod events;
mod initialize;

pub use events::{Outcome, handle};
pub use initialize::{INITIALIZE_JOB, Initialize, InitializeJob, enqueue_initialize};

use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::github::{SignatureError, verify_signature};
use crate::kv::Db;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("GitHub mode is not configured on this instance")]
    NotConfigured,
    #[error("{0}")]
    Signature(SignatureError),
    #[error("the {0} header is required")]
    MissingHeader(&'static str),
    #[error("the payload is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("webhook processing is temporarily unavailable: {0}")]
    Unavailable(String),
}

/// How long a delivery id is remembered (GitHub redelivers within days, not weeks).
const DELIVERY_TTL_SECONDS: u64 = 2 * 24 * 3600;

/// Claims a delivery by id and by body hash: 1 when neither was seen, else 0 and nothing set.
const CLAIM_DELIVERY: &str = r#"
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('SET', KEYS[1], 'processing', 'EX', ARGV[1])
redis.call('SET', KEYS[2], 'processing', 'EX', ARGV[1])
return 1
"#;

/// One delivery, as GitHub sends it.
pub struct Delivery<'a> {
    pub signature: Option<&'a str>,
    pub event: Option<&'a str>,
    pub delivery_id: Option<&'a str>,
    pub body: &'a [u8],
}

/// Verifies, de-duplicates and dispatches a delivery.
pub async fn receive(app: &App, delivery: Delivery<'_>) -> Result<Outcome, WebhookError> {
    let github = app.github.as_ref().ok_or(WebhookError::NotConfigured)?;
    let _ = github;
    verify_signature(
        app.config.github.webhook_secret_key.as_bytes(),
        delivery.body,
        delivery.signature,
    )
    .map_err(WebhookError::Signature)?;
    let event = delivery
        .event
        .ok_or(WebhookError::MissingHeader("X-GitHub-Event"))?;
    let delivery_id = delivery
        .delivery_id
        .ok_or(WebhookError::MissingHeader("X-GitHub-Delivery"))?;
    let payload: serde_json::Value = serde_json::from_slice(delivery.body)
        .map_err(|e| WebhookError::InvalidJson(e.to_string()))?;
    // The delivery id is not signed: a captured delivery re-sent under a new id must be caught
    // by what is signed, the body (GitHub's own redeliveries keep both).
    let body_hash = hex::encode(Sha256::digest(delivery.body));
    let keys = [
        app.kv.key(&format!("github:delivery:{delivery_id}")),
        app.kv.key(&format!("github:delivery-body:{body_hash}")),
    ];
    let mut conn = app.kv.conn(Db::Primary);
    let unavailable = |e: redis::RedisError| WebhookError::Unavailable(e.to_string());
    // Both claimed at once with their expiry, or neither: a replay never half-claims.
    let first: bool = redis::Script::new(CLAIM_DELIVERY)
        .key(&keys[0])
        .key(&keys[1])
        .arg(DELIVERY_TTL_SECONDS)
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)?;
    if !first {
        return Ok(Outcome::Duplicate);
    }
    match handle(app, event, &payload).await {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            // Let GitHub's redelivery (or a manual one) try again.
            let _: Result<(), _> = conn.del(keys.to_vec()).await;
            Err(WebhookError::Unavailable(e.to_string()))
        }
    }
}
