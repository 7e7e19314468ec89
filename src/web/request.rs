//! A page request: what the handlers read (path, query, form, session), with the auth gate.

use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use http::{HeaderMap, Method};

use super::csrf;
use super::page::{Chrome, PageError};
use crate::api::session_cookie;
use crate::app::App;
use crate::auth::{Actor, AuthError};
use crate::http::PeerAddr;
use crate::http::body::Deferred;

/// One request to a page.
pub struct Req {
    pub app: App,
    pub method: Method,
    /// The path as requested (still percent-encoded), for `return_to`.
    pub path: String,
    /// The raw query string (without `?`).
    pub raw_query: String,
    query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub peer: Option<PeerAddr>,
    /// The body as it arrived, not read yet: it is read only past the auth gate
    /// ([`Req::session`], or [`Req::sign_in_form`] for the one anonymous form), so an anonymous
    /// POST is refused without the daemon waiting for (and buffering) what it sends.
    unread: Mutex<Option<Deferred>>,
    body: OnceLock<Bytes>,
}

/// The signed-in user of a page request.
#[derive(Debug, Clone)]
pub struct Session {
    pub actor: Actor,
    pub user_id: i64,
    pub login: String,
    pub admin: bool,
    /// The token forms must echo back (`csrf_token`), derived from the session.
    pub csrf: String,
}

/// The fields of a posted form (`application/x-www-form-urlencoded`).
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A field that must be a positive id, else 400.
    pub fn id(&self, name: &str) -> Result<i64, PageError> {
        self.get(name)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|id| *id > 0)
            .ok_or(PageError::BadRequest("The form is missing a valid id"))
    }
}

impl Req {
    pub fn new(
        app: App,
        method: Method,
        path: &str,
        raw_query: &str,
        headers: HeaderMap,
        peer: Option<PeerAddr>,
        body: Deferred,
    ) -> Req {
        Req {
            app,
            method,
            path: path.to_string(),
            raw_query: raw_query.to_string(),
            query: url::form_urlencoded::parse(raw_query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            headers,
            peer,
            unread: Mutex::new(Some(body)),
            body: OnceLock::new(),
        }
    }

    /// The first value of a query parameter, if present and not blank.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    /// The message for `?<param>=<code>` (`notice` or `problem`, set by a redirect after a
    /// form) from the page's own table; an unknown code shows nothing, so a crafted link cannot
    /// put words on the page.
    pub fn message(&self, param: &str, table: &[(&str, &'static str)]) -> Option<&'static str> {
        let code = self.query(param)?;
        table.iter().find(|(c, _)| *c == code).map(|(_, m)| *m)
    }

    /// `?page=` as a page number (1 when absent); a bad value is a 400.
    pub fn page(&self, per_page: u32) -> Result<crate::paging::Page, PageError> {
        let per_page = per_page.to_string();
        crate::paging::Page::parse(self.query("page"), Some(&per_page))
            .map_err(|_| PageError::BadRequest("The page number is not valid"))
    }

    /// Where this request came from: the peer, or what a trusted proxy says.
    pub fn client_address(&self) -> IpAddr {
        let Some(PeerAddr(peer)) = self.peer else {
            return IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        };
        crate::badges::TrustedProxies::parse(&self.app.config.accounts.trusted_proxies)
            .unwrap_or_default()
            .client(peer.ip(), &self.headers)
    }

    /// The path and query of this request, as `return_to` after signing in.
    pub fn here(&self) -> String {
        if self.raw_query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.raw_query)
        }
    }

    /// The auth gate: the signed-in user, or [`PageError::SignIn`] (303 to the sign-in page).
    /// For state-changing methods the session cookie's provenance check applies (a cross-site
    /// form is refused with 403 before anything else), and only then is the posted body read
    /// (for [`Req::form`]).
    pub async fn session(&self) -> Result<Session, PageError> {
        let session = self.signed_in().await?;
        self.read_body().await?;
        Ok(session)
    }

    /// [`Req::session`] for administrators only (403 for others, whose body is not read).
    pub async fn admin_session(&self) -> Result<Session, PageError> {
        let session = self.signed_in().await?;
        if !session.admin {
            return Err(PageError::Forbidden);
        }
        self.read_body().await?;
        Ok(session)
    }

    /// The session cookie's user, without touching the body.
    async fn signed_in(&self) -> Result<Session, PageError> {
        let actor =
            match session_cookie::request_actor(&self.app, &self.method, &self.headers).await {
                Ok(actor) => actor,
                Err(e) if e.code == "auth.csrf" => return Err(PageError::CrossSite),
                Err(e) if e.status == http::StatusCode::SERVICE_UNAVAILABLE => {
                    return Err(PageError::Unavailable);
                }
                Err(_) => return Err(PageError::SignIn(self.here())),
            };
        let Actor::User { id, login, admin } = actor.clone() else {
            return Err(PageError::SignIn(self.here()));
        };
        let token = session_cookie::session_token(&self.headers).unwrap_or_default();
        Ok(Session {
            actor,
            user_id: id,
            login,
            admin,
            csrf: csrf::form_token(&token),
        })
    }

    /// Reads the posted body (once, at most the UI's limit). Safe methods carry no form, so
    /// their body is never read.
    async fn read_body(&self) -> Result<(), PageError> {
        if self.method == Method::GET || self.method == Method::HEAD || self.body.get().is_some() {
            return Ok(());
        }
        let unread = self.unread.lock().map(|mut b| b.take()).unwrap_or(None);
        let bytes = match unread {
            Some(body) => body
                .bytes()
                .await
                .map_err(|e| super::page::body_error(&e))?,
            None => Bytes::new(),
        };
        let _ = self.body.set(bytes);
        Ok(())
    }

    /// The body read by the auth gate (empty if it was not).
    fn posted(&self) -> &[u8] {
        self.body.get().map_or(&[], |b| b.as_ref())
    }

    /// The posted form, after checking its `csrf_token` against the session: a form from
    /// another site cannot know it.
    pub fn form(&self, session: &Session) -> Result<Form, PageError> {
        let form = Form::parse(self.posted());
        if !csrf::matches(&session.csrf, form.get(csrf::FIELD).unwrap_or("")) {
            return Err(PageError::CrossSite);
        }
        Ok(form)
    }

    /// An administrator's posted form: [`Req::admin_session`] then [`Req::form`].
    pub async fn admin_form(&self) -> Result<(Session, Form), PageError> {
        let session = self.admin_session().await?;
        let form = self.form(&session)?;
        Ok((session, form))
    }

    /// The posted form without a session: the sign-in form, the one form an anonymous
    /// visitor may send (its handler checks the form's provenance itself).
    pub async fn sign_in_form(&self) -> Result<Form, PageError> {
        self.read_body().await?;
        Ok(Form::parse(self.posted()))
    }
}

impl Session {
    /// The layout's data for this user; `section` marks the active navigation entry.
    pub fn chrome(&self, title: impl Into<String>, section: &'static str) -> Chrome {
        Chrome::signed_in(self, title.into(), section)
    }
}

impl From<AuthError> for PageError {
    fn from(_: AuthError) -> PageError {
        PageError::Forbidden
    }
}
