//! Checks end to end: a pushed commit whose manifest names plugins gets them run by the worker
//! in bubblewrap sandboxes with the real linters, its issues through the API and a `cocov`
//! status; hostile plugins are contained; secrets reach only the check that mounts them.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::TestApp;
use common::origin::{Origin, announce_main, register};
use common::requests::{admin_token, check_of, errored_check_output, get};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A daemon whose plugin directory holds `plugins` (file name → TOML).
async fn start(
    plugins: &[(&str, &str)],
    adjust: impl FnOnce(&mut cocov::config::Config),
) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in plugins {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let plugins_dir = dir.path().to_path_buf();
    let t = TestApp::start_with(move |c| {
        c.worker.plugins_dir = plugins_dir;
        c.security.cryptographic_key = "ab".repeat(32);
        adjust(c);
    })
    .await;
    (t, dir)
}

/// Registers `name`, commits `files` and announces the push; returns the sha and admin token.
async fn push(
    t: &TestApp,
    origin: &Origin,
    name: &str,
    files: &[(&str, &str)],
) -> (String, String) {
    let sha = origin.commit(files, "commit");
    let admin = admin_token(t).await;
    let exists = t
        .client
        .get(t.url(&format!("/v1/repositories/{name}")))
        .header("authorization", format!("bearer {admin}"))
        .send()
        .await
        .unwrap()
        .status()
        == StatusCode::OK;
    let token = if exists {
        regen(t, name, &admin).await
    } else {
        register(t, name, &origin.url()).await.1
    };
    announce_main(t, name, &token, &sha).await;
    (sha, admin)
}

async fn regen(t: &TestApp, name: &str, admin: &str) -> String {
    let resp = t
        .client
        .post(t.url(&format!("/v1/repositories/{name}/settings/regen-token")))
        .header("authorization", format!("bearer {admin}"))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    body["new_token"].as_str().unwrap().to_string()
}

