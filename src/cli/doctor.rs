//! `cocov doctor`: checks an installation piece by piece and prints one line per check,
//! `ok   …`, `FAIL … — <how to fix it>` or `skip …`. Exit status 1 when any check fails.
//!
//! Each check is a small function returning a [`Check`]; they reuse the daemon's own code paths
//! (configuration loading, the PostgreSQL pool, the Redis client, the blob store, the GitHub
//! client) so that "doctor passes" means "the daemon can do the same".

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use super::{Cli, Failure};
use crate::checks::CheckResult;
use crate::config::{self, Config, StorageMode};
use crate::kv::Kv;
use crate::sandbox::RunAs;

/// Every network check gives up after this long, so doctor never hangs.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The user the unit runs the daemon (and so every sandbox) as.
const SERVICE_USER: &str = "cocov";
/// GitHub refuses App JWTs once the clock is off by about a minute (the JWT is backdated 60 s).
const MAX_SKEW_SECONDS: i64 = 30;
/// Free space below either limit fails: archives and work directories need room.
const MIN_FREE_BYTES: u64 = 1 << 30;
const MIN_FREE_PERCENT: u64 = 5;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Pass(String),
    Fail {
        what: String,
        hint: String,
    },
    /// Works, but weaker than it should be; not a failure.
    Warn(String),
    Skip(String),
}

impl Check {
    fn fail(what: impl Into<String>, hint: impl Into<String>) -> Check {
        Check::Fail {
            what: what.into(),
            hint: hint.into(),
        }
    }

    pub fn line(&self) -> String {
        match self {
            Check::Pass(what) => format!("ok   {what}"),
            Check::Fail { what, hint } => format!("FAIL {what} — {hint}"),
            Check::Warn(what) => format!("warn {what}"),
            Check::Skip(what) => format!("skip {what}"),
        }
    }
}

pub async fn run(cli: &Cli) -> Result<(), Failure> {
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    let mut failed = 0;
    let mut report = |check: Check| {
        println!("{}", check.line());
        failed += matches!(check, Check::Fail { .. }) as usize;
    };
    let config = match config::load(cli.config.as_deref()) {
        Ok(c) => {
            report(Check::Pass(format!(
                "configuration {} is valid",
                path.display()
            )));
            c
        }
        Err(e) => {
            report(Check::fail(
                format!("configuration: {e}"),
                "fix the key named above, then `cocov config check`",
            ));
            return Err(summary(failed));
        }
    };
    report(secret_key(&config));
    report(postgres(&config).await);
    let kv = Kv::connect(&config.redis);
    report(redis(&config, kv.as_ref().ok()).await);
    report(storage(&config).await);
    for check in github(&config, kv.ok()).await {
        report(check);
    }
    for check in sandbox(&config).await {
        report(check);
    }
    report(work_dir(&config.worker.work_dir));
    for check in images(&config).await {
        report(check);
    }
    report(cache(&config).await);
    report(disk(&config));
    if failed > 0 {
        Err(summary(failed))
    } else {
        Ok(())
    }
}

/// The cache's size from its catalogue (one query; the store is not listed).
async fn cache(config: &Config) -> Check {
    if !config.cache.enabled {
        return Check::Skip("cache disabled (cache.enabled)".into());
    }
    let usage = match crate::db::connect(&config.database) {
        Ok(pool) => {
            let usage = tokio::time::timeout(TIMEOUT, crate::cache::usage(&pool)).await;
            pool.close().await;
            usage
        }
        Err(e) => return Check::Skip(format!("cache size: {e}")),
    };
    match usage {
        Ok(Ok([(artifacts, artifact_bytes), (tools, tool_bytes)])) => Check::Pass(format!(
            "cache holds {artifacts} artifact(s), {artifact_bytes} bytes, and {tools} tool(s), \
             {tool_bytes} bytes (quota per repository: {})",
            match config.cache.repository_max_size {
                0 => "none".to_string(),
                n => format!("{n} bytes"),
            }
        )),
        Ok(Err(e)) => Check::Skip(format!("cache size: {e}")),
        Err(_) => Check::Skip("cache size: PostgreSQL did not answer in time".into()),
    }
}

