//! The OpenAPI document against the routes, so neither can drift from the other:
//! * every route the API listener tags (each route is tagged with `METHOD /template` for
//!   metrics, in src/api/) is documented, and every documented operation is tagged;
//! * every documented operation is really served: a request to it reaches its handler (its tag
//!   shows in the metrics) or at least is not the unknown-route 404/405;
//! * the read routes' answers for an authorized caller, and their errors, validate against the
//!   documented schemas (a small validator for the subset of JSON Schema the document uses).

use crate::common;

use std::collections::BTreeSet;

use common::TestApp;
use reqwest::StatusCode;
use serde_json::Value;

const SHA: &str = "abcdefabcdefabcdefabcdefabcdefabcdefabcd";

/// `METHOD /template` of every route tagged in src/api/.
fn served_routes() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("src/api") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        // `tag(` then the string literal, possibly on the next line after formatting.
        for piece in text.split("tag(").skip(1) {
            let Some(literal) = piece.trim_start().strip_prefix('"') else {
                continue;
            };
            let Some((name, _)) = literal.split_once('"') else {
                continue;
            };
            let method = name.split(' ').next().unwrap_or("");
            if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) {
                routes.insert(name.to_string());
            }
        }
    }
    routes
}

fn documented_routes(doc: &Value) -> BTreeSet<String> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            routes.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    routes
}

async fn document(t: &TestApp) -> Value {
    let response = t
        .client
        .get(t.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    response.json().await.expect("JSON document")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let t = TestApp::start_with(|c| c.server.roles = vec![cocov::config::Role::Api]).await;
    let doc = document(&t).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    let served = served_routes();
    let documented = documented_routes(&doc);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "routes missing from src/api/openapi.json: {undocumented:?}; documented but not tagged in src/api: {unserved:?}"
    );

    // Every $ref resolves.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"").skip(1) {
        let reference = piece.split('"').next().unwrap();
        assert!(resolve(&doc, reference).is_some(), "dangling {reference}");
    }

    // User 1 (whom `{id}` names) is someone else: signing them out everywhere or deleting them
    // must not take the caller's own token away halfway through.
    t.user_token("bystander", false).await;
    let admin = t.user_token("root", true).await;
    let mut answers = Vec::new();
    for route in &documented {
        let (method, template) = route.split_once(' ').unwrap();
        let path = template
            .replace("{name}", "nothing")
            .replace("{sha}", SHA)
            .replace("{branch}", "main")
            .replace("{id}", "1")
            .replace("{secret}", "NOTHING")
            // A parameter documented by its values: take the first.
            .replace("{sources|categories|states}", "sources");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = t
            .client
            .request(method, t.url(&path))
            .header("authorization", format!("bearer {admin}"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        answers.push((route.clone(), response.status()));
    }
    let metrics = t
        .client
        .get(t.url("/metrics"))
        .header("authorization", format!("bearer {admin}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (route, status) in answers {
        let reached = metrics.contains(&format!("route=\"{route}\""));
        assert!(
            reached || !matches!(status.as_u16(), 404 | 405),
            "{route} is documented but answered {status} without reaching a handler"
        );
    }
    t.shutdown().await;
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// Checks `value` against `schema` (type, nullable, enum, required, properties,
/// additionalProperties: false, items, allOf, $ref); returns what does not match.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let target = resolve(doc, reference).unwrap_or_else(|| panic!("dangling {reference}"));
        return validate(doc, target, value, at, errors);
    }
    if value.is_null() && schema["nullable"] == true {
        return;
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            validate(doc, s, value, at, errors);
        }
        return;
    }
    let ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !ok {
        errors.push(format!("{at}: expected {}, got {value}", schema["type"]));
        return;
    }
    if let Some(choices) = schema["enum"].as_array()
        && !choices.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {choices:?}"));
    }
    if let Some(object) = value.as_object() {
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap();
            if !object.contains_key(key) {
                errors.push(format!("{at}: missing `{key}`"));
            }
        }
        let properties = schema["properties"].as_object();
        for (key, v) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(s) => validate(doc, s, v, &format!("{at}.{key}"), errors),
                None if schema["additionalProperties"] == false => {
                    errors.push(format!("{at}: undocumented key `{key}`"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            validate(doc, items, v, &format!("{at}[{i}]"), errors);
        }
    }
}

/// The documented schema of `method path`'s `status` answer.
fn response_schema<'a>(doc: &'a Value, method: &str, template: &str, status: u16) -> &'a Value {
    let mut response = &doc["paths"][template][method]["responses"][status.to_string()];
    if let Some(reference) = response["$ref"].as_str() {
        response = resolve(doc, reference).unwrap();
    }
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {template} documents no JSON answer for {status}"
    );
    schema
}

