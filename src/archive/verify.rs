//! The SHA-256 check every archive passes before it is read.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::ArchiveError;

/// `sha256:<hex>` in the sidecar, and the digest recorded at ingestion when there is one.
pub fn verify(archive: &Path, sidecar: &str, recorded: Option<&str>) -> Result<(), ArchiveError> {
    let (algorithm, expected) = sidecar
        .trim()
        .split_once(':')
        .ok_or_else(|| ArchiveError::Integrity(format!("malformed checksum `{sidecar}`")))?;
    if algorithm != "sha256" {
        return Err(ArchiveError::Integrity(format!(
            "unsupported checksum algorithm `{algorithm}`"
        )));
    }
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(archive)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let actual = hex::encode(hasher.finalize());
    for expected in std::iter::once(expected.trim()).chain(recorded) {
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(ArchiveError::Integrity(format!(
                "digest {actual} does not match the expected {expected}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_digest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar.zst");
        std::fs::write(&path, b"any bytes stand for an archive here").unwrap();
        let e = verify(&path, &format!("sha256:{}", "0".repeat(64)), None).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        assert!(verify(&path, "nocolon", None).is_err());
        assert!(verify(&path, &format!("md5:{}", "0".repeat(32)), None).is_err());
        let digest = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
        verify(&path, &format!("sha256:{digest}"), Some(&digest)).unwrap();
        assert!(verify(&path, &format!("sha256:{digest}"), Some(&"1".repeat(64))).is_err());
    }
}
