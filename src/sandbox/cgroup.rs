//! One cgroup per sandbox: a memory limit, a process limit and a CPU weight the kernel enforces
//! on everything the plugin starts, a way to kill all of it at once, and after the end, whether
//! a limit was hit.
//!
//! cgroup v2 when our own cgroup is delegated to us (the unit's `Delegate=yes`): checks go to
//! `<own cgroup>/cocov-checks/check-<id>`. Otherwise cgroup v1 when the memory and pids
//! hierarchies let us create groups below our own. Otherwise none, and the sandbox falls back to
//! rlimits (`cocov doctor` warns).

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Directory below our own cgroup (in each hierarchy) that holds the checks' groups.
const PARENT: &str = "cocov-checks";

/// What this host offers, found once.
#[derive(Debug, Clone)]
pub enum Support {
    V2 {
        checks: PathBuf,
        cpu: bool,
    },
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: Option<PathBuf>,
    },
    /// Why neither version is usable.
    None(String),
}

/// A sandbox's limits as the kernel takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupLimits {
    pub memory_bytes: u64,
    pub processes: u64,
    /// 1..=10000, 100 being the default share (cgroup v2 `cpu.weight`).
    pub cpu_weight: u64,
}

impl Support {
    pub fn detect() -> Support {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let v2 = match detect_v2(&own, &mounts) {
            Ok(support) => return support,
            Err(why) => why,
        };
        match detect_v1(&own, &mounts) {
            Ok(support) => support,
            Err(v1) => Support::None(format!("cgroup v2: {v2}; cgroup v1: {v1}")),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Support::V2 { checks, .. } => format!("cgroup v2 ({})", checks.display()),
            Support::V1 { memory, .. } => format!("cgroup v1 ({})", memory.display()),
            Support::None(why) => format!("no usable cgroup ({why})"),
        }
    }

    pub fn is_usable(&self) -> bool {
        !matches!(self, Support::None(_))
    }

    /// Creates the group `name` with `limits`; `Ok(None)` when cgroups are not usable here.
    pub fn create(&self, name: &str, limits: CgroupLimits) -> std::io::Result<Option<Scope>> {
        let scope = match self {
            Support::None(_) => return Ok(None),
            Support::V2 { checks, cpu } => {
                let dir = checks.join(name);
                std::fs::create_dir(&dir)?;
                let scope = Scope {
                    dirs: vec![dir.clone()],
                    v2: true,
                };
                write(&dir.join("memory.max"), limits.memory_bytes)?;
                // Without this the group could trade its memory limit for swap.
                let _ = write(&dir.join("memory.swap.max"), 0);
                write(&dir.join("pids.max"), limits.processes)?;
                if *cpu {
                    write(&dir.join("cpu.weight"), limits.cpu_weight.clamp(1, 10_000))?;
                }
                scope
            }
            Support::V1 { memory, pids, cpu } => {
                let mut scope = Scope {
                    dirs: Vec::new(),
                    v2: false,
                };
                for parent in [Some(memory), Some(pids), cpu.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    let dir = parent.join(name);
                    std::fs::create_dir(&dir)?;
                    scope.dirs.push(dir);
                }
                let memory = &scope.dirs[0];
                write(&memory.join("memory.limit_in_bytes"), limits.memory_bytes)?;
                // Memory plus swap: only present with swap accounting; set after the limit
                // above, which the kernel requires to stay below it.
                let memsw = memory.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write(&memsw, limits.memory_bytes)?;
                }
                write(&scope.dirs[1].join("pids.max"), limits.processes)?;
                if let Some(cpu) = scope.dirs.get(2) {
                    // cpu.shares counts 1024 for the default share where cpu.weight counts 100.
                    write(
                        &cpu.join("cpu.shares"),
                        limits.cpu_weight.max(1) * 1024 / 100,
                    )?;
                }
                scope
            }
        };
        Ok(Some(scope))
    }
}

/// A check's group, in one directory (v2) or one per hierarchy (v1).
#[derive(Debug)]
pub struct Scope {
    dirs: Vec<PathBuf>,
    v2: bool,
}

/// Opened `cgroup.procs` files: the child writes `0` ("myself") into each between fork and exec,
/// so bubblewrap and everything below it start inside the group.
pub struct Joiner {
    files: Vec<File>,
}

impl Joiner {
    /// The raw descriptors, for the child; `self` must outlive the spawn.
    pub fn fds(&self) -> Vec<RawFd> {
        self.files.iter().map(|f| f.as_raw_fd()).collect()
    }

