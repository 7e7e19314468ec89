//! One plugin definition, as written in its TOML file, and the checks that make a bad file fail
//! at load time (naming the file and key) rather than at run time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::issues::IssueKind;

/// How the tool writes its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The original plugin contract: JSON issue objects each followed by a NUL byte.
    Cocov,
    /// SARIF 2.1.0 (`runs[].results[]`).
    Sarif,
    /// Checkstyle XML (`<file name><error line severity message source/></file>`).
    Checkstyle,
    /// Compiler-style lines: `path:line[:column]: [severity] message [rule]`.
    Gcc,
}

impl OutputFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Cocov => "cocov",
            OutputFormat::Sarif => "sarif",
            OutputFormat::Checkstyle => "checkstyle",
            OutputFormat::Gcc => "gcc",
        }
    }
}

/// Where the report is read from after the tool exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportSource {
    /// `COCOV_OUTPUT_FILE`, as the original contract says.
    File,
    /// The tool's standard output (most linters print their report).
    Stdout,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDefinition {
    /// What manifests name, without tag: `cocov/shellcheck` (a name without `/` means `cocov/…`).
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The executable, looked up on the sandbox's PATH when not absolute.
    pub command: String,
    /// Arguments; `{output_file}` and `{workdir}` are replaced by the sandbox paths.
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default = "default_format")]
    pub format: OutputFormat,
    /// Default: `file` for the `cocov` format, `stdout` for the others.
    #[serde(default)]
    pub report: Option<ReportSource>,
    /// Exit statuses that mean "ran fine" (linters usually exit 1 when they find something).
    #[serde(default = "default_success_exit_codes")]
    pub success_exit_codes: Vec<i32>,
    /// Tool rule ids or severities to issue kinds. Keys are matched against the rule id
    /// exactly, then as prefixes when they end in `*`, then against the severity, then `*`.
    #[serde(default)]
    pub kinds: BTreeMap<String, IssueKind>,
    /// Whether the sandbox keeps the host's network. Off by default.
    #[serde(default)]
    pub network: bool,
    pub timeout_seconds: Option<u64>,
    pub memory_mb: Option<u64>,
    /// Fixed environment variables for the tool (the manifest's `envs` come on top).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Set for a plugin that is an image (never read from a file): it runs on the image's root
    /// filesystem instead of the host's `/usr`.
    #[serde(skip)]
    pub image: Option<ImageRoot>,
}

/// Where an image plugin's root filesystem is and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRoot {
    pub rootfs: std::path::PathBuf,
    /// The image's working directory (`/` when it names none).
    pub working_dir: String,
}

fn default_format() -> OutputFormat {
    OutputFormat::Cocov
}

fn default_success_exit_codes() -> Vec<i32> {
    vec![0]
}

#[derive(Debug, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct DefinitionError {
    pub key: &'static str,
    pub message: String,
}

impl PluginDefinition {
    /// Parses and checks one definition file's text.
    pub fn from_toml(text: &str) -> Result<PluginDefinition, String> {
        let mut def: PluginDefinition = toml::from_str(text).map_err(|e| e.to_string())?;
        def.name = def.canonical_name();
        def.validate().map_err(|e| e.to_string())?;
        Ok(def)
    }

    fn canonical_name(&self) -> String {
        let name = self.name.trim().to_ascii_lowercase();
        if name.contains('/') {
            name
        } else {
            format!("cocov/{name}")
        }
    }

    fn validate(&self) -> Result<(), DefinitionError> {
        let bad = |key, message: &str| {
            Err(DefinitionError {
                key,
                message: message.to_string(),
            })
        };
        let cleaned = crate::manifest::cleanup_plugin_name(&self.name);
        if self.name.is_empty() || cleaned != self.name {
            return bad(
                "name",
                "must be `owner/tool` in lowercase letters and digits, without a tag",
            );
        }
        if self.command.trim().is_empty() {
            return bad("command", "must not be empty");
        }
        if self.success_exit_codes.is_empty() {
            return bad("success_exit_codes", "must list at least one status");
        }
        if self.timeout_seconds == Some(0) {
            return bad("timeout_seconds", "must be at least 1");
        }
        if self.memory_mb.is_some_and(|m| m < 16) {
            return bad("memory_mb", "must be at least 16");
        }
        Ok(())
    }

    pub fn report_source(&self) -> ReportSource {
        self.report.unwrap_or(match self.format {
            OutputFormat::Cocov => ReportSource::File,
            _ => ReportSource::Stdout,
        })
    }

    /// The kind of a finding that did not carry one, from its rule id and severity.
    pub fn kind_for(&self, rule: Option<&str>, severity: Option<&str>) -> IssueKind {
        if let Some(rule) = rule {
            if let Some(kind) = self.kinds.get(rule) {
                return *kind;
            }
            let prefix_match = self
                .kinds
                .iter()
                .filter_map(|(key, kind)| {
                    let prefix = key.strip_suffix('*')?;
                    (!prefix.is_empty() && rule.starts_with(prefix))
                        .then_some((prefix.len(), *kind))
                })
                .max_by_key(|(len, _)| *len);
            if let Some((_, kind)) = prefix_match {
                return kind;
            }
        }
        if let Some(kind) = severity.and_then(|s| self.kinds.get(&s.to_ascii_lowercase())) {
            return *kind;
        }
        self.kinds.get("*").copied().unwrap_or(IssueKind::Quality)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(text: &str) -> Result<PluginDefinition, String> {
        PluginDefinition::from_toml(text)
    }

    #[test]
    fn names_without_owner_are_cocov_plugins() {
        let d = def("name = \"Lint\"\ncommand = \"lint\"").unwrap();
        assert_eq!(d.name, "cocov/lint");
        assert_eq!(d.report_source(), ReportSource::File);
    }

    #[test]
    fn bad_definitions_name_the_key() {
        let e = def("name = \"x:v1\"\ncommand = \"lint\"").unwrap_err();
        assert!(e.contains("`name`"), "{e}");
        let e = def("name = \"x\"\ncommand = \" \"").unwrap_err();
        assert!(e.contains("`command`"), "{e}");
        let e = def("name = \"x\"\ncommand = \"c\"\nformat = \"xml\"").unwrap_err();
        assert!(e.contains("format"), "{e}");
        let e = def("name = \"x\"\ncommand = \"c\"\nbogus = 1").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn kinds_match_rule_then_prefix_then_severity_then_default() {
        let d = def(r#"
name = "x"
command = "c"
[kinds]
"B105" = "security"
"B*" = "bug"
"S1*" = "style"
"S*" = "convention"
error = "bug"
"*" = "style"
"#)
        .unwrap();
        assert_eq!(d.kind_for(Some("B105"), None), IssueKind::Security);
        assert_eq!(d.kind_for(Some("B200"), None), IssueKind::Bug);
        assert_eq!(d.kind_for(Some("S100"), None), IssueKind::Style);
        assert_eq!(d.kind_for(Some("S200"), None), IssueKind::Convention);
        assert_eq!(d.kind_for(Some("Z"), Some("Error")), IssueKind::Bug);
        assert_eq!(d.kind_for(None, Some("note")), IssueKind::Style);
        let plain = def("name = \"x\"\ncommand = \"c\"").unwrap();
        assert_eq!(plain.kind_for(None, None), IssueKind::Quality);
    }
}