/// The image store's size against its limit, and whether each configured registry answers
/// (Docker Hub only warns: air-gapped hosts import their images).
async fn images(config: &Config) -> Vec<Check> {
    let images = &config.images;
    let mut checks = Vec::new();
    let store = crate::images::Store::new(&images.store_dir);
    checks.push(match store.list() {
        Ok(list) => Check::Pass(format!(
            "image store {}: {} image(s), {} MiB of {} MiB",
            images.store_dir.display(),
            list.len(),
            list.iter().map(|i| i.size_bytes).sum::<u64>() / (1024 * 1024),
            images.max_store_mb
        )),
        Err(e) => Check::fail(
            format!("image store {}: {e}", images.store_dir.display()),
            "the daemon's user must own images.store_dir",
        ),
    });
    let mut hosts: Vec<&String> = images
        .mirrors
        .iter()
        .chain(&images.insecure_registries)
        .collect();
    hosts.dedup();
    for host in hosts {
        checks.push(match crate::images::registry_answers(images, host).await {
            Ok(()) => Check::Pass(format!("registry {host} answers")),
            Err(e) => Check::fail(
                format!("registry {host}: {e}"),
                "check images.mirrors / images.insecure_registries and the network",
            ),
        });
    }
    if images.mirrors.is_empty() {
        checks.push(match crate::images::registry_answers(images, "docker.io").await {
            Ok(()) => Check::Pass("registry docker.io answers".into()),
            Err(e) => Check::Warn(format!(
                "registry docker.io: {e} (image plugins from Docker Hub need a mirror or `cocov plugin import`)"
            )),
        });
    }
    checks
}

fn summary(failed: usize) -> Failure {
    Failure::new(format!("{failed} check(s) failed"))
}

/// The key that encrypts secrets at rest: inline, or a file holding 64 hex characters.
fn secret_key(config: &Config) -> Check {
    let security = &config.security;
    if !security.cryptographic_key.is_empty() {
        return Check::Pass("secret key set in the configuration".into());
    }
    let path = &security.cryptographic_key_file;
    let fix = format!(
        "create it: (umask 077; head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \\n' > {})",
        path.display()
    );
    match std::fs::read_to_string(path) {
        Ok(text) if is_hex_key(text.trim()) => {
            Check::Pass(format!("secret key {} (256 bits)", path.display()))
        }
        Ok(_) => Check::fail(
            format!(
                "secret key {}: not 64 hexadecimal characters",
                path.display()
            ),
            "restore it from a backup (data it encrypted needs that key), or for a new \
             installation "
                .to_string()
                + &fix,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Check::fail(format!("secret key {}: missing", path.display()), fix)
        }
        Err(e) => Check::fail(
            format!("secret key {}: {e}", path.display()),
            "run `cocov doctor` as root (the key is root-only; systemd passes it to the daemon)",
        ),
    }
}

