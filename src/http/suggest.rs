//! The agent channel: `POST /api/v1/suggest`, article suggestions from the
//! live transcript (agent key required; internal articles included).

use std::collections::HashSet;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::answer::non_blank;
use super::error::{ApiError, ErrorBody, ErrorCode};
use crate::analytics::redact::normalize_query;
use crate::analytics::{Channel, QueryEvent, now_ms};
use crate::article::Audience;
use crate::handoff::Handoff;
use crate::handoff::brief::CustomerFeedback;
use crate::handoff::timeline::{SessionEvent, latest_verdicts};
use crate::handoff::tone::Tone;
use crate::search::query::bounded;
use crate::search::transcript::{MAX_TURN_BYTES, Role, Turn, transcript_segments};
use crate::search::{Context, MAX_LIMIT, SectionRef};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestRequest {
    transcript: Vec<Turn>,
    #[serde(default)]
    context: Context,
    #[serde(default)]
    exclude: Vec<String>,
    /// Suggestions wanted (default 5, at most 50).
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 1000000)]
    limit: Option<f64>,
    /// The bot session the agent took over: its questions join the
    /// transcript as earlier customer turns, and each suggestion says whether
    /// the customer was already shown it and what they said of it.
    session_id: Option<String>,
    /// Also mark articles this customer marked `not_helpful` recently.
    customer_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AgentSuggestion)]
pub struct Suggestion {
    id: String,
    title: String,
    url: String,
    audience: Audience,
    section: SectionRef,
    snippet: String,
    score: f32,
    matched_terms: Vec<String>,
    /// Shown to the customer in the `session_id` session (by the bot or search).
    shown_to_customer: bool,
    /// The customer's latest verdict on it; already-failed articles rank
    /// below untried ones.
    customer_feedback: Option<CustomerFeedback>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SuggestResponse {
    query_id: String,
    took_ms: f64,
    suggestions: Vec<Suggestion>,
    tone: Tone,
    handoff: Handoff,
}

/// Suggestions for the agent from the live transcript, internal articles
/// included, each marked with what the customer already saw and said.
#[utoipa::path(post, path = "/api/v1/suggest", tag = "agents",
    request_body(content = SuggestRequest, example = json!({"transcript": [{"role": "customer", "text": "I was charged twice this month"}, {"role": "agent", "text": "Sorry about that, let me check"}], "session_id": "chat-42", "limit": 5})),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Suggestions, best first, with the conversation's tone and hand-off reasons", body = SuggestResponse),
        (status = 400, description = "A malformed body, an unknown field or an out-of-range `limit` (`invalid_body`)", body = ErrorBody),
    ))]
pub async fn suggest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<SuggestRequest>, JsonRejection>,
) -> Result<Json<SuggestResponse>, ApiError> {
    let started = Instant::now();
    let caller = super::require_agent(&state, &headers)?;
    // An empty transcript (the chat just started) simply has no suggestions yet.
    let Json(request) = body?;
    let limit = match request.limit {
        None => 5,
        Some(limit) if (0.0..=1e6).contains(&limit) && limit.fract() == 0.0 => {
            (limit as usize).clamp(1, MAX_LIMIT)
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidBody,
                "`limit` must be a whole number from 0 to 1000000",
            ));
        }
    };
    let sessions = state.sessions.clone();
    let session = non_blank(&request.session_id).map(|s| sessions.hash_session(s));
    let customer = non_blank(&request.customer_id).map(|c| sessions.hash_customer(c));
    // What the bot session knows (may load it from SQLite after a restart).
    let history = match session.clone() {
        Some(session) => {
            let sessions = sessions.clone();
            tokio::task::spawn_blocking(move || sessions.events(&session)).await?
        }
        None => None,
    };
    let (events, session_customer) = history.unwrap_or_default();
    let customer = customer.or(session_customer);
    // The bot conversation came first: its questions are earlier customer
    // turns, weighed by the same recency rules as the live transcript.
    let mut turns: Vec<Turn> = events
        .iter()
        .filter_map(|event| match event {
            SessionEvent::Question { text, .. } => Some(Turn {
                role: Role::Customer,
                text: text.clone(),
            }),
            SessionEvent::Feedback { .. } => None,
        })
        .collect();
    turns.extend(request.transcript.iter().cloned());
    let handoff_rules = state.handoff.clone();
    let segments = transcript_segments(&turns, handoff_rules.turn_weights(), |text| {
        handoff_rules.strip_chatter(text)
    });
    let customer_text: String = request
        .transcript
        .iter()
        .filter(|t| t.role == Role::Customer)
        .map(|t| bounded(&t.text, MAX_TURN_BYTES))
        .collect::<Vec<_>>()
        .join("\n");
    let (handoff, tone) = state.handoff.assess_text(&customer_text);
    let last_customer_turn = turns
        .iter()
        .rev()
        .find(|t| t.role == Role::Customer)
        .map(|t| bounded(&t.text, MAX_TURN_BYTES));

    let engine = state.engine.clone();
    let context = request.context;
    let exclude = request.exclude;
    let (plan, hits) = tokio::task::spawn_blocking(move || {
        engine.suggest(&segments, &context, caller.visibility(), limit, &exclude)
    })
    .await??;
    let shown: HashSet<&str> = events
        .iter()
        .flat_map(|event| match event {
            SessionEvent::Question { shown, .. } => {
                shown.iter().map(|a| a.article_id.as_str()).collect()
            }
            SessionEvent::Feedback { .. } => Vec::new(),
        })
        .collect();
    let verdicts = latest_verdicts(&events);
    let customer_failed: HashSet<String> = customer
        .as_deref()
        .map(|c| sessions.customer_failed(c).into_iter().collect())
        .unwrap_or_default();
    let mut suggestions: Vec<Suggestion> = hits
        .iter()
        .map(|hit| {
            let id = hit.article.id.as_str();
            let customer_feedback = match verdicts.get(id) {
                Some(helpful) => Some(CustomerFeedback::from_verdict(*helpful)),
                None if customer_failed.contains(id) => Some(CustomerFeedback::NotHelpful),
                None => None,
            };
            Suggestion {
                id: hit.article.id.clone(),
                title: hit.article.title.clone(),
                url: hit.url(),
                audience: hit.article.audience,
                section: hit.section_ref(),
                snippet: hit.snippet(&plan),
                score: hit.score,
                matched_terms: hit.matched_terms(&plan),
                shown_to_customer: shown.contains(id),
                customer_feedback,
            }
        })
        .collect();
    // Stable: untried (and helpful) suggestions keep their order, above the
    // ones that already failed this customer.
    suggestions.sort_by_key(|s| s.customer_feedback == Some(CustomerFeedback::NotHelpful));
    let query_id = uuid::Uuid::new_v4().to_string();
    let took_ms = started.elapsed().as_secs_f64() * 1e3;
    if let Some(analytics) = &state.analytics {
        analytics.record_query(QueryEvent {
            query_id: query_id.clone(),
            at_ms: now_ms(),
            channel: Channel::Suggest,
            query: normalize_query(last_customer_turn.as_deref().unwrap_or_default()),
            filters: serde_json::json!({}),
            result_count: hits.len() as u64,
            top_ids: hits.iter().map(|h| h.article.id.clone()).collect(),
            confidence: None,
            handoff_reasons: Vec::new(),
            latency_ms: took_ms,
            session_hash: non_blank(&request.session_id).map(|s| analytics.hash_session(s)),
            burst_key: None,
            auto_reply: false,
        });
    }
    Ok(Json(SuggestResponse {
        query_id,
        took_ms,
        suggestions,
        tone,
        handoff,
    }))
}
