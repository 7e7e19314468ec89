//! Running one untrusted program under bubblewrap.
//!
//! The program gets fresh user, mount, pid, network, ipc and uts namespaces; it sees `/usr`
//! read-only, the directories it is given, a private `/proc` and `/dev`, and nothing else of
//! the host (no `/etc`, no home, no daemon files, no sockets). It runs as uid 1000 inside, with
//! no capabilities, resource limits set before bubblewrap starts, a wall-clock timeout that kills
//! the whole tree, and caps on what it may print. bubblewrap itself starts with an empty
//! environment, so even `/proc/1/environ` inside holds only the plugin's own variables.

mod bwrap;
mod capture;
mod limits;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use bwrap::{BWRAP, SANDBOX_GID, SANDBOX_HOME, SANDBOX_UID};
pub use limits::Limits;

/// A host path made visible inside the sandbox.
#[derive(Debug, Clone)]
pub struct Bind {
    pub host: PathBuf,
    pub inside: String,
    pub writable: bool,
}

#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Looked up on `PATH` inside the sandbox when not absolute.
    pub command: String,
    pub args: Vec<String>,
    /// The complete environment of the program (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// The initial working directory inside.
    pub chdir: String,
    pub binds: Vec<Bind>,
    pub network: bool,
    pub limits: Limits,
    pub timeout: Duration,
    /// Bytes kept of stdout and of stderr; printing more kills the program.
    pub output_cap: usize,
    /// Host uid and gid bubblewrap runs as. Needed when the daemon runs as root, so the sandbox
    /// is never host root even through a user-namespace escape; None keeps the daemon's user.
    pub run_as: Option<(u32, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signaled(i32),
    TimedOut,
    OutputTooLarge,
    Canceled,
}

#[derive(Debug)]
pub struct Outcome {
    pub ending: Ending,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Outcome {
    /// stdout and stderr as one text, for an errored check's output.
    pub fn log(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.stdout).into_owned();
        if !self.stderr.is_empty() {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&String::from_utf8_lossy(&self.stderr));
        }
        text
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot start bubblewrap ({BWRAP}): {0}; install the `bubblewrap` package")]
    Spawn(std::io::Error),
    #[error("sandbox: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the program to its end, its timeout, its output cap, or until `cancel` completes.
pub async fn run(
    spec: &SandboxSpec,
    cancel: impl Future<Output = ()>,
) -> Result<Outcome, SandboxError> {
    let started = Instant::now();
    let mut command = bwrap::command(spec);
    let mut child = command.spawn().map_err(SandboxError::Spawn)?;
    let pid = child.id().map(|p| p as i32);
    let overflow = std::sync::Arc::new(tokio::sync::Notify::new());
    let stdout = capture::spawn(child.stdout.take(), spec.output_cap, overflow.clone());
    let stderr = capture::spawn(child.stderr.take(), spec.output_cap, overflow.clone());
    let ending = tokio::select! {
        status = child.wait() => status_ending(status?),
        _ = tokio::time::sleep(spec.timeout) => Ending::TimedOut,
        _ = overflow.notified() => Ending::OutputTooLarge,
        _ = cancel => Ending::Canceled,
    };
    if !matches!(ending, Ending::Exited(_) | Ending::Signaled(_)) {
        kill_tree(pid);
        let _ = child.wait().await;
    }
    let stdout = stdout.await.unwrap_or_default();
    let stderr = stderr.await.unwrap_or_default();
    Ok(Outcome {
        ending,
        stdout,
        stderr,
        elapsed: started.elapsed(),
    })
}

fn status_ending(status: std::process::ExitStatus) -> Ending {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Ending::Exited(code),
        (None, Some(signal)) => Ending::Signaled(signal),
        (None, None) => Ending::Exited(-1),
    }
}

/// Kills bubblewrap's process group. Everything inside dies with it: bubblewrap is started with
/// `--die-with-parent`, and when the namespace's first process dies the kernel kills the rest.
fn kill_tree(pid: Option<i32>) {
    if let Some(pid) = pid {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