fn is_hex_key(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn postgres(config: &Config) -> Check {
    let db = &config.database;
    let what = format!("PostgreSQL {}:{}/{}", db.host, db.port, db.name);
    let pool = match crate::db::connect(db) {
        Ok(pool) => pool,
        Err(e) => return Check::fail(format!("{what}: {e}"), "fix database.url"),
    };
    if let Err(e) = crate::db::ping(&pool, TIMEOUT).await {
        let hint = postgres_hint(&e);
        return Check::fail(format!("PostgreSQL: {e}"), hint);
    }
    let binary = crate::db::binary_schema_version();
    let checked = tokio::time::timeout(TIMEOUT, crate::db::check_schema(&pool)).await;
    pool.close().await;
    match checked {
        Ok(Ok(None)) => Check::Pass(format!(
            "PostgreSQL reachable (empty database: `cocov serve` or `cocov migrate` creates \
             schema {binary})"
        )),
        Ok(Ok(Some(v))) if v < binary => Check::Pass(format!(
            "PostgreSQL reachable (schema {v}; this cocov migrates it to {binary} at start)"
        )),
        Ok(Ok(Some(v))) => Check::Pass(format!("PostgreSQL reachable (schema {v})")),
        Ok(Err(e @ crate::db::DbError::SchemaTooNew { .. })) => Check::fail(
            format!("PostgreSQL: {e}"),
            "install the cocov version that migrated it (the same on every host)",
        ),
        Ok(Err(e)) => Check::fail(format!("{what}: {e}"), postgres_hint(&e.to_string())),
        Err(_) => Check::fail(
            format!("{what}: no answer within {} s", TIMEOUT.as_secs()),
            "check database.host/port and the firewall",
        ),
    }
}

/// A fix for the PostgreSQL errors operators meet on a fresh install.
fn postgres_hint(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    if e.contains("password authentication failed") {
        "database.password does not match the role: `cocov setup` (as root) resets it"
    } else if e.contains("does not exist") {
        "the role or database is missing: `cocov setup` (as root) creates them"
    } else if e.contains("pg_hba.conf") {
        "pg_hba.conf does not allow this login: add a `host` line with scram-sha-256 for it"
    } else if e.contains("refused") || e.contains("timed out") || e.contains("no answer") {
        "is PostgreSQL running and listening there? (systemctl status postgresql)"
    } else {
        "check [database] in the configuration (`cocov config check`)"
    }
}

async fn redis(config: &Config, kv: Option<&Kv>) -> Check {
    let url = mask_url(&config.redis.url);
    let Some(kv) = kv else {
        return Check::fail(format!("Redis {url}: invalid URL"), "fix redis.url");
    };
    match tokio::time::timeout(TIMEOUT, kv.ping()).await {
        Ok(Ok(())) => Check::Pass(format!(
            "Redis {url} reachable (databases {}, {}, {}; prefix {})",
            config.redis.primary_db,
            config.redis.cache_db,
            config.redis.queue_db,
            kv.prefix()
        )),
        Ok(Err(e)) => {
            let text = e.to_string();
            let hint = if text.contains("NOAUTH") || text.contains("WRONGPASS") {
                "put the password into redis.url (redis://:PASSWORD@host:6379)"
            } else {
                "is redis-server running? (systemctl status redis-server)"
            };
            let reason = text.strip_prefix("Redis: ").unwrap_or(&text).to_lowercase();
            Check::fail(format!("Redis {url}: {reason}"), hint)
        }
        Err(_) => Check::fail(
            format!("Redis {url}: no answer within {} s", TIMEOUT.as_secs()),
            "is redis-server running? (systemctl status redis-server)",
        ),
    }
}

/// A URL without its password, for printing.
fn mask_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => raw.to_string(),
    }
}

/// Write, read back and delete a probe object, as the daemon's blob traffic does.
async fn storage(config: &Config) -> Check {
    let storage = &config.storage;
    if storage.mode == StorageMode::Local {
        // Never let doctor (often root) create the root: it would belong to root, not cocov.
        let root = &storage.local_path;
        let Ok(meta) = std::fs::metadata(root) else {
            return Check::fail(
                format!("storage {}: does not exist", root.display()),
                format!(
                    "install -d -o cocov -g cocov -m 0750 {} (the package creates it)",
                    root.display()
                ),
            );
        };
        if let Some(user) = service_user()
            && nix::unistd::geteuid().is_root()
            && meta.uid() != user.uid.as_raw()
        {
            return Check::fail(
                format!(
                    "storage {}: owned by uid {}, but the daemon runs as {SERVICE_USER}",
                    root.display(),
                    meta.uid()
                ),
                format!("chown -R cocov:cocov {}", root.display()),
            );
        }
    }
    let store = match tokio::time::timeout(TIMEOUT, crate::storage::open(storage)).await {
        Ok(Ok(store)) => store,
        Ok(Err(e)) => return Check::fail(format!("storage: {e}"), storage_hint(config)),
        Err(_) => return Check::fail("storage: no answer when opening", storage_hint(config)),
    };
    let probe = async {
        let key = crate::storage::BlobKey::new(&format!(
            ".doctor-probe-{}",
            uuid::Uuid::new_v4().simple()
        ))?;
        let data = Bytes::from(uuid::Uuid::new_v4().to_string());
        store.put(&key, data.clone()).await?;
        let read = store.get(&key).await;
        store.delete(&key).await?;
        let gone = !store.exists(&key).await?;
        Ok::<_, crate::storage::StorageError>((read? == data, gone))
    };
    match tokio::time::timeout(TIMEOUT, probe).await {
        Ok(Ok((true, true))) => {
            Check::Pass(format!("storage {}: write, read, delete", store.describe()))
        }
        Ok(Ok(_)) => Check::fail(
            format!(
                "storage {}: read back different data, or delete left it",
                store.describe()
            ),
            storage_hint(config),
        ),
        Ok(Err(e)) => Check::fail(
            format!("storage {}: {e}", store.describe()),
            storage_hint(config),
        ),
        Err(_) => Check::fail(
            format!(
                "storage {}: no answer within {} s",
                store.describe(),
                TIMEOUT.as_secs()
            ),
            storage_hint(config),
        ),
    }
}

