//! The process-wide upload budget, against the real daemon binary: sixteen authenticated
//! compression bombs at once (each within the per-upload limits: gzip and zstd, raw reports and
//! the JSON line format) must not take the process's memory past what its configured budget
//! allows, and every upload must either be accepted and stored or refused with 503 and
//! `Retry-After` (nothing lost, nothing half-done). Before the budget existed, the JSON route
//! inflated each body whole and parsed it into a JSON tree, and nothing capped uploads together:
//! sixteen of these took the daemon to gigabytes.

use crate::common;

use std::collections::BTreeSet;
use std::io::Write;

use cocov::coverage::{FileCoverage, Line};
use common::daemon_process::DaemonProcess;
use common::origin::Origin;
use common::{TestDb, TestRedis};
use reqwest::StatusCode;
use serde_json::json;

const MIB: u64 = 1024 * 1024;
const MAX_REPORT_BYTES: u64 = 32 * MIB;
const BYTES_IN_FLIGHT: u64 = 192 * MIB;
const CONCURRENT: u32 = 2;
/// What the process may hold beyond its start-up peak and the budget: connections, the
/// runtime's threads, allocator slack. Small next to what one unbudgeted bomb takes.
const UNBUDGETED: u64 = 64 * MIB;
const UPLOADS: usize = 16;

/// An lcov report inflating to about `size` bytes: two files stored densely up to line 500000,
/// then the same line over and over (hits summed), so it compresses to almost nothing.
fn lcov_bomb(size: usize) -> Vec<u8> {
    let mut text = String::from("TN:\n");
    for f in 0..2 {
        text.push_str(&format!("SF:src/f{f}.c\nDA:500000,1\n"));
        let per_file = size / 2;
        let start = text.len();
        while text.len() - start < per_file {
            text.push_str("DA:1,1\nDA:2,0\nDA:3,7\n");
        }
        text.push_str("end_of_record\n");
    }
    text.into_bytes()
}

/// A `POST /v1/reports` body: three files of a million covered lines each, and a padding
/// member that inflates to `pad` bytes.
fn wire_bomb(sha: &str, pad: usize) -> Vec<u8> {
    let file = FileCoverage::from_lines((0..1_000_000).map(|i| Line::Hits(i % 3)));
    let encoded = file.encode_wire();
    let data: serde_json::Map<String, serde_json::Value> = (0..3)
        .map(|i| (format!("src/w{i}.c"), json!(encoded)))
        .collect();
    let mut body = serde_json::to_vec(&json!({"commit_sha": sha, "data": data})).unwrap();
    body.pop(); // the closing brace
    body.extend_from_slice(b",\"pad\":\"");
    body.extend(std::iter::repeat_n(b' ', pad));
    body.extend_from_slice(b"\"}");
    body
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

fn sha(i: usize) -> String {
    format!("{i:02x}{}", "ab".repeat(19))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_compressed_bombs_stay_within_the_budget_and_none_is_lost() {
    let db = TestDb::migrated().await;
    let redis = TestRedis::new();
    let storage = tempfile::tempdir().unwrap();
    let mut config = common::test_config(&db, &redis, storage.path());
    config.coverage.max_report_bytes = MAX_REPORT_BYTES;
    config.coverage.max_concurrent_uploads = CONCURRENT;
    config.coverage.max_upload_bytes_in_flight = BYTES_IN_FLIGHT;
    config.coverage.upload_queue_wait_ms = 20_000;
    let daemon = DaemonProcess::start("budget", &config);
    let admin = daemon.create_admin("budget-admin");
    let http = reqwest::Client::builder().no_gzip().build().unwrap();
    let origin = Origin::new();
    let created = http
        .post(daemon.api("/v1/repositories"))
        .header("authorization", format!("bearer {admin}"))
        .json(&json!({"name": "bombs", "git_url": origin.url(), "default_branch": "main"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: serde_json::Value = created.json().await.unwrap();
    let token = format!("token {}", created["token"].as_str().unwrap());

    // Each bomb inflates to about 24 MiB, under the 32 MiB per-upload cap.
    let lcov = lcov_bomb(24 * MIB as usize);
    let (lcov_gz, lcov_zst) = (gzip(&lcov), zstd(&lcov));
    drop(lcov);
    let mut requests = Vec::new();
    for i in 0..UPLOADS {
        let sha = sha(i);
        let zstd_encoded = i % 2 == 1;
        let encoding = if zstd_encoded { "zstd" } else { "gzip" };
        let (url, body) = if i < UPLOADS / 2 {
            let body = if zstd_encoded { &lcov_zst } else { &lcov_gz };
            let url = daemon.api(&format!("/v1/reports/raw?commit_sha={sha}&format=lcov"));
            (url, body.clone())
        } else {
            let wire = wire_bomb(&sha, 16 * MIB as usize);
            (
                daemon.api("/v1/reports"),
                if zstd_encoded {
                    zstd(&wire)
                } else {
                    gzip(&wire)
                },
            )
        };
        assert!(
            body.len() < MIB as usize,
            "a bomb, not a big body: {}",
            body.len()
        );
        requests.push((sha, url, encoding, body));
    }
    let baseline_kib = daemon.memory_kib("VmHWM");

    let sent = requests.into_iter().map(|(sha, url, encoding, body)| {
        let (http, token) = (http.clone(), token.clone());
        tokio::spawn(async move {
            let response = http
                .post(url)
                .header("authorization", token)
                .header("content-encoding", encoding)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let retry_after = response.headers().get("retry-after").cloned();
            let text = response.text().await.unwrap();
            (sha, status, retry_after, text)
        })
    });
    let answers = futures_util::future::join_all(sent).await;

    let mut accepted = BTreeSet::new();
    let mut refused = 0;
    for answer in answers {
        let (sha, status, retry_after, text) = answer.unwrap();
        if status.is_success() {
            accepted.insert(sha);
        } else {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{sha}: {text}");
            assert!(retry_after.is_some(), "503 without Retry-After: {text}");
            assert!(text.contains("report.busy"), "{text}");
            refused += 1;
        }
    }
    let peak_kib = daemon.memory_kib("VmHWM");
    eprintln!(
        "accepted {}, refused {refused}; VmHWM {baseline_kib} KiB before, {peak_kib} KiB after",
        accepted.len()
    );
    assert!(!accepted.is_empty(), "the budget let no upload through");

    // Every accepted upload is stored (held for its commit, which has not been announced).
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT commit_sha::text FROM coverage_uploads WHERE applied_at IS NULL",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(stored.into_iter().collect::<BTreeSet<_>>(), accepted);

    let bound_kib = baseline_kib + (BYTES_IN_FLIGHT + UNBUDGETED) / 1024;
    assert!(
        peak_kib <= bound_kib,
        "peak RSS {peak_kib} KiB is over the bound of {bound_kib} KiB (start-up peak \
         {baseline_kib} KiB + budget {BYTES_IN_FLIGHT} B + {UNBUDGETED} B)"
    );
}
