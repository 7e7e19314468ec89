//! The integration tests, one binary (as ripgrep's are): linking the crate once instead of once
//! per file is most of the build time of the suite on two cores. Each module is one area of the
//! appliance; `common` is the harness they share (a database and Redis prefix per test, the
//! daemon in process, real S3 servers, the fake GitHub).
//!
//! Run one area with `cargo test --test integration checks::`. The property tests
//! (`tests/properties/`) stay a binary of their own: they install a counting global allocator.

mod common;

mod accounts;
mod api_fuzz;
mod architecture;
mod backup;
mod badges;
mod blob_store_outage;
mod cache;
mod checks;
mod cli;
mod coverage_hostile;
mod coverage_real_tools;
mod coverage_upload;
mod dependency_outage;
mod faults;
mod github_client;
mod github_sign_in;
mod github_webhooks;
mod http_api;
mod images;
mod ingest;
mod input;
mod manifest;
mod memberships;
mod oidc;
mod openapi;
mod org_repos;
mod packaging;
mod queue;
mod read_api;
mod reconcile;
mod schema;
mod security_git;
mod security_http;
mod security_sandbox;
mod security_tree;
mod storage;
mod two_hosts;
mod ui_api;
mod upload_budget;
mod web_ui;
mod web_ui_admin;
mod web_ui_repository;
mod web_ui_sign_in;

/// Every file in tests/ is a module here: with `autotests = false` a file that is not listed
/// would never be compiled or run.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let listed = include_str!("integration.rs");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(module) = name.strip_suffix(".rs").filter(|m| *m != "integration") {
            assert!(
                listed.contains(&format!("\nmod {module};\n")),
                "tests/{name} is not declared in tests/integration.rs"
            );
        }
    }
}
