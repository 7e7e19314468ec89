//! `POST /sign-out`: ends the session (its token is deleted, not only the cookie) and goes back
//! to the sign-in page.

use warp::reply::Response;

use crate::api::session_cookie;
use crate::auth::sessions;
use crate::web::Req;
use crate::web::page::{PageError, see_other};

pub async fn post(req: &Req) -> Result<Response, PageError> {
    let session = req.session().await?;
    req.form(&session)?;
    if let Some(token) = session_cookie::session_token(&req.headers) {
        sessions::end(&req.app.db, &token).await?;
    }
    let mut response = see_other("/sign-in");
    response.headers_mut().insert(
        http::header::SET_COOKIE,
        session_cookie::clear_cookie(&req.app),
    );
    Ok(response)
}
