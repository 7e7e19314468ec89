//! The sentinel key: written by every pass, looked for every few seconds. Redis cannot lose
//! the jobs without losing this key too (same database, no expiry), so its absence is how a
//! host learns that Redis restarted empty, was flushed or failed over to an empty replica.

use crate::app::App;
use crate::kv::Db;
use crate::queue::QueueError;

fn key(app: &App) -> String {
    app.queue.kv().key("reconcile:sentinel")
}

pub(super) async fn write(app: &App) -> Result<(), QueueError> {
    let mut conn = app.queue.kv().conn(Db::Queue);
    let _: () = redis::cmd("SET")
        .arg(key(app))
        .arg(time::OffsetDateTime::now_utc().unix_timestamp())
        .query_async(&mut conn)
        .await?;
    Ok(())
}

pub(super) async fn present(app: &App) -> Result<bool, QueueError> {
    let mut conn = app.queue.kv().conn(Db::Queue);
    let found: bool = redis::cmd("EXISTS")
        .arg(key(app))
        .query_async(&mut conn)
        .await?;
    Ok(found)
}
