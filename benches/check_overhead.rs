//! The platform's overhead per check on a 1,000-file repository: everything cocov adds around
//! the linter itself. Phases, each timed separately over RUNS runs:
//!
//! * fetch + verify + extract: the commit archive from the blob store (filesystem backend),
//!   its SHA-256 checked, unpacked with every safety check ([`Workspace::prepare`]);
//! * copy: the check's private writable copy of the tree;
//! * sandbox + parse: bubblewrap started with the full sandbox, a no-op plugin (it only creates
//!   its output file), its exit collected and the (empty) report read.
//!
//! A shellcheck run over the same tree is timed too, to put the overhead next to a real linter.
//! Needs bubblewrap, git and shellcheck; touches no database (the workspace only uses storage).
//!
//! Run: `cargo bench --bench check_overhead` (release profile).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cocov::checks::workspace::Workspace;
use cocov::checks::{CheckResult, LocalRun, run_check};
use cocov::config::Config;
use cocov::manifest::CheckSpec;
use cocov::plugins::{Catalog, PluginDefinition};

const FILES: usize = 1000;
const RUNS: usize = 20;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository of FILES small shell scripts (about 2 KB each, 40 directories).
fn repository(dir: &Path) -> String {
    git(dir, &["init", "-q", "-b", "main"]);
    for i in 0..FILES {
        let sub = dir.join(format!("pkg{:02}", i % 40));
        std::fs::create_dir_all(&sub).unwrap();
        let mut text = String::from("#!/bin/sh\nset -eu\n");
        for line in 0..60 {
            text.push_str(&format!("echo \"step {line} of file {i}\"\n"));
        }
        std::fs::write(sub.join(format!("script{i}.sh")), text).unwrap();
    }
    std::fs::write(
        dir.join(".cocov.yaml"),
        "version: \"0.1.alpha\"\nchecks:\n  - plugin: cocov/shellcheck:v0.1\n",
    )
    .unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "bench"]);
    git(dir, &["rev-parse", "HEAD"])
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = samples[samples.len() / 2];
    let p95 = samples[(samples.len() * 95 / 100).min(samples.len() - 1)];
    println!(
        "{name:<28} median {:>8.1} ms   p95 {:>8.1} ms   min {:>8.1} ms",
        ms(median),
        ms(p95),
        ms(samples[0])
    );
}

#[tokio::main]
async fn main() {
    let root = tempfile::Builder::new()
        .prefix("cocov-bench-")
        .tempdir()
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let repo = root.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let sha = repository(&repo);

    let mut config = Config::default();
    config.storage.local_path = root.path().join("storage");
    config.worker.work_dir = root.path().join("work");
    let app = cocov::app::App::build(config).await.expect("app");

    // Ingestion's output: the archive and its checksum in the blob store.
    let policy = cocov::git::Policy::from_config(&app.config.git);
    let scratch = cocov::git::Scratch::new(policy, Duration::from_secs(60))
        .await
        .unwrap();
    let url = format!("file://{}", repo.display());
    scratch
        .fetch(&url, &sha, &[], Duration::from_secs(60))
        .await
        .unwrap();
    let archive_path = scratch.scratch_file("a.tar.zst");
    let info = scratch
        .archive(&sha, &archive_path, Duration::from_secs(60))
        .await
        .unwrap();
    cocov::archive::store(app.storage.as_ref(), 1, &sha, &archive_path, &info.sha256)
        .await
        .unwrap();
    println!(
        "{FILES} files, archive {} KiB, {RUNS} runs each\n",
        info.size / 1024
    );

    let noop = PluginDefinition::from_toml(
        "name = \"bench/noop\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", ': > \"$COCOV_OUTPUT_FILE\"']\n",
    )
    .unwrap();
    let catalog = Catalog::built_in();
    let shellcheck = catalog.resolve("cocov/shellcheck").unwrap().clone();
    let secrets = BTreeMap::new();
    let spec = CheckSpec {
        plugin: "bench/noop".into(),
        envs: BTreeMap::new(),
        mounts: Vec::new(),
        line: 0,
    };
    let run = LocalRun {
        repository: "bench",
        sha: &sha,
        job_id: "bench",
        secrets: &secrets,
        cache: None,
    };
    let owner = nix::unistd::geteuid().is_root().then_some((65534, 65534));

    let (mut prepare, mut copy, mut sandbox, mut total, mut lint) =
        (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..RUNS {
        let start = Instant::now();
        let workspace = Workspace::prepare(&app, &format!("run-{i}"), 1, &sha, Some(&info.sha256))
            .await
            .expect("prepare");
        let prepared = start.elapsed();
        let t = Instant::now();
        let dir = workspace.check_dir(0, owner).unwrap();
        let copied = t.elapsed();
        let t = Instant::now();
        let result = run_check(
            &app.config.worker,
            &noop,
            &spec,
            &dir,
            &run,
            std::future::pending(),
        )
        .await;
        let ran = t.elapsed();
        assert!(
            matches!(result, CheckResult::Completed(ref v) if v.is_empty()),
            "{result:?}"
        );
        total.push(start.elapsed());
        prepare.push(prepared);
        copy.push(copied);
        sandbox.push(ran);
        // The real linter, for scale (not part of the overhead).
        let dir = workspace.check_dir(1, owner).unwrap();
        let t = Instant::now();
        let result = run_check(
            &app.config.worker,
            &shellcheck,
            &spec,
            &dir,
            &run,
            std::future::pending(),
        )
        .await;
        lint.push(t.elapsed());
        assert!(matches!(result, CheckResult::Completed(_)), "{result:?}");
        workspace.remove();
    }
    summary("fetch + verify + extract", prepare);
    summary("private copy of the tree", copy);
    summary("sandbox start + parse", sandbox);
    summary("overhead per check (sum)", total);
    summary("shellcheck itself, for scale", lint);
}
