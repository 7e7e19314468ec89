//! One file per page (see `web`'s module doc for the pattern).

pub mod admin;
pub mod admin_tokens;
pub mod admin_users;
pub mod badges;
pub mod repositories;
pub mod repository;
mod series;
pub mod sign_in;
pub mod sign_out;
