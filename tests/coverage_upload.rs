//! Coverage uploads end to end against the running daemon: a standalone repository whose commit
//! holds a fixture project, the real tools' reports uploaded through `POST /v1/reports/raw` and
//! through the reporter binary, the early-upload hold, merging and replacing, compressed and
//! hostile bodies, tokens, and who may read the results.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TestApp;
use common::git_server::{WorkTree, git};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/coverage")
}

#[derive(Deserialize)]
struct Expected {
    report: Vec<ExpectedReport>,
}

#[derive(Deserialize)]
struct ExpectedReport {
    file: String,
    lines_total: u64,
    lines_covered: u64,
}

fn expected(format_dir: &str) -> Vec<ExpectedReport> {
    let text = std::fs::read_to_string(fixtures().join(format_dir).join("EXPECTED.toml")).unwrap();
    toml::from_str::<Expected>(&text).unwrap().report
}

/// Every file under `dir`, relative to it, with its text.
fn project_files(dir: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A registered standalone repository with a bare origin and a work tree pushing to it.
struct Repo {
    name: String,
    token: String,
    work: WorkTree,
    _origin: tempfile::TempDir,
}

impl Repo {
    async fn new(t: &TestApp, name: &str) -> Repo {
        let origin = tempfile::tempdir().unwrap();
        let bare = origin.path().join("origin.git");
        git(
            origin.path(),
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        );
        let admin = t.user_token(&format!("admin-{name}"), true).await;
        let resp = t
            .client
            .post(t.url("/v1/repositories"))
            .header("authorization", format!("bearer {admin}"))
            .json(
                &json!({"name": name, "git_url": format!("file://{}", bare.display()),
                          "default_branch": "main"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.unwrap();
        Repo {
            name: name.to_string(),
            token: body["token"].as_str().unwrap().to_string(),
            work: WorkTree::new(&bare),
            _origin: origin,
        }
    }

    /// Commits `files` (plus the fixture project `project`, if any) and pushes main, without
    /// announcing it; returns the sha.
    fn commit(&self, project: Option<&str>, files: &[(&str, &str)]) -> String {
        let mut all: Vec<(String, String)> = project
            .map(|p| project_files(&fixtures().join(p).join("project")))
            .unwrap_or_default();
        all.extend(files.iter().map(|(p, c)| (p.to_string(), c.to_string())));
        let refs: Vec<(&str, &str)> = all.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        let sha = self.work.commit(&refs, "a commit");
        self.work.push("main");
        sha
    }

    /// Announces the pushed commit and waits until it is ingested.
    async fn announce(&self, t: &TestApp, sha: &str) {
        let resp = t
            .client
            .post(t.url(&format!("/v1/repositories/{}/commits", self.name)))
            .header("authorization", format!("token {}", self.token))
            .json(&json!({"sha": sha, "branch": "main"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let db = t.app().db.clone();
        let (sha, name) = (sha.to_string(), self.name.clone());
        common::eventually("the commit to be ingested", Duration::from_secs(60), || {
            let (db, sha, name) = (db.clone(), sha.clone(), name.clone());
            async move {
                let s: Option<String> = sqlx::query_scalar(
                    "SELECT c.ingest_status FROM commits c JOIN repositories r ON r.id = c.repository_id \
                     WHERE c.sha = $1::citext AND r.name = $2::citext",
                )
                .bind(&sha)
                .bind(&name)
                .fetch_optional(&db)
                .await
                .unwrap();
                s.filter(|s| s == "completed" || s == "errored")
            }
        })
        .await;
        let (status, error): (String, Option<String>) = sqlx::query_as(
            "SELECT c.ingest_status, c.ingest_error FROM commits c \
             JOIN repositories r ON r.id = c.repository_id WHERE c.sha = $1::citext AND r.name = $2::citext",
        )
        .bind(&sha)
        .bind(&name)
        .fetch_one(&t.app().db)
        .await
        .unwrap();
        assert_eq!(status, "completed", "{error:?}");
    }

    async fn push_and_ingest(
        &self,
        t: &TestApp,
        project: Option<&str>,
        files: &[(&str, &str)],
    ) -> String {
        let sha = self.commit(project, files);
        self.announce(t, &sha).await;
        sha
    }
}

/// `POST /v1/reports/raw`; returns the status and the JSON answer.
async fn raw(
    t: &TestApp,
    token: &str,
    query: &str,
    body: Vec<u8>,
    encoding: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = t
        .client
        .post(t.url(&format!("/v1/reports/raw?{query}")))
        .header("authorization", format!("token {token}"))
        .body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or_default())
}

fn report(format_dir: &str, file: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(format_dir).join(file)).unwrap()
}

async fn summary(t: &TestApp, auth: &str, repo: &str, sha: &str) -> (StatusCode, Value) {
    let resp = t
        .client
        .get(t.url(&format!(
            "/v1/repositories/{repo}/commits/{sha}/coverage/summary"
        )))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or_default())
}

/// The commit's `cocov/coverage` status once it has a result (not the pending announcement).
async fn coverage_status(t: &TestApp, sha: &str) -> Option<(String, String)> {
    sqlx::query_as(
        "SELECT s.state, s.description FROM commit_statuses s JOIN commits c ON c.id = s.commit_id \
         WHERE c.sha = $1::citext AND s.context = 'cocov/coverage' AND s.state <> 'pending'",
    )
    .bind(sha)
    .fetch_optional(&t.app().db)
    .await
    .unwrap()
}

async fn coverage_rows(t: &TestApp) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM coverage_infos), (SELECT count(*) FROM coverage_uploads)",
    )
    .fetch_one(&t.app().db)
    .await
    .unwrap()
}

/// (fixture dir holding the report, project the report was made for)
const CASES: [(&str, &str); 6] = [
    ("cobertura", "cobertura"),
    ("gocover", "gocover"),
    ("jacoco", "jacoco"),
    ("lcov", "lcov"),
    ("simplecov", "simplecov"),
    // coverage.py's lcov output, for the Python project.
    ("lcov", "cobertura"),
];

fn reports_for(format_dir: &str, project: &str) -> Vec<ExpectedReport> {
    expected(format_dir)
        .into_iter()
        .filter(|r| {
            (r.file == "coverage-py.lcov") == (format_dir == "lcov" && project == "cobertura")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn real_reports_give_the_tools_totals_through_the_raw_endpoint() {
    let t = TestApp::start().await;
    let admin = format!("bearer {}", t.user_token("reader", true).await);
    for (format_dir, project) in CASES {
        let repo = Repo::new(&t, &format!("raw-{format_dir}-{project}")).await;
        let sha = repo.push_and_ingest(&t, Some(project), &[]).await;
        for want in reports_for(format_dir, project) {
            let (status, body) = raw(
                &t,
                &repo.token,
                &format!("commit_sha={sha}&mode=replace"),
                report(format_dir, &want.file),
                None,
            )
            .await;
            let context = format!("{format_dir}/{}: {body}", want.file);
            assert_eq!(status, StatusCode::OK, "{context}");
            assert_eq!(body["status"], "completed", "{context}");
            assert_eq!(body["files_unmatched"], 0, "{context}");
            assert_eq!(body["commit"]["lines_total"], want.lines_total, "{context}");
            assert_eq!(
                body["commit"]["lines_covered"], want.lines_covered,
                "{context}"
            );
            let (status, s) = summary(&t, &admin, &repo.name, &sha).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(s["status"], "completed");
            assert_eq!(s["lines_total"], want.lines_total, "{context}");
            assert_eq!(s["lines_covered"], want.lines_covered, "{context}");
            let percent = want.lines_covered as f64 * 100.0 / want.lines_total as f64;
            assert!((s["percent_covered"].as_f64().unwrap() - percent).abs() < 1e-9);
            // No manifest: the gate reports the percentage, as the original.
            let (state, description) = coverage_status(&t, &sha).await.unwrap();
            assert_eq!(state, "success");
            assert_eq!(
                description,
                format!("{}% covered", cocov::coverage::gate::ruby_percent(percent))
            );
        }
    }
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn real_reports_give_the_tools_totals_through_the_reporter() {
    let t = TestApp::start().await;
    for (format_dir, project) in CASES {
        let repo = Repo::new(&t, &format!("cli-{format_dir}-{project}")).await;
        let sha = repo.push_and_ingest(&t, Some(project), &[]).await;
        for want in reports_for(format_dir, project) {
            let path = fixtures().join(format_dir).join(&want.file);
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_cocov"))
                .current_dir(repo.work.path())
                .args(["report", "submit", "--mode", "replace", "--file"])
                .arg(&path)
                .env("COCOV_REPOSITORY_TOKEN", &repo.token)
                .env("COCOV_API_URL", t.url("/"))
                .env("COCOV_COMMIT_SHA", &sha)
                .env_remove("GITHUB_EVENT_PATH")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let context = format!(
                "{format_dir}/{}: {stdout}{}",
                want.file,
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "{context}");
            let percent = want.lines_covered as f64 * 100.0 / want.lines_total as f64;
            assert!(
                stdout.contains(&format!(
                    "{} lines, {} covered, {percent:.2}%",
                    want.lines_total, want.lines_covered
                )),
                "{context}"
            );
            let row: (i32, i32) = sqlx::query_as(
                "SELECT i.lines_total, i.lines_covered FROM coverage_infos i \
                 JOIN commits c ON c.id = i.commit_id WHERE c.sha = $1::citext",
            )
            .bind(&sha)
            .fetch_one(&t.app().db)
            .await
            .unwrap();
            assert_eq!(
                (row.0 as u64, row.1 as u64),
                (want.lines_total, want.lines_covered),
                "{context}"
            );
        }
    }
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_before_the_commit_arrives_becomes_a_status_after_it() {
    let t = TestApp::start().await;
    let repo = Repo::new(&t, "early").await;
    let manifest = "version: \"0.1.alpha\"\ncoverage:\n  min_percent: 90\n";
    let sha = repo.commit(Some("cobertura"), &[(".cocov.yaml", manifest)]);
    let (status, body) = raw(
        &t,
        &repo.token,
        &format!("commit_sha={sha}"),
        report("cobertura", "coverage.xml"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "held");
    assert_eq!(body["report"]["lines_total"], 34);
    assert!(body["expires_at"].is_string());
    assert_eq!(coverage_rows(&t).await, (0, 1));

    repo.announce(&t, &sha).await;
    let (state, description) =
        common::eventually("the coverage status", Duration::from_secs(30), || {
            coverage_status(&t, &sha)
        })
        .await;
    // 23 of 34 lines: below the manifest's 90.
    assert_eq!(state, "failure");
    assert_eq!(description, "67.65% covered (at least 90% is required)");
    assert_eq!(
        coverage_rows(&t).await,
        (1, 0),
        "applied uploads are deleted"
    );
    let minimum: Option<i32> =
        sqlx::query_scalar("SELECT minimum_coverage FROM commits WHERE sha = $1::citext")
            .bind(&sha)
            .fetch_one(&t.app().db)
            .await
            .unwrap();
    assert_eq!(minimum, Some(90));
    // The branch whose head the commit is got the percentage and a history point.
    let (coverage, points): (Option<f64>, i64) = sqlx::query_as(
        "SELECT b.coverage, (SELECT count(*) FROM coverage_histories h WHERE h.branch_id = b.id) \
         FROM branches b WHERE b.name = 'main'",
    )
    .fetch_one(&t.app().db)
    .await
    .unwrap();
    assert!((coverage.unwrap() - 2300.0 / 34.0).abs() < 1e-9);
    assert_eq!(points, 1);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unmatched_and_hostile_uploads_are_refused_and_change_nothing() {
    let t = TestApp::start_with(|c| c.coverage.max_report_bytes = 8 << 20).await;
    let repo = Repo::new(&t, "hostile").await;
    let sha = repo.push_and_ingest(&t, Some("cobertura"), &[]).await;
    let q = format!("commit_sha={sha}");

    let lcov =
        "SF:/elsewhere/nothing.rb\nDA:1,1\nend_of_record\nSF:lib/gone.py\nDA:1,0\nend_of_record\n";
    let (status, body) = raw(&t, &repo.token, &q, lcov.into(), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "report.no_matching_files");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("/elsewhere/nothing.rb") && message.contains("lib/gone.py"),
        "{message}"
    );
    assert_eq!(
        body["diagnostic"]["unmatched"],
        json!(["/elsewhere/nothing.rb", "lib/gone.py"])
    );

    // Malformed, truncated, entity bomb, undetectable.
    let full = String::from_utf8(report("cobertura", "coverage.xml")).unwrap();
    let bomb = "<?xml version=\"1.0\"?>\n<!DOCTYPE coverage [<!ENTITY a \"aaaaaaaaaa\">\
                <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>\n\
                <coverage line-rate=\"1\"><packages><package name=\"&c;\"></package></packages></coverage>";
    for body in [
        full[..full.len() / 2].to_string(),
        bomb.to_string(),
        "hello world\n".to_string(),
        "mode: set\nmain.go:x.y 1 1\n".to_string(),
    ] {
        let (status, answer) = raw(&t, &repo.token, &q, body.into(), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        let code = answer["code"].as_str().unwrap();
        assert!(
            code == "report.invalid_report" || code == "report.empty",
            "{answer}"
        );
    }

    // A gzip bomb: a valid-looking lcov report that expands past the cap (8 MiB here) from a
    // body of a few KiB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"TN:\nSF:calc/core.py\n").unwrap();
    let records = "DA:1,1\n".repeat(1 << 16);
    for _ in 0..32 {
        gz.write_all(records.as_bytes()).unwrap();
    }
    let (status, answer) = raw(&t, &repo.token, &q, gz.finish().unwrap(), Some("gzip")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["code"], "report.too_large");

    let (status, _) = raw(&t, &repo.token, &q, b"x".to_vec(), Some("br")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, answer) = raw(&t, &repo.token, "commit_sha=abc", lcov.into(), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = raw(
        &t,
        &repo.token,
        &format!("{q}&format=clover"),
        lcov.into(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    assert_eq!(coverage_rows(&t).await, (0, 0), "nothing was stored");
    assert_eq!(coverage_status(&t, &sha).await, None);
    t.shutdown().await;
}

/// The file view's per-line values for `path`.
async fn file_lines(t: &TestApp, auth: &str, repo: &str, sha: &str, path: &str) -> Value {
    let list: Value = t
        .client
        .get(t.url(&format!("/v1/repositories/{repo}/commits/{sha}/coverage")))
        .header("authorization", auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == path)
        .unwrap_or_else(|| panic!("{path} in {list}"))["id"]
        .as_i64()
        .unwrap();
    t.client
        .get(t.url(&format!(
            "/v1/repositories/{repo}/commits/{sha}/coverage/file/{id}"
        )))
        .header("authorization", auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_merge_by_default_replace_on_request_and_may_be_compressed() {
    let t = TestApp::start().await;
    let repo = Repo::new(&t, "merging").await;
    let sha = repo
        .push_and_ingest(
            &t,
            None,
            &[("src/a.c", "int a;\nint b;\nint c;\n"), ("src/b.c", "x\n")],
        )
        .await;
    let admin = format!("bearer {}", t.user_token("merge-admin", true).await);
    let q = format!("commit_sha={sha}&format=lcov");

    // Job 1 covers line 1 of a.c; job 2 (gzip) covers line 1 again and line 2, from a container path.
    let job1 = "SF:src/a.c\nDA:1,1\nDA:2,0\nend_of_record\n";
    let job2 = "SF:/build/src/a.c\nDA:1,2\nDA:2,5\nDA:3,0\nend_of_record\n";
    let (status, body) = raw(&t, &repo.token, &q, job1.into(), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(job2.as_bytes()).unwrap();
    let (status, body) = raw(&t, &repo.token, &q, gz.finish().unwrap(), Some("gzip")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mode"], "merge");
    assert_eq!(body["commit"]["lines_total"], 3);
    assert_eq!(body["commit"]["lines_covered"], 2);
    let view = file_lines(&t, &admin, &repo.name, &sha, "src/a.c").await;
    assert_eq!(view["coverage"]["lines"], json!([3, 5, 0]), "{view}");
    assert_eq!(view["file"]["base_path"], "src/");
    assert_eq!(view["file"]["name"], "a.c");
    assert_eq!(view["file"]["source_status"], "ok");
    assert_eq!(view["file"]["source"][1]["source"], "int b;");
    assert_eq!(
        view["coverage"]["blocks"],
        json!([{"kind": "covered", "start": 1, "end": 2}, {"kind": "missed", "start": 3, "end": 3}])
    );

    // Replace (zstd): only this upload remains.
    let job3 = "SF:src/b.c\nDA:1,7\nend_of_record\n";
    let zst = zstd::encode_all(job3.as_bytes(), 3).unwrap();
    let (status, body) = raw(
        &t,
        &repo.token,
        &format!("{q}&mode=replace"),
        zst,
        Some("zstd"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["commit"]["files"], 1);
    assert_eq!(body["commit"]["lines_total"], 1);
    let (_, s) = summary(&t, &admin, &repo.name, &sha).await;
    assert_eq!(
        (s["lines_total"].clone(), s["percent_covered"].clone()),
        (json!(1), json!(100.0))
    );

    // The original reporter's JSON merges too, and answers 204.
    let resp = t
        .client
        .post(t.url("/v1/reports"))
        .header("authorization", format!("TOKEN {}", repo.token))
        .json(&json!({"commit_sha": sha.to_uppercase(), "data": {"src/b.c": "MQ=="}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let view = file_lines(&t, &admin, &repo.name, &sha, "src/b.c").await;
    assert_eq!(view["coverage"]["lines"], json!([8]));
    for (body, code) in [
        (
            json!({"commit_sha": sha, "data": {}}),
            "report.missing_data",
        ),
        (
            json!({"data": {"src/b.c": "MQ=="}}),
            "report.missing_commit_sha",
        ),
    ] {
        let resp = t
            .client
            .post(t.url("/v1/reports"))
            .header("authorization", format!("token {}", repo.token))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.json::<Value>().await.unwrap()["code"], code);
    }
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_and_read_access_per_role() {
    let t = TestApp::start().await;
    let repo = Repo::new(&t, "guarded").await;
    let sha = repo.push_and_ingest(&t, Some("cobertura"), &[]).await;
    let q = format!("commit_sha={sha}");
    let xml = report("cobertura", "coverage.xml");

    let unknown = cocov::auth::tokens::generate(cocov::auth::tokens::TokenKind::RepositoryUpload);
    let resp = t
        .client
        .post(t.url(&format!("/v1/reports/raw?{q}")))
        .body(xml.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    for (header, want) in [
        ("bearer whatever".to_string(), StatusCode::UNAUTHORIZED),
        ("token not-a-token".to_string(), StatusCode::UNAUTHORIZED),
        (format!("token {unknown}"), StatusCode::FORBIDDEN),
    ] {
        let resp = t
            .client
            .post(t.url(&format!("/v1/reports/raw?{q}")))
            .header("authorization", &header)
            .body(xml.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), want, "{header}");
    }
    let (status, _) = raw(&t, &repo.token, &q, xml, None).await;
    assert_eq!(status, StatusCode::OK);

    // Reads: a private standalone repository (it has a local member).
    let member = t.user_token("member", false).await;
    let outsider = t.user_token("outsider", false).await;
    sqlx::query(
        "INSERT INTO repository_members (repository_id, user_id, level) \
         SELECT r.id, u.id, 'user' FROM repositories r, users u WHERE r.name = $1 AND u.login = 'member'",
    )
    .bind(&repo.name)
    .execute(&t.app().db)
    .await
    .unwrap();
    let paths = [
        format!(
            "/v1/repositories/{}/commits/{sha}/coverage/summary",
            repo.name
        ),
        format!("/v1/repositories/{}/commits/{sha}/coverage", repo.name),
    ];
    for path in &paths {
        let anonymous = t.client.get(t.url(path)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path}");
        for (token, want) in [
            (&outsider, StatusCode::NOT_FOUND),
            (&member, StatusCode::OK),
        ] {
            let resp = t
                .client
                .get(t.url(path))
                .header("authorization", format!("bearer {token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), want, "{path}");
        }
    }
    let list: Value = t
        .client
        .get(t.url(&format!("{}?per_page=2", paths[1])))
        .header("authorization", format!("bearer {member}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Three files, least covered first, two per page.
    assert_eq!(list["paging"]["total"], 3, "{list}");
    assert_eq!(list["paging"]["total_pages"], 2);
    let files = list["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert!(files[0]["percent_covered"].as_i64() <= files[1]["percent_covered"].as_i64());
    assert_eq!(files[0]["file"], "calc/core.py", "{list}");
    assert_eq!(files[0]["percent_covered"], 55, "5 of 9 lines, truncated");
    let id = files[0]["id"].as_i64().unwrap();
    for (token, want) in [
        (&outsider, StatusCode::NOT_FOUND),
        (&member, StatusCode::OK),
    ] {
        let resp = t
            .client
            .get(t.url(&format!("{}/file/{id}", paths[1])))
            .header("authorization", format!("bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), want);
    }
    let resp = t
        .client
        .get(t.url(&format!("{}/file/999999", paths[1])))
        .header("authorization", format!("bearer {member}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    t.shutdown().await;
}
