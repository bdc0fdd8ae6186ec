//! Chat transcripts → weighted query segments for the agent channel.

use serde::Deserialize;

use crate::search::query::bounded;

pub const MAX_TURNS: usize = 200;
pub const MAX_TURN_BYTES: usize = 4 * 1024;
/// How much older customer turns count: the latest is 1, the one before 0.7…
const RECENCY_DECAY: f32 = 0.7;
/// The agent's own turns count this much of a customer turn.
const AGENT_TURN_WEIGHT: f32 = 0.35;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Agent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    pub role: Role,
    pub text: String,
}

/// Weighted query segments from a transcript: customer turns over agent
/// turns, recent over old, chatter removed.
pub fn transcript_segments(
    turns: &[Turn],
    strip_chatter: impl Fn(&str) -> String,
) -> Vec<(String, f32)> {
    let mut segments = Vec::new();
    let mut age = 0;
    for turn in turns.iter().rev().take(MAX_TURNS) {
        let recency = RECENCY_DECAY.powi(age);
        let weight = match turn.role {
            Role::Customer => {
                age += 1;
                recency
            }
            Role::Agent => recency * AGENT_TURN_WEIGHT,
        };
        let text = strip_chatter(&bounded(&turn.text, MAX_TURN_BYTES));
        if !text.trim().is_empty() && weight > 0.01 {
            segments.push((text, weight));
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
        let segments = transcript_segments(&turns, str::to_string);
        let weight = |text: &str| segments.iter().find(|s| s.0 == text).map(|s| s.1).unwrap();
        assert!(weight("new topic") > weight("old topic"));
        assert!(weight("old topic") > weight("How can I help?"));
        assert_eq!(turns.len(), 4);
        assert_eq!(turns[0].role, Role::Agent);
    }
}
