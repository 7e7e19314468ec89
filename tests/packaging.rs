//! Packaging, the fast and deterministic parts: the systemd unit (directives the appliance
//! relies on, `systemd-analyze verify` when installed), the .deb/.rpm metadata and maintainer
//! scripts, `cocov setup` against the real PostgreSQL, `cocov doctor`, and upgrades (a newer
//! binary migrates an older database; an older binary refuses a newer one). Building and
//! installing the packages into a Debian root is `scripts/test-packages.sh`.

use crate::common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::requests::free_port;
use common::{TestDb, TestRedis, admin_database_url};
use sqlx::{Connection, PgConnection};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn repo(path: &str) -> PathBuf {
    Path::new(ROOT).join(path)
}

fn cocov() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocov"));
    // Never pick up a real /etc/cocov/cocov.toml or the caller's COCOV_* settings.
    for (key, _) in std::env::vars() {
        if key.starts_with("COCOV_") || key == "NOTIFY_SOCKET" || key == "WATCHDOG_USEC" {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "warn").stdin(Stdio::null());
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run cocov")
}

// ---------------------------------------------------------------------------------------------
// The unit

/// `(section, key, value)` for every assignment, in order (keys may repeat).
fn unit_directives() -> Vec<(String, String, String)> {
    let unit = std::fs::read_to_string(repo("systemd/cocov.service")).unwrap();
    let mut section = String::new();
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn service_values(key: &str) -> Vec<String> {
    unit_directives()
        .into_iter()
        .filter(|(s, k, _)| s == "Service" && k == key)
        .map(|(_, _, v)| v)
        .collect()
}

fn service_value(key: &str) -> String {
    let values = service_values(key);
    assert_eq!(
        values.len(),
        1,
        "[Service] {key}= should appear once: {values:?}"
    );
    values[0].clone()
}

#[test]
fn unit_has_the_directives_the_appliance_relies_on() {
    for (key, want) in [
        ("Type", "notify"),
        ("Restart", "on-failure"),
        ("User", "cocov"),
        ("ExecStart", "/usr/bin/cocov serve"),
        ("ExecStartPre", "/usr/bin/cocov config check"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/var/lib/cocov"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("Delegate", "yes"),
        ("KillMode", "control-group"),
    ] {
        assert_eq!(service_value(key), want, "[Service] {key}=");
    }
    assert!(service_value("WatchdogSec").ends_with('s'));

    let families: BTreeSet<String> = service_value("RestrictAddressFamilies")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    for af in ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"] {
        assert!(families.contains(af), "RestrictAddressFamilies lacks {af}");
    }

    // The filter must let bubblewrap mount and pivot_root; the deny list must not take it back.
    let filters = service_values("SystemCallFilter");
    assert!(
        filters
            .iter()
            .any(|f| !f.starts_with('~') && f.contains("@system-service"))
    );
    let allowed: Vec<&str> = filters
        .iter()
        .filter(|f| !f.starts_with('~'))
        .flat_map(|f| f.split_whitespace())
        .collect();
    assert!(allowed.contains(&"@mount"), "{filters:?}");
    let denied: Vec<&str> = filters
        .iter()
        .filter_map(|f| f.strip_prefix('~'))
        .flat_map(|f| f.split_whitespace())
        .collect();
    assert!(
        !denied.contains(&"@mount") && !denied.contains(&"@privileged"),
        "{filters:?}"
    );

    // Options that break the sandbox or delegation (see the unit's notes) stay out.
    for key in [
        "RestrictNamespaces",
        "PrivateUsers",
        "ProtectKernelTunables",
        "ProtectKernelLogs",
        "ProcSubset",
        "ProtectControlGroups",
        "MemoryDenyWriteExecute",
    ] {
        let values = service_values(key);
        assert!(
            values.is_empty() || values.iter().all(|v| v == "no"),
            "{key}= would break the bubblewrap sandbox or Delegate=: {values:?}"
        );
    }
    assert!(
        unit_directives()
            .iter()
            .any(|(s, k, v)| s == "Install" && k == "WantedBy" && v == "multi-user.target")
    );
}

/// `systemd-analyze verify` prints warnings but exits 0 for unknown keys and bad values, so
/// "clean" means no output at all. The binary path is pointed at the one cargo built.
#[test]
fn unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze is not installed (Debian package `systemd`)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(repo("systemd/cocov.service"))
        .unwrap()
        .replace("/usr/bin/cocov", env!("CARGO_BIN_EXE_cocov"));
    let verify = |text: &str| {
        let path = dir.path().join("cocov.service");
        std::fs::write(&path, text).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        (out.status.success(), text_of(&out))
    };
    let (ok, said) = verify(&unit);
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
    // The check can fail: a misspelt value is reported.
    let (_, said) = verify(&unit.replace("ProtectSystem=strict", "ProtectSystem=stricter"));
    assert!(
        said.contains("ProtectSystem") || said.contains("protect system"),
        "{said}"
    );
}

