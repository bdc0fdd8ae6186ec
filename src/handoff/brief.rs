//! What an agent reads when they pick a session up: the structured timeline
//! (`GET /api/v1/sessions/{session_id}`) and a `brief` readable in five
//! seconds. Everything is derived deterministically from the stored events
//! (no model, no network), so the same timeline always gives the same brief.

use std::collections::HashMap;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use super::HandoffReason;
use super::timeline::{SessionEvent, ShownArticle, TurnChannel, latest_verdicts, verdict};
use super::tone::Tone;
use crate::analytics::FeedbackKind;
use crate::search::query::{is_stop_word, stem, surface_tokens_unbounded};

/// The customer's latest verdict on an article in this session (`resolved`
/// counts as helpful).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CustomerFeedback {
    Helpful,
    NotHelpful,
}

impl CustomerFeedback {
    pub fn from_verdict(helpful: bool) -> Self {
        if helpful {
            CustomerFeedback::Helpful
        } else {
            CustomerFeedback::NotHelpful
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionQuestion {
    /// RFC 3339.
    pub at: String,
    pub channel: TurnChannel,
    /// As asked, with personal data redacted.
    pub text: String,
    pub tone: Tone,
    pub handoff_reasons: Vec<HandoffReason>,
    /// What was put in front of the customer for this question.
    pub shown: Vec<ShownArticle>,
}

/// An article shown in the session, once, with what the customer said of it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShownSummary {
    pub article_id: String,
    pub title: String,
    pub times_shown: u32,
    /// Highest bot confidence it was shown with (`null`: search results only).
    pub best_confidence: Option<f32>,
    pub feedback: Option<CustomerFeedback>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionFeedback {
    pub at: String,
    pub article_id: String,
    pub title: String,
    pub event: FeedbackKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrendDirection {
    /// Never noticeably frustrated.
    Calm,
    Rising,
    Easing,
    Steady,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ToneTrend {
    pub direction: TrendDirection,
    /// Frustration per question, oldest first.
    pub frustration: Vec<f32>,
    /// Highest urgency in the session.
    pub urgency: f32,
    /// Distinct cues, in the order they first appeared.
    pub cues: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    Question,
    Feedback,
}

/// One line per event, in order, for a quick scroll.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    pub at: String,
    pub kind: TimelineKind,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub session_id: String,
    pub brief: String,
    pub started_at: String,
    pub last_active_at: String,
    pub questions: Vec<SessionQuestion>,
    pub shown: Vec<ShownSummary>,
    pub feedback: Vec<SessionFeedback>,
    pub tone_trend: ToneTrend,
    /// Every hand-off reason in the session, in the order they first fired.
    pub handoff_reasons: Vec<HandoffReason>,
    pub timeline: Vec<TimelineEntry>,
    /// The same customer's other sessions (any channel, most recent first),
    /// when the session carries a `customer_id`.
    pub earlier_contacts: Vec<EarlierContact>,
}

/// How an earlier contact ended, as far as rapport knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactOutcome {
    /// Handed to a person (`handoff_status`, `resolution` say how far).
    HandedOff,
    /// The customer marked an answer as resolving it.
    Resolved,
    /// No hand-off and no verdict: the customer left.
    NoOutcome,
}

/// One earlier session of the same customer, for the agent's brief: "chat,
/// 2 days ago: asked about exporting the vault; Export Vault Data not
/// helpful; handed off, solved".
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EarlierContact {
    pub channel: TurnChannel,
    pub started_at: String,
    pub last_active_at: String,
    /// As asked, redacted.
    pub questions: Vec<String>,
    pub shown: Vec<ShownSummary>,
    pub outcome: ContactOutcome,
    /// The hand-off's status, when it was handed off.
    pub handoff_status: Option<crate::store::HandoffStatus>,
    /// What the agent recorded when closing it.
    pub resolution: Option<crate::store::Resolution>,
    /// The line the brief carries.
    pub summary: String,
}

/// An earlier session, summarised (events oldest first, not empty).
pub fn earlier_contact(
    events: &[SessionEvent],
    handoff: Option<(
        crate::store::HandoffStatus,
        Option<crate::store::Resolution>,
    )>,
    now_ms: i64,
) -> EarlierContact {
    let view = session_view("", events);
    let channel = view
        .questions
        .first()
        .map_or(TurnChannel::Answer, |q| q.channel);
    let resolved = view
        .feedback
        .iter()
        .any(|f| f.event == FeedbackKind::Resolved);
    let outcome = match handoff {
        Some(_) => ContactOutcome::HandedOff,
        None if resolved => ContactOutcome::Resolved,
        None => ContactOutcome::NoOutcome,
    };
    let last_ms = events.last().map_or(now_ms, SessionEvent::at_ms);
    let mut parts = Vec::new();
    let texts: Vec<&str> = view.questions.iter().map(|q| q.text.as_str()).collect();
    let topic = topic(&texts);
    if !topic.is_empty() {
        parts.push(format!("asked about \"{topic}\""));
    } else if let Some(first) = texts.first() {
        parts.push(format!("asked \"{first}\""));
    }
    let rated: Vec<String> = view
        .shown
        .iter()
        .filter_map(|s| match s.feedback {
            Some(CustomerFeedback::NotHelpful) => Some(format!("{} not helpful", s.title)),
            Some(CustomerFeedback::Helpful) => Some(format!("{} helpful", s.title)),
            None => None,
        })
        .take(BRIEF_SHOWN)
        .collect();
    if !rated.is_empty() {
        parts.push(rated.join(", "));
    } else if let Some(first) = view.shown.first() {
        parts.push(format!("shown {}", first.title));
    }
    parts.push(match handoff {
        Some((_, Some(resolution))) => {
            format!("handed off, {}", resolution.as_str().replace('_', " "))
        }
        Some((status, None)) => format!("handed off, {}", status.as_str()),
        None if resolved => "marked resolved".to_string(),
        None => "no hand-off".to_string(),
    });
    let summary = format!(
        "{}, {}: {}",
        channel_name(channel),
        ago(now_ms - last_ms),
        parts.join("; ")
    );
    EarlierContact {
        channel,
        started_at: view.started_at,
        last_active_at: view.last_active_at,
        questions: view.questions.into_iter().map(|q| q.text).collect(),
        shown: view.shown,
        outcome,
        handoff_status: handoff.map(|(status, _)| status),
        resolution: handoff.and_then(|(_, resolution)| resolution),
        summary,
    }
}

/// Adds earlier contacts to a session's view: the field, and one sentence
/// in the brief (the most recent first, at most [`BRIEF_CONTACTS`]).
pub fn with_earlier_contacts(view: &mut SessionView, contacts: Vec<EarlierContact>) {
    if contacts.is_empty() {
        return;
    }
    let lines: Vec<&str> = contacts
        .iter()
        .take(BRIEF_CONTACTS)
        .map(|c| c.summary.as_str())
        .collect();
    view.brief
        .push_str(&format!(" Earlier contacts: {}.", lines.join(" | ")));
    view.earlier_contacts = contacts;
}

fn channel_name(channel: TurnChannel) -> &'static str {
    match channel {
        TurnChannel::Answer => "chat",
        TurnChannel::Search => "portal",
        TurnChannel::Email => "e-mail",
        TurnChannel::Form => "form",
        TurnChannel::Social => "social",
    }
}

/// "just now", "5 minutes ago", "3 hours ago", "yesterday", "4 days ago".
fn ago(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    match minutes {
        0 => "just now".to_string(),
        1 => "1 minute ago".to_string(),
        2..=59 => format!("{minutes} minutes ago"),
        60..=119 => "1 hour ago".to_string(),
        120..=1439 => format!("{} hours ago", minutes / 60),
        1440..=2879 => "yesterday".to_string(),
        _ => format!("{} days ago", minutes / 1440),
    }
}

/// Frustration differences smaller than this are noise, not a trend.
const TREND_STEP: f32 = 0.15;
/// Below this the customer is "calm" throughout.
const CALM_BELOW: f32 = 0.2;
const BRIEF_SHOWN: usize = 4;
const BRIEF_CUES: usize = 3;
const TOPIC_WORDS: usize = 4;
/// Earlier contacts the brief names (the field lists them all).
const BRIEF_CONTACTS: usize = 3;

pub fn rfc3339(at_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(at_ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The agent's view of a session's events (oldest first, not empty).
pub fn session_view(session_id: &str, events: &[SessionEvent]) -> SessionView {
    let mut questions = Vec::new();
    let mut feedback = Vec::new();
    let mut timeline = Vec::new();
    let mut shown: Vec<ShownSummary> = Vec::new();
    let mut handoff_reasons: Vec<HandoffReason> = Vec::new();
    let verdicts = latest_verdicts(events);
    for event in events {
        match event {
            SessionEvent::Question {
                at_ms,
                channel,
                text,
                tone,
                handoff_reasons: reasons,
                shown: articles,
                ..
            } => {
                for reason in reasons {
                    if !handoff_reasons.contains(reason) {
                        handoff_reasons.push(*reason);
                    }
                }
                for article in articles {
                    match shown
                        .iter_mut()
                        .find(|s| s.article_id == article.article_id)
                    {
                        Some(summary) => {
                            summary.times_shown += 1;
                            summary.best_confidence =
                                match (summary.best_confidence, article.confidence) {
                                    (Some(a), Some(b)) => Some(a.max(b)),
                                    (a, b) => a.or(b),
                                };
                        }
                        None => shown.push(ShownSummary {
                            article_id: article.article_id.clone(),
                            title: article.title.clone(),
                            times_shown: 1,
                            best_confidence: article.confidence,
                            feedback: verdicts
                                .get(article.article_id.as_str())
                                .map(|h| CustomerFeedback::from_verdict(*h)),
                        }),
                    }
                }
                timeline.push(TimelineEntry {
                    at: rfc3339(*at_ms),
                    kind: TimelineKind::Question,
                    text: question_line(*channel, text, articles, reasons),
                });
                questions.push(SessionQuestion {
                    at: rfc3339(*at_ms),
                    channel: *channel,
                    text: text.clone(),
                    tone: tone.clone(),
                    handoff_reasons: reasons.clone(),
                    shown: articles.clone(),
                });
            }
            SessionEvent::Feedback {
                at_ms,
                article_id,
                title,
                event,
                ..
            } => {
                timeline.push(TimelineEntry {
                    at: rfc3339(*at_ms),
                    kind: TimelineKind::Feedback,
                    text: format!("{}: {title}", feedback_words(*event)),
                });
                feedback.push(SessionFeedback {
                    at: rfc3339(*at_ms),
                    article_id: article_id.clone(),
                    title: title.clone(),
                    event: *event,
                });
            }
        }
    }
    // Feedback on an article the session wasn't shown (e.g. from the portal).
    for item in &feedback {
        if verdict(item.event).is_some() && !shown.iter().any(|s| s.article_id == item.article_id) {
            shown.push(ShownSummary {
                article_id: item.article_id.clone(),
                title: item.title.clone(),
                times_shown: 0,
                best_confidence: None,
                feedback: verdicts
                    .get(item.article_id.as_str())
                    .map(|h| CustomerFeedback::from_verdict(*h)),
            });
        }
    }
    let tone_trend = tone_trend(&questions);
    let resolved = feedback.iter().any(|f| f.event == FeedbackKind::Resolved);
    let brief = brief(&questions, &shown, &tone_trend, &handoff_reasons, resolved);
    SessionView {
        session_id: session_id.to_string(),
        brief,
        started_at: rfc3339(events.first().map_or(0, SessionEvent::at_ms)),
        last_active_at: rfc3339(events.last().map_or(0, SessionEvent::at_ms)),
        questions,
        shown,
        feedback,
        tone_trend,
        handoff_reasons,
        timeline,
        earlier_contacts: Vec::new(),
    }
}

fn feedback_words(event: FeedbackKind) -> &'static str {
    match event {
        FeedbackKind::Helpful => "helpful",
        FeedbackKind::NotHelpful => "not helpful",
        FeedbackKind::Resolved => "resolved",
        FeedbackKind::Click => "clicked",
        FeedbackKind::Handoff => "handed off",
        FeedbackKind::UsedInReply => "used in a reply",
    }
}

fn question_line(
    channel: TurnChannel,
    text: &str,
    shown: &[ShownArticle],
    reasons: &[HandoffReason],
) -> String {
    let verb = match channel {
        TurnChannel::Answer => "asked",
        TurnChannel::Search => "searched",
        TurnChannel::Email => "e-mailed",
        TurnChannel::Form => "wrote (form)",
        TurnChannel::Social => "wrote (social)",
    };
    let mut line = format!("{verb} \"{text}\"");
    let titles: Vec<String> = shown
        .iter()
        .map(|a| match a.confidence {
            Some(c) => format!("{} ({c:.2})", a.title),
            None => a.title.clone(),
        })
        .collect();
    if titles.is_empty() {
        line.push_str(" → nothing shown");
    } else {
        line.push_str(&format!(" → {}", titles.join(", ")));
    }
    if !reasons.is_empty() {
        let names: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
        line.push_str(&format!("; hand-off: {}", names.join(", ")));
    }
    line
}

fn tone_trend(questions: &[SessionQuestion]) -> ToneTrend {
    let frustration: Vec<f32> = questions.iter().map(|q| q.tone.frustration).collect();
    let peak = frustration.iter().copied().fold(0.0, f32::max);
    let first = frustration.first().copied().unwrap_or(0.0);
    let last = frustration.last().copied().unwrap_or(0.0);
    let direction = if peak < CALM_BELOW {
        TrendDirection::Calm
    } else if last - first >= TREND_STEP {
        TrendDirection::Rising
    } else if first - last >= TREND_STEP {
        TrendDirection::Easing
    } else {
        TrendDirection::Steady
    };
    let mut cues: Vec<String> = Vec::new();
    for cue in questions.iter().flat_map(|q| &q.tone.cues) {
        if !cues.contains(cue) {
            cues.push(cue.clone());
        }
    }
    ToneTrend {
        direction,
        frustration,
        urgency: questions.iter().map(|q| q.tone.urgency).fold(0.0, f32::max),
        cues,
    }
}

/// The words the questions share, as the customer wrote them: the content
/// words found in at least half the questions and in two or more (or all of
/// them if there is one question), in the order they were first written, at most four.
pub fn topic(questions: &[&str]) -> String {
    let tokenized: Vec<Vec<(String, String)>> = questions
        .iter()
        .map(|q| {
            surface_tokens_unbounded(q)
                .into_iter()
                .filter(|w| !is_stop_word(w) && w.chars().any(char::is_alphabetic))
                .map(|w| (stem(&w), w))
                .collect()
        })
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for words in &tokenized {
        let mut seen: Vec<&str> = Vec::new();
        for (stem, _) in words {
            if !seen.contains(&stem.as_str()) {
                seen.push(stem);
                *counts.entry(stem).or_default() += 1;
            }
        }
    }
    let needed = match questions.len() {
        0 | 1 => 1,
        n => n.div_ceil(2).max(2),
    };
    let mut chosen: Vec<&str> = Vec::new();
    let mut picked_stems: Vec<&str> = Vec::new();
    for (stem, surface) in tokenized.iter().flatten() {
        if counts.get(stem.as_str()).copied().unwrap_or(0) >= needed
            && !picked_stems.contains(&stem.as_str())
        {
            picked_stems.push(stem);
            chosen.push(surface);
        }
    }
    if chosen.is_empty() {
        // Nothing in common: the first question's words stand for the topic.
        chosen = tokenized
            .first()
            .into_iter()
            .flatten()
            .map(|(_, w)| w.as_str())
            .collect();
    }
    chosen.truncate(TOPIC_WORDS);
    chosen.join(" ")
}

fn times(n: usize) -> String {
    match n {
        1 => "once".to_string(),
        2 => "twice".to_string(),
        n => format!("{n} times"),
    }
}

fn brief(
    questions: &[SessionQuestion],
    shown: &[ShownSummary],
    trend: &ToneTrend,
    reasons: &[HandoffReason],
    resolved: bool,
) -> String {
    let mut sentences = Vec::new();
    if !questions.is_empty() {
        let texts: Vec<&str> = questions.iter().map(|q| q.text.as_str()).collect();
        let topic = topic(&texts);
        sentences.push(if topic.is_empty() {
            format!("Asked {}.", times(questions.len()))
        } else {
            format!("Asked {} about \"{topic}\".", times(questions.len()))
        });
    }
    let verdict_of = |s: &ShownSummary| match s.feedback {
        Some(CustomerFeedback::NotHelpful) => format!("{} (not helpful)", s.title),
        Some(CustomerFeedback::Helpful) => format!("{} (helpful)", s.title),
        None => s.title.clone(),
    };
    let list = |items: Vec<&ShownSummary>| {
        let mut words: Vec<String> = items
            .iter()
            .take(BRIEF_SHOWN)
            .map(|s| verdict_of(s))
            .collect();
        if items.len() > BRIEF_SHOWN {
            words.push(format!("{} more", items.len() - BRIEF_SHOWN));
        }
        words.join(", ")
    };
    let (seen, rated): (Vec<&ShownSummary>, Vec<&ShownSummary>) =
        shown.iter().partition(|s| s.times_shown > 0);
    if seen.is_empty() {
        sentences.push("Nothing shown.".to_string());
    } else {
        sentences.push(format!("Shown: {}.", list(seen)));
    }
    if !rated.is_empty() {
        // Feedback on an article the bot didn't show (e.g. from the portal).
        sentences.push(format!("Also rated: {}.", list(rated)));
    }
    let cues: Vec<String> = trend
        .cues
        .iter()
        .filter(|c| !c.starts_with("urgent:"))
        .take(BRIEF_CUES)
        .map(|c| c.replace('"', "'"))
        .collect();
    let with_cues = |text: &str| {
        if cues.is_empty() {
            format!("{text}.")
        } else {
            format!("{text} ({}).", cues.join(", "))
        }
    };
    match trend.direction {
        TrendDirection::Calm => sentences.push("Calm.".to_string()),
        TrendDirection::Rising => sentences.push(with_cues("Frustration rising")),
        TrendDirection::Easing => sentences.push(with_cues("Frustration easing")),
        TrendDirection::Steady => sentences.push(with_cues("Frustrated throughout")),
    }
    if trend.urgency >= 0.5 {
        sentences.push("Urgent.".to_string());
    }
    if !reasons.is_empty() {
        let names: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
        sentences.push(format!("Handed off: {}.", names.join(", ")));
    }
    if resolved {
        sentences.push("Marked resolved.".to_string());
    }
    sentences.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(
        at_ms: i64,
        text: &str,
        frustration: f32,
        cues: &[&str],
        shown: &[(&str, &str)],
        reasons: &[HandoffReason],
    ) -> SessionEvent {
        SessionEvent::Question {
            at_ms,
            query_id: format!("q{at_ms}"),
            channel: TurnChannel::Answer,
            text: text.into(),
            tone: Tone {
                frustration,
                urgency: 0.0,
                cues: cues.iter().map(|c| c.to_string()).collect(),
            },
            handoff_reasons: reasons.to_vec(),
            shown: shown
                .iter()
                .map(|(id, title)| ShownArticle {
                    article_id: id.to_string(),
                    title: title.to_string(),
                    section: None,
                    confidence: Some(0.9),
                })
                .collect(),
        }
    }

    #[test]
    fn the_brief_reads_like_the_issue_example() {
        let events = vec![
            ask(
                1_000,
                "how do I export the vault?",
                0.0,
                &[],
                &[("vault/export", "Export Vault Data")],
                &[],
            ),
            SessionEvent::Feedback {
                at_ms: 2_000,
                query_id: "q1000".into(),
                article_id: "vault/export".into(),
                title: "Export Vault Data".into(),
                event: FeedbackKind::NotHelpful,
            },
            ask(
                3_000,
                "exporting my vault fails",
                0.2,
                &[],
                &[("vault/encrypted", "Encrypted Exports")],
                &[HandoffReason::RepeatedQuestion],
            ),
            ask(
                4_000,
                "THIRD TIME: WHY CAN'T I EXPORT THE VAULT",
                0.6,
                &["\"third time\"", "ALL CAPS"],
                &[],
                &[HandoffReason::RepeatedQuestion, HandoffReason::Frustration],
            ),
        ];
        let view = session_view("chat-7", &events);
        assert_eq!(
            view.brief,
            "Asked 3 times about \"export vault\". Shown: Export Vault Data (not helpful), \
             Encrypted Exports. Frustration rising ('third time', ALL CAPS). \
             Handed off: repeated_question, frustration."
        );
        assert_eq!(view.questions.len(), 3);
        assert_eq!(view.feedback.len(), 1);
        assert_eq!(view.timeline.len(), 4);
        assert_eq!(view.shown[0].feedback, Some(CustomerFeedback::NotHelpful));
        assert_eq!(view.shown[1].feedback, None);
        assert_eq!(view.tone_trend.direction, TrendDirection::Rising);
        assert_eq!(view.tone_trend.frustration, vec![0.0, 0.2, 0.6]);
        assert_eq!(
            view.handoff_reasons,
            vec![HandoffReason::RepeatedQuestion, HandoffReason::Frustration]
        );
        assert!(
            view.timeline[1]
                .text
                .contains("not helpful: Export Vault Data")
        );
        // Deterministic: the same events, the same brief.
        assert_eq!(session_view("chat-7", &events).brief, view.brief);
    }

    #[test]
    fn feedback_on_an_article_never_shown_is_not_called_shown() {
        let events = vec![
            ask(
                1_000,
                "return an item",
                0.0,
                &[],
                &[],
                &[HandoffReason::LowConfidence],
            ),
            SessionEvent::Feedback {
                at_ms: 2_000,
                query_id: "q1000".into(),
                article_id: "returns/size".into(),
                title: "Return Due to Size".into(),
                event: FeedbackKind::NotHelpful,
            },
        ];
        let view = session_view("s", &events);
        assert_eq!(
            view.brief,
            "Asked once about \"return item\". Nothing shown. Also rated: Return Due to Size \
             (not helpful). Calm. Handed off: low_confidence."
        );
        assert_eq!(view.shown[0].times_shown, 0);
    }

    #[test]
    fn topic_is_the_shared_words_or_the_first_question() {
        assert_eq!(topic(&["how do I reset my password"]), "reset password");
        assert_eq!(
            topic(&[
                "invoice pdf blank",
                "the PDF of my invoice is empty",
                "help"
            ]),
            "invoice pdf"
        );
        assert_eq!(topic(&["refund please", "change my email"]), "refund");
        assert_eq!(topic(&[]), "");
    }

    #[test]
    fn a_calm_single_question_is_short() {
        let events = vec![ask(
            1_000,
            "where are my recovery codes",
            0.0,
            &[],
            &[("a", "Recovery codes")],
            &[],
        )];
        assert_eq!(
            session_view("s", &events).brief,
            "Asked once about \"recovery codes\". Shown: Recovery codes. Calm."
        );
    }
}
