//! The sandbox is a boundary (issue 11, item 5): plugins that attack it from inside, run by the
//! real daemon's worker in real bubblewrap sandboxes, are stopped by the kernel (cgroup memory
//! and process limits, the seccomp filter, sized tmpfs) and run as the dedicated sandbox user;
//! and `cocov doctor` reports the limits a check really gets.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TestApp;
use common::origin::{Origin, announce, announce_main, register};
use common::requests::{errored_check_output, get};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SANDBOX_USER: &str = "cocov-sandbox";

/// The dedicated user exists on a host where the package or `cocov setup` ran; make it so here
/// the way `cocov setup` does.
fn ensure_sandbox_user() -> u32 {
    if let Ok(Some(user)) = nix::unistd::User::from_name(SANDBOX_USER) {
        return user.uid.as_raw();
    }
    let status = std::process::Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home"])
        .args(["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
        .arg(SANDBOX_USER)
        .status()
        .unwrap();
    // Another test binary may have created it meanwhile.
    let user = nix::unistd::User::from_name(SANDBOX_USER).unwrap();
    assert!(user.is_some(), "useradd {SANDBOX_USER}: {status}");
    user.unwrap().uid.as_raw()
}

/// A plugin definition whose command is a shell script.
fn plugin(name: &str, script: &str, extra: &str) -> String {
    format!(
        "name = \"evil/{name}\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", '''{script}''']\n{extra}\n"
    )
}

/// A daemon whose plugin directory holds `plugins` (file name → TOML).
async fn start(
    plugins: &[(String, String)],
    adjust: impl FnOnce(&mut cocov::config::Config),
) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in plugins {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let plugins_dir = dir.path().to_path_buf();
    let t = TestApp::start_with(move |c| {
        c.worker.plugins_dir = plugins_dir;
        adjust(c);
    })
    .await;
    (t, dir)
}

/// Registers `name` with a commit whose manifest runs `plugins`; returns the sha and an admin
/// token once its check set has finished, with the checks view.
async fn run_plugins(t: &TestApp, name: &str, plugins: &[&str]) -> (String, String, Value) {
    let origin = Origin::new();
    let manifest = plugins
        .iter()
        .fold("version: \"0.1.alpha\"\nchecks:\n".to_string(), |m, p| {
            m + &format!("  - plugin: evil/{p}\n")
        });
    let sha = origin.commit(&[(".cocov.yaml", &manifest), ("x.sh", "true\n")], "c");
    let token = register(t, name, &origin.url()).await.1;
    announce_main(t, name, &token, &sha).await;
    let admin = t
        .user_token(&format!("admin-{}", uuid::Uuid::new_v4().simple()), true)
        .await;
    let path = format!("/v1/repositories/{name}/commits/{sha}/checks");
    let view = common::eventually("the check set to finish", Duration::from_secs(180), || {
        let (t, admin, path) = (t, &admin, &path);
        async move {
            let (status, body) = get(t, Some(admin), path).await;
            let done = status == StatusCode::OK
                && matches!(body["status"].as_str(), Some("completed" | "errored"));
            done.then_some(body)
        }
    })
    .await;
    (sha, admin, view)
}

/// Python with ctypes: the raw system call and the errno name it ended with.
const SYSCALLS: &str = r#"/usr/bin/python3 -c '
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
arm = os.uname().machine == "aarch64"
def call(name, result):
    print(name, "OK" if result != -1 else errno.errorcode[ctypes.get_errno()])
call("unshare-user", libc.unshare(0x10000000))
call("ptrace", libc.ptrace(0, 0, None, None))
call("keyctl", libc.syscall(219 if arm else 250, 0, -3, 0))
call("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
call("personality", libc.personality(0x0040000))
'; exit 3"#;

#[tokio::test(flavor = "multi_thread")]
async fn plugins_attacking_the_sandbox_are_stopped_by_the_kernel() {
    ensure_sandbox_user();
    let plugins = vec![
        (
            "hog.toml".to_string(),
            plugin(
                "hog",
                "/usr/bin/python3 -c 'b = b\"x\" * (400 << 20); print(\"ALLOCATED\")'",
                "memory_mb = 64",
            ),
        ),
        (
            "forks.toml".to_string(),
            plugin(
                "forks",
                "n=0; for i in $(seq 200); do sleep 20 & n=$((n+1)); done; echo STARTED $n; exit 5",
                "timeout_seconds = 60",
            ),
        ),
        (
            "syscalls.toml".to_string(),
            plugin("syscalls", SYSCALLS, ""),
        ),
        (
            "disk.toml".to_string(),
            plugin(
                "disk",
                "for d in \"$COCOV_WORKDIR\" /tmp \"$HOME\" /dev/shm / /dev; do i=0; \
                 while [ $i -lt 100 ] && head -c 1048576 /dev/zero > \"$d/f$i\"; do i=$((i+1)); done; \
                 echo \"WROTE $d $i\"; done; exit 3",
                "",
            ),
        ),
    ];
    let (t, _dir) = start(&plugins, |c| {
        c.worker.max_processes = 32;
        c.worker.scratch_mb = 16;
        c.queue.concurrency = 2;
    })
    .await;
    let names = ["hog", "forks", "syscalls", "disk"];
    let (sha, admin, view) = run_plugins(&t, "attacker", &names).await;
    let output = |p: &'static str| {
        let (t, admin, sha, view) = (&t, &admin, &sha, &view);
        async move { errored_check_output(t, admin, "attacker", sha, view, &format!("evil/{p}")).await }
    };

    // (a) Memory far beyond the limit: the memory cgroup kills it, and the check says why.
    let hog = output("hog").await;
    assert!(
        hog.contains("evil/hog used more than 64 MiB of memory and was stopped")
            && !hog.contains("ALLOCATED"),
        "{hog}"
    );
    // (b) A burst of processes: pids.max refuses the forks beyond 32.
    let forks = output("forks").await;
    assert!(
        forks.contains("evil/forks tried to run more than 32 processes at once")
            && !forks.contains("STARTED 200"),
        "{forks}"
    );
    // (c, d) New user namespaces, tracing, keyrings, mounts and personality changes: EPERM
    // from the seccomp filter (without it: unshare ENOSPC from --disable-userns, ptrace and
    // keyctl OK).
    let calls = output("syscalls").await;
    for call in ["unshare-user", "ptrace", "keyctl", "mount", "personality"] {
        assert!(calls.contains(&format!("{call} EPERM")), "{call}: {calls}");
    }
    // (e) Writing beyond the work copy's and the scratch tmpfs' room fails: 16 MiB each (the
    // work copy's tree is a few bytes); the root and /dev (tmpfs bubblewrap makes) take nothing.
    let disk = output("disk").await;
    let wrote = |dir: &str| -> u32 {
        disk.lines()
            .find_map(|l| l.strip_prefix(&format!("WROTE {dir} ")))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count for {dir}: {disk}"))
    };
    let workdir = disk
        .lines()
        .find_map(|l| l.strip_prefix("WROTE /work/")?.split(' ').next())
        .map(|token| format!("/work/{token}"))
        .unwrap_or_else(|| panic!("no work copy count: {disk}"));
    for dir in [workdir.as_str(), "/tmp", "/home/cocov", "/dev/shm"] {
        assert!((8..=16).contains(&wrote(dir)), "{dir}: {disk}");
    }
    for dir in ["/", "/dev"] {
        assert_eq!(wrote(dir), 0, "{dir}: {disk}");
    }
    assert!(disk.contains("No space left on device"), "{disk}");
    assert!(disk.contains("Read-only file system"), "{disk}");
    t.shutdown().await;
}

/// `cocov-checks` below this process's group in a cgroup v1 hierarchy (this test's host).
fn checks_parent(controller: &str) -> PathBuf {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = own
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
            names.split(',').any(|n| n == controller).then_some(path)
        })
        .unwrap_or_else(|| panic!("no cgroup v1 {controller} hierarchy on this host"));
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(path.trim_start_matches('/'))
        .join("cocov-checks")
}

