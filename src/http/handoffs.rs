//! Hand-offs to people, over HTTP. Customers (anonymous, through the chat
//! widget) ask for a person, follow their place in the queue and rate the
//! conversation; agents list, claim and close hand-offs and follow the queue
//! live (Server-Sent Events); admins see webhook deliveries. The logic lives
//! in [`crate::handoff::queue`]; this file checks callers and bodies.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::error::{ApiError, ErrorBody, ErrorCode, count_param};
use super::{AppState, blocking};
use crate::auth::{AuthError, Caller};
use crate::handoff::brief::rfc3339;
use crate::handoff::queue::{CustomerHandoff, HandoffEvent, HandoffView, RatingView};
use crate::store::{AttemptOutcome, Contact, HandoffStatus, Resolution};

pub(crate) const MAX_NAME_CHARS: usize = 200;
pub(crate) const MAX_TEXT_CHARS: usize = 2000;

/// An agent or admin, and the name their key goes by.
fn agent(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    match state.keys.identify_labelled(headers)? {
        (Caller::Anonymous, _) => Err(ApiError::Unauthorized(AuthError::AgentKeyRequired)),
        (_, label) => Ok(label.unwrap_or_else(|| "agent".to_string())),
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidBody, message)
}

/// Trims and drops control characters (other than line breaks and tabs):
/// they only garble an agent's screen or a helpdesk ticket.
pub(crate) fn sanitize(value: &str) -> String {
    let value: String = value
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect();
    value.trim().to_string()
}

/// [`sanitize`]d; blank is absent; too long is an error.
pub(crate) fn text_field(
    value: Option<String>,
    name: &str,
    max: usize,
) -> Result<Option<String>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let value = sanitize(&value);
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max {
        return Err(invalid(format!("`{name}` is longer than {max} characters")));
    }
    Ok(Some(value))
}

/// An address to write back to; present must mean a valid one (`""` is
/// not: leave it out instead).
pub(crate) fn email_field(value: Option<String>, name: &str) -> Result<Option<String>, ApiError> {
    let email = value.map(|e| e.trim().to_string());
    if let Some(email) = &email
        && (email.chars().count() > 254 || email_address::EmailAddress::from_str(email).is_err())
    {
        return Err(invalid(format!(
            "`{name}` is not an e-mail address: {email:?}"
        )));
    }
    Ok(email)
}

/// A JSON object body that may be absent: no body or `null` is all defaults.
fn optional_body<T: Default + for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("invalid JSON body: {e}")))?;
    object_body(value)
}

/// `T` from a JSON object (or `null`: all defaults). serde would also take
/// an array for a struct (its fields in order); the API says object.
fn object_body<T: Default + for<'de> Deserialize<'de>>(
    value: serde_json::Value,
) -> Result<T, ApiError> {
    match value {
        serde_json::Value::Null => Ok(T::default()),
        serde_json::Value::Object(_) => {
            serde_json::from_value(value).map_err(|e| invalid(format!("invalid JSON body: {e}")))
        }
        other => Err(invalid(format!("expected a JSON object, not {other}"))),
    }
}

/// A required JSON object body; `shape` says what was expected.
fn required_body<T: for<'de> Deserialize<'de>>(body: &Bytes, shape: &str) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("invalid JSON body: {e}")))?;
    if !value.is_object() {
        return Err(invalid(format!("expected {shape}")));
    }
    serde_json::from_value(value).map_err(|e| invalid(format!("expected {shape}: {e}")))
}

