//! Chat transcripts → weighted query segments for the agent channel.

use serde::Deserialize;

use crate::search::query::bounded;

pub const MAX_TURNS: usize = 200;
pub const MAX_TURN_BYTES: usize = 4 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Agent,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    pub role: Role,
    pub text: String,
}

/// How turns are weighed; see `[suggest]` in `handoff.toml`.
#[derive(Debug, Clone, Copy)]
pub struct TurnWeights {
    pub recency_decay: f32,
    pub agent_turn_weight: f32,
    pub opening_turn_weight: f32,
}

impl Default for TurnWeights {
    fn default() -> Self {
        TurnWeights {
            recency_decay: 0.85,
            agent_turn_weight: 0.35,
            opening_turn_weight: 0.8,
        }
    }
}

/// Weighted query segments from a transcript: customer turns over agent
/// turns, recent over old, the customer's opening statement kept strong,
/// chatter removed (by `strip_chatter`).
pub fn transcript_segments(
    turns: &[Turn],
    weights: TurnWeights,
    strip_chatter: impl Fn(&str) -> String,
) -> Vec<(String, f32)> {
    let recent = &turns[turns.len().saturating_sub(MAX_TURNS)..];
    let cleaned: Vec<String> = recent
        .iter()
        .map(|turn| strip_chatter(&bounded(&turn.text, MAX_TURN_BYTES)))
        .collect();
    let opening = recent.iter().zip(&cleaned).position(|(turn, text)| {
        turn.role == Role::Customer && text.split_whitespace().count() >= 3
    });
    let mut segments = Vec::new();
    let mut age = 0;
    for (index, (turn, text)) in recent.iter().zip(&cleaned).enumerate().rev() {
        let recency = weights.recency_decay.powi(age);
        let mut weight = match turn.role {
            Role::Customer => {
                age += 1;
                recency
            }
            Role::Agent => recency * weights.agent_turn_weight,
        };
        if Some(index) == opening {
            weight = weight.max(weights.opening_turn_weight);
        }
        if !text.trim().is_empty() && weight > 0.01 {
            segments.push((text.clone(), weight));
        }
    }
    segments.reverse();
    segments
}

/// Parses `role: text` lines (as in exported chat logs); lines without a
/// known role continue the previous turn.
pub fn parse_transcript(text: &str) -> Vec<Turn> {
    let mut turns: Vec<Turn> = Vec::new();
    for line in text.lines() {
        let (role, rest) = match line.split_once(':') {
            Some((role, rest)) => match role.trim().to_ascii_lowercase().as_str() {
                "customer" | "user" | "client" => (Some(Role::Customer), rest),
                "agent" | "assistant" | "support" => (Some(Role::Agent), rest),
                _ => (None, line),
            },
            None => (None, line),
        };
        match (role, turns.last_mut()) {
            (Some(role), _) => turns.push(Turn {
                role,
                text: rest.trim().to_string(),
            }),
            (None, Some(last)) => {
                last.text.push('\n');
                last.text.push_str(line.trim());
            }
            (None, None) => turns.push(Turn {
                role: Role::Customer,
                text: line.trim().to_string(),
            }),
        }
    }
    turns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_customer_turns_weigh_most() {
        let turns = parse_transcript(
            "agent: How can I help?\ncustomer: old topic\ncustomer: new topic\nagent: checking",
        );
        let weights = TurnWeights {
            opening_turn_weight: 0.0,
            ..TurnWeights::default()
        };
        let segments = transcript_segments(&turns, weights, str::to_string);
        let weight = |text: &str| segments.iter().find(|s| s.0 == text).map(|s| s.1).unwrap();
        assert!(weight("new topic") > weight("old topic"));
        assert!(weight("old topic") > weight("How can I help?"));

        let chat = parse_transcript(
            "customer: my invoice total is wrong\ncustomer: ok\ncustomer: id 123\ncustomer: sure\ncustomer: yes",
        );
        let segments = transcript_segments(&chat, TurnWeights::default(), str::to_string);
        assert_eq!(segments[0].0, "my invoice total is wrong");
        assert!(
            segments[0].1 >= 0.8,
            "the opening statement stays strong: {segments:?}"
        );
        assert_eq!(turns.len(), 4);
        assert_eq!(turns[0].role, Role::Agent);
    }
}
