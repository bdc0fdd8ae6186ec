//! Prometheus metrics (`GET /metrics`): one registry per server, so several
//! servers in one process (tests, benchmarks) never share counters.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms … ~3 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<EndpointLabels, Histogram>,
    pub zero_result_searches: Counter,
    pub handoffs: Family<ReasonLabels, Counter>,
    pub articles: Gauge,
    pub commit_duration: Histogram,
    pub watcher_events: Counter,
    pub analytics_dropped: Gauge<u64, AtomicU64>,
    pub database_up: Gauge,
    pub database_reconnects: Gauge<u64, AtomicU64>,
    pub analytics_buffered: Gauge<u64, AtomicU64>,
    pub analytics_buffer_dropped: Gauge<u64, AtomicU64>,
    /// HTTP connections open right now.
    pub open_connections: Gauge,
    /// Connections the server closed: `header_timeout` or `idle`.
    pub connections_closed: Family<ReasonLabels, Counter>,
    /// Webhook events in the outbox by state (`pending` is the depth,
    /// `delivered`, `dead`), read from the store at each scrape.
    pub outbox_events: Family<StateLabels, Gauge<u64, AtomicU64>>,
    /// Failed delivery attempts that were retried.
    pub webhook_retries: Gauge<u64, AtomicU64>,
    /// Created → delivered (first successful attempt), per event.
    pub webhook_delivery_seconds: Histogram,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("rapport");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by endpoint and status",
            requests.clone(),
        );
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by endpoint",
            latency.clone(),
        );
        let zero_result_searches = Counter::default();
        registry.register(
            "zero_result_searches",
            "Searches that found nothing",
            zero_result_searches.clone(),
        );
        let handoffs = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "handoffs",
            "Bot hand-off recommendations by reason",
            handoffs.clone(),
        );
        let articles = Gauge::default();
        registry.register("index_articles", "Articles in the index", articles.clone());
        let commit_duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register(
            "index_commit_duration_seconds",
            "Time to commit one indexing batch",
            commit_duration.clone(),
        );
        let watcher_events = Counter::default();
        registry.register(
            "watcher_events",
            "File events received from the watcher",
            watcher_events.clone(),
        );
        let analytics_dropped = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "analytics_dropped_events",
            "Analytics events dropped because the writer queue was full",
            analytics_dropped.clone(),
        );
        let database_up = Gauge::default();
        registry.register(
            "database_up",
            "1 while the database answers, 0 while it is unreachable",
            database_up.clone(),
        );
        let database_reconnects = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "database_reconnects",
            "Times the database came back after being unreachable, since start",
            database_reconnects.clone(),
        );
        let analytics_buffered = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "analytics_buffered_events",
            "Analytics, feedback and timeline events held in memory until the database answers",
            analytics_buffered.clone(),
        );
        let analytics_buffer_dropped = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "analytics_buffer_dropped_events",
            "Events given up because the database was down and the buffer full",
            analytics_buffer_dropped.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "http_open_connections",
            "HTTP connections open right now",
            open_connections.clone(),
        );
        let connections_closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "http_connections_closed",
            "Connections closed by the server (header_timeout, idle)",
            connections_closed.clone(),
        );
        let outbox_events = Family::<StateLabels, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "handoff_outbox_events",
            "Hand-off webhook events by state (pending = outbox depth, delivered, dead)",
            outbox_events.clone(),
        );
        let webhook_retries = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "handoff_webhook_retries",
            "Failed webhook delivery attempts that were retried",
            webhook_retries.clone(),
        );
        let webhook_delivery_seconds = Histogram::new(exponential_buckets(0.001, 4.0, 12));
        registry.register(
            "handoff_webhook_delivery_seconds",
            "Time from a hand-off event to its delivery",
            webhook_delivery_seconds.clone(),
        );
        Metrics {
            outbox_events,
            webhook_retries,
            webhook_delivery_seconds,
            registry,
            requests,
            latency,
            zero_result_searches,
            handoffs,
            articles,
            commit_duration,
            watcher_events,
            analytics_dropped,
            database_up,
            database_reconnects,
            analytics_buffered,
            analytics_buffer_dropped,
            open_connections,
            connections_closed,
        }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
