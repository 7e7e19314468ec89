//! A dependency outage against the real daemon: with its private Redis killed, writes are
//! refused with 503 and `Retry-After` (not 500), nothing announced is lost, and `/readyz`
//! reports recovery on the first probe after Redis answers again.

use crate::common;

use std::time::Duration;

use common::origin::{Origin, register};
use common::private_redis::PrivateRedis;
use common::{TestApp, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn start_on(redis: &PrivateRedis) -> TestApp {
    let url = redis.url();
    TestApp::start_with(move |c| {
        c.redis.url = url;
        c.queue.retry_base_delay_ms = 20;
        c.queue.retry_max_delay_ms = 100;
    })
    .await
}

/// POST /v1/repositories/{name}/commits: status, `Retry-After`, body.
async fn announce(t: &TestApp, token: &str, sha: &str) -> (StatusCode, Option<String>, Value) {
    let resp = t
        .client
        .post(t.url("/v1/repositories/demo/commits"))
        .header("authorization", format!("token {token}"))
        .json(&json!({"sha": sha, "branch": "main"}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, resp.json().await.unwrap_or_default())
}

async fn ingest_status(t: &TestApp, sha: &str) -> Option<String> {
    sqlx::query_scalar("SELECT ingest_status FROM commits WHERE sha = $1::citext")
        .bind(sha)
        .fetch_optional(&t.app().db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_announcement_while_redis_is_down_gets_503_and_is_ingested_once_it_is_back() {
    let mut redis = PrivateRedis::start().await;
    let t = start_on(&redis).await;
    let origin = Origin::new();
    let sha = origin.commit(&[("README.md", "hello\n")], "first");
    let (_, token) = register(&t, "demo", &origin.url()).await;

    redis.stop();
    let (status, retry_after, body) = announce(&t, &token, &sha).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable.redis", "{body}");
    assert!(body["message"].is_string(), "{body}");
    let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!(seconds > 0);
    // The commit is recorded and waiting; the client's retry is what queues it again.
    assert_eq!(ingest_status(&t, &sha).await.as_deref(), Some("queued"));

    redis.resume().await;
    // The client retries as told; once the daemon's Redis connections are back the same
    // announcement is accepted (a repeat: new=false) and queues the ingestion again.
    let body = eventually(
        "the retried announcement is accepted",
        Duration::from_secs(30),
        || async {
            let (status, _, body) = announce(&t, &token, &sha).await;
            (status == StatusCode::ACCEPTED).then_some(body)
        },
    )
    .await;
    assert_eq!(body["new"], false, "{body}");
    eventually(
        "the commit is ingested",
        Duration::from_secs(60),
        || async { (ingest_status(&t, &sha).await.as_deref() == Some("completed")).then_some(()) },
    )
    .await;
    t.shutdown().await;
}

async fn ready(t: &TestApp) -> StatusCode {
    t.client
        .get(t.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_reports_redis_back_on_the_first_probe_after_it_answers() {
    let mut redis = PrivateRedis::start().await;
    let t = start_on(&redis).await;
    assert_eq!(ready(&t).await, StatusCode::OK);

    redis.stop();
    assert_eq!(ready(&t).await, StatusCode::SERVICE_UNAVAILABLE);
    // Long enough for every reconnection attempt made during the outage to have given up.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(ready(&t).await, StatusCode::SERVICE_UNAVAILABLE);

    redis.resume().await;
    assert_eq!(ready(&t).await, StatusCode::OK);
    t.shutdown().await;
}
