//! `/repos/{repo}/badges`: the coverage and issues badges with a live preview (the badger's
//! image) and the snippet to embed them in each markup language (`?format=`, tabs that are
//! plain links, so no JavaScript is needed).

use askama::Template;
use http::HeaderValue;
use warp::reply::Response;

use super::repository::visible;
use crate::badges::embed::{self, Badge, Markup};
use crate::repositories::Repository;
use crate::web::Req;
use crate::web::page::{self, CSP, Chrome, PageError};

struct BadgeView {
    title: &'static str,
    image: String,
    snippet: String,
    id: &'static str,
}

struct Tab {
    key: &'static str,
    name: &'static str,
    current: bool,
}

#[derive(Template)]
#[template(path = "badges.html")]
struct BadgesPage {
    chrome: Chrome,
    repo: Repository,
    tab: &'static str,
    tabs: Vec<Tab>,
    format_name: &'static str,
    /// Empty when the instance has no badger URL (badges disabled).
    badges: Vec<BadgeView>,
}

pub async fn get(req: &Req, name: &str) -> Result<Response, PageError> {
    let session = req.session().await?;
    let repo = visible(req, &session, name).await?;
    let config = &req.app.config;
    let markup = req
        .query("format")
        .and_then(|k| Markup::ALL.into_iter().find(|m| m.key() == k))
        .unwrap_or(Markup::Markdown);
    let href = embed::link_url(&config.server.ui_base_url, &repo.name);
    let badges: Vec<BadgeView> = [
        (Badge::Coverage, "Coverage badge"),
        (Badge::Issues, "Issues badge"),
    ]
    .into_iter()
    .filter_map(|(badge, title)| {
        let image = embed::image_url(&config.badger.base_url, &repo.name, badge)?;
        Some(BadgeView {
            title,
            snippet: markup.snippet(badge, &image, &href),
            image,
            id: badge.path(),
        })
    })
    .collect();
    let view = BadgesPage {
        chrome: session.chrome(format!("Badges · {}", repo.name), "repositories"),
        tab: "badges",
        tabs: Markup::ALL
            .into_iter()
            .map(|m| Tab {
                key: m.key(),
                name: m.name(),
                current: m == markup,
            })
            .collect(),
        format_name: markup.name(),
        badges,
        repo,
    };
    let mut response = page::render(&view)?;
    // The previews are images on the badger, which may be another origin: only that origin is
    // added to img-src, on this page only.
    let badger = crate::auth::csrf::origin_of(&config.badger.base_url);
    if !badger.is_empty() {
        let csp = CSP.replace(
            "img-src 'self' data:",
            &format!("img-src 'self' data: {badger}"),
        );
        if let Ok(value) = HeaderValue::from_str(&csp) {
            response
                .headers_mut()
                .insert("content-security-policy", value);
        }
    }
    Ok(response)
}
