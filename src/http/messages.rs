//! Messages from asynchronous channels: `POST /api/v1/messages`. A helpdesk
//! or mail relay posts what a customer wrote (JSON, or the raw e-mail as
//! `message/rfc822`); rapport cleans it to the customer's own question,
//! answers it with the same core as `/answer` and drafts a reply.
//!
//! The thread is the session: a reply in the same thread continues it, and
//! one that says the last answer did not work marks that answer not helpful
//! before the next is chosen.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::answer::{AnswerBody, Recorded, Turn, answer_body, decide, record};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::handoffs::{MAX_NAME_CHARS, email_field, sanitize, text_field};
use crate::analytics::{Channel, FeedbackEvent, FeedbackKind, now_ms};
use crate::channels::email::{self, Cleaned, Removed, clean};
use crate::channels::reply::{ReplySection, SuggestedReply, suggested_reply};
use crate::config::ChannelSetting;
use crate::handoff::timeline::{SessionEvent, SessionMemory, TurnChannel};
use crate::handoff::tone::Tone;
use crate::handoff::{Handoff, HandoffReason};
use crate::search::{Context, Visibility};
use crate::store::Contact;

/// The largest message accepted, raw or JSON (a long thread with inline
/// images runs to megabytes).
pub const MAX_MESSAGE_BYTES: usize = email::DEFAULT_MAX_BYTES;
/// Sections a reply offers at most: the answer and two more.
const MAX_SECTIONS: usize = 3;
/// A further section joins the reply only when it ranks this close to the
/// best one (a share of its score).
const FURTHER_SECTION_SCORE: f32 = 0.75;
const MAX_ID_CHARS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageChannel {
    Email,
    Form,
    Social,
}

impl MessageChannel {
    fn analytics(self) -> Channel {
        match self {
            MessageChannel::Email => Channel::Email,
            MessageChannel::Form => Channel::Form,
            MessageChannel::Social => Channel::Social,
        }
    }

    fn turn(self) -> TurnChannel {
        match self {
            MessageChannel::Email => TurnChannel::Email,
            MessageChannel::Form => TurnChannel::Form,
            MessageChannel::Social => TurnChannel::Social,
        }
    }
}

/// A message as JSON. `text` or `html` carries the body (`text` wins when
/// both are sent).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    channel: MessageChannel,
    /// The conversation this message belongs to: the session. Replies in
    /// the same thread continue it.
    #[schema(pattern = r"\S", max_length = 256)]
    thread_id: String,
    /// Stored only as a keyed hash; links this thread to the customer's
    /// other sessions on any channel.
    #[schema(max_length = 256)]
    customer_id: Option<String>,
    subject: Option<String>,
    text: Option<String>,
    /// Converted to text (quoted blocks marked and removed) when `text` is absent.
    html: Option<String>,
    /// RFC 3339; informational.
    #[schema(format = DateTime)]
    received_at: Option<String>,
    /// The sender's name, for the reply's greeting (an e-mail's From).
    #[schema(max_length = 200)]
    customer_name: Option<String>,
    /// The sender's address, kept with a hand-off so an agent can answer;
    /// checked as a hand-off's contact address is.
    #[schema(format = Email)]
    customer_email: Option<String>,
    #[serde(default)]
    context: Context,
}

/// For a raw `message/rfc822` body: what the headers don't say (a JSON
/// body carries its own ids; these are ignored then).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RawParams {
    /// Default: the thread's first `References` id, else `In-Reply-To`,
    /// else the message's own `Message-ID`.
    thread_id: Option<String>,
    /// Default: the sender's address (lower-cased).
    customer_id: Option<String>,
}

