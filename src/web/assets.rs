//! The UI's static files, embedded in the binary and served at `/assets/<name>.<hash>.<ext>`.
//! The hash is taken from the embedded bytes, so a changed file gets a new URL and the old one
//! may be cached for a year (`immutable`). A name with a stale or missing hash is a 404: a page
//! only ever links the current URL ([`url`]).

use std::sync::LazyLock;

use http::{HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};
use warp::Reply;
use warp::reply::Response;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/app.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/favicon.svg"),
    },
];

/// Each file's hashed file name (`app.3f2a9c1b7d40.css`), computed once.
static HASHED: LazyLock<Vec<String>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|asset| {
            let digest = hex::encode(Sha256::digest(asset.bytes));
            let (stem, ext) = asset.name.rsplit_once('.').unwrap_or((asset.name, ""));
            format!("{stem}.{}.{ext}", &digest[..12])
        })
        .collect()
});

/// The URL of an embedded file by its plain name (`app.css`).
pub fn url(name: &str) -> String {
    let index = FILES
        .iter()
        .position(|a| a.name == name)
        .unwrap_or_else(|| panic!("no embedded asset {name}"));
    format!("/assets/{}", HASHED[index])
}

/// Serves `/assets/<hashed name>`, or 404.
pub fn serve(hashed_name: &str) -> Option<Response> {
    let index = HASHED.iter().position(|h| h == hashed_name)?;
    let asset = &FILES[index];
    let mut response = asset.bytes.into_response();
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_content_hash_and_only_they_are_served() {
        let css = url("app.css");
        assert!(
            css.starts_with("/assets/app.") && css.ends_with(".css"),
            "{css}"
        );
        let name = css.trim_start_matches("/assets/");
        assert!(serve(name).is_some());
        assert!(serve("app.css").is_none());
        assert!(serve("app.000000000000.css").is_none());
    }
}
