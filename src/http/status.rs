//! Operational endpoints: `/health`, `/ready`, `/api/v1/status`.

use std::sync::PoisonError;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

/// The process is up (liveness).
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The initial reconcile is done: results reflect the folder (readiness).
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let ready = state
        .status
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .ready;
    if ready {
        Ok(Json(json!({"ready": true})))
    } else {
        Err(ApiError::NotReady)
    }
}

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
        "batches": status.batches,
        "skipped": status.skipped,
    }))
}
