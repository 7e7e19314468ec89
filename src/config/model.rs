//! Typed configuration with its defaults. Every field has a default so that an empty file (or no
//! file at all) plus a few environment variables is a valid configuration; `etc/cocov.toml`
//! documents each key.
//!
//! Optional values are empty strings rather than `Option`, so that every key appears in the
//! serialised defaults: the environment overlay derives the list of `COCOV_*` names from them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub badger: BadgerConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub storage: StorageConfig,
    pub security: SecurityConfig,
    pub queue: QueueConfig,
    pub statuses: StatusesConfig,
    pub reconcile: ReconcileConfig,
    pub coverage: CoverageConfig,
    pub git: GitConfig,
    pub github: GithubConfig,
    pub worker: WorkerConfig,
    pub accounts: super::accounts::AccountsConfig,
    pub images: ImagesConfig,
    pub oidc: super::oidc::OidcConfig,
}

/// What a host does. Several hosts may share one PostgreSQL, Redis and store, each with its roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The JSON API, webhooks, uploads and the web UI.
    Api,
    /// Background jobs: ingestion, checks, coverage processing.
    Worker,
    /// The badge server on its own listener.
    Badger,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Api, Role::Worker, Role::Badger];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Worker => "worker",
            Role::Badger => "badger",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub bind_address: SocketAddr,
    pub roles: Vec<Role>,
    pub ui_base_url: String,
    pub request_body_limit_bytes: u64,
    pub request_timeout_seconds: u64,
    pub shutdown_grace_seconds: u64,
    /// Connection limits, applied to each listener (API and badger) separately.
    /// A client must send a request's headers within this long, or the connection is closed.
    pub header_read_timeout_seconds: u64,
    /// A connection with no request in flight for this long is closed (also one that never
    /// sends a request).
    pub idle_timeout_seconds: u64,
    /// HTTP/2: ping an idle peer this often, and close the connection when a ping is not
    /// answered within the timeout.
    pub http2_keep_alive_interval_seconds: u64,
    pub http2_keep_alive_timeout_seconds: u64,
    /// Open connections per listener; further clients wait in the listen backlog until one ends.
    pub max_connections: usize,
    /// A file holding the bearer token a metrics scraper sends to `/metrics`; when empty,
    /// only administrators may read the metrics.
    pub metrics_token_file: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind_address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3000),
            roles: Role::ALL.to_vec(),
            ui_base_url: "http://127.0.0.1:3000".into(),
            request_body_limit_bytes: 8 * 1024 * 1024,
            request_timeout_seconds: 60,
            shutdown_grace_seconds: 30,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            http2_keep_alive_interval_seconds: 20,
            http2_keep_alive_timeout_seconds: 10,
            max_connections: 1024,
            metrics_token_file: PathBuf::new(),
        }
    }
}