async fn check(t: &TestApp, doc: &Value, token: Option<&str>, template: &str, path: &str) -> Value {
    let mut request = t.client.get(t.url(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON answer");
    let mut errors = Vec::new();
    let schema = response_schema(doc, "get", template, status);
    validate(doc, schema, &body, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "GET {path} ({status}): {errors:#?}\n{body}"
    );
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn read_answers_match_their_documented_schemas() {
    let t = TestApp::start_with(|c| c.server.roles = vec![cocov::config::Role::Api]).await;
    let doc = document(&t).await;
    let pool = &t.app().db;
    let admin = t.user_token("root", true).await;
    let member = t.user_token("member", false).await;

    let (repo, _) = cocov::repositories::create(
        pool,
        &cocov::repositories::NewRepository {
            name: "shapes".into(),
            description: Some("Shapes".into()),
            default_branch: "main".into(),
            source: cocov::repositories::Source::GitUrl("https://git.example/shapes.git".into()),
        },
        &t.app().config.git.allowed_protocols,
        &cocov::audit::AuditActor::system(),
    )
    .await
    .unwrap();
    cocov::repositories::create(
        pool,
        &cocov::repositories::NewRepository {
            name: "bare".into(),
            description: None,
            default_branch: "main".into(),
            source: cocov::repositories::Source::GitUrl("https://git.example/bare.git".into()),
        },
        &t.app().config.git.allowed_protocols,
        &cocov::audit::AuditActor::system(),
    )
    .await
    .unwrap();
    // The member is one of both repositories' members (standalone ones are private otherwise).
    for name in ["shapes", "bare"] {
        let repository = cocov::repositories::find_by_name(pool, name)
            .await
            .unwrap()
            .unwrap();
        cocov::memberships::grant(
            pool,
            &repository,
            cocov::memberships::Subject::User("member"),
            cocov::memberships::Level::Read,
            &cocov::audit::AuditActor::system(),
        )
        .await
        .unwrap();
    }
    let commit = cocov::commits::register_push(t.app(), &repo, SHA, Some("main"))
        .await
        .unwrap()
        .commit_id;
    // A commit linked to its author, with numbers, and history for the statistics.
    sqlx::query(
        "UPDATE commits SET user_id = (SELECT id FROM users WHERE login = 'member'),
                author_name = 'M', author_email = 'm@example.com', message = 'msg',
                committed_at = now(), issues_count = 2, coverage_percent = 75.5 WHERE id = $1",
    )
    .bind(commit)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE branches SET issues = 2, coverage = 75.5 WHERE repository_id = $1")
        .bind(repo.id)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO issue_histories (repository_id, branch_id, commit_id, quantity, created_at)
         SELECT repository_id, id, head_commit_id, 2, '2026-03-01T12:00:00Z' FROM branches
         WHERE repository_id = $1",
    )
    .bind(repo.id)
    .execute(pool)
    .await
    .unwrap();

    let list = check(
        &t,
        &doc,
        Some(&member),
        "/v1/repositories",
        "/v1/repositories",
    )
    .await;
    assert_eq!(list["repositories"].as_array().unwrap().len(), 2);
    let shown = check(
        &t,
        &doc,
        Some(&member),
        "/v1/repositories/{name}",
        "/v1/repositories/shapes",
    )
    .await;
    assert_eq!(shown["head"]["user"]["login"], "member");
    // Without a default branch: nulls where the schema allows them.
    let bare = check(
        &t,
        &doc,
        Some(&admin),
        "/v1/repositories/{name}",
        "/v1/repositories/bare",
    )
    .await;
    assert_eq!(bare["head"], Value::Null);
    for (template, path) in [
        (
            "/v1/repositories/{name}/branches",
            "/v1/repositories/shapes/branches".to_string(),
        ),
        (
            "/v1/repositories/{name}/branches/{branch}",
            "/v1/repositories/shapes/branches/main".to_string(),
        ),
        (
            "/v1/repositories/{name}/commits",
            "/v1/repositories/shapes/commits".to_string(),
        ),
        (
            "/v1/repositories/{name}/commits/{sha}",
            format!("/v1/repositories/shapes/commits/{SHA}"),
        ),
        (
            "/v1/repositories/{name}/stats/coverage",
            "/v1/repositories/shapes/stats/coverage?from=2026-03-01&to=2026-03-02".to_string(),
        ),
        (
            "/v1/repositories/{name}/stats/issues",
            "/v1/repositories/shapes/stats/issues?from=2026-03-01&to=2026-03-02".to_string(),
        ),
    ] {
        let body = check(&t, &doc, Some(&member), template, &path).await;
        assert!(!body.is_null(), "{path}");
        // Errors match the documented error schema too: 401 anonymous, 404 absent.
        check(&t, &doc, None, template, &path).await;
        let absent = path.replace("/shapes", "/absent");
        check(&t, &doc, Some(&member), template, &absent).await;
    }
    // Bad parameters: documented 400s.
    check(
        &t,
        &doc,
        Some(&member),
        "/v1/repositories",
        "/v1/repositories?page=0",
    )
    .await;
    check(
        &t,
        &doc,
        Some(&member),
        "/v1/repositories/{name}/stats/issues",
        "/v1/repositories/shapes/stats/issues?from=x&to=2026-03-01",
    )
    .await;
    t.shutdown().await;
}

/// A method the path does not have is a 405 whose `Allow` lists the documented methods.
#[tokio::test(flavor = "multi_thread")]
async fn a_method_not_allowed_lists_the_allowed_ones() {
    let t = TestApp::start().await;
    for (method, path, allow) in [
        (reqwest::Method::PUT, "/v1/secrets", "GET, POST"),
        (
            reqwest::Method::GET,
            "/v1/repositories/x/commits/y/checks/re_run",
            "POST",
        ),
    ] {
        let response = t.client.request(method, t.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(response.headers()["allow"], allow, "{path}");
    }
    t.shutdown().await;
}
