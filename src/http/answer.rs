//! The chatbot channel: `POST /api/v1/answer`.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ErrorBody, ErrorCode};
use crate::analytics::redact::normalize_query;
use crate::analytics::{Channel, QueryEvent, now_ms};
use crate::handoff::timeline::{QuestionRecord, ShownArticle, TurnChannel};
use crate::handoff::tone::Tone;
use crate::handoff::{AnswerSignal, Handoff};
use crate::metrics::ReasonLabels;
use crate::search::answer::answer_text;
use crate::search::query::bounded;
use crate::search::{Context, RankedHit, SectionRef};

const MAX_QUESTION_BYTES: usize = 10 * 1024;
const ALTERNATIVES: usize = 3;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// Not blank.
    #[schema(pattern = r"\S")]
    question: String,
    #[serde(default)]
    context: Context,
    /// Keeps the conversation's timeline for the agent who may take over,
    /// and keeps articles this session marked `not_helpful` out of answers.
    session_id: Option<String>,
    /// Optional; stored only as a keyed hash. Articles this customer marked
    /// `not_helpful` recently (30 days by default) are not answered either.
    customer_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnswerBody {
    article_id: String,
    title: String,
    url: String,
    section: SectionRef,
    text: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Alternative {
    article_id: String,
    title: String,
    url: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnswerResponse {
    query_id: String,
    took_ms: f64,
    answer: Option<AnswerBody>,
    confidence: f32,
    handoff: Handoff,
    tone: Tone,
    alternatives: Vec<Alternative>,
}

/// The bot's answer: the one section that answers the question, with a
/// calibrated confidence, or a hand-off signal when a person should take over.
#[utoipa::path(post, path = "/api/v1/answer", tag = "bots",
    request_body(content = AnswerRequest, example = json!({"question": "how do I get my money back for a broken item?", "session_id": "chat-42", "context": {"product": "store", "plan": "pro", "locale": "en"}})),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "An answer (or none) with its confidence, the hand-off decision and its reasons, the customer's tone, and alternatives", body = AnswerResponse),
        (status = 400, description = "`question` blank (`missing_question`), or a malformed body or unknown field (`invalid_body`)", body = ErrorBody),
    ))]
pub async fn answer(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<AnswerRequest>, JsonRejection>,
) -> Result<Json<AnswerResponse>, ApiError> {
    let started = Instant::now();
    let Json(request) = body?;
    let caller = state.keys.identify(&headers)?;
    let question = bounded(&request.question, MAX_QUESTION_BYTES);
    if question.trim().is_empty() {
        return Err(ApiError::bad_request(
            ErrorCode::MissingQuestion,
            "`question` must not be empty",
        ));
    }
    let sessions = state.sessions.clone();
    let session = non_blank(&request.session_id).map(|s| sessions.hash_session(s));
    let customer = non_blank(&request.customer_id).map(|c| sessions.hash_customer(c));
    let engine = state.engine.clone();
    let context = request.context.clone();
    let text = question.clone();
    let (session_key, customer_key) = (session.clone(), customer.clone());
    let (outcome, best_excluded) = tokio::task::spawn_blocking(move || {
        // In-memory, authoritative for the live session: a vote sent just
        // before this question counts.
        let failed = sessions.failed_articles(session_key.as_deref(), customer_key.as_deref());
        engine.answer_excluding(&text, &context, caller.visibility(), ALTERNATIVES, &failed)
    })
    .await??;

    let top = outcome.hits.first();
    let (mut handoff, tone) = state.handoff.decide(
        &question,
        request.session_id.as_deref(),
        AnswerSignal {
            confidence: outcome.confidence,
            top_article: top.map(|hit| hit.article.id.as_str()),
        },
    );
    // The best answer already failed this customer: the next best is given
    // if it is confident enough on its own, else a person takes over.
    if best_excluded && outcome.confidence < state.handoff.config.answer.min_confidence {
        handoff.already_tried();
    }
    let max_chars = state.handoff.config.answer.max_chars;
    // Even when handing off, the best answer goes along for the agent.
    let answer = top.map(|hit| {
        let said = answer_text(&hit.article, hit.section_index, max_chars);
        // When the chosen section had nothing to say, the answer points at
        // the section it says instead.
        let shown = RankedHit {
            section_index: said.section,
            ..hit.clone()
        };
        AnswerBody {
            article_id: hit.article.id.clone(),
            title: hit.article.title.clone(),
            url: shown.url(),
            section: shown.section_ref(),
            text: said.text,
        }
    });
    let alternatives = outcome
        .hits
        .iter()
        .skip(1)
        .map(|hit| Alternative {
            article_id: hit.article.id.clone(),
            title: hit.article.title.clone(),
            url: hit.url(),
        })
        .collect();
    let query_id = uuid::Uuid::new_v4().to_string();
    let took_ms = started.elapsed().as_secs_f64() * 1e3;
    for reason in &handoff.reasons {
        if let Some(reason) = serde_json::to_value(reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
        {
            state
                .metrics
                .handoffs
                .get_or_create(&ReasonLabels { reason })
                .inc();
        }
    }
    if let Some(analytics) = &state.analytics {
        analytics.record_query(QueryEvent {
            query_id: query_id.clone(),
            at_ms: now_ms(),
            channel: Channel::Answer,
            query: normalize_query(&question),
            filters: serde_json::json!({"context": {"product": request.context.product, "plan": request.context.plan, "locale": request.context.locale}}),
            result_count: outcome.hits.len() as u64,
            top_ids: outcome.hits.iter().map(|h| h.article.id.clone()).collect(),
            confidence: Some(outcome.confidence),
            handoff_reasons: handoff
                .reasons
                .iter()
                .filter_map(|r| serde_json::to_value(r).ok())
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            latency_ms: took_ms,
            session_hash: request.session_id.as_deref().map(|s| analytics.hash_session(s)),
            burst_key: None,
            auto_reply: false,
        });
    }
    if let Some(session) = &session {
        state.sessions.record_question(
            session,
            customer.as_deref(),
            QuestionRecord {
                query_id: &query_id,
                channel: TurnChannel::Answer,
                text: &question,
                tone: tone.clone(),
                handoff_reasons: handoff.reasons.clone(),
                // On a hand-off the answer goes to the agent, not the customer.
                shown: answer
                    .iter()
                    .filter(|_| !handoff.recommended)
                    .map(|a| ShownArticle {
                        article_id: a.article_id.clone(),
                        title: a.title.clone(),
                        section: Some(a.section.heading.clone()),
                        confidence: Some((outcome.confidence * 1000.0).round() / 1000.0),
                    })
                    .collect(),
            },
        );
    }
    Ok(Json(AnswerResponse {
        query_id,
        took_ms,
        answer,
        confidence: (outcome.confidence * 1000.0).round() / 1000.0,
        handoff,
        tone,
        alternatives,
    }))
}

/// An optional id that is present and not blank.
pub fn non_blank(id: &Option<String>) -> Option<&str> {
    id.as_deref().filter(|s| !s.trim().is_empty())
}
