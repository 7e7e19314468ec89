//! Request bodies read with an explicit limit, so an oversized body is a 413 with a JSON error,
//! and malformed JSON is a 400 that says what is wrong.

use bytes::{Bytes, BytesMut};
use futures_util::TryStreamExt;
use http::StatusCode;
use serde::de::DeserializeOwned;
use warp::{Buf, Filter, Rejection};

use super::ApiError;

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request.too_large",
        format!("The request body exceeds the limit of {limit} bytes"),
    )
}

/// The whole body, refusing more than `limit` bytes (declared or actually sent).
pub fn bytes(limit: u64) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |declared: Option<u64>, stream| async move {
            if declared.is_some_and(|n| n > limit) {
                return Err(warp::reject::custom(too_large(limit)));
            }
            read_limited(stream, limit)
                .await
                .map_err(warp::reject::custom)
        })
}

/// A body not read yet: for handlers that must authorize the request first, so a caller
/// without the right cannot make the daemon wait for (and buffer) what it sends.
pub struct Deferred {
    declared: Option<u64>,
    limit: u64,
    stream: futures_util::stream::BoxStream<'static, Result<Bytes, warp::Error>>,
}

impl Deferred {
    /// The most this body can be: its declared length, or the limit when none was declared.
    pub fn most(&self) -> u64 {
        self.declared.map_or(self.limit, |n| n.min(self.limit))
    }

    /// The whole body, at most the limit (declared or actually sent).
    pub async fn bytes(self) -> Result<Bytes, ApiError> {
        if self.declared.is_some_and(|n| n > self.limit) {
            return Err(too_large(self.limit));
        }
        read_limited(self.stream, self.limit).await
    }

    /// The body as JSON of type `T` (see [`json`]).
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        parse_json(&self.bytes().await?)
    }
}

/// The body, to be read by the handler when it decides to ([`Deferred`]).
pub fn deferred(limit: u64) -> impl Filter<Extract = (Deferred,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .map(move |declared: Option<u64>, stream| Deferred {
            declared,
            limit,
            stream: boxed(stream),
        })
}

fn boxed<S, B>(stream: S) -> futures_util::stream::BoxStream<'static, Result<Bytes, warp::Error>>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    use futures_util::StreamExt;
    stream
        .map(|chunk| {
            chunk.map(|mut buf| {
                let n = buf.remaining();
                buf.copy_to_bytes(n)
            })
        })
        .boxed()
}

async fn read_limited<S, B>(stream: S, limit: u64) -> Result<Bytes, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut out = BytesMut::new();
    futures_util::pin_mut!(stream);
    while let Some(mut chunk) = stream.try_next().await.map_err(unreadable)? {
        if out.len() as u64 + chunk.remaining() as u64 > limit {
            return Err(too_large(limit));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(out.freeze())
}

/// A body read error: the server-wide body limit (tower-http) surfaces here as a length error.
fn unreadable(error: warp::Error) -> ApiError {
    let over_limit = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request.too_large",
            "The request body exceeds the size limit",
        )
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return over_limit();
        }
        source = e.source();
    }
    // The type test above fails when tower-http and we resolve different http-body-util
    // versions; the error's text is the same in every version.
    if error.to_string().contains("length limit exceeded") {
        return over_limit();
    }
    ApiError::bad_request(
        "request.body_unreadable",
        format!("The request body could not be read: {error}"),
    )
}

/// A JSON body of type `T`; errors name the position and the problem.
pub fn json<T: DeserializeOwned + Send>(
    limit: u64,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    bytes(limit)
        .and_then(|body: Bytes| async move { parse_json(&body).map_err(warp::reject::custom) })
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "request.invalid_json",
            "A JSON body is required",
        ));
    }
    super::input::check_json(body)?;
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." {
            String::new()
        } else {
            format!(" at `{path}`")
        };
        ApiError::bad_request(
            "request.invalid_json",
            format!("Invalid JSON body{at}: {inner}"),
        )
    })
}
