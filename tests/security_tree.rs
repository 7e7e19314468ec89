//! Issue 11, items 2 and 4, as attacks on the real daemon: a commit cannot reach outside its own
//! tree (links judged by what they resolve to, the manifest read once without following links),
//! and a manifest cannot turn the sandbox against itself (reserved environment variables,
//! organisation secrets only where granted). Real git, PostgreSQL, Redis and bubblewrap.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::TestApp;
use common::origin::{Origin, announce_main, register};
use common::requests::{admin_token, call};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A plugin that reports, as one issue, what its environment and its `~/.token` hold.
const PROBE: &str = "name = \"acme/probe\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", '''\
    if [ -r \"$HOME/.token\" ]; then h=$(sha256sum < \"$HOME/.token\" | cut -c1-64); else h=absent; fi; \
    printf '{\"kind\":\"security\",\"file\":\"x.sh\",\"line_start\":1,\"line_end\":1,\"message\":\"token=%s pp=%s ld=%s\",\"uid\":\"probe\"}\\0' \
    \"$h\" \"$PYTHONPATH\" \"$LD_PRELOAD\" > \"$COCOV_OUTPUT_FILE\"''']\n";

async fn start() -> (TestApp, tempfile::TempDir) {
    let plugins = tempfile::tempdir().unwrap();
    std::fs::write(plugins.path().join("probe.toml"), PROBE).unwrap();
    let dir = plugins.path().to_path_buf();
    let t = TestApp::start_with(move |c| {
        c.worker.plugins_dir = dir;
        c.security.cryptographic_key = "cd".repeat(32);
    })
    .await;
    (t, plugins)
}

/// Registers `name` on `origin`, lets `prepare` shape the work tree (files, links), commits,
/// pushes and announces; returns the sha.
async fn push(t: &TestApp, origin: &Origin, name: &str, prepare: impl FnOnce(&Path)) -> String {
    prepare(&origin.work);
    let sha = origin.commit(&[], "commit");
    let (_, token) = register(t, name, &origin.url()).await;
    announce_main(t, name, &token, &sha).await;
    sha
}

/// The commit's check set once it has ended, within `deadline`.
async fn ended_set(t: &TestApp, admin: &str, name: &str, sha: &str, deadline: u64) -> Value {
    let path = format!("/v1/repositories/{name}/commits/{sha}/checks");
    common::eventually(
        "the check set to end",
        Duration::from_secs(deadline),
        || async {
            let (status, body) = call(t, Method::GET, &path, Some(admin), None).await;
            let done = status == StatusCode::OK
                && matches!(
                    body["status"].as_str(),
                    Some("completed" | "errored" | "canceled" | "not_configured")
                );
            done.then_some(body)
        },
    )
    .await
}

/// Every error text stored about the commit: set, checks, ingestion, statuses.
async fn stored_errors(t: &TestApp, sha: &str) -> String {
    let rows: Vec<(Option<String>,)> = sqlx::query_as(
        "SELECT s.error_extra FROM check_sets s JOIN commits c ON c.id = s.commit_id \
         WHERE c.sha = $1::citext \
         UNION ALL SELECT k.error_output FROM checks k JOIN check_sets s ON s.id = k.check_set_id \
         JOIN commits c ON c.id = s.commit_id WHERE c.sha = $1::citext \
         UNION ALL SELECT ingest_error FROM commits WHERE sha = $1::citext \
         UNION ALL SELECT st.description FROM commit_statuses st JOIN commits c ON c.id = st.commit_id \
         WHERE c.sha = $1::citext",
    )
    .bind(sha)
    .fetch_all(&t.app().db)
    .await
    .unwrap();
    rows.into_iter()
        .filter_map(|(r,)| r)
        .collect::<Vec<_>>()
        .join("\n")
}

fn link(work: &Path, name: &str, target: &str) {
    std::os::unix::fs::symlink(target, work.join(name)).unwrap();
}

