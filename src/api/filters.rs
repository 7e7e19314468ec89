//! Reusable filters: the app handle and the authenticated actor with its role requirements.

use std::convert::Infallible;

use warp::{Filter, Rejection};

use crate::app::App;
use crate::auth::Actor;
use crate::http::ApiError;

pub fn with_app(app: App) -> impl Filter<Extract = (App,), Error = Infallible> + Clone {
    warp::any().map(move || app.clone())
}

/// Any authenticated user or service token: by `Authorization` header, or by session cookie
/// (with the CSRF check for state-changing methods).
pub fn any_actor(app: App) -> impl Filter<Extract = (Actor,), Error = Rejection> + Clone {
    warp::method().and(warp::header::headers_cloned()).and_then(
        move |method: http::Method, headers: http::HeaderMap| {
            let app = app.clone();
            async move {
                super::session_cookie::request_actor(&app, &method, &headers)
                    .await
                    .map_err(warp::reject::custom)
            }
        },
    )
}

/// An administrator (a user with the admin flag; service tokens are not admins).
pub fn admin_actor(app: App) -> impl Filter<Extract = (Actor,), Error = Rejection> + Clone {
    any_actor(app).and_then(|actor: Actor| async move {
        if actor.is_admin() {
            Ok(actor)
        } else {
            Err(warp::reject::custom(ApiError::forbidden()))
        }
    })
}
