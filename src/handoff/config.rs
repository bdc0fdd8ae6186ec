//! `handoff.toml`: hand-off rules and the tone lexicon. The defaults ship in
//! `config/handoff.toml` and are compiled in; a team's own file overrides them
//! table by table (a key it sets replaces the default, the rest is kept).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

pub const DEFAULT_HANDOFF_TOML: &str = include_str!("../../config/handoff.toml");

#[derive(Debug, thiserror::Error)]
pub enum HandoffConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffConfig {
    pub answer: AnswerConfig,
    pub human_request: HumanRequestConfig,
    pub frustration: FrustrationConfig,
    pub urgency: UrgencyConfig,
    pub sensitive_topics: BTreeMap<String, Vec<String>>,
    pub repeated_question: RepeatedQuestionConfig,
    pub suggest: SuggestConfig,
    pub follow_up: FollowUpConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUpConfig {
    /// Phrases that, in a reply to what the bot sent, mean it did not help.
    pub not_helpful: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerConfig {
    /// Below this confidence the bot hands off (`low_confidence`).
    pub min_confidence: f32,
    /// Longest answer text, in characters.
    pub max_chars: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanRequestConfig {
    pub phrases: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrustrationConfig {
    pub threshold: f32,
    pub repeated_contact: Vec<String>,
    pub profanity: Vec<String>,
    pub terms: BTreeMap<String, f32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrgencyConfig {
    pub terms: BTreeMap<String, f32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatedQuestionConfig {
    /// Share of content words two questions must have in common (Jaccard).
    pub similarity: f32,
    pub window_minutes: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuggestConfig {
    pub pleasantries: Vec<String>,
    pub agent_boilerplate: Vec<String>,
    /// Weight of each older customer turn relative to the next one.
    #[serde(default = "default_recency_decay")]
    pub recency_decay: f32,
    /// Weight of an agent turn relative to a customer turn of the same age.
    #[serde(default = "default_agent_turn_weight")]
    pub agent_turn_weight: f32,
    /// Least weight of the customer's first substantive turn, which usually
    /// states the problem (later turns are often account details).
    #[serde(default = "default_opening_turn_weight")]
    pub opening_turn_weight: f32,
}

fn default_recency_decay() -> f32 {
    0.85
}

fn default_agent_turn_weight() -> f32 {
    0.35
}

fn default_opening_turn_weight() -> f32 {
    0.8
}

impl HandoffConfig {
    pub fn defaults() -> Self {
        Self::parse(DEFAULT_HANDOFF_TOML, "built-in handoff.toml")
            .expect("the built-in handoff.toml is valid (tested)")
    }

    /// The built-in defaults with `path`'s tables merged over them.
    pub fn load(path: &Path) -> Result<Self, HandoffConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| HandoffConfigError::Read {
            path: name.clone(),
            source,
        })?;
        Self::parse(&text, &name)
    }

    fn parse(text: &str, name: &str) -> Result<Self, HandoffConfigError> {
        let error = |message: String| HandoffConfigError::Parse {
            path: name.to_string(),
            message,
        };
        let mut merged: toml::Table = toml::from_str(DEFAULT_HANDOFF_TOML)
            .map_err(|e| error(format!("built-in defaults: {e}")))?;
        let overrides: toml::Table = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        merge(&mut merged, overrides);
        let config: HandoffConfig = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| error(e.to_string()))?;
        Ok(config)
    }
}

fn merge(base: &mut toml::Table, overrides: toml::Table) {
    for (key, value) in overrides {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(override_table))
                if key != "sensitive_topics" && key != "terms" =>
            {
                merge(base_table, override_table)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_defaults_parse() {
        let config = HandoffConfig::defaults();
        assert!(config.human_request.phrases.len() > 10);
        assert!(config.sensitive_topics.contains_key("account_compromise"));
        assert!((0.0..=1.0).contains(&config.answer.min_confidence));
    }

    #[test]
    fn a_team_file_overrides_what_it_sets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("handoff.toml");
        std::fs::write(
            &path,
            "[answer]\nmin_confidence = 0.9\n[sensitive_topics]\nvip = [\"ceo\"]\n",
        )
        .unwrap();
        let config = HandoffConfig::load(&path).unwrap();
        assert_eq!(config.answer.min_confidence, 0.9);
        assert_eq!(
            config.answer.max_chars,
            HandoffConfig::defaults().answer.max_chars
        );
        assert_eq!(
            config.sensitive_topics.keys().collect::<Vec<_>>(),
            vec!["vip"]
        );

        std::fs::write(&path, "[answer]\nmin_confidance = 0.9\n").unwrap();
        let err = HandoffConfig::load(&path).unwrap_err();
        assert!(err.to_string().contains("min_confidance"), "{err}");
    }
}
