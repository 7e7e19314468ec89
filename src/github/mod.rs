//! The GitHub App client: the handful of REST calls cocov makes (repositories, collaborators,
//! membership, statuses, file contents, branch heads) as the App's installation, and the git
//! credentials for fetching commits. It knows nothing of cocov's own HTTP API.
//!
//! `auth` holds the JWT and the installation-token cache, `http` the request execution
//! (retries, rate limits, pagination, metrics), `types` the payloads, `webhook` the signature
//! check of incoming deliveries.

pub mod auth;
mod http;
mod oauth;
pub mod types;
pub mod webhook;

use std::sync::Arc;

use ::http::{Method, StatusCode};
use base64::Engine;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use self::auth::{AppAuth, InstallationTokens};
use self::http::{ApiResponse, Http, MAX_PAGES};
use crate::config::GithubConfig;
use crate::kv::Kv;
use crate::metrics::Metrics;

pub use self::oauth::CodeExchangeError;
pub use self::types::{
    AuthenticatedUser, Collaborator, CommitStatus, CommitSummary, Permissions, Repository,
    RepositoryAccess, StatusState, User, UserEmail,
};
pub use self::webhook::{SignatureError, sign, verify_signature};

/// Items asked for per page of a list (GitHub's maximum).
const PER_PAGE: &str = "100";

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("GitHub mode is not configured (github.app_id is empty)")]
    NotConfigured,
    #[error("GitHub configuration: {0}")]
    BadConfig(String),
    #[error("GitHub {operation}: HTTP {status}: {message}")]
    Http {
        operation: &'static str,
        status: u16,
        message: String,
    },
    #[error("GitHub {operation}: rate limited until {}", rfc3339(until))]
    RateLimited {
        operation: &'static str,
        until: OffsetDateTime,
    },
    #[error("GitHub {operation}: no answer within the request timeout")]
    Timeout { operation: &'static str },
    #[error("GitHub {operation}: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
    #[error("GitHub {operation}: unexpected response: {message}")]
    Decode {
        operation: &'static str,
        message: String,
    },
}

impl GithubError {
    /// Whether trying again later may succeed (an outage, a rate limit), as opposed to a
    /// refusal or a misconfiguration that will not change by itself.
    pub fn is_transient(&self) -> bool {
        match self {
            GithubError::Http { status, .. } => *status >= 500 || *status == 429,
            GithubError::RateLimited { .. }
            | GithubError::Timeout { .. }
            | GithubError::Transport { .. } => true,
            GithubError::NotConfigured | GithubError::BadConfig(_) | GithubError::Decode { .. } => {
                false
            }
        }
    }
}

