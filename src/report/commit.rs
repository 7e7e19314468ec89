//! Which commit the coverage is for, in the original reporter's order: the flag or
//! `COCOV_COMMIT_SHA` (also its `COMMMIT_SHA` typo), the pull request head of the GitHub event,
//! then — additions — `GITHUB_SHA` and git's `HEAD`.

use std::path::Path;

use serde_json::Value;

pub fn commit_sha(flag: Option<&str>, root: &Path) -> Result<String, String> {
    let given = flag
        .map(str::to_string)
        .or_else(|| std::env::var("COCOV_COMMIT_SHA").ok())
        .or_else(|| std::env::var("COMMMIT_SHA").ok())
        .filter(|s| !s.trim().is_empty());
    if let Some(sha) = given {
        return Ok(sha.trim().to_string());
    }
    if let Some(sha) = github_event_head() {
        return Ok(sha);
    }
    if let Some(sha) = std::env::var("GITHUB_SHA")
        .ok()
        .filter(|s| !s.trim().is_empty())
    {
        return Ok(sha.trim().to_string());
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run git to find the commit: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || text.is_empty() {
        return Err(format!(
            "process `git' exited with status {}: {}{}",
            out.status.code().unwrap_or(-1),
            text,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(text)
}

/// `pull_request.head.sha` of the event file GitHub Actions names in `GITHUB_EVENT_PATH`.
/// Unlike the original, an unreadable event is reported instead of silently ignored.
fn github_event_head() -> Option<String> {
    let path = std::env::var("GITHUB_EVENT_PATH").ok()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("warning: GITHUB_EVENT_PATH {path}: {e}");
            return None;
        }
    };
    let event: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("warning: GITHUB_EVENT_PATH {path} is not JSON: {e}");
            return None;
        }
    };
    event["pull_request"]["head"]["sha"]
        .as_str()
        .map(str::to_string)
}
