//! A sandbox's resource limits. Memory and processes are bounded by the check's cgroup where the
//! host has one (see `cgroup.rs`), and by rlimits only where it has none; the other rlimits
//! hold everywhere. rlimits are set on bubblewrap between fork and exec, so everything inside
//! inherits them.

use nix::sys::resource::{Resource, setrlimit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub cpu_seconds: u64,
    pub memory_mb: u64,
    pub file_size_mb: u64,
    pub processes: u64,
    pub open_files: u64,
    /// Share of the CPU against other checks (cgroup v2 `cpu.weight`, 100 = default).
    pub cpu_weight: u64,
}

impl Limits {
    /// Runs in the forked child before exec: only plain syscalls here (no allocation, no locks).
    /// `rlimits_only`: no cgroup holds memory and processes, so rlimits must.
    pub fn apply(&self, rlimits_only: bool) -> std::io::Result<()> {
        let set =
            |resource, value: u64| setrlimit(resource, value, value).map_err(std::io::Error::from);
        set(Resource::RLIMIT_CPU, self.cpu_seconds)?;
        if rlimits_only {
            // DATA rather than AS: runtimes such as GHC's (ShellCheck) and V8 reserve large
            // address ranges they never touch, which an AS limit would refuse. Neither bounds
            // shared or file-backed memory nor counts per sandbox (NPROC counts per user),
            // which is why a cgroup is preferred.
            set(
                Resource::RLIMIT_DATA,
                self.memory_mb.saturating_mul(1024 * 1024),
            )?;
            set(Resource::RLIMIT_NPROC, self.processes)?;
        }
        set(
            Resource::RLIMIT_FSIZE,
            self.file_size_mb.saturating_mul(1024 * 1024),
        )?;
        set(Resource::RLIMIT_NOFILE, self.open_files)?;
        set(Resource::RLIMIT_CORE, 0)?;
        Ok(())
    }
}