fn text_of(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

// ---------------------------------------------------------------------------------------------
// Package metadata and maintainer scripts

fn cargo_metadata() -> toml::Table {
    let text = std::fs::read_to_string(repo("Cargo.toml")).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    table["package"]["metadata"].as_table().unwrap().clone()
}

fn deb_assets(meta: &toml::Table) -> Vec<(String, String, String)> {
    meta["deb"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            let s = |i: usize| a[i].as_str().unwrap().to_string();
            let (source, dest) = (s(0), s(1));
            // A destination ending in / keeps the source's file name.
            let dest = if dest.ends_with('/') {
                format!(
                    "/{dest}{}",
                    Path::new(&source).file_name().unwrap().to_str().unwrap()
                )
            } else {
                format!("/{dest}")
            };
            (source, dest, s(2))
        })
        .collect()
}

#[test]
fn deb_and_rpm_metadata_install_the_same_files() {
    let meta = cargo_metadata();
    let deb = &meta["deb"];
    let mut deb_files: BTreeSet<String> =
        deb_assets(&meta).into_iter().map(|(_, d, _)| d).collect();
    // cargo-deb installs the unit from `systemd-units`.
    let units = deb["systemd-units"].as_table().unwrap();
    assert_eq!(units["unit-name"].as_str(), Some("cocov"));
    let unit_dir = units["unit-scripts"].as_str().unwrap();
    assert!(repo(unit_dir).join("cocov.service").is_file());
    assert_eq!(
        units["start"].as_bool(),
        Some(false),
        "setup must run before the first start"
    );
    deb_files.insert("/usr/lib/systemd/system/cocov.service".into());

    let rpm = &meta["generate-rpm"];
    let rpm_assets = rpm["assets"].as_array().unwrap();
    let rpm_files: BTreeSet<String> = rpm_assets
        .iter()
        .map(|a| a["dest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        deb_files, rpm_files,
        "the .deb and the .rpm install different files"
    );
    for must in [
        "/usr/bin/cocov",
        "/etc/cocov/cocov.toml",
        "/usr/lib/systemd/system/cocov.service",
        "/usr/share/cocov/plugins/README",
    ] {
        assert!(deb_files.contains(must), "packages lack {must}");
    }
    // Every built-in plugin definition (also compiled into the binary) is shipped, and nothing
    // else lands in /usr/share/cocov/plugins.
    let mut shipped_plugins = BTreeSet::new();
    for entry in std::fs::read_dir(repo("packaging/plugins.d")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        shipped_plugins.insert(format!("/usr/share/cocov/plugins/{name}"));
    }
    assert!(
        shipped_plugins.len() >= 6,
        "expected the README and the five built-in definitions: {shipped_plugins:?}"
    );
    let packaged_plugins: BTreeSet<String> = deb_files
        .iter()
        .filter(|f| f.starts_with("/usr/share/cocov/plugins/"))
        .cloned()
        .collect();
    assert_eq!(
        packaged_plugins, shipped_plugins,
        "the packages must install exactly packaging/plugins.d/* into /usr/share/cocov/plugins"
    );
    for (source, _, _) in deb_assets(&meta) {
        if !source.starts_with("target/") {
            assert!(repo(&source).is_file(), "asset source {source} is missing");
        }
    }

    // The configuration: one source of truth, a conffile, 0640, never replaced on upgrade.
    let config = deb_assets(&meta)
        .into_iter()
        .find(|(_, d, _)| d == "/etc/cocov/cocov.toml")
        .unwrap();
    assert_eq!(
        (config.0.as_str(), config.2.as_str()),
        ("etc/cocov.toml", "640")
    );
    let conffiles: Vec<&str> = deb["conf-files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(conffiles, ["/etc/cocov/cocov.toml"]);
    let rpm_config = rpm_assets
        .iter()
        .find(|a| a["dest"].as_str() == Some("/etc/cocov/cocov.toml"))
        .unwrap();
    assert_eq!(rpm_config["config"].as_str(), Some("noreplace"));
    assert_eq!(rpm_config["mode"].as_str(), Some("640"));
    assert_eq!(rpm_config["source"].as_str(), Some("etc/cocov.toml"));

    // Dependencies, with each distribution's package names.
    let depends = deb["depends"].as_str().unwrap();
    for d in ["git", "bubblewrap", "adduser"] {
        assert!(
            depends.split(", ").any(|x| x == d),
            "Depends lacks {d}: {depends}"
        );
    }
    assert_eq!(
        deb["recommends"].as_str(),
        Some("postgresql, postgresql-client, redis-server")
    );
    let requires = rpm["requires"].as_table().unwrap();
    assert!(requires.contains_key("git") && requires.contains_key("bubblewrap"));
    let recommends = rpm["recommends"].as_table().unwrap();
    assert!(
        ["postgresql-server", "postgresql", "redis"]
            .iter()
            .all(|k| recommends.contains_key(*k))
    );
}

#[test]
fn maintainer_scripts_are_present_and_valid_shell() {
    let meta = cargo_metadata();
    let deb_dir = meta["deb"]["maintainer-scripts"].as_str().unwrap();
    let mut scripts = Vec::new();
    for name in ["postinst", "prerm", "postrm"] {
        let path = repo(deb_dir).join(name);
        let body = std::fs::read_to_string(&path).unwrap();
        // cargo-deb replaces every occurrence, comments included: once, on its own line, after
        // the package's own steps (the enable snippet needs nothing of them, but a snippet in a
        // comment above `set -e` would run before everything).
        assert_eq!(
            body.matches("#DEBHELPER#").count(),
            1,
            "{name}: #DEBHELPER# once"
        );
        assert!(
            body.lines().any(|l| l == "#DEBHELPER#"),
            "{name}: #DEBHELPER# on its own line"
        );
        assert!(
            body.starts_with("#!/bin/sh\n"),
            "{name} needs a /bin/sh shebang"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert!(mode & 0o111 != 0, "{name} is not executable");
        scripts.push(path);
    }
    let rpm = &meta["generate-rpm"];
    for key in [
        "pre_install_script",
        "post_install_script",
        "pre_uninstall_script",
        "post_uninstall_script",
    ] {
        let path = repo(rpm[key].as_str().unwrap());
        assert!(path.is_file(), "{key}: {} is missing", path.display());
        scripts.push(path);
    }
    for script in &scripts {
        let out = Command::new("sh").arg("-n").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            script.display(),
            text_of(&out)
        );
        if let Ok(out) = Command::new("shellcheck")
            .args(["-s", "sh"])
            .arg(script)
            .output()
        {
            assert!(
                out.status.success(),
                "shellcheck {}: {}",
                script.display(),
                text_of(&out)
            );
        }
    }
    let postinst = std::fs::read_to_string(repo(deb_dir).join("postinst")).unwrap();
    assert!(postinst.contains("/etc/cocov/secret.key") && postinst.contains("umask 077"));
    let post = std::fs::read_to_string(repo(rpm["post_install_script"].as_str().unwrap())).unwrap();
    assert!(post.contains("/etc/cocov/secret.key") && post.contains("systemctl"));
    let preun =
        std::fs::read_to_string(repo(rpm["pre_uninstall_script"].as_str().unwrap())).unwrap();
    assert!(preun.contains("disable --now cocov.service") && preun.contains("|| :"));
}

// ---------------------------------------------------------------------------------------------
// cocov setup

/// A role and database of their own, dropped afterwards.
struct SetupNames {
    name: String,
}

impl SetupNames {
    fn new() -> SetupNames {
        SetupNames {
            name: format!("cocov_setup_{}", uuid::Uuid::new_v4().simple()),
        }
    }
}

impl Drop for SetupNames {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_database_url()).await {
                    for sql in [
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        format!("DROP ROLE IF EXISTS {name}"),
                    ] {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .execute(&mut admin)
                            .await;
                    }
                }
            });
        })
        .join();
    }
}

