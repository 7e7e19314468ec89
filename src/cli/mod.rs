//! Command-line interface. Each subcommand is a thin layer over the library; errors are printed
//! as one clear line and mapped to exit statuses (2 for configuration problems, 1 otherwise).

mod admin;
mod admin_secret;
mod admin_user;
mod backup;
mod cache;
mod doctor;
mod hook;
mod plugin;
mod plugin_images;
mod repo;
mod repo_member;
mod report;
mod rotate_key;
mod setup;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};

#[derive(Parser, Debug)]
#[command(name = "cocov", version, about = "Self-hosted code-quality appliance")]
pub struct Cli {
    /// Configuration file (default /etc/cocov/cocov.toml; a missing default file means defaults).
    #[arg(long, global = true, env = "COCOV_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon with the roles this host has (api, worker, badger).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Administration: users, service tokens, jobs.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Repositories registered by git URL (standalone mode).
    Repo {
        #[command(subcommand)]
        command: repo::RepoCommand,
    },
    /// Announce pushes from any git server (post-receive hook).
    Hook {
        #[command(subcommand)]
        command: hook::HookCommand,
    },
    /// Plugins: list the known ones, or run one over a local directory in the sandbox.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// The CI coverage reporter: `prepare` before the tests, `submit` after them.
    Report(report::ReportArgs),
    /// Print the version and the database schema version this binary expects.
    Version,
    /// First run (as root): create the database role and database, write them into the
    /// configuration, migrate, create the first admin. Re-running changes nothing.
    Setup(setup::SetupArgs),
    /// Check configuration, PostgreSQL, Redis, storage, GitHub, the sandbox and free disk.
    Doctor,
    /// Write a backup (database dump, every blob, the secret key, the configuration file and a
    /// checksum manifest) into a new or empty directory.
    Backup(backup::BackupArgs),
    /// Restore a backup onto an empty database and blob store (verifies its checksums first).
    Restore(backup::RestoreArgs),
    /// The cache plugins share: list a repository's artifacts and sizes, purge, evict.
    Cache {
        #[command(subcommand)]
        command: cache::CacheCommand,
    },
    /// Inside a check's sandbox only: serve the cache on loopback and run the plugin (started by
    /// the sandbox itself; see `sandbox::relay`).
    #[command(name = "__cache-relay", hide = true)]
    CacheRelay {
        port: u16,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate the configuration and print it (secrets masked).
    Check,
}

/// A failure with the exit status it maps to.
pub struct Failure {
    pub status: u8,
    pub message: String,
}

impl Failure {
    pub fn new(message: impl std::fmt::Display) -> Failure {
        Failure {
            status: 1,
            message: message.to_string(),
        }
    }
}

impl From<config::ConfigError> for Failure {
    fn from(e: config::ConfigError) -> Failure {
        Failure {
            status: 2,
            message: format!("invalid configuration: {e}"),
        }
    }
}

pub fn load_config(cli: &Cli) -> Result<Config, Failure> {
    Ok(config::load(cli.config.as_deref())?)
}

pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.status)
        }
    }
}

async fn dispatch(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Version => {
            println!("cocov {}", env!("CARGO_PKG_VERSION"));
            println!("database schema {}", crate::db::binary_schema_version());
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let config = load_config(cli)?;
            let source = cli
                .config
                .clone()
                .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
            println!(
                "# configuration is valid ({} + COCOV_* environment)",
                source.display()
            );
            print!("{}", config::render_masked(&config));
            Ok(())
        }
        Command::Migrate => {
            let config = load_config(cli)?;
            let report = crate::db::migrate(&config.database)
                .await
                .map_err(Failure::new)?;
            println!(
                "database at schema {} ({} migration(s) applied, was {})",
                report.after,
                report.applied,
                report
                    .before
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "empty".into())
            );
            Ok(())
        }
        Command::Serve => {
            let config = load_config(cli)?;
            crate::daemon::run(config).await.map_err(Failure::new)
        }
        Command::Admin { command } => admin::run(cli, command).await,
        Command::Repo { command } => repo::run(cli, command).await,
        Command::Hook { command } => hook::run(command).await,
        Command::Plugin { command } => plugin::run(cli, command).await,
        Command::Report(args) => report::run(args).await,
        Command::Setup(args) => setup::run(cli, args).await,
        Command::Doctor => doctor::run(cli).await,
        Command::Backup(args) => backup::run_backup(cli, args).await,
        Command::Restore(args) => backup::run_restore(cli, args).await,
        Command::Cache { command } => cache::run(cli, command).await,
        // main() runs it before any runtime starts.
        Command::CacheRelay { .. } => Err(Failure::new("the cache relay runs inside a sandbox")),
    }
}