impl ServerConfig {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BadgerConfig {
    pub bind_address: IpAddr,
    pub bind_port: u16,
    pub base_url: String,
    /// Badge requests per minute per client address (token bucket, bursts up to this many);
    /// 0 disables the limit.
    pub rate_limit_per_minute: u32,
    /// Reverse proxies (addresses or CIDR networks) whose `Forwarded` / `X-Forwarded-For`
    /// headers name the client for the rate limit; from anyone else they are ignored.
    pub trusted_proxies: Vec<String>,
}

impl Default for BadgerConfig {
    fn default() -> Self {
        BadgerConfig {
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            bind_port: 4000,
            base_url: String::new(),
            rate_limit_per_minute: 600,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// A full `postgres://` URL; when empty, built from the parts below.
    pub url: String,
    pub host: String,
    pub port: u16,
    pub name: String,
    pub username: String,
    pub password: String,
    pub max_connections: u32,
    pub connect_timeout_seconds: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: String::new(),
            host: "127.0.0.1".into(),
            port: 5432,
            name: "cocov".into(),
            username: "cocov".into(),
            password: String::new(),
            max_connections: 16,
            connect_timeout_seconds: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// The primary database: locks, tokens, short-lived state.
    pub url: String,
    /// The cache database; when empty, `url` with `cache_db` selected.
    pub cache_url: String,
    /// The job-queue database; when empty, `url` with `queue_db` selected.
    pub queue_url: String,
    pub primary_db: u8,
    pub cache_db: u8,
    pub queue_db: u8,
    pub key_prefix: String,
    pub response_timeout_ms: u64,
    /// PEM certificates trusted for `rediss://` URLs instead of the system's roots (a private
    /// CA); empty: the system's.
    pub tls_ca_file: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            cache_url: String::new(),
            queue_url: String::new(),
            primary_db: 0,
            cache_db: 1,
            queue_db: 2,
            key_prefix: "cocov:".into(),
            response_timeout_ms: 2000,
            tls_ca_file: String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageMode {
    Local,
    S3,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub mode: StorageMode,
    pub local_path: PathBuf,
    pub s3: S3Config,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            mode: StorageMode::Local,
            local_path: PathBuf::from("/var/lib/cocov/storage"),
            s3: S3Config::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Create the bucket at start when it does not exist (needs the permission to).
    pub create_bucket: bool,
    pub timeout_seconds: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            bucket: "cocov".into(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            create_bucket: true,
            timeout_seconds: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// The key that encrypts secrets at rest, as 64 hex characters; when empty, read from
    /// `cryptographic_key_file`.
    pub cryptographic_key: String,
    pub cryptographic_key_file: PathBuf,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            cryptographic_key: String::new(),
            cryptographic_key_file: PathBuf::from("/etc/cocov/secret.key"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Jobs run at once by this host's worker role.
    pub concurrency: usize,
    /// Deliveries after which a failing job goes to the dead-letter list.
    pub max_deliveries: u32,
    /// A job held this long by a consumer that stopped heart-beating is taken over by another.
    pub reclaim_idle_seconds: u64,
    pub retry_base_delay_ms: u64,
    pub retry_max_delay_ms: u64,
    /// A job failing because a dependency is down (PostgreSQL, Redis, the store, GitHub) is
    /// retried without using up attempts until this long after it was first queued.
    pub outage_deadline_seconds: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            concurrency: 4,
            max_deliveries: 5,
            reclaim_idle_seconds: 60,
            retry_base_delay_ms: 1000,
            retry_max_delay_ms: 5 * 60 * 1000,
            outage_deadline_seconds: 30 * 60,
        }
    }
}

impl DatabaseConfig {
    /// The connection URL: `url` when set, else one assembled from the parts.
    pub fn effective_url(&self) -> String {
        if !self.url.is_empty() {
            return self.url.clone();
        }
        let enc = |s: &str| {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        let auth = if self.password.is_empty() {
            enc(&self.username)
        } else {
            format!("{}:{}", enc(&self.username), enc(&self.password))
        };
        format!(
            "postgres://{auth}@{}:{}/{}",
            self.host,
            self.port,
            enc(&self.name)
        )
    }
}

/// The GitHub App this instance works through (github.com or GitHub Enterprise Server). GitHub
/// mode is on when `app_id` is set; the names follow the original's `COCOV_GITHUB_*` variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubConfig {
    /// REST API root: `https://api.github.com`, or `https://<host>/api/v3` for GHES.
    pub api_url: String,
    /// Where repositories are cloned from; empty derives it from `api_url`.
    pub git_base_url: String,
    /// The web root users sign in at (`/login/oauth/…`); empty derives it like git_base_url.
    pub web_url: String,
    pub org_name: String,
    pub app_id: String,
    /// Base64 of the App's PEM private key (PKCS#1 as GitHub issues it, or PKCS#8).
    pub app_private_key: String,
    pub app_installation_id: String,
    pub oauth_client_id: String,
    pub oauth_client_secret: String,
    pub webhook_secret_key: String,
    pub allow_outside_collaborators: bool,
    pub request_timeout_seconds: u64,
    /// Retries after a 5xx, a connection error or a timeout (so at most this + 1 attempts).
    pub max_retries: u32,
    /// A rate limit that lifts within this many seconds is waited out; a longer one fails.
    pub max_rate_limit_wait_seconds: u64,
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            api_url: "https://api.github.com".into(),
            git_base_url: String::new(),
            web_url: String::new(),
            org_name: String::new(),
            app_id: String::new(),
            app_private_key: String::new(),
            app_installation_id: String::new(),
            oauth_client_id: String::new(),
            oauth_client_secret: String::new(),
            webhook_secret_key: String::new(),
            allow_outside_collaborators: true,
            request_timeout_seconds: 10,
            max_retries: 3,
            max_rate_limit_wait_seconds: 60,
        }
    }
}

impl GithubConfig {
    /// GitHub mode: an App is configured.
    pub fn enabled(&self) -> bool {
        !self.app_id.trim().is_empty()
    }

    /// The git host's root URL without a trailing `/`: `git_base_url` when set; else
    /// `https://github.com` for api.github.com, and the API URL's scheme, host and port for
    /// GHES, which serves the API under `/api/v3` and git at the root.
    pub fn effective_git_base_url(&self) -> String {
        if !self.git_base_url.trim().is_empty() {
            return self.git_base_url.trim().trim_end_matches('/').to_string();
        }
        self.derived_web_root()
    }

