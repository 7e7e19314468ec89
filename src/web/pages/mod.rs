//! One file per page (see `web`'s module doc for the pattern).

pub mod add_repository;
pub mod admin;
pub mod admin_caches;
pub mod admin_health;
pub mod admin_jobs;
pub mod admin_repositories;
pub mod admin_secrets;
pub mod admin_tokens;
pub mod admin_users;
pub mod badges;
mod cache_items;
mod commit;
pub mod commit_checks;
pub mod commit_coverage;
pub mod commit_issues;
pub mod coverage_file;
pub mod repositories;
pub mod repository;
pub mod repository_settings;
mod secret_dates;
pub mod sign_in;
pub mod sign_out;
