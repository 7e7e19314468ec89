//! Schema-driven fuzzing: Schemathesis (installed by scripts/install-test-tools.sh) generates
//! requests from `/v1/openapi.json` and sends them to the real daemon, as an administrator and
//! as an anonymous caller, and fails on any 5xx or any answer the document does not describe
//! (status, content type, body schema, `Allow` on a 405).
//!
//! Bounded (a fixed number of examples per operation, a fixed seed) and ignored by default:
//! it needs the tool and a few minutes, so scripts/test.sh runs it after the suite with
//! `cargo test --test integration api_fuzz -- --ignored`.

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use common::TestApp;

/// Whole-run bound for one identity; the examples bound below normally ends it sooner.
const RUN_LIMIT: Duration = Duration::from_secs(150);

fn schemathesis() -> PathBuf {
    let tools = std::env::var_os("COCOV_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/cocov-test-tools")
        });
    let bin = tools.join("venv/bin/schemathesis");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/install-test-tools.sh",
        bin.display()
    );
    bin
}

/// The bounds CI uses, which a longer local run can raise (`COCOV_FUZZ_EXAMPLES=200`, another
/// `COCOV_FUZZ_SEED`).
fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Runs Schemathesis against the daemon with `headers`; panics with its report on failure.
async fn fuzz(t: &TestApp, who: &str, headers: &[String]) {
    let base = t.url("");
    // Schemathesis leaves a `.schemathesis/` directory where it runs: not in the checkout.
    let scratch = tempfile::tempdir().expect("tempdir");
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schemathesis.toml");
    let mut command = tokio::process::Command::new(schemathesis());
    command
        .current_dir(scratch.path())
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(format!("{base}/v1/openapi.json"))
        .args(["--url", &base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,allow_header_conformance,unsupported_method,\
             negative_data_rejection",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args([
            "--max-examples",
            &setting("COCOV_FUZZ_EXAMPLES", "25"),
            "--seed",
            &setting("COCOV_FUZZ_SEED", "20261205"),
            "--workers",
            "1",
        ])
        .args([
            "--generation-database",
            "none",
            "--generation-allow-x00",
            "true",
            "--request-timeout",
            "10",
        ])
        .args(["--suppress-health-check", "all", "--no-color"])
        .args(["--warnings", "off"])
        .kill_on_drop(true);
    for header in headers {
        command.args(["-H", header]);
    }
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ({who}) ran longer than {RUN_LIMIT:?}"))
        .expect("schemathesis runs");
    // The summary (operations, phases, test cases) for the log; shown with --nocapture.
    let stdout = String::from_utf8_lossy(&output.stdout);
    if let Some(summary) = stdout.find("SUMMARY") {
        println!("{who}: {}", &stdout[summary..]);
    }
    assert!(
        output.status.success(),
        "schemathesis as {who} found disagreements:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Schemathesis and minutes: run by scripts/test.sh after the suite"]
async fn the_api_answers_as_documented_to_generated_requests() {
    // With a key, so the secret routes store instead of answering 503.
    let t = TestApp::start_with(|c| c.security.cryptographic_key = "ab".repeat(32)).await;
    let admin = t.user_token("fuzz-admin", true).await;
    fuzz(&t, "anonymous", &[]).await;
    fuzz(&t, "admin", &[format!("Authorization: bearer {admin}")]).await;
    t.shutdown().await;
}
