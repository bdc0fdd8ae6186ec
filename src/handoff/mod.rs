//! When the bot should step aside: rules over the question, its tone, the
//! session's history and the answer's confidence, each with a reason code.
//! Everything is configured in `handoff.toml` ([`config`]).

pub mod brief;
pub mod config;
pub mod lexicon;
pub mod outbox;
pub mod queue;
pub mod sessions;
pub mod timeline;
pub mod tone;

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use self::config::HandoffConfig;
use self::lexicon::{PhraseSet, stems};
use self::sessions::{SessionMemory, similarity};
use self::tone::{Tone, ToneAnalyzer};
use crate::search::query::is_stop_word;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    LowConfidence,
    NoMatch,
    HumanRequest,
    Frustration,
    SensitiveTopic,
    RepeatedQuestion,
    /// The best answer is one this session (or customer) already marked not
    /// helpful, and nothing else is confident enough.
    AlreadyTried,
}

impl HandoffReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffReason::LowConfidence => "low_confidence",
            HandoffReason::NoMatch => "no_match",
            HandoffReason::HumanRequest => "human_request",
            HandoffReason::Frustration => "frustration",
            HandoffReason::SensitiveTopic => "sensitive_topic",
            HandoffReason::RepeatedQuestion => "repeated_question",
            HandoffReason::AlreadyTried => "already_tried",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Handoff {
    pub recommended: bool,
    pub reasons: Vec<HandoffReason>,
    /// Which sensitive topics matched (names from `handoff.toml`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
}

impl Handoff {
    fn add(&mut self, reason: HandoffReason) {
        if !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
        self.recommended = true;
    }

    /// What already failed was the best answer and what is left is not
    /// confident enough: the reason is `already_tried`, not a weak match
    /// (the bot understood; it has nothing new to offer).
    pub fn already_tried(&mut self) {
        self.reasons
            .retain(|r| !matches!(r, HandoffReason::LowConfidence | HandoffReason::NoMatch));
        self.add(HandoffReason::AlreadyTried);
    }
}

/// What the rules need to know about the answer the bot would give.
pub struct AnswerSignal<'a> {
    pub confidence: f32,
    pub top_article: Option<&'a str>,
}

pub struct HandoffRules {
    pub config: HandoffConfig,
    tone: ToneAnalyzer,
    human_request: PhraseSet<()>,
    sensitive: PhraseSet<String>,
    chatter: PhraseSet<()>,
    not_helpful: PhraseSet<()>,
    sessions: SessionMemory,
}

impl HandoffRules {
    pub fn new(config: HandoffConfig) -> Self {
        let sensitive =
            PhraseSet::new(config.sensitive_topics.iter().flat_map(|(topic, phrases)| {
                phrases.iter().map(move |p| (p.clone(), topic.clone()))
            }));
        let chatter = PhraseSet::new(
            config
                .suggest
                .pleasantries
                .iter()
                .chain(&config.suggest.agent_boilerplate)
                .map(|p| (p.clone(), ())),
        );
        HandoffRules {
            tone: ToneAnalyzer::new(&config),
            human_request: PhraseSet::new(
                config.human_request.phrases.iter().map(|p| (p.clone(), ())),
            ),
            sensitive,
            chatter,
            not_helpful: PhraseSet::new(
                config.follow_up.not_helpful.iter().map(|p| (p.clone(), ())),
            ),
            sessions: SessionMemory::new(Duration::from_secs(
                config.repeated_question.window_minutes * 60,
            )),
            config,
        }
    }

    pub fn turn_weights(&self) -> crate::search::transcript::TurnWeights {
        let suggest = &self.config.suggest;
        crate::search::transcript::TurnWeights {
            recency_decay: suggest.recency_decay,
            agent_turn_weight: suggest.agent_turn_weight,
            opening_turn_weight: suggest.opening_turn_weight,
        }
    }

    pub fn analyze_tone(&self, text: &str) -> Tone {
        self.tone.analyze(text)
    }

