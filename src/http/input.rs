//! Input that no handler can store: PostgreSQL refuses the NUL character in `text` and `jsonb`
//! (Rust strings are always valid UTF-8, so that is the one character to keep out). Refused here,
//! once for every route, as a 400 naming the parameter, instead of a 500 from the database.

use http::StatusCode;
use serde_json::Value;
use warp::{Filter, Rejection};

use super::ApiError;

/// The 400 for `what` (a parameter's name, quoted) holding a NUL character.
pub fn refused(what: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "request.invalid_input",
        format!("{what} contains a NUL character, which cannot be stored"),
    )
}

/// Rejects a request whose percent-decoded path or query contains a NUL character. Warp hands
/// path segments over still encoded, so a `%00` would otherwise reach the handlers' queries.
pub fn guard() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::path::full()
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(|path: warp::path::FullPath, query: String| async move {
            match check_path_and_query(path.as_str(), &query) {
                Ok(()) => Ok(()),
                Err(e) => Err(warp::reject::custom(e)),
            }
        })
        .untuple_one()
}

fn check_path_and_query(path: &str, query: &str) -> Result<(), ApiError> {
    if percent_encoding::percent_decode_str(path).any(|b| b == 0) {
        return Err(refused("The request path".to_string()));
    }
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key.contains('\0') || value.contains('\0') {
            let name = key.replace('\0', "\\u0000");
            return Err(refused(format!("Query parameter `{name}`")));
        }
    }
    Ok(())
}

/// A JSON body with a `\u0000` escape in any string (key or value) is refused, naming where.
/// Raw control characters are not valid JSON, so the escape is the only way a NUL gets in; the
/// byte scan keeps the common case free of a second parse.
pub fn check_json(body: &[u8]) -> Result<(), ApiError> {
    if !has_nul_escape(body) {
        return Ok(());
    }
    // Unparseable bodies are left to the typed parse, which says what is wrong.
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    match nul_at(&value, String::new()) {
        Some(at) if at.is_empty() => Err(refused("The JSON body".to_string())),
        Some(at) => Err(refused(format!("`{at}`"))),
        None => Ok(()),
    }
}

/// Whether a string of the document holds the escape `\u0000` (an escaped backslash followed
/// by `u0000` does not count).
fn has_nul_escape(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' {
            if body.get(i + 1..i + 6) == Some(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// The dotted path (as serde_path_to_error writes it) of the first string holding a NUL.
fn nul_at(value: &Value, at: String) -> Option<String> {
    let join = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item, join(&i.to_string()))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(join(&key.replace('\0', "\\u0000")))
            } else {
                nul_at(item, join(key))
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escapes_are_found_where_they_are() {
        assert!(check_json(br#"{"a":"b"}"#).is_ok());
        assert!(
            check_json(br#"{"a":"\\u0000"}"#).is_ok(),
            "an escaped backslash"
        );
        let e = check_json(br#"{"a":{"b":["x","y\u0000"]}}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.starts_with("`a.b.1`"), "{}", e.message);
        let e = check_json(br#"{"k\u0000":1}"#).unwrap_err();
        assert!(e.message.starts_with("`k\\u0000`"), "{}", e.message);
        assert!(check_json(br#""\u0000""#).is_err());
    }

    #[test]
    fn encoded_nuls_in_paths_and_queries_are_refused() {
        assert!(check_path_and_query("/v1/repositories/a%20b", "page=1&q=%C3%A9").is_ok());
        assert!(check_path_and_query("/v1/repositories/a%00b", "").is_err());
        let e = check_path_and_query("/v1/x", "page=1&search_term=a%00").unwrap_err();
        assert!(e.message.contains("`search_term`"), "{}", e.message);
    }
}
