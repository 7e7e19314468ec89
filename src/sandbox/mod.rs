//! Running one untrusted program under bubblewrap.
//!
//! The program gets fresh user, mount, pid, network, ipc and uts namespaces; it sees `/usr`
//! read-only, the directories it is given, a private `/proc` and `/dev`, and nothing else of
//! the host (no `/etc`, no home, no daemon files, no sockets). It runs as uid 1000 inside (a
//! dedicated unprivileged host user when the daemon is root), with no capabilities, a seccomp
//! filter, no way to create further user namespaces, its own cgroup (memory, processes, CPU
//! share) or rlimits where there is none, size-limited tmpfs for everything it may write, a
//! wall-clock timeout that kills the whole tree, and caps on what it may print. bubblewrap itself
//! starts with an empty environment, so even `/proc/1/environ` inside holds only the plugin's own
//! variables.

mod bwrap;
mod capture;
pub mod cgroup;
mod limits;
mod policy;
pub mod relay;
mod seccomp;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use bwrap::{BWRAP, SANDBOX_GID, SANDBOX_HOME, SANDBOX_UID};
pub use limits::Limits;
pub use policy::{Host, NOBODY, RunAs, SandboxPolicy, host};
pub use relay::Relay;

/// A host path made visible inside the sandbox.
#[derive(Debug, Clone)]
pub struct Bind {
    pub host: PathBuf,
    pub inside: String,
    pub writable: bool,
}

/// A writable copy of a host directory, made inside the sandbox on a tmpfs sized to the
/// directory plus the policy's scratch room: everything the program writes there is bounded.
#[derive(Debug, Clone)]
pub struct WorkCopy {
    pub host: PathBuf,
    pub inside: String,
    /// What the directory takes on a tmpfs (whole pages per file).
    pub footprint: u64,
}

impl WorkCopy {
    pub fn new(host: &Path, inside: String) -> std::io::Result<WorkCopy> {
        Ok(WorkCopy {
            host: host.to_path_buf(),
            inside,
            footprint: footprint(host)?,
        })
    }

    pub fn size_bytes(&self, policy: &SandboxPolicy) -> u64 {
        self.footprint.saturating_add(policy.scratch_bytes())
    }
}

/// Bytes a tree takes on tmpfs: each file rounded up to pages, a page per link or directory.
fn footprint(dir: &Path) -> std::io::Result<u64> {
    const PAGE: u64 = 4096;
    let mut total = PAGE;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        total += if kind.is_dir() {
            footprint(&entry.path())?
        } else if kind.is_file() {
            entry.metadata()?.len().div_ceil(PAGE).max(1) * PAGE
        } else {
            PAGE
        };
    }
    Ok(total)
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
    pub work_copy: Option<WorkCopy>,
    /// A file inside whose bytes are handed back after the program ends (up to `output_cap`).
    pub collect: Option<String>,
    pub network: bool,
    /// The cache service, reached through a relay on the sandbox's loopback.
    pub relay: Option<Relay>,
    /// An image's root filesystem to run on (read-only) instead of the host's `/usr`.
    pub rootfs: Option<PathBuf>,
    pub policy: SandboxPolicy,
    pub timeout: Duration,
    /// Bytes kept of stdout and of stderr; printing more kills the program.
    pub output_cap: usize,
}

/// The collected file, as the sandbox handed it back.
#[derive(Debug, PartialEq, Eq)]
pub enum Collected {
    /// Not asked for, or the program left no regular file there.
    Absent,
    Bytes(Vec<u8>),
    TooLarge,
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
    pub collected: Collected,
    /// Limits the kernel enforced on the way (all zero without a cgroup).
    pub events: cgroup::Events,
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
    #[error("sandbox: {0}")]
    Setup(String),
}

/// Runs the program to its end, its timeout, its output cap, or until `cancel` completes.
pub async fn run(
    spec: &SandboxSpec,
    cancel: impl Future<Output = ()>,
) -> Result<Outcome, SandboxError> {
    let started = Instant::now();
    let host = host();
    let name = format!("check-{}", uuid::Uuid::new_v4().simple());
    let scope = host
        .cgroup
        .create(&name, spec.policy.cgroup_limits())
        .map_err(|e| SandboxError::Setup(format!("creating the check's cgroup: {e}")))?;
    // Dropping the scope (here, or with this future) kills what is left in it and removes it.
    run_in(spec, host, scope.as_ref(), cancel, started).await
}

async fn run_in(
    spec: &SandboxSpec,
    host: &Host,
    scope: Option<&cgroup::Scope>,
    cancel: impl Future<Output = ()>,
    started: Instant,
) -> Result<Outcome, SandboxError> {
    let joiner = scope.map(cgroup::Scope::joiner).transpose()?;
    let bwrap::Prepared {
        mut command,
        collected,
        keep,
    } = bwrap::command(spec, host, joiner)?;
    let mut child = command.spawn().map_err(SandboxError::Spawn)?;
    // Our copies of the child's descriptors: the pipe's write end must close here for the
    // read below to see its end.
    drop(keep);
    let pid = child.id().map(|p| p as i32);
    let overflow = std::sync::Arc::new(tokio::sync::Notify::new());
    let stdout = capture::spawn(child.stdout.take(), spec.output_cap, overflow.clone());
    let stderr = capture::spawn(child.stderr.take(), spec.output_cap, overflow.clone());
    let collected = match collected {
        Some(fd) => Some(tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?),
        None => None,
    };
    // One byte of marker plus one over the cap tells "too large" from "exactly the cap"; this
    // reader's overflow is judged below, not by killing the program.
    let collected = capture::spawn(
        collected,
        spec.output_cap + 2,
        std::sync::Arc::new(tokio::sync::Notify::new()),
    );
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
    let events = scope.map(cgroup::Scope::events).unwrap_or_default();
    let stdout = stdout.await.unwrap_or_default();
    let stderr = stderr.await.unwrap_or_default();
    let collected = match collected.await.unwrap_or_default() {
        bytes if bytes.first() != Some(&b'F') => Collected::Absent,
        bytes if bytes.len() - 1 > spec.output_cap => Collected::TooLarge,
        mut bytes => {
            bytes.remove(0);
            Collected::Bytes(bytes)
        }
    };
    Ok(Outcome {
        ending,
        stdout,
        stderr,
        collected,
        events,
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
