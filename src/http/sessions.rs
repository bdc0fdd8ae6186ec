//! The hand-off: `GET /api/v1/sessions/{session_id}` gives the agent taking
//! over a bot session everything the bot asked and showed, the customer's
//! feedback and tone, and a five-second `brief` (agent key required).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::handoff::brief::{SessionView, session_view, with_earlier_contacts};

/// Everything an agent taking over a bot session needs: what the customer
/// asked and was shown, what they said of it, their tone, and a brief.
#[utoipa::path(get, path = "/api/v1/sessions/{session_id}", tag = "agents",
    security(("bearer" = [])),
    params(("session_id" = String, Path, example = "chat-42", description = "The id the bot or portal sent as `session_id`")),
    responses(
        (status = 200, description = "The session's timeline and brief", body = SessionView),
        (status = 404, description = "No such session, or older than the retention period (`not_found`)", body = ErrorBody),
        (status = 400, description = "A malformed session id (`invalid_path`)", body = ErrorBody),
    ))]
pub async fn get_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    session_id: Result<Path<String>, PathRejection>,
) -> Result<Json<SessionView>, ApiError> {
    super::require_agent(&state, &headers)?;
    let Path(session_id) = session_id?;
    let sessions = state.sessions.clone();
    let queue = state.queue.clone();
    let id = session_id.clone();
    // May load the session from SQLite (after a restart): off the runtime.
    let found = tokio::task::spawn_blocking(move || {
        let hash = sessions.hash_session(&id);
        let (events, customer) = sessions.events(&hash)?;
        let mut view = session_view(&id, &events);
        with_earlier_contacts(
            &mut view,
            queue.earlier_contacts(&hash, customer.as_deref()),
        );
        Some(view)
    })
    .await?;
    let Some(view) = found else {
        return Err(ApiError::NotFound(format!(
            "no session {session_id:?} (unknown, or older than the retention period)"
        )));
    };
    Ok(Json(view))
}
