//! Real local S3 servers for integration tests, one process per test on a free port, killed on
//! drop:
//! - `moto_server` (PyPI `moto[server]`): complete S3 semantics, accepts any credentials;
//! - `s3s-fs` (crates.io): stores in a real directory and verifies SigV4 signatures.
//!
//! Binaries are looked up in `$COCOV_TEST_TOOLS` (default `~/.cache/cocov-test-tools`), then on
//! PATH. A missing binary fails the test with the command that installs it: a storage suite that
//! silently skipped its S3 half would prove nothing.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cocov::config::S3Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const INSTALL_HINT: &str = "run `scripts/install-test-tools.sh` (installs the S3 test servers \
                            into $COCOV_TEST_TOOLS, default ~/.cache/cocov-test-tools)";
/// moto needs ~2 s on an idle machine; parallel tests on 2 cores need more headroom.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Another process may take the free port between our probe and the server's bind.
const START_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Kind {
    /// moto_server: no authentication checks.
    Moto,
    /// s3s-fs: checks SigV4 signatures against `access_key`/`secret_key`.
    S3sFs,
}

/// A running server. Dropping it kills the process and removes its data.
pub struct S3Server {
    pub kind: S3Kind,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    port: u16,
    child: Child,
    /// The s3s-fs data directory and both servers' logs.
    dir: tempfile::TempDir,
}

impl S3Server {
    pub async fn moto() -> S3Server {
        S3Server::start(S3Kind::Moto).await
    }

    pub async fn s3s_fs() -> S3Server {
        S3Server::start(S3Kind::S3sFs).await
    }

    pub async fn start(kind: S3Kind) -> S3Server {
        let binary = find_binary(kind);
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            match S3Server::try_start(kind, &binary).await {
                Ok(server) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!(
            "could not start {kind:?} ({}): {last_error}",
            binary.display()
        );
    }

    async fn try_start(kind: S3Kind, binary: &Path) -> Result<S3Server, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let port = super::requests::free_port();
        let log_path = dir.path().join("server.log");
        let (access_key, secret_key) = ("AKIACOCOVTEST".to_owned(), "cocov-test-secret".to_owned());
        if kind == S3Kind::S3sFs {
            std::fs::create_dir(dir.path().join("data")).map_err(|e| format!("data dir: {e}"))?;
        }
        let child = spawn(kind, binary, port, dir.path(), &access_key, &secret_key)?;
        let mut server = S3Server {
            kind,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key,
            secret_key,
            child,
            dir,
        };
        match server.wait_ready(port).await {
            Ok(()) => Ok(server),
            Err(e) => {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                // Dropping `server` kills the process.
                Err(format!(
                    "{e}; server log (last lines, newest first):\n{tail}"
                ))
            }
        }
    }

    /// Ready means: our process is alive and an HTTP request to the port gets an HTTP answer.
    async fn wait_ready(&mut self, port: u16) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status} before answering"));
            }
            if answers_http(port).await {
                // The answer may have come from a squatter on the port; make sure ours lives.
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(format!("exited with {status} (port taken?)"));
                }
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(format!(
                    "no HTTP answer on port {port} within {READY_TIMEOUT:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A storage configuration for this server and `bucket`.
    pub fn config(&self, bucket: &str) -> S3Config {
        S3Config {
            endpoint: self.endpoint.clone(),
            bucket: bucket.to_owned(),
            region: "us-east-1".into(),
            access_key_id: self.access_key.clone(),
            secret_access_key: self.secret_key.clone(),
            create_bucket: true,
            timeout_seconds: 30,
        }
    }

    /// Stops the server (SIGKILL), keeping its data: the store is down until [`Self::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port over the same data.
    pub async fn restart(&mut self) {
        self.stop();
        let binary = find_binary(self.kind);
        self.child = spawn(
            self.kind,
            &binary,
            self.port,
            self.dir.path(),
            &self.access_key,
            &self.secret_key,
        )
        .unwrap_or_else(|e| panic!("restarting {:?}: {e}", self.kind));
        let port = self.port;
        if let Err(e) = self.wait_ready(port).await {
            panic!("restarting {:?}: {e}", self.kind);
        }
    }

    /// The directory s3s-fs stores buckets in (one subdirectory per bucket).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server process on `port`, its data (s3s-fs) and log in `dir`.
fn spawn(
    kind: S3Kind,
    binary: &Path,
    port: u16,
    dir: &Path,
    access_key: &str,
    secret_key: &str,
) -> Result<Child, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .map_err(|e| format!("log file: {e}"))?;
    let log2 = log.try_clone().map_err(|e| format!("log file: {e}"))?;
    let mut command = Command::new(binary);
    match kind {
        S3Kind::Moto => {
            command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        }
        S3Kind::S3sFs => {
            command
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", access_key, "--secret-key", secret_key])
                .arg(dir.join("data"));
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| format!("spawn: {e}"))
}

/// A bucket name of its own for each test: `t-` + 32 hex digits, valid everywhere.
pub fn unique_bucket() -> String {
    format!("t-{}", uuid::Uuid::new_v4().simple())
}

fn tools_dir() -> PathBuf {
    match std::env::var_os("COCOV_TEST_TOOLS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/cocov-test-tools")
        }
    }
}

fn find_binary(kind: S3Kind) -> PathBuf {
    let (name, installed) = match kind {
        S3Kind::Moto => ("moto_server", tools_dir().join("venv/bin/moto_server")),
        S3Kind::S3sFs => ("s3s-fs", tools_dir().join("bin/s3s-fs")),
    };
    if is_executable(&installed) {
        return installed;
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|candidate| is_executable(candidate));
    match on_path {
        Some(found) => found,
        None => panic!(
            "the S3 test server `{name}` is not installed (looked for {} and on PATH): {INSTALL_HINT}",
            installed.display()
        ),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

async fn answers_http(port: u16) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .ok()?;
        let request =
            format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 8];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1."))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(true))
    )
}
