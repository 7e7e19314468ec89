//! Layering: defaults, then the TOML file, then `COCOV_*` environment variables. Errors name
//! where the bad value came from (file and line, or the variable) and the dotted key.

use std::fmt;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::model::{Config, GithubConfig, StorageMode, WorkerConfig};

pub const DEFAULT_PATH: &str = "/etc/cocov/cocov.toml";

/// Original Cocov variable names that operators' scripts already use, mapped to our keys. The
/// generic `COCOV_<SECTION>_<KEY>` names work for every key as well and win over these.
const ALIASES: &[(&str, &str)] = &[
    ("COCOV_SIDEKIQ_REDIS_URL", "redis.queue_url"),
    ("COCOV_CRYPTOGRAPHIC_KEY", "security.cryptographic_key"),
    ("COCOV_UI_BASE_URL", "server.ui_base_url"),
    ("COCOV_BADGES_BASE_URL", "badger.base_url"),
    ("COCOV_GIT_SERVICE_STORAGE_MODE", "storage.mode"),
    ("COCOV_GIT_SERVICE_LOCAL_STORAGE_PATH", "storage.local_path"),
    (
        "COCOV_GIT_SERVICE_S3_STORAGE_BUCKET_NAME",
        "storage.s3.bucket",
    ),
    ("COCOV_BIND_ADDRESS", "server.bind_address"),
    ("COCOV_ROLES", "server.roles"),
    (
        "COCOV_ALLOW_OUTSIDE_COLLABORATORS",
        "github.allow_outside_collaborators",
    ),
];

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File { path: PathBuf, line: Option<usize> },
    Env { var: String },
}

#[derive(Debug, Clone)]
pub struct ConfigError {
    pub source: Option<ConfigSource>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(ConfigSource::File {
                path,
                line: Some(line),
            }) => write!(f, "{}:{line}: ", path.display())?,
            Some(ConfigSource::File { path, line: None }) => write!(f, "{}: ", path.display())?,
            Some(ConfigSource::Env { var }) => write!(f, "environment variable {var}: ")?,
            None => {}
        }
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Loads the configuration from `path` (or the default path, which may be absent) and the
/// process environment.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    match path {
        Some(path) => load_file_and_env(path, true, &env),
        None => load_file_and_env(Path::new(DEFAULT_PATH), false, &env),
    }
}

/// Loads with no file at all: defaults and the given environment lookup (tests use this).
pub fn load_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    build(Table::new(), None, env)
}

fn load_file_and_env(
    path: &Path,
    must_exist: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
            return build(Table::new(), None, env);
        }
        Err(e) => {
            return Err(ConfigError {
                source: Some(ConfigSource::File {
                    path: path.into(),
                    line: None,
                }),
                key: None,
                message: format!("cannot read the file: {e}"),
            });
        }
    };
    let table: Table = toml::from_str(&text).map_err(|e| ConfigError {
        source: Some(ConfigSource::File {
            path: path.into(),
            line: e.span().map(|s| line_of(&text, s.start)),
        }),
        key: None,
        message: e.message().to_string(),
    })?;
    build(table, Some((path, &text)), env)
}

fn build(
    mut table: Table,
    file: Option<(&Path, &str)>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let defaults = Table::try_from(Config::default()).expect("defaults serialise");
    let mut from_env: Vec<(String, String)> = Vec::new();
    for (key, default) in leaves(&defaults) {
        let generic = format!("COCOV_{}", key.replace('.', "_").to_uppercase());
        let found = env(&generic).map(|v| (generic, v)).or_else(|| {
            ALIASES
                .iter()
                .filter(|(_, k)| *k == key)
                .find_map(|(alias, _)| env(alias).map(|v| (alias.to_string(), v)))
        });
        if let Some((var, raw)) = found {
            let value = parse_env_value(&raw, &default).map_err(|message| ConfigError {
                source: Some(ConfigSource::Env { var: var.clone() }),
                key: Some(key.clone()),
                message,
            })?;
            set_path(&mut table, &key, value);
            from_env.push((key, var));
        }
    }

    let source_of = |key: &str| -> Option<ConfigSource> {
        if let Some((_, var)) = from_env.iter().find(|(k, _)| key.starts_with(k.as_str())) {
            return Some(ConfigSource::Env { var: var.clone() });
        }
        file.map(|(path, text)| ConfigSource::File {
            path: path.into(),
            line: line_of_key(text, key),
        })
    };

    let config: Config = serde_path_to_error::deserialize(Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        ConfigError {
            source: source_of(&key),
            key: (key != ".").then_some(key),
            message: e.inner().message().to_string(),
        }
    })?;

    validate(&config).map_err(|(key, message)| ConfigError {
        source: source_of(key),
        key: Some(key.to_string()),
        message,
    })?;
    Ok(config)
}

