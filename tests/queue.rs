//! The job queue against the real Redis at 127.0.0.1:6379. Every test uses its own key prefix
//! and deletes its keys at the end, so tests run in parallel with each other and with other
//! suites. No timing assertions: waits are polling loops with generous deadlines.

use crate::common;

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cocov::config::{QueueConfig, RedisConfig};
use cocov::kv::{Db, Kv};
use cocov::queue::{
    Consumer, GROUP, JobContext, JobError, JobHandler, Queue, QueueError, QueueStats, Registry,
};
use common::private_redis::PrivateRedis;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// What handlers record for the test to inspect.
type Log<T> = Arc<Mutex<Vec<T>>>;

/// Carries the key prefix to the child process of the SIGKILL test.
const CHILD_PREFIX_ENV: &str = "COCOV_QUEUE_TEST_CHILD_PREFIX";

/// Logs of the queue under `RUST_LOG` (e.g. `RUST_LOG=cocov=debug`), captured per test.
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn test_kv() -> Kv {
    init_logs();
    let config = RedisConfig {
        key_prefix: format!("cocov-test-{}:", Uuid::new_v4().simple()),
        ..RedisConfig::default()
    };
    Kv::connect(&config).expect("redis config")
}

fn kv_with_prefix(prefix: &str) -> Kv {
    let config = RedisConfig {
        key_prefix: prefix.to_string(),
        ..RedisConfig::default()
    };
    Kv::connect(&config).expect("redis config")
}

fn fast_config() -> QueueConfig {
    QueueConfig {
        concurrency: 4,
        max_deliveries: 3,
        reclaim_idle_seconds: 2,
        retry_base_delay_ms: 20,
        retry_max_delay_ms: 100,
    }
}

/// A handler from an async closure.
struct FnHandler<F>(F);

#[async_trait::async_trait]
impl<F, Fut> JobHandler for FnHandler<F>
where
    F: Fn(JobContext) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), JobError>> + Send,
{
    async fn handle(&self, job: &JobContext) -> Result<(), JobError> {
        (self.0)(job.clone()).await
    }
}

fn handler<F, Fut>(f: F) -> Arc<dyn JobHandler>
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    Arc::new(FnHandler(f))
}

/// A consumer running in a task of this process.
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), QueueError>>,
}

fn start(queue: &Queue, registry: Registry, grace: Duration) -> Running {
    let (stop, rx) = watch::channel(false);
    let consumer = Consumer::new(queue.clone(), registry);
    Running {
        stop,
        task: tokio::spawn(consumer.run(rx, grace)),
    }
}

impl Running {
    async fn stop(self) {
        self.stop.send_replace(true);
        let ended = tokio::time::timeout(Duration::from_secs(60), self.task).await;
        let result = ended
            .expect("consumer did not stop within 60 s")
            .expect("consumer task panicked");
        result.expect("consumer returned an error");
    }
}

/// Polls `check` every 50 ms until it holds; fails the test after `secs` seconds.
async fn wait_until<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_drained(queue: &Queue) {
    wait_until(
        "stream empty and nothing pending, delayed or dead",
        30,
        || async {
            queue
                .stats()
                .await
                .map(|s| s == QueueStats::default())
                .unwrap_or(false)
        },
    )
    .await;
    let mut c = queue.kv().conn(Db::Queue);
    let len: u64 = redis::cmd("XLEN")
        .arg(queue.stream_key())
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(len, 0, "acked entries are deleted from the stream");
}

async fn incr(kv: &Kv, suffix: &str) -> i64 {
    let mut c = kv.conn(Db::Queue);
    redis::cmd("INCR")
        .arg(kv.key(suffix))
        .query_async(&mut c)
        .await
        .unwrap()
}

async fn get_i64(kv: &Kv, suffix: &str) -> i64 {
    let mut c = kv.conn(Db::Queue);
    let v: Option<i64> = redis::cmd("GET")
        .arg(kv.key(suffix))
        .query_async(&mut c)
        .await
        .unwrap();
    v.unwrap_or(0)
}

