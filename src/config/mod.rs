//! The appliance's configuration: one TOML file (default `/etc/cocov/cocov.toml`) with every key
//! overridable by a `COCOV_*` environment variable.
//!
//! `model` holds the typed settings and their defaults, `load` the layering (file, then
//! environment) and the error reporting that names file, line and key, `display` the effective
//! configuration with secrets masked.

mod accounts;
mod display;
mod load;
mod model;
mod oidc;
mod values;

pub use accounts::{AccountsConfig, LocalAccounts};
pub use display::render_masked;
pub use load::{ConfigError, ConfigSource, DEFAULT_PATH, load, load_from_env};
pub use model::*;
pub use oidc::OidcConfig;
pub use values::{KNOWN_PROTOCOLS, decode_private_key, parse_private_key, parse_trusted_proxies};
