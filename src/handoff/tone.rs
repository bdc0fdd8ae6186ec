//! Tone analysis: local, deterministic rules over a lexicon (no model, no
//! network). Returns scores in 0..1 and the cues found, so an agent taking
//! over sees *why* the customer was flagged.

use serde::{Deserialize, Serialize};

use super::lexicon::{PhraseSet, stems};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Tone {
    pub frustration: f32,
    pub urgency: f32,
    pub cues: Vec<String>,
}

pub struct ToneAnalyzer {
    frustration_terms: PhraseSet<f32>,
    repeated_contact: PhraseSet<f32>,
    profanity: PhraseSet<f32>,
    urgency_terms: PhraseSet<f32>,
}

/// Weights of the non-lexical cues; each combines with the others as a
/// noisy-or, so two moderate cues add up to a strong one.
const REPEATED_CONTACT_WEIGHT: f32 = 0.35;
const PROFANITY_WEIGHT: f32 = 0.5;
const ALL_CAPS_WEIGHT: f32 = 0.35;
const EXCLAMATIONS_WEIGHT: f32 = 0.25;

impl ToneAnalyzer {
    pub fn new(config: &super::config::HandoffConfig) -> Self {
        let weighted = |terms: &std::collections::BTreeMap<String, f32>| {
            PhraseSet::new(terms.iter().map(|(k, v)| (k.clone(), v.clamp(0.0, 1.0))))
        };
        let flat = |phrases: &[String], weight: f32| {
            PhraseSet::new(phrases.iter().map(|p| (p.clone(), weight)))
        };
        ToneAnalyzer {
            frustration_terms: weighted(&config.frustration.terms),
            repeated_contact: flat(
                &config.frustration.repeated_contact,
                REPEATED_CONTACT_WEIGHT,
            ),
            profanity: flat(&config.frustration.profanity, PROFANITY_WEIGHT),
            urgency_terms: weighted(&config.urgency.terms),
        }
    }

    pub fn analyze(&self, text: &str) -> Tone {
        let text_stems = stems(text);
        let mut cues = Vec::new();
        let mut frustration = NoisyOr::default();
        for set in [&self.frustration_terms, &self.repeated_contact] {
            for found in set.find(&text_stems) {
                frustration.add(found.value);
                cues.push(format!("\"{}\"", found.phrase));
            }
        }
        let swearing = self.profanity.find(&text_stems);
        if !swearing.is_empty() {
            frustration.add(PROFANITY_WEIGHT);
            cues.push("profanity".to_string());
        }
        if has_all_caps_run(text) {
            frustration.add(ALL_CAPS_WEIGHT);
            cues.push("ALL CAPS".to_string());
        }
        if text.contains("!!") || text.contains("?!") {
            frustration.add(EXCLAMATIONS_WEIGHT);
            cues.push("\"!!!\"".to_string());
        }
        let mut urgency = NoisyOr::default();
        for found in self.urgency_terms.find(&text_stems) {
            urgency.add(found.value);
            cues.push(format!("urgent: \"{}\"", found.phrase));
        }
        cues.dedup();
        Tone {
            frustration: frustration.value(),
            urgency: urgency.value(),
            cues,
        }
    }
}

#[derive(Default)]
struct NoisyOr(f32);

impl NoisyOr {
    fn add(&mut self, p: f32) {
        self.0 = 1.0 - (1.0 - self.0) * (1.0 - p.clamp(0.0, 1.0));
    }
    fn value(&self) -> f32 {
        (self.0 * 100.0).round() / 100.0
    }
}

/// Shouting: two or more consecutive words of 2+ letters in capitals, or one
/// of 5+ (acronyms like "PDF" or "VAT" alone are not shouting).
fn has_all_caps_run(text: &str) -> bool {
    let mut run = 0;
    for word in text.split(|c: char| !c.is_alphabetic()) {
        let letters = word.chars().count();
        let shouted = letters >= 2 && word.chars().all(|c| c.is_uppercase());
        if shouted && letters >= 5 {
            return true;
        }
        if shouted {
            run += 1;
            if run >= 2 {
                return true;
            }
        } else if letters > 0 {
            run = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::config::HandoffConfig;

    fn analyzer() -> ToneAnalyzer {
        ToneAnalyzer::new(&HandoffConfig::defaults())
    }

    #[test]
    fn angry_repeated_contact_is_frustrated_with_cues() {
        let tone = analyzer().analyze("This is the THIRD TIME I'm asking, your app is useless!!!");
        assert!(tone.frustration >= 0.5, "{tone:?}");
        assert!(tone.cues.contains(&"ALL CAPS".to_string()), "{tone:?}");
        assert!(
            tone.cues.contains(&"\"third time\"".to_string()),
            "{tone:?}"
        );
        assert!(tone.cues.contains(&"\"!!!\"".to_string()), "{tone:?}");
    }

    #[test]
    fn ordinary_questions_are_calm() {
        for question in [
            "where do I find my recovery codes?",
            "How do I export invoices to CSV and PDF?",
            "can I change the VAT rate on a quote",
        ] {
            let tone = analyzer().analyze(question);
            assert!(tone.frustration < 0.3, "{question}: {tone:?}");
        }
    }

    #[test]
    fn urgency_is_scored_separately() {
        let tone = analyzer().analyze("I need this fixed asap, it's urgent");
        assert!(tone.urgency >= 0.5, "{tone:?}");
    }
}