async fn cleanup(kv: &Kv) {
    kv.delete_all_prefixed().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueued_job_is_consumed_once_and_acked() {
    let kv = test_kv();
    let queue = Queue::new(kv.clone(), "default", fast_config());
    let seen: Log<(Value, u32)> = Arc::default();
    let s = seen.clone();
    let registry = Registry::new().with(
        "echo",
        handler(move |job| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push((job.payload.clone(), job.attempt));
                Ok(())
            }
        }),
    );

    let id = queue
        .enqueue("echo", json!({"n": 42, "list": []}))
        .await
        .unwrap();
    let stats = queue.stats().await.unwrap();
    assert_eq!(
        stats,
        QueueStats {
            waiting: 1,
            ..QueueStats::default()
        }
    );

    let consumer = start(&queue, registry, Duration::from_secs(5));
    wait_until("the job ran", 30, || async {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    wait_drained(&queue).await;
    consumer.stop().await;

    assert_eq!(
        *seen.lock().unwrap(),
        vec![(json!({"n": 42, "list": []}), 1)]
    );
    let counts = queue.outcome_counts();
    assert_eq!(counts.completed, 1);
    assert_eq!(
        counts.retried + counts.dead_lettered + counts.handed_back + counts.reclaimed,
        0
    );
    assert_eq!(
        counts
            .iter()
            .find(|(name, _)| *name == "completed")
            .map(|(_, v)| *v),
        Some(1)
    );
    assert!(!id.is_nil());
    cleanup(&kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_unique_skips_duplicates_within_ttl() {
    let kv = test_kv();
    let queue = Queue::new(kv.clone(), "default", fast_config());
    let ttl = Duration::from_secs(60);
    let first = queue
        .enqueue_unique("k", json!(1), "push:abc", ttl)
        .await
        .unwrap();
    let second = queue
        .enqueue_unique("k", json!(2), "push:abc", ttl)
        .await
        .unwrap();
    let other = queue
        .enqueue_unique("k", json!(3), "push:def", ttl)
        .await
        .unwrap();
    assert!(first.is_some());
    assert_eq!(second, None);
    assert!(other.is_some());
    assert_eq!(queue.stats().await.unwrap().waiting, 2);
    cleanup(&kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded() {
    let kv = test_kv();
    let queue = Queue::new(
        kv.clone(),
        "default",
        QueueConfig {
            concurrency: 2,
            ..fast_config()
        },
    );
    let running = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let (r, m, d) = (running.clone(), max_seen.clone(), done.clone());
    let registry = Registry::new().with(
        "slow",
        handler(move |_job| {
            let (r, m, d) = (r.clone(), m.clone(), d.clone());
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(150)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                d.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }),
    );
    for n in 0..6 {
        queue.enqueue("slow", json!({ "n": n })).await.unwrap();
    }
    let consumer = start(&queue, registry, Duration::from_secs(5));
    wait_until("all six jobs ran", 60, || async {
        done.load(Ordering::SeqCst) == 6
    })
    .await;
    wait_drained(&queue).await;
    consumer.stop().await;
    let max = max_seen.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&max),
        "at most 2 jobs may run at once, saw {max}"
    );
    assert_eq!(queue.outcome_counts().completed, 6);
    cleanup(&kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_failing_job_is_dead_lettered_after_max_deliveries_and_can_be_retried() {
    let kv = test_kv();
    let queue = Queue::new(kv.clone(), "default", fast_config());
    let attempts: Log<(u32, Option<String>)> = Arc::default();
    let failing = Arc::new(AtomicBool::new(true));
    let (a, f) = (attempts.clone(), failing.clone());
    let registry = Registry::new().with(
        "flaky",
        handler(move |job| {
            let (a, f) = (a.clone(), f.clone());
            async move {
                a.lock()
                    .unwrap()
                    .push((job.attempt, job.last_error.clone()));
                if f.load(Ordering::SeqCst) {
                    Err(JobError::Retry(format!("boom {}", job.attempt)))
                } else {
                    Ok(())
                }
            }
        }),
    );
    let id = queue.enqueue("flaky", json!({"x": "y"})).await.unwrap();
    let consumer = start(&queue, registry, Duration::from_secs(5));

    wait_until("the job is dead-lettered", 60, || async {
        !queue.dead_letters(10).await.unwrap().is_empty()
    })
    .await;
    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let d = &dead[0];
    assert_eq!(
        (d.id, d.kind.as_str(), &d.payload),
        (id, "flaky", &json!({"x": "y"}))
    );
    assert_eq!(d.attempts, 3);
    assert_eq!(d.last_error, "boom 3");
    assert_eq!(
        *attempts.lock().unwrap(),
        vec![
            (1, None),
            (2, Some("boom 1".to_string())),
            (3, Some("boom 2".to_string()))
        ],
        "the handler runs exactly max_deliveries times, each retry seeing the previous error"
    );
    let stats = queue.stats().await.unwrap();
    assert_eq!(
        stats,
        QueueStats {
            dead: 1,
            ..QueueStats::default()
        }
    );
    let counts = queue.outcome_counts();
    assert_eq!(
        (counts.retried, counts.dead_lettered, counts.completed),
        (2, 1, 0)
    );
    let as_json = serde_json::to_value(d).unwrap();
    assert!(as_json.get("failed_at").is_some_and(Value::is_string));

    failing.store(false, Ordering::SeqCst);
    assert!(queue.retry_dead(&id.to_string()).await.unwrap());
    assert!(
        !queue.retry_dead(&id.to_string()).await.unwrap(),
        "a dead letter is retried once"
    );
    assert!(!queue.retry_dead(&Uuid::new_v4().to_string()).await.unwrap());
    assert!(matches!(
        queue.retry_dead("nope").await,
        Err(QueueError::InvalidJobId(_))
    ));
    wait_until("the retried job completed", 30, || async {
        queue.outcome_counts().completed == 1
    })
    .await;
    wait_drained(&queue).await;
    consumer.stop().await;
    let last = attempts.lock().unwrap().last().cloned();
    assert_eq!(
        last,
        Some((1, Some("boom 3".to_string()))),
        "a retried dead letter restarts at attempt 1"
    );
    cleanup(&kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_error_and_unknown_kind_are_dead_lettered_at_once() {
    let kv = test_kv();
    let queue = Queue::new(kv.clone(), "default", fast_config());
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let registry = Registry::new().with(
        "bad-input",
        handler(move |_job| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Err(JobError::Permanent("payload names no repository".into()))
            }
        }),
    );
    let perm = queue.enqueue("bad-input", json!({})).await.unwrap();
    let unknown = queue
        .enqueue("nobody-handles-this", json!([1, 2]))
        .await
        .unwrap();
    let consumer = start(&queue, registry, Duration::from_secs(5));
    wait_until("both jobs dead-lettered", 30, || async {
        queue.dead_letters(10).await.unwrap().len() == 2
    })
    .await;
    consumer.stop().await;

    let dead = queue.dead_letters(10).await.unwrap();
    let p = dead
        .iter()
        .find(|d| d.id == perm)
        .expect("permanent failure dead-lettered");
    assert_eq!(
        (p.attempts, p.last_error.as_str()),
        (1, "payload names no repository")
    );
    let u = dead
        .iter()
        .find(|d| d.id == unknown)
        .expect("unknown kind dead-lettered");
    assert_eq!(u.attempts, 1);
    assert!(
        u.last_error.contains("no handler registered")
            && u.last_error.contains("nobody-handles-this"),
        "reason: {}",
        u.last_error
    );
    assert_eq!(u.payload, json!([1, 2]));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(queue.outcome_counts().retried, 0);
    assert_eq!(
        queue.dead_letters(1).await.unwrap().len(),
        1,
        "limit keeps the newest"
    );

    assert_eq!(queue.purge_dead().await.unwrap(), 2);
    assert!(queue.dead_letters(10).await.unwrap().is_empty());
    wait_drained(&queue).await;
    cleanup(&kv).await;
}

/// Kills (SIGKILL) and reaps the child when dropped, so it never outlives a failing test.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_of_a_sigkilled_consumer_is_completed_by_another() {
    let kv = test_kv();
    let queue = Queue::new(kv.clone(), "default", fast_config());
    let id = queue.enqueue("work", json!({"repo": 7})).await.unwrap();

    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args([
            "--exact",
            "queue::sigkill_child_consumer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_PREFIX_ENV, kv.prefix())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the child consumer");
    let mut child = ChildGuard(Some(child));
    wait_until("the child consumer started the job", 60, || async {
        get_i64(&kv, "child-started").await == 1
    })
    .await;

    // A second consumer, here. While the child lives its heartbeats keep the job; once it is
    // killed the job's idle time grows past reclaim_idle_seconds and this consumer takes it.
    let attempts: Log<u32> = Arc::default();
    let (a, k) = (attempts.clone(), kv.clone());
    let registry = Registry::new().with(
        "work",
        handler(move |job| {
            let (a, k) = (a.clone(), k.clone());
            async move {
                a.lock().unwrap().push(job.attempt);
                incr(&k, "parent-runs").await;
                // Idempotent "commit": a SET, not an append.
                let mut c = k.conn(Db::Queue);
                let _: () = redis::cmd("SET")
                    .arg(k.key(&format!("done:{}", job.id)))
                    .arg("1")
                    .query_async(&mut c)
                    .await
                    .map_err(JobError::retry)?;
                Ok(())
            }
        }),
    );
    let consumer = start(&queue, registry, Duration::from_secs(5));
    child.kill();

    wait_until(
        "the job was completed by the surviving consumer",
        60,
        || async { get_i64(&kv, &format!("done:{id}")).await == 1 },
    )
    .await;
    wait_drained(&queue).await;
    consumer.stop().await;

    assert_eq!(
        get_i64(&kv, "child-started").await,
        1,
        "the child ran it once before dying"
    );
    assert_eq!(
        get_i64(&kv, "parent-runs").await,
        1,
        "the survivor completed it exactly once"
    );
    assert_eq!(
        *attempts.lock().unwrap(),
        vec![2],
        "the redelivery counts as attempt 2"
    );
    let counts = queue.outcome_counts();
    assert_eq!((counts.reclaimed, counts.completed), (1, 1));
    cleanup(&kv).await;
}

/// The child process of `job_of_a_sigkilled_consumer_is_completed_by_another`: a consumer whose
/// handler announces the job and then hangs until the parent kills the process. Does nothing
/// when run without the parent's environment variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by job_of_a_sigkilled_consumer_is_completed_by_another as a separate process"]
async fn sigkill_child_consumer() {
    let Ok(prefix) = std::env::var(CHILD_PREFIX_ENV) else {
        return;
    };
    let kv = kv_with_prefix(&prefix);
    let queue = Queue::new(kv.clone(), "default", fast_config());
    let k = kv.clone();
    let registry = Registry::new().with(
        "work",
        handler(move |_job| {
            let k = k.clone();
            async move {
                incr(&k, "child-started").await;
                tokio::time::sleep(Duration::from_secs(120)).await;
                Ok(())
            }
        }),
    );
    let (_stop, rx) = watch::channel(false);
    // Bounded even if the parent somehow never kills us.
    let _ = tokio::time::timeout(
        Duration::from_secs(120),
        Consumer::new(queue, registry).run(rx, Duration::from_secs(1)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_quick_jobs_and_hands_back_the_rest() {
    let kv = test_kv();
    // Reclaim is far away: the stuck job can only come back quickly by being handed back.
    let config = QueueConfig {
        concurrency: 2,
        reclaim_idle_seconds: 300,
        ..fast_config()
    };
    let queue_a = Queue::new(kv.clone(), "default", config.clone());
    let started = Arc::new(AtomicU32::new(0));
    let release = Arc::new(Notify::new());
    let quick_done = Arc::new(AtomicU32::new(0));
    let (s1, r, q) = (started.clone(), release.clone(), quick_done.clone());
    let s2 = started.clone();
    let registry_a = Registry::new()
        .with(
            "quick",
            handler(move |_job| {
                let (s, r, q) = (s1.clone(), r.clone(), q.clone());
                async move {
                    s.fetch_add(1, Ordering::SeqCst);
                    r.notified().await;
                    q.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            }),
        )
        .with(
            "stuck",
            handler(move |_job| {
                let s = s2.clone();
                async move {
                    s.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    Ok(())
                }
            }),
        );
    queue_a.enqueue("quick", json!({})).await.unwrap();
    let stuck_id = queue_a
        .enqueue("stuck", json!({"big": true}))
        .await
        .unwrap();
    let a = start(&queue_a, registry_a, Duration::from_secs(3));
    wait_until("both jobs started", 30, || async {
        started.load(Ordering::SeqCst) == 2
    })
    .await;

    // Shutdown begins; the quick job finishes inside the grace period, the stuck one does not.
    a.stop.send_replace(true);
    release.notify_one();
    let ended = tokio::time::timeout(Duration::from_secs(60), a.task).await;
    ended
        .expect("consumer A stopped")
        .expect("no panic")
        .expect("no error");
    assert_eq!(quick_done.load(Ordering::SeqCst), 1);
    let counts = queue_a.outcome_counts();
    assert_eq!((counts.completed, counts.handed_back), (1, 1));
    assert_eq!(
        queue_a.stats().await.unwrap(),
        QueueStats {
            waiting: 1,
            ..QueueStats::default()
        },
        "the stuck job is back in the stream, not pending on the stopped consumer"
    );

    let queue_b = Queue::new(kv.clone(), "default", config);
    let seen: Log<(Uuid, u32)> = Arc::default();
    let s = seen.clone();
    let registry_b = Registry::new().with(
        "stuck",
        handler(move |job| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push((job.id, job.attempt));
                Ok(())
            }
        }),
    );
    let b = start(&queue_b, registry_b, Duration::from_secs(5));
    wait_until("consumer B completed the handed-back job", 30, || async {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    wait_drained(&queue_b).await;
    b.stop().await;
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(stuck_id, 1)],
        "same job, same attempt"
    );
    assert_eq!(queue_b.outcome_counts().reclaimed, 0);
    cleanup(&kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_consumers_long_job_is_not_stolen() {
    let kv = test_kv();
    let config = QueueConfig {
        reclaim_idle_seconds: 1,
        ..fast_config()
    };
    let runs = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicU32::new(0));
    let registry = {
        let (r, d) = (runs.clone(), done.clone());
        Registry::new().with(
            "long",
            handler(move |_job| {
                let (r, d) = (r.clone(), d.clone());
                async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    // Four times the reclaim idle time.
                    tokio::time::sleep(Duration::from_secs(4)).await;
                    d.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            }),
        )
    };
    let queue_a = Queue::new(kv.clone(), "default", config.clone());
    let queue_b = Queue::new(kv.clone(), "default", config);
    let a = start(&queue_a, registry.clone(), Duration::from_secs(5));
    let b = start(&queue_b, registry, Duration::from_secs(5));
    queue_a.enqueue("long", json!({})).await.unwrap();
    wait_until("the long job completed", 60, || async {
        done.load(Ordering::SeqCst) == 1
    })
    .await;
    wait_drained(&queue_a).await;
    a.stop().await;
    b.stop().await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the job ran on one consumer only"
    );
    assert_eq!(
        queue_a.outcome_counts().reclaimed + queue_b.outcome_counts().reclaimed,
        0
    );
    assert_eq!(
        queue_a.outcome_counts().completed + queue_b.outcome_counts().completed,
        1
    );
    cleanup(&kv).await;
}

async fn group_exists(queue: &Queue) -> bool {
    let mut c = queue.kv().conn(Db::Queue);
    let groups: redis::RedisResult<redis::streams::StreamInfoGroupsReply> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(queue.stream_key())
        .query_async(&mut c)
        .await;
    groups.is_ok_and(|g| g.groups.iter().any(|g| g.name == GROUP))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_survives_its_stream_vanishing() {
    let kv = test_kv();
    let queue = Queue::new(kv.clone(), "default", fast_config());
    let done: Log<i64> = Arc::default();
    let d = done.clone();
    let registry = Registry::new().with(
        "n",
        handler(move |job| {
            let d = d.clone();
            async move {
                d.lock().unwrap().push(job.payload.as_i64().unwrap_or(-1));
                Ok(())
            }
        }),
    );
    let consumer = start(&queue, registry, Duration::from_secs(5));
    let del = |kv: Kv, key: String| async move {
        let mut c = kv.conn(Db::Queue);
        let _: i64 = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap();
    };

    queue.enqueue("n", json!(1)).await.unwrap();
    wait_until("job 1 done", 30, || async {
        done.lock().unwrap().len() == 1
    })
    .await;

    // Redis "lost its data" while the consumer is blocked reading: it recreates the group
    // by itself, then takes a job enqueued afterwards.
    del(kv.clone(), queue.stream_key().to_string()).await;
    wait_until("the consumer recreated its group", 30, || {
        group_exists(&queue)
    })
    .await;
    queue.enqueue("n", json!(2)).await.unwrap();
    wait_until("job 2 done", 30, || async {
        done.lock().unwrap().len() == 2
    })
    .await;

    // Again, but a producer recreates the stream (without a group) before the consumer
    // notices: the group must start at 0 so this job is not skipped.
    del(kv.clone(), queue.stream_key().to_string()).await;
    queue.enqueue("n", json!(3)).await.unwrap();
    wait_until("job 3 done", 30, || async {
        done.lock().unwrap().len() == 3
    })
    .await;

    wait_drained(&queue).await;
    consumer.stop().await;
    assert_eq!(*done.lock().unwrap(), vec![1, 2, 3]);
    cleanup(&kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_entries_are_dead_lettered() {
    let kv = test_kv();
    let queue = Queue::new(kv.clone(), "default", fast_config());
    queue.ensure_group().await.unwrap();
    let mut c = kv.conn(Db::Queue);

    // A job whose consumers kept dying: delivered three times (max_deliveries) already, so the
    // reclaim that would be its fourth delivery dead-letters it without running it.
    let crashy = queue.enqueue("crashy", json!({})).await.unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("ghost-1")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(queue.stream_key())
        .arg(">")
        .query_async(&mut c)
        .await
        .unwrap();
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(queue.stream_key())
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(10)
        .query_async(&mut c)
        .await
        .unwrap();
    let entry = pending[0].0.clone();
    for ghost in ["ghost-2", "ghost-3"] {
        // XCLAIM without JUSTID counts a delivery, as a reclaim by a consumer that then died.
        let _: redis::Value = redis::cmd("XCLAIM")
            .arg(queue.stream_key())
            .arg(GROUP)
            .arg(ghost)
            .arg(0)
            .arg(&entry)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    // An entry not written by the queue.
    let _: String = redis::cmd("XADD")
        .arg(queue.stream_key())
        .arg("*")
        .arg("something")
        .arg("else")
        .query_async(&mut c)
        .await
        .unwrap();

    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    let r2 = runs.clone();
    let registry = Registry::new()
        .with(
            "crashy",
            handler(move |_job| {
                let r = r.clone();
                async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            }),
        )
        .with(
            "panics",
            handler(move |job| {
                let r = r2.clone();
                async move {
                    r.fetch_add(100, Ordering::SeqCst);
                    if job.attempt > 0 {
                        panic!("handler bug on attempt {}", job.attempt);
                    }
                    Ok(())
                }
            }),
        );
    let panicky = queue.enqueue("panics", json!({})).await.unwrap();
    let consumer = start(&queue, registry, Duration::from_secs(5));
    wait_until("three dead letters", 60, || async {
        queue.dead_letters(10).await.unwrap().len() == 3
    })
    .await;
    wait_drained_except_dead(&queue).await;
    consumer.stop().await;

    let dead = queue.dead_letters(10).await.unwrap();
    let d = dead
        .iter()
        .find(|d| d.id == crashy)
        .expect("crashy dead-lettered");
    assert_eq!(d.attempts, 4);
    assert!(
        d.last_error.contains("delivered 4 times"),
        "reason: {}",
        d.last_error
    );
    let d = dead
        .iter()
        .find(|d| d.kind == "<unreadable>")
        .expect("foreign entry dead-lettered");
    assert!(
        d.id.is_nil() && d.last_error.contains("no `job` field"),
        "{d:?}"
    );
    let d = dead
        .iter()
        .find(|d| d.id == panicky)
        .expect("panicking job dead-lettered");
    assert_eq!(d.attempts, 3);
    assert!(
        d.last_error
            .contains("handler panicked: handler bug on attempt 3"),
        "{}",
        d.last_error
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        300,
        "crashy never ran; the panicking job ran 3 times"
    );
    cleanup(&kv).await;
}

async fn wait_drained_except_dead(queue: &Queue) {
    wait_until("nothing waiting, pending or delayed", 30, || async {
        queue
            .stats()
            .await
            .map(|s| QueueStats { dead: 0, ..s } == QueueStats::default())
            .unwrap_or(false)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_survives_a_redis_restart() {
    init_logs();
    let mut server = PrivateRedis::start().await;
    let config = RedisConfig {
        url: server.url(),
        key_prefix: "cocov-test-restart:".into(),
        ..RedisConfig::default()
    };
    let kv = Kv::connect(&config).unwrap();
    let queue = Queue::new(kv.clone(), "default", fast_config());
    let done: Log<i64> = Arc::default();
    let d = done.clone();
    let registry = Registry::new().with(
        "n",
        handler(move |job| {
            let d = d.clone();
            async move {
                d.lock().unwrap().push(job.payload.as_i64().unwrap_or(-1));
                Ok(())
            }
        }),
    );
    let consumer = start(&queue, registry, Duration::from_secs(5));
    queue.enqueue("n", json!(1)).await.unwrap();
    wait_until("job 1 done", 30, || async {
        done.lock().unwrap().len() == 1
    })
    .await;

    // Redis dies and comes back empty (nothing persisted): the stream and group are gone.
    server.stop();
    // Stay down a while, so the loops go through connection errors and their backoff.
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.resume().await;
    wait_until("an enqueue succeeds after the restart", 60, || async {
        queue.enqueue("n", json!(2)).await.is_ok()
    })
    .await;
    wait_until("job 2 done after the restart", 60, || async {
        done.lock().unwrap().len() == 2
    })
    .await;
    wait_drained(&queue).await;
    consumer.stop().await;
    assert_eq!(*done.lock().unwrap(), vec![1, 2]);
    drop(server);
}
