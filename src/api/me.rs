//! `GET /v1/me`: who the presented token belongs to.

use warp::Filter;
use warp::reply::{Reply, Response};

use super::any_actor;
use crate::app::App;
use crate::auth::Actor;
use crate::http::tag;

pub fn routes(app: App) -> warp::filters::BoxedFilter<(Response,)> {
    warp::path!("v1" / "me")
        .and(warp::get())
        .and(any_actor(app))
        .map(|actor: Actor| {
            let body = match actor {
                Actor::User { id, login, admin } => {
                    serde_json::json!({"kind": "user", "id": id, "login": login, "admin": admin})
                }
                Actor::Service { token_id } => {
                    serde_json::json!({"kind": "service", "token_id": token_id})
                }
            };
            warp::reply::json(&body).into_response()
        })
        .map(tag("GET /v1/me"))
        .boxed()
}
