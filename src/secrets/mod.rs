//! Secrets: organisation and repository values that checks receive as files. Owns the
//! `secrets` table. Values are sealed with AES-256-GCM under the configured key, each row naming
//! the key that sealed it; they are written through the API or CLI and never read back out
//! except into the sandbox of a check whose manifest mounts them. An organisation secret reaches
//! only the repositories it is granted to ([`grants`]).

mod cipher;
pub mod grants;
mod store;

pub use cipher::{Cipher, KeyError};
pub use store::{
    MAX_VALUE_BYTES, NameStatus, Scope, SecretError, SecretInfo, audit, delete, list,
    missing_for_repository, name_status, put, resolve_for_repository, rotate_key, update_value,
    valid_name,
};
