//! A real git smart-HTTP server for tests: bare repositories under a temporary root, served by
//! `git http-backend` run as a CGI program, behind a check of
//! `Authorization: Basic base64(x-access-token:<token>)` (GitHub's convention for installation
//! tokens). It can be switched "down" (connection refused) and "slow" (every answer delayed).
//!
//! Repositories are filled through `WorkTree`s that commit with the real git CLI and push to
//! the bare repository through the filesystem (no auth).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::AbortHandle;

/// Decides whether a token may fetch.
pub type TokenCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Runs git with the user's and the system's configuration ignored, so the machine's settings
/// (credential helpers, default branch, signing) cannot change a test. Panics with git's stderr.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_with_env(dir, args, &[])
}

pub fn git_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = isolated_git(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A `git` command in `dir` without user/system configuration and without prompting.
pub fn isolated_git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .stdin(Stdio::null());
    cmd
}

#[derive(Debug, Clone)]
pub struct GitRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorized: bool,
}

struct Shared {
    root: PathBuf,
    backend: PathBuf,
    check: TokenCheck,
    delay: Mutex<Duration>,
    requests: Mutex<Vec<GitRequest>>,
    /// The accept loop (it owns the listener).
    accept: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Open connections, cut when the server goes down.
    connections: Mutex<Vec<AbortHandle>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct GitServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _root: tempfile::TempDir,
}

impl Drop for GitServer {
    fn drop(&mut self) {
        if let Some(accept) = lock(&self.shared.accept).take() {
            accept.abort();
        }
        for connection in lock(&self.shared.connections).drain(..) {
            connection.abort();
        }
    }
}

impl GitServer {
    /// Serves on 127.0.0.1 (a free port), accepting the tokens `check` accepts.
    pub async fn start(check: TokenCheck) -> GitServer {
        let root = tempfile::tempdir().expect("tempdir");
        let shared = Arc::new(Shared {
            root: root.path().to_path_buf(),
            backend: http_backend_path(),
            check,
            delay: Mutex::new(Duration::ZERO),
            requests: Mutex::new(Vec::new()),
            accept: Mutex::new(None),
            connections: Mutex::new(Vec::new()),
        });
        let listener = listen("127.0.0.1:0".parse().unwrap());
        let addr = listener.local_addr().unwrap();
        spawn_accept(shared.clone(), listener);
        GitServer {
            addr,
            shared,
            _root: root,
        }
    }

    /// Serves accepting exactly `token`.
    pub async fn with_token(token: &str) -> GitServer {
        let token = token.to_string();
        GitServer::start(Arc::new(move |t| t == token)).await
    }

    /// `http://127.0.0.1:PORT`, for `github.git_base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn repo_url(&self, org: &str, name: &str) -> String {
        format!("{}/{org}/{name}.git", self.base_url())
    }

    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// Creates the bare repository `<org>/<name>.git` (default branch main), fetchable by any
    /// sha, reachable or not (as GitHub allows).
    pub fn create_repo(&self, org: &str, name: &str) -> PathBuf {
        let bare = self.shared.root.join(org).join(format!("{name}.git"));
        std::fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "-q", "--bare", "-b", "main"]);
        git(
            &bare,
            &["config", "uploadpack.allowReachableSHA1InWant", "true"],
        );
        git(&bare, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
        bare
    }

    /// A working tree whose `origin` is the bare repository (created if missing).
    pub fn worktree(&self, org: &str, name: &str) -> WorkTree {
        let bare = self.shared.root.join(org).join(format!("{name}.git"));
        if !bare.exists() {
            self.create_repo(org, name);
        }
        WorkTree::new(&bare)
    }

    /// Stops accepting: when this returns, new connections are refused and open ones are cut.
    /// (Waiting for that needs the multi-threaded runtime the tests use.)
    pub fn go_down(&self) {
        let accept = lock(&self.shared.accept).take();
        for connection in lock(&self.shared.connections).drain(..) {
            connection.abort();
        }
        let Some(accept) = accept else { return };
        accept.abort();
        let handle = tokio::runtime::Handle::current();
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        let addr = self.addr;
        tokio::task::block_in_place(|| {
            // The listener closes when the aborted task is dropped.
            let _ = handle.block_on(accept);
            // A child being forked elsewhere in the test process holds a copy of the socket
            // until it execs (close-on-exec), so refusal can lag by a moment: wait for it.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{addr} still accepts connections after going down"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    }

    /// Accepts again on the same port.
    pub fn come_up(&self) {
        if lock(&self.shared.accept).is_some() {
            return; // already up
        }
        spawn_accept(self.shared.clone(), listen(self.addr));
    }

    /// Delays every answer by `delay` (zero for none).
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.shared.delay) = delay;
    }

    pub fn requests(&self) -> Vec<GitRequest> {
        lock(&self.shared.requests).clone()
    }
}

/// `git-http-backend` of the `git` on PATH (this machine has two gits; use one consistently).
fn http_backend_path() -> PathBuf {
    let out = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git --exec-path");
    let exec_path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let backend = Path::new(&exec_path).join("git-http-backend");
    assert!(backend.exists(), "{} not found", backend.display());
    backend
}

/// A listener on `addr` with SO_REUSEADDR, so `come_up` can rebind the port it left.
fn listen(addr: SocketAddr) -> tokio::net::TcpListener {
    let mut last_error = None;
    for _ in 0..50 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        match socket.bind(addr).and_then(|()| socket.listen(64)) {
            Ok(listener) => return listener,
            Err(e) => last_error = Some(e),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("cannot listen on {addr}: {last_error:?}");
}

fn spawn_accept(shared: Arc<Shared>, listener: tokio::net::TcpListener) {
    let inner = shared.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let shared = inner.clone();
            let connection = tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
            let mut connections = lock(&inner.connections);
            connections.retain(|c| !c.is_finished());
            connections.push(connection.abort_handle());
        }
    });
    *lock(&shared.accept) = Some(task);
}

