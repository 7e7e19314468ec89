//! A standalone git origin for tests: a bare repository on disk, a working clone that pushes
//! to it, and the API calls that register it and announce its pushes.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::TestApp;

/// A bare repository on disk and a working clone that pushes to it.
pub struct Origin {
    _dir: tempfile::TempDir,
    pub bare: PathBuf,
    pub work: PathBuf,
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Origin {
    pub fn new() -> Origin {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("origin.git");
        let work = dir.path().join("work");
        git(
            dir.path(),
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        );
        git(
            dir.path(),
            &["init", "-q", "-b", "main", work.to_str().unwrap()],
        );
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        Origin {
            _dir: dir,
            bare,
            work,
        }
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// Commits the files and pushes `main`; returns the sha.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let p = self.work.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", message]);
        git(&self.work, &["push", "-q", "-f", "origin", "main"]);
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

pub async fn register(t: &TestApp, name: &str, url: &str) -> (i64, String) {
    let admin = t.user_token(&format!("admin-{name}"), true).await;
    let body = json!({"name": name, "git_url": url, "default_branch": "main"});
    create_repository(t, &admin, &body).await
}

/// `POST /v1/repositories` with `body` as the administrator `admin` (a token); returns the new
/// repository's id and upload token.
pub async fn create_repository(t: &TestApp, admin: &str, body: &Value) -> (i64, String) {
    let resp = t
        .client
        .post(t.url("/v1/repositories"))
        .header("authorization", format!("bearer {admin}"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    (
        body["id"].as_i64().unwrap(),
        body["token"].as_str().unwrap().to_string(),
    )
}

pub async fn announce(t: &TestApp, name: &str, auth: &str, body: Value) -> (StatusCode, Value) {
    let resp = t
        .client
        .post(t.url(&format!("/v1/repositories/{name}/commits")))
        .header("authorization", auth)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or_default())
}
