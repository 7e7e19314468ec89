//! Path segments as warp hands them over: still percent-encoded.

/// Percent-decodes one path segment. `None` for a malformed escape (`%2`, `%zz`) or bytes that
/// are not UTF-8: no repository or branch can have such a name.
pub fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn segments_are_decoded_strictly() {
        assert_eq!(percent_decode("feature/x").as_deref(), Some("feature/x"));
        assert_eq!(percent_decode("feature%2Fx").as_deref(), Some("feature/x"));
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%FF"), None);
    }
}