fn storage_hint(config: &Config) -> String {
    match config.storage.mode {
        StorageMode::Local => format!(
            "storage.local_path must be a directory the cocov user can write: chown -R \
             cocov:cocov {}",
            config.storage.local_path.display()
        ),
        StorageMode::S3 => {
            "check [storage.s3] endpoint, bucket and keys; the bucket must exist or \
             create_bucket be true"
                .into()
        }
    }
}

/// Reachability through an installation token (a real authenticated call), and clock skew
/// against the server's `Date` header.
async fn github(config: &Config, kv: Option<Kv>) -> Vec<Check> {
    let g = &config.github;
    if !g.enabled() {
        return vec![Check::Skip(
            "GitHub: not configured (github.app_id is empty)".into(),
        )];
    }
    let Some(kv) = kv else {
        return vec![Check::Skip("GitHub: needs a valid redis.url".into())];
    };
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let client = match crate::github::GitHub::from_config(g, kv, metrics) {
        Ok(Some(client)) => client,
        Ok(None) => return vec![Check::Skip("GitHub: not configured".into())],
        Err(e) => return vec![Check::fail(format!("GitHub: {e}"), "fix [github]")],
    };
    let token = match tokio::time::timeout(TIMEOUT * 3, client.installation_token()).await {
        Ok(Ok(_)) => Check::Pass(format!(
            "GitHub {}: installation token issued for {}",
            g.api_url,
            client.org()
        )),
        Ok(Err(e)) => {
            let hint = match &e {
                crate::github::GithubError::Http { status: 401, .. } => {
                    "github.app_id or app_private_key is wrong, or the clock is off"
                }
                crate::github::GithubError::Http { status: 404, .. } => {
                    "github.app_installation_id is not an installation of this App"
                }
                _ => "can this host reach github.api_url? (proxy, firewall, DNS)",
            };
            Check::fail(format!("GitHub: {e}"), hint)
        }
        Err(_) => Check::fail(
            format!("GitHub {}: no answer", g.api_url),
            "can this host reach github.api_url? (proxy, firewall, DNS)",
        ),
    };
    vec![token, clock_skew(&g.api_url).await]
}

async fn clock_skew(api_url: &str) -> Check {
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => return Check::fail(format!("clock: {e}"), "cannot build an HTTP client"),
    };
    let response = match client.get(api_url.trim()).send().await {
        Ok(r) => r,
        Err(e) => return Check::fail(format!("clock: GET {api_url}: {e}"), "check github.api_url"),
    };
    let date = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| OffsetDateTime::parse(v, &Rfc2822).ok());
    let Some(date) = date else {
        return Check::Skip(format!(
            "clock: {api_url} sent no Date header to compare with"
        ));
    };
    skew_check(OffsetDateTime::now_utc(), date)
}

/// Compares our clock with the server's; the Date header has whole seconds, so ±1 s is noise.
fn skew_check(local: OffsetDateTime, server: OffsetDateTime) -> Check {
    let skew = (local - server).whole_seconds();
    let direction = if skew >= 0 { "ahead of" } else { "behind" };
    if skew.abs() > MAX_SKEW_SECONDS {
        Check::fail(
            format!("clock: {} s {direction} GitHub's", skew.abs()),
            "GitHub refuses App tokens from clocks off by a minute: enable time sync \
             (timedatectl set-ntp true, or chrony)",
        )
    } else {
        Check::Pass(format!("clock within {} s of GitHub's", skew.abs()))
    }
}

