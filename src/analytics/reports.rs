//! The reports a support lead reads: summary, content gaps, article health.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::{ChannelActivity, Store, StoreError};

/// A time window and an optional channel.
#[derive(Debug, Clone)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
    pub channel: Option<String>,
}

#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DaySummary {
    pub date: String,
    pub queries: u64,
    pub zero_results: u64,
    pub clicks: u64,
    pub handoffs: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Summary {
    /// Recorded queries on every channel in the window (or the chosen one).
    pub queries: u64,
    /// Portal searches (`/search` and final autocomplete queries).
    pub searches: u64,
    pub zero_result_rate: f64,
    /// Share of searches with at least one click.
    pub click_through_rate: f64,
    /// Mean 1-based position of clicked articles in the results.
    pub mean_click_position: Option<f64>,
    /// helpful / (helpful + not_helpful).
    pub helpful_rate: Option<f64>,
    pub bot_questions: u64,
    /// Share of bot questions answered without recommending hand-off.
    pub bot_answer_rate: f64,
    pub handoff_rate: f64,
    pub handoff_reasons: BTreeMap<String, u64>,
    /// Share of bot questions marked `resolved`.
    pub resolution_rate: f64,
    pub per_day: Vec<DaySummary>,
    /// Customers' ratings of their sessions.
    pub csat: Csat,
    /// Sessions (with a `session_id`) in the window.
    pub sessions: u64,
    /// Sessions that ended without a hand-off to a person and without a
    /// repeated question, over all sessions; `null` with no sessions.
    pub self_service_rate: Option<f64>,
    /// Hand-offs to people requested in the window, and what became of them.
    pub handoffs: HandoffCounts,
    /// From the request to an agent's claim, for those claimed.
    pub handoff_wait_seconds: WaitSeconds,
    /// Per channel present in the window: `chat` (bot questions), `email`,
    /// `form`, `social`, and `portal` for hand-offs from search sessions.
    pub channels: BTreeMap<String, ChannelFigures>,
}

/// The counts a store reads from its events for [`Summary`]; the rates are
/// derived here, once for every backend.
#[derive(Debug, Default)]
pub struct EventCounts {
    pub queries: u64,
    pub searches: u64,
    /// Searches with no result.
    pub zero_results: u64,
    /// Searches with at least one click.
    pub clicked: u64,
    pub mean_click_position: Option<f64>,
    pub helpful: u64,
    pub not_helpful: u64,
    pub bot_questions: u64,
    /// Bot questions answered without a hand-off recommended.
    pub answered: u64,
    pub handed_off: u64,
    /// Bot questions marked `resolved`.
    pub resolved: u64,
    pub handoff_reasons: BTreeMap<String, u64>,
    pub per_day: Vec<DaySummary>,
}

impl EventCounts {
    /// The summary's event figures (what people did is added by [`summary`]).
    pub fn into_summary(self) -> Summary {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let votes = self.helpful + self.not_helpful;
        Summary {
            queries: self.queries,
            searches: self.searches,
            zero_result_rate: ratio(self.zero_results, self.searches),
            click_through_rate: ratio(self.clicked, self.searches),
            mean_click_position: self.mean_click_position,
            helpful_rate: (votes > 0).then(|| ratio(self.helpful, votes)),
            bot_questions: self.bot_questions,
            bot_answer_rate: ratio(self.answered, self.bot_questions),
            handoff_rate: ratio(self.handed_off, self.bot_questions),
            handoff_reasons: self.handoff_reasons,
            resolution_rate: ratio(self.resolved, self.bot_questions),
            per_day: self.per_day,
            ..Summary::default()
        }
    }
}

/// One channel's traffic and how its hand-offs went.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ChannelFigures {
    /// Questions received on the channel.
    pub messages: u64,
    /// Given an answer, with no hand-off recommended.
    pub answered: u64,
    /// Replies that went out without an agent (messages only).
    pub auto_replied: u64,
    /// Hand-offs created in the window from this channel.
    pub handed_off: u64,
    /// Created → claimed, for those of them claimed.
    pub first_response_seconds: SpreadSeconds,
    /// Created → closed, for those of them closed.
    pub resolution_seconds: SpreadSeconds,
}

/// The middle and the slow end of some durations; `null` without any.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SpreadSeconds {
    pub median: Option<f64>,
    pub p90: Option<f64>,
}

