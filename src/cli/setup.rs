//! `cocov setup`: first-run provisioning on a host with a local PostgreSQL. It creates the
//! database role (random password) and the database, writes the connection settings into the
//! configuration file (keeping its comments), migrates, and creates the first admin. Each step
//! prints what it did or that it found things in place; a second run changes nothing.
//!
//! The superuser side runs `psql` as the local `postgres` user through the Unix socket (peer
//! authentication, the Debian/RHEL default), or uses `--superuser-url`. The role's password is
//! sent to PostgreSQL as a SCRAM-SHA-256 verifier computed here, so the plain password never
//! appears in a statement PostgreSQL might log.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::io::AsyncWriteExt;

use super::{Cli, Failure};
use crate::audit::AuditActor;
use crate::auth::users;
use crate::config::{self, DatabaseConfig};

/// The top of a configuration file that setup creates (rather than edits).
const NEW_FILE_HEADER: &str = "# cocov configuration, written by `cocov setup`. Every key, its \
                               default and meaning: /usr/share/doc/cocov/README.md and \
                               etc/cocov.toml in the sources.\n";

/// The group that may read the configuration (the daemon's), created by the package.
const SERVICE_GROUP: &str = "cocov";

#[derive(clap::Args, Debug)]
pub struct SetupArgs {
    /// Database to create, owned by --database-user.
    #[arg(long, default_value = "cocov")]
    pub database_name: String,
    /// Role the daemon connects as; created with a random password when absent.
    #[arg(long, default_value = "cocov")]
    pub database_user: String,
    /// Login of the first admin user, created only when there is no user yet.
    #[arg(long, default_value = "admin")]
    pub admin_login: String,
    /// A postgres:// URL with the right to create roles and databases, used instead of running
    /// psql as the local `postgres` user.
    #[arg(long, value_name = "URL")]
    pub superuser_url: Option<String>,
}