fn service_user() -> Option<nix::unistd::User> {
    nix::unistd::User::from_name(SERVICE_USER).ok().flatten()
}

/// Starts a sandbox exactly as a check would (the same spec builder, binds, limits, seccomp
/// filter, cgroup and user), running a probe plugin over an empty directory, and reports the
/// limits that sandbox got. As root, bubblewrap runs as the configured sandbox user, so a failure
/// here means unprivileged user namespaces are unavailable to it.
async fn sandbox(config: &Config) -> Vec<Check> {
    if find_in_path("bwrap").is_none() {
        return vec![Check::fail(
            "bubblewrap: bwrap is not installed",
            "apt install bubblewrap (dnf install bubblewrap)",
        )];
    }
    let (policy, probe) = crate::checks::probe_sandbox(&config.worker);
    let host = crate::sandbox::host();
    let (lines, warnings) = policy.describe(host);
    let who = match &policy.run_as {
        RunAs::Daemon => "this user".to_string(),
        RunAs::User { name, .. } => name.clone(),
        RunAs::Nobody { .. } => "nobody".to_string(),
    };
    let started = match tokio::time::timeout(TIMEOUT, probe).await {
        Ok(Ok(CheckResult::Completed(_))) => Check::Pass(format!(
            "bubblewrap sandbox starts as {who}, with no_new_privs: user namespaces available"
        )),
        Ok(Ok(CheckResult::Errored(why))) => Check::fail(
            format!("bubblewrap as {who}: {}", why.trim()),
            sandbox_hint(),
        ),
        Ok(Ok(CheckResult::Canceled)) => Check::fail("bubblewrap: the probe was canceled", ""),
        Ok(Err(e)) => Check::fail(
            format!("bubblewrap: preparing the probe: {e}"),
            "check that the temporary directory is writable",
        ),
        Err(_) => Check::fail(
            "bubblewrap: the sandbox did not finish in 10 s",
            "check the system load",
        ),
    };
    std::iter::once(started)
        .chain(lines.into_iter().map(Check::Pass))
        .chain(warnings.into_iter().map(Check::Warn))
        .collect()
}

fn sandbox_hint() -> String {
    let sysctl = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/{name}"))
            .ok()
            .map(|s| s.trim().to_string())
    };
    userns_hint(
        sysctl("user/max_user_namespaces").as_deref(),
        sysctl("kernel/unprivileged_userns_clone").as_deref(),
        sysctl("kernel/apparmor_restrict_unprivileged_userns").as_deref(),
        in_chroot(),
    )
}

/// Whether our root differs from PID 1's: the kernel refuses to create user namespaces for a
/// chrooted process (EPERM), so bubblewrap cannot work there whatever the sysctls say.
fn in_chroot() -> bool {
    match (std::fs::metadata("/proc/1/root/."), std::fs::metadata("/")) {
        (Ok(init), Ok(ours)) => (init.dev(), init.ino()) != (ours.dev(), ours.ino()),
        _ => false,
    }
}