/// Checks that need more than a type: combinations and formats.
fn validate(c: &Config) -> Result<(), (&'static str, String)> {
    if c.server.roles.is_empty() {
        return Err((
            "server.roles",
            "at least one role (api, worker, badger) is needed".into(),
        ));
    }
    if c.redis.key_prefix.is_empty() {
        return Err(("redis.key_prefix", "must not be empty".into()));
    }
    if c.redis.url.is_empty() {
        return Err(("redis.url", "must not be empty".into()));
    }
    for (key, url) in [
        ("redis.url", &c.redis.url),
        ("redis.cache_url", &c.redis.cache_url),
        ("redis.queue_url", &c.redis.queue_url),
    ] {
        if !url.is_empty() && !has_scheme(url, &["redis://", "rediss://"]) {
            return Err((key, format!("`{url}` is not a redis:// or rediss:// URL")));
        }
    }
    let db = &c.database;
    if !db.url.is_empty() && !has_scheme(&db.url, &["postgres://", "postgresql://"]) {
        return Err(("database.url", "must be a postgres:// URL".into()));
    }
    if db.max_connections == 0 {
        return Err(("database.max_connections", "must be at least 1".into()));
    }
    if c.storage.mode == StorageMode::S3 {
        if c.storage.s3.endpoint.is_empty() {
            return Err((
                "storage.s3.endpoint",
                "is required when storage.mode is \"s3\"".into(),
            ));
        }
        if c.storage.s3.bucket.is_empty() {
            return Err((
                "storage.s3.bucket",
                "is required when storage.mode is \"s3\"".into(),
            ));
        }
    } else if c.storage.local_path.as_os_str().is_empty() {
        return Err((
            "storage.local_path",
            "is required when storage.mode is \"local\"".into(),
        ));
    }
    let key = &c.security.cryptographic_key;
    if !key.is_empty() && (key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err((
            "security.cryptographic_key",
            "must be 64 hexadecimal characters (a 256-bit key)".into(),
        ));
    }
    if c.coverage.max_concurrent_uploads == 0 {
        return Err((
            "coverage.max_concurrent_uploads",
            "must be at least 1".into(),
        ));
    }
    let least = super::model::MIN_UPLOAD_BYTES_IN_FLIGHT;
    if c.coverage.max_upload_bytes_in_flight < least {
        return Err((
            "coverage.max_upload_bytes_in_flight",
            format!("must be at least {least} bytes (one upload's working set)"),
        ));
    }
    if c.queue.concurrency == 0 {
        return Err(("queue.concurrency", "must be at least 1".into()));
    }
    if c.queue.max_deliveries == 0 {
        return Err(("queue.max_deliveries", "must be at least 1".into()));
    }
    if c.reconcile.period_seconds == 0 {
        return Err(("reconcile.period_seconds", "must be at least 1".into()));
    }
    if c.reconcile.sentinel_check_seconds == 0 {
        return Err((
            "reconcile.sentinel_check_seconds",
            "must be at least 1".into(),
        ));
    }
    super::parse_trusted_proxies(&c.badger.trusted_proxies)
        .map_err(|e| ("badger.trusted_proxies", e))?;
    validate_github(&c.github)?;
    validate_git(&c.git)?;
    validate_sandbox(&c.worker)?;
    c.accounts.validate()?;
    c.oidc.validate()?;
    Ok(())
}

fn validate_git(g: &super::model::GitConfig) -> Result<(), (&'static str, String)> {
    use super::KNOWN_PROTOCOLS;
    if let Some(unknown) = g
        .allowed_protocols
        .iter()
        .find(|p| !KNOWN_PROTOCOLS.contains(&p.as_str()))
    {
        return Err((
            "git.allowed_protocols",
            format!(
                "`{unknown}` is not a transport cocov allows; choose among {}",
                KNOWN_PROTOCOLS.join(", ")
            ),
        ));
    }
    if g.known_hosts_file.as_os_str().is_empty() {
        return Err(("git.known_hosts_file", "must not be empty".into()));
    }
    Ok(())
}