/// An optional field that must be an object when present (see [`object_body`]).
fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: for<'a> Deserialize<'a>,
{
    match Option::<serde_json::Map<String, serde_json::Value>>::deserialize(deserializer)? {
        None => Ok(None),
        Some(map) => serde_json::from_value(serde_json::Value::Object(map))
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    #[schema(example = "Ada Lovelace")]
    pub name: Option<String>,
    /// Checked against RFC 5322 and stored as given.
    #[schema(format = Email, example = "ada@example.com")]
    pub email: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffRequest {
    #[serde(default, deserialize_with = "optional_object")]
    pub contact: Option<ContactRequest>,
    /// Anything the customer wants the agent to know (at most 2,000 characters).
    pub message: Option<String>,
}

/// A customer asks for a person. Needs a session the customer has asked in
/// (`session_id` on `/api/v1/answer` or `/api/v1/search`); asking again
/// while one is open returns that one (200). Rate-limited more tightly than
/// search: 5 at once per client, then one every 10 seconds.
#[utoipa::path(post, path = "/api/v1/sessions/{session_id}/handoff", tag = "customers", operation_id = "request_handoff",
    params(("session_id" = String, Path, example = "chat-42", description = "The id the widget or bot sent as `session_id`")),
    request_body(content = Option<HandoffRequest>, example = json!({"contact": {"name": "Ada", "email": "ada@example.com"}, "message": "I was charged twice"})),
    responses(
        (status = 201, description = "Created: the customer is in the queue", body = CustomerHandoff),
        (status = 200, description = "The session's open hand-off (asked again)", body = CustomerHandoff),
        (status = 400, description = "Malformed body or e-mail (`invalid_body`)", body = ErrorBody),
        (status = 404, description = "Unknown session (`not_found`)", body = ErrorBody),
        (status = 503, description = "Replicas' shared database is down: nothing was stored; ask again after `Retry-After` seconds (`database_unavailable`)", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ))]
pub async fn request_handoff(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    session_id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Some(limits) = &state.rate_limits {
        let key_id = state.keys.key_id(&headers);
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        limits
            .check_handoff(key_id, &headers, peer)
            .map_err(|wait| ApiError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            })?;
    }
    let Path(session_id) = session_id?;
    let request: HandoffRequest = optional_body(&body)?;
    let contact = match request.contact {
        None => None,
        Some(contact) => {
            let name = text_field(contact.name, "contact.name", MAX_NAME_CHARS)?;
            let email = email_field(contact.email, "contact.email")?;
            (name.is_some() || email.is_some()).then_some(Contact { name, email })
        }
    };
    let message = text_field(request.message, "message", MAX_TEXT_CHARS)?;
    let queue = state.queue.clone();
    let (handoff, created) =
        blocking(move || queue.request(&session_id, contact, message)).await??;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(handoff)).into_response())
}

/// Where the customer stands: the session's latest hand-off.
#[utoipa::path(get, path = "/api/v1/sessions/{session_id}/handoff", tag = "customers", operation_id = "get_handoff_status",
    params(("session_id" = String, Path, example = "chat-42")),
    responses(
        (status = 200, description = "Status, place in the queue, the agent once claimed", body = CustomerHandoff),
        (status = 404, description = "This session has not asked for a person (`not_found`)", body = ErrorBody),
    ))]
