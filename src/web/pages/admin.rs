//! `/admin`: the administration overview, with counters that lead to each section (the API's
//! sidebar counters, and the shared tool cache's size).

use askama::Template;
use warp::reply::Response;

use crate::web::page::{self, Chrome, PageError};
use crate::web::{Req, format};

struct Counter {
    label: &'static str,
    value: String,
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
    let counts = crate::stats::counters(&req.app.db).await?;
    let [_, (_, tool_bytes)] = crate::cache::usage(&req.app.db).await?;
    let counter = |label, value: i64, href| Counter {
        label,
        value: value.to_string(),
        href,
    };
    let mut counters = vec![
        counter("Users", counts.users, "/admin/users"),
        counter("Service tokens", counts.tokens, "/admin/tokens"),
        counter("Secrets", counts.secrets, "/admin/secrets"),
        counter("Repositories", counts.repositories, "/admin/repositories"),
    ];
    if req.app.config.cache.enabled {
        counters.push(Counter {
            label: "Tool cache",
            value: format::size(tool_bytes),
            href: "/admin/caches",
        });
    }
    let view = AdminPage {
        chrome: session.chrome("Administration", "admin"),
        admin_tab: "general",
        counters,
    };
    page::render(&view)
}
