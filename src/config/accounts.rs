//! `[accounts]`: how people sign in with a local account and how long a browser session lasts.

use serde::{Deserialize, Serialize};

/// Whether local accounts (login + password, or a one-time sign-in link) may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalAccounts {
    /// On when no other sign-in (GitHub, OIDC) is configured, so a standalone install has a way in.
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    pub local: LocalAccounts,
    /// A session unused for this long is over.
    pub session_idle_minutes: u64,
    /// A session is over this long after sign-in, however much it is used.
    pub session_absolute_hours: u64,
    /// Failed sign-ins allowed per account, and per client address, within the window.
    pub login_failures_per_account: u32,
    pub login_failures_per_address: u32,
    pub login_window_seconds: u64,
    /// How long a sign-in link printed by `cocov admin create-user --sign-in-link` stays valid.
    pub sign_in_link_minutes: u64,
    /// The proxies whose `Forwarded`/`X-Forwarded-For` are believed for the per-address limit.
    pub trusted_proxies: Vec<String>,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            local: LocalAccounts::Auto,
            session_idle_minutes: 12 * 60,
            session_absolute_hours: 7 * 24,
            login_failures_per_account: 5,
            login_failures_per_address: 20,
            login_window_seconds: 15 * 60,
            sign_in_link_minutes: 24 * 60,
            trusted_proxies: Vec::new(),
        }
    }
}

impl AccountsConfig {
    /// Whether local sign-in is open, given whether another sign-in (GitHub, OIDC) works.
    pub fn local_enabled(&self, other_sign_in: bool) -> bool {
        match self.local {
            LocalAccounts::On => true,
            LocalAccounts::Off => false,
            LocalAccounts::Auto => !other_sign_in,
        }
    }

    /// Refuses values that would make sessions or the limiter meaningless.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        // Session use is recorded at most once a minute, so shorter idle times would end
        // sessions that are in use.
        if self.session_idle_minutes < 5 {
            return Err(("accounts.session_idle_minutes", "must be at least 5".into()));
        }
        if self.session_absolute_hours == 0 {
            return Err((
                "accounts.session_absolute_hours",
                "must be at least 1".into(),
            ));
        }
        if self.login_failures_per_account == 0 || self.login_failures_per_address == 0 {
            return Err((
                "accounts.login_failures_per_account",
                "login failure limits must be at least 1".into(),
            ));
        }
        if self.login_window_seconds == 0 || self.sign_in_link_minutes == 0 {
            return Err((
                "accounts.login_window_seconds",
                "windows and lifetimes must be at least 1".into(),
            ));
        }
        super::parse_trusted_proxies(&self.trusted_proxies)
            .map(|_| ())
            .map_err(|e| ("accounts.trusted_proxies", e))
    }
}
