//! The cache's HTTP service, on the original's routes and headers, served on a Unix socket that
//! each check's sandbox gets bound in (its relay forwards the plugin's loopback connections to
//! it). Bodies stream through a spool file in both directions: memory stays bounded whatever the
//! item's size.
//!
//! The credential is the `Cocov-Job-ID` header: the job id of a check set that is queued or
//! running right now (see [`crate::checks::running_job_repository`]); it names the repository
//! whose artifacts the caller may read and write, and stops working when the set ends.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::store::{CacheError, CacheStore, MAX_ID_LEN, MAX_NAME_LEN, NewItem, Zone};
use crate::app::App;

pub const JOB_HEADER: &str = "cocov-job-id";
pub const FILENAME_HEADER: &str = "filename";

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupLabels {
    zone: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    direction: &'static str,
}

/// Hits, misses, bytes and evictions, registered once per process.
#[derive(Default)]
struct CacheMetrics {
    lookups: Family<LookupLabels, Counter>,
    bytes: Family<BytesLabels, Counter>,
    evictions: Counter,
}

impl CacheMetrics {
    fn register(metrics: &crate::metrics::Metrics) -> CacheMetrics {
        let m = CacheMetrics::default();
        metrics.register(
            "cache_lookups",
            "Cache GET/HEAD by zone and outcome (hit, miss)",
            m.lookups.clone(),
        );
        metrics.register(
            "cache_bytes",
            "Cache bytes read and written",
            m.bytes.clone(),
        );
        metrics.register(
            "cache_evictions",
            "Cache items evicted to keep a repository within its quota",
            m.evictions.clone(),
        );
        m
    }

    fn lookup(&self, zone: Zone, outcome: &'static str) {
        self.lookups
            .get_or_create(&LookupLabels {
                zone: zone.kind(),
                outcome,
            })
            .inc();
    }

    fn bytes(&self, direction: &'static str, n: u64) {
        self.bytes
            .get_or_create(&BytesLabels { direction })
            .inc_by(n);
    }
}

struct State {
    app: App,
    store: CacheStore,
    spool: PathBuf,
    metrics: CacheMetrics,
}

/// Binds the socket (replacing a stale one), then serves until `shutdown` turns true.
pub async fn serve(app: App, mut shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
    let socket = app.config.cache.socket(&app.config.worker);
    let spool = app.config.worker.work_dir.join("cache-spool");
    // What a crash left mid-transfer; nothing else uses this directory.
    let _ = tokio::fs::remove_dir_all(&spool).await;
    tokio::fs::create_dir_all(&spool).await?;
    if let Some(dir) = socket.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let _ = tokio::fs::remove_file(&socket).await;
    let listener = tokio::net::UnixListener::bind(&socket)?;
    // The sandbox's user (another host user when the daemon is root) connects through the
    // bind; the job id, not the socket's mode, is the credential.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
    tracing::info!(socket = %socket.display(), "cache service listening");
    let state = Arc::new(State {
        store: CacheStore::from_app(&app),
        metrics: CacheMetrics::register(&app.metrics),
        app,
        spool,
    });
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "cache service: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "cache connection ended with an error");
            }
        });
    }
    let _ = tokio::fs::remove_file(&socket).await;
    Ok(())
}

/// A refusal: status, the JSON `{"code","message"}` every error of cocov has, and for HEAD no
/// body.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code,
        message: message.into(),
    }
}

impl From<CacheError> for Refusal {
    fn from(e: CacheError) -> Refusal {
        match e {
            CacheError::Exists => {
                refuse(StatusCode::CONFLICT, "cache.already_exists", e.to_string())
            }
            CacheError::LargerThanQuota { .. } => refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "cache.exceeds_quota",
                e.to_string(),
            ),
            CacheError::TooLarge { .. } => refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "cache.too_large",
                format!("Request entity too large: {e}"),
            ),
            CacheError::NotFound => not_found(),
            other => {
                tracing::error!(error = %other, "cache service");
                refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cache.unavailable",
                    "The cache is unavailable right now; try again later",
                )
            }
        }
    }
}

fn not_found() -> Refusal {
    refuse(StatusCode::NOT_FOUND, "not_found", "Not found")
}

async fn handle(state: &State, request: Request<Incoming>) -> Response<Body> {
    let head = request.method() == Method::HEAD;
    match route(state, request).await {
        Ok(response) => response,
        Err(r) => {
            let body = if head {
                Bytes::new()
            } else {
                Bytes::from(serde_json::json!({ "code": r.code, "message": r.message }).to_string())
            };
            Response::builder()
                .status(r.status)
                .header(header::CONTENT_TYPE, "application/json")
                .body(full(body))
                .expect("a valid response")
        }
    }
}