/// What cleaning kept of the message, so a person can see why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CleanedView {
    /// The customer's own words: no quoted thread, signature or greeting.
    question_text: String,
    /// The subject without `Re:`/`Fwd:` and ticket tags.
    subject: Option<String>,
    /// What was ranked: the subject (unless the question repeats it) and
    /// the question.
    query_text: String,
    removed: Vec<Removed>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageHandoff {
    recommended: bool,
    reasons: Vec<HandoffReason>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    topics: Vec<String>,
    /// The hand-off put in the agents' queue for this thread (recommended
    /// only).
    handoff_id: Option<String>,
    /// Place in the queue while waiting.
    position: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FollowUp {
    /// Articles sent earlier in the thread that this message says did not
    /// help; they are recorded as `not_helpful` and not offered again.
    not_helpful: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageResponse {
    query_id: String,
    took_ms: f64,
    channel: MessageChannel,
    thread_id: String,
    cleaned: CleanedView,
    /// The best one to three sections, best first (empty: nothing fits).
    answers: Vec<AnswerBody>,
    /// The best section's calibrated confidence.
    confidence: f32,
    handoff: MessageHandoff,
    /// Read from the customer's own words only, never the quoted thread.
    tone: Tone,
    follow_up: FollowUp,
    /// A draft an agent can edit: greeting, the answer's own text, links.
    /// `null` when there is no answer.
    suggested_reply: Option<SuggestedReply>,
    /// True only when the confidence is high, no hand-off cue fired and the
    /// team allows auto-replies on this channel (`[channels.<channel>]
    /// auto_reply`, off by default), and the thread's memory could be read.
    auto_reply_ok: bool,
    /// Whether the thread's earlier turns and the customer's votes could be
    /// read (`unavailable`: replicas' shared database is down).
    session_memory: SessionMemory,
}

/// One message from e-mail, a web form or social media: the customer's
/// question cleaned out of it, the best sections, a hand-off decision and a
/// reply an agent can send.
#[utoipa::path(post, path = "/api/v1/messages", tag = "bots",
    params(RawParams),
    request_body(description = "JSON (`application/json`, this schema), or the raw e-mail as received (`Content-Type: message/rfc822`; `thread_id` and `customer_id` then optional in the query). The raw form is described here rather than as a second content type because client generators do not support `message/rfc822`.", content(
        (MessageRequest = "application/json", example = json!({"channel": "email", "thread_id": "ticket-4471", "customer_id": "priya@example.com", "subject": "Re: Export", "text": "Hi,\n\nHow do I export my vault?\n\nThanks,\nPriya\n\nOn Mon, 3 Nov 2025 at 14:02, Support <help@example.com> wrote:\n> Anything else?"})),
    )),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cleaned question, the best sections, the hand-off decision and a suggested reply", body = MessageResponse),
        (status = 400, description = "A malformed body (`invalid_body`), a raw message that is not readable MIME (`invalid_message`, naming the problem), or no thread to attach it to (`missing_thread`)", body = ErrorBody),
        (status = 401, description = "No agent key (`unauthorized`)", body = ErrorBody),
        (status = 413, description = "Larger than 10 MiB (`payload_too_large`)", body = ErrorBody),
        (status = 415, description = "Neither `application/json` nor `message/rfc822` (`unsupported_media_type`)", body = ErrorBody),
        (status = 503, description = "A hand-off was needed but replicas' shared database is down: post the message again after `Retry-After` seconds (`database_unavailable`)", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ))]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<RawParams>, QueryRejection>,
    body: Bytes,
) -> Result<Json<MessageResponse>, ApiError> {
    let started = Instant::now();
    super::require_agent(&state, &headers)?;
    let message = Inbound::read(&headers, params, &body)?;
    // A message with no words of the customer's own (only a quote, only an
    // attachment) is not refused: nothing matches it, so it goes to a
    // person (`no_match`) and is not lost.
    let cleaned = clean(message.subject.as_deref(), &message.body);
    let customer_name = message
        .customer_name
        .clone()
        .or(cleaned.greeting_name.clone());
    let not_helpful = follow_up(&state, &message.thread_id, &cleaned).await?;

    // Replies can reach the customer without an agent reading them first:
    // only public articles, whoever's key posted the message.
    let turn = Turn {
        query: cleaned.query_text.clone(),
        own_words: cleaned.question_text.clone(),
        session_id: Some(message.thread_id.clone()),
        customer_id: message.customer_id.clone(),
        context: message.context.clone(),
        visibility: Visibility::PublicOnly,
        alternatives: MAX_SECTIONS - 1,
        whole_thread: true,
    };
    let decided = decide(&state, &turn).await?;
    let max_chars = state.handoff.config.answer.max_chars;
    let best_score = decided.outcome.hits.first().map_or(0.0, |h| h.score);
    let answers: Vec<AnswerBody> = decided
        .outcome
        .hits
        .iter()
        .take(MAX_SECTIONS)
        .enumerate()
        .filter(|(i, hit)| *i == 0 || hit.score >= best_score * FURTHER_SECTION_SCORE)
        .map(|(_, hit)| {
            let mut body = answer_body(hit, max_chars);
            body.url = absolute(state.channels.public_url.as_deref(), &body.url);
            body
        })
        .collect();
    let setting = channel_setting(&state, message.channel);
    let confidence = (decided.outcome.confidence * 1000.0).round() / 1000.0;
    let auto_reply_ok = setting.auto_reply
        && !decided.handoff.recommended
        && !answers.is_empty()
        && decided.memory != Some(SessionMemory::Unavailable)
        && decided.outcome.confidence >= setting.auto_reply_min_confidence;
    let sections: Vec<ReplySection<'_>> = answers
        .iter()
        .map(|a| ReplySection {
            title: &a.title,
            heading: &a.section.heading,
            url: &a.url,
            text: &a.text,
        })
        .collect();
    let reply = suggested_reply(
        customer_name.as_deref(),
        &sections,
        &format!("The {} team", state.portal.settings.name),
    );
    let query_id = uuid::Uuid::new_v4().to_string();
    record(
        &state,
        &turn,
        &decided,
        Recorded {
            query_id: &query_id,
            channel: message.channel.analytics(),
            turn_channel: message.channel.turn(),
            took_ms: started.elapsed().as_secs_f64() * 1e3,
            sent: &answers,
            auto_reply: auto_reply_ok,
        },
    );
    let handoff =
        queue_handoff(&state, &message, &cleaned, customer_name, &decided.handoff).await?;
    Ok(Json(MessageResponse {
        query_id,
        took_ms: started.elapsed().as_secs_f64() * 1e3,
        channel: message.channel,
        thread_id: message.thread_id,
        cleaned: CleanedView {
            question_text: cleaned.question_text,
            subject: message
                .subject
                .as_deref()
                .and_then(email::clean::normalize_subject),
            query_text: cleaned.query_text,
            removed: cleaned.removed,
        },
        answers,
        confidence,
        handoff,
        tone: decided.tone,
        follow_up: FollowUp { not_helpful },
        suggested_reply: reply,
        auto_reply_ok,
        session_memory: decided.memory.unwrap_or(SessionMemory::Available),
    }))
}

