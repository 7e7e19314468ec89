//! `/admin/secrets`: organisation secrets. Listed with their dates and reach (every repository,
//! or the repositories they are granted to); added, given a new value, granted to or taken back
//! from a repository, opened to every repository or narrowed again, and deleted after a
//! confirmation step (`?delete=<name>`, a plain page state, so it works without JavaScript).
//! Values are write-only: no answer ever contains one. Administrators only.

use askama::Template;
use http::StatusCode;
use warp::reply::Response;

use crate::secrets::grants::{self, GrantError};
use crate::secrets::{self, Cipher, NameStatus, Scope, SecretError};
use crate::web::page::{self, Chrome, PageError, see_other};
use crate::web::{Form, Req, Session};

struct SecretRow {
    name: String,
    dates: String,
    used: String,
    all_repositories: bool,
    granted: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/secrets.html")]
struct SecretsPage {
    chrome: Chrome,
    admin_tab: &'static str,
    secrets: Vec<SecretRow>,
    /// The secret whose deletion waits for confirmation.
    confirm_delete: Option<String>,
    notice: Option<&'static str>,
    problem: Option<String>,
    /// Why values cannot be stored now (no usable encryption key), if so.
    key_problem: Option<String>,
}

const NOTICES: &[(&str, &str)] = &[
    ("created", "The secret was added."),
    ("replaced", "The secret's value was replaced."),
    ("deleted", "The secret was deleted."),
    ("granted", "The repository may now use the secret."),
    ("revoked", "The repository may no longer use the secret."),
    (
        "reach",
        "Which repositories may use the secret was changed.",
    ),
];

async fn view(req: &Req, session: &Session) -> Result<SecretsPage, PageError> {
    let db = &req.app.db;
    let mut rows = Vec::new();
    for s in secrets::list(db, Scope::Organization).await? {
        let reach = match grants::list(db, &s.name).await {
            Ok(reach) => reach,
            // Deleted between the two reads: not listed.
            Err(GrantError::UnknownSecret(_)) => continue,
            Err(e) => return Err(anyhow::Error::new(e).into()),
        };
        let (dates, used) = super::secret_dates::of(&s);
        rows.push(SecretRow {
            dates,
            used,
            all_repositories: reach.all_repositories,
            granted: reach.grants.into_iter().map(|g| g.repository).collect(),
            name: s.name,
        });
    }
    let confirm_delete = req
        .query("delete")
        .and_then(|name| rows.iter().find(|r| r.name == name))
        .map(|r| r.name.clone());
    Ok(SecretsPage {
        chrome: session.chrome("Secrets · Administration", "admin"),
        admin_tab: "secrets",
        secrets: rows,
        confirm_delete,
        notice: req.message("notice", NOTICES),
        problem: None,
        key_problem: Cipher::from_config(&req.app.config.security)
            .err()
            .map(|e| e.to_string()),
    })
}

pub async fn get(req: &Req) -> Result<Response, PageError> {
    let session = req.admin_session().await?;
    page::render(&view(req, &session).await?)
}

/// The page again, with what was wrong; nothing was written.
async fn refused(
    req: &Req,
    session: &Session,
    status: StatusCode,
    why: String,
) -> Result<Response, PageError> {
    let mut view = view(req, session).await?;
    view.problem = Some(why);
    view.confirm_delete = None;
    page::render_with(status, &view)
}

/// Why a form did nothing: a page error, or what the person who sent it should fix.
enum Refusal {
    Page(PageError),
    Bad(String),
    Gone(String),
    /// No usable encryption key: nothing can be stored until the configuration has one.
    NoKey(String),
}

impl From<PageError> for Refusal {
    fn from(e: PageError) -> Refusal {
        Refusal::Page(e)
    }
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Refusal {
        Refusal::Page(e.into())
    }
}

impl From<SecretError> for Refusal {
    fn from(e: SecretError) -> Refusal {
        match e {
            SecretError::InvalidName(_) | SecretError::EmptyValue | SecretError::TooLarge => {
                Refusal::Bad(capitalised(&e.to_string()))
            }
            SecretError::Db(e) => e.into(),
            other => Refusal::Page(anyhow::Error::new(other).into()),
        }
    }
}

impl From<GrantError> for Refusal {
    fn from(e: GrantError) -> Refusal {
        match e {
            GrantError::UnknownSecret(name) => Refusal::Gone(name),
            GrantError::UnknownRepository(repo) => {
                Refusal::Bad(format!("There is no repository called “{repo}”."))
            }
            GrantError::Db(e) => e.into(),
        }
    }
}

fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// `action` = `create` (`name`, `value`, optional `all_repositories`), `replace` (`name`,
/// `value`), `delete` (`name`), `grant` / `revoke` (`name`, `repository`) or `reach` (`name`,
/// `all_repositories` = `true` / `false`).
pub async fn post(req: &Req) -> Result<Response, PageError> {
    let (session, form) = req.admin_form().await?;
    match act(req, &session, &form).await {
        Ok(notice) => Ok(see_other(&format!("/admin/secrets?notice={notice}"))),
        Err(Refusal::Page(e)) => Err(e),
        Err(Refusal::Bad(why)) => refused(req, &session, StatusCode::BAD_REQUEST, why).await,
        Err(Refusal::NoKey(why)) => {
            let why = format!("Secrets cannot be stored: {why}.");
            refused(req, &session, StatusCode::SERVICE_UNAVAILABLE, why).await
        }
        Err(Refusal::Gone(name)) => {
            let why = format!("There is no organisation secret called “{name}” (any more).");
            refused(req, &session, StatusCode::NOT_FOUND, why).await
        }
    }
}

/// Does what the form asks; the notice to show after it.
async fn act(req: &Req, session: &Session, form: &Form) -> Result<&'static str, Refusal> {
    let db = &req.app.db;
    let actor = session.actor.audit();
    let name = form.get("name").unwrap_or("").trim();
    let value = form.get("value").unwrap_or("").as_bytes();
    let scope = Scope::Organization;
    let cipher =
        || Cipher::from_config(&req.app.config.security).map_err(|e| Refusal::NoKey(e.to_string()));
    match form.get("action") {
        Some("create") => {
            if secrets::name_status(db, scope, name).await? == NameStatus::Conflict {
                return Err(Refusal::Bad(format!(
                    "A secret called “{name}” exists already: replace its value instead."
                )));
            }
            secrets::put(db, &cipher()?, scope, name, value, Some(session.user_id)).await?;
            secrets::audit(db, &actor, "secret.write", scope, name).await;
            if form.get("all_repositories") == Some("true") {
                grants::set_all_repositories(db, name, true, &actor).await?;
            }
            Ok("created")
        }
        Some("replace") => {
            secrets::update_value(db, &cipher()?, scope, name, value)
                .await?
                .ok_or_else(|| Refusal::Gone(name.to_string()))?;
            secrets::audit(db, &actor, "secret.write", scope, name).await;
            Ok("replaced")
        }
        Some("delete") => {
            if !secrets::delete(db, scope, name).await? {
                return Err(Refusal::Gone(name.to_string()));
            }
            secrets::audit(db, &actor, "secret.delete", scope, name).await;
            Ok("deleted")
        }
        Some(action @ ("grant" | "revoke")) => {
            let repository = form.get("repository").unwrap_or("").trim();
            if repository.is_empty() {
                return Err(Refusal::Bad("Enter the name of the repository.".into()));
            }
            if action == "grant" {
                grants::grant(db, name, repository, &actor, Some(session.user_id)).await?;
                Ok("granted")
            } else {
                grants::revoke(db, name, repository, &actor).await?;
                Ok("revoked")
            }
        }
        Some("reach") => {
            let all = match form.get("all_repositories") {
                Some("true") => true,
                Some("false") => false,
                _ => return Err(PageError::BadRequest("Unknown choice of repositories").into()),
            };
            grants::set_all_repositories(db, name, all, &actor).await?;
            Ok("reach")
        }
        _ => Err(PageError::BadRequest("Unknown action").into()),
    }
}
