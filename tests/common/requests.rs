//! Requests the integration tests make over and over: a GET with a bearer token read back as
//! JSON, the tokens of each role, and the shape every API error has.

use reqwest::StatusCode;
use serde_json::Value;

use super::TestApp;

/// GET `path` as the holder of `token` (anonymous when `None`): the status and the JSON body
/// (`Null` when the body is not JSON).
pub async fn get(t: &TestApp, token: Option<&str>, path: &str) -> (StatusCode, Value) {
    let mut request = t.client.get(t.url(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("bearer {token}"));
    }
    let response = request.send().await.expect("request reaches the daemon");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `method path` as the holder of `token` (anonymous when `None`), with an optional JSON body:
/// the status and the JSON body (`Null` when the body is not JSON).
pub async fn call(
    t: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = t.client.request(method, t.url(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("bearer {token}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request reaches the daemon");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A new site administrator's personal token.
pub async fn admin_token(t: &TestApp) -> String {
    t.user_token(&format!("admin-{}", uuid::Uuid::new_v4().simple()), true)
        .await
}

/// A new service token.
pub async fn service_token(t: &TestApp) -> String {
    let actor = cocov::audit::AuditActor::system();
    cocov::auth::service_tokens::create(&t.app().db, "reader", None, &actor)
        .await
        .expect("service token")
        .1
}

/// Asserts an API error: `status`, the machine-readable `code` and a non-empty message.
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert_error_body(&got.1, code);
}

/// Asserts an error body: the machine-readable `code` and a non-empty message.
pub fn assert_error_body(body: &Value, code: &str) {
    assert_eq!(body["code"], code, "unexpected error body {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message in {body}"
    );
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The check of `plugin` in a commit's checks view.
pub fn check_of<'a>(view: &'a Value, plugin: &str) -> &'a Value {
    view["checks"]
        .as_array()
        .expect("a checks view")
        .iter()
        .find(|c| c["plugin_name"] == plugin)
        .unwrap_or_else(|| panic!("no check {plugin} in {view}"))
}

/// The output of `plugin`'s check, asserted errored, read through the API.
pub async fn errored_check_output(
    t: &TestApp,
    token: &str,
    repository: &str,
    sha: &str,
    view: &Value,
    plugin: &str,
) -> String {
    let id = check_of(view, plugin)["id"].as_i64().unwrap();
    let path = format!("/v1/repositories/{repository}/commits/{sha}/checks/{id}");
    let (_, check) = get(t, Some(token), &path).await;
    assert_eq!(check["status"], "errored", "{plugin}: {check}");
    check["error_output"].as_str().unwrap().to_string()
}

/// Makes the user `login` a member of repository `repository` at `level` (`user`, `maintainer`,
/// `admin`), as a local grant.
pub async fn add_member(t: &TestApp, repository: &str, login: &str, level: &str) {
    sqlx::query(
        "INSERT INTO repository_members (repository_id, user_id, level) \
         SELECT r.id, u.id, $3 FROM repositories r, users u WHERE r.name = $1 AND u.login = $2",
    )
    .bind(repository)
    .bind(login)
    .bind(level)
    .execute(&t.app().db)
    .await
    .expect("membership granted");
}
