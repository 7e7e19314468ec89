//! Running one check: its plugin in a sandbox over a private copy of the tree, then its report
//! read into issues. Knows nothing of the database, so `cocov plugin run` uses it as is.

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use crate::config::WorkerConfig;
use crate::issues::NewIssue;
use crate::manifest::CheckSpec;
use crate::plugins::{PluginDefinition, ReportSource, report};
use crate::sandbox::{
    self, Bind, Collected, Ending, Limits, Relay, RunAs, SANDBOX_HOME, SandboxPolicy, SandboxSpec,
    WorkCopy,
};

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
    /// The cache service, when enabled (the relay sets `COCOV_CACHE_SERVICE_URL`).
    pub cache: Option<Relay>,
}

/// Longest error output kept for a check.
const MAX_ERROR_OUTPUT: usize = 64 * 1024;

/// The host user a sandbox runs as (and its files belong to) when the daemon is root.
pub(super) fn sandbox_owner(config: &WorkerConfig) -> Option<(u32, u32)> {
    RunAs::resolve(&config.sandbox_user).owner()
}

/// What a sandbox for `definition` gets under `config`; doctor describes this same value.
pub fn sandbox_policy(config: &WorkerConfig, definition: &PluginDefinition) -> SandboxPolicy {
    let timeout = check_timeout(config, definition);
    SandboxPolicy {
        limits: Limits {
            cpu_seconds: timeout,
            memory_mb: definition.memory_mb.unwrap_or(config.memory_mb),
            file_size_mb: config.max_file_size_mb,
            processes: config.max_processes,
            open_files: 4096,
            cpu_weight: config.cpu_weight,
        },
        scratch_mb: config.scratch_mb,
        run_as: RunAs::resolve(&config.sandbox_user),
    }
}

fn check_timeout(config: &WorkerConfig, definition: &PluginDefinition) -> u64 {
    definition
        .timeout_seconds
        .unwrap_or(config.check_timeout_seconds)
        .max(1)
}

/// Runs `definition` for `spec` in `check_dir` (which holds `src/`, the tree copy the sandbox
/// makes its writable work copy from), returning when the plugin ends, its limits end it, or
/// `cancel` completes.
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
    let policy = sandbox_policy(config, definition);
    let owner = policy.run_as.owner();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let workdir = format!("/work/{token}");
    let output_file = format!("/tmp/{token}");
    // An image brings its own /etc and tools; a definition runs on the host's /usr.
    let (mut binds, tool_paths) = match &definition.image {
        Some(_) => (Vec::new(), Vec::new()),
        None => (host_identity(check_dir)?, config.tool_paths()),
    };
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
    // Only the relay may name the cache; without one the plugin sees no cache (as the original
    // without a cache server), whatever the manifest says.
    env.remove(sandbox::relay::CACHE_URL_VARIABLE);

    let args = definition
        .args
        .iter()
        .map(|a| {
            a.replace("{output_file}", &output_file)
                .replace("{workdir}", &workdir)
        })
        .collect();
    let timeout = check_timeout(config, definition);
    let output_cap = (config.max_output_mb.max(1) * 1024 * 1024) as usize;
    let sandbox_spec = SandboxSpec {
        command: definition.command.clone(),
        args,
        env: env.into_iter().collect(),
        // The original ran images in their own working directory, not the checkout.
        chdir: match &definition.image {
            Some(image) => image.working_dir.clone(),
            None => workdir.clone(),
        },
        rootfs: definition.image.as_ref().map(|i| i.rootfs.clone()),
        binds,
        work_copy: Some(WorkCopy::new(&check_dir.join("src"), workdir.clone())?),
        collect: Some(output_file.clone()),
        network: definition.network,
        relay: run.cache.clone(),
        policy,
        timeout: Duration::from_secs(timeout),
        output_cap,
    };
    let mut outcome = sandbox::run(&sandbox_spec, cancel).await?;
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
    let limits = &sandbox_spec.policy.limits;
    let succeeded =
        matches!(ending, Ending::Exited(code) if definition.success_exit_codes.contains(&code));
    let result = match ending {
        Ending::Canceled => CheckResult::Canceled,
        // The kernel's word on why a run failed beats the symptom the program showed.
        _ if !succeeded && outcome.events.oom_kills > 0 => CheckResult::Errored(with_log(
            format!(
                "{name} used more than {} MiB of memory and was stopped",
                limits.memory_mb
            ),
            &outcome.log(),
        )),
        _ if !succeeded && outcome.events.pids_refused > 0 && ending != Ending::TimedOut => {
            CheckResult::Errored(with_log(
                format!(
                    "{name} tried to run more than {} processes at once and failed",
                    limits.processes
                ),
                &outcome.log(),
            ))
        }
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
                ReportSource::File => collected_report(
                    std::mem::replace(&mut outcome.collected, Collected::Absent),
                    output_cap,
                ),
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

/// `/etc/passwd` and `/etc/group` for a sandbox on the host's `/usr`, with the uid rule of the
/// original images: uid 1000 is `cocov` with its home.
fn host_identity(check_dir: &Path) -> std::io::Result<Vec<Bind>> {
    let etc = check_dir.join("etc");
    std::fs::create_dir_all(&etc)?;
    std::fs::write(
        etc.join("passwd"),
        format!(
            "cocov:x:1000:1000:cocov:{SANDBOX_HOME}:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
        ),
    )?;
    std::fs::write(etc.join("group"), "cocov:x:1000:\nnogroup:x:65534:\n")?;
    Ok(["passwd", "group"]
        .into_iter()
        .map(|name| Bind {
            host: etc.join(name),
            inside: format!("/etc/{name}"),
            writable: false,
        })
        .collect())
}

/// The output file as the sandbox handed it back (a link or a directory there counts as absent).
fn collected_report(collected: Collected, cap: usize) -> Result<Vec<u8>, String> {
    match collected {
        Collected::Bytes(bytes) => Ok(bytes),
        Collected::Absent => Err(
            "the plugin did not create its output file (COCOV_OUTPUT_FILE) as a regular file"
                .into(),
        ),
        Collected::TooLarge => Err(format!(
            "the output file is larger than {} MiB",
            cap / (1024 * 1024)
        )),
    }
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
    super::workspace::copy_tree(dir, &check_dir.join("src"), sandbox_owner(config))?;
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
        cache: None,
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

/// A plugin that only writes an empty report: what `cocov doctor` runs to prove a sandbox starts.
const PROBE: &str = "name = \"cocov/doctor-probe\"\ncommand = \"/bin/sh\"\n\
    args = [\"-c\", ': > \"$COCOV_OUTPUT_FILE\"']\n";

/// `cocov doctor`'s sandbox probe: the policy a check gets and a run of the probe plugin through
/// the very code a check runs (`run_locally`), over an empty directory.
pub fn probe_sandbox(
    config: &WorkerConfig,
) -> (
    SandboxPolicy,
    impl Future<Output = std::io::Result<CheckResult>> + '_,
) {
    let definition: PluginDefinition = toml::from_str(PROBE).expect("the probe definition parses");
    let policy = sandbox_policy(config, &definition);
    let run = async move {
        let empty = tempfile::Builder::new().prefix("cocov-probe-").tempdir()?;
        run_locally(config, &definition, empty.path(), BTreeMap::new()).await
    };
    (policy, run)
}
