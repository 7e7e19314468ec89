//! `/sign-in`: the sign-in page (local form, and buttons to the GitHub and OIDC flows when
//! configured) and `POST /sign-in` for local accounts. `?error=<code>` shows what went wrong
//! (codes from this form and from the browser flows), never whether a login exists.

use askama::Template;
use http::StatusCode;
use warp::reply::Response;

use crate::api::session_cookie;
use crate::auth::csrf;
use crate::auth::local::{self, SignInError};
use crate::auth::login_limit::LoginLimits;
use crate::auth::sessions::{self, SessionPolicy};
use crate::web::Req;
use crate::web::page::{self, Chrome, PageError, same_origin_path, see_other};

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignIn {
    chrome: Chrome,
    local: bool,
    github: bool,
    oidc: Option<String>,
    error: Option<&'static str>,
    return_to: String,
    login: String,
}

/// The message for an `?error=` code. Unknown codes get the generic one, so a crafted link
/// cannot put words on the page.
pub fn error_message(code: &str) -> &'static str {
    match code {
        "invalid_credentials" => "The login or password is not right.",
        "rate_limited" => "Too many failed attempts. Wait a few minutes before trying again.",
        "missing" => "Enter your login and password.",
        "local_disabled" => "Local accounts are not enabled on this instance.",
        "cross_site" => "The sign-in form was not sent from this site. Please try again.",
        "access_denied" | "not_a_member" | "not_an_org_member" | "outside_collaborator" => {
            "Your account is not allowed to use this instance. Ask an administrator for access."
        }
        "state" | "expired" | "state_mismatch" => {
            "The sign-in took too long or was interrupted. Please try again."
        }
        "provider" | "provider_unavailable" | "github_unavailable" => {
            "The sign-in provider could not be reached. Please try again in a minute."
        }
        "provider_error" | "code_rejected" | "id_token_invalid" | "github_refused" => {
            "The sign-in provider did not confirm who you are. Please try again."
        }
        // Not told apart: whether an account of that name exists is not for this page to say.
        "signup_closed" | "login_missing" | "login_taken" => {
            "Your account cannot be used on this instance. Ask an administrator for access."
        }
        "oidc_disabled" | "github_disabled" => "That way of signing in is not enabled here.",
        _ => "Signing in failed. Please try again.",
    }
}

/// Which ways to sign in this instance offers.
struct Methods {
    local: bool,
    github: bool,
    /// The single sign-on button's label, when OIDC is configured.
    oidc: Option<String>,
}

fn methods(req: &Req) -> Methods {
    let config = &req.app.config;
    Methods {
        local: req.app.local_sign_in_open(),
        // The GitHub browser flow (`GET /auth/github`), when its OAuth client is configured.
        github: crate::github_sign_in::client(&req.app).is_ok(),
        // The OIDC browser flow (`GET /auth/oidc`), labelled as `[oidc] display_name` says.
        oidc: req
            .app
            .oidc
            .is_some()
            .then(|| config.oidc.display_name.clone()),
    }
}

pub async fn get(req: &Req) -> Result<Response, PageError> {
    if req.session().await.is_ok() {
        return Ok(see_other(&same_origin_path(req.query("return_to"))));
    }
    form(
        req,
        req.query("error").map(error_message),
        "",
        StatusCode::OK,
    )
}

fn form(
    req: &Req,
    error: Option<&'static str>,
    login: &str,
    status: StatusCode,
) -> Result<Response, PageError> {
    let Methods {
        local,
        github,
        oidc,
    } = methods(req);
    page::render_with(
        status,
        &SignIn {
            chrome: Chrome::anonymous("Sign in"),
            local,
            github,
            oidc,
            error,
            return_to: same_origin_path(req.query("return_to")),
            login: login.to_string(),
        },
    )
}

pub async fn post(req: &Req) -> Result<Response, PageError> {
    // Login CSRF: a form on another site must not sign the browser into someone's account.
    // Checked before the body is read, as the session is for every other form.
    let provenance = session_cookie::provenance(&req.headers);
    if csrf::check_sign_in(provenance, &session_cookie::public_origin(&req.app)).is_err() {
        return Err(PageError::CrossSite);
    }
    let input = req.sign_in_form().await?;
    let back = |code: &str| {
        let return_to = same_origin_path(input.get("return_to"));
        see_other(&format!(
            "/sign-in?error={code}&return_to={}",
            url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
        ))
    };
    if !methods(req).local {
        return Ok(back("local_disabled"));
    }
    let login = input.get("login").unwrap_or("").trim();
    let password = input.get("password").unwrap_or("");
    if login.is_empty() || password.is_empty() {
        return Ok(back("missing"));
    }
    let limits = LoginLimits::from_config(&req.app.config.accounts);
    let address = req.client_address();
    let user =
        match local::sign_in(&req.app.db, &req.app.kv, limits, login, password, address).await {
            Ok(user) => user,
            Err(SignInError::InvalidCredentials) => return Ok(back("invalid_credentials")),
            Err(SignInError::RateLimited(_)) => return Ok(back("rate_limited")),
            Err(e) => return Err(PageError::Internal(e.into())),
        };
    let policy = SessionPolicy::from_config(&req.app.config.accounts);
    let token = sessions::start(&req.app.db, user.user_id, &user.login, policy, "local").await?;
    let mut response = see_other(&same_origin_path(input.get("return_to")));
    response.headers_mut().insert(
        http::header::SET_COOKIE,
        session_cookie::set_cookie(&req.app, &token),
    );
    Ok(response)
}
