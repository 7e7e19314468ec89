//! The effective configuration as TOML, with secrets masked, for `cocov config check`.

use toml::{Table, Value};

use super::model::Config;

const MASK: &str = "********";

/// Leaf names whose values are secret.
fn is_secret_key(name: &str) -> bool {
    name.contains("password")
        || name.contains("secret")
        || name.contains("private_key")
        || name == "cryptographic_key"
        || name.ends_with("_token")
}

/// Hides the password of a `scheme://user:password@host` URL.
fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.find('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:{MASK}{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

fn mask(table: &mut Table) {
    for (key, value) in table.iter_mut() {
        match value {
            Value::Table(inner) => mask(inner),
            Value::String(s) if !s.is_empty() && is_secret_key(key) => *s = MASK.to_string(),
            Value::String(s) if key.ends_with("url") => *s = mask_url(s),
            _ => {}
        }
    }
}

/// Renders the configuration as TOML with every secret replaced by `********`.
pub fn render_masked(config: &Config) -> String {
    let mut table = Table::try_from(config).expect("configuration serialises");
    mask(&mut table);
    toml::to_string_pretty(&table).expect("table renders")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        let mut c = Config::default();
        c.database.password = "hunter2".into();
        c.database.url = "postgres://cocov:hunter2@db/cocov".into();
        c.security.cryptographic_key = "ab".repeat(32);
        c.storage.s3.secret_access_key = "s3cr3t".into();
        c.redis.url = "redis://:redispw@127.0.0.1:6379".into();
        c.github.app_private_key = "LS0tLS1CRUdJTiBSU0Eg".into();
        c.github.oauth_client_secret = "oauthpw".into();
        c.github.webhook_secret_key = "hookpw".into();
        let out = render_masked(&c);
        for secret in [
            "hunter2",
            "s3cr3t",
            "redispw",
            &"ab".repeat(32),
            "LS0tLS1CRUdJTiBSU0Eg",
            "oauthpw",
            "hookpw",
        ] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
        assert!(out.contains("postgres://cocov:********@db/cocov"));
    }
}