/// Why unprivileged user namespaces may be unavailable, from the sysctls that control them.
fn userns_hint(
    max: Option<&str>,
    debian_clone: Option<&str>,
    apparmor: Option<&str>,
    chrooted: bool,
) -> String {
    if max == Some("0") {
        "user namespaces are disabled: sysctl -w user.max_user_namespaces=15000 (persist it in \
         /etc/sysctl.d/)"
            .into()
    } else if debian_clone == Some("0") {
        "unprivileged user namespaces are disabled: sysctl -w kernel.unprivileged_userns_clone=1 \
         (persist it in /etc/sysctl.d/)"
            .into()
    } else if apparmor == Some("1") {
        "AppArmor restricts unprivileged user namespaces: give /usr/bin/bwrap a profile with \
         `userns,` (or sysctl kernel.apparmor_restrict_unprivileged_userns=0)"
            .into()
    } else if chrooted {
        "this process runs in a chroot, where the kernel refuses user namespaces: run cocov \
         outside the chroot"
            .into()
    } else {
        "bubblewrap needs unprivileged user namespaces; see the error above".into()
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Free space where blobs and work directories go.
/// The unit makes everything but `/var/lib/cocov` read-only (`ProtectSystem=strict`,
/// `ReadWritePaths=/var/lib/cocov`): each check's files are written in `worker.work_dir`, so it
/// must be in there (or in a path a drop-in adds) and writable for the service user.
fn work_dir(dir: &Path) -> Check {
    let what = format!("work directory {}", dir.display());
    if !dir.is_absolute() {
        return Check::fail(
            format!("{what}: not an absolute path"),
            "set worker.work_dir to a directory below /var/lib/cocov",
        );
    }
    // Under the installed unit the daemon is the service user and the tree is read-only but
    // for ReadWritePaths=; elsewhere (a development run) it is whoever runs this.
    let unit_installed = [
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
        "/etc/systemd/system",
    ]
    .iter()
    .any(|d| Path::new(d).join("cocov.service").exists());
    if unit_installed && !dir.starts_with("/var/lib/cocov") && !in_drop_in_read_write_paths(dir) {
        return Check::fail(
            format!("{what}: outside /var/lib/cocov, read-only for the unit"),
            "keep worker.work_dir below /var/lib/cocov, or add `ReadWritePaths=<dir>` with \
             `systemctl edit cocov`",
        );
    }
    // It may not exist yet (the worker creates it): judge the directory it will be made in.
    let Some((existing, meta)) = dir
        .ancestors()
        .find_map(|p| std::fs::metadata(p).ok().map(|m| (p, m)))
    else {
        return Check::fail(format!("{what}: no existing parent"), "check the path");
    };
    if !meta.is_dir() {
        return Check::fail(
            format!("{what}: {} is not a directory", existing.display()),
            "set worker.work_dir to a directory",
        );
    }
    let at = if existing == dir {
        String::new()
    } else {
        format!(" (to be created in {})", existing.display())
    };
    let (who, writable) = if unit_installed {
        let Some(user) = service_user() else {
            return Check::Skip(format!("{what}: no user {SERVICE_USER} to check it for"));
        };
        let mode = meta.mode();
        let writable = if meta.uid() == user.uid.as_raw() {
            mode & 0o300 == 0o300
        } else if meta.gid() == user.gid.as_raw() {
            mode & 0o030 == 0o030
        } else {
            mode & 0o003 == 0o003
        };
        (SERVICE_USER.to_string(), writable)
    } else {
        let access = nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK;
        (
            "this user".to_string(),
            nix::unistd::access(existing, access).is_ok(),
        )
    };
    if writable {
        Check::Pass(format!("{what}{at}: writable for {who}"))
    } else {
        Check::fail(
            format!("{what}{at}: not writable for {who}"),
            format!(
                "chown {SERVICE_USER}:{SERVICE_USER} {} && chmod 0750 {}",
                existing.display(),
                existing.display()
            ),
        )
    }
}

/// Whether a drop-in of the unit (`systemctl edit cocov`) adds a ReadWritePaths= covering `dir`.
fn in_drop_in_read_write_paths(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir("/etc/systemd/system/cocov.service.d") else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read_to_string(entry.path()).is_ok_and(|text| {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix("ReadWritePaths="))
                .flat_map(str::split_whitespace)
                .map(|p| p.trim_start_matches(['-', '+']))
                .any(|p| dir.starts_with(p))
        })
    })
}

fn disk(config: &Config) -> Check {
    let wanted = match config.storage.mode {
        StorageMode::Local => config.storage.local_path.clone(),
        StorageMode::S3 => PathBuf::from("/var/lib/cocov"),
    };
    // The directory may not exist yet: measure the filesystem it will be on.
    let Some(path) = wanted
        .ancestors()
        .find(|p| p.exists())
        .map(Path::to_path_buf)
    else {
        return Check::Skip(format!(
            "free disk: no existing directory for {}",
            wanted.display()
        ));
    };
    let stat = match nix::sys::statvfs::statvfs(&path) {
        Ok(s) => s,
        Err(e) => {
            return Check::fail(
                format!("free disk {}: {e}", path.display()),
                "check the mount",
            );
        }
    };
    let frsize = stat.fragment_size() as u64;
    let free = stat.blocks_available() as u64 * frsize;
    let total = stat.blocks() as u64 * frsize;
    disk_check(&path, free, total)
}