type Reply = Response<Full<Bytes>>;

fn text(status: u16, body: &str) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// The token of `Authorization: Basic base64(x-access-token:<token>)`.
fn basic_token(header: Option<&str>) -> Option<String> {
    let encoded = header?.strip_prefix("Basic ")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    decoded.strip_prefix("x-access-token:").map(str::to_string)
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Reply {
    let delay = *lock(&shared.delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let token = basic_token(header("authorization").as_deref());
    let authorized = token.as_deref().is_some_and(|t| (shared.check)(t));
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    lock(&shared.requests).push(GitRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        authorized,
    });
    if !authorized {
        let mut r = text(401, "Authentication required\n");
        r.headers_mut()
            .insert("www-authenticate", "Basic realm=\"git\"".parse().unwrap());
        return r;
    }
    let content_type = header("content-type").unwrap_or_default();
    let git_protocol = header("git-protocol").unwrap_or_default();
    let content_encoding = header("content-encoding").unwrap_or_default();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return text(400, &format!("cannot read the request body: {e}")),
    };
    match run_backend(
        shared,
        &method,
        &path,
        &query,
        &content_type,
        &git_protocol,
        &content_encoding,
        body,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => text(500, &format!("git http-backend: {e}\n")),
    }
}

/// Runs `git http-backend` as CGI: request metadata in the environment, the body on stdin,
/// CGI headers (`Status:` included) and the body on stdout.
#[allow(clippy::too_many_arguments)]
async fn run_backend(
    shared: &Shared,
    method: &str,
    path: &str,
    query: &str,
    content_type: &str,
    git_protocol: &str,
    content_encoding: &str,
    body: Bytes,
) -> Result<Reply, String> {
    let mut child = tokio::process::Command::new(&shared.backend)
        .env("GIT_PROJECT_ROOT", &shared.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", content_type)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("GIT_PROTOCOL", git_protocol)
        .env("HTTP_CONTENT_ENCODING", content_encoding)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", shared.backend.display()))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    // Write and read at once: a big request and a big answer would otherwise block each other.
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
        let _ = stdin.shutdown().await;
    });
    let mut out = Vec::new();
    let mut err = Vec::new();
    let (read_out, read_err) =
        tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
    read_out.map_err(|e| e.to_string())?;
    read_err.map_err(|e| e.to_string())?;
    let _ = writer.await;
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if out.is_empty() {
        return Err(format!(
            "exited with {status} and no output: {}",
            String::from_utf8_lossy(&err)
        ));
    }
    parse_cgi(&out)
}

fn parse_cgi(out: &[u8]) -> Result<Reply, String> {
    let (head_len, sep_len) = find(out, b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| find(out, b"\n\n").map(|i| (i, 2)))
        .ok_or("no CGI header terminator")?;
    let head = String::from_utf8_lossy(&out[..head_len]).to_string();
    let mut builder = Response::builder().status(200);
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code: u16 = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("bad Status line `{line}`"))?;
            builder = builder.status(code);
        } else {
            builder = builder.header(name.trim(), value);
        }
    }
    builder
        .body(Full::new(Bytes::copy_from_slice(
            &out[head_len + sep_len..],
        )))
        .map_err(|e| e.to_string())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A working repository that pushes to a bare one through the filesystem.
pub struct WorkTree {
    dir: tempfile::TempDir,
    bare: PathBuf,
    author_name: String,
    author_email: String,
}

impl WorkTree {
    pub fn new(bare: &Path) -> WorkTree {
        let dir = tempfile::tempdir().expect("tempdir");
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(
            dir.path(),
            &[
                "remote",
                "add",
                "origin",
                bare.to_str().expect("utf-8 path"),
            ],
        );
        WorkTree {
            dir,
            bare: bare.to_path_buf(),
            author_name: "Ada Lovelace".into(),
            author_email: "ada@example.com".into(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn bare(&self) -> &Path {
        &self.bare
    }

    /// The author (and committer) of the next commits.
    pub fn set_author(&mut self, name: &str, email: &str) {
        self.author_name = name.into();
        self.author_email = email.into();
    }

    fn git(&self, args: &[&str]) -> String {
        git_with_env(
            self.path(),
            args,
            &[
                ("GIT_AUTHOR_NAME", &self.author_name),
                ("GIT_AUTHOR_EMAIL", &self.author_email),
                ("GIT_COMMITTER_NAME", &self.author_name),
                ("GIT_COMMITTER_EMAIL", &self.author_email),
            ],
        )
    }

    /// Writes the files (creating directories) and commits them; returns the new sha.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let p = self.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    /// Deletes the files and commits; returns the new sha.
    pub fn delete(&self, paths: &[&str], message: &str) -> String {
        for path in paths {
            self.git(&["rm", "-q", "-r", "--", path]);
        }
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// Moves the current branch to `sha` (then `force_push` rewrites history upstream).
    pub fn reset_hard(&self, sha: &str) {
        self.git(&["reset", "-q", "--hard", sha]);
    }

    /// Pushes HEAD to `branch` of the bare repository.
    pub fn push(&self, branch: &str) {
        self.git(&["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")]);
    }

    pub fn force_push(&self, branch: &str) {
        self.git(&[
            "push",
            "-q",
            "-f",
            "origin",
            &format!("HEAD:refs/heads/{branch}"),
        ]);
    }

    pub fn delete_branch(&self, branch: &str) {
        self.git(&["push", "-q", "origin", "--delete", branch]);
    }
}
