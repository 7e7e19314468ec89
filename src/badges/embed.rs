//! Embed snippets for a repository's badges (the original's badge `templates`): the image URL on
//! the badge listener, the link to the repository's page in the UI, and one snippet per markup
//! format. Repository names are restricted to URL-safe characters, but the snippets still escape
//! what each format treats specially, so a snippet can never break out of its markup.

use serde::Serialize;

/// The markup formats, in the order the UI shows them. `rdoc` is kept from the original;
/// `asciidoc` is new.
pub const FORMATS: [&str; 6] = [
    "markdown",
    "html",
    "restructured",
    "asciidoc",
    "textile",
    "rdoc",
];

/// Both badges of one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Embeds {
    pub coverage_badge_url: String,
    pub coverage_badge_href: String,
    pub issues_badge_url: String,
    pub issues_badge_href: String,
    /// `format → {coverage, issues}`, each snippet ending with a newline (as the original).
    pub templates: std::collections::BTreeMap<&'static str, Pair>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pair {
    pub coverage: String,
    pub issues: String,
}

/// The embeds of `repository`; `None` when no badge base URL is configured (the original
/// answered 204: badges are not set up).
pub fn embeds(badges_base_url: &str, ui_base_url: &str, repository: &str) -> Option<Embeds> {
    let badges = badges_base_url.trim().trim_end_matches('/');
    if badges.is_empty() {
        return None;
    }
    let ui = ui_base_url.trim().trim_end_matches('/');
    let name = url_segment(repository);
    let href = format!("{ui}/repos/{name}");
    let image = |kind: &str| format!("{badges}/{name}/{kind}");
    let (coverage_url, issues_url) = (image("coverage"), image("issues"));
    let templates = FORMATS
        .into_iter()
        .map(|format| {
            let pair = Pair {
                coverage: snippet(format, &coverage_url, &href, "Coverage"),
                issues: snippet(format, &issues_url, &href, "Issues"),
            };
            (format, pair)
        })
        .collect();
    Some(Embeds {
        coverage_badge_url: coverage_url,
        coverage_badge_href: href.clone(),
        issues_badge_url: issues_url,
        issues_badge_href: href,
        templates,
    })
}

/// One snippet: the image `img` linking to `href`, described as `label`.
pub fn snippet(format: &str, img: &str, href: &str, label: &str) -> String {
    match format {
        "markdown" => format!("[![{label}]({img})]({href})\n"),
        "html" => format!(
            "<a href=\"{}\"><img src=\"{}\" alt=\"{label}\" /></a>\n",
            html_attr(href),
            html_attr(img)
        ),
        "restructured" => format!(".. image:: {img}\n :target: {href}\n :alt: {label}\n"),
        "asciidoc" => format!("image:{img}[{label},link=\"{href}\"]\n"),
        "textile" => format!("\"!{img}!\":{href}\n"),
        "rdoc" => format!("{{<img src=\"{}\" />}}[{href}]\n", html_attr(img)),
        _ => String::new(),
    }
}

/// A repository name as one URL path segment: anything but unreserved characters is
/// percent-encoded, so no markup-significant character survives into a snippet.
fn url_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn html_attr(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_formats_and_asciidoc() {
        let e = embeds("https://badges.example/", "https://cocov.example", "widget").unwrap();
        assert_eq!(
            e.coverage_badge_url,
            "https://badges.example/widget/coverage"
        );
        assert_eq!(e.issues_badge_href, "https://cocov.example/repos/widget");
        let t = |f: &str| e.templates[f].coverage.clone();
        assert_eq!(
            t("markdown"),
            "[![Coverage](https://badges.example/widget/coverage)](https://cocov.example/repos/widget)\n"
        );
        assert_eq!(
            t("html"),
            "<a href=\"https://cocov.example/repos/widget\"><img src=\"https://badges.example/widget/coverage\" alt=\"Coverage\" /></a>\n"
        );
        assert_eq!(
            t("restructured"),
            ".. image:: https://badges.example/widget/coverage\n :target: https://cocov.example/repos/widget\n :alt: Coverage\n"
        );
        assert_eq!(
            t("asciidoc"),
            "image:https://badges.example/widget/coverage[Coverage,link=\"https://cocov.example/repos/widget\"]\n"
        );
        assert_eq!(
            t("textile"),
            "\"!https://badges.example/widget/coverage!\":https://cocov.example/repos/widget\n"
        );
        assert!(e.templates["rdoc"].issues.contains("/widget/issues"));
        assert_eq!(e.templates.len(), FORMATS.len());
    }

    #[test]
    fn unconfigured_and_hostile_names() {
        assert_eq!(embeds(" ", "https://ui", "x"), None);
        let e = embeds("https://b", "https://ui", "a\"b><c](d").unwrap();
        for pair in e.templates.values() {
            for s in [&pair.coverage, &pair.issues] {
                assert!(!s.contains("a\"b"), "{s}");
                assert!(!s.contains("><c"), "{s}");
            }
        }
        assert_eq!(e.issues_badge_url, "https://b/a%22b%3E%3Cc%5D%28d/issues");
    }
}
