//! Attacks on the listeners and the upload endpoints, run against the real daemon: slow and
//! silent clients, more connections than the cap, unauthenticated uploads with large declared
//! bodies, reports built to be expensive (too many Cobertura roots, too many lines, too slow),
//! a flood of early uploads, and forged forwarding headers at the badge listener.

use crate::common;

use std::time::{Duration, Instant};

use common::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection; how long that took, or None if it was still
/// open after `within`. Bytes the server sent first (an error answer) are ignored.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// Whatever the server answers within `within` (empty when it answered nothing).
async fn answer_within(stream: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn half_a_request_line_then_silence_is_disconnected_at_the_header_timeout() {
    // The idle watchdog is far away: only hyper's header timer can close these.
    let t = TestApp::start_with(|c| {
        c.server.header_read_timeout_seconds = 1;
        c.server.idle_timeout_seconds = 60;
    })
    .await;
    for base in [&t.base, &t.badger_base] {
        let mut stream = TcpStream::connect(addr(base)).await.unwrap();
        stream.write_all(b"GET /v1/pi").await.unwrap();
        let closed = closed_within(&mut stream, Duration::from_secs(5)).await;
        assert!(
            closed.is_some_and(|d| d < Duration::from_secs(4)),
            "{base}: a stalled request line kept its connection open ({closed:?})"
        );
        // Dripping header lines does not reset the timer either.
        let mut stream = TcpStream::connect(addr(base)).await.unwrap();
        let started = Instant::now();
        stream.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
        let mut closed = false;
        for i in 0..10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if stream
                .write_all(format!("X-Drip-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                closed = true;
                break;
            }
        }
        closed = closed
            || closed_within(&mut stream, Duration::from_millis(500))
                .await
                .is_some();
        assert!(
            closed && started.elapsed() < Duration::from_secs(4),
            "{base}: a client dripping headers was not cut off"
        );
    }
    // The listener still serves.
    let ok = t.client.get(t.url("/v1/ping")).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_connection_is_closed_at_the_idle_timeout() {
    // hyper's header timer does not run before the first byte: the watchdog must.
    let t = TestApp::start_with(|c| {
        c.server.header_read_timeout_seconds = 60;
        c.server.idle_timeout_seconds = 1;
    })
    .await;
    for base in [&t.base, &t.badger_base] {
        let mut silent = TcpStream::connect(addr(base)).await.unwrap();
        let closed = closed_within(&mut silent, Duration::from_secs(5)).await;
        assert!(
            closed.is_some_and(|d| d < Duration::from_secs(4)),
            "{base}: a connection that sent nothing stayed open ({closed:?})"
        );
    }
    // So is an HTTP/2 connection that opens (preface and settings) and then does nothing.
    let mut h2 = TcpStream::connect(addr(&t.base)).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let closed = closed_within(&mut h2, Duration::from_secs(5)).await;
    assert!(
        closed.is_some_and(|d| d < Duration::from_secs(4)),
        "an idle HTTP/2 connection stayed open ({closed:?})"
    );
    // An idle keep-alive connection after a request is closed too.
    let mut stream = TcpStream::connect(addr(&t.base)).await.unwrap();
    stream
        .write_all(b"GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = answer_within(&mut stream, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let closed = closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "an idle keep-alive connection stayed open"
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_above_the_cap_wait_until_one_ends() {
    let t = TestApp::start_with(|c| {
        c.server.max_connections = 2;
        c.server.header_read_timeout_seconds = 60;
        c.server.idle_timeout_seconds = 60;
    })
    .await;
    for base in [&t.base, &t.badger_base] {
        let request: &[u8] = if base == &t.base {
            b"GET /v1/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        } else {
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        };
        // Two clients hold every slot without sending anything.
        let first = TcpStream::connect(addr(base)).await.unwrap();
        let _second = TcpStream::connect(addr(base)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut third = TcpStream::connect(addr(base)).await.unwrap();
        third.write_all(request).await.unwrap();
        let early = answer_within(&mut third, Duration::from_millis(1500)).await;
        assert!(
            early.is_empty(),
            "{base}: a connection above the cap was served: {early}"
        );
        // One slot frees up: the waiting client is served.
        drop(first);
        let head = answer_within(&mut third, Duration::from_secs(5)).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{base}: {head}");
    }
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_without_a_valid_token_are_refused_before_the_body_is_read() {
    let t = TestApp::start().await;
    let sha = "a".repeat(40);
    for (path, token, refusal) in [
        (
            format!("/v1/reports/raw?commit_sha={sha}&format=lcov"),
            "token crt_bad",
            "401",
        ),
        ("/v1/reports".to_string(), "token crt_bad", "401"),
        ("/v1/reports".to_string(), "", "401"),
        (
            "/v1/repositories/anything/commits".to_string(),
            "Bearer not-a-token",
            "401",
        ),
        // Without GitHub mode no signature can be checked: refused before the body too.
        ("/v1/github/events".to_string(), "", "404"),
    ] {
        let mut stream = TcpStream::connect(addr(&t.base)).await.unwrap();
        let auth = if token.is_empty() {
            String::new()
        } else {
            format!("Authorization: {token}\r\n")
        };
        // 5 MB declared (under the body limit), a few bytes sent.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             X-GitHub-Event: push\r\nX-GitHub-Delivery: d-1\r\n\
             Content-Length: 5000000\r\n\r\n{{\"commit_sha\""
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = answer_within(&mut stream, Duration::from_secs(3)).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {refusal}")),
            "{path} with `{token}`: no {refusal} before the body ({answer:?})"
        );
    }
    t.shutdown().await;
}

/// A standalone repository (nothing ever fetched) and its upload token.
async fn repository(t: &TestApp, name: &str) -> String {
    let admin = t.user_token(&format!("admin-{name}"), true).await;
    let resp = t
        .client
        .post(t.url("/v1/repositories"))
        .header("authorization", format!("bearer {admin}"))
        .json(&json!({"name": name, "git_url": "file:///nonexistent/origin.git"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

async fn upload_raw(t: &TestApp, token: &str, sha: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let resp = t
        .client
        .post(t.url(&format!("/v1/reports/raw?commit_sha={sha}")))
        .header("authorization", format!("token {token}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or_default())
}

async fn held_uploads(t: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM coverage_uploads")
        .fetch_one(&t.app().db)
        .await
        .unwrap()
}

fn lcov(lines: usize) -> Vec<u8> {
    let mut out = String::from("SF:src/a.c\n");
    for i in 1..=lines {
        out.push_str(&format!("DA:{i},{}\n", i % 3));
    }
    out.push_str("end_of_record\n");
    out.into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cobertura_report_with_too_many_source_roots_is_refused() {
    let t = TestApp::start().await;
    let token = repository(&t, "roots").await;
    let report = |n: usize| {
        let sources: String = (0..n)
            .map(|i| format!("<source>/ci/root{i}</source>"))
            .collect();
        format!(
            "<?xml version=\"1.0\"?><coverage><sources>{sources}</sources><packages><package>\
             <classes><class filename=\"a.py\"><lines><line number=\"1\" hits=\"1\"/></lines>\
             </class></classes></package></packages></coverage>"
        )
        .into_bytes()
    };
    let (status, body) = upload_raw(&t, &token, &"b".repeat(40), report(65)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "report.invalid_report");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("more than 64 <source>"), "{message}");
    assert_eq!(held_uploads(&t).await, 0, "nothing is stored");
    // 64 roots are fine.
    let (status, body) = upload_raw(&t, &token, &"b".repeat(40), report(64)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn early_uploads_beyond_the_cap_are_refused() {
    let t = TestApp::start_with(|c| c.coverage.max_held_uploads_per_repository = 3).await;
    let token = repository(&t, "early").await;
    for i in 0..3 {
        let sha = format!("{i:040x}");
        let (status, body) = upload_raw(&t, &token, &sha, lcov(3)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let (status, body) = upload_raw(&t, &token, &"f".repeat(40), lcov(3)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "report.too_many_held");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("max_held_uploads_per_repository"),
        "{body}"
    );
    assert_eq!(held_uploads(&t).await, 3);
    // Another repository has its own allowance.
    let other = repository(&t, "early-other").await;
    let (status, _) = upload_raw(&t, &other, &"f".repeat(40), lcov(3)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_json_wire_format_has_the_line_limits_of_raw_reports() {
    let t = TestApp::start().await;
    let token = repository(&t, "wire").await;
    // One file of 2,000,001 missed lines: 2 MB of line data, under the body limit.
    let data = base64_encode(&vec![0x15u8; 2_000_001]);
    let resp = t
        .client
        .post(t.url("/v1/reports"))
        .header("authorization", format!("token {token}"))
        .json(&json!({"commit_sha": "c".repeat(40), "data": {"src/a.c": data}}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or_default();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("more than 2000000 lines"),
        "{body}"
    );
    assert_eq!(held_uploads(&t).await, 0);
    t.shutdown().await;
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_over_the_time_limit_is_refused() {
    let t = TestApp::start_with(|c| c.coverage.processing_time_limit_ms = 1).await;
    let token = repository(&t, "slow").await;
    // About 6 MB of lcov: far more than a millisecond of parsing.
    let (status, body) = upload_raw(&t, &token, &"d".repeat(40), lcov(400_000)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "report.over_time_limit");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("coverage.processing_time_limit_ms"),
        "{body}"
    );
    // The wire format too.
    let files: serde_json::Map<String, Value> = (0..20_000)
        .map(|i| (format!("src/f{i}.c"), Value::String("MQ==".into())))
        .collect();
    let resp = t
        .client
        .post(t.url("/v1/reports"))
        .header("authorization", format!("token {token}"))
        .json(&json!({"commit_sha": "d".repeat(40), "data": files}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "report.over_time_limit", "{body}");
    assert_eq!(held_uploads(&t).await, 0);
    t.shutdown().await;
}

async fn badge_status(t: &TestApp, forwarded_for: &str) -> u16 {
    t.client
        .get(format!("{}/nothing/coverage", t.badger_base))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // The test client (127.0.0.1) is not a trusted proxy: rotating X-Forwarded-For is no help.
    let t = TestApp::start_with(|c| {
        c.badger.rate_limit_per_minute = 2;
        c.badger.trusted_proxies = vec!["10.0.0.0/8".into()];
    })
    .await;
    assert_ne!(badge_status(&t, "203.0.113.1").await, 429);
    assert_ne!(badge_status(&t, "203.0.113.2").await, 429);
    assert_eq!(badge_status(&t, "203.0.113.3").await, 429);
    t.shutdown().await;

    // Behind a trusted proxy (127.0.0.1) each forwarded client has its own bucket, and what a
    // client wrote left of the proxy's entry is not believed.
    let t = TestApp::start_with(|c| {
        c.badger.rate_limit_per_minute = 2;
        c.badger.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    assert_ne!(badge_status(&t, "203.0.113.1").await, 429);
    assert_ne!(badge_status(&t, "9.9.9.9, 203.0.113.1").await, 429);
    assert_eq!(badge_status(&t, "8.8.8.8, 203.0.113.1").await, 429);
    assert_ne!(badge_status(&t, "203.0.113.2").await, 429);
    t.shutdown().await;
}
