//! The key that decrypts secrets, as a backup carries it and as restore places it.

use std::path::{Path, PathBuf};

use super::BackupError;
use crate::config::SecurityConfig;
use crate::secrets::Cipher;

/// A validated key: its hex text and its id (compared instead of the key itself).
pub(super) struct Key {
    pub hex: String,
    id: String,
}

impl Key {
    fn parse(hex: &str, source: &str) -> Result<Key, BackupError> {
        let hex = hex.trim().to_string();
        let id = Cipher::from_hex(&hex, source)
            .map_err(|e| BackupError::Invalid(e.to_string()))?
            .key_id()
            .to_string();
        Ok(Key { hex, id })
    }

    /// The key in `path`, or None when the file does not exist.
    pub fn read_file(path: &Path) -> Result<Option<Key>, BackupError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Key::parse(&text, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BackupError::io(format!("read {}", path.display()), e)),
        }
    }

    /// The configured key (inline, else its file), or None when none is configured yet.
    pub fn configured(security: &SecurityConfig) -> Result<Option<Key>, BackupError> {
        if security.cryptographic_key.is_empty() {
            Key::read_file(&security.cryptographic_key_file)
        } else {
            Key::parse(&security.cryptographic_key, "security.cryptographic_key").map(Some)
        }
    }

    /// Writes the key, readable by its owner only, creating the parent directory.
    pub fn write_file(&self, path: &Path) -> Result<(), BackupError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| BackupError::io(format!("create {}", parent.display()), e))?;
        }
        super::write_private(path, format!("{}\n", self.hex).as_bytes())
    }
}

/// What restore does with the backup's key.
pub(super) enum KeyPlan {
    /// The configured key is the backup's (or the backup has none).
    Keep,
    Write(PathBuf),
}

/// Decided before anything is written: nothing when the configured key is the backup's; the
/// configured key file when no key is configured yet; `key_file` (the operator's choice) when
/// given; otherwise a differing key is refused, since the restored secrets would not decrypt.
pub(super) fn plan(
    security: &SecurityConfig,
    backup: Option<&Key>,
    key_file: Option<&Path>,
) -> Result<KeyPlan, BackupError> {
    let Some(backup) = backup else {
        return Ok(KeyPlan::Keep);
    };
    if let Some(path) = key_file {
        return match Key::read_file(path)? {
            Some(existing) if existing.id != backup.id => Err(BackupError::Invalid(format!(
                "{} already holds a different key; name a new file for the backup's key",
                path.display()
            ))),
            _ => Ok(KeyPlan::Write(path.to_path_buf())),
        };
    }
    match Key::configured(security)? {
        None => Ok(KeyPlan::Write(security.cryptographic_key_file.clone())),
        Some(configured) if configured.id == backup.id => Ok(KeyPlan::Keep),
        Some(_) => {
            let source = if security.cryptographic_key.is_empty() {
                security.cryptographic_key_file.display().to_string()
            } else {
                "security.cryptographic_key".into()
            };
            Err(BackupError::Invalid(format!(
                "the configured secret key ({source}) differs from the backup's, so restored \
                 secrets would not decrypt: pass --key-file PATH to write the backup's key to \
                 PATH, then set security.cryptographic_key_file to it (and \
                 security.cryptographic_key to \"\")"
            )))
        }
    }
}