    /// Rules that depend only on what the customer wrote.
    pub fn assess_text(&self, text: &str) -> (Handoff, Tone) {
        let mut handoff = Handoff::default();
        let text_stems = stems(text);
        if !self.human_request.find(&text_stems).is_empty() {
            handoff.add(HandoffReason::HumanRequest);
        }
        let mut topics: Vec<String> = self
            .sensitive
            .find(&text_stems)
            .into_iter()
            .map(|m| m.value)
            .collect();
        topics.sort();
        topics.dedup();
        if !topics.is_empty() {
            handoff.add(HandoffReason::SensitiveTopic);
            handoff.topics = topics;
        }
        let tone = self.tone.analyze(text);
        if tone.frustration >= self.config.frustration.threshold {
            handoff.add(HandoffReason::Frustration);
        }
        (handoff, tone)
    }

    /// Whether a reply says that what it answers did not help ("that didn't
    /// work", "same problem"), from `[follow_up] not_helpful`.
    pub fn says_not_helpful(&self, text: &str) -> bool {
        !self.not_helpful.find(&stems(text)).is_empty()
    }

    /// Forgets the sessions' recent questions (a customer's erasure).
    pub fn forget_sessions(&self, session_ids: &[String]) {
        for session_id in session_ids {
            self.sessions.forget(session_id);
        }
    }

    /// The full decision for a bot question: text rules, session history, and
    /// the answer's confidence. Records the question in the session.
    ///
    /// `earlier` are questions the same customer asked before, outside this
    /// session's short memory: earlier in a days-long e-mail thread, or in
    /// earlier contacts on any channel. Asking one of them again counts as a
    /// repeated question too.
    pub fn decide(
        &self,
        question: &str,
        session_id: Option<&str>,
        earlier: &[&str],
        answer: AnswerSignal<'_>,
    ) -> (Handoff, Tone) {
        let (mut handoff, mut tone) = self.assess_text(question);
        let content = content_words(question);
        let threshold = self.config.repeated_question.similarity;
        if !content.is_empty()
            && earlier
                .iter()
                .any(|past| containment(&content_words(past), &content) >= threshold)
        {
            handoff.add(HandoffReason::RepeatedQuestion);
            tone.cues
                .push("asked before, in an earlier contact".to_string());
        }
        if let Some(session_id) = session_id.filter(|s| !s.is_empty()) {
            let history = self.sessions.history(session_id);
            let repeated = history.iter().any(|past| {
                let overlap = similarity(&past.content, &content);
                overlap >= threshold
                    || (overlap >= threshold / 2.0
                        && past.top_article.is_some()
                        && past.top_article.as_deref() == answer.top_article)
            });
            if repeated && !handoff.reasons.contains(&HandoffReason::RepeatedQuestion) {
                handoff.add(HandoffReason::RepeatedQuestion);
                tone.cues.push("asked again in this session".to_string());
            }
            // Frustration builds up over a session; it fades slowly.
            let earlier = history
                .iter()
                .map(|p| p.frustration * 0.8)
                .fold(0.0, f32::max);
            if earlier > tone.frustration {
                tone.frustration = (earlier * 100.0).round() / 100.0;
                if tone.frustration >= self.config.frustration.threshold {
                    handoff.add(HandoffReason::Frustration);
                }
            }
            self.sessions.record(
                session_id,
                content,
                answer.top_article.map(str::to_string),
                tone.frustration,
            );
        }
        match answer.top_article {
            None => handoff.add(HandoffReason::NoMatch),
            Some(_) if answer.confidence < self.config.answer.min_confidence => {
                handoff.add(HandoffReason::LowConfidence)
            }
            Some(_) => {}
        }
        (handoff, tone)
    }

