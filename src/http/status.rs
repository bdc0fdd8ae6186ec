//! Operational endpoints: `/health`, `/ready`, `/api/v1/status`.

use std::sync::PoisonError;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::auth::Caller;
use crate::index::{SkippedFile, UnrecognizedAudience};

/// `/health`: always `{"status": "ok"}` while the process runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    pub status: HealthState,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Ok,
}

/// `/ready` once the first index is built.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"ready": true, "degraded": null}))]
pub struct Readiness {
    pub ready: bool,
    /// Set when changes to articles cannot be indexed right now (the last
    /// good index is still served). Names folders only for callers with a key.
    pub degraded: Option<String>,
}

/// `/api/v1/status`. Anonymous callers get the counts a customer may know;
/// the fields marked "with a key" appear only for agent and admin keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusView {
    /// rapport's version.
    pub version: &'static str,
    /// The first index is built.
    pub ready: bool,
    /// Articles the caller may read (anonymous: public ones only).
    pub articles: usize,
    /// With a key: public articles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_articles: Option<usize>,
    /// With a key: internal articles (agents only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_articles: Option<usize>,
    /// With a key: sections (the units answers are cut from).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sections: Option<usize>,
    /// When the index last changed (RFC 3339).
    #[schema(format = DateTime)]
    pub last_commit: Option<String>,
    /// Index commits since start.
    pub commits: u64,
    /// Why changes can't be indexed right now, if they can't.
    pub degraded: Option<String>,
    /// With a key: batches of file changes processed since start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<u64>,
    /// Files not indexed in their current version.
    pub skipped_files: usize,
    /// With a key: each skipped file with its reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Vec<SkippedFile>>,
    /// With a key: access values that are neither public nor internal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unrecognized_audience: Option<Vec<UnrecognizedAudience>>,
    /// Semantic retrieval: off, loading, embedding (with progress), ready or
    /// error (the reason only with a key).
    pub semantic: crate::semantic::SemanticStatus,
    /// With a key: where state is kept and whether it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseView>,
    /// Anonymous only: what a key would add.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseBackend {
    /// Embedded, in the data folder: one server.
    Sqlite,
    /// Shared by replicas.
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseState {
    Up,
    /// Unreachable: searches and answers go on; events wait in memory;
    /// hand-off requests get 503 with `Retry-After`.
    Down,
}

/// The database as `/api/v1/status` shows it (with a key).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DatabaseView {
    pub backend: DatabaseBackend,
    pub state: DatabaseState,
    /// Times it came back after being down, since start.
    pub reconnects: u64,
    /// Analytics, feedback and timeline events waiting in memory for it.
    pub buffered_events: u64,
    /// Events given up because that buffer was full (`[storage] buffer_events`).
    pub buffer_dropped_events: u64,
    /// Why it was last unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl DatabaseView {
    pub fn of(state: &AppState) -> Self {
        let store = state.queue.store();
        let health = store.health();
        let (buffered_events, buffer_dropped_events) = state
            .analytics
            .as_ref()
            .map_or((0, 0), |analytics| analytics.buffered());
        DatabaseView {
            backend: if store.is_shared() {
                DatabaseBackend::Postgres
            } else {
                DatabaseBackend::Sqlite
            },
            state: match health.as_ref().is_none_or(|h| h.is_up()) {
                true => DatabaseState::Up,
                false => DatabaseState::Down,
            },
            reconnects: health.as_ref().map_or(0, |h| h.reconnects()),
            buffered_events,
            buffer_dropped_events,
            last_error: health.and_then(|h| h.last_error()),
        }
    }
}

/// The process is up (liveness).
#[utoipa::path(get, path = "/health", tag = "operators",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: HealthState::Ok,
    })
}

/// What an anonymous caller is told about a partial outage: that there is
/// one, not where (index errors name folders on the server).
const DEGRADED_PUBLIC: &str =
    "changes to articles cannot be indexed right now; serving the last good index";

/// The initial reconcile is done (readiness). Degraded (200 with a reason):
/// still serving the last good index, but changes can't be indexed (disk
/// full, read-only or missing index folder). The reason names paths only for
/// callers with a key.
#[utoipa::path(get, path = "/ready", tag = "operators",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Ready; `degraded` explains a partial outage", body = Readiness),
        (status = 503, description = "The first index is still being built (`not_ready`)", body = ErrorBody),
        (status = 401, description = "An `Authorization` header with an unknown or malformed key", body = ErrorBody),
    ))]
