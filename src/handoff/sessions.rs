//! Short memory of each chat session, to spot a customer asking the same
//! thing again (the last answer didn't help) and frustration building up.
//! Session ids are hashed before they are kept; entries expire.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sessions kept at most; beyond this the oldest are dropped.
const MAX_SESSIONS: usize = 100_000;
/// Questions remembered per session.
const MAX_TURNS: usize = 8;

#[derive(Debug, Clone)]
pub struct PastQuestion {
    at: Instant,
    pub content: HashSet<String>,
    pub top_article: Option<String>,
    pub frustration: f32,
}

pub struct SessionMemory {
    window: Duration,
    sessions: Mutex<HashMap<[u8; 32], VecDeque<PastQuestion>>>,
}

impl SessionMemory {
    pub fn new(window: Duration) -> Self {
        SessionMemory {
            window,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The session's earlier questions still in the window, oldest first.
    pub fn history(&self, session_id: &str) -> Vec<PastQuestion> {
        let key: [u8; 32] = blake3::hash(session_id.as_bytes()).into();
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .get(&key)
            .map(|turns| {
                turns
                    .iter()
                    .filter(|t| t.at.elapsed() <= self.window)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn forget(&self, session_id: &str) {
        let key: [u8; 32] = blake3::hash(session_id.as_bytes()).into();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(&key);
    }

    pub fn record(
        &self,
        session_id: &str,
        content: HashSet<String>,
        top_article: Option<String>,
        frustration: f32,
    ) {
        let key: [u8; 32] = blake3::hash(session_id.as_bytes()).into();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.len() >= MAX_SESSIONS && !sessions.contains_key(&key) {
            let window = self.window;
            sessions.retain(|_, turns| turns.back().is_some_and(|t| t.at.elapsed() <= window));
            if sessions.len() >= MAX_SESSIONS {
                // Still full of live sessions: forget an arbitrary one.
                if let Some(victim) = sessions.keys().next().copied() {
                    sessions.remove(&victim);
                }
            }
        }
        let turns = sessions.entry(key).or_default();
        turns.push_back(PastQuestion {
            at: Instant::now(),
            content,
            top_article,
            frustration,
        });
        while turns.len() > MAX_TURNS {
            turns.pop_front();
        }
    }
}

/// Jaccard similarity of two word sets.
pub fn similarity(a: &HashSet<String>, b: &HashSet<String>) -> f32 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let shared = a.intersection(b).count() as f32;
    let union = (a.len() + b.len()) as f32 - shared;
    shared / union
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(words: &[&str]) -> HashSet<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn similarity_is_jaccard() {
        assert_eq!(similarity(&set(&["a", "b"]), &set(&["a", "b"])), 1.0);
        assert_eq!(similarity(&set(&["a", "b"]), &set(&["c"])), 0.0);
        let half = similarity(&set(&["a", "b", "c"]), &set(&["a", "b", "d"]));
        assert!((half - 0.5).abs() < 1e-6, "{half}");
    }

    #[test]
    fn sessions_remember_within_the_window() {
        let memory = SessionMemory::new(Duration::from_secs(60));
        memory.record("s1", set(&["refund"]), Some("billing/refunds".into()), 0.2);
        assert_eq!(memory.history("s1").len(), 1);
        assert!(memory.history("s2").is_empty());
        let expired = SessionMemory::new(Duration::ZERO);
        expired.record("s1", set(&["refund"]), None, 0.0);
        std::thread::sleep(Duration::from_millis(2));
        assert!(expired.history("s1").is_empty());
    }
}
