//! A private, throw-away redis-server a test may stop and start again without disturbing the
//! shared one: without persistence (a restart comes back empty), or with an append-only file
//! synced on every write (a restart comes back with its data). Killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    /// Where the append-only file lives, when persistent.
    persistence: Option<tempfile::TempDir>,
}

impl PrivateRedis {
    /// Starts without persistence on a free port and waits until it answers.
    pub async fn start() -> PrivateRedis {
        PrivateRedis::start_with(None).await
    }

    /// Starts with an append-only file (`appendfsync always`) in a directory of its own.
    pub async fn start_persistent() -> PrivateRedis {
        PrivateRedis::start_with(Some(tempfile::tempdir().unwrap())).await
    }

    async fn start_with(persistence: Option<tempfile::TempDir>) -> PrivateRedis {
        let port = super::requests::free_port();
        let mut server = PrivateRedis {
            port,
            child: None,
            persistence,
        };
        server.resume().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: an outage, not a shutdown); its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it answers.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""]);
        match &self.persistence {
            Some(dir) => command
                .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                .arg(dir.path()),
            None => command.args(["--appendonly", "no"]),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).unwrap();
        super::eventually(
            "the private redis-server answers",
            Duration::from_secs(30),
            || async {
                let mut c = client.get_multiplexed_async_connection().await.ok()?;
                redis::cmd("PING").query_async::<String>(&mut c).await.ok()
            },
        )
        .await;
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