fn disk_check(path: &Path, free: u64, total: u64) -> Check {
    let percent = (free * 100).checked_div(total).unwrap_or(0);
    let what = format!(
        "free disk {}: {:.1} GiB ({percent}%) free",
        path.display(),
        free as f64 / (1u64 << 30) as f64
    );
    if free < MIN_FREE_BYTES || percent < MIN_FREE_PERCENT {
        Check::fail(
            what,
            "archives and work directories need room: free space or grow the volume",
        )
    } else {
        Check::Pass(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_dir_must_be_absolute() {
        assert!(matches!(
            work_dir(Path::new("relative/work")),
            Check::Fail { .. }
        ));
    }

    #[test]
    fn lines_have_the_documented_shape() {
        assert_eq!(Check::Pass("x".into()).line(), "ok   x");
        assert_eq!(
            Check::fail("Redis: down", "start it").line(),
            "FAIL Redis: down — start it"
        );
        assert_eq!(Check::Skip("y".into()).line(), "skip y");
    }

    #[test]
    fn skew_beyond_30_seconds_fails() {
        let now = OffsetDateTime::now_utc();
        assert!(matches!(
            skew_check(now, now - time::Duration::seconds(3)),
            Check::Pass(_)
        ));
        let ahead = skew_check(now, now - time::Duration::seconds(95));
        assert!(
            ahead.line().starts_with("FAIL clock: 95 s ahead of"),
            "{}",
            ahead.line()
        );
        let behind = skew_check(now, now + time::Duration::seconds(31));
        assert!(behind.line().contains("31 s behind"), "{}", behind.line());
    }

    #[test]
    fn http_dates_parse() {
        let d = OffsetDateTime::parse("Sat, 28 Nov 2026 03:30:00 GMT", &Rfc2822).unwrap();
        assert_eq!(d.unix_timestamp(), 1_795_836_600);
    }

    #[test]
    fn disk_fails_below_one_gib_or_five_percent() {
        let p = Path::new("/var/lib/cocov");
        let gib = 1u64 << 30;
        assert!(matches!(disk_check(p, 50 * gib, 100 * gib), Check::Pass(_)));
        assert!(matches!(
            disk_check(p, gib / 2, 2 * gib),
            Check::Fail { .. }
        ));
        assert!(matches!(
            disk_check(p, 4 * gib, 100 * gib),
            Check::Fail { .. }
        ));
        assert!(matches!(disk_check(p, 0, 0), Check::Fail { .. }));
    }

    #[test]
    fn userns_hints_name_the_sysctl_to_change() {
        assert!(userns_hint(Some("0"), None, None, false).contains("user.max_user_namespaces"));
        assert!(
            userns_hint(Some("100"), Some("0"), None, false).contains("unprivileged_userns_clone")
        );
        assert!(userns_hint(Some("100"), None, Some("1"), false).contains("AppArmor"));
        assert!(userns_hint(Some("100"), Some("1"), Some("0"), true).contains("chroot"));
        assert!(userns_hint(Some("100"), None, None, false).contains("see the error above"));
    }

    #[test]
    fn postgres_hints_cover_fresh_install_errors() {
        assert!(
            postgres_hint("password authentication failed for user \"cocov\"").contains("setup")
        );
        assert!(postgres_hint("database \"cocov\" does not exist").contains("setup"));
        assert!(postgres_hint("Connection refused (os error 111)").contains("systemctl"));
    }

    #[test]
    fn urls_are_masked() {
        assert_eq!(
            mask_url("redis://:s3cret@h:6379/0"),
            "redis://:***@h:6379/0"
        );
        assert_eq!(mask_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn hex_keys() {
        assert!(is_hex_key(&"ab".repeat(32)));
        assert!(!is_hex_key(&"ab".repeat(31)));
        assert!(!is_hex_key(&"zz".repeat(32)));
    }
}
