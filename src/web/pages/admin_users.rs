//! `/admin/users`: every user with their role and sessions; promote, demote, sign out
//! everywhere (administrators only).

use askama::Template;
use warp::reply::Response;

use crate::auth::sessions;
use crate::auth::user_admin::{self, UserAdminError};
use crate::web::Req;
use crate::web::format;
use crate::web::page::{self, Chrome, PageError, see_other};

struct UserRow {
    id: i64,
    login: String,
    admin: bool,
    how: &'static str,
    sessions: i64,
    since: String,
    is_me: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    chrome: Chrome,
    admin_tab: &'static str,
    users: Vec<UserRow>,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
}

const NOTICES: &[(&str, &str)] = &[
    ("promoted", "The user is now an administrator."),
    ("demoted", "The user is no longer an administrator."),
    (
        "signed_out",
        "The user was signed out everywhere: every session and personal token was revoked.",
    ),
];

const PROBLEMS: &[(&str, &str)] = &[
    (
        "last_admin",
        "This is the last administrator: promote someone else first.",
    ),
    ("not_found", "That user does not exist any more."),
];

pub async fn get(req: &Req) -> Result<Response, PageError> {
    let session = req.admin_session().await?;
    let users = user_admin::list(&req.app.db).await?;
    let view = UsersPage {
        chrome: session.chrome("Users · Administration", "admin"),
        admin_tab: "users",
        users: users
            .into_iter()
            .map(|u| UserRow {
                is_me: u.id == session.user_id,
                id: u.id,
                admin: u.admin,
                how: match (u.github_id.is_some(), u.local_password) {
                    (true, true) => "GitHub and password",
                    (true, false) => "GitHub",
                    (false, true) => "Password",
                    (false, false) => "No sign-in method",
                },
                sessions: u.active_sessions,
                since: format::ago_now(u.created_at),
                login: u.login,
            })
            .collect(),
        notice: req.message("notice", NOTICES),
        problem: req.message("problem", PROBLEMS),
    };
    page::render(&view)
}

/// `action` = `promote`, `demote` or `sign_out` on `user_id`.
pub async fn post(req: &Req) -> Result<Response, PageError> {
    let session = req.admin_session().await?;
    let form = req.form(&session)?;
    let id = form.id("user_id")?;
    let actor = session.actor.audit();
    let done = match form.get("action") {
        Some("promote") => user_admin::set_admin(&req.app.db, id, true, &actor)
            .await
            .map(|_| "promoted"),
        Some("demote") => user_admin::set_admin(&req.app.db, id, false, &actor)
            .await
            .map(|_| "demoted"),
        Some("sign_out") => {
            if user_admin::get(&req.app.db, id).await?.is_none() {
                return Ok(see_other("/admin/users?problem=not_found"));
            }
            sessions::revoke_all(&req.app.db, id, &actor).await?;
            Ok("signed_out")
        }
        _ => return Err(PageError::BadRequest("Unknown action")),
    };
    match done {
        Ok(code) => Ok(see_other(&format!("/admin/users?notice={code}"))),
        Err(UserAdminError::LastAdmin) => Ok(see_other("/admin/users?problem=last_admin")),
        Err(UserAdminError::NotFound) => Ok(see_other("/admin/users?problem=not_found")),
        Err(UserAdminError::Db(e)) => Err(e.into()),
    }
}
