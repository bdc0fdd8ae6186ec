//! The HTTP edge: one file per channel, errors mapped once in [`error`].

pub mod analytics;
pub mod answer;
pub mod articles;
pub mod error;
pub mod search;
pub mod status;
pub mod suggest;

use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use self::error::ApiError;
use crate::analytics::Analytics;
use crate::auth::ApiKeys;
use crate::handoff::HandoffRules;
use crate::index::SharedStatus;
use crate::search::SearchEngine;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<SearchEngine>,
    pub status: SharedStatus,
    pub keys: Arc<ApiKeys>,
    pub handoff: Arc<HandoffRules>,
    /// `None` when analytics are turned off.
    pub analytics: Option<Arc<Analytics>>,
    pub review_after_days: u64,
}

pub fn router(state: AppState) -> Router {
    // Probes are polled constantly (and /ready answers 503 while the index
    // builds): keep them out of the request log.
    let probes = Router::new()
        .route("/health", get(status::health))
        .route("/ready", get(status::ready));
    let api = Router::new()
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/autocomplete", get(search::autocomplete))
        .route("/api/v1/answer", post(answer::answer))
        .route("/api/v1/suggest", post(suggest::suggest))
        .route("/api/v1/feedback", post(analytics::feedback))
        .route("/api/v1/analytics/summary", get(analytics::summary))
        .route("/api/v1/analytics/queries", get(analytics::queries))
        .route("/api/v1/analytics/articles", get(analytics::articles))
        .route("/api/v1/articles", get(articles::list_articles))
        .route("/api/v1/articles/{*id}", get(articles::get_article))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TraceLayer::new_for_http());
    probes
        .merge(api)
        // A bug must still answer in the API's error shape, not drop the connection.
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("unexpected server error".into()).into_response()
        }))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
