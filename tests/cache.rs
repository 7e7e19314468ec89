//! The cache service end to end: a plugin in the real bubblewrap sandbox (no network) stores
//! and loads items through its relay; the quota evicts the least recently used; another
//! repository's job and a finished job are refused; bad requests get the original's answers;
//! the admin routes, CLI and audit log; one round trip on an S3 store.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::TestApp;
use common::origin::{Origin, announce_main, register};
use common::requests::{admin_token, get};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The test plugin: runs the requests `plan.json` lists (one JSON object a line: method, path,
/// headers, body, `nojob` to leave the job id out; or `sleep` seconds) against `COCOV_CACHE_SERVICE_URL` and
/// reports each answer as an issue `<n> <status> <body>`.
const CLIENT: &str = r#"
import http.client, json, os, time, urllib.parse
url = os.environ.get("COCOV_CACHE_SERVICE_URL")
steps = [json.loads(l) for l in open(os.path.join(os.environ["COCOV_WORKDIR"], "plan.json")) if l.strip()]
out = []
for n, step in enumerate(steps):
    if "sleep" in step:
        time.sleep(step["sleep"])
        continue
    if url is None:
        out.append(f"{n} no-cache")
        continue
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    headers = dict(step.get("headers", {}))
    if not step.get("nojob"):
        headers["Cocov-Job-ID"] = os.environ["COCOV_JOB_IDENTIFIER"]
    body = step.get("body")
    conn.request(step["method"], step["path"], body=None if body is None else body.encode(), headers=headers)
    r = conn.getresponse()
    out.append(f"{n} {r.status} {r.read().decode()} {r.getheader('Content-Type') or ''}".strip())
with open(os.environ["COCOV_OUTPUT_FILE"], "w") as f:
    for n, message in enumerate(out):
        f.write(json.dumps({"kind": "bug", "file": "plan.json", "line_start": 1, "message": message, "uid": f"step-{n}"}) + "\0")
"#;

const MANIFEST: &str = "version: \"0.1.alpha\"\nchecks:\n  - plugin: cachetest/client\n";

struct Cache {
    t: TestApp,
    _plugins: tempfile::TempDir,
    socket_dir: tempfile::TempDir,
    admin: String,
    /// Each registered repository's upload token.
    tokens: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

async fn start(adjust: impl FnOnce(&mut cocov::config::Config)) -> Cache {
    let plugins = tempfile::tempdir().unwrap();
    let definition = format!(
        "name = \"cachetest/client\"\ncommand = \"/usr/bin/python3\"\nargs = [\"-c\", '''{CLIENT}''']\n"
    );
    std::fs::write(plugins.path().join("client.toml"), definition).unwrap();
    // The sandbox's user binds the socket in, so it must be able to reach it.
    let socket_dir = tempfile::Builder::new()
        .prefix("cocov-cache-")
        .tempdir()
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(socket_dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let plugins_dir = plugins.path().to_path_buf();
    let socket = socket_dir.path().join("cache.sock");
    let t = TestApp::start_with(move |c| {
        c.worker.plugins_dir = plugins_dir;
        c.cache.enabled = true;
        c.cache.socket_path = socket.display().to_string();
        // The daemon runs inside the test binary here; the relay is the real `cocov`.
        c.cache.relay_binary = env!("CARGO_BIN_EXE_cocov").to_string();
        adjust(c);
    })
    .await;
    let admin = admin_token(&t).await;
    Cache {
        t,
        _plugins: plugins,
        socket_dir,
        admin,
        tokens: Default::default(),
    }
}

fn step(method: &str, path: &str, body: Option<&str>) -> Value {
    let mut s = json!({ "method": method, "path": path });
    if let Some(body) = body {
        s["body"] = json!(body);
        s["headers"] = json!({
            "Content-Type": "text/plain",
            "Filename": format!("{}.txt", path.rsplit('/').next().unwrap()),
        });
    }
    s
}

fn plan(steps: &[Value]) -> String {
    steps.iter().map(|s| format!("{s}\n")).collect()
}

impl Cache {
    /// Commits `steps` as the plan of repository `name` (registered on first use) and announces
    /// it; returns the sha.
    async fn push(&self, origin: &Origin, name: &str, steps: &[Value]) -> String {
        let t = &self.t;
        let plan = plan(steps);
        let sha = origin.commit(&[(".cocov.yaml", MANIFEST), ("plan.json", &plan)], "plan");
        let token = {
            let known = self.tokens.lock().unwrap().get(name).cloned();
            match known {
                Some(token) => token,
                None => {
                    let token = register(t, name, &origin.url()).await.1;
                    self.tokens
                        .lock()
                        .unwrap()
                        .insert(name.into(), token.clone());
                    token
                }
            }
        };
        announce_main(t, name, &token, &sha).await;
        sha
    }

    /// Runs `steps` in a check set of repository `name` (registered on first use); returns
    /// each step's answer (`<status> <body> <content type>`) and the set's job id.
    async fn run(&self, origin: &Origin, name: &str, steps: &[Value]) -> (Vec<String>, uuid::Uuid) {
        let t = &self.t;
        let sha = self.push(origin, name, steps).await;
        let path = format!("/v1/repositories/{name}/commits/{sha}/checks");
        let view = common::eventually("the check set to end", Duration::from_secs(120), || {
            let path = path.clone();
            async move {
                let (status, body) = get(t, Some(&self.admin), &path).await;
                (status == StatusCode::OK
                    && matches!(body["status"].as_str(), Some("completed" | "errored")))
                .then_some(body)
            }
        })
        .await;
        assert_eq!(view["status"], "completed", "{view}");
        let (_, issues) = get(
            t,
            Some(&self.admin),
            &format!("/v1/repositories/{name}/commits/{sha}/issues?per_page=100"),
        )
        .await;
        let mut answers: Vec<(usize, String)> = issues["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let message = i["message"].as_str().unwrap();
                let (n, rest) = message.split_once(' ').unwrap();
                (n.parse().unwrap(), rest.to_string())
            })
            .collect();
        answers.sort();
        assert_eq!(answers.len(), steps.len(), "{issues}");
        let job: uuid::Uuid = sqlx::query_scalar(
            "SELECT s.job_id FROM check_sets s JOIN commits c ON c.id = s.commit_id \
             WHERE c.sha = $1::citext",
        )
        .bind(&sha)
        .fetch_one(&t.app().db)
        .await
        .unwrap();
        (answers.into_iter().map(|(_, a)| a).collect(), job)
    }

    /// One request straight to the service's socket, as the relay forwards it.
    async fn raw(&self, request: &str) -> (u16, String) {
        let socket = self.socket_dir.path().join("cache.sock");
        raw_request(&socket, request).await
    }
}

async fn raw_request(socket: &Path, request: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn code_of(answer: &str) -> String {
    let json = &answer[answer.find('{').unwrap()..=answer.rfind('}').unwrap()];
    serde_json::from_str::<Value>(json).unwrap()["code"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_stores_in_one_check_set_and_loads_in_the_next_and_finished_jobs_are_refused() {
    let c = start(|_| {}).await;
    let origin = Origin::new();
    let (first, first_job) = c
        .run(
            &origin,
            "alpha",
            &[
                step("POST", "/artifact/deps-1", Some("node_modules v1")),
                step("POST", "/tool/node-20", Some("a node build")),
                step("GET", "/artifact/deps-1", None),
                // Write-once: the same id again, and another id under the same file name.
                step("POST", "/artifact/deps-1", Some("something else")),
                json!({"method": "POST", "path": "/artifact/other", "body": "x",
                       "headers": {"Content-Type": "text/plain", "Filename": "deps-1.txt"}}),
            ],
        )
        .await;
    assert!(first[0].starts_with("204"), "{first:?}");
    assert!(first[1].starts_with("204"), "{first:?}");
    assert_eq!(first[2], "200 node_modules v1 text/plain");
    assert!(first[3].starts_with("409"), "{first:?}");
    assert_eq!(code_of(&first[3]), "cache.already_exists");
    assert_eq!(code_of(&first[4]), "cache.already_exists");

    let (second, _) = c
        .run(
            &origin,
            "alpha",
            &[
                step("GET", "/artifact/deps-1", None),
                step("HEAD", "/tool/node-20", None),
                step("GET", "/artifact/never-stored", None),
            ],
        )
        .await;
    assert_eq!(second[0], "200 node_modules v1 text/plain");
    assert_eq!(second[1], "200  text/plain");
    assert!(second[2].starts_with("404"), "{second:?}");

    // The first set ended: its job id no longer opens anything, nor does a made-up one.
    for job in [first_job, uuid::Uuid::new_v4()] {
        let (status, body) = c
            .raw(&format!(
                "GET /artifact/deps-1 HTTP/1.1\r\nHost: cache\r\nCocov-Job-ID: {job}\r\n\
                 Connection: close\r\n\r\n"
            ))
            .await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(code_of(&body), "forbidden");
    }
    let (status, body) = c
        .raw("GET /artifact/deps-1 HTTP/1.1\r\nHost: cache\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(
        (status, code_of(&body).as_str()),
        (403, "cache.missing_job_id")
    );

    // The repository's artifacts and total, through the API; metrics counted the traffic.
    let (status, view) = get(
        &c.t,
        Some(&c.admin),
        "/v1/repositories/alpha/settings/cache",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["enabled"], true);
    assert_eq!(view["storage_used"], 15);
    assert_eq!(view["artifacts"][0]["name_hash"], "deps-1");
    let metrics = c.t.app().metrics.render();
    assert!(
        metrics.contains("cocov_cache_lookups_total{zone=\"artifact\",outcome=\"hit\"} 2"),
        "{metrics}"
    );
    c.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quota_evicts_the_least_recently_used_and_repositories_are_kept_apart() {
    let c = start(|config| {
        config.cache.repository_max_size = 10;
        config.cache.max_item_size = 20;
    })
    .await;
    let alpha = Origin::new();
    let beta = Origin::new();
    let (stored, _) = c
        .run(
            &alpha,
            "alpha",
            &[
                step("POST", "/artifact/a", Some("aaaa")),
                step("POST", "/artifact/b", Some("bbbb")),
            ],
        )
        .await;
    assert!(stored.iter().all(|s| s.starts_with("204")), "{stored:?}");
    let (beta_run, _) = c
        .run(
            &beta,
            "beta",
            &[
                // Beta cannot see alpha's items, and its own of the same id are its own.
                step("GET", "/artifact/a", None),
                step("POST", "/artifact/b", Some("beta")),
                step("GET", "/artifact/b", None),
            ],
        )
        .await;
    assert!(beta_run[0].starts_with("404"), "{beta_run:?}");
    assert_eq!(beta_run[2], "200 beta text/plain");

    let (answers, _) = c
        .run(
            &alpha,
            "alpha",
            &[
                // `a` is used, so `b` is now the least recently used: `c` takes its room.
                step("GET", "/artifact/a", None),
                step("POST", "/artifact/c", Some("cccc")),
                step("GET", "/artifact/b", None),
                step("GET", "/artifact/a", None),
                step("POST", "/artifact/big", Some("more than ten")),
                step("POST", "/artifact/huge", Some("more than twenty bytes")),
                // Bad inputs, with the original's answers.
                json!({"method": "POST", "path": "/artifact/x", "body": "x",
                       "headers": {"Filename": "x"}}),
                json!({"method": "POST", "path": "/artifact/x",
                       "headers": {"Content-Type": "text/plain", "Filename": "x"}}),
                json!({"method": "POST", "path": "/artifact/x", "body": "x",
                       "headers": {"Content-Type": "text/plain"}}),
                json!({"method": "GET", "path": "/artifact/a", "nojob": true}),
                step("GET", "/artifact/bad%2Fid", None),
            ],
        )
        .await;
    assert_eq!(answers[0], "200 aaaa text/plain");
    assert!(answers[1].starts_with("204"), "{answers:?}");
    assert!(answers[2].starts_with("404"), "b was evicted: {answers:?}");
    assert_eq!(answers[3], "200 aaaa text/plain");
    let codes: Vec<String> = answers[4..].iter().map(|a| code_of(a)).collect();
    assert_eq!(
        codes,
        [
            "cache.exceeds_quota",
            "cache.too_large",
            "cache.missing_content_type",
            "cache.missing_content_length",
            "cache.missing_filename",
            "cache.missing_job_id",
            "cache.invalid_id",
        ],
        "{answers:?}"
    );
    assert!(answers[4].starts_with("413") && answers[6].starts_with("400"));
    assert!(answers[9].starts_with("403"), "{answers:?}");

    // The catalogue agrees, the blob of `b` is gone, beta kept its own `b`.
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT a.name_hash || '@' || r.name FROM cache_artifacts a \
         JOIN repositories r ON r.id = a.repository_id ORDER BY 1",
    )
    .fetch_all(&c.t.app().db)
    .await
    .unwrap();
    assert_eq!(names, ["a@alpha", "b@beta", "c@alpha"]);
    let blobs =
        c.t.app()
            .storage
            .list(&cocov::storage::BlobPrefix::new("cache/").unwrap())
            .await
            .unwrap();
    assert_eq!(blobs.len(), 3, "{blobs:?}");
    let size: i64 = sqlx::query_scalar("SELECT cache_size FROM repositories WHERE name = 'alpha'")
        .fetch_one(&c.t.app().db)
        .await
        .unwrap();
    assert_eq!(size, 8);
    c.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writers_of_one_repository_never_pass_the_quota() {
    let c = start(|config| config.cache.repository_max_size = 100).await;
    let origin = Origin::new();
    register(&c.t, "gamma", &origin.url()).await;
    let repo: i64 = sqlx::query_scalar("SELECT id FROM repositories WHERE name = 'gamma'")
        .fetch_one(&c.t.app().db)
        .await
        .unwrap();
    let store = cocov::cache::CacheStore::from_app(c.t.app());
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), [7u8; 30]).unwrap();
    let writes = (0..12).map(|i| {
        let store = store.clone();
        let path = file.path().to_path_buf();
        async move {
            let item = cocov::cache::NewItem {
                name_hash: format!("item-{i}"),
                name: format!("item {i}"),
                mime: "application/octet-stream".into(),
                size: 30,
            };
            store
                .write(cocov::cache::Zone::Artifacts(repo), &item, &path)
                .await
                .unwrap()
        }
    });
    let written = futures_util::future::join_all(writes).await;
    let evicted: usize = written.iter().map(|w| w.evicted.len()).sum();
    assert_eq!(evicted, 9);
    let (count, total): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(size), 0)::bigint FROM cache_artifacts WHERE repository_id = $1",
    )
    .bind(repo)
    .fetch_one(&c.t.app().db)
    .await
    .unwrap();
    assert_eq!((count, total), (3, 90));
    // A blob whose row never came (a crash between the two) goes after its grace.
    let orphan =
        cocov::storage::BlobKey::new(&format!("cache/artifacts/{repo}/1000-dead")).unwrap();
    c.t.app().storage.put(&orphan, "x".into()).await.unwrap();
    let fresh = cocov::storage::BlobKey::new(&format!(
        "cache/artifacts/{repo}/{}-busy",
        time::OffsetDateTime::now_utc().unix_timestamp()
    ))
    .unwrap();
    c.t.app().storage.put(&fresh, "x".into()).await.unwrap();
    // (The reconciler's pass runs the same sweep and may get there first.)
    cocov::cache::sweep::sweep_orphans(c.t.app()).await.unwrap();
    assert!(!c.t.app().storage.exists(&orphan).await.unwrap());
    assert!(c.t.app().storage.exists(&fresh).await.unwrap());
    let left =
        c.t.app()
            .storage
            .list(&cocov::storage::BlobPrefix::new("cache/").unwrap())
            .await
            .unwrap();
    assert_eq!(left.len(), 4, "three items and the write in progress");
    c.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_routes_answer_each_role_and_purge_and_evict_are_audited() {
    let c = start(|_| {}).await;
    let origin = Origin::new();
    let (answers, _) = c
        .run(
            &origin,
            "roles",
            &[
                step("POST", "/artifact/one", Some("1")),
                step("POST", "/artifact/two", Some("22")),
                step("POST", "/tool/t", Some("tool")),
            ],
        )
        .await;
    assert!(answers.iter().all(|a| a.starts_with("204")), "{answers:?}");
    let t = &c.t;
    let db = &t.app().db;
    let member = t.user_token("member", false).await;
    let maintainer = t.user_token("maintainer", false).await;
    let owner = t.user_token("owner", false).await;
    let outsider = t.user_token("outsider", false).await;
    let service = common::requests::service_token(t).await;
    for (login, level) in [
        ("member", "user"),
        ("maintainer", "maintainer"),
        ("owner", "admin"),
    ] {
        common::requests::add_member(t, "roles", login, level).await;
    }
    let one: i64 = sqlx::query_scalar("SELECT id FROM cache_artifacts WHERE name_hash = 'one'")
        .fetch_one(db)
        .await
        .unwrap();
    let tool: i64 = sqlx::query_scalar("SELECT id FROM cache_tools WHERE name_hash = 't'")
        .fetch_one(db)
        .await
        .unwrap();
    use reqwest::Method;
    let list = "/v1/repositories/roles/settings/cache".to_string();
    let purge = "/v1/repositories/roles/settings/cache/purge".to_string();
    let evict = format!("/v1/repositories/roles/settings/cache/{one}");
    let tools = "/v1/admin/tool_cache".to_string();
    let tools_purge = "/v1/admin/tool_cache/purge".to_string();
    let tool_evict = format!("/v1/admin/tool_cache/{tool}");
    let anonymous = String::new();
    let admin = c.admin.clone();
    // (method, path, caller, expected), in order: the last ones change state.
    let cases: Vec<(Method, &String, &String, u16)> = vec![
        (Method::GET, &list, &anonymous, 401),
        (Method::GET, &list, &outsider, 404),
        (Method::GET, &list, &member, 200),
        (Method::GET, &list, &maintainer, 200),
        (Method::GET, &list, &owner, 200),
        (Method::GET, &list, &service, 200),
        (Method::GET, &list, &admin, 200),
        (Method::GET, &tools, &anonymous, 401),
        (Method::GET, &tools, &owner, 403),
        (Method::GET, &tools, &service, 403),
        (Method::GET, &tools, &admin, 200),
        (Method::DELETE, &evict, &anonymous, 401),
        (Method::DELETE, &evict, &outsider, 404),
        (Method::DELETE, &evict, &member, 403),
        (Method::DELETE, &evict, &maintainer, 403),
        (Method::DELETE, &evict, &service, 403),
        (Method::DELETE, &evict, &owner, 204),
        (Method::DELETE, &evict, &admin, 404),
        (Method::POST, &purge, &anonymous, 401),
        (Method::POST, &purge, &member, 403),
        (Method::POST, &purge, &maintainer, 403),
        (Method::POST, &purge, &service, 403),
        (Method::POST, &purge, &admin, 204),
        (Method::DELETE, &tool_evict, &owner, 403),
        (Method::DELETE, &tool_evict, &service, 403),
        (Method::POST, &tools_purge, &owner, 403),
        (Method::DELETE, &tool_evict, &admin, 204),
        (Method::POST, &tools_purge, &admin, 204),
    ];
    for (method, path, who, expected) in cases {
        let mut request = t.client.request(method.clone(), t.url(path));
        if !who.is_empty() {
            request = request.header("authorization", format!("bearer {who}"));
        }
        let status = request.send().await.unwrap().status().as_u16();
        assert_eq!(status, expected, "{method} {path}");
    }
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM cache_artifacts) + (SELECT COUNT(*) FROM cache_tools)",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(left, 0);
    let blobs = t
        .app()
        .storage
        .list(&cocov::storage::BlobPrefix::new("cache/").unwrap())
        .await
        .unwrap();
    assert!(blobs.is_empty(), "{blobs:?}");
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'cache.%' ORDER BY id")
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(
        actions,
        [
            "cache.evict",
            "cache.purge",
            "cache.evict_tool",
            "cache.purge_tools"
        ]
    );
    let (status, body) = get(t, Some(&admin), "/v1/repositories/roles/settings/cache").await;
    assert_eq!(
        (status, body["storage_used"].clone()),
        (StatusCode::OK, json!(0))
    );
    c.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_lists_evicts_and_purges_and_names_bad_input() {
    let c = start(|_| {}).await;
    let origin = Origin::new();
    c.run(
        &origin,
        "cli",
        &[
            step("POST", "/artifact/one", Some("1")),
            step("POST", "/artifact/two", Some("22")),
        ],
    )
    .await;
    let config = tempfile::NamedTempFile::new().unwrap();
    let mut text = toml::to_string(&*c.t.app().config).unwrap();
    text.push('\n');
    std::fs::write(config.path(), text).unwrap();
    let cocov = |args: &[&str]| {
        let out = common::cocov_command()
            .arg("--config")
            .arg(config.path())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, listed, err) = cocov(&["cache", "list", "cli"]);
    assert!(ok, "{err}");
    assert!(listed.contains("2 item(s), 3 bytes (no quota)"), "{listed}");
    let id: i64 = sqlx::query_scalar("SELECT id FROM cache_artifacts WHERE name_hash = 'two'")
        .fetch_one(&c.t.app().db)
        .await
        .unwrap();
    let (ok, _, err) = cocov(&["cache", "evict", "cli", "--id", &id.to_string()]);
    assert!(ok, "{err}");
    let (ok, _, err) = cocov(&["cache", "evict", "cli", "--id", &id.to_string()]);
    assert!(!ok && err.contains("--id"), "{err}");
    let (ok, _, err) = cocov(&["cache", "list", "nope"]);
    assert!(!ok && err.contains("no repository named `nope`"), "{err}");
    let (ok, _, err) = cocov(&["cache", "purge"]);
    assert!(!ok && err.contains("--tools"), "{err}");
    let (ok, out, err) = cocov(&["cache", "purge", "cli"]);
    assert!(ok && out.contains("removed 1 item(s)"), "{out}{err}");
    let (_, listed, _) = cocov(&["cache", "list", "cli"]);
    assert!(listed.contains("0 item(s), 0 bytes"), "{listed}");
    c.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_round_trip_through_an_s3_store() {
    let server = common::s3_servers::S3Server::s3s_fs().await;
    let s3 = server.config(&common::s3_servers::unique_bucket());
    let c = start(move |config| {
        config.storage.mode = cocov::config::StorageMode::S3;
        config.storage.s3 = s3;
    })
    .await;
    let origin = Origin::new();
    let (first, _) = c
        .run(
            &origin,
            "s3",
            &[step("POST", "/artifact/deps", Some("kept in a bucket"))],
        )
        .await;
    assert!(first[0].starts_with("204"), "{first:?}");
    let (second, _) = c
        .run(&origin, "s3", &[step("GET", "/artifact/deps", None)])
        .await;
    assert_eq!(second[0], "200 kept in a bucket text/plain");
    let engine: String = sqlx::query_scalar("SELECT engine::text FROM cache_artifacts")
        .fetch_one(&c.t.app().db)
        .await
        .unwrap();
    assert_eq!(engine, "s3");
    c.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_cache_gives_plugins_no_url() {
    let c = start(|config| config.cache.enabled = false).await;
    let origin = Origin::new();
    let (answers, _) = c
        .run(&origin, "off", &[step("GET", "/artifact/x", None)])
        .await;
    assert_eq!(answers, ["no-cache"]);
    let (status, body) = get(&c.t, Some(&c.admin), "/v1/repositories/off/settings/cache").await;
    assert_eq!(
        (status, body["enabled"].clone()),
        (StatusCode::OK, json!(false))
    );
    c.t.shutdown().await;
}

/// The relay on an image's root (busybox only: no glibc, no `cocov`), with and without the
/// host's network: it runs through the host's loader, forwards to the bound socket, and names
/// its address in `COCOV_CACHE_SERVICE_URL`.
#[tokio::test(flavor = "multi_thread")]
async fn the_relay_runs_on_an_image_root_with_and_without_the_hosts_network() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(root.path().join("bin")).unwrap();
    std::fs::copy("/usr/bin/busybox", root.path().join("bin/busybox")).unwrap();
    for tool in ["sh", "wget", "cat", "cp", "printf", "echo"] {
        std::os::unix::fs::symlink("busybox", root.path().join("bin").join(tool)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let socket = dir.path().join("cache.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let server = tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let n = stream.read(&mut request).await.unwrap();
            let line = String::from_utf8_lossy(&request[..n])
                .lines()
                .next()
                .unwrap()
                .to_string();
            let body = format!("served {line}");
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).await.unwrap();
        }
    });
    let config = cocov::config::WorkerConfig::default();
    let definition: cocov::plugins::PluginDefinition =
        toml::from_str("name = \"t/relay\"\ncommand = \"/bin/sh\"\n").unwrap();
    for network in [false, true] {
        let spec = cocov::sandbox::SandboxSpec {
            command: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                "echo \"url=$COCOV_CACHE_SERVICE_URL\"; wget -q -O - \"$COCOV_CACHE_SERVICE_URL/tool/x\"".into(),
            ],
            env: vec![("PATH".into(), "/bin".into())],
            chdir: "/".into(),
            binds: Vec::new(),
            work_copy: None,
            collect: None,
            network,
            relay: Some(cocov::sandbox::Relay {
                socket: socket.clone(),
                port: 5000,
                binary: Some(env!("CARGO_BIN_EXE_cocov").into()),
            }),
            rootfs: Some(root.path().to_path_buf()),
            policy: cocov::checks::sandbox_policy(&config, &definition),
            timeout: Duration::from_secs(30),
            output_cap: 1 << 20,
        };
        let outcome = cocov::sandbox::run(&spec, std::future::pending())
            .await
            .unwrap();
        let log = outcome.log();
        assert_eq!(outcome.ending, cocov::sandbox::Ending::Exited(0), "{log}");
        assert!(log.contains("served GET /tool/x HTTP/1.1"), "{log}");
        // Its own loopback gets the fixed port; the host's, any free one.
        assert_eq!(
            log.contains("url=http://127.0.0.1:5000\n"),
            !network,
            "{log}"
        );
    }
    server.abort();
}

/// The job id opens the cache while its set runs, and nothing once the set is canceled.
#[tokio::test(flavor = "multi_thread")]
async fn a_running_sets_job_id_is_revoked_when_the_set_is_canceled() {
    let c = start(|_| {}).await;
    let origin = Origin::new();
    let sha = c.push(&origin, "cancel", &[json!({ "sleep": 120 })]).await;
    let db = &c.t.app().db;
    let job: uuid::Uuid = common::eventually(
        "the plugin to be running",
        Duration::from_secs(60),
        || async {
            sqlx::query_scalar(
                "SELECT s.job_id FROM check_sets s JOIN commits c ON c.id = s.commit_id \
                 JOIN checks k ON k.check_set_id = s.id \
                 WHERE c.sha = $1::citext AND k.status = 'in_progress'",
            )
            .bind(&sha)
            .fetch_optional(db)
            .await
            .unwrap()
        },
    )
    .await;
    let store = format!(
        "POST /artifact/from-outside HTTP/1.1\r\nHost: cache\r\nCocov-Job-ID: {job}\r\n\
         Content-Type: text/plain\r\nFilename: outside\r\nContent-Length: 2\r\n\
         Connection: close\r\n\r\nok"
    );
    assert_eq!(c.raw(&store).await.0, 204);
    let load = format!(
        "GET /artifact/from-outside HTTP/1.1\r\nHost: cache\r\nCocov-Job-ID: {job}\r\n\
         Connection: close\r\n\r\n"
    );
    let (status, body) = c.raw(&load).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let canceled =
        c.t.client
            .delete(c.t.url(&format!("/v1/repositories/cancel/commits/{sha}/checks")))
            .header("authorization", format!("bearer {}", c.admin))
            .send()
            .await
            .unwrap()
            .status();
    assert!(canceled.is_success(), "{canceled}");
    let (status, body) = c.raw(&load).await;
    assert_eq!((status, code_of(&body).as_str()), (403, "forbidden"));
    c.t.shutdown().await;
}
