//! A real OpenID Provider for the OIDC sign-in tests: the certified `oidc-provider` package, run
//! by `tests/oidc-provider/server.js` (installed by `scripts/install-test-tools.sh`), with its
//! own development login and consent pages. `tests/oidc.rs` drives those pages over HTTP,
//! `tests/web_ui_sign_in.rs` in a real browser.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::requests::free_port;

/// The client the daemon signs in as.
pub const CLIENT_ID: &str = "cocov";
/// The secret of both clients the provider knows (`cocov` and `other`).
pub const CLIENT_SECRET: &str = "test-client-secret";

/// The provider process; killed when dropped.
pub struct OidcProvider {
    child: Child,
    pub issuer: String,
    accounts: PathBuf,
    secret_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl OidcProvider {
    /// Starts a provider knowing the `cocov` client (redirecting to `redirect_uri`) and a
    /// second client `other`, with `accounts` (account id → claims; the id is what one types
    /// as login on its login page). With `claims_in_userinfo_only`, ID tokens carry no profile
    /// or group claims (userinfo does).
    pub async fn start(
        redirect_uri: &str,
        accounts: Value,
        claims_in_userinfo_only: bool,
    ) -> OidcProvider {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider");
        assert!(
            root.join("node_modules/oidc-provider").exists(),
            "tests/oidc-provider/node_modules is missing: run scripts/install-test-tools.sh"
        );
        let dir = tempfile::tempdir().unwrap();
        let accounts_file = dir.path().join("accounts.json");
        std::fs::write(&accounts_file, accounts.to_string()).unwrap();
        let secret_file = dir.path().join("oidc-secret");
        std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
        let port = free_port();
        let client = |id: &str| {
            json!({"client_id": id, "client_secret": CLIENT_SECRET, "redirect_uris": [redirect_uri],
                   "grant_types": ["authorization_code"], "response_types": ["code"]})
        };
        let options = json!({
            "port": port,
            "accounts_file": accounts_file,
            "clients": [client(CLIENT_ID), client("other")],
            "claims_in_userinfo_only": claims_in_userinfo_only,
        });
        let child = Command::new("node")
            .arg(root.join("server.js"))
            .arg(options.to_string())
            .current_dir(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let issuer = format!("http://127.0.0.1:{port}");
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        super::eventually(
            "the OIDC provider to serve",
            Duration::from_secs(30),
            || {
                let discovery = discovery.clone();
                async move {
                    let r = reqwest::get(&discovery).await.ok()?;
                    r.status().is_success().then_some(())
                }
            },
        )
        .await;
        OidcProvider {
            child,
            issuer,
            accounts: accounts_file,
            secret_file,
            _dir: dir,
        }
    }

    /// Replaces the accounts (read by the provider at every lookup).
    pub fn set_accounts(&self, accounts: Value) {
        std::fs::write(&self.accounts, accounts.to_string()).unwrap();
    }

    /// Points the daemon's `[oidc]` at this provider as the `cocov` client.
    pub fn configure(&self, c: &mut cocov::config::Config) {
        c.oidc.issuer_url = self.issuer.clone();
        c.oidc.client_id = CLIENT_ID.into();
        c.oidc.client_secret_file = self.secret_file.clone();
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