fn setup(config: &Path, name: &str) -> Output {
    run(cocov()
        .arg("--config")
        .arg(config)
        .args(["setup", "--database-name", name, "--database-user", name])
        .args(["--admin-login", "root-admin", "--superuser-url"])
        .arg(admin_database_url()))
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_creates_role_database_config_and_admin_once() {
    let names = SetupNames::new();
    let name = &names.name;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cocov.toml");
    // The file as the package installs it, but for a sandbox user of this test's own.
    let sandbox_user = format!(
        "cocov-sbx-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let packaged = std::fs::read_to_string(repo("etc/cocov.toml")).unwrap();
    let ours = packaged.replace(
        "sandbox_user = \"cocov-sandbox\"",
        &format!("sandbox_user = \"{sandbox_user}\""),
    );
    assert_ne!(ours, packaged);
    std::fs::write(&config, ours).unwrap();
    let root = nix::unistd::geteuid().is_root();

    let first = setup(&config, name);
    let said = text(&first.stdout);
    assert!(first.status.success(), "{said}{}", text(&first.stderr));
    for line in [
        format!("database role {name}: created"),
        format!("database {name}: created, owned by {name}"),
        format!("configuration {}: [database]", config.display()),
        "database schema: migrated to".into(),
        "admin user root-admin: created".into(),
        "personal access token (shown once): cop_".into(),
    ] {
        assert!(said.contains(&line), "missing `{line}` in:\n{said}");
    }
    if root {
        // The user checks run as under a root daemon: a system user without login or home.
        let line = format!("sandbox user {sandbox_user}: created");
        assert!(said.contains(&line), "missing `{line}` in:\n{said}");
        let user = nix::unistd::User::from_name(&sandbox_user)
            .unwrap()
            .unwrap();
        assert!(
            user.uid.as_raw() < 1000 && user.shell.ends_with("nologin"),
            "{user:?}"
        );
    }
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("# Its password (secret; empty for peer/trust authentication)."));
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o640
    );

    // The daemon's view of the file: the new role and database, a password.
    let loaded = cocov::config::load(Some(&config)).unwrap();
    let db = &loaded.database;
    assert_eq!(
        (db.name.as_str(), db.username.as_str()),
        (name.as_str(), name.as_str())
    );
    assert_eq!(db.password.len(), 32);

    // The role's stored SCRAM verifier matches the written password (recomputed here, so a
    // wrong verifier fails even on a server that trusts local logins).
    let mut admin = PgConnection::connect(&admin_database_url()).await.unwrap();
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(stored, recompute_scram(&db.password, &stored));
    let owner: String = sqlx::query_scalar(
        "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
    )
    .bind(name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(&owner, name);

    let pool = cocov::db::connect(db).unwrap();
    let admins: Vec<(String, bool)> = sqlx::query_as("SELECT login::text, admin FROM users")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(admins, [("root-admin".to_string(), true)]);
    assert_eq!(
        cocov::db::check_schema(&pool).await.unwrap(),
        Some(cocov::db::binary_schema_version())
    );
    pool.close().await;

    // Again: everything found in place, nothing changed, no second token.
    let second = setup(&config, name);
    let said = text(&second.stdout);
    assert!(second.status.success(), "{said}{}", text(&second.stderr));
    for line in [
        format!("database role {name}: exists, unchanged"),
        format!("database {name}: exists, unchanged"),
        format!("configuration {}: unchanged", config.display()),
        ", unchanged".into(),
        "admin user: 1 user(s) exist, none created".into(),
    ] {
        assert!(said.contains(&line), "missing `{line}` in:\n{said}");
    }
    if root {
        let line = format!("sandbox user {sandbox_user}: exists, unchanged");
        assert!(said.contains(&line), "missing `{line}` in:\n{said}");
        let _ = Command::new("userdel").arg(&sandbox_user).status();
    }
    assert!(!said.contains("token"), "{said}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), written);
    let again: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(again, stored, "the role's password must not change");
    let _ = admin.close().await;
}

/// The default path: psql as the local `postgres` user over the socket, and a configuration
/// file that does not exist yet. Needs root and a local server (skipped otherwise).
#[tokio::test(flavor = "multi_thread")]
async fn setup_through_the_local_postgres_user() {
    let local = nix::unistd::geteuid().is_root()
        && nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .is_some()
        && Command::new("runuser").arg("--help").output().is_ok();
    if !local {
        eprintln!("skipped: needs root and a local `postgres` user");
        return;
    }
    let names = SetupNames::new();
    let name = &names.name;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cocov.toml");
    let setup = || {
        run(cocov().arg("--config").arg(&config).args([
            "setup",
            "--database-name",
            name,
            "--database-user",
            name,
        ]))
    };
    let first = setup();
    let said = text(&first.stdout);
    assert!(first.status.success(), "{said}{}", text(&first.stderr));
    assert!(
        said.contains(&format!("database role {name}: created")),
        "{said}"
    );
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.starts_with("# cocov configuration, written by `cocov setup`"));
    let loaded = cocov::config::load(Some(&config)).unwrap();
    assert_eq!(loaded.database.name, *name);
    assert_eq!(loaded.database.host, "127.0.0.1");
    let second = setup();
    assert!(second.status.success());
    assert!(
        text(&second.stdout).contains(&format!("configuration {}: unchanged", config.display()))
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), written);
}