pub async fn ready(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Readiness>, ApiError> {
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
    Ok(Json(Readiness {
        ready: true,
        degraded,
    }))
}

/// The index's state. Anonymous callers learn only what the public may know:
/// counts of public articles and of files that could not be indexed — no
/// paths, no reasons (a front-matter error quotes the file's lines, and the
/// file may be internal), nothing about internal articles. Agents and admins
/// see every file and reason.
#[utoipa::path(get, path = "/api/v1/status", tag = "operators",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Counts and last commit; with an agent or admin key also the internal-article count, each skipped file with its reason, and unrecognized access values", body = StatusView),
        (status = 401, description = "An `Authorization` header with an unknown or malformed key", body = ErrorBody),
    ))]
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<StatusView>, ApiError> {
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
    let public = status.articles.saturating_sub(status.internal_articles);
    if caller == Caller::Anonymous {
        return Ok(Json(StatusView {
            version: env!("CARGO_PKG_VERSION"),
            ready: status.ready,
            articles: public,
            public_articles: None,
            internal_articles: None,
            sections: None,
            last_commit,
            commits: status.commits,
            degraded: status.degraded.map(|_| DEGRADED_PUBLIC.to_string()),
            batches: None,
            skipped_files: status.skipped.len(),
            skipped: None,
            unrecognized_audience: None,
            semantic: {
                let mut semantic = state.engine.semantic().status();
                if semantic.error.is_some() {
                    semantic.error =
                        Some("the model could not be used; the server log has the details".into());
                }
                semantic
            },
            database: None,
            detail: Some("counts only; file paths and reasons need an agent or admin key"),
        }));
    }
    Ok(Json(StatusView {
        version: env!("CARGO_PKG_VERSION"),
        ready: status.ready,
        articles: status.articles,
        public_articles: Some(public),
        internal_articles: Some(status.internal_articles),
        sections: Some(status.sections),
        last_commit,
        commits: status.commits,
        degraded: status.degraded,
        batches: Some(status.batches),
        skipped_files: status.skipped.len(),
        skipped: Some(status.skipped.into_values().collect()),
        unrecognized_audience: Some(status.unrecognized_audience),
        semantic: state.engine.semantic().status(),
        database: Some(DatabaseView::of(&state)),
        detail: None,
    }))
}

/// Prometheus scrapes with the admin key as its bearer token: the figures
/// include the number of internal articles, which the public may not know.
#[utoipa::path(get, path = "/metrics", tag = "operators",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 403, description = "An agent key: metrics need an admin key (`forbidden`)", body = ErrorBody),
    ))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    match state.keys.identify(&headers)? {
        crate::auth::Caller::Admin => {}
        crate::auth::Caller::Agent => {
            return Err(ApiError::Unauthorized(crate::auth::AuthError::Forbidden));
        }
        crate::auth::Caller::Anonymous => {
            return Err(ApiError::Unauthorized(
                crate::auth::AuthError::AdminKeyRequired,
            ));
        }
    }
    let articles = state
        .status
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .articles;
    state.metrics.articles.set(articles as i64);
    if let Some(analytics) = &state.analytics {
        state.metrics.analytics_dropped.set(analytics.dropped());
    }
    let database = DatabaseView::of(&state);
    let metrics = &state.metrics;
    metrics
        .database_up
        .set(i64::from(database.state == DatabaseState::Up));
    metrics.database_reconnects.set(database.reconnects);
    metrics.analytics_buffered.set(database.buffered_events);
    metrics
        .analytics_buffer_dropped
        .set(database.buffer_dropped_events);
    let store = state.queue.store().clone();
    match tokio::task::spawn_blocking(move || store.outbox_counts()).await? {
        Ok(counts) => {
            let metrics = &state.metrics;
            for (name, value) in [
                ("pending", counts.pending),
                ("delivered", counts.delivered),
                ("dead", counts.dead),
            ] {
                metrics
                    .outbox_events
                    .get_or_create(&crate::metrics::StateLabels {
                        state: name.to_string(),
                    })
                    .set(value);
            }
            metrics.webhook_retries.set(counts.retried);
        }
        Err(error) => tracing::warn!(%error, "metrics: cannot count the webhook outbox"),
    }
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response())
}