/// Waits for the commit's check set to end; returns the checks view.
pub(crate) async fn finished_checks(t: &TestApp, token: &str, name: &str, sha: &str) -> Value {
    let path = format!("/v1/repositories/{name}/commits/{sha}/checks");
    common::eventually(
        "the check set to finish",
        Duration::from_secs(180),
        || async {
            let (status, body) = get(t, Some(token), &path).await;
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

async fn issues(t: &TestApp, token: &str, name: &str, sha: &str, query: &str) -> Value {
    let (status, body) = get(
        t,
        Some(token),
        &format!("/v1/repositories/{name}/commits/{sha}/issues?per_page=100{query}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The commit's `cocov` status once it has a result: the set is marked finished a moment before
/// its status is written.
async fn cocov_status(t: &TestApp, name: &str, sha: &str) -> (String, String) {
    common::eventually("a final cocov status", Duration::from_secs(30), || async {
        sqlx::query_as(
            "SELECT s.state, s.description FROM commit_statuses s \
             JOIN commits c ON c.id = s.commit_id JOIN repositories r ON r.id = c.repository_id \
             WHERE r.name = $1::citext AND c.sha = $2::citext AND s.context = 'cocov' \
             AND s.state <> 'pending'",
        )
        .bind(name)
        .bind(sha)
        .fetch_optional(&t.app().db)
        .await
        .unwrap()
    })
    .await
}

const SHELLCHECK_MANIFEST: &str =
    "version: \"0.1.alpha\"\nchecks:\n  - plugin: cocov/shellcheck:v0.1\n";

#[tokio::test(flavor = "multi_thread")]
async fn shellcheck_findings_become_issues_and_a_failing_status_and_a_fix_passes() {
    let (t, _plugins) = start(&[], |_| {}).await;
    let origin = Origin::new();
    let script = "#!/bin/sh\necho $1\ncd /tmp\n";
    let (sha, admin) = push(
        &t,
        &origin,
        "shelly",
        &[(".cocov.yaml", SHELLCHECK_MANIFEST), ("bin/run.sh", script)],
    )
    .await;
    let view = finished_checks(&t, &admin, "shelly", &sha).await;
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(check_of(&view, "cocov/shellcheck")["status"], "completed");

    let body = issues(&t, &admin, "shelly", &sha, "").await;
    let mut found: Vec<(String, i64, i64, String, String)> = body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["file"].as_str().unwrap().to_string(),
                i["line_start"].as_i64().unwrap(),
                i["line_end"].as_i64().unwrap(),
                i["kind"].as_str().unwrap().to_string(),
                i["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            (
                "bin/run.sh".into(),
                2,
                2,
                "style".into(),
                "Double quote to prevent globbing and word splitting. (SC2086)".into()
            ),
            (
                "bin/run.sh".into(),
                3,
                3,
                "quality".into(),
                "Use 'cd ... || exit' or 'cd ... || return' in case cd fails. (SC2164)".into()
            ),
        ]
    );
    assert_eq!(body["paging"]["total"], 2);
    assert_eq!(body["issues"][0]["check_source"], "cocov/shellcheck");
    assert_eq!(
        cocov_status(&t, "shelly", &sha).await,
        ("failure".into(), "2 issues found".into())
    );
    // Filters.
    let style = issues(&t, &admin, "shelly", &sha, "&category=style").await;
    assert_eq!(style["paging"]["total"], 1);
    let (status, body) = get(
        &t,
        Some(&admin),
        &format!("/v1/repositories/shelly/commits/{sha}/issues?category=nope"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "issues.invalid_kind");

    // The fix: the next commit is clean.
    let fixed = "#!/bin/sh\necho \"$1\"\ncd /tmp || exit 1\n";
    let (sha2, admin) = push(&t, &origin, "shelly", &[("bin/run.sh", fixed)]).await;
    let view = finished_checks(&t, &admin, "shelly", &sha2).await;
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(
        issues(&t, &admin, "shelly", &sha2, "").await["paging"]["total"],
        0
    );
    assert_eq!(
        cocov_status(&t, "shelly", &sha2).await,
        ("success".into(), "No issues found".into())
    );
    // Ignoring the first commit's issues: once, then for good by uid.
    let first = issues(&t, &admin, "shelly", &sha, "").await;
    let id = first["issues"][0]["id"].as_i64().unwrap();
    let resp = t
        .client
        .post(t.url(&format!(
            "/v1/repositories/shelly/commits/{sha}/issues/{id}/ignore"
        )))
        .header("authorization", format!("bearer {admin}"))
        .json(&json!({"mode": "permanent", "reason": "intended"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ignored: Value = resp.json().await.unwrap();
    assert_eq!(ignored["ignored"]["ignore_source"], "rule");
    assert_eq!(ignored["ignored"]["reason"], "intended");
    assert_eq!(
        cocov_status(&t, "shelly", &sha).await,
        ("failure".into(), "1 issue found".into())
    );
    let (_, rules) = get(&t, Some(&admin), "/v1/repositories/shelly/ignore_rules").await;
    assert_eq!(rules["rules"].as_array().unwrap().len(), 1, "{rules}");
    let states = get(
        &t,
        Some(&admin),
        &format!("/v1/repositories/shelly/commits/{sha}/issues/states"),
    )
    .await
    .1;
    assert_eq!(states, json!({"active": 1, "ignored": 1}));
    t.shutdown().await;
}

fn sarif_tool() -> String {
    // A tool that only speaks SARIF, defined in a few lines of TOML.
    let sarif = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"grep-todo"}},"results":[{"ruleId":"TODO1","level":"note","message":{"text":"TODO left in the code"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"app.py"},"region":{"startLine":1}}}]}]}]}"#;
    format!(
        "name = \"acme/grep-todo\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", '''printf '%s' '{sarif}' ''']\nformat = \"sarif\"\n[kinds]\n\"TODO*\" = \"convention\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_built_in_plugin_and_a_sarif_tool_report_real_findings() {
    assert!(
        common::linters_dir().is_some(),
        "ruff and bandit are missing: run scripts/install-test-tools.sh"
    );
    let sarif = sarif_tool();
    let (t, _plugins) = start(&[("grep-todo.toml", &sarif)], |_| {}).await;
    let origin = Origin::new();
    let manifest = "version: \"0.1.alpha\"\nchecks:\n\
        \x20 - plugin: cocov/shellcheck:v0.1\n\
        \x20 - plugin: cocov/ruff:v0.1\n\
        \x20 - plugin: cocov/yamllint:v0.1\n\
        \x20 - plugin: cocov/cppcheck:v0.1\n\
        \x20 - plugin: cocov/bandit:v0.1\n\
        \x20 - plugin: acme/grep-todo:v1\n";
    let files = [
        (".cocov.yaml", manifest),
        ("run.sh", "#!/bin/sh\necho $1\n"),
        (
            "app.py",
            "# TODO\nimport os\nimport subprocess\nsubprocess.call(\"ls\", shell=True)\n",
        ),
        ("conf/settings.yaml", "---\nkey: value\nkey: other\n"),
        (
            "src/main.c",
            "int main(void) {\n    int a[2];\n    a[5] = 1;\n    return a[0];\n}\n",
        ),
    ];
    let (sha, admin) = push(&t, &origin, "polyglot", &files).await;
    let view = finished_checks(&t, &admin, "polyglot", &sha).await;
    for c in view["checks"].as_array().unwrap() {
        if c["status"] != "completed" {
            let (_, one) = get(
                &t,
                Some(&admin),
                &format!("/v1/repositories/polyglot/commits/{sha}/checks/{}", c["id"]),
            )
            .await;
            panic!(
                "{} did not complete: {}",
                c["plugin_name"], one["error_output"]
            );
        }
    }
    let all = issues(&t, &admin, "polyglot", &sha, "").await;
    let by = |source: &str| -> Vec<Value> {
        all["issues"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["check_source"] == source)
            .cloned()
            .collect()
    };
    let has = |source: &str, file: &str, line: i64, kind: &str, text: &str| {
        assert!(
            by(source).iter().any(|i| i["file"] == file
                && i["line_start"] == line
                && i["kind"] == kind
                && i["message"].as_str().unwrap().contains(text)),
            "{source}: no {kind} issue at {file}:{line} containing {text:?} in {:#?}",
            by(source)
        );
    };
    has("cocov/shellcheck", "run.sh", 2, "style", "SC2086");
    has("cocov/ruff", "app.py", 2, "bug", "F401");
    has(
        "cocov/yamllint",
        "conf/settings.yaml",
        3,
        "bug",
        "duplication of key",
    );
    has(
        "cocov/cppcheck",
        "src/main.c",
        3,
        "bug",
        "arrayIndexOutOfBounds",
    );
    has("cocov/bandit", "app.py", 4, "security", "B602");
    has(
        "acme/grep-todo",
        "app.py",
        1,
        "convention",
        "TODO left in the code",
    );
    let (state, description) = cocov_status(&t, "polyglot", &sha).await;
    assert_eq!(state, "failure");
    assert_eq!(
        description,
        format!("{} issues found", all["paging"]["total"])
    );
    t.shutdown().await;
}

