//! The accounts surface in one group: signing in and out, the user's own tokens, user
//! administration and repository members.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::app::App;

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    super::sessions::routes(app.clone())
        .or(super::auth_github::routes(app.clone()))
        .unify()
        .or(super::me_tokens::routes(app.clone()))
        .unify()
        .or(super::me_password::routes(app.clone()))
        .unify()
        .or(super::admin_users::routes(app.clone()))
        .unify()
        .or(super::memberships::routes(app))
        .unify()
        .boxed()
}
