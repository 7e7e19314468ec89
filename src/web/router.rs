//! The table of pages. One arm per route: its name (for metrics, like the API's `tag`) and the
//! handler in `pages/`. Path segments arrive percent-decoded; repository names never contain
//! `/`, branch names travel in `?branch=` and file paths in `?path=`.

use http::Method;
use warp::reply::Response;

use super::page::{PageError, error_page, secure};
use super::{Req, assets, pages};
use crate::http::tag;

/// Answers a UI request: the page, its error page or a redirect, with the security headers.
pub async fn dispatch(req: Req) -> Response {
    let segments: Vec<String> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (name, result) = route(&req, &segments).await;
    let response = result.unwrap_or_else(error_page);
    secure(tag(name)(response))
}

async fn route(req: &Req, segments: &[&str]) -> (&'static str, Result<Response, PageError>) {
    use pages::*;
    let get = req.method == Method::GET || req.method == Method::HEAD;
    let post = req.method == Method::POST;
    match segments {
        ["assets", file] if get => (
            "GET /assets/{file}",
            assets::serve(file).ok_or(PageError::NotFound),
        ),
        ["sign-in"] if get => ("GET /sign-in", sign_in::get(req).await),
        ["sign-in"] if post => ("POST /sign-in", sign_in::post(req).await),
        ["sign-out"] if post => ("POST /sign-out", sign_out::post(req).await),
        [] if get => ("GET /", repositories::get(req).await),
        ["new"] if get => ("GET /new", add_repository::get(req).await),
        ["new"] if post => ("POST /new", add_repository::post(req).await),
        ["repos", repo] if get => ("GET /repos/{repo}", repository::get(req, repo).await),
        ["repos", repo, "badges"] if get => {
            ("GET /repos/{repo}/badges", badges::get(req, repo).await)
        }
        ["repos", repo, "settings"] if get => (
            "GET /repos/{repo}/settings",
            repository_settings::get(req, repo).await,
        ),
        ["repos", repo, "settings"] if post => (
            "POST /repos/{repo}/settings",
            repository_settings::post(req, repo).await,
        ),
        ["repos", repo, "commits", sha, "checks"] if get => (
            "GET /repos/{repo}/commits/{sha}/checks",
            commit_checks::get(req, repo, sha).await,
        ),
        ["repos", repo, "commits", sha, "checks"] if post => (
            "POST /repos/{repo}/commits/{sha}/checks",
            commit_checks::post(req, repo, sha).await,
        ),
        ["repos", repo, "commits", sha, "issues"] if get => (
            "GET /repos/{repo}/commits/{sha}/issues",
            commit_issues::get(req, repo, sha).await,
        ),
        ["repos", repo, "commits", sha, "issues"] if post => (
            "POST /repos/{repo}/commits/{sha}/issues",
            commit_issues::post(req, repo, sha).await,
        ),
        ["repos", repo, "commits", sha, "coverage"] if get => (
            "GET /repos/{repo}/commits/{sha}/coverage",
            commit_coverage::get(req, repo, sha).await,
        ),
        ["repos", repo, "commits", sha, "coverage", "file"] if get => (
            "GET /repos/{repo}/commits/{sha}/coverage/file",
            coverage_file::get(req, repo, sha).await,
        ),
        ["admin"] if get => ("GET /admin", admin::get(req).await),
        ["admin", "users"] if get => ("GET /admin/users", admin_users::get(req).await),
        ["admin", "users"] if post => ("POST /admin/users", admin_users::post(req).await),
        ["admin", "tokens"] if get => ("GET /admin/tokens", admin_tokens::get(req).await),
        ["admin", "tokens"] if post => ("POST /admin/tokens", admin_tokens::post(req).await),
        ["admin", "repositories"] if get => (
            "GET /admin/repositories",
            admin_repositories::get(req).await,
        ),
        ["admin", "repositories"] if post => (
            "POST /admin/repositories",
            admin_repositories::post(req).await,
        ),
        ["admin", "secrets"] if get => ("GET /admin/secrets", admin_secrets::get(req).await),
        ["admin", "secrets"] if post => ("POST /admin/secrets", admin_secrets::post(req).await),
        ["admin", "caches"] if get => ("GET /admin/caches", admin_caches::get(req).await),
        ["admin", "caches"] if post => ("POST /admin/caches", admin_caches::post(req).await),
        ["admin", "jobs"] if get => ("GET /admin/jobs", admin_jobs::get(req).await),
        ["admin", "jobs"] if post => ("POST /admin/jobs", admin_jobs::post(req).await),
        ["admin", "health"] if get => ("GET /admin/health", admin_health::get(req).await),
        _ => ("web not found", Err(PageError::NotFound)),
    }
}
