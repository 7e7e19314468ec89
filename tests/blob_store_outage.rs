//! The blob store going away is an outage, not a bug: requests that need it answer 503 with
//! `Retry-After` and the code `unavailable.blob_store` (they used to turn the S3 client's error
//! text into a 500), and the same request succeeds once the store is back. The store is a real
//! S3 server (s3s-fs) stopped and restarted on the same port over the same data.

use crate::common;

use cocov::config::StorageMode;
use common::TestApp;
use common::origin::{Origin, announce, register};
use common::s3_servers::{S3Server, unique_bucket};
use reqwest::StatusCode;
use serde_json::{Value, json};

const LCOV: &str = "TN:\nSF:src/a.c\nDA:1,1\nDA:2,0\nend_of_record\n";

async fn upload(t: &TestApp, token: &str, sha: &str) -> (StatusCode, Option<String>, Value) {
    let resp = t
        .client
        .post(t.url(&format!("/v1/reports/raw?commit_sha={sha}&format=lcov")))
        .header("authorization", format!("token {token}"))
        .body(LCOV)
        .send()
        .await
        .unwrap();
    answer(resp).await
}

async fn get(t: &TestApp, auth: &str, path: &str) -> (StatusCode, Option<String>, Value) {
    let resp = t
        .client
        .get(t.url(path))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    answer(resp).await
}

async fn answer(resp: reqwest::Response) -> (StatusCode, Option<String>, Value) {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, resp.json().await.unwrap_or_default())
}

fn assert_unavailable((status, retry_after, body): &(StatusCode, Option<String>, Value)) {
    assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable.blob_store", "{body}");
    let seconds: u32 = retry_after.as_deref().unwrap_or("").parse().unwrap();
    assert!(seconds >= 1, "Retry-After {seconds}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_source_views_answer_503_while_the_store_is_down_and_succeed_after() {
    let mut s3 = S3Server::s3s_fs().await;
    let bucket = unique_bucket();
    let store = s3.config(&bucket);
    let t = TestApp::start_with(|c| {
        c.storage.mode = StorageMode::S3;
        c.storage.s3 = store;
        // A stopped server refuses connections at once; the limit only bounds a hung one.
        c.storage.s3.timeout_seconds = 10;
    })
    .await;
    let origin = Origin::new();
    let (repository_id, token) = register(&t, "outage", &origin.url()).await;
    let sha = origin.commit(&[("src/a.c", "int a;\nint b;\n")], "one");
    let auth = format!("token {token}");
    let (status, body) = announce(&t, "outage", &auth, json!({"sha": sha, "branch": "main"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (state, error) = t.ingestion_outcome(repository_id, &sha).await;
    assert_eq!(state, "completed", "{error:?}");

    // With the store up: the upload is applied (its archive read from S3), the source shown.
    let (status, _, body) = upload(&t, &token, &sha).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reader = format!("bearer {}", t.user_token("reader", true).await);
    let files_path = format!("/v1/repositories/outage/commits/{sha}/coverage");
    let (status, _, files) = get(&t, &reader, &files_path).await;
    assert_eq!(status, StatusCode::OK, "{files}");
    let id = files["files"][0]["id"].as_i64().unwrap();
    let file_path = format!("{files_path}/file/{id}");
    let (status, _, view) = get(&t, &reader, &file_path).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["file"]["source_status"], "ok", "{view}");

    s3.stop();
    assert_unavailable(&upload(&t, &token, &sha).await);
    assert_unavailable(&get(&t, &reader, &file_path).await);
    // Reads that do not need the store still work.
    let (status, _, body) = get(&t, &reader, &files_path).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    s3.restart().await;
    let (status, _, body) = upload(&t, &token, &sha).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed", "{body}");
    let (status, _, view) = get(&t, &reader, &file_path).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["file"]["source_status"], "ok", "{view}");
    t.shutdown().await;
}
