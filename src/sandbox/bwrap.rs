//! The bubblewrap command line for a [`SandboxSpec`].

use std::path::Path;
use std::process::Stdio;

use super::SandboxSpec;

pub const BWRAP: &str = "/usr/bin/bwrap";
/// The uid and gid a plugin runs as inside, as the original's images did.
pub const SANDBOX_UID: u32 = 1000;
pub const SANDBOX_GID: u32 = 1000;
pub const SANDBOX_HOME: &str = "/home/cocov";

pub fn command(spec: &SandboxSpec) -> tokio::process::Command {
    let mut args: Vec<String> = Vec::new();
    let mut add = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
    add(&["--unshare-all", "--die-with-parent", "--new-session"]);
    if spec.network {
        add(&["--share-net"]);
    }
    add(&["--cap-drop", "ALL", "--hostname", "cocov"]);
    add(&["--uid", &SANDBOX_UID.to_string()]);
    add(&["--gid", &SANDBOX_GID.to_string()]);
    add(&["--ro-bind", "/usr", "/usr"]);
    for dir in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        // Merged-/usr systems: the top-level directories are links into /usr.
        if Path::new("/usr").join(dir).is_dir() {
            add(&["--symlink", &format!("usr/{dir}"), &format!("/{dir}")]);
        }
    }
    add(&["--proc", "/proc", "--dev", "/dev"]);
    add(&["--tmpfs", SANDBOX_HOME]);
    if spec.network {
        // Name resolution and TLS roots, only for plugins allowed on the network.
        for path in [
            "/etc/resolv.conf",
            "/etc/hosts",
            "/etc/ssl",
            "/etc/ca-certificates",
        ] {
            add(&["--ro-bind-try", path, path]);
        }
    }
    for bind in &spec.binds {
        let flag = if bind.writable { "--bind" } else { "--ro-bind" };
        args.push(flag.into());
        args.push(bind.host.display().to_string());
        args.push(bind.inside.clone());
    }
    args.push("--chdir".into());
    args.push(spec.chdir.clone());
    args.push("--".into());
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
    let limits = spec.limits;
    let run_as = spec.run_as;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls (setpgid, setrlimit, setgroups, setgid, setuid); everything it needs was computed
    // before the fork.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0))?;
            limits.apply()?;
            if let Some((uid, gid)) = run_as {
                nix::unistd::setgroups(&[])?;
                nix::unistd::setgid(nix::unistd::Gid::from_raw(gid))?;
                nix::unistd::setuid(nix::unistd::Uid::from_raw(uid))?;
            }
            Ok(())
        });
    }
    command
}
