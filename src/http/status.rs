//! Operational endpoints: `/health`, `/ready`, `/api/v1/status`.

use std::sync::PoisonError;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ErrorBody};

/// The process is up (liveness).
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "The process is up")))]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The initial reconcile is done (readiness). Degraded (200 with a reason):
/// still serving the last good index, but changes can't be indexed (disk
/// full, read-only or missing index folder).
#[utoipa::path(get, path = "/ready", tag = "operations", responses((status = 200, description = "Ready; `degraded` explains a partial outage"), (status = 503, body = ErrorBody)))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (ready, degraded) = {
        let status = state.status.read().unwrap_or_else(PoisonError::into_inner);
        (status.ready, status.degraded.clone())
    };
    if !ready {
        return Err(ApiError::NotReady);
    }
    let degraded = degraded.or_else(|| {
        let meta = state.engine.index_dir().join("meta.json");
        (!meta.exists()).then(|| {
            format!(
                "the index folder {} is gone; serving from memory until a restart rebuilds it",
                state.engine.index_dir().display()
            )
        })
    });
    Ok(Json(json!({"ready": true, "degraded": degraded})))
}

#[utoipa::path(get, path = "/api/v1/status", tag = "operations", responses((status = 200, description = "Counts, last commit, skipped files")))]
pub async fn status(State(state): State<AppState>) -> Json<Value> {
    let status = state
        .status
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ready": status.ready,
        "articles": status.articles,
        "internal_articles": status.internal_articles,
        "sections": status.sections,
        "last_commit": status.last_commit.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
        "commits": status.commits,
        "degraded": status.degraded,
        "batches": status.batches,
        "skipped": status.skipped.values().collect::<Vec<_>>(),
        "unrecognized_audience": status.unrecognized_audience,
    }))
}
