//! Registry credentials (`cocov plugin login`), kept in `<store>/credentials.json` sealed with
//! the secrets key (AES-256-GCM, the registry's host as associated data, so a sealed password
//! moved to another registry's entry does not open). Only the daemon's user can read the file.

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;

use oci_client::secrets::RegistryAuth;
use serde::{Deserialize, Serialize};

use super::{ImageError, Store};
use crate::config::SecurityConfig;
use crate::secrets::Cipher;

const FILE: &str = "credentials.json";

#[derive(Serialize, Deserialize)]
struct Sealed {
    username: String,
    key_id: String,
    nonce: String,
    password: String,
}

/// Credentials by registry host; anonymous for any other.
#[derive(Default)]
pub struct Credentials {
    by_registry: BTreeMap<String, (String, String)>,
}

fn context(registry: &str) -> Vec<u8> {
    format!("registry-credentials:{registry}").into_bytes()
}

fn read_file(store: &Store) -> Result<BTreeMap<String, Sealed>, ImageError> {
    let path = store.dir().join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Invalid(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e.into()),
    }
}

fn write_file(store: &Store, entries: &BTreeMap<String, Sealed>) -> Result<(), ImageError> {
    std::fs::create_dir_all(store.dir())?;
    let path = store.dir().join(FILE);
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    std::io::Write::write_all(
        &mut file,
        &serde_json::to_vec_pretty(entries).expect("json"),
    )?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

impl Credentials {
    /// The stored credentials, opened with the configured key (needed only when there are some).
    pub fn load(store: &Store, security: &SecurityConfig) -> Result<Credentials, ImageError> {
        let entries = read_file(store)?;
        if entries.is_empty() {
            return Ok(Credentials::default());
        }
        let cipher = Cipher::from_config(security)
            .map_err(|e| ImageError::Invalid(format!("registry credentials: {e}")))?;
        let mut by_registry = BTreeMap::new();
        for (registry, sealed) in entries {
            let undecodable =
                |_| ImageError::Invalid(format!("registry credentials for {registry}: corrupt"));
            let password = cipher
                .open(
                    &hex::decode(&sealed.password).map_err(undecodable)?,
                    &hex::decode(&sealed.nonce).map_err(undecodable)?,
                    &sealed.key_id,
                    &context(&registry),
                )
                .map_err(|e| {
                    ImageError::Invalid(format!("registry credentials for {registry}: {e}"))
                })?;
            let password = String::from_utf8(password).map_err(|_| {
                ImageError::Invalid(format!("registry credentials for {registry}: corrupt"))
            })?;
            by_registry.insert(registry, (sealed.username, password));
        }
        Ok(Credentials { by_registry })
    }

    pub fn for_registry(&self, registry: &str) -> RegistryAuth {
        match self.by_registry.get(registry) {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    /// Stores (or replaces) the credentials of `registry`.
    pub fn save(
        store: &Store,
        security: &SecurityConfig,
        registry: &str,
        username: &str,
        password: &str,
    ) -> Result<(), ImageError> {
        let cipher = Cipher::from_config(security)
            .map_err(|e| ImageError::Invalid(format!("registry credentials: {e}")))?;
        let mut entries = read_file(store)?;
        let (sealed, nonce) = cipher.seal(password.as_bytes(), &context(registry));
        entries.insert(
            registry.to_string(),
            Sealed {
                username: username.to_string(),
                key_id: cipher.key_id().to_string(),
                nonce: hex::encode(nonce),
                password: hex::encode(sealed),
            },
        );
        write_file(store, &entries)
    }

    /// Forgets the credentials of `registry`; whether there were any.
    pub fn remove(store: &Store, registry: &str) -> Result<bool, ImageError> {
        let mut entries = read_file(store)?;
        let had = entries.remove(registry).is_some();
        if had {
            write_file(store, &entries)?;
        }
        Ok(had)
    }
}
