//! Signing in with GitHub, in GitHub mode: turning the code GitHub hands back into a cocov user.
//! Shared by the browser flow (`GET /auth/github` and its callback) and the original API flow
//! (`POST /auth/begin`, `POST /auth/exchange`); the flows' single-use state is
//! `auth::oauth_state`, the HTTP answers are `api::auth_github`.
//!
//! In order: the code is exchanged for the user's token; `GET /user` says who they are and
//! `GET /user/emails` which addresses GitHub verified; the organisation must count them as a
//! member (an outside collaborator only when `github.allow_outside_collaborators`), decided
//! with the installation as the original did; the user is created or updated by GitHub id with
//! their token sealed (the secrets' AES-256-GCM key) and their verified e-mails; commits already
//! ingested with those addresses are linked to them; their repository permissions are synced
//! from what their own token shows. Only then does the caller start a session.

use crate::app::App;
use crate::auth::github_accounts::{self, GithubIdentity, SealedToken};
use crate::auth::users::{User, UserError};
use crate::github::{CodeExchangeError, GitHub, GithubError};
use crate::secrets::Cipher;

/// Why a sign-in failed. [`SignInError::code`] is the short code the browser flow puts in
/// `/sign-in?error=<code>` (the sign-in page shows a message per code):
///
/// - `github_disabled`: GitHub sign-in is not configured (no GitHub mode, or no OAuth client);
/// - `state_mismatch`: the callback's state is unknown, expired, already used, or was begun in
///   another browser (raised by the flows, not here);
/// - `github_refused`: GitHub refused (the user denied access, the code is invalid or expired,
///   the OAuth client is misconfigured);
/// - `github_unavailable`: GitHub did not answer in time, failed or rate-limited us;
/// - `not_a_member`: the GitHub user is not a member of the organisation;
/// - `outside_collaborator`: an outside collaborator, and this instance does not allow them;
/// - `login_taken`: another cocov account (e.g. a local one) already has this login;
/// - `internal`: anything else (logged with its cause).
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("GitHub sign-in is not configured on this instance")]
    Disabled,
    #[error("GitHub refused the sign-in: {0}")]
    Refused(String),
    #[error("GitHub is unavailable: {0}")]
    Unavailable(GithubError),
    #[error("`{0}` is not a member of the organisation")]
    NotAMember(String),
    #[error("`{0}` is an outside collaborator, and they may not sign in here")]
    OutsideCollaborator(String),
    #[error("another account already uses the login `{0}`")]
    LoginTaken(String),
    #[error("signing in with GitHub: {0:#}")]
    Internal(anyhow::Error),
}

impl SignInError {
    pub fn code(&self) -> &'static str {
        match self {
            SignInError::Disabled => "github_disabled",
            SignInError::Refused(_) => "github_refused",
            SignInError::Unavailable(_) => "github_unavailable",
            SignInError::NotAMember(_) => "not_a_member",
            SignInError::OutsideCollaborator(_) => "outside_collaborator",
            SignInError::LoginTaken(_) => "login_taken",
            SignInError::Internal(_) => "internal",
        }
    }
}

impl From<GithubError> for SignInError {
    fn from(e: GithubError) -> Self {
        if e.is_transient() {
            SignInError::Unavailable(e)
        } else {
            SignInError::Refused(e.to_string())
        }
    }
}

fn internal(e: impl Into<anyhow::Error>) -> SignInError {
    SignInError::Internal(e.into())
}

/// The GitHub client, when sign-in with it is configured.
pub fn client(app: &App) -> Result<&GitHub, SignInError> {
    match &app.github {
        Some(github) if app.config.github.sign_in_configured() => Ok(github),
        _ => Err(SignInError::Disabled),
    }
}

/// Where GitHub sends a browser back to: registered as the App's callback URL.
pub fn callback_url(app: &App) -> String {
    format!(
        "{}/auth/github/callback",
        app.config.server.ui_base_url.trim_end_matches('/')
    )
}

/// Completes a sign-in with the `code` GitHub issued for `redirect_uri`; returns the user, whose
/// e-mails, token, commits and permissions are then up to date.
pub async fn complete(app: &App, code: &str, redirect_uri: &str) -> Result<User, SignInError> {
    let github = client(app)?;
    let token = github
        .exchange_code(code, redirect_uri)
        .await
        .map_err(|e| match e {
            CodeExchangeError::Refused(why) => SignInError::Refused(why),
            CodeExchangeError::Github(e) => e.into(),
        })?;
    let profile = github.authenticated_user(&token).await?;
    let emails: Vec<String> = github
        .user_emails(&token)
        .await?
        .into_iter()
        .filter(|e| e.verified)
        .map(|e| e.email)
        .collect();
    check_membership(app, github, &profile.login).await?;
    let cipher = Cipher::from_config(&app.config.security).map_err(internal)?;
    let sealed = seal(&cipher, profile.id, token.as_bytes());
    let identity = GithubIdentity {
        github_id: profile.id,
        login: &profile.login,
        avatar_url: profile.avatar_url.as_deref(),
    };
    let user = github_accounts::upsert(&app.db, identity, &sealed, &emails)
        .await
        .map_err(|e| match e {
            UserError::LoginTaken(login) => SignInError::LoginTaken(login),
            e => internal(e),
        })?;
    crate::commits::authors::link_to_user(&app.db, user.id)
        .await
        .map_err(internal)?;
    crate::permissions::sync_user(app, profile.id, &token)
        .await
        .map_err(|e| match e.downcast::<GithubError>() {
            Ok(e) => e.into(),
            Err(e) => internal(e),
        })?;
    Ok(user)
}

/// The original's rule: a member of the organisation may sign in; else an outside
/// collaborator may when the configuration allows them; else nobody.
async fn check_membership(app: &App, github: &GitHub, login: &str) -> Result<(), SignInError> {
    if github.org_member(login).await? {
        return Ok(());
    }
    let outside = github.outside_collaborators().await?;
    if !outside.iter().any(|u| u.login.eq_ignore_ascii_case(login)) {
        return Err(SignInError::NotAMember(login.to_string()));
    }
    if app.config.github.allow_outside_collaborators {
        Ok(())
    } else {
        Err(SignInError::OutsideCollaborator(login.to_string()))
    }
}

/// A user's GitHub token sealed with `cipher`, bound to their GitHub id.
fn seal(cipher: &Cipher, github_id: i64, token: &[u8]) -> SealedToken {
    let (ciphertext, nonce) = cipher.seal(token, &github_accounts::token_context(github_id));
    SealedToken {
        ciphertext,
        nonce: nonce.to_vec(),
        key_id: cipher.key_id().to_string(),
    }
}

/// Re-seals every user's stored GitHub token from `old` to `new` (`cocov admin rotate-key`).
pub async fn rotate_token_key(
    pool: &sqlx::PgPool,
    old: &Cipher,
    new: &Cipher,
) -> anyhow::Result<u64> {
    github_accounts::reseal_tokens(pool, new.key_id(), |github_id, sealed| {
        let token = old.open(
            &sealed.ciphertext,
            &sealed.nonce,
            &sealed.key_id,
            &github_accounts::token_context(github_id),
        )?;
        Ok(seal(new, github_id, &token))
    })
    .await
}
