//! Prometheus metrics: HTTP requests by route and status, latency histograms, and whatever the
//! other modules register (queue depth and job outcomes, external calls). Rendered as text at
//! `/metrics`.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub listener: &'static str,
    pub route: &'static str,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub listener: &'static str,
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExternalCallLabels {
    pub service: &'static str,
    pub operation: &'static str,
    pub outcome: &'static str,
}

/// Every metric family of the process.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Jobs by queue and state (waiting, in_progress, delayed, dead), refreshed at each scrape.
    pub queue_jobs: Family<QueueLabels, Gauge>,
    /// Job outcomes by queue (completed, retried, dead_lettered, …), refreshed at each scrape.
    pub job_outcomes: Family<QueueLabels, Gauge>,
    /// Calls to GitHub, git remotes and S3, by outcome.
    pub external_calls: Family<ExternalCallLabels, Counter>,
    /// Layer bytes downloaded by image pulls (store hits and re-resolved tags add nothing).
    pub image_pulled_bytes: Counter,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("cocov");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let queue_jobs = Family::<QueueLabels, Gauge>::default();
        let job_outcomes = Family::<QueueLabels, Gauge>::default();
        let external_calls = Family::<ExternalCallLabels, Counter>::default();
        let image_pulled_bytes = Counter::default();
        registry.register(
            "http_requests",
            "HTTP requests by listener, route, method and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            http_duration.clone(),
        );
        registry.register("queue_jobs", "Jobs by queue and state", queue_jobs.clone());
        registry.register(
            "jobs_outcomes",
            "Jobs finished by queue and outcome since the process started",
            job_outcomes.clone(),
        );
        registry.register(
            "external_calls",
            "Calls to external services by outcome",
            external_calls.clone(),
        );
        registry.register(
            "image_pulled_bytes",
            "Layer bytes downloaded by image pulls",
            image_pulled_bytes.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            http_requests,
            http_duration,
            queue_jobs,
            job_outcomes,
            external_calls,
            image_pulled_bytes,
        }
    }

    pub fn observe_request(
        &self,
        listener: &'static str,
        route: &'static str,
        method: &str,
        status: u16,
        elapsed: Duration,
    ) {
        self.http_requests
            .get_or_create(&HttpLabels {
                listener,
                route,
                method: method.to_string(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels { listener, route })
            .observe(elapsed.as_secs_f64());
    }

    pub fn external_call(
        &self,
        service: &'static str,
        operation: &'static str,
        outcome: &'static str,
    ) {
        self.external_calls
            .get_or_create(&ExternalCallLabels {
                service,
                operation,
                outcome,
            })
            .inc();
    }

    /// Registers a module's own family (the cache service's counters), once per process.
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        registry.register(name, help, metric);
    }

    /// The OpenMetrics text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        out
    }
}
