//! Repository URLs as git will read them: the one check every URL passes before it is stored,
//! and the redaction of credentials wherever a URL (or git's message quoting one) is shown.
//!
//! The check refuses what would let a URL reach beyond "fetch from this server": text git's
//! option parser or ssh would take as a flag, git's `<transport>::<address>` remote-helper syntax
//! (`ext::` runs any command), transports the configuration does not allow, and credentials,
//! which would be stored in clear and shown back.

pub use crate::config::KNOWN_PROTOCOLS;

/// Longer URLs are refused: nothing legitimate needs more, and they end up in logs.
const MAX_URL_LEN: usize = 2048;

/// Why a URL is refused. `code()` names the rule for API answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitUrlError {
    #[error("`{0}` looks like a command-line option, not a git URL")]
    OptionLike(String),
    #[error("a git URL must not contain whitespace or control characters")]
    WhitespaceOrControl,
    #[error(
        "`{0}::` is git's remote-helper syntax (`<transport>::<address>`), which can run programs; \
         use a plain https://, ssh:// or file:// URL"
    )]
    RemoteHelper(String),
    #[error(
        "the `{scheme}` transport is not allowed on this instance (git.allowed_protocols = [{allowed}])"
    )]
    SchemeNotAllowed { scheme: String, allowed: String },
    #[error(
        "credentials in a git URL would be stored in clear and shown back: remove them and give \
         the daemon's user access instead (an ssh key in its home directory with an ssh:// or \
         user@host:path URL, or a file:// mirror)"
    )]
    Credentials,
    #[error(
        "`{0}` is not a git URL: use https://host/path, ssh://[user@]host/path, user@host:path or \
         file:///path"
    )]
    Malformed(String),
}

impl GitUrlError {
    /// The rule's name, e.g. `git_url_option_like`.
    pub fn code(&self) -> &'static str {
        match self {
            GitUrlError::OptionLike(_) => "git_url_option_like",
            GitUrlError::WhitespaceOrControl => "git_url_whitespace",
            GitUrlError::RemoteHelper(_) => "git_url_remote_helper",
            GitUrlError::SchemeNotAllowed { .. } => "git_url_scheme_not_allowed",
            GitUrlError::Credentials => "git_url_credentials",
            GitUrlError::Malformed(_) => "invalid_git_url",
        }
    }
}

/// Checks `url` against every rule; `allowed` are the enabled transports (`KNOWN_PROTOCOLS`
/// names). Returns the transport git will use.
pub fn check(url: &str, allowed: &[String]) -> Result<&'static str, GitUrlError> {
    let shown = || redact(&url.chars().take(200).collect::<String>());
    if url.starts_with('-') {
        return Err(GitUrlError::OptionLike(shown()));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        // `… --upload-pack=…` after a space: say it is an option, the more telling rule.
        let option_after_space = url
            .split(|c: char| c.is_whitespace() || c.is_control())
            .skip(1)
            .any(|word| word.starts_with('-'));
        return Err(if option_after_space {
            GitUrlError::OptionLike(shown())
        } else {
            GitUrlError::WhitespaceOrControl
        });
    }
    if url.is_empty() || url.len() > MAX_URL_LEN {
        return Err(GitUrlError::Malformed(shown()));
    }
    if let Some(helper) = remote_helper(url) {
        return Err(GitUrlError::RemoteHelper(helper.to_string()));
    }
    let not_allowed = |scheme: &str| GitUrlError::SchemeNotAllowed {
        scheme: scheme.to_string(),
        allowed: allowed
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let protocol = if url.contains("://") {
        check_url_form(url, shown, not_allowed)?
    } else {
        check_scp_form(url, shown)?
    };
    if !allowed.iter().any(|a| a == protocol) {
        return Err(not_allowed(protocol));
    }
    Ok(protocol)
}

/// git's rule (transport.c): scheme characters from the start, then `::`.
fn remote_helper(url: &str) -> Option<&str> {
    let end = url
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_alphabetic() || (i > 0 && (c.is_ascii_digit() || "+.-".contains(c))))
        })
        .map(|(i, _)| i)?;
    (end > 0 && url[end..].starts_with("::")).then(|| &url[..end])
}

/// `scheme://…`: a known transport with a host (file excepted), no credentials, and nothing
/// in the host or user that ssh could read as an option.
fn check_url_form(
    url: &str,
    shown: impl Fn() -> String,
    not_allowed: impl Fn(&str) -> GitUrlError,
) -> Result<&'static str, GitUrlError> {
    let parsed = url::Url::parse(url).map_err(|_| GitUrlError::Malformed(shown()))?;
    let scheme = parsed.scheme().to_ascii_lowercase();
    let Some(protocol) = KNOWN_PROTOCOLS.iter().find(|p| **p == scheme) else {
        return Err(not_allowed(&scheme));
    };
    if parsed.password().is_some() {
        return Err(GitUrlError::Credentials);
    }
    // A user name over http(s) is where a token goes (`https://<token>@host`).
    if matches!(*protocol, "https" | "http") && !parsed.username().is_empty() {
        return Err(GitUrlError::Credentials);
    }
    if *protocol == "file" {
        if parsed.path().len() <= 1 {
            return Err(GitUrlError::Malformed(shown()));
        }
        return Ok(protocol);
    }
    let host = parsed.host_str().unwrap_or_default();
    if host.is_empty() || host.starts_with('-') || parsed.username().starts_with('-') {
        return Err(GitUrlError::OptionLike(shown()));
    }
    if parsed.path().len() <= 1 {
        return Err(GitUrlError::Malformed(shown()));
    }
    Ok(protocol)
}

