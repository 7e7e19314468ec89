//! The database half of a backup: `pg_dump`/`pg_restore` from Debian's postgresql-client, run
//! against the configured database. The password goes through `PGPASSWORD`, never the command
//! line (where `ps` would show it).

use std::path::Path;
use std::process::Stdio;

use sqlx::PgPool;
use tokio::process::Command;

use super::BackupError;
use crate::config::DatabaseConfig;

/// Tables whose rows mean "this database is in use": restoring over them loses data, so
/// restore refuses them without `--force`. (Bookkeeping tables a daemon fills on its own are
/// not listed: a database a daemon merely started on is still a fine target.)
const IN_USE_TABLES: &[&str] = &["repositories", "users", "service_tokens", "secrets"];

/// The URL libpq gets, and the password kept apart from it.
fn libpq_target(config: &DatabaseConfig) -> Result<(String, Option<String>), BackupError> {
    let mut url = url::Url::parse(&config.effective_url())
        .map_err(|e| BackupError::Invalid(format!("the database URL does not parse: {e}")))?;
    let password = url.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    let _ = url.set_password(None);
    Ok((url.to_string(), password))
}

async fn run_tool(
    program: &str,
    args: &[&std::ffi::OsStr],
    config: &DatabaseConfig,
) -> Result<(), BackupError> {
    let (url, password) = libpq_target(config)?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .arg("--dbname")
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(password) = password {
        cmd.env("PGPASSWORD", password);
    }
    let output = cmd.output().await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            BackupError::Tool(format!(
                "{program} is not installed: install PostgreSQL's client tools \
                 (Debian: apt-get install postgresql-client)"
            ))
        } else {
            BackupError::io(format!("run {program}"), e)
        }
    })?;
    if !output.status.success() {
        return Err(BackupError::Tool(format!(
            "{program} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// Dumps the whole database to `file` in pg_dump's custom format. pg_dump reads everything in
/// one snapshot; `--serializable-deferrable` waits for a snapshot no concurrent transaction can
/// still make anomalous, which is what a backup wants.
pub async fn dump(config: &DatabaseConfig, file: &Path) -> Result<(), BackupError> {
    run_tool(
        "pg_dump",
        &[
            "--format=custom".as_ref(),
            "--no-owner".as_ref(),
            "--no-privileges".as_ref(),
            "--serializable-deferrable".as_ref(),
            "--file".as_ref(),
            file.as_os_str(),
        ],
        config,
    )
    .await
}

/// Restores `file` in one transaction: objects the dump holds are dropped first when present,
/// so a migrated but empty database (or a forced target) takes the dump as well as an empty one.
pub async fn restore(config: &DatabaseConfig, file: &Path) -> Result<(), BackupError> {
    run_tool(
        "pg_restore",
        &[
            "--no-owner".as_ref(),
            "--no-privileges".as_ref(),
            "--clean".as_ref(),
            "--if-exists".as_ref(),
            "--single-transaction".as_ref(),
            "--exit-on-error".as_ref(),
            file.as_os_str(),
        ],
        config,
    )
    .await
}

/// The in-use tables that hold rows (empty: the database is a fine restore target).
pub async fn tables_in_use(pool: &PgPool) -> Result<Vec<&'static str>, BackupError> {
    let mut used = Vec::new();
    for table in IN_USE_TABLES {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(pool)
            .await?;
        // The names are the constants above, never input.
        if exists
            && sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(format!(
                "SELECT EXISTS (SELECT 1 FROM {table})"
            )))
            .fetch_one(pool)
            .await?
        {
            used.push(*table);
        }
    }
    Ok(used)
}
