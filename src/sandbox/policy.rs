//! What a sandbox gets: the host's facts (found once per process) and the limits and user a
//! caller chooses. Checks and `cocov doctor` both describe the sandbox from these values, so what
//! doctor reports is what a check gets.

use std::sync::OnceLock;

use super::cgroup::{CgroupLimits, Support};
use super::{BWRAP, Limits, seccomp};

/// The host's facts, found on first use.
#[derive(Debug)]
pub struct Host {
    pub cgroup: Support,
    /// The compiled filter, or why it could not be built (then no sandbox starts).
    pub seccomp: Result<Vec<u8>, String>,
    /// Whether this bubblewrap knows `--disable-userns` (0.8.0 and later).
    pub disable_userns: bool,
}

pub fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let host = Host {
            cgroup: Support::detect(),
            seccomp: seccomp::program(),
            disable_userns: bwrap_knows("--disable-userns"),
        };
        tracing::info!(
            cgroup = %host.cgroup.describe(),
            seccomp = host.seccomp.is_ok(),
            disable_userns = host.disable_userns,
            "sandbox support"
        );
        host
    })
}

fn bwrap_knows(flag: &str) -> bool {
    std::process::Command::new(BWRAP)
        .arg("--help")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(flag))
}

/// The host user bubblewrap runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAs {
    /// The daemon is not root: bubblewrap runs as the daemon's user, mapped to uid 1000 inside.
    Daemon,
    /// The daemon is root: the configured unprivileged user.
    User { name: String, uid: u32, gid: u32 },
    /// The daemon is root but the configured user does not exist: `nobody`, shared with other
    /// software, so doctor warns.
    Nobody { missing: String },
}

pub const NOBODY: (u32, u32) = (65534, 65534);

impl RunAs {
    /// `sandbox_user` when the daemon runs as root.
    pub fn resolve(sandbox_user: &str) -> RunAs {
        if !nix::unistd::geteuid().is_root() {
            return RunAs::Daemon;
        }
        match nix::unistd::User::from_name(sandbox_user) {
            Ok(Some(user)) if !user.uid.is_root() => RunAs::User {
                name: sandbox_user.to_string(),
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            },
            _ => RunAs::Nobody {
                missing: sandbox_user.to_string(),
            },
        }
    }

    /// The host uid and gid to switch to, and to give the check's files to.
    pub fn owner(&self) -> Option<(u32, u32)> {
        match self {
            RunAs::Daemon => None,
            RunAs::User { uid, gid, .. } => Some((*uid, *gid)),
            RunAs::Nobody { .. } => Some(NOBODY),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPolicy {
    pub limits: Limits,
    /// Size of each scratch tmpfs (`/tmp`, the home) and the work copy's room beyond its seed.
    pub scratch_mb: u64,
    pub run_as: RunAs,
}

impl SandboxPolicy {
    pub fn scratch_bytes(&self) -> u64 {
        self.scratch_mb.saturating_mul(1024 * 1024)
    }

    pub fn cgroup_limits(&self) -> CgroupLimits {
        CgroupLimits {
            memory_bytes: self.limits.memory_mb.saturating_mul(1024 * 1024),
            processes: self.limits.processes,
            cpu_weight: self.limits.cpu_weight,
        }
    }

    /// One line per aspect, as `cocov doctor` prints them; `warnings` are the weak spots.
    pub fn describe(&self, host: &Host) -> (Vec<String>, Vec<String>) {
        let (mut lines, mut warnings) = (Vec::new(), Vec::new());
        let l = &self.limits;
        let bounds = format!(
            "memory {} MiB, {} processes, cpu weight {}",
            l.memory_mb, l.processes, l.cpu_weight
        );
        if host.cgroup.is_usable() {
            lines.push(format!(
                "sandbox limits: {}: {bounds}",
                host.cgroup.describe()
            ));
        } else {
            warnings.push(format!(
                "sandbox limits: rlimits only ({bounds} as RLIMIT_DATA/RLIMIT_NPROC, no CPU \
                 share) for sandboxes this process starts: {}; the daemon's checks get a \
                 cgroup under the packaged unit (Delegate=yes) or with a writable cgroup v1",
                host.cgroup.describe()
            ));
        }
        match &host.seccomp {
            Ok(program) => lines.push(format!(
                "sandbox seccomp filter on ({} instructions)",
                program.len() / 8
            )),
            Err(e) => warnings.push(format!("sandbox seccomp filter: {e}")),
        }
        if host.disable_userns {
            lines.push("sandbox nested user namespaces disabled (--disable-userns)".into());
        } else {
            warnings.push(
                "sandbox nested user namespaces: this bubblewrap has no --disable-userns \
                 (0.8.0 or later has it); the seccomp filter still refuses unshare and clone \
                 with namespace flags"
                    .into(),
            );
        }
        lines.push(format!(
            "sandbox tmpfs: /tmp and home {} MiB each, work copy its tree + {} MiB, /dev/shm \
             as much as /tmp, root and /dev read-only; files up to {} MiB, {} open files, {} s \
             of CPU",
            self.scratch_mb, self.scratch_mb, l.file_size_mb, l.open_files, l.cpu_seconds
        ));
        match &self.run_as {
            RunAs::Daemon => lines.push(format!(
                "sandbox runs as this user (uid {}), uid 1000 inside",
                nix::unistd::geteuid()
            )),
            RunAs::User { name, uid, .. } => lines.push(format!(
                "sandbox runs as {name} (uid {uid}), uid 1000 inside"
            )),
            RunAs::Nobody { missing } => warnings.push(format!(
                "sandbox runs as nobody (uid 65534), shared with other software: no user \
                 {missing}; create it: useradd --system --no-create-home --shell \
                 /usr/sbin/nologin {missing} (or run `cocov setup`)"
            )),
        }
        (lines, warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(run_as: RunAs) -> SandboxPolicy {
        SandboxPolicy {
            limits: Limits {
                cpu_seconds: 60,
                memory_mb: 256,
                file_size_mb: 8,
                processes: 32,
                open_files: 64,
                cpu_weight: 100,
            },
            scratch_mb: 16,
            run_as,
        }
    }

    #[test]
    fn a_host_without_cgroups_seccomp_or_userns_switch_is_reported_as_weaker() {
        let host = Host {
            cgroup: Support::None("not delegated".into()),
            seccomp: Err("unsupported architecture".into()),
            disable_userns: false,
        };
        let (lines, warnings) = policy(RunAs::Nobody {
            missing: "cocov-sandbox".into(),
        })
        .describe(&host);
        let all = warnings.join("\n");
        assert!(
            all.contains("rlimits only (memory 256 MiB, 32 processes"),
            "{all}"
        );
        assert!(all.contains("not delegated") && all.contains("unsupported architecture"));
        assert!(all.contains("--disable-userns") && all.contains("no user cocov-sandbox"));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("tmpfs: /tmp and home 16 MiB"))
        );
    }

    #[test]
    fn cgroup_limits_follow_the_policy() {
        let limits = policy(RunAs::Daemon).cgroup_limits();
        assert_eq!(limits.memory_bytes, 256 << 20);
        assert_eq!((limits.processes, limits.cpu_weight), (32, 100));
    }
}