/// Plugin definitions that misbehave, each in its own way.
fn hostile_plugins() -> Vec<(&'static str, String)> {
    let def = |name: &str, script: &str, extra: &str| {
        format!(
            "name = \"evil/{name}\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", '''{script}''']\n{extra}\n"
        )
    };
    vec![
        (
            "reader.toml",
            def(
                "reader",
                "for f in /etc/cocov/cocov.toml /etc/shadow /root /var/lib/postgresql; do \
                 if cat $f 2>/dev/null || ls $f 2>/dev/null; then echo LEAKED $f; exit 0; fi; done; \
                 tr '\\0' '\\n' < /proc/1/environ | grep -i -e DATABASE -e REDIS -e KEY && exit 0; \
                 echo nothing readable; exit 3",
                "",
            ),
        ),
        (
            "network.toml",
            def(
                "network",
                "/usr/bin/python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 6379), 2); print(\"CONNECTED\")'; exit 4",
                "",
            ),
        ),
        (
            "forkbomb.toml",
            def(
                "forkbomb",
                "b() { b | b & }; b; sleep 60",
                "timeout_seconds = 4",
            ),
        ),
        (
            "filler.toml",
            def("filler", "exec yes cocov > $COCOV_WORKDIR/big", ""),
        ),
        ("shouter.toml", def("shouter", "yes cocov", "")),
        (
            "sleeper.toml",
            def("sleeper", "sleep 1000", "timeout_seconds = 2"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_plugins_are_contained_and_the_worker_keeps_serving() {
    let defs = hostile_plugins();
    let refs: Vec<(&str, &str)> = defs.iter().map(|(n, d)| (*n, d.as_str())).collect();
    let (t, _plugins) = start(&refs, |c| {
        c.worker.max_file_size_mb = 8;
        c.worker.max_output_mb = 1;
        c.worker.max_processes = 64;
        c.queue.concurrency = 2;
    })
    .await;
    let evil = Origin::new();
    let manifest = "version: \"0.1.alpha\"\nchecks:\n\
        \x20 - plugin: evil/reader\n  - plugin: evil/network\n  - plugin: evil/forkbomb\n\
        \x20 - plugin: evil/filler\n  - plugin: evil/shouter\n  - plugin: evil/sleeper\n";
    let (evil_sha, admin) = push(
        &t,
        &evil,
        "evil",
        &[(".cocov.yaml", manifest), ("x.sh", "true\n")],
    )
    .await;
    // Meanwhile an ordinary repository's checks run to the end.
    let good = Origin::new();
    let (good_sha, _) = push(
        &t,
        &good,
        "good",
        &[
            (".cocov.yaml", SHELLCHECK_MANIFEST),
            ("ok.sh", "#!/bin/sh\necho \"$1\"\n"),
        ],
    )
    .await;
    let good_view = finished_checks(&t, &admin, "good", &good_sha).await;
    assert_eq!(good_view["status"], "completed", "{good_view}");

    let view = finished_checks(&t, &admin, "evil", &evil_sha).await;
    assert_eq!(view["status"], "errored", "{view}");
    let reader = errored_check_output(&t, &admin, "evil", &evil_sha, &view, "evil/reader").await;
    assert!(
        reader.contains("nothing readable") && !reader.contains("LEAKED"),
        "{reader}"
    );
    let network = errored_check_output(&t, &admin, "evil", &evil_sha, &view, "evil/network").await;
    assert!(
        !network.contains("CONNECTED") && network.contains("Error"),
        "{network}"
    );
    let bomb = errored_check_output(&t, &admin, "evil", &evil_sha, &view, "evil/forkbomb").await;
    // Stopped either way: by the pids limit (the bomb gives up) or by the timeout (it keeps
    // retrying its forks until then), depending on how the shells race.
    assert!(
        bomb.contains("did not finish within 4 s") || bomb.contains("more than 64 processes"),
        "{bomb}"
    );
    let filler = errored_check_output(&t, &admin, "evil", &evil_sha, &view, "evil/filler").await;
    assert!(
        filler.contains("SIGXFSZ") || filler.contains("File size limit"),
        "{filler}"
    );
    let shouter = errored_check_output(&t, &admin, "evil", &evil_sha, &view, "evil/shouter").await;
    assert!(shouter.contains("printed more than 1 MiB"), "{shouter}");
    let sleeper = errored_check_output(&t, &admin, "evil", &evil_sha, &view, "evil/sleeper").await;
    assert!(sleeper.contains("did not finish within 2 s"), "{sleeper}");
    let (state, description) = cocov_status(&t, "evil", &evil_sha).await;
    assert_eq!(
        (state.as_str(), description.as_str()),
        ("error", "6 checks errored")
    );
    // Nothing the fork bomb started outlives its check.
    let leftovers = std::process::Command::new("pgrep")
        .args(["-f", "cocov-forkbomb"])
        .output()
        .unwrap();
    assert!(
        leftovers.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&leftovers.stdout)
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_reaches_only_the_check_that_mounts_it_and_is_stored_sealed() {
    let reader = "name = \"acme/secret-reader\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", '''\
        if [ -r \"$HOME/.token\" ]; then h=$(sha256sum < \"$HOME/.token\" | cut -c1-64); else h=absent; fi; \
        printf '{\"kind\":\"security\",\"file\":\"x.sh\",\"line_start\":1,\"line_end\":1,\"message\":\"%s\",\"uid\":\"%s-%s\"}\\0' \"$h\" \"$COCOV_JOB_IDENTIFIER\" \"$TAG\" > \"$COCOV_OUTPUT_FILE\"''']\n";
    let (t, _plugins) = start(&[("reader.toml", reader)], |_| {}).await;
    let origin = Origin::new();
    let admin = admin_token(&t).await;
    // Unknown secret first: the set errors and says which.
    let manifest = "version: \"0.1.alpha\"\nchecks:\n\
        \x20 - plugin: acme/secret-reader\n    envs:\n      TAG: with\n    mounts:\n\
        \x20     - source: secrets:DEPLOY_TOKEN\n        destination: ~/.token\n";
    let (sha, _) = push(
        &t,
        &origin,
        "vault",
        &[(".cocov.yaml", manifest), ("x.sh", "true\n")],
    )
    .await;
    let view = finished_checks(&t, &admin, "vault", &sha).await;
    assert_eq!(view["status"], "errored", "{view}");
    assert_eq!(view["failure_reason"], "manifest_unknown_secret");
    let (state, description) = cocov_status(&t, "vault", &sha).await;
    assert_eq!(state, "error");
    assert!(description.contains("DEPLOY_TOKEN"), "{description}");

    // The secret, written through the API, and a re-run.
    let plaintext = "s3cr3t-plaintext-value";
    let resp = t
        .client
        .post(t.url("/v1/repositories/vault/secrets"))
        .header("authorization", format!("bearer {admin}"))
        .json(&json!({"name": "DEPLOY_TOKEN", "data": plaintext}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body = resp.text().await.unwrap();
    assert!(!body.contains(plaintext), "{body}");
    let resp = t
        .client
        .post(t.url(&format!(
            "/v1/repositories/vault/commits/{sha}/checks/re_run"
        )))
        .header("authorization", format!("bearer {admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let view = finished_checks(&t, &admin, "vault", &sha).await;
    assert_eq!(view["status"], "completed", "{view}");
    let found = issues(&t, &admin, "vault", &sha, "").await;
    let expected = cocov::auth::tokens::hash_bytes(plaintext.as_bytes());
    assert_eq!(found["issues"][0]["message"], expected.as_str(), "{found}");

    // A second plugin in the same set without the mount sees nothing at that path.
    let reader2 = "version: \"0.1.alpha\"\nchecks:\n\
        \x20 - plugin: acme/secret-reader\n    envs:\n      TAG: without\n";
    let (sha2, _) = push(&t, &origin, "vault", &[(".cocov.yaml", reader2)]).await;
    finished_checks(&t, &admin, "vault", &sha2).await;
    let found = issues(&t, &admin, "vault", &sha2, "").await;
    assert_eq!(found["issues"][0]["message"], "absent", "{found}");

    // The plaintext is in no column of any table.
    let dump: Vec<(String,)> = sqlx::query_as(
        "SELECT row_to_json(t)::text FROM (SELECT * FROM secrets) t \
         UNION ALL SELECT row_to_json(t)::text FROM (SELECT * FROM audit_log) t \
         UNION ALL SELECT row_to_json(t)::text FROM (SELECT * FROM checks) t \
         UNION ALL SELECT row_to_json(t)::text FROM (SELECT * FROM issues) t",
    )
    .fetch_all(&t.app().db)
    .await
    .unwrap();
    assert!(!dump.is_empty());
    for (row,) in &dump {
        assert!(!row.contains(plaintext), "{row}");
        assert!(!row.contains(&hex::encode(plaintext)), "{row}");
    }
    let (_, listed) = get(&t, Some(&admin), "/v1/repositories/vault/secrets").await;
    assert_eq!(listed["secrets"][0]["name"], "DEPLOY_TOKEN");
    assert!(!listed.to_string().contains(plaintext));
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_plugin_errors_its_check_naming_the_known_ones() {
    let (t, _plugins) = start(&[], |_| {}).await;
    let origin = Origin::new();
    let manifest = "version: \"0.1.alpha\"\nchecks:\n  - plugin: cocov/rubocop:v0.1\n  - plugin: cocov/shellcheck:v0.1\n";
    let (sha, admin) = push(
        &t,
        &origin,
        "ruby",
        &[(".cocov.yaml", manifest), ("a.sh", "true\n")],
    )
    .await;
    let view = finished_checks(&t, &admin, "ruby", &sha).await;
    assert_eq!(view["status"], "errored");
    assert_eq!(check_of(&view, "cocov/shellcheck")["status"], "completed");
    let id = check_of(&view, "cocov/rubocop")["id"].as_i64().unwrap();
    let (_, c) = get(
        &t,
        Some(&admin),
        &format!("/v1/repositories/ruby/commits/{sha}/checks/{id}"),
    )
    .await;
    let output = c["error_output"].as_str().unwrap();
    assert!(
        output.contains("unknown plugin cocov/rubocop:v0.1") && output.contains("cocov/shellcheck"),
        "{output}"
    );
    let description = cocov_status(&t, "ruby", &sha).await.1;
    assert!(
        description.starts_with("cocov/rubocop errored: unknown plugin cocov/rubocop:v0.1"),
        "{description}"
    );
    // Re-running a finished set is allowed, and cancel of a finished one changes nothing.
    let resp = t
        .client
        .delete(t.url(&format!("/v1/repositories/ruby/commits/{sha}/checks")))
        .header("authorization", format!("bearer {admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // Anonymous and outsiders see nothing.
    let resp = t
        .client
        .get(t.url(&format!("/v1/repositories/ruby/commits/{sha}/checks")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    t.shutdown().await;
}

/// A worker that ends a set and dies before announcing it leaves the `cocov` status pending; its
/// job, delivered again, announces the stored result instead of doing nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_set_ended_without_its_status_is_announced_when_its_job_comes_back() {
    let (t, _plugins) = start(&[], |_| {}).await;
    let origin = Origin::new();
    let (sha, admin) = push(
        &t,
        &origin,
        "owed",
        &[(".cocov.yaml", SHELLCHECK_MANIFEST), ("a.sh", "echo $1\n")],
    )
    .await;
    let view = finished_checks(&t, &admin, "owed", &sha).await;
    assert_eq!(view["status"], "completed");
    let announced = cocov_status(&t, "owed", &sha).await;
    assert_eq!(announced.0, "failure");

    // The state a crash between ending the set and announcing it leaves behind.
    let (set_id, job_id): (i64, uuid::Uuid) = sqlx::query_as(
        "SELECT s.id, s.job_id FROM check_sets s JOIN commits c ON c.id = s.commit_id \
         WHERE c.sha = $1::citext",
    )
    .bind(&sha)
    .fetch_one(&t.app().db)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE commit_statuses SET state = 'pending', description = 'Checks are running', \
         deadline_at = now() + interval '1 hour' FROM commits c WHERE c.id = commit_statuses.commit_id AND c.sha = $1::citext \
         AND commit_statuses.context = 'cocov'",
    )
    .bind(&sha)
    .execute(&t.app().db)
    .await
    .unwrap();
    let issues_count: Option<i32> =
        sqlx::query_scalar("SELECT issues_count FROM commits WHERE sha = $1::citext")
            .bind(&sha)
            .fetch_one(&t.app().db)
            .await
            .unwrap();
    let count = issues_count.expect("the count is stored with the set's end");
    assert_eq!(announced.1, format!("{count} issues found"));

    t.app()
        .queue
        .enqueue(
            cocov::checks::RUN_JOB,
            json!({"check_set_id": set_id, "job_id": job_id}),
        )
        .await
        .unwrap();
    assert_eq!(cocov_status(&t, "owed", &sha).await, announced);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_set_is_canceled_and_an_expired_one_is_ended_by_the_sweeper() {
    let sleeper =
        "name = \"acme/sleeper\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"sleep 300\"]\n";
    let (t, _plugins) = start(&[("sleeper.toml", sleeper)], |_| {}).await;
    let origin = Origin::new();
    let manifest = "version: \"0.1.alpha\"\nchecks:\n  - plugin: acme/sleeper\n";
    let (sha, admin) = push(&t, &origin, "slow", &[(".cocov.yaml", manifest)]).await;
    let path = format!("/v1/repositories/slow/commits/{sha}/checks");
    common::eventually("the sleeper to start", Duration::from_secs(60), || async {
        let (_, body) = get(&t, Some(&admin), &path).await;
        (body["checks"][0]["status"] == "in_progress").then_some(())
    })
    .await;
    let resp = t
        .client
        .delete(t.url(&path))
        .header("authorization", format!("bearer {admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let view = finished_checks(&t, &admin, "slow", &sha).await;
    assert_eq!(view["status"], "canceled", "{view}");
    assert_eq!(view["checks"][0]["status"], "canceled");
    assert_eq!(
        cocov_status(&t, "slow", &sha).await,
        ("failure".into(), "Checks were canceled".into())
    );
    // A set past its deadline (a worker gone for good) is ended with the reason.
    let commit_id: i64 = sqlx::query_scalar("SELECT id FROM commits WHERE sha = $1::citext")
        .bind(&sha)
        .fetch_one(&t.app().db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE check_sets SET status = 'in_progress', canceling = false, finished_at = NULL, \
         deadline_at = now() - interval '1 second' WHERE commit_id = $1",
    )
    .bind(commit_id)
    .execute(&t.app().db)
    .await
    .unwrap();
    assert_eq!(cocov::checks::sweep_expired(t.app()).await.unwrap(), 1);
    let view = finished_checks(&t, &admin, "slow", &sha).await;
    assert_eq!(view["status"], "errored");
    assert_eq!(view["failure_reason"], "deadline_exceeded");
    assert_eq!(cocov_status(&t, "slow", &sha).await.0, "error");
    t.shutdown().await;
}

fn cocov_cli() -> std::process::Command {
    let mut cmd = common::cocov_command();
    // An empty file: defaults plus the environment each test sets.
    let config = std::env::temp_dir().join("cocov-checks-empty.toml");
    std::fs::write(&config, "").unwrap();
    cmd.env("COCOV_CONFIG", config);
    cmd
}

#[test]
fn cocov_plugin_run_checks_a_directory_in_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.sh"), "#!/bin/sh\necho $1\n").unwrap();
    let out = cocov_cli()
        .args(["plugin", "run", "cocov/shellcheck:v0.1", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "a.sh:2: style: Double quote to prevent globbing and word splitting. (SC2086)"
    );
    // The directory itself is left as it was.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let out = cocov_cli()
        .args(["plugin", "run", "cocov/rubocop", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown plugin cocov/rubocop"));
    let out = cocov_cli()
        .args(["plugin", "run", "shellcheck", "--dir", "/nonexistent"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dir /nonexistent: not a directory"));
    let out = cocov_cli().args(["plugin", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    for name in [
        "cocov/shellcheck",
        "cocov/ruff",
        "cocov/yamllint",
        "cocov/cppcheck",
        "cocov/bandit",
    ] {
        assert!(listed.contains(name), "{listed}");
    }
    // A bad definition file is named, with exit status 2.
    let plugins = tempfile::tempdir().unwrap();
    std::fs::write(
        plugins.path().join("broken.toml"),
        "name = \"x\"\nformat = \"xml\"\n",
    )
    .unwrap();
    let out = cocov_cli()
        .env("COCOV_WORKER_PLUGINS_DIR", plugins.path())
        .args(["plugin", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.toml"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_key_reseals_every_secret_under_the_new_key() {
    let db = common::TestDb::migrated().await;
    let pool = sqlx::PgPool::connect(&db.config.url).await.unwrap();
    let old_hex = "11".repeat(32);
    let old = cocov::secrets::Cipher::from_hex(&old_hex, "old").unwrap();
    sqlx::query("INSERT INTO repositories (name, default_branch, git_url, upload_token_hash) VALUES ('r', 'main', 'file:///x', repeat('a', 64))")
        .execute(&pool)
        .await
        .unwrap();
    let repo: i64 = sqlx::query_scalar("SELECT id FROM repositories")
        .fetch_one(&pool)
        .await
        .unwrap();
    cocov::secrets::put(
        &pool,
        &old,
        cocov::secrets::Scope::Organization,
        "ORG",
        b"org-value",
        None,
    )
    .await
    .unwrap();
    cocov::secrets::put(
        &pool,
        &old,
        cocov::secrets::Scope::Repository(repo),
        "ORG",
        b"repo-value",
        None,
    )
    .await
    .unwrap();

    let keys = tempfile::tempdir().unwrap();
    let new_file = keys.path().join("new.key");
    let out = cocov_cli()
        .env("COCOV_DATABASE_URL", &db.config.url)
        .env("COCOV_CRYPTOGRAPHIC_KEY", &old_hex)
        .args(["admin", "rotate-key", "--new-key-file"])
        .arg(&new_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-encrypted 2 secret(s)"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&new_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let new_hex = std::fs::read_to_string(&new_file).unwrap();
    let new = cocov::secrets::Cipher::from_hex(&new_hex, "new").unwrap();
    let values = cocov::secrets::resolve_for_repository(&pool, &new, repo, &["ORG".to_string()])
        .await
        .unwrap();
    assert_eq!(values["ORG"], b"repo-value");
    let ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT key_id FROM secrets")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(ids, vec![new.key_id().to_string()]);
    // The old key no longer opens them; a missing current key is a configuration error.
    assert!(
        cocov::secrets::resolve_for_repository(&pool, &old, repo, &["ORG".to_string()])
            .await
            .is_err()
    );
    let out = cocov_cli()
        .env("COCOV_DATABASE_URL", &db.config.url)
        .env(
            "COCOV_SECURITY_CRYPTOGRAPHIC_KEY_FILE",
            keys.path().join("absent.key"),
        )
        .args(["admin", "rotate-key", "--new-key-file"])
        .arg(&new_file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every checks, issues and secrets route for each kind of caller (anonymous, outsider,
/// member, maintainer, service token and admin).
#[tokio::test(flavor = "multi_thread")]
async fn each_route_answers_each_role() {
    let (t, _plugins) = start(&[], |_| {}).await;
    let origin = Origin::new();
    let (sha, admin) = push(
        &t,
        &origin,
        "roles",
        &[
            (".cocov.yaml", SHELLCHECK_MANIFEST),
            ("a.sh", "#!/bin/sh\necho $1\n"),
        ],
    )
    .await;
    finished_checks(&t, &admin, "roles", &sha).await;
    let db = &t.app().db;
    let member = t.user_token("member", false).await;
    let maintainer = t.user_token("maintainer", false).await;
    let outsider = t.user_token("outsider", false).await;
    let (_, service) =
        cocov::auth::service_tokens::create(db, "ci", None, &cocov::audit::AuditActor::system())
            .await
            .unwrap();
    // Local members make the standalone repository private to them.
    for (login, level) in [("member", "user"), ("maintainer", "maintainer")] {
        sqlx::query(
            "INSERT INTO repository_members (repository_id, user_id, level) \
             SELECT r.id, u.id, $2 FROM repositories r, users u WHERE r.name = 'roles' AND u.login = $1",
        )
        .bind(login)
        .bind(level)
        .execute(db)
        .await
        .unwrap();
    }
    let issue_id: i64 = sqlx::query_scalar("SELECT id FROM issues LIMIT 1")
        .fetch_one(db)
        .await
        .unwrap();
    let check_id: i64 = sqlx::query_scalar("SELECT id FROM checks LIMIT 1")
        .fetch_one(db)
        .await
        .unwrap();
    let c = format!("/v1/repositories/roles/commits/{sha}");
    let reads = [
        format!("{c}/checks"),
        format!("{c}/checks/{check_id}"),
        format!("{c}/issues"),
        format!("{c}/issues/sources"),
        format!("{c}/issues/categories"),
        format!("{c}/issues/states"),
        "/v1/repositories/roles/ignore_rules".to_string(),
        "/v1/repositories/roles/secrets".to_string(),
    ];
    let call =
        |method: reqwest::Method, path: String, token: Option<String>, body: Option<Value>| {
            let t = &t;
            async move {
                let mut req = t.client.request(method, t.url(&path));
                if let Some(token) = token {
                    req = req.header("authorization", format!("bearer {token}"));
                }
                if let Some(body) = body {
                    req = req.json(&body);
                }
                req.send().await.unwrap().status()
            }
        };
    for path in &reads {
        assert_eq!(
            call(reqwest::Method::GET, path.clone(), None, None).await,
            401,
            "{path}"
        );
        assert_eq!(
            call(
                reqwest::Method::GET,
                path.clone(),
                Some(outsider.clone()),
                None
            )
            .await,
            404,
            "{path}"
        );
        for who in [&member, &maintainer, &admin, &service] {
            assert_eq!(
                call(reqwest::Method::GET, path.clone(), Some(who.clone()), None).await,
                200,
                "{path}"
            );
        }
    }
    use reqwest::Method;
    let ignore = format!("{c}/issues/{issue_id}/ignore");
    let rerun = format!("{c}/checks/re_run");
    let repo_secrets = "/v1/repositories/roles/secrets";
    let repo_secret = "/v1/repositories/roles/secrets/TOKEN";
    let once = json!({"mode": "ephemeral"});
    let for_good = json!({"mode": "permanent"});
    let checks = format!("{c}/checks");
    let secret = json!({"name": "TOKEN", "data": "v"});
    let none = Value::Null;
    let bad_mode = json!({"mode": "sometimes"});
    let bad_name = json!({"name": "9 bad", "data": "v"});
    // (method, path, caller, body, expected status), in order: some calls change state.
    let anonymous = String::new();
    let cases: Vec<(Method, &str, &String, &Value, u16)> = vec![
        (Method::POST, &ignore, &anonymous, &once, 401),
        (Method::POST, &ignore, &outsider, &once, 404),
        (Method::POST, &ignore, &service, &once, 422),
        (Method::POST, &ignore, &member, &bad_mode, 400),
        (Method::POST, &ignore, &member, &once, 200),
        (Method::DELETE, &ignore, &member, &none, 200),
        (Method::DELETE, &ignore, &outsider, &none, 404),
        // A permanent rule hides the issue in every later commit: maintainers and admins.
        (Method::POST, &ignore, &anonymous, &for_good, 401),
        (Method::POST, &ignore, &outsider, &for_good, 404),
        (Method::POST, &ignore, &member, &for_good, 403),
        (Method::POST, &ignore, &service, &for_good, 422),
        (Method::POST, &ignore, &maintainer, &for_good, 200),
        (Method::DELETE, &ignore, &maintainer, &none, 200),
        (Method::POST, &ignore, &admin, &for_good, 200),
        // Cancelling stops work others started: maintainers and admins.
        (Method::DELETE, &checks, &anonymous, &none, 401),
        (Method::DELETE, &checks, &outsider, &none, 404),
        (Method::DELETE, &checks, &member, &none, 403),
        (Method::DELETE, &checks, &service, &none, 403),
        (Method::DELETE, &checks, &maintainer, &none, 204),
        (Method::DELETE, &checks, &admin, &none, 204),
        (Method::POST, &rerun, &anonymous, &none, 401),
        (Method::POST, &rerun, &outsider, &none, 404),
        (Method::POST, &rerun, &member, &none, 204),
        (Method::POST, repo_secrets, &anonymous, &secret, 401),
        (Method::POST, repo_secrets, &outsider, &secret, 404),
        (Method::POST, repo_secrets, &member, &secret, 403),
        (Method::POST, repo_secrets, &service, &secret, 403),
        (Method::POST, repo_secrets, &maintainer, &secret, 201),
        (Method::POST, repo_secrets, &admin, &bad_name, 400),
        (Method::DELETE, repo_secret, &member, &none, 403),
        (Method::DELETE, repo_secret, &maintainer, &none, 204),
        (Method::DELETE, repo_secret, &maintainer, &none, 404),
        (Method::GET, "/v1/secrets", &member, &none, 200),
        (Method::POST, "/v1/secrets", &maintainer, &secret, 403),
        (Method::POST, "/v1/secrets", &service, &secret, 403),
        (Method::POST, "/v1/secrets", &admin, &secret, 201),
        (Method::DELETE, "/v1/secrets/TOKEN", &member, &none, 403),
        (Method::DELETE, "/v1/secrets/TOKEN", &admin, &none, 204),
    ];
    for (method, path, caller, body, expected) in cases {
        let token = (!caller.is_empty()).then(|| caller.clone());
        let body = (!body.is_null()).then(|| body.clone());
        let status = call(method.clone(), path.to_string(), token, body).await;
        assert_eq!(status, expected, "{method} {path}");
    }
    // Deleting the permanent rules made above: maintainers and admins.
    let rules: Vec<i64> = sqlx::query_scalar("SELECT id FROM issue_ignore_rules ORDER BY id")
        .fetch_all(db)
        .await
        .unwrap();
    assert!(!rules.is_empty());
    let rule = format!("/v1/repositories/roles/ignore_rules/{}", rules[0]);
    for (caller, expected) in [
        (&anonymous, 401),
        (&outsider, 404),
        (&member, 403),
        (&service, 403),
        (&maintainer, 204),
        (&admin, 404),
    ] {
        let token = (!caller.is_empty()).then(|| caller.clone());
        let status = call(Method::DELETE, rule.clone(), token, None).await;
        assert_eq!(status, expected, "DELETE {rule}");
    }
    finished_checks(&t, &admin, "roles", &sha).await;
    t.shutdown().await;
}

/// A `cocov serve` process with only the worker role, sharing the test daemon's stores.
fn worker_process(t: &TestApp, plugins: &Path) -> std::process::Child {
    let config = &t.app().config;
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("cocov.toml"), "").unwrap();
    common::cocov_command()
        .arg("serve")
        .env("COCOV_CONFIG", dir.join("cocov.toml"))
        .env("COCOV_ROLES", "worker")
        .env("COCOV_DATABASE_URL", config.database.effective_url())
        .env("COCOV_REDIS_URL", &config.redis.url)
        .env("COCOV_REDIS_KEY_PREFIX", &config.redis.key_prefix)
        .env(
            "COCOV_GIT_SERVICE_LOCAL_STORAGE_PATH",
            &config.storage.local_path,
        )
        .env("COCOV_WORKER_PLUGINS_DIR", plugins)
        .env("COCOV_WORKER_WORK_DIR", &config.worker.work_dir)
        .env("COCOV_QUEUE_RECLAIM_IDLE_SECONDS", "2")
        .env(
            "COCOV_CRYPTOGRAPHIC_KEY",
            &config.security.cryptographic_key,
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_check_leaves_the_set_to_another_worker() {
    let slow = "name = \"acme/slow\"\ncommand = \"/bin/sh\"\n\
        args = [\"-c\", ': cocov-slow-plugin; sleep 4; : > \"$COCOV_OUTPUT_FILE\"']\nformat = \"cocov\"\n";
    let (t, plugins) = start(&[("slow.toml", slow)], |c| {
        c.server.roles = vec![cocov::config::Role::Api];
    })
    .await;
    let mut first = worker_process(&t, plugins.path());
    let origin = Origin::new();
    let manifest = "version: \"0.1.alpha\"\nchecks:\n  - plugin: acme/slow\n";
    let (sha, admin) = push(&t, &origin, "crashy", &[(".cocov.yaml", manifest)]).await;
    let path = format!("/v1/repositories/crashy/commits/{sha}/checks");
    common::eventually(
        "the first worker to start the check",
        Duration::from_secs(60),
        || async {
            let (_, body) = get(&t, Some(&admin), &path).await;
            (body["checks"][0]["status"] == "in_progress").then_some(())
        },
    )
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    // The sandbox died with its worker.
    common::eventually(
        "the plugin to die with its worker",
        Duration::from_secs(10),
        || async {
            let out = std::process::Command::new("pgrep")
                .args(["-f", "cocov-slow-plugin"])
                .output()
                .unwrap();
            out.stdout.is_empty().then_some(())
        },
    )
    .await;
    let mut second = worker_process(&t, plugins.path());
    let view = finished_checks(&t, &admin, "crashy", &sha).await;
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["checks"][0]["status"], "completed");
    // The worker writes the status just after marking the set finished: killing it before
    // then would leave no one to write it.
    assert_eq!(
        cocov_status(&t, "crashy", &sha).await,
        ("success".into(), "No issues found".into())
    );
    second.kill().unwrap();
    second.wait().unwrap();
    t.shutdown().await;
}

/// An image plugin named in a manifest: pulled from a real registry, run in the sandbox, its
/// issues in the API and the status; its tag pinned to a digest for the commit, so a re-run with
/// the tag moved (and the registry gone) runs the same image.
#[tokio::test(flavor = "multi_thread")]
async fn an_image_plugin_from_a_registry_runs_through_the_daemon() {
    use common::registry::{Entry, Image, Registry, layer};
    let mut registry = Registry::start().await;
    let (digest, _) = registry
        .push_image("team/todo", "v1", &Image::todo_plugin())
        .await;
    let store = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let store_dir = store.path().join("images");
    let insecure = registry.host.clone();
    let (t, _plugins) = start(&[], move |c| {
        c.images.store_dir = store_dir;
        c.images.insecure_registries = vec![insecure];
        c.images.tag_ttl_seconds = 0;
    })
    .await;
    let origin = Origin::new();
    let manifest = format!(
        "version: \"0.1.alpha\"\nchecks:\n  - plugin: {}/team/todo:v1\n",
        registry.host
    );
    let (sha, admin) = push(
        &t,
        &origin,
        "imaged",
        &[
            (".cocov.yaml", &manifest),
            ("src/a.txt", "ok\nTODO later\n"),
        ],
    )
    .await;
    let view = finished_checks(&t, &admin, "imaged", &sha).await;
    assert_eq!(
        check_of(&view, "team/todo")["status"],
        "completed",
        "{view}"
    );
    let body = issues(&t, &admin, "imaged", &sha, "").await;
    assert_eq!(body["paging"]["total"], 1, "{body}");
    assert_eq!(body["issues"][0]["file"], "src/a.txt");
    assert_eq!(body["issues"][0]["line_start"], 2);
    assert_eq!(body["issues"][0]["message"], "TODO left (from-image)");
    assert_eq!(body["issues"][0]["check_source"], "team/todo");
    assert_eq!(
        cocov_status(&t, "imaged", &sha).await,
        ("failure".into(), "1 issue found".into())
    );
    let pinned: String = sqlx::query_scalar("SELECT digest FROM image_pins")
        .fetch_one(&t.app().db)
        .await
        .unwrap();
    assert_eq!(pinned, digest);
    // The pull is counted, with the layer bytes it downloaded.
    let metrics = t.app().metrics.render();
    assert!(
        metrics.contains(
            "cocov_external_calls_total{service=\"registry\",operation=\"image\",outcome=\"registry\"} 1"
        ),
        "{metrics}"
    );
    let pulled: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cocov_image_pulled_bytes_total "))
        .expect("the pulled bytes counter")
        .parse()
        .unwrap();
    assert!(pulled > 100_000, "busybox's layer at least: {pulled}");

    // The tag moves to an image that finds nothing. A re-run of this commit runs the pinned
    // image (tags are asked for afresh here: no time to live).
    let mut quiet = Image::todo_plugin();
    quiet.cmd = vec!["-c".into(), ": > \"$COCOV_OUTPUT_FILE\"".into()];
    registry.push_image("team/todo", "v1", &quiet).await;
    let resp = t
        .client
        .post(t.url(&format!(
            "/v1/repositories/imaged/commits/{sha}/checks/re_run"
        )))
        .header("authorization", format!("bearer {admin}"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let view = finished_checks(&t, &admin, "imaged", &sha).await;
    assert_eq!(
        check_of(&view, "team/todo")["status"],
        "completed",
        "{view}"
    );
    assert_eq!(
        issues(&t, &admin, "imaged", &sha, "").await["paging"]["total"],
        1
    );
    // A new commit gets the moved tag; with the registry gone, the tag as last resolved.
    let (sha2, admin) = push(&t, &origin, "imaged", &[("src/b.txt", "TODO\n")]).await;
    let view = finished_checks(&t, &admin, "imaged", &sha2).await;
    assert_eq!(
        check_of(&view, "team/todo")["status"],
        "completed",
        "{view}"
    );
    assert_eq!(
        issues(&t, &admin, "imaged", &sha2, "").await["paging"]["total"],
        0
    );
    // An image whose layer plants a link out of its root filesystem is refused: the check
    // errors naming it, and the worker goes on.
    let hostile = layer(&[Entry::Link("up".into(), "../../../../..".into())]);
    registry
        .push_image("evil/link", "v1", &Image::with_layer(hostile))
        .await;
    let evil_manifest = format!(
        "version: \"0.1.alpha\"\nchecks:\n  - plugin: {0}/evil/link:v1\n  - plugin: {0}/team/todo:v1\n",
        registry.host
    );
    let (evil_sha, admin) = push(&t, &origin, "imaged", &[(".cocov.yaml", &evil_manifest)]).await;
    let view = finished_checks(&t, &admin, "imaged", &evil_sha).await;
    assert_eq!(
        check_of(&view, "team/todo")["status"],
        "completed",
        "{view}"
    );
    let output = errored_check_output(&t, &admin, "imaged", &evil_sha, &view, "evil/link").await;
    assert!(
        output.contains("the image is refused")
            && output.contains("outside the image's root filesystem"),
        "{output}"
    );
    registry.stop();
    let (sha3, admin) = push(&t, &origin, "imaged", &[("src/c.txt", "TODO\n")]).await;
    let view = finished_checks(&t, &admin, "imaged", &sha3).await;
    assert_eq!(
        check_of(&view, "team/todo")["status"],
        "completed",
        "{view}"
    );
    // Pulls, store hits, use without the registry and failures are counted.
    let metrics = t.app().metrics.render();
    for outcome in ["registry", "store", "store_without_registry", "error"] {
        let line = format!(
            "cocov_external_calls_total{{service=\"registry\",operation=\"image\",outcome=\"{outcome}\"}}"
        );
        assert!(metrics.contains(&line), "{outcome}: {metrics}");
    }
    t.shutdown().await;
}
