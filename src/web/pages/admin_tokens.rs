//! `/admin/tokens`: service tokens (unrestricted API access for automation): list, create (the
//! value is shown once, on the answer page), revoke. Administrators only.

use askama::Template;
use http::StatusCode;
use warp::reply::Response;

use crate::auth::service_tokens::{self, ServiceTokenError};
use crate::web::format;
use crate::web::page::{self, Chrome, PageError, see_other};
use crate::web::{Req, Session};

struct TokenRow {
    id: i64,
    description: String,
    created: String,
    created_by: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct TokensPage {
    chrome: Chrome,
    admin_tab: &'static str,
    tokens: Vec<TokenRow>,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
    /// A token just created: (description, value), shown once.
    created: Option<(String, String)>,
}

const NOTICES: &[(&str, &str)] = &[("revoked", "The service token was revoked.")];
const PROBLEMS: &[(&str, &str)] = &[
    ("not_found", "That service token does not exist any more."),
    (
        "description",
        "A description is required, so you know later what the token is for.",
    ),
];

async fn view(req: &Req, session: &Session) -> Result<TokensPage, PageError> {
    let tokens = service_tokens::list(&req.app.db).await?;
    Ok(TokensPage {
        chrome: session.chrome("Service tokens · Administration", "admin"),
        admin_tab: "tokens",
        tokens: tokens
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                description: t.description,
                created: format::ago_now(t.created_at),
                created_by: t.created_by.unwrap_or_else(|| "a deleted user".into()),
                last_used: t.last_used_at.map_or_else(
                    || "Never used".into(),
                    |at| format!("Last used {}", format::ago_now(at)),
                ),
            })
            .collect(),
        notice: req.message("notice", NOTICES),
        problem: req.message("problem", PROBLEMS),
        created: None,
    })
}

pub async fn get(req: &Req) -> Result<Response, PageError> {
    let session = req.admin_session().await?;
    page::render(&view(req, &session).await?)
}

/// `action` = `create` (with `description`) or `revoke` (with `token_id`).
pub async fn post(req: &Req) -> Result<Response, PageError> {
    let session = req.admin_session().await?;
    let form = req.form(&session)?;
    let actor = session.actor.audit();
    match form.get("action") {
        Some("create") => {
            let description = form.get("description").unwrap_or("");
            match service_tokens::create(&req.app.db, description, Some(session.user_id), &actor)
                .await
            {
                Ok((record, value)) => {
                    let mut page = view(req, &session).await?;
                    page.created = Some((record.description, value));
                    page::render_with(StatusCode::CREATED, &page)
                }
                Err(ServiceTokenError::MissingDescription) => {
                    Ok(see_other("/admin/tokens?problem=description"))
                }
                Err(ServiceTokenError::Db(e)) => Err(e.into()),
            }
        }
        Some("revoke") => {
            let id = form.id("token_id")?;
            if service_tokens::revoke(&req.app.db, id, &actor).await? {
                Ok(see_other("/admin/tokens?notice=revoked"))
            } else {
                Ok(see_other("/admin/tokens?problem=not_found"))
            }
        }
        _ => Err(PageError::BadRequest("Unknown action")),
    }
}
