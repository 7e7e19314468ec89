//! The Lua scripts behind every multi-key state change. A script runs atomically, so a crash or
//! a lost connection between two steps cannot drop or duplicate a job, and two consumers can
//! never both move the same delayed entry.
//!
//! Outcome scripts (ack, retry, dead, hand-back, heartbeat) start with the ownership check: the
//! entry must still be pending for the calling consumer. A consumer that was paused long enough
//! for another to reclaim its job then leaves the outcome to the new owner. Times come from the
//! Redis clock (`TIME`), so hosts with skewed clocks agree on when a retry is due.

use std::sync::LazyLock;

use redis::Script;

/// `owned(stream, group, id, consumer)`: true when `id` is pending for `consumer`. Uses
/// `pcall` so a vanished stream or group (Redis lost its data) reads as "not owned".
const OWNED: &str = r#"
local function owned(stream, group, id, consumer)
  local p = redis.pcall('XPENDING', stream, group, id, id, 1)
  if type(p) ~= 'table' or p.err or #p == 0 then return false end
  return p[1][2] == consumer
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"#;

fn with_owned(body: &str) -> Script {
    Script::new(&format!("{OWNED}{body}"))
}

/// KEYS: stream. ARGV: group, id, consumer. Acknowledge and delete a finished entry.
pub(crate) fn ack() -> &'static Script {
    static S: LazyLock<Script> = LazyLock::new(|| {
        with_owned(
            r#"
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"#,
        )
    });
    &S
}

/// KEYS: stream, delayed. ARGV: group, id, consumer, delay ms, next envelope.
/// Schedule the next attempt and retire the current entry.
pub(crate) fn retry() -> &'static Script {
    static S: LazyLock<Script> = LazyLock::new(|| {
        with_owned(
            r#"
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[4]), ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"#,
        )
    });
    &S
}

/// KEYS: stream, dead. ARGV: group, id, consumer, dead-letter JSON, list cap.
/// Append to the dead-letter list (keeping the newest `cap`) and retire the entry.
pub(crate) fn dead() -> &'static Script {
    static S: LazyLock<Script> = LazyLock::new(|| {
        with_owned(
            r#"
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"#,
        )
    });
    &S
}

/// KEYS: stream. ARGV: group, id, consumer, envelope.
/// Put an unfinished job back as a fresh entry (any consumer can read it at once) and retire
/// the one this consumer held.
pub(crate) fn hand_back() -> &'static Script {
    static S: LazyLock<Script> = LazyLock::new(|| {
        with_owned(
            r#"
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
redis.call('XADD', KEYS[1], '*', 'job', ARGV[4])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"#,
        )
    });
    &S
}

/// KEYS: stream. ARGV: group, id, consumer.
/// Reset the entry's idle time (XCLAIM … JUSTID does not count a delivery) so that nobody
/// reclaims a job a live consumer is still running. Returns 0 when the job is no longer ours.
pub(crate) fn heartbeat() -> &'static Script {
    static S: LazyLock<Script> = LazyLock::new(|| {
        with_owned(
            r#"
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
"#,
        )
    });
    &S
}

/// KEYS: delayed, stream. ARGV: limit. Move up to `limit` due retries into the stream.
pub(crate) fn promote() -> &'static Script {
    static S: LazyLock<Script> = LazyLock::new(|| {
        with_owned(
            r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'job', member)
  redis.call('ZREM', KEYS[1], member)
end
return #due
"#,
        )
    });
    &S
}

/// KEYS: dedup marker, stream. ARGV: job id, ttl ms, envelope.
pub(crate) fn enqueue_unique() -> &'static Script {
    static S: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r#"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then return 0 end
redis.call('XADD', KEYS[2], '*', 'job', ARGV[3])
return 1
"#,
        )
    });
    &S
}

/// KEYS: dead, stream. ARGV: the exact dead-letter JSON, envelope.
/// Re-enqueue one dead letter; only one of two concurrent calls succeeds (LREM decides).
pub(crate) fn retry_dead() -> &'static Script {
    static S: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r#"
