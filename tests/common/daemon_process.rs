//! The real `cocov serve` binary as a child process: its own config file and work directory,
//! started and awaited through systemd's readiness protocol (READY=1 on `NOTIFY_SOCKET`), killed
//! on drop, its log's tail printed when the test fails. For tests that need what only a separate
//! process shows: SIGKILL, several hosts, the process's own memory.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cocov::config::Config;

/// One `cocov serve` process.
pub struct DaemonProcess {
    pub name: &'static str,
    pub child: Child,
    /// `http://ADDR` of the API listener, when the process has the `api` role.
    pub api: Option<String>,
    /// `http://ADDR` of the badge listener, when the process has the `badger` role.
    pub badger: Option<String>,
    pub log: PathBuf,
    pub config: PathBuf,
    _dir: tempfile::TempDir,
    _work: tempfile::TempDir,
}

impl DaemonProcess {
    /// Starts `cocov serve` with `config` (its work directory replaced by a fresh one) and waits
    /// for READY=1: its listeners are bound and its consumer started.
    pub fn start(name: &'static str, config: &Config) -> DaemonProcess {
        let dir = tempfile::tempdir().unwrap();
        // Under /tmp and traversable: the sandbox may run as another user.
        let work = tempfile::Builder::new()
            .prefix("cocov-daemon-work-")
            .tempdir_in(std::env::temp_dir())
            .unwrap();
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let mut config = config.clone();
        config.worker.work_dir = work.path().to_path_buf();
        let config_path = dir.path().join("cocov.toml");
        std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();

        let socket_path = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&socket_path).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let log = dir.path().join("cocov.log");
        let mut child = super::cocov_command()
            .arg("serve")
            .env("COCOV_CONFIG", &config_path)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let status = wait_ready(&mut child, &notify, &log, name);
        // "ready: api 127.0.0.1:PORT, badger 127.0.0.1:PORT, roles [...]"
        let address = |listener: &str| {
            let value = status
                .split(&format!("{listener} "))
                .nth(1)?
                .split(',')
                .next()?;
            (value != "off").then(|| format!("http://{value}"))
        };
        DaemonProcess {
            name,
            api: address("api"),
            badger: address("badger"),
            child,
            log,
            config: config_path,
            _dir: dir,
            _work: work,
        }
    }

    /// Runs `cocov ARGS` against this process's configuration, as its operator would; returns
    /// standard output.
    pub fn cocov(&self, args: &[&str]) -> String {
        let out = super::cocov_command()
            .args(args)
            .env("COCOV_CONFIG", &self.config)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert!(
            out.status.success(),
            "cocov {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Creates an administrator with the CLI; returns its token.
    pub fn create_admin(&self, login: &str) -> String {
        let created = self.cocov(&["admin", "create-user", "--login", login, "--admin"]);
        created
            .lines()
            .find_map(|l| l.split("(shown once): ").nth(1))
            .unwrap_or_else(|| panic!("no token in {created}"))
            .to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}{path}", self.api.as_deref().expect("an api host"))
    }

    pub fn badge(&self, path: &str) -> String {
        format!("{}{path}", self.badger.as_deref().expect("a badger host"))
    }

    /// A line of `/proc/PID/status` in KiB (`VmHWM`, `VmRSS`).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid()))
    }

    /// SIGKILL: no drain, no hand-back of held jobs, as when a machine dies.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "--- host {} log (last lines, newest first) ---\n{}",
                self.name,
                tail.join("\n")
            );
        }
    }
}

/// The STATUS text sent with READY=1.
fn wait_ready(child: &mut Child, notify: &UnixDatagram, log: &Path, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = notify.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.contains("READY=1") {
                return msg;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "host {name} exited early with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
    panic!("host {name} sent no READY=1 within 60 s");
}
