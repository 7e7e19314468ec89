//! Which environment variables a manifest may set for a plugin.
//!
//! A plugin's environment reaches bubblewrap itself (a host process) before the sandbox starts,
//! and then the plugin's interpreter. A repository's manifest must not be able to make either
//! load code of its choosing (`LD_PRELOAD` pointing at a `.so` in the commit, `PYTHONPATH`
//! shadowing a linter's modules, `NODE_OPTIONS=--require …`), nor replace the variables of the
//! plugin contract (`COCOV_*`) or the ones the worker sets (`PATH`, `HOME`). The list is
//! documented in the README's checks section; names are compared ignoring ASCII case, so
//! `ld_preload` is refused too.

/// Refused by name prefix: the dynamic loader (`LD_PRELOAD`, `LD_LIBRARY_PATH`, `LD_AUDIT`…),
/// the plugin contract, glibc's allocator knobs, git's (a plugin may run git on the tree), and
/// bash's exported functions.
pub const DENIED_PREFIXES: &[&str] = &["LD_", "COCOV_", "MALLOC_", "GIT_", "BASH_FUNC_"];

/// Refused by exact name: search paths and start-up hooks of the interpreters plugins use.
pub const DENIED_NAMES: &[&str] = &[
    "PATH",
    "HOME",
    "SHELL",
    "IFS",
    "ENV",
    "BASH_ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "GLIBC_TUNABLES",
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONINSPECT",
    "PYTHONUSERBASE",
    "PYTHONEXECUTABLE",
    "PYTHONWARNINGS",
    "PYTHONBREAKPOINT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "RUBYOPT",
    "RUBYLIB",
    "GEM_HOME",
    "GEM_PATH",
    "BUNDLE_GEMFILE",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "PERL5DB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "GOFLAGS",
    "GOPATH",
    "GOROOT",
    "LUA_PATH",
    "LUA_CPATH",
    "TCLLIBPATH",
];

/// Whether the manifest may set `name`.
pub fn is_denied(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    DENIED_PREFIXES.iter().any(|p| upper.starts_with(p)) || DENIED_NAMES.contains(&upper.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_interpreter_and_contract_variables_are_denied() {
        for name in [
            "LD_PRELOAD",
            "ld_preload",
            "LD_LIBRARY_PATH",
            "LD_AUDIT",
            "PATH",
            "PYTHONPATH",
            "NODE_OPTIONS",
            "RUBYOPT",
            "PERL5LIB",
            "COCOV_OUTPUT_FILE",
            "COCOV_WORKDIR",
            "MALLOC_CHECK_",
            "GLIBC_TUNABLES",
            "GIT_SSH_COMMAND",
            "BASH_ENV",
            "JAVA_TOOL_OPTIONS",
        ] {
            assert!(is_denied(name), "{name}");
        }
    }

    #[test]
    fn ordinary_variables_are_allowed() {
        for name in [
            "DEBUG",
            "RUBOCOP_OPTS",
            "LDFLAGS",
            "PATHS",
            "NODE_ENV",
            "LANG",
            "TZ",
        ] {
            assert!(!is_denied(name), "{name}");
        }
    }
}
