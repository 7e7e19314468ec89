//! cocov: a self-hosted code-quality appliance.
//!
//! The modules follow the data flow: configuration and the stores first (`config`, `db`, `kv`,
//! `storage`, `queue`), then identity (`auth`, `audit`), then the HTTP surface (`http` plumbing,
//! `api` routes, `badges`), the background work (`jobs`) and the process life (`daemon`, `cli`).
//! See `README.md` for the architecture.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod badges;
pub mod branches;
pub mod checks;
pub mod cli;
pub mod commits;
pub mod config;
pub mod coverage;
pub mod daemon;
pub mod db;
pub mod git;
pub mod github;
pub mod http;
pub mod images;
pub mod issues;
pub mod jobs;
pub mod kv;
pub mod manifest;
pub mod metrics;
pub mod paging;
pub mod permissions;
pub mod plugins;
pub mod queue;
pub mod report;
pub mod repositories;
pub mod sandbox;
pub mod secrets;
pub mod stats;
pub mod statuses;
pub mod storage;
pub mod webhooks;