    /// Where users sign in (`{web}/login/oauth/authorize`): `web_url` when set, else derived
    /// from `api_url` like the git host (GHES serves its web pages at the root).
    pub fn effective_web_url(&self) -> String {
        if !self.web_url.trim().is_empty() {
            return self.web_url.trim().trim_end_matches('/').to_string();
        }
        self.derived_web_root()
    }

    /// Whether GitHub sign-in can work: GitHub mode with the App's OAuth client configured.
    pub fn sign_in_configured(&self) -> bool {
        self.enabled()
            && !self.oauth_client_id.trim().is_empty()
            && !self.oauth_client_secret.trim().is_empty()
    }

    fn derived_web_root(&self) -> String {
        match url::Url::parse(self.api_url.trim()) {
            Ok(api) if api.host_str() == Some("api.github.com") => "https://github.com".into(),
            Ok(api) => api.origin().ascii_serialization(),
            Err(_) => "https://github.com".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusesConfig {
    /// A pending commit status with no result after this long ends in `error` with a reason.
    pub pending_deadline_seconds: u64,
}

impl Default for StatusesConfig {
    fn default() -> Self {
        StatusesConfig {
            pending_deadline_seconds: 30 * 60,
        }
    }
}

/// The reconciler: finds work PostgreSQL says is pending but no queue holds, and queues it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileConfig {
    /// A full pass runs this often (and at start-up, and when Redis comes back or lost its data).
    pub period_seconds: u64,
    /// How often each worker host checks that Redis still holds the reconciler's sentinel key;
    /// a missing sentinel means Redis lost its data, and a pass runs at once.
    pub sentinel_check_seconds: u64,
    /// Rows changed more recently than this are left alone: their job may be on its way into the
    /// queue right now.
    pub settle_seconds: u64,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            period_seconds: 60,
            sentinel_check_seconds: 5,
            settle_seconds: 10,
        }
    }
}

/// The least `coverage.max_upload_bytes_in_flight` accepted: one upload's working set (32 MiB,
/// see `upload_budget::SLOT_WORKING_SET`) plus room for a small report.
pub const MIN_UPLOAD_BYTES_IN_FLIGHT: u64 = 64 * 1024 * 1024;

/// Coverage uploads: how much report a raw upload may expand to, and how long an upload for a
/// commit not yet known is held.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoverageConfig {
    /// Largest report accepted once decompressed (bytes); larger ones (or gzip bombs) get 413.
    pub max_report_bytes: u64,
    /// An upload for a commit that has not arrived yet is kept this long, then dropped.
    pub early_upload_hold_seconds: u64,
    /// Uploads held for commits not yet ingested, per repository; more get 429.
    pub max_held_uploads_per_repository: u64,
    /// Time allowed for the CPU-heavy part of one upload (decompressing, parsing, mapping its
    /// paths), which runs off the async runtime; a report over it is refused and the work stops.
    pub processing_time_limit_ms: u64,
    /// Uploads decompressed and parsed at once, process-wide; more wait (see
    /// `upload_queue_wait_ms`).
    pub max_concurrent_uploads: u32,
    /// Memory all uploads together may hold at once (bodies, decompression and parsing working
    /// sets, parsed coverage), process-wide, in bytes.
    pub max_upload_bytes_in_flight: u64,
    /// How long an upload waits for room in the budget before it is answered 503 with
    /// `Retry-After`.
    pub upload_queue_wait_ms: u64,
}

impl CoverageConfig {
    pub fn processing_time_limit(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.processing_time_limit_ms.max(1))
    }

    pub fn upload_queue_wait(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.upload_queue_wait_ms)
    }
}

