//! The cache service plugins use to keep work between check sets: per-repository artifacts
//! (`node_modules`, `GOMODCACHE`) and shared tools (a Node.js install), on the original's wire
//! protocol (`GET`/`HEAD`/`POST` on `/artifact/{id}` and `/tool/{id}`, header `Cocov-Job-ID`).
//! Owns the `cache_artifacts` and `cache_tools` catalogue tables, the `repositories.cache_size`
//! total, and the blob store's `cache/` prefix.
//!
//! - [`store`]: the catalogue and its blobs: write-once items, last use, the per-repository quota
//!   with least-recently-used eviction (under a per-repository lock, so concurrent writers
//!   cannot overshoot), purge and evict.
//! - [`service`]: the HTTP service on a Unix socket, which each check's sandbox reaches through
//!   its relay (`sandbox::relay`); the credential is the running check set's job id.
//! - [`sweep`]: blobs whose row never came (a crash between the two) are removed after a grace.

pub mod service;
pub mod store;
pub mod sweep;

pub use store::{CacheError, CacheStore, Item, NewItem, Written, Zone, usage};
