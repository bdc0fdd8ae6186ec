//! The agent channel: `POST /api/v1/suggest`, article suggestions from the
//! live transcript (agent key required; internal articles included).

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::analytics::redact::normalize_query;
use crate::analytics::{Channel, QueryEvent, now_ms};
use crate::article::Audience;
use crate::auth::{AuthError, Caller};
use crate::handoff::Handoff;
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
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SuggestResponse {
    query_id: String,
    took_ms: f64,
    suggestions: Vec<Suggestion>,
    tone: Tone,
    handoff: Handoff,
}

#[utoipa::path(post, path = "/api/v1/suggest", tag = "agent", request_body = SuggestRequest,
    security(("bearer" = [])),
    responses((status = 200, body = SuggestResponse), (status = 401, body = ErrorBody), (status = 400, description = "Invalid parameters", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn suggest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<SuggestRequest>, JsonRejection>,
) -> Result<Json<SuggestResponse>, ApiError> {
    let started = Instant::now();
    let caller = state.keys.identify(&headers)?;
    if caller == Caller::Anonymous {
        return Err(ApiError::Unauthorized(AuthError::AgentKeyRequired));
    }
    // An empty transcript (the chat just started) simply has no suggestions yet.
    let Json(request) = body?;
    let limit = match request.limit {
        None => 5,
        Some(limit) if (0.0..=1e6).contains(&limit) && limit.fract() == 0.0 => {
            (limit as usize).clamp(1, MAX_LIMIT)
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "`limit` must be a whole number from 0 to 1000000",
            ));
        }
    };
    let handoff_rules = state.handoff.clone();
    let segments = transcript_segments(&request.transcript, handoff_rules.turn_weights(), |text| {
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
    let last_customer_turn = request
        .transcript
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
    let suggestions = hits
        .iter()
        .map(|hit| Suggestion {
            id: hit.article.id.clone(),
            title: hit.article.title.clone(),
            url: hit.url(),
            audience: hit.article.audience,
            section: hit.section_ref(),
            snippet: hit.snippet(&plan),
            score: hit.score,
            matched_terms: hit.matched_terms(&plan),
        })
        .collect();
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
            session_hash: None,
            burst_key: None,
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
