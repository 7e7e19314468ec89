//! Property-based tests for every parser of untrusted input: coverage reports (each format,
//! detection, decompression and the line-encoded wire format) and the `.cocov.yaml` manifest.
//! Arbitrary bytes and structure-aware near-valid documents (mutated fields, deep nesting, huge
//! numbers, odd UTF-8, long lines) must give an error or a result within the configured caps,
//! never a panic, and the memory a parse allocates stays bounded (measured, see [`alloc`]).
//!
//! The archive extractor's properties live next to it (`src/checks/workspace_properties.rs`),
//! since the extractor is private to the worker.
//!
//! Cases per property: [`CASES`], or `PROPTEST_CASES` when set.

mod alloc;
mod coverage;
mod manifest;

use proptest::test_runner::Config;

/// Enough to reach the odd corners of each generator while keeping the binary under a minute
/// in a debug build on two cores.
const CASES: u32 = 256;

/// The run configuration: [`CASES`] unless `PROPTEST_CASES` says otherwise, and no
/// `.proptest-regressions` files (a real finding becomes a named regression test instead).
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}