pub async fn customer_handoff(
    State(state): State<AppState>,
    session_id: Result<Path<String>, PathRejection>,
) -> Result<Json<CustomerHandoff>, ApiError> {
    let Path(session_id) = session_id?;
    let queue = state.queue.clone();
    Ok(Json(
        blocking(move || queue.customer_status(&session_id)).await??,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingRequest {
    /// 1 (bad) to 5 (great).
    #[schema(value_type = i64, minimum = 1, maximum = 5, example = 5)]
    pub score: serde_json::Number,
    /// At most 2,000 characters.
    pub comment: Option<String>,
}

/// The customer rates the conversation, once per session (a later rating
/// replaces the earlier one).
#[utoipa::path(post, path = "/api/v1/sessions/{session_id}/rating", tag = "customers", operation_id = "rate_session",
    params(("session_id" = String, Path, example = "chat-42")),
    request_body(content = RatingRequest, example = json!({"score": 5, "comment": "Quick and kind"})),
    responses(
        (status = 200, description = "Stored", body = RatingView),
        (status = 400, description = "Score outside 1–5, or a malformed body (`invalid_body`)", body = ErrorBody),
        (status = 404, description = "Unknown session (`not_found`)", body = ErrorBody),
    ))]
pub async fn rate(
    State(state): State<AppState>,
    session_id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<RatingView>, ApiError> {
    let Path(session_id) = session_id?;
    let request: RatingRequest = required_body(&body, "{\"score\": 1..5, \"comment\"}")?;
    // 5 and 5.0 are the same integer to JSON Schema; 4.5 is not a score.
    let score = request
        .score
        .as_f64()
        .filter(|s| s.fract() == 0.0 && (1.0..=5.0).contains(s))
        .map(|s| s as u8)
        .ok_or_else(|| invalid(format!("`score` must be 1 to 5, not {}", request.score)))?;
    let comment = text_field(request.comment, "comment", MAX_TEXT_CHARS)?
        .map(|c| crate::analytics::redact::redact(&c));
    let queue = state.queue.clone();
    Ok(Json(
        blocking(move || queue.rate(&session_id, score, comment)).await??,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// All when absent.
    pub status: Option<HandoffStatus>,
    /// Default 100; values over 500 are served as 500.
    #[param(minimum = 0, maximum = 1000000, example = 100)]
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HandoffList {
    /// Oldest first.
    pub handoffs: Vec<HandoffView>,
}

/// The agents' queue: hand-offs with each session's brief, questions,
/// reasons, articles already shown and the customer's verdicts.
#[utoipa::path(get, path = "/api/v1/handoffs", tag = "agents", operation_id = "list_handoffs",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "Hand-offs, oldest first", body = HandoffList),
        (status = 400, description = "Unknown status (`invalid_query`)", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<HandoffList>, ApiError> {
    agent(&state, &headers)?;
    let Query(params) = params?;
    let status = params.status;
    let limit = count_param(params.limit, "limit", 100, crate::handoff::queue::MAX_LIST)?;
    let queue = state.queue.clone();
    let handoffs = blocking(move || queue.list(status, limit)).await??;
    Ok(Json(HandoffList { handoffs }))
}

/// One hand-off, as in the queue.
#[utoipa::path(get, path = "/api/v1/handoffs/{handoff_id}", tag = "agents", operation_id = "get_handoff",
    security(("bearer" = [])),
    params(("handoff_id" = String, Path, example = "h_4f1c2a9e0b7d4e5f8a6b3c2d1e0f9a8b")),
    responses(
        (status = 200, description = "The hand-off", body = HandoffView),
        (status = 404, description = "No such hand-off (`not_found`)", body = ErrorBody),
    ))]
pub async fn get_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    handoff_id: Result<Path<String>, PathRejection>,
) -> Result<Json<HandoffView>, ApiError> {
    agent(&state, &headers)?;
    let Path(id) = handoff_id?;
    let queue = state.queue.clone();
    Ok(Json(blocking(move || queue.get(&id)).await??))
}

/// An agent takes a waiting hand-off; they are named by their key's label.
/// Of two agents claiming at once exactly one wins; the other gets 409.
#[utoipa::path(post, path = "/api/v1/handoffs/{handoff_id}/claim", tag = "agents", operation_id = "claim_handoff",
    security(("bearer" = [])),
    params(("handoff_id" = String, Path, example = "h_4f1c2a9e0b7d4e5f8a6b3c2d1e0f9a8b")),
    responses(
        (status = 200, description = "Claimed by the caller", body = HandoffView),
        (status = 404, description = "No such hand-off (`not_found`)", body = ErrorBody),
        (status = 409, description = "Already claimed (the message names by whom) or closed (`conflict`)", body = ErrorBody),
    ))]
pub async fn claim(
    State(state): State<AppState>,
    headers: HeaderMap,
    handoff_id: Result<Path<String>, PathRejection>,
) -> Result<Json<HandoffView>, ApiError> {
    let agent = agent(&state, &headers)?;
    let Path(id) = handoff_id?;
    let queue = state.queue.clone();
    Ok(Json(blocking(move || queue.claim(&id, &agent)).await??))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    #[schema(example = "solved")]
    pub resolution: Resolution,
    /// For the team (at most 2,000 characters).
    pub note: Option<String>,
}

/// Closes a waiting or claimed hand-off with its resolution.
#[utoipa::path(post, path = "/api/v1/handoffs/{handoff_id}/close", tag = "agents", operation_id = "close_handoff",
    security(("bearer" = [])),
    params(("handoff_id" = String, Path, example = "h_4f1c2a9e0b7d4e5f8a6b3c2d1e0f9a8b")),
    request_body(content = CloseRequest, example = json!({"resolution": "solved", "note": "Refunded the second charge"})),
    responses(
        (status = 200, description = "Closed", body = HandoffView),
        (status = 400, description = "Unknown resolution or malformed body (`invalid_body`)", body = ErrorBody),
        (status = 404, description = "No such hand-off (`not_found`)", body = ErrorBody),
        (status = 409, description = "Already closed (`conflict`)", body = ErrorBody),
    ))]
