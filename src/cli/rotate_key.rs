//! `cocov admin rotate-key`: re-encrypt every secret, and every user's GitHub token, under a new
//! key. The old key is never overwritten here: the new one goes to its own file, and the
//! configuration is pointed at it afterwards, so an interrupted rotation loses nothing (each
//! table is one transaction, and running it again finishes the job).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::Failure;
use crate::config::Config;
use crate::secrets::{self, Cipher};

pub async fn run(config: &Config, pool: &sqlx::PgPool, new_key_file: &Path) -> Result<(), Failure> {
    let old = Cipher::from_config(&config.security).map_err(|e| Failure {
        status: 2,
        message: format!("the current key: {e}"),
    })?;
    let new = if new_key_file.exists() {
        let text = std::fs::read_to_string(new_key_file)
            .map_err(|e| Failure::new(format!("{}: {e}", new_key_file.display())))?;
        Cipher::from_hex(text.trim(), &new_key_file.display().to_string()).map_err(|e| Failure {
            status: 2,
            message: e.to_string(),
        })?
    } else {
        let key: [u8; 32] = rand::random();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(new_key_file)
            .map_err(|e| Failure::new(format!("{}: {e}", new_key_file.display())))?;
        file.write_all(hex::encode(key).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| Failure::new(format!("{}: {e}", new_key_file.display())))?;
        println!("wrote a new random key to {}", new_key_file.display());
        Cipher::from_bytes(&key)
    };
    if new.key_id() == old.key_id() {
        return Err(Failure::new("the new key is the current key"));
    }
    let count = secrets::rotate_key(pool, &old, &new)
        .await
        .map_err(Failure::new)?;
    println!(
        "re-encrypted {count} secret(s) from key {} to key {}",
        old.key_id(),
        new.key_id()
    );
    let tokens = crate::github_sign_in::rotate_token_key(pool, &old, &new)
        .await
        .map_err(|e| Failure::new(format!("{e:#}")))?;
    println!("re-encrypted {tokens} user GitHub token(s)");
    println!(
        "now make {} the key (security.cryptographic_key_file, or replace {} with it) and restart",
        new_key_file.display(),
        config.security.cryptographic_key_file.display()
    );
    Ok(())
}
