//! Feedback nudges ranking, carefully: an article's helpfulness is a
//! Beta-smoothed estimate (a few votes barely move it) mapped to a score
//! multiplier within ±15%, so text relevance stays dominant.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Prior votes on each side: an article needs evidence to move.
const PRIOR: f64 = 4.0;
/// Largest change to a score, either way.
pub const MAX_EFFECT: f64 = 0.15;

/// Per-article multipliers, swapped in whole.
#[derive(Default)]
pub struct FeedbackBoosts {
    factors: RwLock<Arc<HashMap<String, f32>>>,
}

impl FeedbackBoosts {
    pub fn current(&self) -> Arc<HashMap<String, f32>> {
        self.factors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn publish(&self, factors: HashMap<String, f32>) {
        *self.factors.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(factors);
    }
}

/// The multiplier for an article with `positive` (helpful, resolved, used in
/// a reply) and `negative` (not helpful) signals.
pub fn factor(positive: u64, negative: u64) -> f32 {
    let estimate = (positive as f64 + PRIOR) / ((positive + negative) as f64 + 2.0 * PRIOR);
    (1.0 + 2.0 * MAX_EFFECT * (estimate - 0.5)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_votes_barely_move_and_the_effect_is_bounded() {
        assert_eq!(factor(0, 0), 1.0);
        assert!(factor(3, 0) < 1.05, "{}", factor(3, 0));
        assert!(factor(1000, 0) <= 1.0 + MAX_EFFECT as f32);
        assert!(factor(0, 1000) >= 1.0 - MAX_EFFECT as f32);
        assert!(factor(30, 0) > factor(3, 0));
        assert!(factor(0, 30) < 1.0);
    }
}
