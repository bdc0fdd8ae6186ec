//! Operational endpoints: `/health`, `/ready`, `/api/v1/status`.

use std::sync::PoisonError;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::auth::Caller;

/// The process is up (liveness).
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "The process is up")))]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// What an anonymous caller is told about a partial outage: that there is
/// one, not where (index errors name folders on the server).
const DEGRADED_PUBLIC: &str =
    "changes to articles cannot be indexed right now; serving the last good index";

/// The initial reconcile is done (readiness). Degraded (200 with a reason):
/// still serving the last good index, but changes can't be indexed (disk
/// full, read-only or missing index folder). The reason names paths only for
/// callers with a key.
#[utoipa::path(get, path = "/ready", tag = "operations", responses((status = 200, description = "Ready; `degraded` explains a partial outage"), (status = 503, body = ErrorBody)))]
pub async fn ready(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = state.keys.identify(&headers)?;
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
    let degraded = match caller {
        Caller::Anonymous => degraded.map(|_| DEGRADED_PUBLIC.to_string()),
        Caller::Agent | Caller::Admin => degraded,
    };
    Ok(Json(json!({"ready": true, "degraded": degraded})))
}

/// The index's state. Anonymous callers learn only what the public may know:
/// counts of public articles and of files that could not be indexed — no
/// paths, no reasons (a front-matter error quotes the file's lines, and the
/// file may be internal), nothing about internal articles. Agents and admins
/// see every file and reason.
#[utoipa::path(get, path = "/api/v1/status", tag = "operations", responses((status = 200, description = "Counts and last commit; with an agent or admin key also the internal-article count, each skipped file with its reason, and unrecognized access values"), (status = 401, body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = state.keys.identify(&headers)?;
    let status = state
        .status
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let last_commit = status.last_commit.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    });
    if caller == Caller::Anonymous {
        return Ok(Json(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "ready": status.ready,
            "articles": status.articles.saturating_sub(status.internal_articles),
            "last_commit": last_commit,
            "commits": status.commits,
            "degraded": status.degraded.map(|_| DEGRADED_PUBLIC),
            "skipped_files": status.skipped.len(),
            "detail": "counts only; file paths and reasons need an agent or admin key",
        })));
    }
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ready": status.ready,
        "articles": status.articles,
        "public_articles": status.articles.saturating_sub(status.internal_articles),
        "internal_articles": status.internal_articles,
        "sections": status.sections,
        "last_commit": last_commit,
        "commits": status.commits,
        "degraded": status.degraded,
        "batches": status.batches,
        "skipped_files": status.skipped.len(),
        "skipped": status.skipped.values().collect::<Vec<_>>(),
        "unrecognized_audience": status.unrecognized_audience,
    })))
}