pub async fn run(cli: &Cli, args: &SetupArgs) -> Result<(), Failure> {
    for (flag, name) in [
        ("--database-name", &args.database_name),
        ("--database-user", &args.database_user),
    ] {
        check_identifier(flag, name)?;
    }
    if !users::valid_login(&args.admin_login) {
        return Err(Failure::new(format!(
            "--admin-login `{}`: use 1 to 39 letters, digits or hyphens",
            args.admin_login
        )));
    }
    let root = nix::unistd::geteuid().is_root();
    if !root && args.superuser_url.is_none() {
        return Err(Failure::new(
            "cocov setup must run as root: it runs psql as the `postgres` user and writes the \
             configuration as root:cocov 0640 (or pass --superuser-url and a writable --config)",
        ));
    }
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    let mut file = ConfigFile::read(&path)?;
    let current = if file.existed {
        config::load(Some(&path))?
    } else {
        config::load_from_env(&|name| std::env::var(name).ok())?
    };
    if !current.database.url.is_empty() {
        return Err(Failure {
            status: 2,
            message: format!(
                "database.url is set (in {} or COCOV_DATABASE_URL) and would override the \
                 host/name/username/password that setup writes: empty it first",
                path.display()
            ),
        });
    }

    let mut su = Superuser::connect(args.superuser_url.as_deref()).await?;
    let (host, port) = su.server_address().await?;
    let user = &args.database_user;

    // A password already configured for this role is reused, so a run that stopped after
    // creating the role but before writing the file converges instead of locking us out.
    let configured = file
        .get_str("username")
        .filter(|u| u == user)
        .and(file.get_str("password"))
        .filter(|p| !p.is_empty());
    let password = configured.unwrap_or_else(random_password);
    let mut target = DatabaseConfig {
        host: host.clone(),
        port,
        name: args.database_name.clone(),
        username: user.clone(),
        password: password.clone(),
        ..current.database.clone()
    };

    let role_exists = su
        .query(&format!(
            "SELECT rolname::text FROM pg_roles WHERE rolname = {}",
            literal(user)
        ))
        .await?
        .is_some();
    if !role_exists {
        su.execute(&format!(
            "CREATE ROLE {} LOGIN PASSWORD {}",
            ident(user),
            literal(&scram_verifier(&password))
        ))
        .await?;
        println!("database role {user}: created (its password goes into the configuration)");
    } else {
        match try_login(&target).await {
            Ok(()) => println!("database role {user}: exists, unchanged"),
            Err(LoginError::BadPassword) => {
                su.execute(&format!(
                    "ALTER ROLE {} PASSWORD {}",
                    ident(user),
                    literal(&scram_verifier(&password))
                ))
                .await?;
                println!(
                    "database role {user}: exists, but the configured password did not work: \
                     set a new one (written to the configuration)"
                );
            }
            Err(LoginError::Other(e)) => {
                return Err(Failure::new(format!(
                    "database role {user} exists, but logging in as it at {host}:{port} failed: \
                     {e} (pg_hba.conf must allow password logins from {host})"
                )));
            }
        }
    }

    let db = &args.database_name;
    let owner = su
        .query(&format!(
            "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = {}",
            literal(db)
        ))
        .await?;
    match owner {
        None => {
            su.execute(&format!(
                "CREATE DATABASE {} OWNER {}",
                ident(db),
                ident(user)
            ))
            .await?;
            println!("database {db}: created, owned by {user}");
        }
        Some(owner) if owner == *user => println!("database {db}: exists, unchanged"),
        Some(owner) => println!(
            "database {db}: exists, owned by {owner} (not {user}); unchanged. Migrations need \
             {user} to own it or to have CREATE on it"
        ),
    }
    su.close().await;

    let changed = file.set_database(&target);
    file.write_if_changed(&path, changed, root)?;
    if changed {
        println!(
            "configuration {}: [database] host, port, name, username, password written",
            path.display()
        );
    } else {
        println!("configuration {}: unchanged", path.display());
    }

    // From here on everything runs as the daemon would: with the file just written.
    let config = config::load(Some(&path))?;
    target = config.database.clone();
    let report = crate::db::migrate(&target).await.map_err(Failure::new)?;
    match (report.applied, report.before) {
        (0, _) => println!("database schema: at {}, unchanged", report.after),
        (n, before) => println!(
            "database schema: migrated to {} ({n} migration(s) applied, was {})",
            report.after,
            before.map_or("empty".to_string(), |v| v.to_string())
        ),
    }
    create_first_admin(&target, &args.admin_login).await?;
    if root {
        ensure_sandbox_user(&config.worker.sandbox_user)?;
    }
    println!("next: systemctl start cocov; `cocov doctor` checks the installation");
    Ok(())
}

