//! The known plugins: the built-in definitions compiled into the binary, then the files of
//! `worker.plugins_dir`, which add plugins or replace a built-in one of the same name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::PluginDefinition;

/// The built-in definitions; the package also installs them under /usr/share/cocov/plugins.
const BUILT_INS: &[(&str, &str)] = &[
    (
        "bandit.toml",
        include_str!("../../packaging/plugins.d/bandit.toml"),
    ),
    (
        "cppcheck.toml",
        include_str!("../../packaging/plugins.d/cppcheck.toml"),
    ),
    (
        "ruff.toml",
        include_str!("../../packaging/plugins.d/ruff.toml"),
    ),
    (
        "shellcheck.toml",
        include_str!("../../packaging/plugins.d/shellcheck.toml"),
    ),
    (
        "yamllint.toml",
        include_str!("../../packaging/plugins.d/yamllint.toml"),
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    BuiltIn,
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in"),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// A manifest named a plugin nobody defined.
#[derive(Debug, thiserror::Error)]
#[error("unknown plugin {name}; known plugins: {known}")]
pub struct UnknownPlugin {
    pub name: String,
    pub known: String,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    plugins: BTreeMap<String, (PluginDefinition, Origin)>,
}

impl Catalog {
    /// Only the built-in definitions.
    pub fn built_in() -> Catalog {
        let mut catalog = Catalog::default();
        for (file, text) in BUILT_INS {
            let def = PluginDefinition::from_toml(text)
                .unwrap_or_else(|e| panic!("built-in plugin definition {file}: {e}"));
            catalog
                .plugins
                .insert(def.name.clone(), (def, Origin::BuiltIn));
        }
        catalog
    }

    /// The built-ins plus every `*.toml` of `dir` (a missing directory is an empty one). A bad
    /// file fails the whole load, naming the file, so a typo never silently drops a plugin.
    pub fn load(dir: &Path) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::built_in();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(catalog),
            Err(source) => {
                return Err(CatalogError::Read {
                    path: dir.display().to_string(),
                    source,
                });
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let def =
                PluginDefinition::from_toml(&text).map_err(|message| CatalogError::Invalid {
                    path: path.display().to_string(),
                    message,
                })?;
            catalog
                .plugins
                .insert(def.name.clone(), (def, Origin::File(path)));
        }
        Ok(catalog)
    }

    /// The definition for a manifest's `plugin:` (`cocov/shellcheck:v0.1`, `shellcheck`, …).
    pub fn resolve(&self, plugin: &str) -> Result<&PluginDefinition, UnknownPlugin> {
        let cleaned = crate::manifest::cleanup_plugin_name(plugin).to_ascii_lowercase();
        let name = if cleaned.contains('/') {
            cleaned
        } else {
            format!("cocov/{cleaned}")
        };
        self.plugins
            .get(&name)
            .map(|(def, _)| def)
            .ok_or_else(|| UnknownPlugin {
                name: plugin.to_string(),
                known: self.plugins.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PluginDefinition, &Origin)> {
        self.plugins.values().map(|(def, origin)| (def, origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_load_and_resolve_by_manifest_reference() {
        let catalog = Catalog::built_in();
        for name in ["shellcheck", "ruff", "yamllint", "cppcheck", "bandit"] {
            let def = catalog.resolve(&format!("cocov/{name}:v0.1")).unwrap();
            assert_eq!(def.name, format!("cocov/{name}"));
            assert!(catalog.resolve(name).is_ok());
        }
        let e = catalog.resolve("cocov/rubocop:v0.1").unwrap_err();
        assert_eq!(e.name, "cocov/rubocop:v0.1");
        assert!(e.to_string().contains("cocov/shellcheck"), "{e}");
    }

    #[test]
    fn files_override_built_ins_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("shellcheck.toml"),
            "name = \"cocov/shellcheck\"\ncommand = \"my-shellcheck\"\n",
        )
        .unwrap();
        let catalog = Catalog::load(dir.path()).unwrap();
        assert_eq!(
            catalog.resolve("cocov/shellcheck").unwrap().command,
            "my-shellcheck"
        );
        std::fs::write(dir.path().join("zz.toml"), "name = \"zz\"\n").unwrap();
        let e = Catalog::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("zz.toml") && e.contains("command"), "{e}");
        assert!(Catalog::load(&dir.path().join("absent")).is_ok());
    }
}
