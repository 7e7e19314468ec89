//! The JSON API. Handlers are thin: parse, authorize, call the domain module, render. Every
//! route is tagged with its name for metrics; every failure is a JSON `{"code","message"}`.

mod access;
mod accounts;
mod admin;
mod admin_counters;
mod admin_users;
mod auth_github;
mod auth_oidc;
mod branches;
mod cache;
mod checks;
mod commits;
mod coverage;
mod filters;
mod github;
mod graphs;
mod health;
mod issues;
mod me;
mod me_password;
mod me_tokens;
mod memberships;
mod openapi;
mod org_repos;
mod reports;
mod repositories;
mod repository_reads;
mod repository_settings;
mod secret_grants;
mod secret_names;
mod secrets;
pub mod session_cookie;
mod sessions;
mod stats;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::app::App;
use crate::http::recover;

pub use filters::{admin_actor, any_actor, with_app};

/// Every route of the API listener.
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let routes = health::routes(app.clone())
        .or(openapi::routes())
        .unify()
        .or(accounts::routes(app.clone()))
        .unify()
        .or(auth_oidc::routes(app.clone()))
        .unify()
        .or(me::routes(app.clone()))
        .unify()
        .or(admin::routes(app.clone()))
        .unify()
        // Before the repository routes, which would take `$org_repos` as a name.
        .or(org_repos::routes(app.clone()))
        .unify()
        .or(repositories::routes(app.clone()))
        .unify()
        .or(repository_reads::routes(app.clone()))
        .unify()
        .or(admin_counters::routes(app.clone()))
        .unify()
        .or(repository_settings::routes(app.clone()))
        .unify()
        .or(secret_names::routes(app.clone()))
        .unify()
        // Before the branch route, which takes the rest of the path as a branch name.
        .or(graphs::routes(app.clone()))
        .unify()
        .or(branches::routes(app.clone()))
        .unify()
        .or(commits::routes(app.clone()))
        .unify()
        .or(stats::routes(app.clone()))
        .unify()
        .or(coverage::routes(app.clone())
            .or(reports::routes(app.clone()))
            .unify())
        .unify()
        .or(checks::routes(app.clone())
            .or(issues::routes(app.clone()))
            .unify())
        .unify()
        .or(secrets::routes(app.clone())
            .or(secret_grants::routes(app.clone()))
            .unify()
            .or(cache::routes(app.clone()))
            .unify())
        .unify()
        .or(github::routes(app))
        .unify();
    // Before any route: a NUL in the path or query is a 400 whichever handler it was meant for.
    let answered = crate::http::input::guard()
        .and(routes)
        .recover(recover)
        .unify();
    warp::path::full()
        .and(answered)
        .map(|path: warp::path::FullPath, response| openapi::with_allow(path.as_str(), response))
        .boxed()
}
