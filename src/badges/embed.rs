//! How a repository's badges are embedded elsewhere: the badge image URLs on the badger and
//! the snippets for each markup language (the original's `templates`, plus AsciiDoc). Used by
//! the web UI's badges page; the API can answer the same.

/// The two badges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    Coverage,
    Issues,
}

impl Badge {
    pub fn path(self) -> &'static str {
        match self {
            Badge::Coverage => "coverage",
            Badge::Issues => "issues",
        }
    }

    pub fn alt(self) -> &'static str {
        match self {
            Badge::Coverage => "Coverage",
            Badge::Issues => "Issues",
        }
    }
}

/// A markup language badges are embedded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    Markdown,
    Html,
    RestructuredText,
    AsciiDoc,
    Textile,
    Rdoc,
}

impl Markup {
    pub const ALL: [Markup; 6] = [
        Markup::Markdown,
        Markup::Html,
        Markup::RestructuredText,
        Markup::AsciiDoc,
        Markup::Textile,
        Markup::Rdoc,
    ];

    /// A stable key (as the original's `templates` object).
    pub fn key(self) -> &'static str {
        match self {
            Markup::Markdown => "markdown",
            Markup::Html => "html",
            Markup::RestructuredText => "restructured",
            Markup::AsciiDoc => "asciidoc",
            Markup::Textile => "textile",
            Markup::Rdoc => "rdoc",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Markup::Markdown => "Markdown",
            Markup::Html => "HTML",
            Markup::RestructuredText => "reStructuredText",
            Markup::AsciiDoc => "AsciiDoc",
            Markup::Textile => "Textile",
            Markup::Rdoc => "RDoc",
        }
    }

    /// The snippet showing image `img` linked to `href` (ends with a newline, as the original).
    pub fn snippet(self, badge: Badge, img: &str, href: &str) -> String {
        let alt = badge.alt();
        match self {
            Markup::Markdown => format!("[![{alt}]({img})]({href})\n"),
            Markup::Html => format!("<a href=\"{href}\"><img src=\"{img}\" alt=\"{alt}\" /></a>\n"),
            Markup::RestructuredText => {
                format!(".. image:: {img}\n :target: {href}\n :alt: {alt}\n")
            }
            Markup::AsciiDoc => format!("image:{img}[{alt},link=\"{href}\"]\n"),
            Markup::Textile => format!("\"!{img}!\":{href}\n"),
            Markup::Rdoc => format!("{{<img src=\"{img}\" />}}[{href}]\n"),
        }
    }
}

/// The badge image URL of a repository on the badger at `badger_base_url`; `None` when no
/// badger URL is configured (badges disabled).
pub fn image_url(badger_base_url: &str, repository: &str, badge: Badge) -> Option<String> {
    let base = badger_base_url.trim().trim_end_matches('/');
    (!base.is_empty()).then(|| format!("{base}/{repository}/{}", badge.path()))
}

/// Where a badge links to: the repository's page in the web UI.
pub fn link_url(ui_base_url: &str, repository: &str) -> String {
    format!("{}/repos/{repository}", ui_base_url.trim_end_matches('/'))
}

/// Both badges of one repository as the API shows them (the original's badges answer).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Embeds {
    pub coverage_badge_url: String,
    pub coverage_badge_href: String,
    pub issues_badge_url: String,
    pub issues_badge_href: String,
    /// `markup key → {coverage, issues}` snippets.
    pub templates: std::collections::BTreeMap<&'static str, Pair>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pair {
    pub coverage: String,
    pub issues: String,
}

/// The embeds of `repository`; `None` when no badger URL is configured (the original answered
/// 204: badges are not set up).
pub fn embeds(badger_base_url: &str, ui_base_url: &str, repository: &str) -> Option<Embeds> {
    let coverage = image_url(badger_base_url, repository, Badge::Coverage)?;
    let issues = image_url(badger_base_url, repository, Badge::Issues)?;
    let href = link_url(ui_base_url.trim(), repository);
    let templates = Markup::ALL
        .into_iter()
        .map(|markup| {
            let pair = Pair {
                coverage: markup.snippet(Badge::Coverage, &coverage, &href),
                issues: markup.snippet(Badge::Issues, &issues, &href),
            };
            (markup.key(), pair)
        })
        .collect();
    Some(Embeds {
        coverage_badge_url: coverage,
        coverage_badge_href: href.clone(),
        issues_badge_url: issues,
        issues_badge_href: href,
        templates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_match_the_original_templates() {
        let img = "https://b.example/api/coverage";
        let href = "https://ui.example/repos/api";
        assert_eq!(
            Markup::Markdown.snippet(Badge::Coverage, img, href),
            "[![Coverage](https://b.example/api/coverage)](https://ui.example/repos/api)\n"
        );
        assert_eq!(
            Markup::RestructuredText.snippet(Badge::Issues, img, href),
            ".. image:: https://b.example/api/coverage\n :target: https://ui.example/repos/api\n :alt: Issues\n"
        );
        assert_eq!(
            Markup::Textile.snippet(Badge::Coverage, img, href),
            "\"!https://b.example/api/coverage!\":https://ui.example/repos/api\n"
        );
        assert_eq!(image_url("", "api", Badge::Coverage), None);
        assert_eq!(
            image_url("https://b.example/", "api", Badge::Issues).as_deref(),
            Some("https://b.example/api/issues")
        );
    }

    #[test]
    fn every_markup_for_both_badges() {
        let e = embeds(
            "https://badges.example/",
            "https://cocov.example/",
            "widget",
        )
        .unwrap();
        assert_eq!(
            e.coverage_badge_url,
            "https://badges.example/widget/coverage"
        );
        assert_eq!(e.issues_badge_href, "https://cocov.example/repos/widget");
        assert_eq!(e.templates.len(), Markup::ALL.len());
        assert_eq!(
            e.templates["asciidoc"].issues,
            "image:https://badges.example/widget/issues[Issues,link=\"https://cocov.example/repos/widget\"]\n"
        );
        assert_eq!(embeds(" ", "https://ui", "x"), None);
    }
}