fn validate_sandbox(w: &WorkerConfig) -> Result<(), (&'static str, String)> {
    if !(1..=10_000).contains(&w.cpu_weight) {
        return Err(("worker.cpu_weight", "must be between 1 and 10000".into()));
    }
    if w.scratch_mb == 0 {
        return Err(("worker.scratch_mb", "must be at least 1".into()));
    }
    if w.sandbox_user.is_empty() || w.sandbox_user == "root" {
        return Err((
            "worker.sandbox_user",
            "must name an unprivileged user (the package creates cocov-sandbox)".into(),
        ));
    }
    Ok(())
}

/// GitHub mode (an `app_id` is set) needs everything to mint installation tokens and to verify
/// webhooks; the key is parsed and used once here so a bad one stops the start, not a job.
fn validate_github(g: &GithubConfig) -> Result<(), (&'static str, String)> {
    if !has_scheme(g.api_url.trim(), &["https://", "http://"]) {
        return Err((
            "github.api_url",
            "must be an http:// or https:// URL".into(),
        ));
    }
    if !g.git_base_url.is_empty() && !has_scheme(g.git_base_url.trim(), &["https://", "http://"]) {
        return Err((
            "github.git_base_url",
            "must be empty or an http:// or https:// URL".into(),
        ));
    }
    if !g.web_url.is_empty() && !has_scheme(g.web_url.trim(), &["https://", "http://"]) {
        return Err((
            "github.web_url",
            "must be empty or an http:// or https:// URL".into(),
        ));
    }
    if g.request_timeout_seconds == 0 {
        return Err((
            "github.request_timeout_seconds",
            "must be at least 1".into(),
        ));
    }
    if !g.enabled() {
        return Ok(());
    }
    let required = "is required in GitHub mode (github.app_id is set)";
    if g.org_name.trim().is_empty() {
        return Err(("github.org_name", required.into()));
    }
    if g.app_private_key.trim().is_empty() {
        return Err(("github.app_private_key", required.into()));
    }
    super::parse_private_key(&g.app_private_key).map_err(|e| ("github.app_private_key", e))?;
    let installation = g.app_installation_id.trim();
    if installation.is_empty() {
        return Err(("github.app_installation_id", required.into()));
    }
    if !installation.bytes().all(|b| b.is_ascii_digit()) {
        return Err((
            "github.app_installation_id",
            format!("`{installation}` is not a number (the id in the installation's URL)"),
        ));
    }
    if g.webhook_secret_key.is_empty() {
        return Err((
            "github.webhook_secret_key",
            "is required: GitHub mode refuses to start without a webhook secret".into(),
        ));
    }
    Ok(())
}

fn has_scheme(url: &str, schemes: &[&str]) -> bool {
    schemes.iter().any(|s| url.starts_with(s))
}

/// Every leaf key of a table as a dotted path with its default value.
fn leaves(table: &Table) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    fn walk(prefix: &str, table: &Table, out: &mut Vec<(String, Value)>) {
        for (k, v) in table {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Value::Table(t) => walk(&path, t, out),
                other => out.push((path, other.clone())),
            }
        }
    }
    walk("", table, &mut out);
    out
}

/// Reads an environment string as a value of the default's type.
fn parse_env_value(raw: &str, default: &Value) -> Result<Value, String> {
    let raw = raw.trim();
    match default {
        Value::Integer(_) => raw
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("`{raw}` is not an integer")),
        Value::Float(_) => raw
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| format!("`{raw}` is not a number")),
        Value::Boolean(_) => match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Value::Boolean(true)),
            "0" | "false" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err(format!("`{raw}` is not a boolean (true or false)")),
        },
        Value::Array(_) => Ok(Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        )),
        _ => Ok(Value::String(raw.to_string())),
    }
}

