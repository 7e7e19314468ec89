//! The issue uid when a plugin sends none: the original Ruby SDK's rule, so "ignore for good"
//! rules made against the original keep matching.

use sha1::{Digest, Sha1};

use super::IssueKind;

/// Lowercase hex SHA-1 of `kind<kind>file<file>line_start<n>line_end<n>message<message>`.
pub fn default_uid(
    kind: IssueKind,
    file: &str,
    line_start: i64,
    line_end: i64,
    message: &str,
) -> String {
    let text =
        format!("kind{kind}file{file}line_start{line_start}line_end{line_end}message{message}");
    hex::encode(Sha1::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_test_vectors() {
        assert_eq!(
            default_uid(IssueKind::Bug, "f", 1, 1, "foo"),
            "3f8f97ddda0b4388bd278778f9ef07296af52c6e"
        );
        assert_eq!(
            default_uid(IssueKind::Bug, "f", 1, 1, "boom"),
            "ce618f566e6637885e1e33c10d092822bb8cb033"
        );
    }
}
