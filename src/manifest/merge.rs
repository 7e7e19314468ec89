//! Applying `defaults.checks` to each check, the way the original's documentation says:
//! envs merged per name and mounts per destination, the check's own value winning, the
//! remaining default mounts appended after the check's own.
//!
//! The original's code instead dropped the default envs entirely for any check that had
//! envs of its own (bug 26); users who read the docs get what they expected here.

use std::collections::HashSet;

use super::{CheckDefaults, CheckSpec};

pub(super) fn with_defaults(defaults: Option<&CheckDefaults>, check: &CheckSpec) -> CheckSpec {
    let Some(defaults) = defaults else {
        return check.clone();
    };
    let mut envs = defaults.envs.clone();
    envs.extend(check.envs.iter().map(|(k, v)| (k.clone(), v.clone())));

    let mut mounts = check.mounts.clone();
    let taken: HashSet<String> = mounts
        .iter()
        .map(|m| destination_key(&m.destination))
        .collect();
    mounts.extend(
        defaults
            .mounts
            .iter()
            .filter(|m| !taken.contains(&destination_key(&m.destination)))
            .cloned(),
    );
    CheckSpec {
        plugin: check.plugin.clone(),
        envs,
        mounts,
        line: check.line,
    }
}

/// The form in which two destinations are compared: `~/a//b/` and `~/a/./b` are the same
/// file to the worker, so they must collide in uniqueness checks and in the merge.
pub(super) fn destination_key(destination: &str) -> String {
    let (prefix, rest) = match destination.strip_prefix("~/") {
        Some(rest) => ("~/", rest),
        None => ("/", destination.trim_start_matches('/')),
    };
    let parts: Vec<&str> = rest
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    format!("{prefix}{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::manifest::{Mount, MountSource};

    fn mount(secret: &str, destination: &str, line: usize) -> Mount {
        Mount {
            source: MountSource::Secret(secret.into()),
            destination: destination.into(),
            line,
        }
    }

    fn envs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn check(envs: BTreeMap<String, String>, mounts: Vec<Mount>) -> CheckSpec {
        CheckSpec {
            plugin: "cocov/rubocop:v0.1".into(),
            envs,
            mounts,
            line: 9,
        }
    }

    #[test]
    fn envs_merge_per_name_and_the_check_wins() {
        let defaults = CheckDefaults {
            envs: envs(&[("A", "default"), ("B", "default")]),
            mounts: vec![],
        };
        let merged = with_defaults(
            Some(&defaults),
            &check(envs(&[("B", "own"), ("C", "own")]), vec![]),
        );
        assert_eq!(
            merged.envs,
            envs(&[("A", "default"), ("B", "own"), ("C", "own")])
        );
        // The original's bug: a check with envs lost every default.
        assert_eq!(merged.envs.get("A").map(String::as_str), Some("default"));
    }

    #[test]
    fn a_check_without_envs_or_mounts_gets_the_defaults() {
        let defaults = CheckDefaults {
            envs: envs(&[("A", "1")]),
            mounts: vec![mount("KEY", "~/.key", 4)],
        };
        let merged = with_defaults(Some(&defaults), &check(BTreeMap::new(), vec![]));
        assert_eq!(merged.envs, defaults.envs);
        assert_eq!(merged.mounts, defaults.mounts);
        assert_eq!(
            (merged.line, merged.plugin.as_str()),
            (9, "cocov/rubocop:v0.1")
        );
    }

    #[test]
    fn mounts_merge_per_destination_own_first_then_other_defaults() {
        let defaults = CheckDefaults {
            envs: BTreeMap::new(),
            mounts: vec![
                mount("DEFAULT_NPM", "~/.npmrc", 3),
                mount("DEFAULT_GEM", "/etc/gemrc", 4),
            ],
        };
        let own = vec![mount("OWN_NPM", "~/./.npmrc", 12), mount("OWN_X", "/x", 13)];
        let merged = with_defaults(Some(&defaults), &check(BTreeMap::new(), own.clone()));
        assert_eq!(
            merged.mounts,
            vec![
                own[0].clone(),
                own[1].clone(),
                mount("DEFAULT_GEM", "/etc/gemrc", 4)
            ]
        );
    }

    #[test]
    fn no_defaults_leaves_the_check_alone() {
        let c = check(envs(&[("A", "1")]), vec![mount("S", "/s", 2)]);
        assert_eq!(with_defaults(None, &c), c);
    }

    #[test]
    fn destination_keys_normalise_slashes_and_dots() {
        assert_eq!(destination_key("~/a//b/"), "~/a/b");
        assert_eq!(destination_key("~/./a"), "~/a");
        assert_eq!(destination_key("//etc/./x/"), "/etc/x");
        assert_ne!(destination_key("~/a"), destination_key("/a"));
    }
}