pub async fn close(
    State(state): State<AppState>,
    headers: HeaderMap,
    handoff_id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<HandoffView>, ApiError> {
    agent(&state, &headers)?;
    let Path(id) = handoff_id?;
    let request: CloseRequest = required_body(
        &body,
        "{\"resolution\": \"solved|not_solved|duplicate|spam\", \"note\"}",
    )?;
    let resolution = request.resolution;
    let note = text_field(request.note, "note", MAX_TEXT_CHARS)?;
    let queue = state.queue.clone();
    Ok(Json(
        blocking(move || queue.close(&id, resolution, note)).await??,
    ))
}

/// The queue, live: `handoff.created`, `handoff.claimed` and
/// `handoff.closed` as Server-Sent Events, each `data` the same JSON the
/// webhook receives and each `id` its delivery id. A reader that falls far
/// behind gets a `lagged` event and should reload the list.
#[utoipa::path(get, path = "/api/v1/handoffs/events", tag = "agents", operation_id = "handoff_events",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A `text/event-stream` of queue changes", body = HandoffEvent, content_type = "text/event-stream"),
    ))]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    agent(&state, &headers)?;
    let (receiver, closing) = state.queue.subscribe();
    let stream = futures_util::stream::unfold(
        (receiver, closing),
        |(mut receiver, mut closing)| async move {
            let received = tokio::select! {
                received = receiver.recv() => received,
                // Shutting down (or the queue is gone): end the stream.
                _ = closing.wait_for(|closing| *closing) => return None,
            };
            let sse = match received {
                Ok(event) => Event::default()
                    .event(event.event)
                    .id(event.id.clone())
                    .data(event.data.clone()),
                Err(RecvError::Lagged(missed)) => Event::default()
                    .event("lagged")
                    .data(format!("{{\"missed\":{missed}}}")),
                Err(RecvError::Closed) => return None,
            };
            Some((Ok::<_, Infallible>(sse), (receiver, closing)))
        },
    );
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    // Proxies (nginx) must pass events through as they come.
    response.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    Ok(response)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesParams {
    /// Default 100; values over 1,000 are served as 1,000.
    #[param(minimum = 0, maximum = 1000000, example = 20)]
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryAttemptView {
    /// The `X-Rapport-Delivery` id (the same on every attempt of an event).
    pub delivery_id: String,
    pub event: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at: String,
    /// The receiver's HTTP status; `null` when it could not be reached.
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub outcome: AttemptOutcome,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveriesView {
    /// Whether a webhook is configured.
    pub webhook_configured: bool,
    /// Events not delivered yet.
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    /// Failed attempts that were retried.
    pub retried: u64,
    /// Most recent first.
    pub attempts: Vec<DeliveryAttemptView>,
}

/// Recent webhook delivery attempts with their status codes, and the
/// outbox's totals (admin key).
#[utoipa::path(get, path = "/api/v1/handoffs/deliveries", tag = "admins", operation_id = "handoff_deliveries",
    security(("bearer" = [])),
    params(DeliveriesParams),
    responses(
        (status = 200, description = "Recent attempts, most recent first", body = DeliveriesView),
        (status = 403, description = "An agent key (`forbidden`)", body = ErrorBody),
    ))]
pub async fn deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<DeliveriesParams>, QueryRejection>,
) -> Result<Json<DeliveriesView>, ApiError> {
    match state.keys.identify(&headers)? {
        Caller::Admin => {}
        Caller::Agent => return Err(ApiError::Unauthorized(AuthError::Forbidden)),
        Caller::Anonymous => return Err(ApiError::Unauthorized(AuthError::AdminKeyRequired)),
    }
    let Query(params) = params?;
    let limit = count_param(params.limit, "limit", 100, 1000)?;
    let store = state.queue.store().clone();
    let configured = state.queue.has_webhook();
    let (counts, records) = blocking(move || {
        Ok::<_, crate::store::StoreError>((store.outbox_counts()?, store.deliveries(limit)?))
    })
    .await??;
    Ok(Json(DeliveriesView {
        webhook_configured: configured,
        pending: counts.pending,
        delivered: counts.delivered,
        dead: counts.dead,
        retried: counts.retried,
        attempts: records
            .into_iter()
            .map(|r| DeliveryAttemptView {
                delivery_id: r.delivery_id,
                event: r.event,
                attempt: r.attempt,
                at: rfc3339(r.result.at_ms),
                status_code: r.result.status_code,
                error: r.result.error,
                duration_ms: r.result.duration_ms,
                outcome: r.result.outcome,
            })
            .collect(),
    }))
}
