//! `/admin`: the administration overview, with counters that lead to each section (the
//! others' counters come with their sections' domain reads).

use askama::Template;
use warp::reply::Response;

use crate::web::Req;
use crate::web::page::{self, Chrome, PageError};

struct Counter {
    label: &'static str,
    value: i64,
    href: &'static str,
}

#[derive(Template)]
#[template(path = "admin/general.html")]
struct AdminPage {
    chrome: Chrome,
    admin_tab: &'static str,
    counters: Vec<Counter>,
}

pub async fn get(req: &Req) -> Result<Response, PageError> {
    let session = req.admin_session().await?;
    let users = crate::auth::user_admin::list(&req.app.db).await?.len() as i64;
    let tokens = crate::auth::service_tokens::list(&req.app.db).await?.len() as i64;
    let view = AdminPage {
        chrome: session.chrome("Administration", "admin"),
        admin_tab: "general",
        counters: vec![
            Counter {
                label: "Users",
                value: users,
                href: "/admin/users",
            },
            Counter {
                label: "Service tokens",
                value: tokens,
                href: "/admin/tokens",
            },
        ],
    };
    page::render(&view)
}