/// A message, whichever way it arrived.
struct Inbound {
    channel: MessageChannel,
    thread_id: String,
    customer_id: Option<String>,
    customer_name: Option<String>,
    customer_email: Option<String>,
    subject: Option<String>,
    body: String,
    context: Context,
}

impl Inbound {
    fn read(
        headers: &HeaderMap,
        params: Result<Query<RawParams>, QueryRejection>,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let Query(params) = params?;
        match content_type.as_str() {
            "application/json" => {
                // The query's ids are for raw messages; a JSON body names its own.
                let _ = params;
                let request: MessageRequest = serde_json::from_slice(body).map_err(|e| {
                    ApiError::bad_request(ErrorCode::InvalidBody, format!("invalid JSON body: {e}"))
                })?;
                Self::from_json(request)
            }
            "message/rfc822" => Self::from_raw(params, body),
            other => Err(ApiError::UnsupportedMediaType(format!(
                "send the message as application/json or message/rfc822, not {:?}",
                if other.is_empty() {
                    "no Content-Type"
                } else {
                    other
                }
            ))),
        }
    }

    fn from_json(request: MessageRequest) -> Result<Self, ApiError> {
        let thread_id = text_field(Some(request.thread_id), "thread_id", MAX_ID_CHARS)?
            .ok_or_else(|| {
                ApiError::bad_request(ErrorCode::MissingThread, "`thread_id` must not be blank")
            })?;
        if let Some(at) = &request.received_at
            && time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .is_err()
        {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidBody,
                format!("`received_at` must be an RFC 3339 time, not {at:?}"),
            ));
        }
        let body = match (request.text, request.html) {
            (Some(text), _) if !text.trim().is_empty() => text,
            (_, Some(html)) if !html.trim().is_empty() => email::html_to_text(&html),
            _ => String::new(),
        };
        Ok(Inbound {
            channel: request.channel,
            thread_id,
            customer_id: text_field(request.customer_id, "customer_id", MAX_ID_CHARS)?,
            customer_name: text_field(request.customer_name, "customer_name", MAX_NAME_CHARS)?,
            customer_email: email_field(request.customer_email, "customer_email")?,
            subject: request.subject,
            body,
            context: request.context,
        })
    }

    fn from_raw(params: RawParams, body: &[u8]) -> Result<Self, ApiError> {
        let mail = email::parse(body, MAX_MESSAGE_BYTES)
            .map_err(|e| ApiError::bad_request(ErrorCode::InvalidMessage, e.to_string()))?;
        let thread = params
            .thread_id
            .or_else(|| mail.references.first().cloned())
            .or_else(|| mail.in_reply_to.clone())
            .or_else(|| mail.message_id.clone());
        let thread_id = text_field(thread, "thread_id", MAX_ID_CHARS)?.ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::MissingThread,
                "the message has no Message-ID, In-Reply-To or References header: pass `thread_id` in the query",
            )
        })?;
        let customer = params
            .customer_id
            .or_else(|| mail.from_address.as_ref().map(|a| a.to_lowercase()));
        Ok(Inbound {
            channel: MessageChannel::Email,
            thread_id,
            customer_id: text_field(customer, "customer_id", MAX_ID_CHARS)?,
            // A From header rapport cannot use is left out, not refused:
            // the message itself is still worth answering.
            customer_name: text_field(mail.from_name.clone(), "From", MAX_NAME_CHARS)
                .ok()
                .flatten(),
            customer_email: email_field(mail.from_address.clone(), "From")
                .ok()
                .flatten(),
            subject: mail.subject,
            body: mail.text,
            context: Context::default(),
        })
    }
}

