//! Where a finished sign-in sends the browser: a path on this site, never another origin.

/// `Some(path)` when `value` is a same-origin absolute path (`/…`); None for anything a browser
/// could read as another origin: `//host`, `/\host` (browsers treat `\` as `/`), a scheme,
/// control characters, or anything not starting with `/`.
pub fn safe_return_to(value: &str) -> Option<&str> {
    let ok = value.starts_with('/')
        && !value.starts_with("//")
        && !value.contains('\\')
        && !value.chars().any(|c| c.is_control())
        && value.len() <= 2048;
    ok.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn only_local_paths() {
        for ok in ["/", "/repos/x?tab=issues#top", "/a//b"] {
            assert_eq!(safe_return_to(ok), Some(ok));
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "/\tx",
            "",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
    }
}