    /// `text` without greetings, thanks and agent boilerplate, as the stems
    /// that carry the topic (used to weigh transcript turns).
    pub fn strip_chatter(&self, text: &str) -> String {
        let surfaces = crate::search::query::surface_tokens_unbounded(text);
        let text_stems: Vec<String> = surfaces
            .iter()
            .map(|s| crate::search::query::stem(s))
            .collect();
        let mut keep = vec![true; surfaces.len()];
        for found in self.chatter.find(&text_stems) {
            for flag in keep.iter_mut().skip(found.start).take(found.len) {
                *flag = false;
            }
        }
        // "my name is Dana", "this is Sam from support": names aren't topics.
        for i in 0..text_stems.len().saturating_sub(2) {
            if matches!(
                (text_stems[i].as_str(), text_stems[i + 1].as_str()),
                ("name", "is") | ("name", "s")
            ) {
                keep[i + 2] = false;
            }
        }
        surfaces
            .into_iter()
            .zip(keep)
            .filter(|(_, keep)| *keep)
            .map(|(s, _)| s)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Shared words over the shorter question's words (the overlap
/// coefficient): a customer who comes back on another channel tends to
/// explain again at more length, which Jaccard similarity would count
/// against them. Needs two words on each side, so one shared word is
/// never a repeat.
fn containment(a: &HashSet<String>, b: &HashSet<String>) -> f32 {
    let smaller = a.len().min(b.len());
    if smaller < 2 {
        return 0.0;
    }
    a.intersection(b).count() as f32 / smaller as f32
}

/// The stems of a question's content words (for "same question again").
pub fn content_words(text: &str) -> HashSet<String> {
    crate::search::query::surface_tokens_unbounded(text)
        .iter()
        .filter(|w| !is_stop_word(w))
        .map(|w| crate::search::query::stem(w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> HandoffRules {
        HandoffRules::new(HandoffConfig::defaults())
    }

    fn confident(article: &str) -> AnswerSignal<'_> {
        AnswerSignal {
            confidence: 0.99,
            top_article: Some(article),
        }
    }

    #[test]
    fn each_rule_gives_its_reason() {
        let rules = rules();
        let cases = [
            (
                "I want to talk to a real person",
                HandoffReason::HumanRequest,
            ),
            (
                "someone hacked my account and changed my email",
                HandoffReason::SensitiveTopic,
            ),
            (
                "my father passed away, how do I close his account",
                HandoffReason::SensitiveTopic,
            ),
            (
                "THIS IS RIDICULOUS, third time I ask!!!",
                HandoffReason::Frustration,
            ),
        ];
        for (question, reason) in cases {
            let (handoff, _) = rules.decide(question, None, &[], confident("a"));
            assert!(
                handoff.recommended && handoff.reasons.contains(&reason),
                "{question}: {handoff:?}"
            );
        }
        let (handoff, _) = rules.decide(
            "where do I find my recovery codes?",
            None,
            &[],
            confident("a"),
        );
        assert!(!handoff.recommended, "{handoff:?}");
        let (handoff, _) = rules.decide(
            "what's the weather in Paris?",
            None,
            &[],
            AnswerSignal {
                confidence: 0.0,
                top_article: None,
            },
        );
        assert_eq!(handoff.reasons, vec![HandoffReason::NoMatch]);
        let (handoff, _) = rules.decide(
            "anything",
            None,
            &[],
            AnswerSignal {
                confidence: 0.01,
                top_article: Some("a"),
            },
        );
        assert_eq!(handoff.reasons, vec![HandoffReason::LowConfidence]);
    }

    #[test]
    fn asking_the_same_thing_again_in_a_session_hands_off() {
        let rules = rules();
        let (first, _) = rules.decide(
            "how do I reset my password",
            Some("s1"),
            &[],
            confident("pw"),
        );
        assert!(!first.recommended);
        let (other_session, _) = rules.decide(
            "how do I reset my password",
            Some("s2"),
            &[],
            confident("pw"),
        );
        assert!(!other_session.recommended);
        let (again, tone) = rules.decide("password reset still", Some("s1"), &[], confident("pw"));
        assert!(
            again.reasons.contains(&HandoffReason::RepeatedQuestion),
            "{again:?} {tone:?}"
        );
    }

    #[test]
    fn chatter_is_stripped_from_turns() {
        let rules = rules();
        assert_eq!(
            rules.strip_chatter("Hi there, thanks! I bought a new iPhone"),
            "there i bought a new iphone"
        );
        let stripped = rules.strip_chatter("my name is Dana and my invoice is wrong");
        assert!(
            !stripped.contains("dana") && stripped.contains("invoice"),
            "{stripped}"
        );
    }
}