fn channel_setting(state: &AppState, channel: MessageChannel) -> ChannelSetting {
    match channel {
        MessageChannel::Email => state.channels.email,
        MessageChannel::Form => state.channels.form,
        MessageChannel::Social => state.channels.social,
    }
}

/// `/articles/…` on the team's public address, when configured.
fn absolute(public_url: Option<&str>, url: &str) -> String {
    match public_url {
        Some(base) if url.starts_with('/') => format!("{base}{url}"),
        _ => url.to_string(),
    }
}

/// A reply that says the last answer did not work marks what was sent last
/// in the thread not helpful (for the session and the customer), before the
/// next answer is chosen. Returns those article ids.
async fn follow_up(
    state: &AppState,
    thread_id: &str,
    cleaned: &Cleaned,
) -> Result<Vec<String>, ApiError> {
    if !state.handoff.says_not_helpful(&cleaned.question_text) {
        return Ok(Vec::new());
    }
    let sessions = state.sessions.clone();
    let session = sessions.hash_session(thread_id);
    let last_sent = super::blocking(move || {
        let (events, _) = sessions.events(&session)?;
        events.iter().rev().find_map(|event| match event {
            SessionEvent::Question {
                query_id, shown, ..
            } if !shown.is_empty() => Some((session.clone(), query_id.clone(), shown.clone())),
            _ => None,
        })
    })
    .await?;
    let Some((session, query_id, shown)) = last_sent else {
        return Ok(Vec::new());
    };
    let mut marked = Vec::new();
    for article in shown {
        state.sessions.record_feedback(
            &session,
            &query_id,
            &article.article_id,
            &article.title,
            FeedbackKind::NotHelpful,
        );
        if let Some(analytics) = &state.analytics {
            analytics.record_feedback(FeedbackEvent {
                query_id: query_id.clone(),
                article_id: article.article_id.clone(),
                event: FeedbackKind::NotHelpful,
                comment: None,
                at_ms: now_ms(),
            });
        }
        marked.push(article.article_id);
    }
    Ok(marked)
}

/// A message that needs a person goes into the agents' queue, with the
/// sender's name and address and the cleaned question, so the brief, the
/// queue and the webhooks work as for chat.
async fn queue_handoff(
    state: &AppState,
    message: &Inbound,
    cleaned: &Cleaned,
    customer_name: Option<String>,
    handoff: &Handoff,
) -> Result<MessageHandoff, ApiError> {
    let mut view = MessageHandoff {
        recommended: handoff.recommended,
        reasons: handoff.reasons.clone(),
        topics: handoff.topics.clone(),
        handoff_id: None,
        position: None,
    };
    if !handoff.recommended {
        return Ok(view);
    }
    let contact = Contact {
        name: customer_name,
        email: message.customer_email.clone(),
    };
    let contact = (contact.name.is_some() || contact.email.is_some()).then_some(contact);
    let queue = state.queue.clone();
    let thread_id = message.thread_id.clone();
    // At most MAX_QUESTION_CHARS (2,000) already, as a hand-off's message.
    let text = Some(sanitize(&cleaned.question_text)).filter(|t| !t.is_empty());
    // The timeline entry was just recorded in memory, so the session exists.
    let (created, _) = super::blocking(move || queue.request(&thread_id, contact, text)).await??;
    view.handoff_id = Some(created.handoff_id);
    view.position = created.position;
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_become_absolute_only_with_a_public_url() {
        assert_eq!(
            absolute(Some("https://help.example.com"), "/articles/a#b"),
            "https://help.example.com/articles/a#b"
        );
        assert_eq!(absolute(None, "/articles/a"), "/articles/a");
    }
}
