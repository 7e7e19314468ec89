//! S3 backend on the `minio` crate, for any S3-compatible server (path-style addressing is used
//! automatically for non-AWS hosts).
//!
//! Time bounds: single-request operations (exists, delete, a listing page, bucket checks) get
//! `timeout_seconds` in total. Transfers get it as a *stall* limit instead — they fail when no
//! data moved for that long — so a multi-gigabyte archive is not cut off by a limit sized for
//! small requests, yet a hung server is still noticed.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use minio::s3::MinioClient;
use minio::s3::builders::ObjectContent;
use minio::s3::creds::StaticProvider;
use minio::s3::error::{Error as MinioError, S3ServerError};
use minio::s3::http::BaseUrl;
use minio::s3::minio_error_response::MinioErrorCode;
use minio::s3::types::{Region, S3Api, ToStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{BlobKey, BlobMeta, BlobPrefix, BlobStore, StorageError, temp_sibling};
use crate::config::S3Config;

/// Upload part size. The crate's default (64 MiB) would hold 64 MiB per upload in memory;
/// 8 MiB bounds that while keeping request counts low. Grown for huge files, since S3 allows
/// at most 10,000 parts.
const PART_SIZE: u64 = 8 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;
/// Read size when streaming a local file to the uploader.
const CHUNK: usize = 256 * 1024;
/// Deletes in flight during `delete_prefix`.
const DELETE_CONCURRENCY: usize = 8;
/// Listing delimiter. minio-rs 0.4 always sends `delimiter=`, empty when recursive; AWS and moto
/// ignore an empty delimiter but s3s-fs 0.14 treats it as a real one and answers with
/// CommonPrefixes instead of objects. A non-empty delimiter that no valid key can contain
/// (`BlobKey` forbids `~`) makes every server return each object under the prefix directly,
/// in one request per page, with standard S3 semantics and no server-specific branch.
const LIST_DELIMITER: &str = "~";

type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

pub struct S3Store {
    client: MinioClient,
    bucket: String,
    endpoint: String,
    timeout: Duration,
}

impl S3Store {
    /// Connects and makes sure the bucket exists, creating it when `create_bucket` allows.
    pub async fn open(config: &S3Config) -> Result<S3Store, StorageError> {
        let setup = |message: String| StorageError::S3 {
            context: "storage.s3 configuration".into(),
            message,
        };
        if config.endpoint.trim().is_empty() {
            return Err(setup(
                "storage.s3.endpoint is empty (for example http://127.0.0.1:9000)".into(),
            ));
        }
        let mut base_url: BaseUrl = config
            .endpoint
            .trim_end_matches('/')
            .parse()
            .map_err(|e| setup(format!("endpoint `{}`: {e}", config.endpoint)))?;
        // A configured region is used as is; without one the crate would ask the server
        // (GetBucketLocation), which S3-compatible servers often do not implement.
        if !config.region.is_empty() {
            base_url.region = Region::new(config.region.as_str())
                .map_err(|e| setup(format!("region `{}`: {e}", config.region)))?;
        }
        let provider = (!config.access_key_id.is_empty())
            .then(|| StaticProvider::new(&config.access_key_id, &config.secret_access_key, None));
        let client = minio::s3::MinioClientBuilder::new(base_url)
            .provider(provider)
            .skip_region_lookup(config.region.is_empty())
            .build()
            .map_err(|e| setup(message(&e)))?;
        let store = S3Store {
            client,
            bucket: config.bucket.clone(),
            endpoint: config.endpoint.trim_end_matches('/').to_owned(),
            timeout: Duration::from_secs(config.timeout_seconds.max(1)),
        };
        if !store.bucket_exists().await? {
            if !config.create_bucket {
                return Err(store.missing_bucket("open"));
            }
            store.create_bucket().await?;
        }
        Ok(store)
    }

    async fn bucket_exists(&self) -> Result<bool, StorageError> {
        let context = || format!("s3 bucket `{}` at {}", self.bucket, self.endpoint);
        self.bounded(context, async {
            Ok(self
                .client
                .bucket_exists(&self.bucket)?
                .build()
                .send()
                .await?
                .exists())
        })
        .await
    }

    async fn create_bucket(&self) -> Result<(), StorageError> {
        let context = || format!("create s3 bucket `{}` at {}", self.bucket, self.endpoint);
        let created = self
            .bounded(context, async {
                self.client
                    .create_bucket(&self.bucket)?
                    .build()
                    .send()
                    .await
                    .map(drop)
            })
            .await;
        match created {
            Ok(()) => Ok(()),
            // Another host may have created it meanwhile (BucketAlreadyOwnedByYou and friends).
            Err(e) if self.bucket_exists().await.unwrap_or(false) => {
                tracing::debug!(error = %e, bucket = %self.bucket, "bucket created concurrently");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn missing_bucket(&self, operation: &str) -> StorageError {
        StorageError::S3 {
            context: format!(
                "{operation} s3 bucket `{}` at {}",
                self.bucket, self.endpoint
            ),
            message:
                "the bucket does not exist (create it, or set storage.s3.create_bucket = true)"
                    .into(),
        }
    }

    /// Runs one request under the total time limit, naming the operation in any error.
    async fn bounded<T>(
        &self,
        context: impl FnOnce() -> String,
        request: impl Future<Output = Result<T, MinioError>>,
    ) -> Result<T, StorageError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(failed(context(), &e)),
            Err(_) => Err(self.timed_out(context())),
        }
    }

    fn timed_out(&self, context: String) -> StorageError {
        StorageError::Timeout {
            context: format!("{context} (no progress for {}s)", self.timeout.as_secs()),
        }
    }

    /// Uploads a stream of known size, failing when it stalls for longer than the timeout.
    async fn upload(
        &self,
        key: &BlobKey,
        context: String,
        body: ByteStream,
        size: u64,
    ) -> Result<(), StorageError> {
        let progress = Arc::new(Progress::new());
        let watched = progress.clone();
        let body = body.inspect(move |_| watched.touch());
        let send = async {
            self.client
                .put_object_content(
                    &self.bucket,
                    key.as_str(),
                    ObjectContent::new_from_stream(body, Some(size)),
                )?
                .part_size(part_size(size))
                .build()
                .send()
                .await
        };
        // Dropping a stalled multipart upload leaves its parts on the server; configure an
        // AbortIncompleteMultipartUpload lifecycle rule on the bucket to reclaim them.
        tokio::select! {
            sent = send => sent.map(drop).map_err(|e| failed(context, &e)),
            () = progress.stalled(self.timeout) => Err(self.timed_out(context)),
        }
    }

    /// Starts a download; the body is then read chunk by chunk with `next_chunk`.
    async fn download(
        &self,
        key: &BlobKey,
        context: &str,
    ) -> Result<(ByteStream, Option<u64>), StorageError> {
        let request = async {
            self.client
                .get_object(&self.bucket, key.as_str())?
                .build()
                .send()
                .await
        };
        let response = match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) if is_code(&e, &MinioErrorCode::NoSuchKey) => {
                return Err(StorageError::NotFound {
                    key: key.to_string(),
                });
            }
            Ok(Err(e)) => {
                return Err(failed(context, &e));
            }
            Err(_) => return Err(self.timed_out(context.into())),
        };
        let content = response.content().map_err(|e| failed(context, &e))?;
        let (stream, size) = content
            .to_stream()
            .await
            .map_err(|e| StorageError::io(context, e))?;
        Ok((stream, size.value()))
    }

    async fn next_chunk(
        &self,
        body: &mut ByteStream,
        context: &str,
    ) -> Result<Option<Bytes>, StorageError> {
        match tokio::time::timeout(self.timeout, body.next()).await {
            Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
            // The body breaking off half-way is the connection, not the object.
            Ok(Some(Err(e))) => Err(StorageError::Unavailable {
                context: context.into(),
                message: e.to_string(),
            }),
            Ok(None) => Ok(None),
            Err(_) => Err(self.timed_out(context.into())),
        }
    }

    async fn write_download(
        &self,
        key: &BlobKey,
        path: &Path,
        tmp: &Path,
        context: &str,
    ) -> Result<u64, StorageError> {
        let (mut body, size) = self.download(key, context).await?;
        let io = |e| StorageError::io(context, e);
        let mut file = tokio::fs::File::options()
            .write(true)
            .create_new(true)
            .open(tmp)
            .await
            .map_err(io)?;
        let mut written = 0u64;
        while let Some(chunk) = self.next_chunk(&mut body, context).await? {
            file.write_all(&chunk).await.map_err(io)?;
            written += chunk.len() as u64;
        }
        check_length(size, written, context)?;
        file.sync_all().await.map_err(io)?;
        drop(file);
        tokio::fs::rename(tmp, path).await.map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::File::open(dir)
                .await
                .map_err(io)?
                .sync_all()
                .await
                .map_err(io)?;
        }
        Ok(written)
    }
}