/// `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` for `password` with `stored`'s salt.
fn recompute_scram(password: &str, stored: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let b64 = base64::engine::general_purpose::STANDARD;
    let rest = stored
        .strip_prefix("SCRAM-SHA-256$")
        .expect("a SCRAM verifier");
    let (iter_salt, _) = rest.split_once('$').unwrap();
    let (iterations, salt) = iter_salt.split_once(':').unwrap();
    let iterations: u32 = iterations.parse().unwrap();
    let salt = b64.decode(salt).unwrap();
    let hmac = |key: &[u8], data: &[u8]| -> Vec<u8> {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    };
    let mut u = hmac(
        password.as_bytes(),
        &[salt.as_slice(), &[0, 0, 0, 1]].concat(),
    );
    let mut salted = u.clone();
    for _ in 1..iterations {
        u = hmac(password.as_bytes(), &u);
        for (s, x) in salted.iter_mut().zip(&u) {
            *s ^= x;
        }
    }
    let stored_key = Sha256::digest(hmac(&salted, b"Client Key"));
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        b64.encode(&salt),
        b64.encode(stored_key),
        b64.encode(server_key)
    )
}

#[test]
fn setup_rejects_bad_names_and_a_database_url() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cocov.toml");
    let out = run(cocov()
        .arg("--config")
        .arg(&config)
        .args(["setup", "--database-name", "Bad-Name", "--superuser-url"])
        .arg(admin_database_url()));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--database-name `Bad-Name`"),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(&config, "[database]\nurl = \"postgres://x@127.0.0.1/x\"\n").unwrap();
    let out = run(cocov()
        .arg("--config")
        .arg(&config)
        .args(["setup", "--superuser-url"])
        .arg(admin_database_url()));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("database.url is set"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains(&config.display().to_string()));
}