impl SpreadSeconds {
    fn of(mut durations_ms: Vec<i64>) -> Self {
        durations_ms.sort_unstable();
        SpreadSeconds {
            median: percentile(&durations_ms, 0.5).map(|ms| ms / 1000.0),
            p90: percentile(&durations_ms, 0.9).map(|ms| ms / 1000.0),
        }
    }
}

impl From<ChannelActivity> for ChannelFigures {
    fn from(activity: ChannelActivity) -> Self {
        ChannelFigures {
            messages: activity.messages,
            answered: activity.answered,
            auto_replied: activity.auto_replied,
            handed_off: activity.handed_off,
            first_response_seconds: SpreadSeconds::of(activity.first_response_ms),
            resolution_seconds: SpreadSeconds::of(activity.resolution_ms),
        }
    }
}

#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Csat {
    /// Share of ratings that are 4 or 5 (the usual CSAT); `null` without ratings.
    pub satisfied_rate: Option<f64>,
    /// Mean score, 1 to 5.
    pub mean: Option<f64>,
    pub count: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HandoffCounts {
    pub created: u64,
    pub claimed: u64,
    /// By resolution: `solved`, `not_solved`, `duplicate`, `spam`.
    pub closed: BTreeMap<String, u64>,
    /// Never claimed: waiting longer than `[handoff] abandon_after_minutes`,
    /// or closed without a claim.
    pub abandoned: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct WaitSeconds {
    pub median: Option<f64>,
    pub p90: Option<f64>,
    pub count: u64,
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1] as f64)
}

/// The summary for a window: the events' counts, and what people did:
/// ratings, hand-offs and their waits, and the self-service rate (sessions
/// from the events, hand-offs from their records, keyed by the same session
/// hash).
pub fn summary(
    store: &dyn Store,
    window: &Window,
    abandoned_before_ms: i64,
) -> Result<Summary, StoreError> {
    let mut summary = store.event_summary(window)?;
    let scores = store.ratings(window.from_ms, window.to_ms)?;
    let count = scores.len() as u64;
    let satisfied = scores.iter().filter(|s| **s >= 4).count() as u64;
    let total: u64 = scores.iter().map(|s| u64::from(*s)).sum();
    summary.csat = Csat {
        satisfied_rate: (count > 0).then(|| ratio(satisfied, count)),
        mean: (count > 0).then(|| total as f64 / count as f64),
        count,
    };
    let stats = store.handoff_stats(window.from_ms, window.to_ms, abandoned_before_ms)?;
    let mut waits = stats.waits_ms.clone();
    waits.sort_unstable();
    summary.handoff_wait_seconds = WaitSeconds {
        median: percentile(&waits, 0.5).map(|ms| ms / 1000.0),
        p90: percentile(&waits, 0.9).map(|ms| ms / 1000.0),
        count: waits.len() as u64,
    };
    summary.handoffs = HandoffCounts {
        created: stats.created,
        claimed: stats.claimed,
        closed: stats
            .closed
            .iter()
            .map(|(r, n)| (r.as_str().to_string(), *n))
            .collect(),
        abandoned: stats.abandoned,
    };
    let handed_off: std::collections::HashSet<&str> =
        stats.sessions.iter().map(String::as_str).collect();
    let outcomes = store.session_outcomes(window)?;
    let sessions = outcomes.len() as u64;
    let self_served = outcomes
        .iter()
        .filter(|(hash, repeated)| !repeated && !handed_off.contains(hash.as_str()))
        .count() as u64;
    summary.sessions = sessions;
    summary.self_service_rate = (sessions > 0).then(|| ratio(self_served, sessions));
    summary.channels = store
        .channel_activity(window)?
        .into_iter()
        .map(|(name, activity)| (name, activity.into()))
        .collect();
    Ok(summary)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Normalised queries with counts: the most asked, and the content gaps.
pub fn queries(
    store: &dyn Store,
    window: &Window,
    kind: QueryReportKind,
    limit: usize,
) -> Result<Vec<QueryCount>, StoreError> {
    store.query_counts(window, kind, limit)
}

/// Per-article counts over the window, by article id.
pub fn article_stats(
    store: &dyn Store,
    window: &Window,
) -> Result<BTreeMap<String, ArticleStats>, StoreError> {
    store.article_stats(window)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueryReportKind {
    Top,
    NoResults,
    NoClicks,
    Handoff,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct QueryCount {
    pub query: String,
    pub count: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ArticleStats {
    pub impressions: u64,
    pub clicks: u64,
    pub helpful: u64,
    pub not_helpful: u64,
    pub resolved: u64,
    pub used_in_reply: u64,
}