fn rfc3339(t: &OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// The client. Cheap to clone; clones share the token caches.
#[derive(Clone)]
pub struct GitHub {
    inner: Arc<Inner>,
}

struct Inner {
    org: String,
    git_base_url: String,
    oauth: oauth::OAuthClient,
    http: Http,
    app: AppAuth,
    tokens: InstallationTokens,
}

impl GitHub {
    /// None when GitHub mode is off (no app_id configured).
    pub fn from_config(
        config: &GithubConfig,
        kv: Kv,
        metrics: Arc<Metrics>,
    ) -> Result<Option<GitHub>, GithubError> {
        if !config.enabled() {
            return Ok(None);
        }
        let missing = |key: &str| GithubError::BadConfig(format!("github.{key} is required"));
        if config.org_name.trim().is_empty() {
            return Err(missing("org_name"));
        }
        if config.app_installation_id.trim().is_empty() {
            return Err(missing("app_installation_id"));
        }
        let key = auth::parse_private_key(&config.app_private_key)
            .map_err(|e| GithubError::BadConfig(format!("github.app_private_key {e}")))?;
        let cipher = auth::token_cache_cipher(&config.app_private_key)
            .map_err(|e| GithubError::BadConfig(format!("github.app_private_key {e}")))?;
        let http = Http::new(config, metrics)?;
        Ok(Some(GitHub {
            inner: Arc::new(Inner {
                org: config.org_name.trim().to_string(),
                git_base_url: config.effective_git_base_url(),
                oauth: oauth::OAuthClient::from_config(config)?,
                http,
                app: AppAuth::new(&config.app_id, key),
                tokens: InstallationTokens::new(kv, cipher, &config.app_installation_id),
            }),
        }))
    }

    pub fn org(&self) -> &str {
        &self.inner.org
    }

    /// An installation token with more than 5 minutes of validity left.
    pub async fn installation_token(&self) -> Result<String, GithubError> {
        self.inner
            .tokens
            .get(&self.inner.app, &self.inner.http)
            .await
    }

    /// https clone URL of `<org>/<name>` (no credentials in it).
    pub fn clone_url(&self, repo_name: &str) -> String {
        format!(
            "{}/{}/{repo_name}.git",
            self.inner.git_base_url, self.inner.org
        )
    }

    /// git configuration entries carrying the installation token as an `Authorization` header,
    /// so the token is never in argv or a URL. See [`GitHub::git_config_for_token`].
    pub async fn git_auth_config(&self) -> Result<Vec<(String, String)>, GithubError> {
        Ok(self.git_config_for_token(&self.installation_token().await?))
    }

    /// The same as environment variables, for a git run outside `crate::git`.
    pub async fn git_auth_env(&self) -> Result<Vec<(String, String)>, GithubError> {
        Ok(self.git_env_for_token(&self.installation_token().await?))
    }

    /// `http.<git base URL>/.extraHeader: Authorization: Basic base64(x-access-token:<token>)`,
    /// scoped to the git host so a redirect elsewhere does not carry it.
    pub fn git_config_for_token(&self, token: &str) -> Vec<(String, String)> {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        vec![(
            format!("http.{}/.extraHeader", self.inner.git_base_url),
            format!("Authorization: Basic {basic}"),
        )]
    }

    /// [`GitHub::git_config_for_token`] as `GIT_CONFIG_*` variables, plus
    /// `GIT_TERMINAL_PROMPT=0` so a refused token fails instead of prompting. These replace any
    /// other `GIT_CONFIG_*` entries of the command.
    pub fn git_env_for_token(&self, token: &str) -> Vec<(String, String)> {
        let mut env = crate::git::config_env(&self.git_config_for_token(token));
        env.push(("GIT_TERMINAL_PROMPT".into(), "0".into()));
        env
    }

    /// The transport of the clone URLs (the scheme of the configured git host): allowed for
    /// GitHub repositories whatever `git.allowed_protocols` says, as an administrator set it.
    pub fn git_protocol(&self) -> &str {
        self.inner
            .git_base_url
            .split_once("://")
            .map_or("https", |(scheme, _)| scheme)
    }

    /// `GET /repos/{org}/{name}`; 404 → None.
    pub async fn repository(&self, name: &str) -> Result<Option<Repository>, GithubError> {
        let url = self.url(&["repos", self.org(), name]);
        self.get_optional("repository", url).await
    }

    /// `GET /repositories/{id}`; 404 → None.
    pub async fn repository_by_id(
        &self,
        github_id: i64,
    ) -> Result<Option<Repository>, GithubError> {
        let url = self.url(&["repositories", &github_id.to_string()]);
        self.get_optional("repository_by_id", url).await
    }

    /// `GET /orgs/{org}/repos`, every page.
    pub async fn org_repositories(&self) -> Result<Vec<Repository>, GithubError> {
        let url = self.url(&["orgs", self.org(), "repos"]);
        self.get_all("org_repositories", url, &[]).await
    }

    /// `GET /repos/{org}/{name}/collaborators?affiliation=all`, every page.
    pub async fn collaborators(&self, repo_name: &str) -> Result<Vec<Collaborator>, GithubError> {
        let url = self.url(&["repos", self.org(), repo_name, "collaborators"]);
        self.get_all("collaborators", url, &[("affiliation", "all")])
            .await
    }

    /// `GET /orgs/{org}/members/{login}`: 204 → true, 404 → false.
    pub async fn org_member(&self, login: &str) -> Result<bool, GithubError> {
        const OP: &str = "org_member";
        let url = self.url(&["orgs", self.org(), "members", login]);
        let response = self.call(OP, Method::GET, url, None).await?;
        match response.status {
            StatusCode::NO_CONTENT => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(response.into_error(OP)),
        }
    }

    /// `GET /orgs/{org}/outside_collaborators`, every page.
    pub async fn outside_collaborators(&self) -> Result<Vec<User>, GithubError> {
        let url = self.url(&["orgs", self.org(), "outside_collaborators"]);
        self.get_all("outside_collaborators", url, &[]).await
    }

    /// `POST /repos/{org}/{name}/statuses/{sha}`; the description is cut to 140 characters.
    pub async fn create_status(
        &self,
        repo_name: &str,
        sha: &str,
        status: &CommitStatus,
    ) -> Result<(), GithubError> {
        const OP: &str = "create_status";
        let url = self.url(&["repos", self.org(), repo_name, "statuses", sha]);
        let body = status.to_body();
        let response = self.call(OP, Method::POST, url, Some(&body)).await?;
        if response.status.is_success() {
            Ok(())
        } else {
            Err(response.into_error(OP))
        }
    }

    /// `GET /repos/{org}/{name}/contents/{path}?ref=…`: the file's bytes; None when there is
    /// no such file at that ref (404, or the path is a directory, symlink or submodule).
    pub async fn file_contents(
        &self,
        repo_name: &str,
        path: &str,
        git_ref: &str,
    ) -> Result<Option<Vec<u8>>, GithubError> {
        const OP: &str = "file_contents";
        let mut segments = vec!["repos", self.org(), repo_name, "contents"];
        segments.extend(path.split('/').filter(|s| !s.is_empty()));
        let mut url = self.url(&segments);
        url.query_pairs_mut().append_pair("ref", git_ref);
        let response = self.call(OP, Method::GET, url, None).await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status.is_success() {
            return Err(response.into_error(OP));
        }
        let value: serde_json::Value = response.json(OP)?;
        if value.is_array() {
            return Ok(None); // a directory
        }
        let entry: types::ContentEntry =
            serde_json::from_value(value).map_err(|e| GithubError::Decode {
                operation: OP,
                message: e.to_string(),
            })?;
        if entry.kind != "file" {
            return Ok(None);
        }
        let decode_error = |message: String| GithubError::Decode {
            operation: OP,
            message,
        };
        match entry.encoding.as_deref() {
            Some("base64") => {
                // GitHub wraps the base64 at 60 columns.
                let compact: Vec<u8> = entry
                    .content
                    .unwrap_or_default()
                    .bytes()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map(Some)
                    .map_err(|e| decode_error(format!("content is not valid base64: {e}")))
            }
            Some("none") => Err(decode_error(format!(
                "{path} is {} bytes, more than the contents API returns (1 MB)",
                entry.size
            ))),
            other => Err(decode_error(format!("unknown content encoding {other:?}"))),
        }
    }

    /// The newest commit of `branch` (`GET /repos/{org}/{name}/commits?sha={branch}&per_page=1`);
    /// None for an unknown branch or an empty repository.
    pub async fn latest_commit(
        &self,
        repo_name: &str,
        branch: &str,
    ) -> Result<Option<CommitSummary>, GithubError> {
        const OP: &str = "latest_commit";
        let mut url = self.url(&["repos", self.org(), repo_name, "commits"]);
        url.query_pairs_mut()
            .append_pair("sha", branch)
            .append_pair("per_page", "1");
        let response = self.call(OP, Method::GET, url, None).await?;
        // 404: no such repository or branch; 409: "Git Repository is empty."
        if matches!(
            response.status,
            StatusCode::NOT_FOUND | StatusCode::CONFLICT
        ) {
            return Ok(None);
        }
        if !response.status.is_success() {
            return Err(response.into_error(OP));
        }
        let entries: Vec<types::CommitListEntry> = response.json(OP)?;
        let Some(entry) = entries.into_iter().next() else {
            return Ok(None);
        };
        let author = entry.commit.author.ok_or_else(|| GithubError::Decode {
            operation: OP,
            message: format!("commit {} has no author", entry.sha),
        })?;
        Ok(Some(CommitSummary {
            sha: entry.sha,
            message: entry.commit.message,
            author_name: author.name,
            author_email: author.email,
            date: author.date,
        }))
    }

    fn url(&self, segments: &[&str]) -> url::Url {
        self.inner.http.url(segments)
    }

    async fn call(
        &self,
        operation: &'static str,
        method: Method,
        url: url::Url,
        body: Option<&serde_json::Value>,
    ) -> Result<ApiResponse, GithubError> {
        self.call_as(Credential::Installation, operation, method, url, body)
            .await
    }

    /// One call with the installation token or a user's. A 401 on the installation token means
    /// the cached token was revoked (the App was reinstalled, or the token was rotated): forget
    /// it and try once more. A user's token cannot be renewed here; its 401 is the answer.
    async fn call_as(
        &self,
        credential: Credential<'_>,
        operation: &'static str,
        method: Method,
        url: url::Url,
        body: Option<&serde_json::Value>,
    ) -> Result<ApiResponse, GithubError> {
        let http = &self.inner.http;
        if let Credential::User(token) = credential {
            return http
                .execute(operation, method, &url, Some(token), body)
                .await;
        }
        let token = self.installation_token().await?;
        let response = http
            .execute(operation, method.clone(), &url, Some(&token), body)
            .await?;
        if response.status != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        tracing::warn!(
            operation,
            "GitHub refused the installation token; minting a new one"
        );
        self.inner.tokens.forget(&token).await;
        let token = self.installation_token().await?;
        http.execute(operation, method, &url, Some(&token), body)
            .await
    }

    async fn get_optional<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        url: url::Url,
    ) -> Result<Option<T>, GithubError> {
        let response = self.call(operation, Method::GET, url, None).await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status.is_success() {
            return Err(response.into_error(operation));
        }
        response.json(operation).map(Some)
    }

    async fn get_all<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        url: url::Url,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, GithubError> {
        self.get_all_as(Credential::Installation, operation, url, query)
            .await
    }

    /// Every page of a list, following `Link: <…>; rel="next"`.
    async fn get_all_as<T: serde::de::DeserializeOwned>(
        &self,
        credential: Credential<'_>,
        operation: &'static str,
        mut url: url::Url,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, GithubError> {
        url.query_pairs_mut()
            .extend_pairs(query)
            .append_pair("per_page", PER_PAGE);
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self
                .call_as(credential, operation, Method::GET, url, None)
                .await?;
            if !response.status.is_success() {
                return Err(response.into_error(operation));
            }
            let page: Vec<T> = response.json(operation)?;
            items.extend(page);
            let Some(next) = response.next_page() else {
                return Ok(items);
            };
            url = url::Url::parse(&next)
                .ok()
                .filter(|u| self.inner.http.is_api_url(u))
                .ok_or_else(|| GithubError::Decode {
                    operation,
                    message: format!("pagination link `{next}` is not on the configured API"),
                })?;
        }
        Err(GithubError::Decode {
            operation,
            message: format!("more than {MAX_PAGES} pages"),
        })
    }
}