// ---------------------------------------------------------------------------------------------
// cocov doctor

/// A configuration file for a test's own database, Redis prefix, storage and key.
fn doctor_config(
    dir: &Path,
    db: &TestDb,
    redis: &TestRedis,
    redis_url: &str,
    extra: &str,
) -> PathBuf {
    let storage = dir.join("storage");
    std::fs::create_dir_all(&storage).unwrap();
    let key = dir.join("secret.key");
    std::fs::write(&key, "0123456789abcdef".repeat(4)).unwrap();
    let path = dir.join("cocov.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"{}\"\n\n[redis]\nurl = \"{redis_url}\"\nkey_prefix = \"{}\"\n\n\
             [storage]\nlocal_path = \"{}\"\n\n[security]\ncryptographic_key_file = \"{}\"\n{extra}",
            db.config.url,
            redis.config.key_prefix,
            storage.display(),
            key.display()
        ),
    )
    .unwrap();
    path
}

fn bwrap_installed() -> bool {
    Path::new("/usr/bin/bwrap").exists()
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_passes_on_a_good_installation_and_fails_with_hints() {
    let db = TestDb::migrated().await;
    let redis = TestRedis::new();
    let dir = tempfile::tempdir().unwrap();
    let config = doctor_config(dir.path(), &db, &redis, &redis.config.url, "");

    let out = run(cocov().arg("--config").arg(&config).arg("doctor"));
    let said = text(&out.stdout);
    let schema = cocov::db::binary_schema_version();
    for line in [
        format!("ok   configuration {} is valid", config.display()),
        "ok   secret key ".to_string(),
        format!("ok   PostgreSQL reachable (schema {schema})"),
        format!("ok   Redis {} reachable", redis.config.url),
        format!(
            "ok   storage filesystem {}",
            dir.path().join("storage").display()
        ),
        "skip GitHub: not configured".into(),
        "ok   free disk ".into(),
    ] {
        assert!(
            said.lines().any(|l| l.starts_with(&line)),
            "missing `{line}` in:\n{said}"
        );
    }
    if bwrap_installed() {
        assert!(said.contains("ok   bubblewrap sandbox starts"), "{said}");
        assert!(out.status.success(), "{said}{}", text(&out.stderr));
    }
    // The storage probe leaves nothing behind.
    assert_eq!(
        std::fs::read_dir(dir.path().join("storage"))
            .unwrap()
            .count(),
        0
    );

    // Redis on a closed port: a failing line with a hint, exit status 1.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let bad_dir = tempfile::tempdir().unwrap();
    let url = format!("redis://127.0.0.1:{closed}");
    let config = doctor_config(bad_dir.path(), &db, &redis, &url, "");
    let out = run(cocov().arg("--config").arg(&config).arg("doctor"));
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let line = said
        .lines()
        .find(|l| l.starts_with("FAIL Redis"))
        .unwrap_or_else(|| panic!("no failing Redis line in:\n{said}"));
    assert!(line.contains(&url) && line.contains("refused"), "{line}");
    assert!(
        line.contains(" — is redis-server running? (systemctl status redis-server)"),
        "{line}"
    );
    assert!(
        said.contains("ok   PostgreSQL reachable"),
        "the other checks still run:\n{said}"
    );
    assert!(text(&out.stderr).contains("check(s) failed"));

    // A missing key file and a missing storage directory fail with the command that fixes them.
    std::fs::remove_file(bad_dir.path().join("secret.key")).unwrap();
    std::fs::remove_dir(bad_dir.path().join("storage")).unwrap();
    let out = run(cocov().arg("--config").arg(&config).arg("doctor"));
    let said = text(&out.stdout);
    assert!(
        said.contains("secret.key: missing — create it: (umask 077;"),
        "{said}"
    );
    assert!(
        said.contains("storage: does not exist — install -d -o cocov"),
        "{said}"
    );
    assert!(
        !bad_dir.path().join("storage").exists(),
        "doctor must not create the storage root"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_checks_github_and_the_clock_when_configured() {
    let github = common::fake_github::FakeGithub::start().await;
    let g = github.config();
    let db = TestDb::migrated().await;
    let redis = TestRedis::new();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "\n[github]\napi_url = \"{}\"\norg_name = \"{}\"\napp_id = \"{}\"\napp_private_key = \"{}\"\n\
         app_installation_id = \"{}\"\nwebhook_secret_key = \"{}\"\n",
        g.api_url,
        g.org_name,
        g.app_id,
        g.app_private_key,
        g.app_installation_id,
        g.webhook_secret_key
    );
    let config = doctor_config(dir.path(), &db, &redis, &redis.config.url, &extra);
    // The fake GitHub runs on this test's runtime: wait for doctor without blocking it.
    let out = tokio::process::Command::from(cocov())
        .arg("--config")
        .arg(&config)
        .arg("doctor")
        .output()
        .await
        .unwrap();
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!(
            "ok   GitHub {}: installation token issued for {}",
            g.api_url, g.org_name
        )),
        "{said}{}",
        text(&out.stderr)
    );
    assert!(said.contains("ok   clock within "), "{said}");
}

