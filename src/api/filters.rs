//! Reusable filters: the app handle and the authenticated actor with its role requirements.

use std::convert::Infallible;

use warp::{Filter, Rejection};

use crate::app::App;
use crate::auth::{self, Actor};
use crate::http::ApiError;

pub fn with_app(app: App) -> impl Filter<Extract = (App,), Error = Infallible> + Clone {
    warp::any().map(move || app.clone())
}

/// Any authenticated user or service token.
pub fn any_actor(app: App) -> impl Filter<Extract = (Actor,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization").and_then(move |header: Option<String>| {
        let app = app.clone();
        async move {
            auth::authenticate(&app.db, header.as_deref())
                .await
                .map_err(|e| warp::reject::custom(ApiError::from(e)))
        }
    })
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
