//! `[oidc]`: sign-in through an OpenID Connect provider (Keycloak, GitLab, Gitea, Azure AD, …).
//! Off while `issuer_url` is empty.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// The provider's issuer; its discovery document is `<issuer_url>/.well-known/openid-configuration`.
    pub issuer_url: String,
    pub client_id: String,
    /// A file holding the client secret (read at start-up, so the secret is not in this file).
    pub client_secret_file: PathBuf,
    /// The claim that becomes the user's login (from the ID token, else from userinfo).
    pub login_claim: String,
    /// The claim listing the user's groups.
    pub groups_claim: String,
    /// Members of any of these groups are administrators; checked at each sign-in. Empty: the
    /// admin flag is left as it is (the first user, or an administrator's promotion).
    pub admin_groups: Vec<String>,
    /// Whether a first sign-in creates the user; otherwise only existing linked users get in.
    pub allow_signup: bool,
    /// The sign-in button's label.
    pub display_name: String,
    /// The scopes requested; `openid` must be one.
    pub scopes: Vec<String>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer_url: String::new(),
            client_id: String::new(),
            client_secret_file: PathBuf::new(),
            login_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
            admin_groups: Vec::new(),
            allow_signup: false,
            display_name: "Single sign-on".into(),
            scopes: vec!["openid".into(), "profile".into()],
        }
    }
}

impl OidcConfig {
    pub fn enabled(&self) -> bool {
        !self.issuer_url.is_empty()
    }

    /// The issuer as compared with the provider's answers: without a trailing slash.
    pub fn issuer(&self) -> &str {
        self.issuer_url.trim_end_matches('/')
    }

    /// The client secret, read from `client_secret_file` (trailing newline dropped).
    pub fn read_client_secret(&self) -> Result<String, String> {
        let file = self.client_secret_file.display();
        let text = std::fs::read_to_string(&self.client_secret_file)
            .map_err(|e| format!("cannot read the client secret file {file}: {e}"))?;
        let secret = text.trim_end_matches(['\r', '\n']).to_string();
        if secret.is_empty() {
            return Err(format!("the client secret file {file} is empty"));
        }
        Ok(secret)
    }

    /// Checks the section when OIDC is on: an https issuer (http only on loopback, for tests
    /// and a provider on the same host), a client, a readable secret, claims and scopes.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.enabled() {
            return Ok(());
        }
        let url = url::Url::parse(&self.issuer_url)
            .map_err(|e| ("oidc.issuer_url", format!("not a URL: {e}")))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err((
                    "oidc.issuer_url",
                    "must be an https URL (http only for a loopback address)".into(),
                ));
            }
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err((
                "oidc.issuer_url",
                "must not have credentials, a query or a fragment".into(),
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err((
                "oidc.client_id",
                "is required when oidc.issuer_url is set".into(),
            ));
        }
        if self.client_secret_file.as_os_str().is_empty() {
            return Err((
                "oidc.client_secret_file",
                "is required when oidc.issuer_url is set".into(),
            ));
        }
        self.read_client_secret()
            .map_err(|e| ("oidc.client_secret_file", e))?;
        if self.login_claim.trim().is_empty() || self.groups_claim.trim().is_empty() {
            return Err(("oidc.login_claim", "claim names must not be empty".into()));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err(("oidc.scopes", "must include `openid`".into()));
        }
        if self.scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
            return Err(("oidc.scopes", "a scope is one word".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::OidcConfig;

    fn with_secret(issuer: &str) -> (OidcConfig, tempfile::NamedTempFile) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "s3cret\n").unwrap();
        let config = OidcConfig {
            issuer_url: issuer.into(),
            client_id: "cocov".into(),
            client_secret_file: file.path().into(),
            ..OidcConfig::default()
        };
        (config, file)
    }

    #[test]
    fn issuer_must_be_https_unless_loopback() {
        for ok in [
            "https://id.example.com/realms/x",
            "http://127.0.0.1:8080",
            "http://[::1]:1",
            "http://localhost:9",
        ] {
            assert!(with_secret(ok).0.validate().is_ok(), "{ok}");
        }
        for bad in [
            "http://id.example.com",
            "ftp://127.0.0.1",
            "https://id.example.com/?a=b",
            "nonsense",
        ] {
            assert_eq!(
                with_secret(bad).0.validate().unwrap_err().0,
                "oidc.issuer_url",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_missing_secret_file_is_named() {
        let (mut config, _file) = with_secret("https://id.example.com");
        config.client_secret_file = "/nonexistent/oidc-secret".into();
        let (key, message) = config.validate().unwrap_err();
        assert_eq!(key, "oidc.client_secret_file");
        assert!(message.contains("/nonexistent/oidc-secret"), "{message}");
        let (config, _file) = with_secret("https://id.example.com");
        assert_eq!(config.read_client_secret().unwrap(), "s3cret");
    }

    #[test]
    fn loading_names_the_unreadable_secret_file() {
        let env = |name: &str| match name {
            "COCOV_OIDC_ISSUER_URL" => Some("https://id.example.com".to_string()),
            "COCOV_OIDC_CLIENT_ID" => Some("cocov".to_string()),
            "COCOV_OIDC_CLIENT_SECRET_FILE" => Some("/nonexistent/oidc-secret".to_string()),
            _ => None,
        };
        let error = crate::config::load_from_env(&env).unwrap_err().to_string();
        assert!(
            error.contains("oidc.client_secret_file") && error.contains("/nonexistent/oidc-secret"),
            "{error}"
        );
    }

    #[test]
    fn scopes_need_openid() {
        let (mut config, _file) = with_secret("https://id.example.com");
        config.scopes = vec!["profile".into()];
        assert_eq!(config.validate().unwrap_err().0, "oidc.scopes");
    }
}
