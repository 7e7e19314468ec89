//! The API listener end to end: probes, metrics, compression, JSON errors, authentication and
//! the role of each token on each route.

use crate::common;

use common::TestApp;
use common::requests::assert_error_body;
use reqwest::StatusCode;
use serde_json::Value;

async fn json(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn get_as(t: &TestApp, path: &str, token: &str) -> reqwest::Response {
    t.client
        .get(t.url(path))
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn probes_report_every_dependency() {
    let t = TestApp::start().await;
    let (status, body) = json(t.client.get(t.url("/v1/ping")).send().await.unwrap()).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, serde_json::json!({"pong": true}))
    );
    let (status, body) = json(t.client.get(t.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Anonymous callers learn only ready or not.
    let (status, body) = json(t.client.get(t.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, serde_json::json!({"ready": true}))
    );
    // Administrators get each dependency; other tokens are refused.
    let admin = t.user_token("root", true).await;
    let user = t.user_token("someone", false).await;
    let (status, body) = json(get_as(&t, "/readyz", &user).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = json(get_as(&t, "/readyz", "cop_not-a-token").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = json(get_as(&t, "/readyz", &admin).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["ready"], true);
    for dep in ["postgresql", "redis", "storage"] {
        assert_eq!(body["checks"][dep]["ok"], true, "{dep} not ok in {body}");
    }
    assert!(
        body["checks"]["storage"]["detail"]
            .as_str()
            .unwrap()
            .contains("filesystem")
    );
    t.shutdown().await;
}

#[tokio::test]
async fn readiness_fails_when_storage_is_gone() {
    let t = TestApp::start().await;
    let admin = t.user_token("root", true).await;
    std::fs::remove_dir_all(t.storage_dir.path()).unwrap();
    let (status, body) = json(t.client.get(t.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"ready": false})
        )
    );
    let (status, body) = json(get_as(&t, "/readyz", &admin).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["storage"]["ok"], false);
    assert_eq!(body["checks"]["postgresql"]["ok"], true);
    t.shutdown().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let t = TestApp::start().await;
    let admin = t.user_token("root", true).await;
    t.client.get(t.url("/v1/ping")).send().await.unwrap();
    t.client
        .get(t.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    let text = get_as(&t, "/metrics", &admin).await.text().await.unwrap();
    assert!(
        text.contains(r#"cocov_http_requests_total{listener="api",route="GET /v1/ping",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",method="GET",status="404""#),
        "{text}"
    );
    assert!(
        text.contains("cocov_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"cocov_queue_jobs{queue="default",state="waiting"}"#),
        "{text}"
    );
    t.shutdown().await;
}

/// `/metrics` tells about traffic and queues: administrators, or a scraper holding the token of
/// `server.metrics_token_file`; nobody else.
#[tokio::test]
async fn metrics_need_an_admin_or_the_scraper_token() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, "scrape-me-0123456789\n").unwrap();
    let file = token_file.clone();
    let t = TestApp::start_with(move |c| c.server.metrics_token_file = file).await;
    let user = t.user_token("someone", false).await;
    let admin = t.user_token("root", true).await;
    let anonymous = t.client.get(t.url("/metrics")).send().await.unwrap();
    let (status, body) = json(anonymous).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_error_body(&body, "auth.no_authorization");
    let (status, body) = json(get_as(&t, "/metrics", &user).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = json(get_as(&t, "/metrics", "scrape-me-wrong").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for token in ["scrape-me-0123456789", admin.as_str()] {
        let response = get_as(&t, "/metrics", token).await;
        assert_eq!(response.status(), StatusCode::OK, "{token}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("cocov_http_requests_total")
        );
    }
    t.shutdown().await;
}

#[tokio::test]
async fn compression_follows_accept_encoding() {
    let t = TestApp::start().await;
    let admin = format!("bearer {}", t.user_token("root", true).await);
    let plain = t
        .client
        .get(t.url("/metrics"))
        .header("authorization", &admin)
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let gz = t
        .client
        .get(t.url("/metrics"))
        .header("authorization", &admin)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let zs = t
        .client
        .get(t.url("/metrics"))
        .header("authorization", &admin)
        .header("accept-encoding", "zstd")
        .send()
        .await
        .unwrap();
    assert_eq!(zs.headers()["content-encoding"], "zstd");
    t.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let t = TestApp::start().await;
    let (status, body) = json(t.client.get(t.url("/v1/nope")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_body(&body, "not_found");
    let (status, body) = json(t.client.delete(t.url("/v1/ping")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error_body(&body, "method_not_allowed");
    t.shutdown().await;
}

#[tokio::test]
async fn authentication_errors_follow_the_original_codes() {
    let t = TestApp::start().await;
    let me = t.url("/v1/me");
    let (status, body) = json(t.client.get(&me).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error_body(&body, "auth.no_authorization");
    for header in [
        "lol?",
        "bearer invalid",
        "bearer cos_0000",
        "token crt_abc",
        "Basic dXNlcjpwYXNz",
    ] {
        let (status, body) = json(
            t.client
                .get(&me)
                .header("authorization", header)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{header}");
        assert_error_body(&body, "auth.invalid_token");
    }
    let token = t.user_token("alice", false).await;
    let (status, body) = json(
        t.client
            .get(&me)
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["login"], "alice");
    assert_eq!(body["admin"], false);
    t.shutdown().await;
}

/// Each admin route for each role: none, user, service, admin.
#[tokio::test]
async fn service_token_routes_are_admin_only() {
    let t = TestApp::start().await;
    let admin = t.user_token("root", true).await;
    let user = t.user_token("bob", false).await;
    let auth = |token: &str| format!("bearer {token}");

    // An admin creates a service token; the value works as a bearer token and is shown once.
    let (status, created) = json(
        t.client
            .post(t.url("/v1/admin/service_tokens"))
            .header("authorization", auth(&admin))
            .json(&serde_json::json!({"description": "worker on host b"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let service = created["token_value"].as_str().unwrap().to_string();
    assert!(
        service.starts_with("cos_") && service.len() == 68,
        "{service}"
    );
    let id = created["id"].as_i64().unwrap();
    let (status, me) = json(
        t.client
            .get(t.url("/v1/me"))
            .header("authorization", auth(&service))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, me["kind"].as_str()),
        (StatusCode::OK, Some("service"))
    );

    let (status, listed) = json(
        t.client
            .get(t.url("/v1/admin/service_tokens"))
            .header("authorization", auth(&admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["tokens"][0]["description"], "worker on host b");
    assert_eq!(listed["tokens"][0]["created_by"], "root");
    assert!(
        !listed.to_string().contains(&service),
        "token value leaked in the listing"
    );

    for (who, token) in [("user", &user), ("service", &service)] {
        for (method, path) in [
            ("GET", "/v1/admin/service_tokens".to_string()),
            ("POST", "/v1/admin/service_tokens".to_string()),
            ("DELETE", format!("/v1/admin/service_tokens/{id}")),
        ] {
            let resp = t
                .client
                .request(method.parse().unwrap(), t.url(&path))
                .header("authorization", auth(token))
                .json(&serde_json::json!({"description": "x"}))
                .send()
                .await
                .unwrap();
            let (status, body) = json(resp).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} {method} {path}");
            assert_error_body(&body, "auth.forbidden");
        }
    }
    for (method, path) in [
        ("GET", "/v1/admin/service_tokens"),
        ("DELETE", "/v1/admin/service_tokens/1"),
    ] {
        let (status, _) = json(
            t.client
                .request(method.parse().unwrap(), t.url(path))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "anonymous {method} {path}"
        );
    }

    // Revocation is immediate; revoking again is a 404.
    let del = t
        .client
        .delete(t.url(&format!("/v1/admin/service_tokens/{id}")))
        .header("authorization", auth(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    let (status, _) = json(
        t.client
            .get(t.url("/v1/me"))
            .header("authorization", auth(&service))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = json(
        t.client
            .delete(t.url(&format!("/v1/admin/service_tokens/{id}")))
            .header("authorization", auth(&admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_body(&body, "not_found");

    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action LIKE 'service_token.%'")
            .fetch_one(&t.app().db)
            .await
            .unwrap();
    assert_eq!(audited, 2);
    t.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_clear_4xx_and_change_nothing() {
    let t = TestApp::start_with(|c| c.server.request_body_limit_bytes = 4096).await;
    let admin = format!("bearer {}", t.user_token("root", true).await);
    let post = |body: reqwest::Body, ct: &str| {
        t.client
            .post(t.url("/v1/admin/service_tokens"))
            .header("authorization", admin.clone())
            .header("content-type", ct.to_string())
            .body(body)
    };
    let (status, body) = json(
        post("{not json".into(), "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_body(&body, "request.invalid_json");
    let (status, body) = json(
        post(r#"{"description": 5}"#.into(), "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("description"),
        "{body}"
    );
    let (status, body) = json(post("{}".into(), "application/json").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_body(&body, "admin.service_token_description_missing");
    let big = format!(r#"{{"description":"{}"}}"#, "x".repeat(100_000));
    let (status, body) = json(post(big.into(), "application/json").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error_body(&body, "request.too_large");
    // A chunked body (no Content-Length) over the limit is refused as well.
    let chunks = futures_util::stream::iter(
        (0..20).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 1024]))),
    );
    let (status, body) = json(
        post(reqwest::Body::wrap_stream(chunks), "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM service_tokens")
        .fetch_one(&t.app().db)
        .await
        .unwrap();
    assert_eq!(count, 0, "a rejected request wrote something");
    t.shutdown().await;
}