/// scp-like `user@host:path` (ssh): a plain user and host name, a non-empty path.
fn check_scp_form(url: &str, shown: impl Fn() -> String) -> Result<&'static str, GitUrlError> {
    let malformed = || GitUrlError::Malformed(shown());
    let (user_host, path) = url.split_once(':').ok_or_else(malformed)?;
    let (user, host) = user_host.split_once('@').ok_or_else(malformed)?;
    let plain = |s: &str, extra: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c) || extra.contains(c))
    };
    if user.starts_with('-') || host.starts_with('-') {
        return Err(GitUrlError::OptionLike(shown()));
    }
    if !plain(user, "") || !plain(host, "") || path.is_empty() {
        return Err(malformed());
    }
    Ok("ssh")
}

/// `text` with the credentials of every URL in it hidden: the whole user part of an http(s)
/// URL (it may be a token), the password of any other. Applied to anything shown that may hold
/// a URL: API answers, audit rows, git's messages stored as errors, logs.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let scheme_start = rest[..pos]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+.-".contains(c)))
            .map(|i| i + 1)
            .unwrap_or(0);
        let scheme = rest[scheme_start..pos].to_ascii_lowercase();
        let after = &rest[pos + 3..];
        let authority_len = after
            .find(|c: char| "/?#'\"`<>()[]{}\\".contains(c) || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..authority_len];
        out.push_str(&rest[..pos + 3]);
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                if scheme.ends_with("http") || scheme.ends_with("https") {
                    out.push_str("***");
                } else if let Some((user, _password)) = userinfo.split_once(':') {
                    out.push_str(user);
                    out.push_str(":***");
                } else {
                    out.push_str(userinfo);
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<String> {
        ["https", "ssh", "file"].map(String::from).to_vec()
    }

    #[test]
    fn ordinary_urls_pass() {
        for (url, protocol) in [
            ("file:///srv/git/a.git", "file"),
            ("https://git.example/a.git", "https"),
            ("ssh://git@h/a.git", "ssh"),
            ("ssh://h:2222/srv/a.git", "ssh"),
            ("git@h:a.git", "ssh"),
            ("git@git.example.com:team/a-b.git", "ssh"),
        ] {
            assert_eq!(check(url, &defaults()), Ok(protocol), "{url}");
        }
    }

    #[test]
    fn each_rule_is_named() {
        let code = |url: &str| check(url, &defaults()).unwrap_err().code();
        for (url, rule) in [
            ("--upload-pack=touch /tmp/x", "git_url_option_like"),
            ("-oProxyCommand=x", "git_url_option_like"),
            ("https://h/a.git --upload-pack=x", "git_url_option_like"),
            ("file:///a -u x", "git_url_option_like"),
            ("ssh://-oProxyCommand=x/a", "git_url_option_like"),
            ("git@-oProxyCommand=x:a", "git_url_option_like"),
            ("https://h/a b", "git_url_whitespace"),
            ("https://h/a\nb", "git_url_whitespace"),
            ("ext::sh -c touch% /tmp/x", "git_url_option_like"),
            ("ext::sh%20-c%20touch", "git_url_remote_helper"),
            ("fd::3", "git_url_remote_helper"),
            ("testgit::/srv/a", "git_url_remote_helper"),
            ("http://h/a.git", "git_url_scheme_not_allowed"),
            ("git://h/a.git", "git_url_scheme_not_allowed"),
            ("ftp://h/a", "git_url_scheme_not_allowed"),
            ("https://user:pass@h/a.git", "git_url_credentials"),
            ("https://ghp_token@h/a.git", "git_url_credentials"),
            ("ssh://git:pw@h/a.git", "git_url_credentials"),
            ("", "invalid_git_url"),
            ("/srv/a.git", "invalid_git_url"),
            ("https://", "invalid_git_url"),
            ("file://", "invalid_git_url"),
            ("https://h", "invalid_git_url"),
            ("user:pass@h:a", "invalid_git_url"),
        ] {
            assert_eq!(code(url), rule, "{url}");
        }
        assert!(check("ext::sh", &defaults()).is_err());
    }

    #[test]
    fn allowed_protocols_come_from_configuration() {
        let with_http: Vec<String> = ["https", "http"].map(String::from).to_vec();
        assert_eq!(check("http://h/a.git", &with_http), Ok("http"));
        let e = check("file:///srv/a.git", &with_http).unwrap_err();
        assert_eq!(e.code(), "git_url_scheme_not_allowed");
        assert!(e.to_string().contains("\"https\", \"http\""), "{e}");
    }

    #[test]
    fn credentials_are_redacted_wherever_a_url_appears() {
        assert_eq!(
            redact("fatal: unable to access 'https://user:hunter2@h/x/': refused"),
            "fatal: unable to access 'https://***@h/x/': refused"
        );
        assert_eq!(
            redact("https://ghp_abc@h/x https://h/y"),
            "https://***@h/x https://h/y"
        );
        assert_eq!(redact("ssh://git:pw@h/x"), "ssh://git:***@h/x");
        assert_eq!(redact("ssh://git@h/x"), "ssh://git@h/x");
        assert_eq!(redact("git@h:x and no url"), "git@h:x and no url");
        assert_eq!(redact("file:///srv/a.git"), "file:///srv/a.git");
    }
}
