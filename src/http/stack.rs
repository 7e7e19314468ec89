//! The tower middleware stack around a warp filter. From the outside in: tracing, metrics, panic
//! catching, JSON bodies for middleware-made errors, timeout, compression (negotiated with
//! Accept-Encoding), body limit, then warp's router.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use warp::filters::BoxedFilter;

use super::error::json_error;
use super::route::RouteName;
use crate::metrics::Metrics;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// What the stack needs to know about its listener.
#[derive(Clone)]
pub struct StackOptions {
    /// `api` or `badger`: a label on every metric.
    pub listener: &'static str,
    pub body_limit_bytes: u64,
    pub timeout: Duration,
    pub metrics: Arc<Metrics>,
}

/// Wraps a warp filter (that never rejects: recover it first) into the full service.
pub fn build_service<B>(
    filter: BoxedFilter<(warp::reply::Response,)>,
    options: StackOptions,
) -> impl Service<
    Request<B>,
    Response = Response<ResponseBody>,
    Error = std::convert::Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ 'static
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    let warp_service = warp::service(filter);
    ServiceBuilder::new()
        .map_response(|r: Response<_>| r.map(box_body))
        .layer(TraceLayer::new_for_http())
        .layer(MetricsLayer {
            listener: options.listener,
            metrics: options.metrics.clone(),
        })
        .layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                tracing::error!("a request handler panicked");
                json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "An error prevented the operation from completing. Please try again.",
                )
            },
        ))
        .map_response(jsonify_middleware_errors)
        .map_response(|r: Response<_>| r.map(box_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            options.timeout,
        ))
        .layer(CompressionLayer::new())
        .layer(RequestBodyLimitLayer::new(
            options.body_limit_bytes as usize,
        ))
        .service(warp_service)
}

fn box_body<B>(body: B) -> ResponseBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// Middleware answers errors with plain or empty bodies (timeout, body limit); give them the
/// same JSON shape as every other error. Responses from routes are already JSON.
fn jsonify_middleware_errors(response: Response<ResponseBody>) -> Response<ResponseBody> {
    let status = response.status();
    let is_json = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let (code, message) = match status {
        StatusCode::REQUEST_TIMEOUT if !is_json => (
            "request.timeout",
            "The request took too long and was abandoned",
        ),
        StatusCode::PAYLOAD_TOO_LARGE if !is_json => (
            "request.too_large",
            "The request body exceeds the size limit",
        ),
        _ => return response,
    };
    json_error(status, code, message).map(box_body)
}

/// Counts requests and observes latency per route, reading the route name the router left in
/// the response extensions.
#[derive(Clone)]
struct MetricsLayer {
    listener: &'static str,
    metrics: Arc<Metrics>,
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            listener: self.listener,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
struct MetricsService<S> {
    inner: S,
    listener: &'static str,
    metrics: Arc<Metrics>,
}

impl<S, B, RB> Service<Request<B>> for MetricsService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = request.method().as_str().to_string();
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let listener = self.listener;
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let route = response
                .extensions()
                .get::<RouteName>()
                .map(|r| r.0)
                .unwrap_or("unmatched");
            metrics.observe_request(
                listener,
                route,
                &method,
                response.status().as_u16(),
                started.elapsed(),
            );
            Ok(response)
        })
    }
}