    /// Runs in the forked child: one write(2) per descriptor, nothing else.
    pub fn join(fds: &[RawFd]) -> std::io::Result<()> {
        for &fd in fds {
            // SAFETY: a plain write of a static buffer to a descriptor the parent opened.
            if unsafe { nix::libc::write(fd, b"0".as_ptr().cast(), 1) } != 1 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// What the kernel counted while the group lived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// Processes killed for going over the memory limit.
    pub oom_kills: u64,
    /// Forks refused for going over the process limit.
    pub pids_refused: u64,
}

impl Scope {
    pub fn joiner(&self) -> std::io::Result<Joiner> {
        let files = self
            .dirs
            .iter()
            .map(|d| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(d.join("cgroup.procs"))
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Joiner { files })
    }

    pub fn events(&self) -> Events {
        let field = |file: PathBuf, key: &str| {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        if self.v2 {
            Events {
                oom_kills: field(self.dirs[0].join("memory.events"), "oom_kill "),
                pids_refused: field(self.dirs[0].join("pids.events"), "max "),
            }
        } else {
            Events {
                oom_kills: field(self.dirs[0].join("memory.oom_control"), "oom_kill "),
                pids_refused: field(self.dirs[1].join("pids.events"), "max "),
            }
        }
    }
}

/// Whatever way the run ended (even a dropped future), everything left in the group is killed
/// and the group removed, on a thread of its own: rmdir succeeds only once the killed processes
/// have left, a moment later.
impl Drop for Scope {
    fn drop(&mut self) {
        let dirs = std::mem::take(&mut self.dirs);
        let v2 = self.v2;
        std::thread::spawn(move || {
            for _ in 0..250 {
                kill_members(&dirs, v2);
                if dirs.iter().all(|d| remove(d)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            tracing::warn!(?dirs, "leaving a check's cgroup behind");
        });
    }
}

fn kill_members(dirs: &[PathBuf], v2: bool) {
    if v2 {
        let _ = std::fs::write(dirs[0].join("cgroup.kill"), "1");
        return;
    }
    // cgroup v1 has no cgroup.kill: signal each member until none is left (a process forking
    // meanwhile is caught on the next round).
    for dir in dirs {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn remove(dir: &Path) -> bool {
    match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

fn write(path: &Path, value: u64) -> std::io::Result<()> {
    File::options()
        .write(true)
        // cgroupfs refuses to create a file it does not have; create(true) only matters on
        // the plain directories the tests use.
        .create(cfg!(test))
        .truncate(false)
        .open(path)
        .and_then(|mut f| f.write_all(value.to_string().as_bytes()))
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// The mount point and root of each cgroup filesystem: (fstype, super options, root, mount point).
fn cgroup_mounts(mountinfo: &str) -> Vec<(String, String, String, PathBuf)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let fstype = *right.first()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            Some((
                fstype.to_string(),
                right.get(2).copied().unwrap_or_default().to_string(),
                fields.get(3)?.to_string(),
                PathBuf::from(fields.get(4)?),
            ))
        })
        .collect()
}

/// Our group's directory: the mount point plus our path below the mount's root.
fn own_dir(mount: &Path, root: &str, path: &str) -> PathBuf {
    let relative = path.strip_prefix(root).unwrap_or(path);
    mount.join(relative.trim_start_matches('/'))
}

fn detect_v2(own: &str, mounts: &str) -> Result<Support, String> {
    let path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no unified hierarchy")?;
    let (_, _, root, mount) = cgroup_mounts(mounts)
        .into_iter()
        .find(|m| m.0 == "cgroup2")
        .ok_or("not mounted")?;
    let dir = own_dir(&mount, &root, path);
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers"))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
    if !has("memory") || !has("pids") {
        return Err(format!(
            "{} has no memory and pids controllers (delegate them: Delegate=yes)",
            dir.display()
        ));
    }
    let cpu = has("cpu");
    let wanted = if cpu {
        "+memory +pids +cpu"
    } else {
        "+memory +pids"
    };
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    // A group with processes cannot hand controllers to its children ("no internal
    // processes"), so the daemon first moves itself into a leaf of its own.
    let subtree = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    if !subtree.split_whitespace().any(|c| c == "memory") {
        // Only a group that is ours alone (the unit's, with Delegate=yes) is rearranged; a
        // login session's is systemd's, shared with the shell that started us.
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).map_err(io)?;
        let me = std::process::id().to_string();
        if procs.lines().any(|pid| pid.trim() != me) {
            return Err(format!(
                "{} holds other processes than this one (not a delegated service cgroup)",
                dir.display()
            ));
        }
        let leaf = dir.join("daemon");
        ensure_dir(&leaf).map_err(io)?;
        std::fs::write(leaf.join("cgroup.procs"), &me).map_err(io)?;
        std::fs::write(dir.join("cgroup.subtree_control"), wanted).map_err(io)?;
    }
    let checks = dir.join(PARENT);
    ensure_dir(&checks).map_err(io)?;
    std::fs::write(checks.join("cgroup.subtree_control"), wanted).map_err(io)?;
    Ok(Support::V2 { checks, cpu })
}

fn detect_v1(own: &str, mounts: &str) -> Result<Support, String> {
    let mounts = cgroup_mounts(mounts);
    let parent = |controller: &str| -> Result<PathBuf, String> {
        let path = own
            .lines()
            .find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
                names.split(',').any(|n| n == controller).then_some(path)
            })
            .ok_or_else(|| format!("no {controller} hierarchy"))?;
        let (_, _, root, mount) = mounts
            .iter()
            .find(|m| m.0 == "cgroup" && m.1.split(',').any(|o| o == controller))
            .ok_or_else(|| format!("{controller} hierarchy not mounted"))?;
        let checks = own_dir(mount, root, path).join(PARENT);
        ensure_dir(&checks).map_err(|e| format!("{}: {e}", checks.display()))?;
        Ok(checks)
    };
    Ok(Support::V1 {
        memory: parent("memory")?,
        pids: parent("pids")?,
        cpu: parent("cpu").ok(),
    })
}

/// Creates the checks' parent and removes the empty groups a killed daemon left in it. Only
/// groups older than a minute: a group another process just made is empty until it joins.
fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    if dir.ends_with(PARENT) {
        let stale = |p: &Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(60)))
        };
        for entry in std::fs::read_dir(dir)?.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with("check-") && stale(&path) {
                // Fails, as it should, for a group that still has processes.
                let _ = std::fs::remove_dir(&path);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cgroup v2 as a delegated service sees it, on plain files: the daemon moves to a leaf,
    /// enables the controllers, and a check's group gets the limits and reports its events.
    #[test]
    fn a_delegated_v2_group_is_arranged_and_limits_written() {
        let root = tempfile::tempdir().unwrap();
        let service = root.path().join("svc");
        std::fs::create_dir(&service).unwrap();
        std::fs::write(
            service.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        std::fs::write(service.join("cgroup.subtree_control"), "").unwrap();
        std::fs::write(
            service.join("cgroup.procs"),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        let mounts = format!(
            "30 1 0:26 / {} rw - cgroup2 cgroup2 rw\n",
            root.path().display()
        );
        let support = detect_v2("0::/svc\n", &mounts).unwrap();
        let Support::V2 { checks, cpu } = &support else {
            panic!("{support:?}")
        };
        assert!(*cpu);
        assert_eq!(checks, &service.join(PARENT));
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(
            read(service.join("daemon/cgroup.procs")),
            std::process::id().to_string()
        );
        assert_eq!(
            read(service.join("cgroup.subtree_control")),
            "+memory +pids +cpu"
        );
        assert_eq!(
            read(checks.join("cgroup.subtree_control")),
            "+memory +pids +cpu"
        );

        let limits = CgroupLimits {
            memory_bytes: 64 << 20,
            processes: 32,
            cpu_weight: 50,
        };
        let scope = support.create("check-x", limits).unwrap().unwrap();
        let group = checks.join("check-x");
        assert_eq!(read(group.join("memory.max")), (64u64 << 20).to_string());
        assert_eq!(read(group.join("pids.max")), "32");
        assert_eq!(read(group.join("cpu.weight")), "50");
        std::fs::write(
            group.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        )
        .unwrap();
        std::fs::write(group.join("pids.events"), "max 7\n").unwrap();
        assert_eq!(
            scope.events(),
            Events {
                oom_kills: 1,
                pids_refused: 7
            }
        );
    }

    #[test]
    fn a_shared_v2_group_is_left_alone() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "memory pids").unwrap();
        std::fs::write(root.path().join("cgroup.procs"), "1\n2\n").unwrap();
        let mounts = format!(
            "30 1 0:26 / {} rw - cgroup2 cgroup2 rw\n",
            root.path().display()
        );
        let why = detect_v2("0::/\n", &mounts).unwrap_err();
        assert!(why.contains("other processes"), "{why}");
        assert!(!root.path().join("daemon").exists());
    }

    #[test]
    fn our_group_is_found_below_each_mount_root() {
        let mounts = "32 31 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                      33 31 0:30 /ct /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
                      34 31 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                      35 1 0:32 / /tmp rw - tmpfs tmpfs rw\n";
        let found = cgroup_mounts(mounts);
        assert_eq!(found.len(), 3);
        assert_eq!(found[1].2, "/ct");
        assert_eq!(
            own_dir(&found[1].3, &found[1].2, "/ct/a/b"),
            Path::new("/sys/fs/cgroup/pids/a/b")
        );
        assert_eq!(
            own_dir(&found[0].3, &found[0].2, "/x"),
            Path::new("/sys/fs/cgroup/memory/x")
        );
    }
}