/// Whose token a call carries.
#[derive(Clone, Copy)]
enum Credential<'a> {
    /// The App's installation token.
    Installation,
    /// A signed-in user's OAuth token.
    User(&'a str),
}

/// The cocov level a GitHub permission set gives (§3.4): admin → "admin", maintain →
/// "maintainer", anything else (write, triage, read) → "user".
pub fn permission_level(p: &Permissions) -> &'static str {
    if p.admin {
        "admin"
    } else if p.maintain {
        "maintainer"
    } else {
        "user"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_from_permissions() {
        let p = |admin, maintain, push, triage, pull| Permissions {
            admin,
            maintain,
            push,
            triage,
            pull,
        };
        assert_eq!(permission_level(&p(true, true, true, true, true)), "admin");
        assert_eq!(
            permission_level(&p(false, true, true, true, true)),
            "maintainer"
        );
        assert_eq!(permission_level(&p(false, false, true, true, true)), "user");
        assert_eq!(
            permission_level(&p(false, false, false, true, true)),
            "user"
        );
        assert_eq!(
            permission_level(&p(false, false, false, false, true)),
            "user"
        );
        assert_eq!(permission_level(&Permissions::default()), "user");
    }

    #[test]
    fn errors_name_the_operation() {
        let e = GithubError::Timeout {
            operation: "create_status",
        };
        assert_eq!(
            e.to_string(),
            "GitHub create_status: no answer within the request timeout"
        );
        let e = GithubError::RateLimited {
            operation: "org_repositories",
            until: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        };
        assert_eq!(
            e.to_string(),
            "GitHub org_repositories: rate limited until 2023-11-14T22:13:20Z"
        );
        assert!(e.is_transient());
        let e = GithubError::Http {
            operation: "repository",
            status: 403,
            message: "Resource not accessible by integration".into(),
        };
        assert!(!e.is_transient());
    }
}
