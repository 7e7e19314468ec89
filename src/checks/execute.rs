//! Running one check: its plugin in a sandbox over a private copy of the tree, then its report
//! read into issues. Knows nothing of the database, so `cocov plugin run` uses it as is.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use crate::config::WorkerConfig;
use crate::issues::NewIssue;
use crate::manifest::CheckSpec;
use crate::plugins::{PluginDefinition, ReportSource, report};
use crate::sandbox::{self, Bind, Ending, Limits, SANDBOX_HOME, SandboxSpec};

/// How a check ended.
#[derive(Debug)]
pub enum CheckResult {
    Completed(Vec<NewIssue>),
    /// The reason, shown to users as the check's error output.
    Errored(String),
    Canceled,
}

/// What the plugin is told about the commit.
pub struct LocalRun<'a> {
    pub repository: &'a str,
    pub sha: &'a str,
    pub job_id: &'a str,
    /// Secret name → plaintext, for the spec's mounts.
    pub secrets: &'a BTreeMap<String, Vec<u8>>,
}

/// Longest error output kept for a check.
const MAX_ERROR_OUTPUT: usize = 64 * 1024;

/// The host user a sandbox runs as when the daemon is root: `nobody`, never root.
pub(super) fn sandbox_owner() -> Option<(u32, u32)> {
    nix::unistd::geteuid().is_root().then_some((65534, 65534))
}

/// Runs `definition` for `spec` in `check_dir` (which holds `src/`, the tree copy, and
/// `tmp/`), returning when the plugin ends, its limits end it, or `cancel` completes.
pub async fn run_check(
    config: &WorkerConfig,
    definition: &PluginDefinition,
    spec: &CheckSpec,
    check_dir: &Path,
    run: &LocalRun<'_>,
    cancel: impl Future<Output = ()>,
) -> CheckResult {
    match prepare_and_run(config, definition, spec, check_dir, run, cancel).await {
        Ok(result) => result,
        Err(e) => CheckResult::Errored(format!(
            "Failed initializing the sandbox for {}: {e}",
            definition.name
        )),
    }
}

async fn prepare_and_run(
    config: &WorkerConfig,
    definition: &PluginDefinition,
    spec: &CheckSpec,
    check_dir: &Path,
    run: &LocalRun<'_>,
    cancel: impl Future<Output = ()>,
) -> Result<CheckResult, sandbox::SandboxError> {
    let owner = sandbox_owner();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let workdir = format!("/work/{token}");
    let output_file = format!("/tmp/{token}");
    let etc = check_dir.join("etc");
    std::fs::create_dir_all(&etc)?;
    // The uid rule of the original images: uid 1000 is `cocov` with its home.
    std::fs::write(
        etc.join("passwd"),
        format!(
            "cocov:x:1000:1000:cocov:{SANDBOX_HOME}:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
        ),
    )?;
    std::fs::write(etc.join("group"), "cocov:x:1000:\nnogroup:x:65534:\n")?;
    let mut binds = vec![
        Bind {
            host: check_dir.join("src"),
            inside: workdir.clone(),
            writable: true,
        },
        Bind {
            host: check_dir.join("tmp"),
            inside: "/tmp".into(),
            writable: true,
        },
        Bind {
            host: etc.join("passwd"),
            inside: "/etc/passwd".into(),
            writable: false,
        },
        Bind {
            host: etc.join("group"),
            inside: "/etc/group".into(),
            writable: false,
        },
    ];
    let tool_paths = config.tool_paths();
    for path in &tool_paths {
        binds.push(Bind {
            host: path.clone(),
            inside: path.display().to_string(),
            writable: false,
        });
    }
    // Secrets: one file each, readable by the plugin only, bound at its destination.
    let secrets_dir = check_dir.join("secrets");
    std::fs::create_dir_all(&secrets_dir)?;
    for (i, mount) in spec.mounts.iter().enumerate() {
        let name = mount.source.secret_name();
        let Some(value) = run.secrets.get(name) else {
            return Ok(CheckResult::Errored(format!("unknown secret `{name}`")));
        };
        let file = secrets_dir.join(i.to_string());
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, value))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(&file, Some(uid), Some(gid))?;
        }
        let inside = match mount.destination.strip_prefix("~/") {
            Some(rest) => format!("{SANDBOX_HOME}/{rest}"),
            None => mount.destination.clone(),
        };
        binds.push(Bind {
            host: file,
            inside,
            writable: false,
        });
    }

    let mut path = tool_paths
        .iter()
        .flat_map(|p| [p.join("bin").display().to_string(), p.display().to_string()])
        .collect::<Vec<_>>();
    path.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(String::from));
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("PATH".into(), path.join(":"));
    env.insert("HOME".into(), SANDBOX_HOME.into());
    env.insert("LANG".into(), "C.UTF-8".into());
    env.extend(definition.env.clone());
    env.extend(spec.envs.clone());
    // The contract's variables win over anything the manifest sets.
    env.insert("COCOV_WORKDIR".into(), workdir.clone());
    env.insert("COCOV_OUTPUT_FILE".into(), output_file.clone());
    env.insert("COCOV_REPO_NAME".into(), run.repository.into());
    env.insert("COCOV_COMMIT_SHA".into(), run.sha.into());
    env.insert("COCOV_JOB_IDENTIFIER".into(), run.job_id.into());

    let args = definition
        .args
        .iter()
        .map(|a| {
            a.replace("{output_file}", &output_file)
                .replace("{workdir}", &workdir)
        })
        .collect();
    let timeout = definition
        .timeout_seconds
        .unwrap_or(config.check_timeout_seconds)
        .max(1);
    let output_cap = (config.max_output_mb.max(1) * 1024 * 1024) as usize;
    let sandbox_spec = SandboxSpec {
        command: definition.command.clone(),
        args,
        env: env.into_iter().collect(),
        chdir: workdir.clone(),
        binds,
        network: definition.network,
        limits: Limits {
            cpu_seconds: timeout,
            memory_mb: definition.memory_mb.unwrap_or(config.memory_mb),
            file_size_mb: config.max_file_size_mb,
            processes: config.max_processes,
            open_files: 4096,
        },
        timeout: Duration::from_secs(timeout),
        output_cap,
        run_as: owner,
    };
    let outcome = sandbox::run(&sandbox_spec, cancel).await?;
    tracing::debug!(plugin = %definition.name, ending = ?outcome.ending, elapsed = ?outcome.elapsed, "plugin ended");
    let name = &definition.name;
    // bubblewrap reports a plugin killed by signal N as exit status 128 + N.
    let ending = match outcome.ending {
        Ending::Exited(code)
            if (129..=128 + 64).contains(&code)
                && !definition.success_exit_codes.contains(&code) =>
        {
            Ending::Signaled(code - 128)
        }
        other => other,
    };
    let result = match ending {
        Ending::Canceled => CheckResult::Canceled,
        Ending::TimedOut => CheckResult::Errored(with_log(
            format!("{name} did not finish within {timeout} s and was stopped"),
            &outcome.log(),
        )),
        Ending::OutputTooLarge => CheckResult::Errored(with_log(
            format!(
                "{name} printed more than {} MiB and was stopped",
                config.max_output_mb
            ),
            &outcome.log(),
        )),
        Ending::Signaled(signal) => CheckResult::Errored(with_log(
            format!("{name} was killed by {}", describe_signal(signal, config)),
            &outcome.log(),
        )),
        Ending::Exited(code) if definition.success_exit_codes.contains(&code) => {
            let report = match definition.report_source() {
                ReportSource::Stdout => Ok(outcome.stdout.clone()),
                ReportSource::File => {
                    read_output_file(&check_dir.join("tmp").join(&token), output_cap)
                }
            };
            match report {
                Ok(bytes) => match report::read(definition, &bytes, &workdir) {
                    Ok(issues) => CheckResult::Completed(issues),
                    Err(e) => CheckResult::Errored(with_log(
                        format!("Failed parsing output for {name}: {e}"),
                        &outcome.log(),
                    )),
                },
                Err(why) => CheckResult::Errored(with_log(
                    format!("Failed reading output data for {name}: {why}"),
                    &outcome.log(),
                )),
            }
        }
        Ending::Exited(code) => {
            let log = outcome.log();
            if log.trim().is_empty() {
                CheckResult::Errored(format!(
                    "{name} exited with status {code} and printed nothing"
                ))
            } else {
                CheckResult::Errored(truncate(log))
            }
        }
    };
    Ok(result)
}

