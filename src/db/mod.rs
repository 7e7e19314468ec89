//! PostgreSQL: the connection pool and the embedded schema migrations.
//!
//! Migrations are applied under a session-level advisory lock, so hosts that start together never
//! migrate at once; a database migrated by a newer binary is refused instead of being used.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::config::DatabaseConfig;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Advisory lock key held while migrating ("cocov" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x63_6f63_6f76;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL: {0}")]
    BadUrl(sqlx::Error),
    #[error(
        "the database schema is at version {database}, newer than this cocov binary knows \
         (up to {binary}); it was migrated by a newer cocov: upgrade this host's cocov package"
    )]
    SchemaTooNew { database: i64, binary: i64 },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("PostgreSQL: {0}")]
    Sql(#[from] sqlx::Error),
}

/// A pool that connects lazily: the daemon starts while PostgreSQL is down and the pool
/// reconnects by itself when it returns.
pub fn connect(config: &DatabaseConfig) -> Result<PgPool, DbError> {
    let options: PgConnectOptions = config.effective_url().parse().map_err(DbError::BadUrl)?;
    let options = options.application_name("cocov");
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(config.connect_timeout_seconds))
        .connect_lazy_with(options))
}

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub before: Option<i64>,
    pub after: i64,
    pub applied: usize,
}

/// The newest migration version embedded in this binary.
pub fn binary_schema_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Applies pending migrations under the advisory lock; refuses a database that is newer.
pub async fn migrate(config: &DatabaseConfig) -> Result<MigrationReport, DbError> {
    let options: PgConnectOptions = config.effective_url().parse().map_err(DbError::BadUrl)?;
    // The migrator's `CREATE TABLE IF NOT EXISTS` notices are not news on every start.
    let options = options.options([("client_min_messages", "warning")]);
    let mut conn = PgConnection::connect_with(&options).await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .await?;
    let result = migrate_locked(&mut conn).await;
    // Closing the session releases the lock too; unlock explicitly to be prompt.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    result
}

async fn migrate_locked(conn: &mut PgConnection) -> Result<MigrationReport, DbError> {
    let before = applied_version(conn).await?;
    let binary = binary_schema_version();
    if let Some(database) = before
        && database > binary
    {
        return Err(DbError::SchemaTooNew { database, binary });
    }
    let applied_before = applied_count(conn).await?;
    MIGRATOR.run_direct(None, conn, false).await?;
    let applied_after = applied_count(conn).await?;
    Ok(MigrationReport {
        before,
        after: binary,
        applied: applied_after - applied_before,
    })
}

/// Refuses to run against a database migrated by a newer binary (checked by every role).
pub async fn check_schema(pool: &PgPool) -> Result<Option<i64>, DbError> {
    let mut conn = pool.acquire().await?;
    let version = applied_version(&mut conn).await?;
    if let Some(database) = version
        && database > binary_schema_version()
    {
        return Err(DbError::SchemaTooNew {
            database,
            binary: binary_schema_version(),
        });
    }
    Ok(version)
}

async fn applied_version(conn: &mut PgConnection) -> Result<Option<i64>, DbError> {
    if !migrations_table_exists(conn).await? {
        return Ok(None);
    }
    Ok(
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await?,
    )
}

async fn applied_count(conn: &mut PgConnection) -> Result<usize, DbError> {
    if !migrations_table_exists(conn).await? {
        return Ok(0);
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut *conn)
        .await?;
    Ok(n as usize)
}

async fn migrations_table_exists(conn: &mut PgConnection) -> Result<bool, DbError> {
    Ok(
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// `SELECT 1` bounded by a timeout, for readiness.
pub async fn ping(pool: &PgPool, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(pool)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}
