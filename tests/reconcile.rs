//! The reconciler against the real PostgreSQL and Redis: work PostgreSQL says is pending but no
//! queue holds is queued again, exactly once; work already queued is left alone; ingested commits
//! whose follow-up steps never ran get them; one pass at a time across hosts.

use crate::common;

use std::time::Duration;

use common::origin::{Origin, announce, register};
use common::{TestApp, eventually};
use reqwest::StatusCode;
use serde_json::json;

/// Passes run only when the test calls them; rows count as settled at once.
fn manual(c: &mut cocov::config::Config) {
    c.reconcile.period_seconds = 3600;
    c.reconcile.settle_seconds = 0;
}

#[tokio::test(flavor = "multi_thread")]
async fn work_the_queue_lost_is_queued_again_once() {
    // No worker role: nothing consumes, so the queue's content is what the test makes it.
    let t = TestApp::start_with(|c| {
        manual(c);
        c.server.roles = vec![cocov::config::Role::Api];
    })
    .await;
    let origin = Origin::new();
    let sha = origin.commit(&[("README.md", "hello\n")], "first");
    let (_, token) = register(&t, "lost", &origin.url()).await;
    let (status, body) = announce(
        &t,
        "lost",
        &format!("token {token}"),
        json!({"sha": sha, "branch": "main"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let app = t.app();

    let report = cocov::reconcile::reconcile_once(app)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.already_queued, 1, "{report:?}");
    assert_eq!(report.requeued_total(), 0, "{report:?}");

    // Redis loses the queue.
    let mut conn = app.queue.kv().conn(cocov::kv::Db::Queue);
    let _: () = redis::cmd("DEL")
        .arg(app.queue.stream_key())
        .query_async(&mut conn)
        .await
        .unwrap();
    let report = cocov::reconcile::reconcile_once(app)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.requeued.get("commit.ingest"), Some(&1), "{report:?}");
    let held = app.queue.held_jobs().await.unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].kind, "commit.ingest");

    // A second pass finds it queued: nothing is duplicated.
    let report = cocov::reconcile::reconcile_once(app)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.requeued_total(), 0, "{report:?}");
    assert_eq!(app.queue.held_jobs().await.unwrap().len(), 1);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_pass_at_a_time_across_hosts() {
    let t = TestApp::start_with(|c| {
        manual(c);
        c.server.roles = vec![cocov::config::Role::Api];
    })
    .await;
    let app = t.app();
    // Another host's pass holds the lock.
    let mut other = app.db.begin().await.unwrap();
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(0x636f_636f_7672_6563_i64)
        .fetch_one(&mut *other)
        .await
        .unwrap();
    assert!(held);
    assert_eq!(cocov::reconcile::reconcile_once(app).await.unwrap(), None);
    other.rollback().await.unwrap();
    assert!(
        cocov::reconcile::reconcile_once(app)
            .await
            .unwrap()
            .is_some()
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ingested_commit_whose_follow_up_steps_never_ran_gets_them() {
    let t = TestApp::start_with(manual).await;
    let origin = Origin::new();
    let manifest = "version: \"0.1.alpha\"\ncoverage:\n  min_percent: 50\n";
    let sha = origin.commit(&[(".cocov.yaml", manifest), ("a.sh", "echo\n")], "first");
    let (_, token) = register(&t, "steps", &origin.url()).await;
    let (status, _) = announce(
        &t,
        "steps",
        &format!("token {token}"),
        json!({"sha": sha, "branch": "main"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let db = &t.app().db;
    let commit_id: i64 = eventually(
        "the commit to be ingested with its check set",
        Duration::from_secs(60),
        || async {
            sqlx::query_scalar(
                "SELECT c.id FROM commits c JOIN check_sets s ON s.commit_id = c.id \
                 WHERE c.sha = $1::citext AND c.ingest_status = 'completed'",
            )
            .bind(&sha)
            .fetch_optional(db)
            .await
            .unwrap()
        },
    )
    .await;
    // As if the process died right after marking the commit ingested.
    sqlx::query("DELETE FROM check_sets WHERE commit_id = $1")
        .bind(commit_id)
        .execute(db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM commit_statuses WHERE commit_id = $1")
        .bind(commit_id)
        .execute(db)
        .await
        .unwrap();

    let report = cocov::reconcile::reconcile_once(t.app())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        report.requeued.get("commit.follow_up"),
        Some(&1),
        "{report:?}"
    );
    let statuses: Vec<(String, String)> = eventually(
        "the statuses and the check set to be recorded again",
        Duration::from_secs(60),
        || async {
            let set: Option<String> =
                sqlx::query_scalar("SELECT status FROM check_sets WHERE commit_id = $1")
                    .bind(commit_id)
                    .fetch_optional(db)
                    .await
                    .unwrap();
            let statuses: Vec<(String, String)> = sqlx::query_as(
                "SELECT context, state FROM commit_statuses WHERE commit_id = $1 ORDER BY context",
            )
            .bind(commit_id)
            .fetch_all(db)
            .await
            .unwrap();
            (set.as_deref() == Some("not_configured") && statuses.len() == 2).then_some(statuses)
        },
    )
    .await;
    assert_eq!(
        statuses,
        vec![
            ("cocov".into(), "success".into()),
            ("cocov/coverage".into(), "pending".into())
        ]
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_announcement_refused_while_redis_was_down_is_ingested_without_a_retry() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut redis = common::private_redis::PrivateRedis::start().await;
    let url = redis.url();
    let t = TestApp::start_with(move |c| {
        c.redis.url = url;
        c.reconcile.sentinel_check_seconds = 1;
        c.reconcile.settle_seconds = 1;
    })
    .await;
    let origin = Origin::new();
    let sha = origin.commit(&[("README.md", "hello\n")], "first");
    let (_, token) = register(&t, "refused", &origin.url()).await;

    redis.stop();
    let (status, body) = announce(
        &t,
        "refused",
        &format!("token {token}"),
        json!({"sha": sha, "branch": "main"}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // Redis comes back empty; the client never retries. The row the refused announcement left
    // in PostgreSQL is found and ingested.
    redis.resume().await;
    let db = &t.app().db;
    eventually(
        "the commit announced during the outage to be ingested",
        Duration::from_secs(60),
        || async {
            let status: Option<String> =
                sqlx::query_scalar("SELECT ingest_status FROM commits WHERE sha = $1::citext")
                    .bind(&sha)
                    .fetch_optional(db)
                    .await
                    .unwrap();
            (status.as_deref() == Some("completed")).then_some(())
        },
    )
    .await;
    t.shutdown().await;
}
