//! Input PostgreSQL cannot store (the NUL character), sent through every kind of entry point of
//! the real daemon: a query parameter, a path segment, a JSON string, a header, a coverage report
//! path (raw and JSON uploads). Each is a 400 `{code, message}` naming the parameter, and
//! nothing is written.

use crate::common;

use common::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn admin(t: &TestApp) -> String {
    t.user_token("input-admin", true).await
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = request.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or_default())
}

fn assert_refused(status: StatusCode, body: &Value, code: &str, names: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(names), "{body}");
    assert!(message.contains("NUL"), "{body}");
}

async fn count(t: &TestApp, table: &str) -> i64 {
    // The table names are this file's constants.
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&t.app().db)
        .await
        .unwrap()
}

/// A standalone repository (nothing ever fetched) and its upload token.
async fn repository(t: &TestApp, admin: &str, name: &str) -> String {
    let (status, body) = send(
        t.client
            .post(t.url("/v1/repositories"))
            .header("authorization", format!("bearer {admin}"))
            .json(&json!({"name": name, "git_url": "file:///nonexistent/origin.git"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_query_parameter_is_a_400_naming_it() {
    let t = TestApp::start().await;
    let admin = admin(&t).await;
    repository(&t, &admin, "q").await;
    for (path, name) in [
        ("/v1/repositories?search_term=a%00b", "search_term"),
        ("/v1/repositories/q/commits?branch=%00", "branch"),
        ("/v1/repositories?page=1&per_page=2%00", "per_page"),
    ] {
        let (status, body) = send(
            t.client
                .get(t.url(path))
                .header("authorization", format!("bearer {admin}")),
        )
        .await;
        assert_refused(status, &body, "request.invalid_input", &format!("`{name}`"));
    }
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_path_segment_is_a_400() {
    let t = TestApp::start().await;
    let admin = admin(&t).await;
    repository(&t, &admin, "p").await;
    for path in [
        "/v1/repositories/p%00",
        "/v1/repositories/p/branches/main%00",
        "/v1/repositories/p/commits/%00",
        "/v1/secrets/x%00/grants",
    ] {
        let (status, body) = send(
            t.client
                .get(t.url(path))
                .header("authorization", format!("bearer {admin}")),
        )
        .await;
        assert_refused(status, &body, "request.invalid_input", "request path");
    }
    // The badge listener has the same guard.
    let (status, body) = send(t.client.get(format!("{}/p%00/coverage", t.badger_base))).await;
    assert_refused(status, &body, "request.invalid_input", "request path");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_any_json_string_is_a_400_and_nothing_is_written() {
    let t = TestApp::start().await;
    let admin = admin(&t).await;
    let repositories = count(&t, "repositories").await;
    let (status, body) = send(
        t.client
            .post(t.url("/v1/repositories"))
            .header("authorization", format!("bearer {admin}"))
            .json(&json!({"name": "j", "description": "a\u{0}b"})),
    )
    .await;
    assert_refused(status, &body, "request.invalid_input", "`description`");
    assert_eq!(count(&t, "repositories").await, repositories);
    // A lone surrogate cannot become a Rust string at all: the JSON parser refuses it.
    let (status, body) = send(
        t.client
            .post(t.url("/v1/repositories"))
            .header("authorization", format!("bearer {admin}"))
            .header("content-type", "application/json")
            .body(r#"{"name": "j", "description": "\ud800"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "request.invalid_json", "{body}");
    assert_eq!(count(&t, "repositories").await, repositories);

    let (status, body) = send(
        t.client
            .post(t.url("/v1/secrets"))
            .header("authorization", format!("bearer {admin}"))
            .json(&json!({"name": "S\u{0}", "data": "x"})),
    )
    .await;
    assert_refused(status, &body, "request.invalid_input", "`name`");
    assert_eq!(count(&t, "secrets").await, 0);

    let tokens = count(&t, "service_tokens").await;
    let (status, body) = send(
        t.client
            .post(t.url("/v1/admin/service_tokens"))
            .header("authorization", format!("bearer {admin}"))
            .json(&json!({"description": "\u{0}"})),
    )
    .await;
    assert_refused(status, &body, "request.invalid_input", "`description`");
    assert_eq!(count(&t, "service_tokens").await, tokens);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_coverage_report_path_is_a_400_and_nothing_is_held() {
    let t = TestApp::start().await;
    let admin = admin(&t).await;
    let token = repository(&t, &admin, "cov").await;
    let sha = "a".repeat(40);

    let (status, body) = send(
        t.client
            .post(t.url(&format!("/v1/reports/raw?commit_sha={sha}&format=lcov")))
            .header("authorization", format!("token {token}"))
            .body("SF:src/a\0.c\nDA:1,1\nend_of_record\n"),
    )
    .await;
    assert_refused(status, &body, "report.invalid_path", "src/a");

    let (status, body) = send(
        t.client
            .post(t.url("/v1/reports"))
            .header("authorization", format!("token {token}"))
            .json(&json!({"commit_sha": sha, "data": {"src/a\u{0}.c": "AQ=="}})),
    )
    .await;
    assert_refused(status, &body, "request.invalid_input", "`data.src/a");

    assert_eq!(count(&t, "coverage_uploads").await, 0);
    t.shutdown().await;
}

/// Header values cannot carry a NUL at all: the HTTP parser refuses the request before any
/// handler (here the webhook, which stores the delivery id) sees it.
#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_header_is_refused_before_any_handler() {
    let t = TestApp::start().await;
    let addr = t.url("").trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = b"POST /v1/github/events HTTP/1.1\r\nhost: x\r\nx-github-event: push\r\n\
        x-github-delivery: a\0b\r\ncontent-length: 2\r\n\r\n{}";
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    t.shutdown().await;
}
