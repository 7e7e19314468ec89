//! The bubblewrap command line for a [`SandboxSpec`]: the one place that decides what a sandbox
//! is, for checks, `cocov plugin run` and `cocov doctor`'s probe alike.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::Stdio;

use nix::fcntl::OFlag;

use super::cgroup::Joiner;
use super::policy::Host;
use super::{Bind, SandboxError, SandboxSpec};

pub const BWRAP: &str = "/usr/bin/bwrap";
/// The uid and gid a plugin runs as inside, as the original's images did.
pub const SANDBOX_UID: u32 = 1000;
pub const SANDBOX_GID: u32 = 1000;
pub const SANDBOX_HOME: &str = "/home/cocov";
/// Where the read-only source of the work copy is bound, for the copy into its tmpfs.
const SEED: &str = "/run/cocov-seed";

/// Runs inside the sandbox before and after the program: copies the seed into the work copy's
/// tmpfs (so every byte the program writes there counts against the tmpfs size), runs the
/// program, then hands the collected file back through the pipe whose descriptor is `$4`
/// (`F` and its bytes when it is a regular file, nothing when it is absent). Arguments: seed
/// source, work copy, collected file, pipe fd, program and its arguments; empty ones are unused.
const WRAPPER: &str = r#"seed=$1 copy=$2 collect=$3 fd=$4
shift 4
if [ -n "$seed" ]; then
  # GNU cp, or busybox's (images), which only knows -p (the owner it keeps is the sandbox's).
  cp -PR --preserve=mode,timestamps -- "$seed/." "$copy" 2>/dev/null ||
    cp -PRp -- "$seed/." "$copy" || exit 125
fi
"$@"
status=$?
if [ -n "$collect" ] && [ -f "$collect" ] && [ ! -L "$collect" ]; then
  { printf F; cat -- "$collect"; } > "/proc/self/fd/$fd"
fi
exit $status
"#;

/// A command ready to spawn, with the descriptors it must inherit kept open until then.
pub struct Prepared {
    pub command: tokio::process::Command,
    /// The read end of the collected file's pipe.
    pub collected: Option<OwnedFd>,
    /// The parent's copies of what the child inherits: drop them once it is spawned.
    pub keep: (Vec<OwnedFd>, Option<Joiner>),
}

pub fn command(
    spec: &SandboxSpec,
    host: &Host,
    joiner: Option<Joiner>,
) -> Result<Prepared, SandboxError> {
    let policy = &spec.policy;
    let mut args: Vec<String> = [
        "--unshare-all",
        "--unshare-user",
        "--die-with-parent",
        "--new-session",
    ]
    .map(String::from)
    .to_vec();
    if host.disable_userns {
        args.push("--disable-userns".into());
    }
    if spec.network {
        args.push("--share-net".into());
    }
    let relay = spec
        .relay
        .as_ref()
        .map(|r| r.launch(spec.network))
        .transpose()?;
    let (seed, copy) = mounts(spec, relay.as_ref().map(|r| &r.binds[..]), &mut args);
    let inherited = Inherited::new(spec, host)?;
    args.extend(["--seccomp".to_string(), inherited.seccomp_fd.to_string()]);
    // The root is an unsized tmpfs too: read-only once every mount point on it exists.
    args.extend(["--remount-ro", "/", "--chdir"].map(String::from));
    args.push(spec.chdir.clone());
    args.push("--".into());
    args.extend(["/bin/sh", "-c", WRAPPER, "cocov-sandbox"].map(String::from));
    args.extend([
        seed,
        copy,
        spec.collect.clone().unwrap_or_default(),
        inherited
            .collect_fd
            .map(|fd| fd.to_string())
            .unwrap_or_default(),
    ]);
    if let Some(relay) = relay {
        args.extend(relay.prefix);
    }
    args.push(spec.command.clone());
    args.extend(spec.args.iter().cloned());

    let mut command = tokio::process::Command::new(BWRAP);
    command
        .args(&args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let limits = policy.limits;
    let rlimits_only = !host.cgroup.is_usable();
    let run_as = policy.run_as.owner();
    let cgroup_fds = joiner.as_ref().map(Joiner::fds).unwrap_or_default();
    let inherit = inherited.raw;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls (write, fcntl, setpgid, setrlimit, prctl, setgroups, setgid, setuid); everything
    // it needs was computed before the fork.
    unsafe {
        command.pre_exec(move || {
            // First, while still the daemon's user: the cgroup files belong to it.
            Joiner::join(&cgroup_fds)?;
            for &fd in &inherit {
                // Only this child's copy loses close-on-exec, so bubblewrap gets it and no
                // other process the daemon starts meanwhile does.
                if nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0))?;
            limits.apply(rlimits_only)?;
            nix::sys::prctl::set_no_new_privs()?;
            if let Some((uid, gid)) = run_as {
                nix::unistd::setgroups(&[])?;
                nix::unistd::setgid(nix::unistd::Gid::from_raw(gid))?;
                nix::unistd::setuid(nix::unistd::Uid::from_raw(uid))?;
            }
            Ok(())
        });
    }
    Ok(Prepared {
        command,
        collected: inherited.collected,
        keep: (inherited.keep, joiner),
    })
}

