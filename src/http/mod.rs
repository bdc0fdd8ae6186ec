//! The HTTP edge: one file per channel, errors mapped once in [`error`].

pub mod admin;
pub mod analytics;
pub mod answer;
pub mod articles;
pub mod customers;
pub mod error;
pub mod handoffs;
pub mod messages;
pub mod openapi;
pub mod portal;
pub mod protect;
pub mod search;
pub mod server;
pub mod sessions;
pub mod status;
pub mod suggest;

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::{delete, get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use self::error::ApiError;
use crate::analytics::Analytics;
use crate::auth::ApiKeys;
use crate::handoff::HandoffRules;
use crate::index::SharedStatus;
use crate::metrics::{EndpointLabels, Metrics, RequestLabels};
use crate::search::SearchEngine;

/// What every handler shares, behind one `Arc`: axum clones the state for
/// each handler and each `from_fn_with_state` layer, and cloning a struct of
/// a dozen `Arc`s was 3 % of the autocomplete profile.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub engine: Arc<SearchEngine>,
    pub status: SharedStatus,
    pub keys: Arc<ApiKeys>,
    pub handoff: Arc<HandoffRules>,
    /// `None` when analytics are turned off.
    pub analytics: Option<Arc<Analytics>>,
    /// Session timelines for the hand-off (in SQLite beside analytics, or
    /// in memory when analytics are off).
    pub sessions: Arc<crate::handoff::timeline::SessionLog>,
    pub review_after_days: u64,
    pub metrics: Arc<Metrics>,
    pub rate_limits: Option<Arc<protect::RateLimits>>,
    pub request_timeout: std::time::Duration,
    pub max_body_bytes: usize,
    pub cors_origins: Vec<String>,
    /// The help portal's settings and embedded assets.
    pub portal: Arc<portal::Portal>,
    /// Hand-offs to people: the queue, ratings, webhook events.
    pub queue: Arc<crate::handoff::queue::HandoffQueue>,
    /// The support lead's dashboard: sign-in sessions and CSP reports.
    pub admin: Arc<admin::AdminState>,
    /// What each inbound message channel may do (auto-replies).
    pub channels: crate::config::ChannelSettings,
}

pub fn router(state: AppState) -> Router {
    // Probes are polled constantly (and /ready answers 503 while the index
    // builds): keep them out of the request log.
    let probes = Router::new()
        .route("/health", get(status::health))
        .route("/ready", get(status::ready))
        .route("/metrics", get(status::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .method_not_allowed_fallback(method_not_allowed);
    let api = Router::new()
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/autocomplete", get(search::autocomplete))
        .route("/api/v1/answer", post(answer::answer))
        .route("/api/v1/suggest", post(suggest::suggest))
        .route(
            "/api/v1/messages",
            post(messages::receive).layer(axum::extract::DefaultBodyLimit::max(
                messages::MAX_MESSAGE_BYTES,
            )),
        )
        .route("/api/v1/feedback", post(analytics::feedback))
        .route("/api/v1/sessions/{session_id}", get(sessions::get_session))
        .route(
            "/api/v1/sessions/{session_id}/handoff",
            get(handoffs::customer_handoff).post(handoffs::request_handoff),
        )
        .route("/api/v1/sessions/{session_id}/rating", post(handoffs::rate))
        .route("/api/v1/handoffs", get(handoffs::list))
        .route("/api/v1/handoffs/events", get(handoffs::events))
        .route("/api/v1/handoffs/deliveries", get(handoffs::deliveries))
        .route("/api/v1/handoffs/{handoff_id}", get(handoffs::get_one))
        .route("/api/v1/handoffs/{handoff_id}/claim", post(handoffs::claim))
        .route("/api/v1/handoffs/{handoff_id}/close", post(handoffs::close))
        .route(
            "/api/v1/customers/{customer_id}",
            delete(customers::erase_customer),
        )
        .route("/api/v1/analytics/summary", get(analytics::summary))
        .route("/api/v1/analytics/queries", get(analytics::queries))
        .route("/api/v1/analytics/articles", get(analytics::articles))
        .route("/api/v1/analytics/overview", get(analytics::overview))
        .route("/api/v1/analytics/gaps", get(analytics::gaps))
        .route("/api/v1/analytics/handoffs", get(analytics::handoffs))
        .route(
            "/api/v1/analytics/articles/needing-work",
            get(analytics::articles_needing_work),
        )
        .route("/api/v1/articles", get(articles::list_articles))
        .route("/api/v1/articles/{*id}", get(articles::get_article))
        // The portal's HTML pages (its own module; no API path changes).
        .merge(portal::routes())
        // The support lead's dashboard (sign-in, sessions, its pages).
        .merge(admin::routes(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            track_requests,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            protect::timeout,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            protect::rate_limit,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(state.max_body_bytes))
        .layer(TraceLayer::new_for_http());
    let cors = cors_layer(&state.cors_origins);
    probes
        .merge(api)
        // A bug must still answer in the API's error shape, not drop the connection.
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("unexpected server error".into()).into_response()
        }))
        .layer(cors)
        .layer(middleware::from_fn(protect::security_headers))
        .with_state(state)
}

/// The caller's role when it holds an agent or admin key; anonymous
/// callers are refused (`401`).
pub(crate) fn require_agent(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<crate::auth::Caller, ApiError> {
    match state.keys.identify(headers)? {
        crate::auth::Caller::Anonymous => Err(ApiError::Unauthorized(
            crate::auth::AuthError::AgentKeyRequired,
        )),
        caller => Ok(caller),
    }
}

/// Runs blocking work (SQLite, the index) off the async runtime; a panic in
/// it becomes the API's 500.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(work).await?)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Counts and times every API request by route (not by raw path, so ids
/// don't explode the label set).
async fn track_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .latency
        .get_or_create(&EndpointLabels {
            endpoint: endpoint.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            endpoint,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// CORS for the portal's origins; with none configured, browsers on other
/// origins get no CORS headers (the default: off).
fn cors_layer(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method, header};
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(allowed)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .max_age(std::time::Duration::from_secs(3600))
}