/// A `.cocov.yaml` link whose *text* is a valid manifest (git hands a link's text on as its
/// content) and whose resolution, through `a -> .` repeated, climbs from the tree to `host`.
/// Lexically it never leaves the tree: as many `a/` as `../`.
fn manifest_link_to(work: &Path, host: &str) {
    // One path component: no `/`, and no newline (which tar readers mishandle in long links);
    // the rest of the link's text is a YAML comment.
    let yaml = "{version: \"0.1.alpha\", checks: [{plugin: probe}]} #";
    // The first component is a link to `.` named with the manifest's text.
    link(work, yaml, ".");
    link(work, "a", ".");
    let target = format!(
        "{yaml}/{}{}{}",
        // Under the kernel's 40 links per lookup, over any work directory's depth.
        "a/".repeat(30),
        "../".repeat(31),
        host.trim_start_matches('/')
    );
    link(work, ".cocov.yaml", &target);
    std::fs::write(work.join("x.sh"), "true\n").unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_linked_to_dev_zero_ends_errored_and_the_daemon_stays_up() {
    let (t, _plugins) = start().await;
    let admin = admin_token(&t).await;
    let origin = Origin::new();
    let sha = push(&t, &origin, "zero", |w| manifest_link_to(w, "/dev/zero")).await;
    let set = ended_set(&t, &admin, "zero", &sha, 60).await;
    let errors = stored_errors(&t, &sha).await;
    assert_eq!(set["status"], "errored", "{set}\n{errors}");
    assert_eq!(
        set["failure_reason"], "manifest_not_a_file",
        "{set}\n{errors}"
    );
    assert!(errors.contains("not a regular file"), "{errors}");
    // The daemon still answers, and a re-run (which reads the archive again) says the same.
    let (status, _) = call(
        &t,
        Method::POST,
        &format!("/v1/repositories/zero/commits/{sha}/checks/re_run"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let set = ended_set(&t, &admin, "zero", &sha, 60).await;
    assert_eq!(set["failure_reason"], "manifest_not_a_file", "{set}");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_linked_to_a_host_file_ends_errored_without_leaking_it() {
    let (t, _plugins) = start().await;
    let admin = admin_token(&t).await;
    let origin = Origin::new();
    let sha = push(&t, &origin, "passwd", |w| {
        manifest_link_to(w, "/etc/passwd")
    })
    .await;
    let set = ended_set(&t, &admin, "passwd", &sha, 60).await;
    let errors = stored_errors(&t, &sha).await;
    assert_eq!(set["status"], "errored", "{set}\n{errors}");
    assert_eq!(
        set["failure_reason"], "manifest_not_a_file",
        "{set}\n{errors}"
    );
    let host = std::fs::read_to_string("/etc/passwd").unwrap();
    let first = host.lines().next().unwrap();
    assert!(
        !errors.contains(first) && !errors.contains("root:"),
        "{errors}"
    );
    // A plain link to a file inside the repository is not followed either.
    let inside = Origin::new();
    let sha = push(&t, &inside, "inside", |w| {
        std::fs::write(
            w.join("real.yaml"),
            "version: \"0.1.alpha\"\nchecks:\n  - plugin: acme/probe\n",
        )
        .unwrap();
        link(w, ".cocov.yaml", "real.yaml");
    })
    .await;
    let set = ended_set(&t, &admin, "inside", &sha, 60).await;
    assert_eq!(set["failure_reason"], "manifest_not_a_file", "{set}");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_chain_out_of_the_tree_is_refused_before_any_plugin_runs() {
    let (t, _plugins) = start().await;
    let admin = admin_token(&t).await;
    let origin = Origin::new();
    let sha = push(&t, &origin, "chain", |w| {
        std::fs::write(
            w.join(".cocov.yaml"),
            "version: \"0.1.alpha\"\nchecks:\n  - plugin: acme/probe\n",
        )
        .unwrap();
        std::fs::write(w.join("x.sh"), "true\n").unwrap();
        link(w, "a", ".");
        link(w, "x", "a/a/a/../../..");
        // A file read through the chain.
        link(w, "leak", "x/etc/passwd");
    })
    .await;
    let set = ended_set(&t, &admin, "chain", &sha, 60).await;
    assert_eq!(set["status"], "errored", "{set}");
    let errors = stored_errors(&t, &sha).await;
    assert!(
        errors.contains("points outside the tree") && !errors.contains("root:"),
        "{errors}"
    );
    let issues: i64 = sqlx::query_scalar("SELECT count(*) FROM issues")
        .fetch_one(&t.app().db)
        .await
        .unwrap();
    assert_eq!(issues, 0, "the plugin never ran");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn loader_and_interpreter_variables_from_the_manifest_never_reach_a_plugin() {
    let (t, _plugins) = start().await;
    let admin = admin_token(&t).await;
    let origin = Origin::new();
    let sha = push(&t, &origin, "preload", |w| {
        std::fs::write(
            w.join(".cocov.yaml"),
            "version: \"0.1.alpha\"\nchecks:\n  - plugin: acme/probe\n    envs:\n\
             \x20     LD_PRELOAD: /work/evil.so\n      PYTHONPATH: /work/evil\n",
        )
        .unwrap();
        std::fs::write(w.join("x.sh"), "true\n").unwrap();
    })
    .await;
    let set = ended_set(&t, &admin, "preload", &sha, 60).await;
    assert_eq!(set["status"], "errored", "{set}");
    assert_eq!(
        set["failure_reason"], "manifest_invalid_or_missing_data",
        "{set}"
    );
    let details = set["failure_details"].as_str().unwrap_or_default();
    assert!(details.contains("checks.0.envs.LD_PRELOAD"), "{set}");
    let issues: i64 = sqlx::query_scalar("SELECT count(*) FROM issues")
        .fetch_one(&t.app().db)
        .await
        .unwrap();
    assert_eq!(issues, 0, "the plugin never ran");
    t.shutdown().await;
}

async fn probe_message(t: &TestApp, admin: &str, name: &str, sha: &str) -> String {
    let (status, body) = call(
        t,
        Method::GET,
        &format!("/v1/repositories/{name}/commits/{sha}/issues"),
        Some(admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["issues"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn rerun(t: &TestApp, admin: &str, name: &str, sha: &str) {
    let (status, body) = call(
        t,
        Method::POST,
        &format!("/v1/repositories/{name}/commits/{sha}/checks/re_run"),
        Some(admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organisation_secret_reaches_only_repositories_it_is_granted_to() {
    let (t, _plugins) = start().await;
    let admin = admin_token(&t).await;
    let plaintext = "org-wide-s3cr3t";
    let (status, body) = call(
        &t,
        Method::POST,
        "/v1/secrets",
        Some(&admin),
        Some(json!({"name": "ORG_TOKEN", "data": plaintext})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["all_repositories"], false, "{body}");
    let manifest = "version: \"0.1.alpha\"\nchecks:\n  - plugin: acme/probe\n    mounts:\n\
        \x20     - source: secrets:ORG_TOKEN\n        destination: ~/.token\n";
    let origin = Origin::new();
    let sha = push(&t, &origin, "ungranted", |w| {
        std::fs::write(w.join(".cocov.yaml"), manifest).unwrap();
        std::fs::write(w.join("x.sh"), "true\n").unwrap();
    })
    .await;
    let set = ended_set(&t, &admin, "ungranted", &sha, 60).await;
    assert_eq!(set["status"], "errored", "{set}");
    assert_eq!(set["failure_reason"], "manifest_unknown_secret", "{set}");
    assert_eq!(probe_message(&t, &admin, "ungranted", &sha).await, "");

    // Granted: the re-run mounts it.
    let (status, body) = call(
        &t,
        Method::POST,
        "/v1/secrets/ORG_TOKEN/grants",
        Some(&admin),
        Some(json!({"repository": "ungranted"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["grants"][0]["repository"], "ungranted", "{body}");
    rerun(&t, &admin, "ungranted", &sha).await;
    let set = ended_set(&t, &admin, "ungranted", &sha, 120).await;
    assert_eq!(set["status"], "completed", "{set}");
    let expected = cocov::auth::tokens::hash_bytes(plaintext.as_bytes());
    let message = probe_message(&t, &admin, "ungranted", &sha).await;
    assert!(
        message.starts_with(&format!("token={expected}")),
        "{message}"
    );

    // Revoked: the value no longer reaches the sandbox, even if the set was already queued.
    let (status, _) = call(
        &t,
        Method::DELETE,
        "/v1/secrets/ORG_TOKEN/grants/ungranted",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    rerun(&t, &admin, "ungranted", &sha).await;
    let set = ended_set(&t, &admin, "ungranted", &sha, 60).await;
    assert_eq!(set["failure_reason"], "manifest_unknown_secret", "{set}");

    // All repositories (what secrets from before grants get): usable everywhere again.
    let (status, body) = call(
        &t,
        Method::PATCH,
        "/v1/secrets/ORG_TOKEN",
        Some(&admin),
        Some(json!({"all_repositories": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["all_repositories"], true, "{body}");
    rerun(&t, &admin, "ungranted", &sha).await;
    let set = ended_set(&t, &admin, "ungranted", &sha, 120).await;
    assert_eq!(set["status"], "completed", "{set}");

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'secret.%' ORDER BY id")
            .fetch_all(&t.app().db)
            .await
            .unwrap();
    assert_eq!(
        actions,
        [
            "secret.write",
            "secret.grant",
            "secret.revoke",
            "secret.scope"
        ]
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grant_routes_answer_each_role() {
    let (t, _plugins) = start().await;
    let db = &t.app().db;
    let admin = admin_token(&t).await;
    let user = t.user_token("plain-user", false).await;
    let (_, service) =
        cocov::auth::service_tokens::create(db, "ci", None, &cocov::audit::AuditActor::system())
            .await
            .unwrap();
    let origin = Origin::new();
    register(&t, "granted", &origin.url()).await;
    let (status, _) = call(
        &t,
        Method::POST,
        "/v1/secrets",
        Some(&admin),
        Some(json!({"name": "NPM", "data": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let grant = json!({"repository": "granted"});
    let reach = json!({"all_repositories": false});
    let routes: Vec<(Method, &str, Option<Value>, StatusCode)> = vec![
        (Method::GET, "/v1/secrets/NPM/grants", None, StatusCode::OK),
        (
            Method::POST,
            "/v1/secrets/NPM/grants",
            Some(grant.clone()),
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            "/v1/secrets/NPM",
            Some(reach.clone()),
            StatusCode::OK,
        ),
        (
            Method::DELETE,
            "/v1/secrets/NPM/grants/granted",
            None,
            StatusCode::NO_CONTENT,
        ),
    ];
    for (method, path, body, ok) in routes {
        for (who, token, expected) in [
            ("anonymous", None, StatusCode::UNAUTHORIZED),
            ("user", Some(user.as_str()), StatusCode::FORBIDDEN),
            ("service", Some(service.as_str()), StatusCode::FORBIDDEN),
            ("admin", Some(admin.as_str()), ok),
        ] {
            let (status, answer) = call(&t, method.clone(), path, token, body.clone()).await;
            assert_eq!(status, expected, "{who} {method} {path}: {answer}");
            if status.is_client_error() {
                assert!(answer["code"].is_string(), "{answer}");
            }
        }
    }
    // Bad input: 4xx with a code, nothing written.
    let bad: Vec<(Method, &str, Option<Value>, StatusCode)> = vec![
        (
            Method::POST,
            "/v1/secrets/NOPE/grants",
            Some(grant.clone()),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/v1/secrets/NPM/grants",
            Some(json!({"repository": "nope"})),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/v1/secrets/NPM/grants",
            Some(json!({"repo": "granted"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            "/v1/secrets/NPM",
            Some(json!({"all_repositories": "yes"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            "/v1/secrets/NPM/grants/granted",
            None,
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, path, body, expected) in bad {
        let (status, answer) = call(&t, method.clone(), path, Some(&admin), body).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        assert!(answer["code"].is_string(), "{answer}");
    }
    let grants: i64 = sqlx::query_scalar("SELECT count(*) FROM secret_grants")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(grants, 0);
    t.shutdown().await;
}

/// Inserts a sealed-looking secret row as it was before grants existed.
async fn old_secret(pool: &sqlx::PgPool, repository: Option<i64>, name: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO secrets (scope, name, repository_id, ciphertext, nonce, key_id) \
         VALUES (CASE WHEN $2::bigint IS NULL THEN 'organization' ELSE 'repository' END, \
                 $1, $2, 'x', $3, 'k1') RETURNING id",
    )
    .bind(name)
    .bind(repository)
    .bind(vec![7u8; 12])
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn repository_row(pool: &sqlx::PgPool, name: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO repositories (name, git_url, default_branch, upload_token_hash) \
         VALUES ($1, 'https://git.example.com/x.git', 'main', $2) RETURNING id",
    )
    .bind(name)
    .bind(cocov::auth::tokens::hash_bytes(name.as_bytes()))
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn organisation_secrets_from_before_grants_keep_working_everywhere() {
    // The schema as it was before this change, with a secret of each scope.
    let db = common::TestDb::empty().await;
    let before = tempfile::tempdir().unwrap();
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(&migrations).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.as_str() < "20261205000002" {
            std::fs::copy(&path, before.path().join(&name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(before.path())
        .await
        .unwrap()
        .run(&db.pool)
        .await
        .unwrap();
    let pool = &db.pool;
    let old_repo = repository_row(pool, "old").await;
    old_secret(pool, None, "LEGACY").await;
    old_secret(pool, Some(old_repo), "OWN").await;

    cocov::db::migrate(&db.config).await.unwrap();
    let flags: Vec<(String, bool)> =
        sqlx::query_as("SELECT name::text, all_repositories FROM secrets ORDER BY name")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        flags,
        [("LEGACY".to_string(), true), ("OWN".to_string(), false)]
    );
    // Any repository, even one registered later, still finds the old organisation secret; a
    // new one is found nowhere until granted.
    let new_repo = repository_row(pool, "new").await;
    old_secret(pool, None, "FRESH").await;
    sqlx::query("UPDATE secrets SET all_repositories = false WHERE name = 'FRESH'")
        .execute(pool)
        .await
        .unwrap();
    for repo in [old_repo, new_repo] {
        let missing = cocov::secrets::missing_for_repository(pool, repo, &["LEGACY".to_string()])
            .await
            .unwrap();
        assert_eq!(missing, None);
        let missing = cocov::secrets::missing_for_repository(pool, repo, &["FRESH".to_string()])
            .await
            .unwrap();
        assert_eq!(missing.as_deref(), Some("FRESH"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_manage_grants_from_the_command_line() {
    let db = common::TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cocov.toml");
    std::fs::write(&config, "").unwrap();
    let cli = |args: &[&str]| {
        let out = common::cocov_command()
            .env("COCOV_CONFIG", &config)
            .env("COCOV_DATABASE_URL", &db.config.url)
            .env("COCOV_REDIS_URL", common::test_redis_url())
            .args(["admin", "secret"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let pool = &db.pool;
    repository_row(pool, "web").await;
    old_secret(pool, None, "NPM").await;
    sqlx::query("UPDATE secrets SET all_repositories = false")
        .execute(pool)
        .await
        .unwrap();

    let (code, out, err) = cli(&["grant", "NPM", "web"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("granted to") && out.contains("web"), "{out}");
    let (code, out, _) = cli(&["grants", "NPM"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("web"), "{out}");
    let (code, out, _) = cli(&["all-repositories", "NPM", "true"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("every repository"), "{out}");
    let (code, out, err) = cli(&["revoke", "NPM", "web"]);
    assert_eq!(code, Some(0), "{out}{err}");

    // Mistakes: a clear message, a non-zero status, nothing written.
    for (args, message) in [
        (&["revoke", "NPM", "web"][..], "is not granted to `web`"),
        (
            &["grant", "NOPE", "web"][..],
            "unknown organization secret `NOPE`",
        ),
        (&["grant", "NPM", "nope"][..], "unknown repository `nope`"),
    ] {
        let (code, out, err) = cli(args);
        assert_ne!(code, Some(0), "{args:?}: {out}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let grants: i64 = sqlx::query_scalar("SELECT count(*) FROM secret_grants")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(grants, 0);
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor_kind FROM audit_log WHERE action LIKE 'secret.%' ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let actions: Vec<&str> = audited.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["secret.grant", "secret.scope", "secret.revoke"]);
    assert!(audited.iter().all(|(_, kind)| kind == "cli"), "{audited:?}");
}
