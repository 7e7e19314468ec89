//! `cocov report prepare|submit`: the CI coverage reporter, with the original
//! coverage-reporter's flags and environment (`--token`/`COCOV_REPOSITORY_TOKEN`,
//! `--url`/`COCOV_API_URL`, `--commitish`/`COCOV_COMMIT_SHA`, `--multi`), plus `--file`,
//! `--format` and `--mode`. The work is in [`crate::report`].

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Failure;
use crate::coverage::{Format, Mode, Totals};
use crate::report;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The repository's upload token (crt_…).
    #[arg(
        long,
        env = "COCOV_REPOSITORY_TOKEN",
        global = true,
        hide_env_values = true
    )]
    token: Option<String>,
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Run before the tests: remember the commit and the files as they are, so `submit` picks up
    /// only reports the tests wrote.
    Prepare {
        /// The commit (default: COCOV_COMMIT_SHA, the GitHub pull request head, GITHUB_SHA, git HEAD).
        #[arg(long)]
        commitish: Option<String>,
    },
    /// Find (or take) the coverage reports, show what they hold and upload them.
    Submit {
        /// The cocov API's base URL.
        #[arg(long, env = "COCOV_API_URL")]
        url: Option<String>,
        /// Upload every report found, merged, instead of the first one.
        #[arg(long)]
        multi: bool,
        /// A report to upload (repeatable); no search is made.
        #[arg(long = "file")]
        files: Vec<PathBuf>,
        /// The reports' format (default: recognised from the content).
        #[arg(long)]
        format: Option<String>,
        /// `merge` with coverage other CI jobs sent for the commit (default), or `replace` it.
        #[arg(long)]
        mode: Option<String>,
        #[arg(long)]
        commitish: Option<String>,
    },
}

pub async fn run(args: &ReportArgs) -> Result<(), Failure> {
    let token = args
        .token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            Failure::new("a repository token is required (--token or COCOV_REPOSITORY_TOKEN)")
        })?;
    match &args.command {
        ReportCommand::Prepare { commitish } => {
            let meta = report::prepare(token, commitish.as_deref()).map_err(Failure::new)?;
            println!(
                "prepared commit {} ({} files in {})",
                meta.sha,
                meta.files.len(),
                meta.pwd.display()
            );
            Ok(())
        }
        ReportCommand::Submit {
            url,
            multi,
            files,
            format,
            mode,
            commitish,
        } => {
            let url = url
                .as_deref()
                .filter(|u| !u.trim().is_empty())
                .ok_or_else(|| Failure::new("the API URL is required (--url or COCOV_API_URL)"))?;
            let format = format
                .as_deref()
                .map(str::parse::<Format>)
                .transpose()
                .map_err(Failure::new)?;
            let mode = match mode.as_deref() {
                None => Mode::default(),
                Some(m) => Mode::parse(m)
                    .ok_or_else(|| Failure::new(format!("--mode `{m}`: use merge or replace")))?,
            };
            submit(
                token,
                url,
                *multi,
                files,
                format,
                mode,
                commitish.as_deref(),
            )
            .await
        }
    }
}

async fn submit(
    token: &str,
    url: &str,
    multi: bool,
    files: &[PathBuf],
    format: Option<Format>,
    mode: Mode,
    commitish: Option<&str>,
) -> Result<(), Failure> {
    let meta = report::load_meta(token);
    let root = match &meta {
        Some(m) => m.pwd.clone(),
        None => report::checkout_root().map_err(Failure::new)?,
    };
    let sha = match (commitish, meta.as_ref().map(|m| m.sha.as_str())) {
        (None, Some(sha)) if !sha.is_empty() && std::env::var("COCOV_COMMIT_SHA").is_err() => {
            sha.to_string()
        }
        _ => report::commit_sha(commitish, &root).map_err(Failure::new)?,
    };
    let mut parsed = Vec::new();
    if files.is_empty() {
        let found = report::find_reports(&root, meta.as_ref());
        for path in found {
            match report::parse_file(&path, format) {
                Ok(p) => {
                    parsed.push(p);
                    if !multi {
                        break;
                    }
                }
                Err(e) => eprintln!("skipped {e}"),
            }
        }
        if parsed.is_empty() {
            return Err(Failure::new("could not auto-detect coverage data"));
        }
    } else {
        for path in files {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                std::env::current_dir().map_err(Failure::new)?.join(path)
            };
            parsed.push(report::parse_file(&path, format).map_err(Failure::new)?);
        }
    }
    for p in &parsed {
        let totals = p.report.totals();
        println!(
            "{}: {}, {}",
            p.path.display(),
            p.report.format,
            report::describe(p.report.files.len(), &totals)
        );
    }
    let payload = report::payload(parsed, &root);
    if !payload.unmatched.is_empty() {
        println!(
            "{} report path(s) match no file of {} (the server will try them): {}",
            payload.unmatched.len(),
            root.display(),
            payload.unmatched.join(", ")
        );
    }
    let count = payload.data.len();
    let totals: Totals = payload.totals;
    report::upload(url, token, &sha, payload.data, mode)
        .await
        .map_err(Failure::new)?;
    println!(
        "submitted coverage of commit {sha} ({}): {}",
        mode.as_str(),
        report::describe(count, &totals)
    );
    Ok(())
}
