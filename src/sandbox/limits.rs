//! Resource limits applied to bubblewrap (and so inherited by everything inside) between fork
//! and exec.

use nix::sys::resource::{Resource, setrlimit};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub cpu_seconds: u64,
    pub memory_mb: u64,
    pub file_size_mb: u64,
    pub processes: u64,
    pub open_files: u64,
}

impl Limits {
    /// Runs in the forked child before exec: only plain syscalls here (no allocation, no locks).
    pub fn apply(&self) -> std::io::Result<()> {
        let set =
            |resource, value: u64| setrlimit(resource, value, value).map_err(std::io::Error::from);
        set(Resource::RLIMIT_CPU, self.cpu_seconds)?;
        // DATA rather than AS: runtimes such as GHC's (ShellCheck) and V8 reserve large address
        // ranges they never touch, which an AS limit would refuse.
        set(
            Resource::RLIMIT_DATA,
            self.memory_mb.saturating_mul(1024 * 1024),
        )?;
        set(
            Resource::RLIMIT_FSIZE,
            self.file_size_mb.saturating_mul(1024 * 1024),
        )?;
        set(Resource::RLIMIT_NPROC, self.processes)?;
        set(Resource::RLIMIT_NOFILE, self.open_files)?;
        set(Resource::RLIMIT_CORE, 0)?;
        Ok(())
    }
}
