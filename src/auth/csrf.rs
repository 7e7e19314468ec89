//! Cross-site request forgery defence for requests authenticated by the session cookie.
//!
//! Chosen: Fetch Metadata and `Origin` checks, not a per-session token. Every browser in support
//! sends `Sec-Fetch-Site` (and `Origin` on every non-GET request), which says whether the page
//! that made the request is our own; checking it needs no state, no token threaded through every
//! form of the server-rendered UI, and cannot be defeated by a leaked page. Together with
//! `SameSite=Lax` (the cookie is not even sent on cross-site POSTs) that is two independent
//! layers. A cookie-authenticated state-changing request that carries neither header is refused:
//! such a client is not a current browser, and API clients use `Authorization` instead.

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("Cross-site requests may not change anything with a session cookie")]
    CrossSite,
    #[error(
        "Requests that change something with a session cookie must come from a browser page of this site (Sec-Fetch-Site or Origin)"
    )]
    NoProvenance,
}

/// What the request said about where it came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Provenance<'a> {
    pub sec_fetch_site: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub host: Option<&'a str>,
}

/// Methods that change nothing and so need no check.
pub fn is_safe_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// Whether a request from this provenance may act with the session cookie. `public_origin` is
/// the site's own origin (`scheme://host[:port]` of `server.ui_base_url`).
pub fn check(provenance: Provenance<'_>, public_origin: &str) -> Result<(), CsrfError> {
    if let Some(site) = provenance.sec_fetch_site {
        // `none`: typed in the address bar or a bookmark, which a page cannot cause.
        return match site.trim() {
            "same-origin" | "none" => Ok(()),
            _ => Err(CsrfError::CrossSite),
        };
    }
    let Some(origin) = provenance.origin else {
        return Err(CsrfError::NoProvenance);
    };
    let origin = origin.trim().trim_end_matches('/');
    let same_host = provenance.host.is_some_and(|host| {
        origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host.trim()))
    });
    if origin.eq_ignore_ascii_case(public_origin) || same_host {
        Ok(())
    } else {
        Err(CsrfError::CrossSite)
    }
}

/// A login form posted from another site would sign the victim into the attacker's account
/// ("login CSRF"): refused when the browser says so. Clients that send neither header (scripts,
/// `curl`) are not browsers and may sign in.
pub fn check_sign_in(provenance: Provenance<'_>, public_origin: &str) -> Result<(), CsrfError> {
    if provenance.sec_fetch_site.is_none() && provenance.origin.is_none() {
        return Ok(());
    }
    check(provenance, public_origin)
}

/// `scheme://host[:port]` of a URL, lowercase, without path; empty when it is not a URL.
pub fn origin_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = "https://cocov.example";

    fn with(site: Option<&'static str>, origin: Option<&'static str>) -> Provenance<'static> {
        Provenance {
            sec_fetch_site: site,
            origin,
            host: Some("cocov.example"),
        }
    }

    #[test]
    fn fetch_metadata_decides_first() {
        assert!(check(with(Some("same-origin"), None), SITE).is_ok());
        assert!(check(with(Some("none"), None), SITE).is_ok());
        assert_eq!(
            check(with(Some("cross-site"), Some(SITE)), SITE),
            Err(CsrfError::CrossSite)
        );
        assert_eq!(
            check(with(Some("same-site"), None), SITE),
            Err(CsrfError::CrossSite)
        );
    }

    #[test]
    fn origin_is_the_fallback_and_absence_is_refused() {
        assert!(check(with(None, Some("https://cocov.example")), SITE).is_ok());
        assert!(
            check(with(None, Some("http://cocov.example")), SITE).is_ok(),
            "same host"
        );
        assert_eq!(
            check(with(None, Some("https://evil.example")), SITE),
            Err(CsrfError::CrossSite)
        );
        assert_eq!(
            check(with(None, Some("null")), SITE),
            Err(CsrfError::CrossSite)
        );
        assert_eq!(check(with(None, None), SITE), Err(CsrfError::NoProvenance));
        assert!(check_sign_in(with(None, None), SITE).is_ok());
        assert!(check_sign_in(with(Some("cross-site"), None), SITE).is_err());
    }

    #[test]
    fn origins_of_urls() {
        assert_eq!(
            origin_of("https://Cocov.Example:443/ui/"),
            "https://cocov.example"
        );
        assert_eq!(origin_of("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
        assert_eq!(origin_of("not a url"), "");
    }
}