// ---------------------------------------------------------------------------------------------
// Upgrades

/// A database as an older cocov left it: every migration but the newest applied.
async fn older_database() -> TestDb {
    let db = TestDb::empty().await;
    let all = cocov::db::MIGRATOR.iter().cloned().collect::<Vec<_>>();
    assert!(
        all.len() >= 2,
        "needs at least two migrations to have an older schema"
    );
    // sqlx's fields are semver-exempt; Cargo.lock pins the version this is written for.
    let older = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(all[..all.len() - 1].to_vec()),
        ignore_missing: false,
        locking: true,
        no_tx: false,
        table_name: "_sqlx_migrations".into(),
        create_schemas: std::borrow::Cow::Borrowed(&[]),
    };
    older
        .run(&db.pool)
        .await
        .expect("apply the older migrations");
    db
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_binary_migrates_an_older_database_at_start() {
    let db = older_database().await;
    let before = cocov::db::check_schema(&db.pool).await.unwrap().unwrap();
    let binary = cocov::db::binary_schema_version();
    assert!(before < binary);
    let redis = TestRedis::new();
    let dir = tempfile::tempdir().unwrap();
    let config = doctor_config(dir.path(), &db, &redis, &redis.config.url, "");
    let port = free_port();
    let mut child = cocov()
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("COCOV_BIND_ADDRESS", format!("127.0.0.1:{port}"))
        .env("COCOV_BADGER_BIND_PORT", free_port().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("cocov serve exited with {status}");
        }
        assert!(Instant::now() < deadline, "not ready within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        cocov::db::check_schema(&db.pool).await.unwrap(),
        Some(binary)
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_binary_refuses_a_newer_database_and_says_so() {
    let db = TestDb::migrated().await;
    let newer = cocov::db::binary_schema_version() + 1;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, 'from a newer cocov', true, $2, 1)",
    )
    .bind(newer)
    .bind(vec![0u8; 48])
    .execute(&db.pool)
    .await
    .unwrap();
    let redis = TestRedis::new();
    let dir = tempfile::tempdir().unwrap();
    let config = doctor_config(dir.path(), &db, &redis, &redis.config.url, "");
    let started = Instant::now();
    let out = tokio::process::Command::from(cocov())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("COCOV_BIND_ADDRESS", format!("127.0.0.1:{}", free_port()))
        .env("COCOV_BADGER_BIND_PORT", free_port().to_string())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it must not wait and retry"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "the database schema is at version {newer}, newer than this cocov"
        )),
        "{err}"
    );
    assert!(err.contains("upgrade this host's cocov package"), "{err}");

    let out = run(cocov().arg("--config").arg(&config).arg("doctor"));
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("FAIL PostgreSQL: the database schema is at version"),
        "{said}"
    );
}
