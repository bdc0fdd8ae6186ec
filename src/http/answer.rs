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
use crate::handoff::timeline::{
    QuestionRecord, SessionEvent, SessionMemory, ShownArticle, TurnChannel,
};
use crate::handoff::tone::Tone;
use crate::handoff::{AnswerSignal, Handoff};
use crate::metrics::ReasonLabels;
use crate::search::answer::answer_text;
use crate::search::query::bounded;
use crate::search::{AnswerOutcome, Context, RankedHit, SectionRef, Visibility};

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
    pub article_id: String,
    pub title: String,
    pub url: String,
    pub section: SectionRef,
    pub text: String,
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
    /// With a `session_id` or `customer_id`: whether what failed earlier in
    /// the session (or for the customer) could be read. `unavailable` when
    /// replicas' shared database is down: only this replica's memory was
    /// used, and the answer is never safe to send without an agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    session_memory: Option<SessionMemory>,
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
    let turn = Turn {
        query: question.clone(),
        own_words: question,
        session_id: non_blank(&request.session_id).map(str::to_string),
        customer_id: non_blank(&request.customer_id).map(str::to_string),
        context: request.context,
        visibility: caller.visibility(),
        alternatives: ALTERNATIVES,
        whole_thread: false,
    };
    let decided = decide(&state, &turn).await?;
    let max_chars = state.handoff.config.answer.max_chars;
    let outcome = &decided.outcome;
    let top = outcome.hits.first();
    // Even when handing off, the best answer goes along for the agent.
    let answer = top.map(|hit| answer_body(hit, max_chars));
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
    record(
        &state,
        &turn,
        &decided,
        Recorded {
            query_id: &query_id,
            channel: Channel::Answer,
            turn_channel: TurnChannel::Answer,
            took_ms,
            sent: answer.as_slice(),
            auto_reply: false,
        },
    );
    let confidence = (decided.outcome.confidence * 1000.0).round() / 1000.0;
    Ok(Json(AnswerResponse {
        query_id,
        took_ms,
        answer,
        confidence,
        handoff: decided.handoff,
        tone: decided.tone,
        alternatives,
        session_memory: decided.memory,
    }))
}

/// One bot turn, as a channel hands it to the ranking core and the
/// hand-off rules: `/answer` and `/messages` share everything below.
pub(crate) struct Turn {
    /// What is ranked (an e-mail's subject and cleaned body).
    pub query: String,
    /// The customer's own words: tone and the hand-off cues read only these
    /// (never a quoted thread).
    pub own_words: String,
    pub session_id: Option<String>,
    pub customer_id: Option<String>,
    pub context: Context,
    pub visibility: Visibility,
    pub alternatives: usize,
    /// Compare with every earlier question of the session, not only the
    /// last half hour's (an e-mail thread lasts days).
    pub whole_thread: bool,
}

/// What the core decided for a turn.
pub(crate) struct Decided {
    pub outcome: AnswerOutcome,
    pub handoff: Handoff,
    pub tone: Tone,
    /// Keyed hashes, as the timelines are stored.
    pub session: Option<String>,
    pub customer: Option<String>,
    /// `None` without a session or customer.
    pub memory: Option<SessionMemory>,
}