async fn route(state: &State, request: Request<Incoming>) -> Result<Response<Body>, Refusal> {
    let path = request.uri().path().to_string();
    let (kind, id) = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .ok_or_else(not_found)?;
    if kind != "artifact" && kind != "tool" {
        return Err(not_found());
    }
    let method = request.method().clone();
    if ![Method::GET, Method::HEAD, Method::POST].contains(&method) {
        return Err(refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Only GET, HEAD and POST are served here",
        ));
    }
    let repository = authenticate(state, request.headers()).await?;
    if id.is_empty()
        || id.len() > MAX_ID_LEN
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "cache.invalid_id",
            format!("The item id must be 1 to {MAX_ID_LEN} of A-Z a-z 0-9 . _ -"),
        ));
    }
    let zone = if kind == "artifact" {
        Zone::Artifacts(repository)
    } else {
        Zone::Tools
    };
    if method == Method::POST {
        store(state, zone, id, request).await
    } else {
        load(state, zone, id, method == Method::HEAD).await
    }
}

/// The repository of the running check set whose job id the caller holds; 403 otherwise, as
/// the original.
async fn authenticate(state: &State, headers: &HeaderMap) -> Result<i64, Refusal> {
    let Some(value) = headers.get(JOB_HEADER) else {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "cache.missing_job_id",
            "Missing job identifier",
        ));
    };
    let forbidden = || refuse(StatusCode::FORBIDDEN, "forbidden", "Forbidden");
    let job = value
        .to_str()
        .ok()
        .and_then(|v| uuid::Uuid::parse_str(v.trim()).ok())
        .ok_or_else(forbidden)?;
    match crate::checks::running_job_repository(&state.app.db, job).await {
        Ok(Some(repository)) => Ok(repository),
        Ok(None) => Err(forbidden()),
        Err(e) => Err(CacheError::Db(e).into()),
    }
}

async fn load(state: &State, zone: Zone, id: &str, head: bool) -> Result<Response<Body>, Refusal> {
    let Some(item) = state.store.find(zone, id).await? else {
        state.metrics.lookup(zone, "miss");
        return Err(not_found());
    };
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, item.mime.as_str())
        .header(header::CONTENT_LENGTH, item.size);
    if head {
        state.store.touch(zone, item.id).await?;
        state.metrics.lookup(zone, "hit");
        return Ok(response.body(full(Bytes::new())).expect("a valid response"));
    }
    let spool = Spool::new(&state.spool);
    let read = state.store.read_to(zone, &item, &spool.path).await;
    if matches!(read, Err(CacheError::NotFound)) {
        state.metrics.lookup(zone, "miss");
    }
    read?;
    state.store.touch(zone, item.id).await?;
    state.metrics.lookup(zone, "hit");
    // Unlinked once open: the open file streams out, the name is gone.
    let file = tokio::fs::File::open(&spool.path)
        .await
        .map_err(|e| CacheError::Storage(crate::storage::StorageError::io("cache spool", e)))?;
    drop(spool);
    state.metrics.bytes("read", item.size as u64);
    Ok(response.body(file_body(file)).expect("a valid response"))
}

async fn store(
    state: &State,
    zone: Zone,
    id: &str,
    request: Request<Incoming>,
) -> Result<Response<Body>, Refusal> {
    let headers = request.headers();
    let mime = header_text(headers, header::CONTENT_TYPE.as_str()).ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            "cache.missing_content_type",
            "Missing Content-Type",
        )
    })?;
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    let size = header_text(headers, header::CONTENT_LENGTH.as_str())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n > 0 && !chunked)
        .ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "cache.missing_content_length",
                "Missing Content-Length",
            )
        })?;
    let name = header_text(headers, FILENAME_HEADER)
        .filter(|n| n.len() <= MAX_NAME_LEN)
        .ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "cache.missing_filename",
                "Missing Filename",
            )
        })?;
    let item = NewItem {
        name_hash: id.to_string(),
        name,
        mime,
        size,
    };
    state.store.admit(zone, &item).await?;
    let spool = Spool::new(&state.spool);
    receive(request.into_body(), &spool.path, size).await?;
    let written = state.store.write(zone, &item, &spool.path).await?;
    state.metrics.bytes("written", size);
    state.metrics.evictions.inc_by(written.evicted.len() as u64);
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(full(Bytes::new()))
        .expect("a valid response"))
}

/// Writes the body to `path`, refusing one that is not exactly `size` bytes.
async fn receive(mut body: Incoming, path: &Path, size: u64) -> Result<(), Refusal> {
    let spool_error =
        |e: std::io::Error| CacheError::Storage(crate::storage::StorageError::io("cache spool", e));
    let mut file = tokio::fs::File::create(path).await.map_err(spool_error)?;
    let mut received: u64 = 0;
    let short = || {
        refuse(
            StatusCode::BAD_REQUEST,
            "cache.invalid_size",
            format!("The body is not the {size} bytes Content-Length declares"),
        )
    };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| short())?;
        if let Ok(data) = frame.into_data() {
            received += data.len() as u64;
            if received > size {
                return Err(short());
            }
            file.write_all(&data).await.map_err(spool_error)?;
        }
    }
    if received != size {
        return Err(short());
    }
    file.flush().await.map_err(spool_error)?;
    Ok(())
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn file_body(file: tokio::fs::File) -> Body {
    // A read error ends the stream (the state becomes None) after reporting it.
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = vec![0u8; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buffer))), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(chunks))
}

/// A spool file's name, removed when dropped.
struct Spool {
    path: PathBuf,
}

impl Spool {
    fn new(dir: &Path) -> Spool {
        Spool {
            path: dir.join(uuid::Uuid::new_v4().simple().to_string()),
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