if redis.call('LREM', KEYS[1], 1, ARGV[1]) ~= 1 then return 0 end
redis.call('XADD', KEYS[2], '*', 'job', ARGV[2])
return 1
"#,
        )
    });
    &S
}

/// KEYS: dead. Returns how many entries were removed.
pub(crate) fn purge_dead() -> &'static Script {
    static S: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r#"
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
"#,
        )
    });
    &S
}

/// KEYS: stream, delayed, dead. ARGV: group. Returns {XLEN, pending, ZCARD, LLEN}.
pub(crate) fn stats() -> &'static Script {
    static S: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r#"
local pending = 0
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(p) == 'table' and not p.err then pending = p[1] end
return {redis.call('XLEN', KEYS[1]), pending, redis.call('ZCARD', KEYS[2]), redis.call('LLEN', KEYS[3])}
"#,
        )
    });
    &S
}

/// KEYS: stream. ARGV: group, own consumer name, min idle ms.
/// Delete consumers with nothing pending that have not been seen for a long time (dead hosts
/// and restarted processes). Atomic, so a consumer that just received an entry is never
/// deleted with it (DELCONSUMER drops the consumer's pending entries).
pub(crate) fn delete_idle_consumers() -> &'static Script {
    static S: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r#"
local list = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if type(list) ~= 'table' or list.err then return 0 end
local removed = 0
for _, c in ipairs(list) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  local idle = f['inactive']
  if idle == nil or idle < 0 then idle = f['idle'] end
  if f['name'] ~= ARGV[2] and f['pending'] == 0 and idle ~= nil and idle >= tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed = removed + 1
  end
end
return removed
"#,
        )
    });
    &S
}

#[cfg(test)]
mod tests {
    use crate::config::RedisConfig;
    use crate::kv::{Db, Kv};

    /// Needs the Redis at 127.0.0.1:6379 (unique key prefix, cleaned up).
    #[tokio::test]
    async fn idle_consumers_with_nothing_pending_are_forgotten() {
        let config = RedisConfig {
            key_prefix: format!("cocov-test-{}:", uuid::Uuid::new_v4().simple()),
            ..RedisConfig::default()
        };
        let kv = Kv::connect(&config).unwrap();
        let key = kv.key("queue:t:stream");
        let mut c = kv.conn(Db::Queue);
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&key)
            .arg("g")
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut c)
            .await
            .unwrap();
        let _: String = redis::cmd("XADD")
            .arg(&key)
            .arg("*")
            .arg("job")
            .arg("{}")
            .query_async(&mut c)
            .await
            .unwrap();
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("busy")
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(&key)
            .arg(">")
            .query_async(&mut c)
            .await
            .unwrap();
        for consumer in ["idle", "me"] {
            let _: i64 = redis::cmd("XGROUP")
                .arg("CREATECONSUMER")
                .arg(&key)
                .arg("g")
                .arg(consumer)
                .query_async(&mut c)
                .await
                .unwrap();
        }
        // "busy" holds the only entry; "idle" and "me" hold nothing. Idle threshold 0 ms.
        let removed: u32 = super::delete_idle_consumers()
            .key(&key)
            .arg("g")
            .arg("me")
            .arg(0)
            .invoke_async(&mut c)
            .await
            .unwrap();
        assert_eq!(removed, 1);
        let left: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(&key)
            .arg("g")
            .query_async(&mut c)
            .await
            .unwrap();
        let mut names: Vec<String> = left.consumers.into_iter().map(|c| c.name).collect();
        names.sort();
        assert_eq!(names, ["busy", "me"]);
        // A missing stream is not an error.
        let removed: u32 = super::delete_idle_consumers()
            .key(kv.key("queue:none:stream"))
            .arg("g")
            .arg("me")
            .arg(0)
            .invoke_async(&mut c)
            .await
            .unwrap();
        assert_eq!(removed, 0);
        kv.delete_all_prefixed().await.unwrap();
    }
}