/// The filesystem: what is bound, what is a sized tmpfs, what is read-only. Returns the work
/// copy's seed and destination for the wrapper (empty without one).
fn mounts(spec: &SandboxSpec, extra: Option<&[Bind]>, args: &mut Vec<String>) -> (String, String) {
    let mut add = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
    add(&["--cap-drop", "ALL", "--hostname", "cocov"]);
    add(&["--uid", &SANDBOX_UID.to_string()]);
    add(&["--gid", &SANDBOX_GID.to_string()]);
    match &spec.rootfs {
        Some(rootfs) => image_root(rootfs, &mut add),
        None => {
            add(&["--ro-bind", "/usr", "/usr"]);
            for dir in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
                // Merged-/usr systems: the top-level directories are links into /usr.
                if Path::new("/usr").join(dir).is_dir() {
                    add(&["--symlink", &format!("usr/{dir}"), &format!("/{dir}")]);
                }
            }
        }
    }
    add(&["--proc", "/proc", "--dev", "/dev"]);
    let scratch = spec.policy.scratch_bytes().to_string();
    for dir in ["/tmp", SANDBOX_HOME, "/dev/shm"] {
        add(&["--size", &scratch, "--tmpfs", dir]);
    }
    // bubblewrap's /dev is an unsized tmpfs the program owns: read-only once /dev/shm is in
    // place (device nodes stay writable, they are not files of that filesystem).
    add(&["--remount-ro", "/dev"]);
    if spec.network {
        // Name resolution and TLS roots, only for plugins allowed on the network.
        for path in [
            "/etc/resolv.conf",
            "/etc/hosts",
            "/etc/ssl",
            "/etc/ca-certificates",
        ] {
            match &spec.rootfs {
                None => add(&["--ro-bind-try", path, path]),
                // An image keeps its own TLS roots; name resolution is the host's, where the
                // image has a file to bind it over (its /etc is read-only).
                Some(rootfs) if path.starts_with("/etc/resolv") || path == "/etc/hosts" => {
                    if rootfs.join(&path[1..]).is_file() {
                        add(&["--ro-bind-try", path, path]);
                    }
                }
                Some(_) => {}
            }
        }
    }
    let seed = match &spec.work_copy {
        Some(work) => {
            let size = work.size_bytes(&spec.policy).to_string();
            add(&["--ro-bind", &work.host.display().to_string(), SEED]);
            add(&["--size", &size, "--tmpfs", &work.inside]);
            (SEED.to_string(), work.inside.clone())
        }
        None => (String::new(), String::new()),
    };
    for bind in spec.binds.iter().chain(extra.unwrap_or_default()) {
        let flag = if bind.writable { "--bind" } else { "--ro-bind" };
        add(&[flag, &bind.host.display().to_string(), &bind.inside]);
    }
    seed
}

/// An image's top-level entries bound read-only onto the sandbox's root, except those the
/// sandbox provides itself (so their mount points can be made on the root's tmpfs).
fn image_root(rootfs: &Path, add: &mut impl FnMut(&[&str])) {
    const PROVIDED: [&str; 6] = ["proc", "dev", "sys", "tmp", "work", "run"];
    let Ok(entries) = std::fs::read_dir(rootfs) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if PROVIDED.contains(&name.as_str()) {
            continue;
        }
        let inside = format!("/{name}");
        let host = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_symlink() => {
                if let Ok(target) = std::fs::read_link(&host) {
                    add(&["--symlink", &target.to_string_lossy(), &inside]);
                }
            }
            Ok(kind) if kind.is_dir() || kind.is_file() => {
                add(&["--ro-bind", &host.display().to_string(), &inside]);
            }
            _ => {}
        }
    }
}

/// The descriptors bubblewrap inherits: the seccomp filter's pipe, and the write end of the
/// collected file's pipe.
struct Inherited {
    seccomp_fd: RawFd,
    collect_fd: Option<RawFd>,
    /// Every inherited descriptor, for the child to clear close-on-exec on.
    raw: Vec<RawFd>,
    /// The parent's copies, kept open until the spawn.
    keep: Vec<OwnedFd>,
    collected: Option<OwnedFd>,
}

impl Inherited {
    fn new(spec: &SandboxSpec, host: &Host) -> Result<Inherited, SandboxError> {
        let program = host
            .seccomp
            .as_ref()
            .map_err(|e| SandboxError::Setup(format!("the seccomp filter: {e}")))?;
        let seccomp = pipe_with(program)?;
        let mut inherited = Inherited {
            seccomp_fd: seccomp.as_raw_fd(),
            collect_fd: None,
            raw: vec![seccomp.as_raw_fd()],
            keep: vec![seccomp],
            collected: None,
        };
        if spec.collect.is_some() {
            let (read, write) =
                nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
            // The wrapper opens it through /proc/self/fd (the shell cannot name descriptors
            // above 9), which checks the pipe's owner: give it to the user the sandbox runs as.
            if let Some((uid, gid)) = spec.policy.run_as.owner() {
                nix::unistd::fchown(
                    &write,
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                )
                .map_err(std::io::Error::from)?;
            }
            inherited.collect_fd = Some(write.as_raw_fd());
            inherited.raw.push(write.as_raw_fd());
            inherited.keep.push(write);
            inherited.collected = Some(read);
        }
        Ok(inherited)
    }
}

/// A pipe already holding `bytes` and closed for writing: bubblewrap reads it to the end.
fn pipe_with(bytes: &[u8]) -> Result<OwnedFd, SandboxError> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    // A filter is a few kilobytes at most, well within a pipe's buffer.
    std::fs::File::from(write).write_all(bytes)?;
    Ok(read)
}