#[async_trait::async_trait]
impl BlobStore for S3Store {
    fn describe(&self) -> String {
        format!("s3 {}/{}", self.endpoint, self.bucket)
    }

    async fn put(&self, key: &BlobKey, data: Bytes) -> Result<(), StorageError> {
        let size = data.len() as u64;
        // Handed over in slices so the stall watchdog sees progress as parts are taken.
        let chunks: Vec<std::io::Result<Bytes>> = (0..data.len())
            .step_by(CHUNK)
            .map(|at| Ok(data.slice(at..data.len().min(at + CHUNK))))
            .collect();
        self.upload(
            key,
            format!("put {key}"),
            Box::pin(futures_util::stream::iter(chunks)),
            size,
        )
        .await
    }

    async fn put_file(&self, key: &BlobKey, path: &Path) -> Result<u64, StorageError> {
        let context = format!("put {key} from {}", path.display());
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| StorageError::io(&context, e))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| StorageError::io(&context, e))?
            .len();
        let body = futures_util::stream::try_unfold(file, |mut file| async move {
            let mut buf = BytesMut::with_capacity(CHUNK);
            let n = file.read_buf(&mut buf).await?;
            Ok::<_, std::io::Error>((n > 0).then(|| (buf.freeze(), file)))
        });
        self.upload(key, context, Box::pin(body), size).await?;
        Ok(size)
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, StorageError> {
        let context = format!("get {key}");
        let (mut body, size) = self.download(key, &context).await?;
        // Trust the announced length for the allocation only up to a point.
        let capacity = size.unwrap_or(0).min(64 * 1024 * 1024);
        let mut data = BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
        while let Some(chunk) = self.next_chunk(&mut body, &context).await? {
            data.extend_from_slice(&chunk);
        }
        check_length(size, data.len() as u64, &context)?;
        Ok(data.freeze())
    }

    async fn get_to_file(&self, key: &BlobKey, path: &Path) -> Result<u64, StorageError> {
        let context = format!("get {key} to {}", path.display());
        let tmp = temp_sibling(path)?;
        let result = self.write_download(key, path, &tmp, &context).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, StorageError> {
        let context = || format!("exists {key}");
        let request = async {
            self.client
                .stat_object(&self.bucket, key.as_str())?
                .build()
                .send()
                .await
        };
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) if is_code(&e, &MinioErrorCode::NoSuchKey) => Ok(false),
            Ok(Err(e)) => Err(failed(context(), &e)),
            Err(_) => Err(self.timed_out(context())),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        let context = || format!("delete {key}");
        let request = async {
            self.client
                .delete_object(&self.bucket, key.as_str())?
                .build()
                .send()
                .await
        };
        match tokio::time::timeout(self.timeout, request).await {
            // S3 answers 204 for an absent key; some compatible servers say NoSuchKey instead.
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if is_code(&e, &MinioErrorCode::NoSuchKey) => Ok(()),
            Ok(Err(e)) => Err(failed(context(), &e)),
            Err(_) => Err(self.timed_out(context())),
        }
    }

    async fn list(&self, prefix: &BlobPrefix) -> Result<Vec<BlobMeta>, StorageError> {
        let context = || format!("list `{prefix}` in s3 bucket `{}`", self.bucket);
        let builder = self
            .client
            .list_objects(&self.bucket)
            .map_err(|e| StorageError::S3 {
                context: context(),
                message: e.to_string(),
            })?;
        let mut pages = builder
            .prefix((!prefix.is_empty()).then(|| prefix.to_string()))
            .delimiter(Some(LIST_DELIMITER.to_owned()))
            .build()
            .to_stream()
            .await;
        let mut objects = Vec::new();
        loop {
            let page = match tokio::time::timeout(self.timeout, pages.next()).await {
                Ok(Some(Ok(page))) => page,
                Ok(Some(Err(e))) => {
                    return Err(failed(context(), &e));
                }
                Ok(None) => break,
                Err(_) => return Err(self.timed_out(context())),
            };
            for entry in page.contents {
                // Objects not written through BlobKey (by other tools) cannot be addressed by
                // callers anyway; they are left alone rather than failing the whole listing.
                let key = match BlobKey::new(&entry.name) {
                    Ok(key) if !entry.is_prefix && prefix.contains(&key) => key,
                    _ => {
                        tracing::warn!(bucket = %self.bucket, name = %entry.name, "skipping foreign object name");
                        continue;
                    }
                };
                objects.push(BlobMeta {
                    key,
                    size: entry.size.unwrap_or(0),
                });
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn delete_prefix(&self, prefix: &BlobPrefix) -> Result<u64, StorageError> {
        let objects = self.list(prefix).await?;
        let count = objects.len() as u64;
        futures_util::stream::iter(objects)
            .map(|meta| async move { self.delete(&meta.key).await })
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(count)
    }

    async fn check(&self) -> Result<(), StorageError> {
        if self.bucket_exists().await? {
            Ok(())
        } else {
            Err(self.missing_bucket("check"))
        }
    }
}

/// `None` (one plain PUT) up to one part; the crate rejects an explicit part size larger than
/// the object, including the empty one.
fn part_size(size: u64) -> Option<u64> {
    const MIB: u64 = 1024 * 1024;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    (size > PART_SIZE).then(|| needed.max(PART_SIZE))
}

fn check_length(expected: Option<u64>, got: u64, context: &str) -> Result<(), StorageError> {
    match expected {
        Some(expected) if expected != got => Err(StorageError::io(
            context,
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the server announced {expected} bytes but sent {got}"),
            ),
        )),
        _ => Ok(()),
    }
}

/// A failed request as a [`StorageError`]: [`StorageError::Unavailable`] when the store could
/// not be reached or answered that it cannot serve now (5xx, `SlowDown`), else
/// [`StorageError::S3`].
fn failed(context: impl Into<String>, e: &MinioError) -> StorageError {
    let context = context.into();
    let message = message(e);
    if is_unavailable(e) {
        StorageError::Unavailable { context, message }
    } else {
        StorageError::S3 { context, message }
    }
}

fn is_unavailable(e: &MinioError) -> bool {
    use minio::s3::error::{NetworkError, ValidationErr};
    let transient_code = |code: &str| {
        matches!(code, "InternalError" | "ServiceUnavailable" | "SlowDown")
            || code.starts_with("HTTP 5")
    };
    match e {
        MinioError::Network(NetworkError::ServerError(status)) => *status >= 500,
        // Connection refused or reset, no answer in time: the request never got served.
        MinioError::Network(NetworkError::ReqwestError(r))
        | MinioError::Validation(ValidationErr::HttpError(r)) => {
            r.is_connect() || r.is_timeout() || r.is_request()
        }
        MinioError::S3Server(S3ServerError::S3Error(resp)) => {
            transient_code(&resp.code().to_string())
        }
        MinioError::S3Server(S3ServerError::InvalidServerResponse {
            http_status_code, ..
        })
        | MinioError::S3Server(S3ServerError::HttpError(http_status_code, _)) => {
            *http_status_code >= 500
        }
        _ => false,
    }
}

fn is_code(e: &MinioError, code: &MinioErrorCode) -> bool {
    matches!(e, MinioError::S3Server(S3ServerError::S3Error(resp)) if resp.code() == *code)
}

/// The server's error code and message when there is one, else the whole error chain (the
/// crate's top-level messages, like "Network error occurred", hide the cause).
fn message(e: &MinioError) -> String {
    if let MinioError::S3Server(S3ServerError::S3Error(resp)) = e {
        let detail = resp.message().as_deref().unwrap_or("no message");
        return format!("{}: {detail}", resp.code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Last time data moved, for the stall watchdog.
struct Progress {
    start: Instant,
    last_ms: AtomicU64,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Resolves once nothing moved for `limit`.
    async fn stalled(&self, limit: Duration) {
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        loop {
            let idle = self
                .now_ms()
                .saturating_sub(self.last_ms.load(Ordering::Relaxed));
            if idle >= limit_ms {
                return;
            }
            tokio::time::sleep(Duration::from_millis(limit_ms - idle)).await;
        }
    }
}
