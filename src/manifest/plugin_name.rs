//! The short plugin name stored as `checks.plugin_name` and shown to users (reference §13.5).
//!
//! It must stay the same function everywhere a check is looked up by name: the original's API
//! and worker disagreed on it and every worker update for a registry-qualified image 404ed
//! (bug 9). Workers, the API and the UI all call this one.

/// `cocov/rubocop:v0.1` → `cocov/rubocop`, `ghcr.io/cocov-ci/rubocop:v1` → `rubocop`,
/// `reg:5000/org/tool:1` → `org/tool`, `tool@sha256:…` → `tool`.
///
/// The last `/`-component, without its digest (`@…`, which the original kept) and cut at its
/// first `:`, is the image. Of the components before it, only those made entirely of
/// `[a-z0-9]` qualify as the owner, and the last of those is used.
pub fn cleanup_plugin_name(plugin: &str) -> String {
    let mut components: Vec<&str> = plugin.split('/').collect();
    let last = components.pop().unwrap_or_default();
    let without_digest = last.split_once('@').map_or(last, |(image, _)| image);
    let image = without_digest
        .split_once(':')
        .map_or(without_digest, |(image, _)| image);
    let owner = components.into_iter().rev().find(|c| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    match owner {
        Some(owner) => format!("{owner}/{image}"),
        None => image.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::cleanup_plugin_name;

    #[test]
    fn the_reference_examples() {
        let cases = [
            ("cocov/rubocop:v0.1", "cocov/rubocop"),
            ("rubocop", "rubocop"),
            ("ghcr.io/cocov-ci/rubocop:v1", "rubocop"),
            ("reg:5000/org/tool:1", "org/tool"),
            ("a/b/c:1", "b/c"),
        ];
        for (plugin, want) in cases {
            assert_eq!(cleanup_plugin_name(plugin), want, "{plugin}");
        }
    }

    #[test]
    fn digests_are_stripped() {
        let cases = [
            ("cocov/shellcheck@sha256:0123abcd", "cocov/shellcheck"),
            ("cocov/shellcheck:v1@sha256:0123abcd", "cocov/shellcheck"),
            ("ghcr.io/x-y/tool@sha256:ff", "tool"),
            ("tool@sha256:ff", "tool"),
        ];
        for (plugin, want) in cases {
            assert_eq!(cleanup_plugin_name(plugin), want, "{plugin}");
        }
    }

    #[test]
    fn owners_must_be_lowercase_alphanumerics() {
        assert_eq!(cleanup_plugin_name("Cocov/rubocop"), "rubocop");
        assert_eq!(cleanup_plugin_name("localhost:5000/tool:1"), "tool");
        assert_eq!(
            cleanup_plugin_name("registry/team1/under_score/tool"),
            "team1/tool"
        );
        assert_eq!(cleanup_plugin_name("/tool"), "tool");
        assert_eq!(cleanup_plugin_name("a//tool"), "a/tool");
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        assert_eq!(cleanup_plugin_name(""), "");
        assert_eq!(cleanup_plugin_name(":tag"), "");
        assert_eq!(cleanup_plugin_name("org/"), "org/");
        assert_eq!(cleanup_plugin_name("@"), "");
        assert_eq!(cleanup_plugin_name("é/ü:ß"), "ü");
    }
}