/// The output file, opened without following links (a plugin could leave a link to a host
/// file there) and read up to the cap.
fn read_output_file(path: &Path, cap: usize) -> Result<Vec<u8>, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "the plugin did not create its output file (COCOV_OUTPUT_FILE)".to_string()
            }
            _ if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                "the output file is a symbolic link".to_string()
            }
            _ => e.to_string(),
        })?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("the output path is not a regular file".into());
    }
    let mut bytes = Vec::new();
    file.take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > cap {
        return Err(format!(
            "the output file is larger than {} MiB",
            cap / (1024 * 1024)
        ));
    }
    Ok(bytes)
}

fn describe_signal(signal: i32, config: &WorkerConfig) -> String {
    match nix::sys::signal::Signal::try_from(signal) {
        Ok(nix::sys::signal::Signal::SIGXFSZ) => format!(
            "SIGXFSZ: it wrote a file larger than {} MiB",
            config.max_file_size_mb
        ),
        Ok(nix::sys::signal::Signal::SIGXCPU) => "SIGXCPU: it used up its CPU time".into(),
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {signal}"),
    }
}

fn with_log(reason: String, log: &str) -> String {
    if log.trim().is_empty() {
        reason
    } else {
        truncate(format!("{reason}\n\n{log}"))
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_ERROR_OUTPUT {
        let mut end = MAX_ERROR_OUTPUT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n[output truncated]");
    }
    text
}

/// `cocov plugin run`: one plugin over a local directory, in the same sandbox as a real check.
pub async fn run_locally(
    config: &WorkerConfig,
    definition: &PluginDefinition,
    dir: &Path,
    envs: BTreeMap<String, String>,
) -> std::io::Result<CheckResult> {
    let scratch = tempfile::Builder::new().prefix("cocov-plugin-").tempdir()?;
    let check_dir = scratch.path().to_path_buf();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&check_dir, std::fs::Permissions::from_mode(0o711))?;
    let owner = sandbox_owner();
    super::workspace::copy_tree(dir, &check_dir.join("src"), owner)?;
    std::fs::create_dir(check_dir.join("tmp"))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(check_dir.join("tmp"), Some(uid), Some(gid))?;
    }
    let spec = CheckSpec {
        plugin: definition.name.clone(),
        envs,
        mounts: Vec::new(),
        line: 0,
    };
    let secrets = BTreeMap::new();
    let run = LocalRun {
        repository: &dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha: "0000000000000000000000000000000000000000",
        job_id: &uuid::Uuid::new_v4().to_string(),
        secrets: &secrets,
    };
    let result = run_check(
        config,
        definition,
        &spec,
        &check_dir,
        &run,
        std::future::pending(),
    )
    .await;
    let _ = super::workspace::remove_tree(&check_dir);
    Ok(result)
}