/// The unprivileged user checks run as when the daemon runs as root (the packages create it
/// too): a system user with its own group, no home and no login shell.
fn ensure_sandbox_user(name: &str) -> Result<(), Failure> {
    if nix::unistd::User::from_name(name).ok().flatten().is_some() {
        println!("sandbox user {name}: exists, unchanged");
        return Ok(());
    }
    let shell = ["/usr/sbin/nologin", "/sbin/nologin"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("/bin/false");
    let out = std::process::Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home"])
        .args(["--home-dir", "/nonexistent", "--shell", shell])
        .args([
            "--comment",
            "cocov checks (created by cocov setup)",
            "--",
            name,
        ])
        .output()
        .map_err(|e| Failure::new(format!("sandbox user {name}: cannot run useradd: {e}")))?;
    if !out.status.success() {
        return Err(Failure::new(format!(
            "sandbox user {name}: useradd failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    println!("sandbox user {name}: created (checks run as it when the daemon runs as root)");
    Ok(())
}

/// Creates the admin and prints its token, only when the installation has no user at all.
async fn create_first_admin(database: &DatabaseConfig, login: &str) -> Result<(), Failure> {
    let pool = crate::db::connect(database).map_err(Failure::new)?;
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .map_err(Failure::new)?;
    if existing > 0 {
        println!("admin user: {existing} user(s) exist, none created");
        return Ok(());
    }
    let actor = AuditActor::cli();
    let user = users::create(&pool, login, true, &actor)
        .await
        .map_err(Failure::new)?;
    let token = users::create_personal_token(&pool, &user, "created by cocov setup", &actor)
        .await
        .map_err(Failure::new)?;
    println!("admin user {}: created (id {})", user.login, user.id);
    println!("personal access token (shown once): {token}");
    pool.close().await;
    Ok(())
}

/// Lower-case SQL identifiers only: nothing to quote wrongly, and names users type in `psql`
/// without quotes work.
fn check_identifier(flag: &str, name: &str) -> Result<(), Failure> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{flag} `{name}`: use lower-case letters, digits and _ (at most 63), starting with \
             a letter or _"
        )))
    }
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// 32 alphanumerics (about 190 bits): safe in URLs, TOML and SQL without escaping.
fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    // 256 is 4 × 62 + 8: the slight bias of the modulo is irrelevant at this length.
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802 / 7677, 4096
/// iterations as PostgreSQL's client libraries use). PostgreSQL accepts it in `PASSWORD '…'`.
fn scram_verifier(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    scram_verifier_with_salt(password, &salt, 4096)
}

fn scram_verifier_with_salt(password: &str, salt: &[u8], iterations: u32) -> String {
    let salted = pbkdf2_sha256(password.as_bytes(), salt, iterations);
    let client_key = hmac_sha256(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac_sha256(&salted, b"Server Key");
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        b64.encode(salt),
        b64.encode(stored_key),
        b64.encode(server_key)
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA256 for one 32-byte block, which is all SCRAM-SHA-256 needs.
fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac_sha256(password, &block);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac_sha256(password, &u);
        out.iter_mut().zip(u.iter()).for_each(|(o, x)| *o ^= x);
    }
    out
}

enum LoginError {
    BadPassword,
    Other(String),
}

/// Logs in with the configured credentials (to the `postgres` database, which may be all there
/// is yet). Only a refused password counts as "reset it"; anything else is reported.
async fn try_login(target: &DatabaseConfig) -> Result<(), LoginError> {
    let probe = DatabaseConfig {
        name: "postgres".into(),
        ..target.clone()
    };
    let options: PgConnectOptions = probe
        .effective_url()
        .parse()
        .map_err(|e: sqlx::Error| LoginError::Other(e.to_string()))?;
    match tokio::time::timeout(
        Duration::from_secs(10),
        PgConnection::connect_with(&options),
    )
    .await
    {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        // 28P01 invalid_password; 28000 also covers a password-less role under scram/md5.
        Ok(Err(sqlx::Error::Database(e)))
            if matches!(e.code().as_deref(), Some("28P01") | Some("28000"))
                && e.message().contains("password") =>
        {
            Err(LoginError::BadPassword)
        }
        Ok(Err(e)) => Err(LoginError::Other(e.to_string())),
        Err(_) => Err(LoginError::Other("no answer within 10 s".into())),
    }
}

/// The connection that may create roles and databases.
enum Superuser {
    /// `runuser -u postgres -- psql` over the local socket.
    Psql,
    Url {
        conn: PgConnection,
        host: String,
        port: u16,
    },
}

impl Superuser {
    async fn connect(url: Option<&str>) -> Result<Superuser, Failure> {
        let Some(url) = url else {
            let su = Superuser::Psql;
            su.query_psql("SELECT 1").await?;
            return Ok(su);
        };
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| Failure::new(format!("--superuser-url: {e}")))?;
        let parsed =
            url::Url::parse(url).map_err(|e| Failure::new(format!("--superuser-url: {e}")))?;
        let host = match parsed.host_str() {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => "127.0.0.1".into(),
        };
        let port = parsed.port().unwrap_or(5432);
        let conn = PgConnection::connect_with(&options)
            .await
            .map_err(|e| Failure::new(format!("--superuser-url: cannot connect: {e}")))?;
        Ok(Superuser::Url { conn, host, port })
    }

    /// Where the daemon will reach this server: the URL's host, or TCP on loopback at the
    /// port the local server listens on (Debian's pg_hba.conf allows passwords there).
    async fn server_address(&mut self) -> Result<(String, u16), Failure> {
        match self {
            Superuser::Url { host, port, .. } => Ok((host.clone(), *port)),
            Superuser::Psql => {
                let port = self.query("SELECT current_setting('port')").await?;
                let port = port
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| Failure::new("cannot read the local PostgreSQL's port"))?;
                Ok(("127.0.0.1".into(), port))
            }
        }
    }

    /// The first column of the first row, as text; None for no row.
    async fn query(&mut self, sql: &str) -> Result<Option<String>, Failure> {
        match self {
            Superuser::Psql => self.query_psql(sql).await,
            Superuser::Url { conn, .. } => {
                sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
                    .fetch_optional(conn)
                    .await
                    .map_err(|e| Failure::new(format!("PostgreSQL (superuser): {e}")))
            }
        }
    }

    async fn execute(&mut self, sql: &str) -> Result<(), Failure> {
        match self {
            Superuser::Psql => self.query_psql(sql).await.map(|_| ()),
            Superuser::Url { conn, .. } => sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(conn)
                .await
                .map(|_| ())
                .map_err(|e| Failure::new(format!("PostgreSQL (superuser): {e}"))),
        }
    }

    /// Runs one statement through psql; the SQL goes through stdin, never argv.
    async fn query_psql(&self, sql: &str) -> Result<Option<String>, Failure> {
        let mut child = tokio::process::Command::new("runuser")
            .args(["-u", "postgres", "--", "psql", "-X", "-q", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1", "-d", "postgres"])
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Failure::new(format!("cannot run `runuser -u postgres -- psql`: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            let text = format!("{sql};\n");
            stdin
                .write_all(text.as_bytes())
                .await
                .map_err(|e| Failure::new(format!("psql: {e}")))?;
        }
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .map_err(|_| Failure::new("psql as postgres did not finish within 60 s"))?
            .map_err(|e| Failure::new(format!("psql: {e}")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(Failure::new(format!(
                "psql as the postgres user failed: {err}. Is PostgreSQL installed and running \
                 (apt install postgresql; systemctl status postgresql)? Otherwise pass \
                 --superuser-url"
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok((!text.is_empty()).then_some(text))
    }

    async fn close(self) {
        if let Superuser::Url { conn, .. } = self {
            let _ = conn.close().await;
        }
    }
}

/// The configuration file as text, edited with `toml_edit` so comments and layout survive.
struct ConfigFile {
    doc: toml_edit::DocumentMut,
    existed: bool,
}

impl ConfigFile {
    fn read(path: &Path) -> Result<ConfigFile, Failure> {
        let (text, existed) = match std::fs::read_to_string(path) {
            Ok(text) => (text, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), false),
            Err(e) => return Err(Failure::new(format!("cannot read {}: {e}", path.display()))),
        };
        let doc = text.parse().map_err(|e| Failure {
            status: 2,
            message: format!("invalid configuration: {}: {e}", path.display()),
        })?;
        Ok(ConfigFile { doc, existed })
    }

    fn database(&self) -> Option<&toml_edit::Table> {
        self.doc.get("database").and_then(|i| i.as_table())
    }

    fn get_str(&self, key: &str) -> Option<String> {
        self.database()?.get(key)?.as_str().map(str::to_string)
    }

    /// Writes the connection settings; true when anything changed.
    fn set_database(&mut self, db: &DatabaseConfig) -> bool {
        let root = self.doc.as_table_mut();
        if !root.contains_key("database") {
            let mut table = toml_edit::Table::new();
            if !self.existed && root.is_empty() {
                table.decor_mut().set_prefix(NEW_FILE_HEADER);
            }
            root.insert("database", toml_edit::Item::Table(table));
        }
        let Some(table) = root.get_mut("database").and_then(|i| i.as_table_mut()) else {
            return false;
        };
        let mut changed = false;
        for (key, value) in [
            ("host", toml_edit::Value::from(db.host.as_str())),
            ("port", toml_edit::Value::from(i64::from(db.port))),
            ("name", toml_edit::Value::from(db.name.as_str())),
            ("username", toml_edit::Value::from(db.username.as_str())),
            ("password", toml_edit::Value::from(db.password.as_str())),
        ] {
            changed |= set_keeping_decor(table, key, value);
        }
        changed
    }

    /// Replaces the file atomically (same directory, then rename), root:cocov 0640.
    fn write_if_changed(&self, path: &Path, changed: bool, root: bool) -> Result<(), Failure> {
        let fail = |what: &str, e: std::io::Error| {
            Failure::new(format!("cannot {what} {}: {e}", path.display()))
        };
        let group = nix::unistd::Group::from_name(SERVICE_GROUP)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw());
        if changed {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let tmp = path.with_file_name(format!("{name}.setup-tmp"));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o640)
                .open(&tmp)
                .map_err(|e| fail("write next to", e))?;
            f.write_all(self.doc.to_string().as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| fail("write next to", e))?;
            std::fs::rename(&tmp, path).map_err(|e| fail("replace", e))?;
        }
        // Mode and group are set even when the content was right: the daemon must read it.
        let meta = std::fs::metadata(path).map_err(|e| fail("inspect", e))?;
        if meta.permissions().mode() & 0o7777 != 0o640 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640))
                .map_err(|e| fail("chmod", e))?;
        }
        match group {
            Some(gid) if root => {
                use std::os::unix::fs::MetadataExt;
                if meta.uid() != 0 || meta.gid() != gid {
                    std::os::unix::fs::chown(path, Some(0), Some(gid))
                        .map_err(|e| fail("chown", e))?;
                }
            }
            None if root => println!(
                "warning: group `{SERVICE_GROUP}` does not exist (the package creates it); \
                 {} keeps its group",
                path.display()
            ),
            _ => {}
        }
        Ok(())
    }
}

/// A value as TOML text without its surrounding spaces and trailing comment.
fn bare(value: &toml_edit::Value) -> String {
    let mut v = value.clone();
    v.decor_mut().clear();
    v.to_string()
}

/// Sets `key` to `value`, keeping the spacing and trailing comment the value had.
fn set_keeping_decor(table: &mut toml_edit::Table, key: &str, value: toml_edit::Value) -> bool {
    match table.get_mut(key).and_then(|i| i.as_value_mut()) {
        Some(old) if bare(old) == bare(&value) => false,
        Some(old) => {
            let decor = old.decor().clone();
            *old = value;
            *old.decor_mut() = decor;
            true
        }
        None => {
            table.insert(key, toml_edit::Item::Value(value));
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example password and salt; the expected verifier was computed independently
    /// with Python's hashlib (pbkdf2_hmac, hmac) and is what PostgreSQL would store.
    #[test]
    fn scram_verifier_matches_rfc_7677() {
        let salt = base64::engine::general_purpose::STANDARD
            .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
            .unwrap();
        let v = scram_verifier_with_salt("pencil", &salt, 4096);
        assert_eq!(
            v,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn identifiers_are_restricted() {
        for good in ["cocov", "_x", "cocov_2"] {
            assert!(check_identifier("--database-name", good).is_ok(), "{good}");
        }
        for bad in ["", "Cocov", "1x", "a-b", "a\"b", &"a".repeat(64)] {
            let e = check_identifier("--database-name", bad).unwrap_err();
            assert!(e.message.starts_with("--database-name"), "{}", e.message);
        }
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn passwords_are_long_and_plain() {
        let (a, b) = (random_password(), random_password());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn editing_keeps_comments_and_reports_changes() {
        let text = "# top\n[database]\n# Its password\npassword = \"\"  # trailing\nport = 5432\n";
        let mut file = ConfigFile {
            doc: text.parse().unwrap(),
            existed: true,
        };
        let db = DatabaseConfig {
            password: "pw".into(),
            ..Default::default()
        };
        assert!(file.set_database(&db));
        let out = file.doc.to_string();
        assert!(
            out.contains("# Its password\npassword = \"pw\"  # trailing\n"),
            "{out}"
        );
        assert!(
            out.contains("# top\n") && out.contains("port = 5432\n"),
            "{out}"
        );
        assert!(
            !file.set_database(&db),
            "a second identical write changes nothing"
        );
    }

    #[test]
    fn a_new_file_starts_with_its_header() {
        let mut file = ConfigFile {
            doc: toml_edit::DocumentMut::new(),
            existed: false,
        };
        assert!(file.set_database(&DatabaseConfig::default()));
        let out = file.doc.to_string();
        assert!(
            out.starts_with("# cocov configuration, written by `cocov setup`"),
            "{out}"
        );
        assert!(
            out.contains("\n[database]\nhost = \"127.0.0.1\"\nport = 5432\n"),
            "{out}"
        );
        let parsed: crate::config::Config = toml::from_str(&out).unwrap();
        assert_eq!(parsed.database.name, "cocov");
    }
}