fn set_path(table: &mut Table, dotted: &str, value: Value) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let last = parts.pop().expect("non-empty key");
    let mut cur = table;
    for part in parts {
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        cur = entry.as_table_mut().expect("just made a table");
    }
    cur.insert(last.to_string(), value);
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The line where a dotted key is written in the file, found through the span-keeping parser.
fn line_of_key(text: &str, dotted: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut parts = dotted.split('.').peekable();
    let mut best = None;
    while let Some(part) = parts.next() {
        let (key, value) = table.iter().find(|(k, _)| k.get_ref().as_ref() == part)?;
        best = Some(line_of(text, key.span().start));
        match value.get_ref() {
            DeValue::Table(inner) if parts.peek().is_some() => table = inner,
            _ => break,
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    fn from_text(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let table: Table = toml::from_str(text).unwrap();
        build(
            table,
            Some((Path::new("/etc/cocov/cocov.toml"), text)),
            &env_of(env),
        )
    }

    #[test]
    fn defaults_are_valid() {
        let c = load_from_env(&env_of(&[])).unwrap();
        assert_eq!(c.server.bind_address.to_string(), "127.0.0.1:3000");
        assert_eq!(c.badger.bind_port, 4000);
        assert_eq!(c.server.roles.len(), 3);
        assert_eq!(c.redis.key_prefix, "cocov:");
    }

    #[test]
    fn original_environment_names_work() {
        let c = load_from_env(&env_of(&[
            ("COCOV_DATABASE_HOST", "db.internal"),
            ("COCOV_DATABASE_NAME", "quality"),
            ("COCOV_DATABASE_USERNAME", "svc"),
            ("COCOV_DATABASE_PASSWORD", "p@ss"),
            ("COCOV_REDIS_URL", "redis://r:6379"),
            ("COCOV_SIDEKIQ_REDIS_URL", "redis://q:6379/5"),
            ("COCOV_GIT_SERVICE_STORAGE_MODE", "local"),
            ("COCOV_GIT_SERVICE_LOCAL_STORAGE_PATH", "/srv/blobs"),
            ("COCOV_BIND_ADDRESS", "0.0.0.0:8080"),
            ("COCOV_BADGER_BIND_ADDRESS", "0.0.0.0"),
            ("COCOV_BADGER_BIND_PORT", "4100"),
            ("COCOV_ROLES", "api, badger"),
        ]))
        .unwrap();
        assert_eq!(
            c.database.effective_url(),
            "postgres://svc:p%40ss@db.internal:5432/quality"
        );
        assert_eq!(c.redis.url, "redis://r:6379");
        assert_eq!(c.redis.queue_url, "redis://q:6379/5");
        assert_eq!(c.storage.local_path, PathBuf::from("/srv/blobs"));
        assert_eq!(c.server.bind_address.to_string(), "0.0.0.0:8080");
        assert_eq!(c.badger.bind_port, 4100);
        assert_eq!(
            c.server.roles,
            vec![crate::config::Role::Api, crate::config::Role::Badger]
        );
    }

    #[test]
    fn generic_name_wins_over_alias() {
        let c = load_from_env(&env_of(&[
            ("COCOV_SERVER_BIND_ADDRESS", "127.0.0.1:1"),
            ("COCOV_BIND_ADDRESS", "127.0.0.1:2"),
        ]))
        .unwrap();
        assert_eq!(c.server.bind_address.port(), 1);
    }

    #[test]
    fn bad_value_in_file_names_line_and_key() {
        let text = "[server]\nroles = [\"api\"]\n\n[database]\nmax_connections = \"many\"\n";
        let e = from_text(text, &[]).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("database.max_connections"));
        assert_eq!(
            e.source,
            Some(ConfigSource::File {
                path: DEFAULT_PATH.into(),
                line: Some(5)
            })
        );
        assert!(
            e.to_string()
                .starts_with("/etc/cocov/cocov.toml:5: key `database.max_connections`")
        );
    }

    #[test]
    fn unknown_key_is_an_error() {
        let e = from_text("[storage]\nmode = \"local\"\nlocal_pth = \"/x\"\n", &[]).unwrap_err();
        assert!(e.message.contains("unknown field `local_pth`"), "{e}");
        assert_eq!(e.key.as_deref(), Some("storage.local_pth"));
        assert!(e.to_string().starts_with("/etc/cocov/cocov.toml:3:"), "{e}");
    }

    #[test]
    fn bad_enum_value_names_the_key() {
        let e = from_text("[storage]\nmode = \"ftp\"\n", &[]).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("storage.mode"));
        assert!(e.to_string().contains(":2:"), "{e}");
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let e = load_from_env(&env_of(&[("COCOV_BADGER_BIND_PORT", "forty")])).unwrap_err();
        assert_eq!(
            e.source,
            Some(ConfigSource::Env {
                var: "COCOV_BADGER_BIND_PORT".into()
            })
        );
        let e = load_from_env(&env_of(&[("COCOV_BADGER_BIND_PORT", "99999")])).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("badger.bind_port"));
    }

    #[test]
    fn s3_mode_needs_an_endpoint() {
        let e = from_text("[storage]\nmode = \"s3\"\n", &[]).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("storage.s3.endpoint"));
    }

    #[test]
    fn sandbox_settings_are_bounded() {
        for (text, key) in [
            ("[worker]\ncpu_weight = 0\n", "worker.cpu_weight"),
            ("[worker]\ncpu_weight = 10001\n", "worker.cpu_weight"),
            ("[worker]\nscratch_mb = 0\n", "worker.scratch_mb"),
            ("[worker]\nsandbox_user = \"root\"\n", "worker.sandbox_user"),
        ] {
            let e = from_text(text, &[]).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{text}");
        }
    }

    #[test]
    fn syntax_error_reports_line() {
        let path = std::env::temp_dir().join(format!("cocov-cfg-{}.toml", std::process::id()));
        std::fs::write(&path, "[server]\nbind_address = \n").unwrap();
        let e = load(Some(&path)).unwrap_err();
        std::fs::remove_file(&path).ok();
        match &e.source {
            Some(ConfigSource::File { line: Some(2), .. }) => {}
            other => panic!("unexpected source {other:?}: {e}"),
        }
    }

    /// `etc/cocov.toml` documents every key with its default: it must stay complete and true.
    #[test]
    fn documented_example_lists_every_key_with_its_default() {
        let text = include_str!("../../etc/cocov.toml");
        let from_file = from_text(text, &[]).expect("etc/cocov.toml is valid");
        let documented = Table::try_from(from_file).unwrap();
        let defaults = Table::try_from(Config::default()).unwrap();
        assert_eq!(
            documented, defaults,
            "etc/cocov.toml differs from the defaults"
        );
        let written: Table = toml::from_str(text).unwrap();
        for (key, _) in leaves(&defaults) {
            assert!(
                line_of_key(text, &key).is_some(),
                "etc/cocov.toml does not document `{key}`"
            );
        }
        assert_eq!(leaves(&written).len(), leaves(&defaults).len());
    }

    fn test_app_key_base64() -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(include_str!("../../tests/fixtures/github/app-key.pem"))
    }

    #[test]
    fn github_settings_from_the_original_environment_names() {
        let key = test_app_key_base64();
        let c = load_from_env(&env_of(&[
            ("COCOV_GITHUB_ORG_NAME", "acme"),
            ("COCOV_GITHUB_APP_ID", "31337"),
            ("COCOV_GITHUB_APP_PRIVATE_KEY", &key),
            ("COCOV_GITHUB_APP_INSTALLATION_ID", "4242"),
            ("COCOV_GITHUB_OAUTH_CLIENT_ID", "Iv1.abc"),
            ("COCOV_GITHUB_OAUTH_CLIENT_SECRET", "oauth-secret"),
            ("COCOV_GITHUB_WEBHOOK_SECRET_KEY", "hook-secret"),
            ("COCOV_ALLOW_OUTSIDE_COLLABORATORS", "FALSE"),
            ("COCOV_GITHUB_API_URL", "https://ghe.example.com/api/v3"),
        ]))
        .unwrap();
        let g = &c.github;
        assert!(g.enabled());
        assert_eq!(
            (
                g.org_name.as_str(),
                g.app_id.as_str(),
                g.app_installation_id.as_str()
            ),
            ("acme", "31337", "4242")
        );
        assert_eq!(g.oauth_client_secret, "oauth-secret");
        assert_eq!(g.webhook_secret_key, "hook-secret");
        assert!(!g.allow_outside_collaborators);
        assert_eq!(g.effective_git_base_url(), "https://ghe.example.com");
    }

    #[test]
    fn github_mode_is_off_by_default_and_git_url_derives() {
        let c = load_from_env(&env_of(&[])).unwrap();
        assert!(!c.github.enabled());
        assert!(c.github.allow_outside_collaborators);
        assert_eq!(c.github.effective_git_base_url(), "https://github.com");
        let mut g = c.github.clone();
        g.api_url = "http://127.0.0.1:8080".into();
        assert_eq!(g.effective_git_base_url(), "http://127.0.0.1:8080");
        assert_eq!(g.effective_web_url(), "http://127.0.0.1:8080");
        g.api_url = "https://ghe.example.com/api/v3".into();
        assert_eq!(g.effective_web_url(), "https://ghe.example.com");
        g.web_url = "https://web.example.com/".into();
        assert_eq!(g.effective_web_url(), "https://web.example.com");
        g.api_url = "http://127.0.0.1:8080".into();
        g.git_base_url = "https://git.internal/".into();
        assert_eq!(g.effective_git_base_url(), "https://git.internal");
    }

    #[test]
    fn github_mode_requires_its_settings() {
        let key = test_app_key_base64();
        let complete = [
            ("COCOV_GITHUB_APP_ID", "31337"),
            ("COCOV_GITHUB_ORG_NAME", "acme"),
            ("COCOV_GITHUB_APP_PRIVATE_KEY", key.as_str()),
            ("COCOV_GITHUB_APP_INSTALLATION_ID", "4242"),
            ("COCOV_GITHUB_WEBHOOK_SECRET_KEY", "hook-secret"),
        ];
        assert!(load_from_env(&env_of(&complete)).is_ok());
        for (var, key) in [
            ("COCOV_GITHUB_ORG_NAME", "github.org_name"),
            ("COCOV_GITHUB_APP_PRIVATE_KEY", "github.app_private_key"),
            (
                "COCOV_GITHUB_APP_INSTALLATION_ID",
                "github.app_installation_id",
            ),
            (
                "COCOV_GITHUB_WEBHOOK_SECRET_KEY",
                "github.webhook_secret_key",
            ),
        ] {
            let without: Vec<(&str, &str)> = complete
                .iter()
                .copied()
                .filter(|(v, _)| *v != var)
                .collect();
            let e = load_from_env(&env_of(&without)).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert!(e.to_string().contains(&format!("key `{key}`")), "{e}");
        }
        let without_secret: Vec<(&str, &str)> = complete[..4].to_vec();
        let e = load_from_env(&env_of(&without_secret)).unwrap_err();
        assert!(
            e.message
                .contains("GitHub mode refuses to start without a webhook secret"),
            "{e}"
        );
    }

    #[test]
    fn github_private_key_must_be_base64_of_an_rsa_pem() {
        let with_key = |key: &str| {
            load_from_env(&env_of(&[
                ("COCOV_GITHUB_APP_ID", "31337"),
                ("COCOV_GITHUB_ORG_NAME", "acme"),
                ("COCOV_GITHUB_APP_PRIVATE_KEY", key),
                ("COCOV_GITHUB_APP_INSTALLATION_ID", "4242"),
                ("COCOV_GITHUB_WEBHOOK_SECRET_KEY", "hook-secret"),
            ]))
        };
        let raw_pem = include_str!("../../tests/fixtures/github/app-key.pem");
        for (bad, says) in [
            (raw_pem, "base64 of it"),
            ("%%%", "not valid base64"),
            ("aGVsbG8=", "PEM RSA private key"),
        ] {
            let e = with_key(bad).unwrap_err();
            assert_eq!(e.key.as_deref(), Some("github.app_private_key"));
            assert_eq!(
                e.source,
                Some(ConfigSource::Env {
                    var: "COCOV_GITHUB_APP_PRIVATE_KEY".into()
                })
            );
            assert!(e.message.contains(says), "{e}");
        }
        // A public key is not a private key.
        use base64::Engine;
        let public = base64::engine::general_purpose::STANDARD
            .encode(include_str!("../../tests/fixtures/github/app-key.pub.pem"));
        assert!(with_key(&public).is_err());
    }

    #[test]
    fn git_transports_are_a_known_list() {
        let c = load_from_env(&env_of(&[("COCOV_GIT_ALLOWED_PROTOCOLS", "https, http")])).unwrap();
        assert_eq!(c.git.allowed_protocols, ["https", "http"]);
        for bad in ["ext", "fd", "https,testgit"] {
            let e = load_from_env(&env_of(&[("COCOV_GIT_ALLOWED_PROTOCOLS", bad)])).unwrap_err();
            assert_eq!(e.key.as_deref(), Some("git.allowed_protocols"), "{e}");
        }
        let c = load_from_env(&env_of(&[("COCOV_GIT_KNOWN_HOSTS_FILE", "/srv/kh")])).unwrap();
        assert_eq!(c.git.known_hosts_file, PathBuf::from("/srv/kh"));
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let e = load(Some(Path::new("/nonexistent/cocov.toml"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/cocov.toml"));
    }
}