impl Default for CoverageConfig {
    fn default() -> Self {
        CoverageConfig {
            max_report_bytes: 256 * 1024 * 1024,
            early_upload_hold_seconds: 2 * 60 * 60,
            max_held_uploads_per_repository: 100,
            processing_time_limit_ms: 30_000,
            max_concurrent_uploads: 4,
            max_upload_bytes_in_flight: 512 * 1024 * 1024,
            upload_queue_wait_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitConfig {
    /// Each git command (fetch, archive) is killed after this long; the ingestion is retried.
    pub timeout_seconds: u64,
    /// Transports repositories may be fetched over (git's names: https, ssh, file, http, git);
    /// every other one, `ext::` and remote helpers included, is refused by git itself.
    pub allowed_protocols: Vec<String>,
    /// The only ssh host keys git trusts (no trust on first use); an administrator adds them.
    pub known_hosts_file: PathBuf,
}

impl Default for GitConfig {
    fn default() -> Self {
        GitConfig {
            timeout_seconds: 120,
            allowed_protocols: ["https", "ssh", "file"].map(String::from).to_vec(),
            known_hosts_file: PathBuf::from("/var/lib/cocov/ssh/known_hosts"),
        }
    }
}

/// The checks runner: where plugins are defined, how each runs in its sandbox, and the limits
/// that make every check end.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// One TOML file per plugin; a file here replaces the built-in definition of the same name.
    pub plugins_dir: PathBuf,
    /// Where extracted commits and per-check copies live while a check set runs.
    pub work_dir: PathBuf,
    /// Extra host directories (`:`-separated) bound read-only into every sandbox at the same
    /// path and put first on its PATH, for linters installed outside /usr (e.g. a virtualenv).
    pub tool_paths: String,
    /// Default wall-clock limit of one check; a plugin definition may set its own.
    pub check_timeout_seconds: u64,
    /// A check set not finished this long after it was queued ends `errored`.
    pub check_set_deadline_seconds: u64,
    /// Default memory limit (MiB) of one check; a plugin definition may set its own.
    pub memory_mb: u64,
    /// Processes (and threads) a check may run at once.
    pub max_processes: u64,
    /// Largest file a check may write (MiB).
    pub max_file_size_mb: u64,
    /// Cap on a check's output file and on its captured stdout and stderr (MiB each).
    pub max_output_mb: u64,
    /// Cap on the unpacked size of a commit (MiB) and on its number of entries.
    pub max_tree_mb: u64,
    pub max_tree_entries: u64,
    /// Host user the sandbox runs as when the daemon runs as root (never the shared `nobody`
    /// unless this user is missing). Under the packaged unit the daemon is `cocov` and this is
    /// unused: bubblewrap runs as `cocov`.
    pub sandbox_user: String,
    /// Size (MiB) of each tmpfs a check may write (`/tmp`, its home) and the room its work copy
    /// has beyond the size of the tree.
    pub scratch_mb: u64,
    /// A check's CPU share against the others (cgroup `cpu.weight`, 1-10000; 100 is default).
    pub cpu_weight: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            plugins_dir: PathBuf::from("/etc/cocov/plugins.d"),
            work_dir: PathBuf::from("/var/lib/cocov/work"),
            tool_paths: String::new(),
            check_timeout_seconds: 600,
            check_set_deadline_seconds: 3600,
            memory_mb: 2048,
            max_processes: 256,
            max_file_size_mb: 512,
            max_output_mb: 32,
            max_tree_mb: 2048,
            max_tree_entries: 200_000,
            sandbox_user: "cocov-sandbox".into(),
            scratch_mb: 512,
            cpu_weight: 100,
        }
    }
}

impl WorkerConfig {
    pub fn tool_paths(&self) -> Vec<PathBuf> {
        self.tool_paths
            .split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect()
    }
}

/// Plugins that are container images: where they are stored, which registries may be spoken to
/// without TLS verification, mirrors of Docker Hub, and the store's size.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    /// Unpacked images (one directory per manifest digest), tags and registry credentials.
    pub store_dir: PathBuf,
    /// `host:port` of registries spoken to over plain HTTP or unverified TLS (Docker's setting
    /// of that name); every other registry is HTTPS with verified certificates.
    pub insecure_registries: Vec<String>,
    /// `host:port` of Docker Hub mirrors, tried in order before Docker Hub itself.
    pub mirrors: Vec<String>,
    /// Past this size (MiB) the least recently used images (unused for an hour) are removed.
    pub max_store_mb: u64,
    /// Largest image (MiB, unpacked or archived) accepted.
    pub max_image_mb: u64,
    /// A stored tag is used without asking its registry for this long after it was resolved.
    pub tag_ttl_seconds: u64,
    /// One pull (manifest and every layer) is abandoned after this long.
    pub pull_timeout_seconds: u64,
    /// Image plugins that keep the network in their sandbox (`cocov/eslint`, or the
    /// manifest's reference as written); all others have none.
    pub network_plugins: Vec<String>,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            store_dir: PathBuf::from("/var/lib/cocov/images"),
            insecure_registries: Vec::new(),
            mirrors: Vec::new(),
            max_store_mb: 20 * 1024,
            max_image_mb: 4 * 1024,
            tag_ttl_seconds: 3600,
            pull_timeout_seconds: 900,
            network_plugins: Vec::new(),
        }
    }
}