/// The checks' groups in the memory hierarchy.
fn check_groups() -> Vec<PathBuf> {
    std::fs::read_dir(checks_parent("memory"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .unwrap()
                            .to_string_lossy()
                            .starts_with("check-")
                })
                .collect()
        })
        .unwrap_or_default()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Doctor's limits are the check's, and (f) the check runs as the dedicated user on the host.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_reports_the_limits_a_check_gets_and_it_runs_as_the_sandbox_user() {
    let uid = ensure_sandbox_user();
    let marker = format!("cocov-limits-{}", uuid::Uuid::new_v4().simple());
    let plugins = vec![(
        "limits.toml".to_string(),
        plugin(
            "limits",
            &format!(": {marker}; sleep 8; : > \"$COCOV_OUTPUT_FILE\""),
            "",
        ),
    )];
    let adjust = |c: &mut cocov::config::Config| {
        c.worker.memory_mb = 96;
        c.worker.max_processes = 48;
        c.worker.cpu_weight = 50;
        c.worker.scratch_mb = 24;
    };
    let (t, _dir) = start(&plugins, adjust).await;

    // What doctor says, from a configuration file with the same [worker] settings.
    let config_dir = tempfile::tempdir().unwrap();
    let config_file = config_dir.path().join("cocov.toml");
    std::fs::write(&config_file, toml::to_string(&t.app().config).unwrap()).unwrap();
    let out = common::cocov_command()
        .arg("--config")
        .arg(&config_file)
        .arg("doctor")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in [
        "ok   bubblewrap sandbox starts as cocov-sandbox",
        "ok   sandbox limits: cgroup v1 ",
        ": memory 96 MiB, 48 processes, cpu weight 50",
        "ok   sandbox seccomp filter on",
        "ok   sandbox nested user namespaces disabled",
        "ok   sandbox tmpfs: /tmp and home 24 MiB each, work copy its tree + 24 MiB",
        "ok   sandbox runs as cocov-sandbox (uid ",
    ] {
        assert!(said.contains(line), "no `{line}` in:\n{said}");
    }

    // What a check gets: its cgroup, read from the host while it runs.
    let origin = Origin::new();
    let manifest = "version: \"0.1.alpha\"\nchecks:\n  - plugin: evil/limits\n";
    let sha = origin.commit(&[(".cocov.yaml", manifest)], "c");
    let token = register(&t, "limited", &origin.url()).await.1;
    let body = json!({"sha": sha, "branch": "main"});
    let (status, _) = announce(&t, "limited", &format!("token {token}"), body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let group = common::eventually("the check's cgroup", Duration::from_secs(60), || {
        let marker = marker.clone();
        async move {
            check_groups().into_iter().find(|g| {
                read(&g.join("cgroup.procs")).lines().any(|pid| {
                    read(&Path::new("/proc").join(pid).join("cmdline")).contains(&marker)
                })
            })
        }
    })
    .await;
    let name = group.file_name().unwrap();
    let memory = read(&group.join("memory.limit_in_bytes"));
    let pids = read(&checks_parent("pids").join(name).join("pids.max"));
    let shares = read(&checks_parent("cpu").join(name).join("cpu.shares"));
    assert_eq!(
        (memory.as_str(), pids.as_str(), shares.as_str()),
        ((96u64 << 20).to_string().as_str(), "48", "512"),
        "{name:?}: doctor said\n{said}"
    );
    // Everything in the group, bubblewrap included, runs as the dedicated user: not root, not
    // the shared nobody.
    let procs = read(&group.join("cgroup.procs"));
    assert!(!procs.is_empty());
    for pid in procs.lines() {
        let status = read(&Path::new("/proc").join(pid).join("status"));
        let uids: Vec<&str> = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        assert!(
            uids.is_empty() || uids.iter().all(|u| *u == uid.to_string()),
            "pid {pid}: {status}"
        );
    }
    // Once the check has ended its group is gone.
    common::eventually("the check's cgroup to go", Duration::from_secs(60), || {
        let gone = !group.exists();
        async move { gone.then_some(()) }
    })
    .await;
    t.shutdown().await;
}
