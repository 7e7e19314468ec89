//! Signing users in through the App's OAuth client: the authorize URL on GitHub's web host,
//! the exchange of the code GitHub hands back for the user's token, and the calls made with
//! that token (who the user is, their e-mails, the organisation's repositories they can see).

use ::http::Method;
use url::Url;

use super::http::ApiResponse;
use super::types::{AuthenticatedUser, RepositoryAccess, UserEmail};
use super::{Credential, GitHub, GithubError};
use crate::config::GithubConfig;

/// What the original asked for: the user's e-mails, and repository access so that listing the
/// organisation's repositories shows the private ones with the user's permissions.
const SCOPE: &str = "user:email,repo";

/// The OAuth client of the App and the web host it lives on.
pub(super) struct OAuthClient {
    web: Url,
    client_id: String,
    client_secret: String,
}

impl OAuthClient {
    pub(super) fn from_config(config: &GithubConfig) -> Result<OAuthClient, GithubError> {
        let web_url = config.effective_web_url();
        let web = Url::parse(&web_url)
            .map_err(|e| GithubError::BadConfig(format!("github.web_url `{web_url}`: {e}")))?;
        Ok(OAuthClient {
            web,
            client_id: config.oauth_client_id.trim().to_string(),
            client_secret: config.oauth_client_secret.trim().to_string(),
        })
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.web.clone();
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}{path}"));
        url
    }
}

/// Why a code did not become a token.
#[derive(Debug, thiserror::Error)]
pub enum CodeExchangeError {
    /// GitHub answered, and said no (an unknown, used or expired code, a redirect URI that
    /// differs from the one the code was issued for, a wrong client secret).
    #[error("GitHub refused the sign-in code: {0}")]
    Refused(String),
    #[error(transparent)]
    Github(#[from] GithubError),
}

#[derive(serde::Deserialize)]
struct AccessTokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl GitHub {
    /// `{web}/login/oauth/authorize?…`, the query sorted by key as the original made it.
    pub fn authorize_url(&self, state: &str, redirect_uri: &str) -> Url {
        let oauth = &self.inner.oauth;
        let mut url = oauth.url("/login/oauth/authorize");
        url.query_pairs_mut()
            .append_pair("allow_signup", "false")
            .append_pair("client_id", &oauth.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", SCOPE)
            .append_pair("state", state);
        url
    }

    /// `POST {web}/login/oauth/access_token`: the user's token for the code GitHub handed back.
    /// GitHub answers a refusal with 200 and an `error` field, not with an error status.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<String, CodeExchangeError> {
        const OP: &str = "oauth_access_token";
        let oauth = &self.inner.oauth;
        let body = serde_json::json!({
            "client_id": oauth.client_id,
            "client_secret": oauth.client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
        });
        let url = oauth.url("/login/oauth/access_token");
        let response = self
            .inner
            .http
            .execute(OP, Method::POST, &url, None, Some(&body))
            .await?;
        if !response.status.is_success() {
            return Err(refused_or_failed(response, OP));
        }
        let answer: AccessTokenAnswer = response.json(OP)?;
        match (answer.access_token, answer.error) {
            (Some(token), None) if !token.is_empty() => Ok(token),
            (_, error) => Err(CodeExchangeError::Refused(
                answer
                    .error_description
                    .or(error)
                    .unwrap_or_else(|| "no token in the answer".into()),
            )),
        }
    }

    /// `GET /user` with the user's token.
    pub async fn authenticated_user(&self, token: &str) -> Result<AuthenticatedUser, GithubError> {
        const OP: &str = "authenticated_user";
        let url = self.url(&["user"]);
        let response = self
            .call_as(Credential::User(token), OP, Method::GET, url, None)
            .await?;
        if !response.status.is_success() {
            return Err(response.into_error(OP));
        }
        response.json(OP)
    }

    /// `GET /user/emails` with the user's token, every page.
    pub async fn user_emails(&self, token: &str) -> Result<Vec<UserEmail>, GithubError> {
        let url = self.url(&["user", "emails"]);
        self.get_all_as(Credential::User(token), "user_emails", url, &[])
            .await
    }

    /// `GET /orgs/{org}/repos` with the user's token: the organisation's repositories this user
    /// can see, each with their permissions, every page.
    pub async fn user_org_repositories(
        &self,
        token: &str,
    ) -> Result<Vec<RepositoryAccess>, GithubError> {
        let url = self.url(&["orgs", self.org(), "repos"]);
        self.get_all_as(Credential::User(token), "user_org_repositories", url, &[])
            .await
    }
}

/// A 4xx from the token endpoint is GitHub refusing the client; anything else is an outage.
fn refused_or_failed(response: ApiResponse, operation: &'static str) -> CodeExchangeError {
    if response.status.is_client_error() {
        CodeExchangeError::Refused(response.error_message())
    } else {
        CodeExchangeError::Github(response.into_error(operation))
    }
}
