//! `PUT /v1/me/password`: a signed-in user sets their own local password (the current one is
//! needed to replace it, and guessing it counts like failed sign-ins).

use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use warp::Filter;
use warp::reply::{Reply, Response};

use super::{any_actor, with_app};
use crate::app::App;
use crate::auth::Actor;
use crate::auth::local::{self, ChangePasswordError, SetPasswordError, SignInError};
use crate::auth::login_limit::LoginLimits;
use crate::http::{ApiError, PeerAddr, body, tag};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    current_password: Option<String>,
    password: Option<String>,
}

pub fn routes(app: App) -> warp::filters::BoxedFilter<(Response,)> {
    warp::path!("v1" / "me" / "password")
        .and(warp::put())
        .and(any_actor(app.clone()))
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<PeerAddr>())
        .and(body::json::<NewPassword>(8 * 1024))
        .and(with_app(app))
        .then(
            |actor: Actor,
             headers: HeaderMap,
             peer: Option<PeerAddr>,
             input: NewPassword,
             app: App| async move {
                change(&app, &actor, &headers, peer, input)
                    .await
                    .unwrap_or_else(|e| e)
            },
        )
        .map(tag("PUT /v1/me/password"))
        .boxed()
}

async fn change(
    app: &App,
    actor: &Actor,
    headers: &HeaderMap,
    peer: Option<PeerAddr>,
    input: NewPassword,
) -> Result<Response, Response> {
    let user_id = actor
        .user_id()
        .ok_or_else(|| ApiError::forbidden().into_response())?;
    let password = input.password.unwrap_or_default();
    let limits = LoginLimits::from_config(&app.config.accounts);
    let address = super::sessions::client_address(app, peer, headers);
    let refused = |code: &str, e: &dyn std::fmt::Display| {
        ApiError::bad_request(code, e.to_string()).into_response()
    };
    match local::change_password(
        &app.db,
        &app.kv,
        limits,
        user_id,
        input.current_password.as_deref(),
        &password,
        address,
        &actor.audit(),
    )
    .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e @ ChangePasswordError::CurrentRequired) => {
            Err(refused("password.current_required", &e))
        }
        Err(ChangePasswordError::SignIn(SignInError::InvalidCredentials)) => Err(refused(
            "password.current_invalid",
            &"The current password is not right",
        )),
        Err(ChangePasswordError::SignIn(e @ SignInError::RateLimited(wait))) => {
            Err(super::sessions::rate_limited(&e, wait))
        }
        Err(ChangePasswordError::Set(SetPasswordError::Password(e))) => {
            Err(refused("password.invalid", &e))
        }
        Err(e) => Err(ApiError::internal("changing a password", e).into_response()),
    }
}
