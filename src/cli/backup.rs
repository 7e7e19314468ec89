//! `cocov backup DIR` and `cocov restore DIR`: thin wrappers over [`crate::backup`].

use std::path::PathBuf;

use clap::Args;

use super::{Cli, Failure, load_config};
use crate::backup::{self, RestoreOptions};
use crate::config::{self, Config};

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// A new or empty directory to write the backup into (created with mode 0700).
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// A directory written by `cocov backup`.
    pub dir: PathBuf,
    /// Replace a database that holds data and a blob store that holds blobs, and empty this
    /// installation's Redis keys (queued jobs and caches of the replaced data).
    #[arg(long)]
    pub force: bool,
    /// When the configured secret key differs from the backup's: write the backup's key to
    /// this new file (then point security.cryptographic_key_file at it).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
}

async fn open(
    config: &Config,
) -> Result<(sqlx::PgPool, std::sync::Arc<dyn crate::storage::BlobStore>), Failure> {
    let pool = crate::db::connect(&config.database).map_err(Failure::new)?;
    let store = crate::storage::open(&config.storage)
        .await
        .map_err(|e| Failure::new(format!("blob store: {e}")))?;
    Ok((pool, store))
}

pub async fn run_backup(cli: &Cli, args: &BackupArgs) -> Result<(), Failure> {
    let config = load_config(cli)?;
    let config_file = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    let (pool, store) = open(&config).await?;
    let report = backup::backup(&config, Some(&config_file), &pool, store, &args.dir)
        .await
        .map_err(Failure::new)?;
    println!(
        "backup written to {}: database (schema {}), {} blob(s), key {}, configuration {}",
        args.dir.display(),
        report.manifest.schema_version,
        report.blobs,
        if report.key_included {
            "included"
        } else {
            "none configured"
        },
        if report.config_included {
            "included"
        } else {
            "none (defaults and environment)"
        },
    );
    Ok(())
}

pub async fn run_restore(cli: &Cli, args: &RestoreArgs) -> Result<(), Failure> {
    let config = load_config(cli)?;
    let (pool, store) = open(&config).await?;
    let options = RestoreOptions {
        force: args.force,
        key_file: args.key_file.clone(),
    };
    let kv =
        crate::kv::Kv::connect(&config.redis).map_err(|e| Failure::new(format!("Redis: {e}")))?;
    let report = backup::restore(&config, &pool, store, &kv, &args.dir, &options)
        .await
        .map_err(Failure::new)?;
    println!(
        "restored {} (cocov {}, taken {}): database now at schema {}, {} blob(s)",
        args.dir.display(),
        report.manifest.cocov_version,
        report
            .manifest
            .created_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        report.schema_after,
        report.blobs,
    );
    if let Some(path) = report.key_written {
        println!("the backup's secret key was written to {}", path.display());
    }
    Ok(())
}