/// Ranks the turn (leaving out what already failed this session or
/// customer) and decides whether a person should take over.
pub(crate) async fn decide(state: &AppState, turn: &Turn) -> Result<Decided, ApiError> {
    let sessions = state.sessions.clone();
    let session = turn.session_id.as_deref().map(|s| sessions.hash_session(s));
    let customer = turn
        .customer_id
        .as_deref()
        .map(|c| sessions.hash_customer(c));
    let engine = state.engine.clone();
    let context = turn.context.clone();
    let text = turn.query.clone();
    let (visibility, alternatives, whole_thread) =
        (turn.visibility, turn.alternatives, turn.whole_thread);
    let (session_key, customer_key) = (session.clone(), customer.clone());
    let repeat_window_ms = state.handoff.config.repeated_question.window_minutes as i64 * 60_000;
    let ((outcome, best_excluded), earlier, memory) = tokio::task::spawn_blocking(move || {
        // A vote sent just before this question counts: it is in memory,
        // or (replicas) in the shared store, written before its response.
        let (failed, memory) =
            sessions.failed_articles(session_key.as_deref(), customer_key.as_deref());
        let mut earlier: Vec<String> = Vec::new();
        if let Some(customer) = &customer_key {
            for (_, events) in sessions.earlier_sessions(
                customer,
                session_key.as_deref(),
                crate::handoff::queue::EARLIER_CONTACTS,
            ) {
                earlier.extend(questions_of(&events));
            }
        }
        if (whole_thread || sessions.is_shared())
            // Read back just above, by `failed_articles`.
            && let Some((events, _)) = session_key.as_deref().and_then(|s| sessions.events_held(s))
        {
            // Replicas: the rules' own memory of the last half hour saw only
            // this replica's turns; the store has them all.
            let since = if whole_thread {
                i64::MIN
            } else {
                sessions.now_ms() - repeat_window_ms
            };
            let recent: Vec<SessionEvent> =
                events.into_iter().filter(|e| e.at_ms() >= since).collect();
            earlier.extend(questions_of(&recent).collect::<Vec<_>>());
        }
        let outcome =
            engine.answer_excluding(&text, &context, visibility, alternatives, &failed)?;
        let memory = (session_key.is_some() || customer_key.is_some()).then_some(memory);
        Ok::<_, crate::search::SearchError>((outcome, earlier, memory))
    })
    .await??;
    let earlier: Vec<&str> = earlier.iter().map(String::as_str).collect();
    let top = outcome.hits.first();
    let (mut handoff, tone) = state.handoff.decide(
        &turn.own_words,
        session.as_deref(),
        &earlier,
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
    for reason in &handoff.reasons {
        state
            .metrics
            .handoffs
            .get_or_create(&ReasonLabels {
                reason: reason.as_str().to_string(),
            })
            .inc();
    }
    Ok(Decided {
        outcome,
        handoff,
        tone,
        session,
        customer,
        memory,
    })
}

fn questions_of(events: &[SessionEvent]) -> impl Iterator<Item = String> + '_ {
    events.iter().filter_map(|event| match event {
        SessionEvent::Question { text, .. } => Some(text.clone()),
        SessionEvent::Feedback { .. } => None,
    })
}

/// What a channel records of a turn besides the decision.
pub(crate) struct Recorded<'a> {
    pub query_id: &'a str,
    pub channel: Channel,
    pub turn_channel: TurnChannel,
    pub took_ms: f64,
    /// The sections the channel's response carries.
    pub sent: &'a [AnswerBody],
    pub auto_reply: bool,
}

/// The analytics event and the session timeline entry of a turn.
pub(crate) fn record(state: &AppState, turn: &Turn, decided: &Decided, recorded: Recorded<'_>) {
    let outcome = &decided.outcome;
    let context = &turn.context;
    if let Some(analytics) = &state.analytics {
        analytics.record_query(QueryEvent {
            query_id: recorded.query_id.to_string(),
            at_ms: now_ms(),
            channel: recorded.channel,
            query: normalize_query(&turn.query),
            filters: serde_json::json!({"context": {"product": context.product, "plan": context.plan, "locale": context.locale}}),
            result_count: outcome.hits.len() as u64,
            top_ids: outcome.hits.iter().map(|h| h.article.id.clone()).collect(),
            confidence: Some(outcome.confidence),
            handoff_reasons: decided
                .handoff
                .reasons
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
            latency_ms: recorded.took_ms,
            session_hash: turn.session_id.as_deref().map(|s| analytics.hash_session(s)),
            burst_key: None,
            auto_reply: recorded.auto_reply,
        });
    }
    if let Some(session) = &decided.session {
        state.sessions.record_question(
            session,
            decided.customer.as_deref(),
            QuestionRecord {
                query_id: recorded.query_id,
                channel: recorded.turn_channel,
                text: &turn.query,
                tone: decided.tone.clone(),
                handoff_reasons: decided.handoff.reasons.clone(),
                // On a hand-off the answer goes to the agent, not the
                // customer: nothing was shown.
                shown: if decided.handoff.recommended {
                    Vec::new()
                } else {
                    recorded
                        .sent
                        .iter()
                        .map(|a| a.shown(outcome.confidence))
                        .collect()
                },
            },
        );
    }
}

/// The answer text of a hit's section (or the section it points to when
/// the chosen one has nothing to say).
pub(crate) fn answer_body(hit: &RankedHit, max_chars: usize) -> AnswerBody {
    let said = answer_text(&hit.article, hit.section_index, max_chars);
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
}

impl AnswerBody {
    fn shown(&self, confidence: f32) -> ShownArticle {
        ShownArticle {
            article_id: self.article_id.clone(),
            title: self.title.clone(),
            section: Some(self.section.heading.clone()),
            confidence: Some((confidence * 1000.0).round() / 1000.0),
        }
    }
}

/// An optional id that is present and not blank.
pub fn non_blank(id: &Option<String>) -> Option<&str> {
    id.as_deref().filter(|s| !s.trim().is_empty())
}
