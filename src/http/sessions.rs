//! The hand-off: `GET /api/v1/sessions/{session_id}` gives the agent taking
//! over a bot session everything the bot asked and showed, the customer's
//! feedback and tone, and a five-second `brief` (agent key required).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::auth::{AuthError, Caller};
use crate::handoff::brief::{SessionView, session_view};

#[utoipa::path(get, path = "/api/v1/sessions/{session_id}", tag = "agent",
    security(("bearer" = [])),
    params(("session_id" = String, Path, example = "chat-42", description = "The id the bot sent as `session_id`")),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 404, description = "Unknown or expired session", body = ErrorBody), (status = 400, description = "Invalid parameters", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn get_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    session_id: Result<Path<String>, PathRejection>,
) -> Result<Json<SessionView>, ApiError> {
    if state.keys.identify(&headers)? == Caller::Anonymous {
        return Err(ApiError::Unauthorized(AuthError::AgentKeyRequired));
    }
    let Path(session_id) = session_id?;
    let sessions = state.sessions.clone();
    let id = session_id.clone();
    // May load the session from SQLite (after a restart): off the runtime.
    let found = tokio::task::spawn_blocking(move || {
        let hash = sessions.hash_session(&id);
        sessions.events(&hash)
    })
    .await?;
    let Some((events, _customer)) = found else {
        return Err(ApiError::NotFound(format!(
            "no session {session_id:?} (unknown, or older than the retention period)"
        )));
    };
    Ok(Json(session_view(&session_id, &events)))
}
