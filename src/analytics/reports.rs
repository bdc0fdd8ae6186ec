//! The reports a support lead reads: summary, content gaps, article health.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, params};
use serde::Serialize;

use super::AnalyticsError;
use super::store::open_reader;
use crate::store::Store;

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

/// Adds what people did to the summary: ratings, hand-offs and their
/// waits (from the [`Store`]), and the self-service rate (sessions from the
/// analytics events, hand-offs from the store: both keyed by the same
/// session hash).
pub fn add_service(
    summary: &mut Summary,
    database: &Path,
    store: &dyn Store,
    window: &Window,
    abandoned_before_ms: i64,
) -> Result<(), ReportError> {
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
    let db = open_reader(database)?;
    let mut statement = db.prepare(
        "SELECT q.session_hash, max(EXISTS (SELECT 1 FROM json_each(q.handoff_reasons) j WHERE j.value = 'repeated_question'))
         FROM queries q WHERE q.at_ms >= ?1 AND q.at_ms < ?2 AND q.session_hash IS NOT NULL
         GROUP BY q.session_hash",
    )?;
    let handed_off: std::collections::HashSet<&str> =
        stats.sessions.iter().map(String::as_str).collect();
    let mut sessions = 0u64;
    let mut self_served = 0u64;
    let mut rows = statement.query(params![window.from_ms, window.to_ms])?;
    while let Some(row) = rows.next()? {
        let hash: String = row.get(0)?;
        let repeated: bool = row.get(1)?;
        sessions += 1;
        self_served += u64::from(!repeated && !handed_off.contains(hash.as_str()));
    }
    summary.sessions = sessions;
    summary.self_service_rate = (sessions > 0).then(|| ratio(self_served, sessions));
    Ok(())
}

/// Reports read the analytics events and the store.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Analytics(#[from] AnalyticsError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl From<rusqlite::Error> for ReportError {
    fn from(error: rusqlite::Error) -> Self {
        ReportError::Analytics(error.into())
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

const QUERY_FILTER: &str = "q.at_ms >= ?1 AND q.at_ms < ?2 AND (?3 IS NULL OR q.channel = ?3)";

pub fn summary(database: &Path, window: &Window) -> Result<Summary, AnalyticsError> {
    let db = open_reader(database)?;
    let args = params![window.from_ms, window.to_ms, window.channel];
    let count = |db: &Connection, sql: &str| -> Result<u64, AnalyticsError> {
        Ok(db.query_row(sql, args, |row| row.get::<_, i64>(0))? as u64)
    };
    let queries = count(
        &db,
        &format!("SELECT count(*) FROM queries q WHERE {QUERY_FILTER}"),
    )?;
    let searches = count(
        &db,
        &format!(
            "SELECT count(*) FROM queries q WHERE {QUERY_FILTER} AND q.channel IN ('search', 'autocomplete')"
        ),
    )?;
    let zero = count(
        &db,
        &format!(
            "SELECT count(*) FROM queries q WHERE {QUERY_FILTER} AND q.channel IN ('search', 'autocomplete') AND q.result_count = 0"
        ),
    )?;
    let clicked = count(
        &db,
        &format!(
            "SELECT count(DISTINCT q.query_id) FROM queries q JOIN feedback f ON f.query_id = q.query_id WHERE {QUERY_FILTER} AND q.channel IN ('search', 'autocomplete') AND f.event = 'click'"
        ),
    )?;
    let mean_click_position: Option<f64> = db.query_row(
        &format!("SELECT avg(j.key + 1) FROM queries q JOIN feedback f ON f.query_id = q.query_id, json_each(q.top_ids) j WHERE {QUERY_FILTER} AND f.event = 'click' AND j.value = f.article_id"),
        args,
        |row| row.get(0),
    )?;
    let votes = |event: &str| {
        count(
            &db,
            &format!(
                "SELECT count(*) FROM queries q JOIN feedback f ON f.query_id = q.query_id WHERE {QUERY_FILTER} AND f.event = '{event}'"
            ),
        )
    };
    let helpful = votes("helpful")?;
    let not_helpful = votes("not_helpful")?;
    let bot_questions = count(
        &db,
        &format!("SELECT count(*) FROM queries q WHERE {QUERY_FILTER} AND q.channel = 'answer'"),
    )?;
    let handed_off = count(
        &db,
        &format!(
            "SELECT count(*) FROM queries q WHERE {QUERY_FILTER} AND q.channel = 'answer' AND json_array_length(q.handoff_reasons) > 0"
        ),
    )?;
    let answered = count(
        &db,
        &format!(
            "SELECT count(*) FROM queries q WHERE {QUERY_FILTER} AND q.channel = 'answer' AND json_array_length(q.handoff_reasons) = 0 AND q.result_count > 0"
        ),
    )?;
    let resolved = count(
        &db,
        &format!(
            "SELECT count(DISTINCT q.query_id) FROM queries q JOIN feedback f ON f.query_id = q.query_id WHERE {QUERY_FILTER} AND q.channel = 'answer' AND f.event = 'resolved'"
        ),
    )?;
    let mut handoff_reasons = BTreeMap::new();
    {
        let mut statement = db.prepare(&format!(
            "SELECT j.value, count(*) FROM queries q, json_each(q.handoff_reasons) j WHERE {QUERY_FILTER} GROUP BY j.value"
        ))?;
        let rows = statement.query_map(args, |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (reason, n) = row?;
            handoff_reasons.insert(reason, n as u64);
        }
    }
    let mut per_day = Vec::new();
    {
        let mut statement = db.prepare(&format!(
            "SELECT date(q.at_ms / 1000, 'unixepoch') AS day, count(*),
                    sum(q.result_count = 0 AND q.channel IN ('search', 'autocomplete')),
                    (SELECT count(*) FROM feedback f JOIN queries q2 ON q2.query_id = f.query_id
                       WHERE f.event = 'click' AND date(q2.at_ms / 1000, 'unixepoch') = date(q.at_ms / 1000, 'unixepoch')
                       AND q2.at_ms >= ?1 AND q2.at_ms < ?2 AND (?3 IS NULL OR q2.channel = ?3)),
                    sum(json_array_length(q.handoff_reasons) > 0)
             FROM queries q WHERE {QUERY_FILTER} GROUP BY day ORDER BY day"
        ))?;
        let rows = statement.query_map(args, |row| {
            Ok(DaySummary {
                date: row.get(0)?,
                queries: row.get::<_, i64>(1)? as u64,
                zero_results: row.get::<_, i64>(2)? as u64,
                clicks: row.get::<_, i64>(3)? as u64,
                handoffs: row.get::<_, i64>(4)? as u64,
            })
        })?;
        for row in rows {
            per_day.push(row?);
        }
    }
    Ok(Summary {
        queries,
        searches,
        zero_result_rate: ratio(zero, searches),
        click_through_rate: ratio(clicked, searches),
        mean_click_position,
        helpful_rate: (helpful + not_helpful > 0).then(|| ratio(helpful, helpful + not_helpful)),
        bot_questions,
        bot_answer_rate: ratio(answered, bot_questions),
        handoff_rate: ratio(handed_off, bot_questions),
        handoff_reasons,
        resolution_rate: ratio(resolved, bot_questions),
        per_day,
        ..Summary::default()
    })
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

/// Normalised queries with counts: the most asked, and the content gaps.
pub fn queries(
    database: &Path,
    window: &Window,
    kind: QueryReportKind,
    limit: usize,
) -> Result<Vec<QueryCount>, AnalyticsError> {
    let condition = match kind {
        QueryReportKind::Top => "1",
        QueryReportKind::NoResults => "q.result_count = 0",
        QueryReportKind::NoClicks => {
            "q.channel IN ('search', 'autocomplete') AND q.result_count > 0 AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = q.query_id AND f.event = 'click')"
        }
        QueryReportKind::Handoff => {
            "q.channel = 'answer' AND json_array_length(q.handoff_reasons) > 0"
        }
    };
    let db = open_reader(database)?;
    let mut statement = db.prepare(&format!(
        "SELECT q.query, count(*) AS n FROM queries q WHERE {QUERY_FILTER} AND {condition} AND q.query != '' GROUP BY q.query ORDER BY n DESC, q.query LIMIT ?4"
    ))?;
    let rows = statement.query_map(
        params![window.from_ms, window.to_ms, window.channel, limit as i64],
        |row| {
            Ok(QueryCount {
                query: row.get(0)?,
                count: row.get::<_, i64>(1)? as u64,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
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

/// Per-article counts over the window, by article id.
pub fn article_stats(
    database: &Path,
    window: &Window,
) -> Result<BTreeMap<String, ArticleStats>, AnalyticsError> {
    let db = open_reader(database)?;
    let args = params![window.from_ms, window.to_ms, window.channel];
    let mut stats: BTreeMap<String, ArticleStats> = BTreeMap::new();
    {
        let mut statement = db.prepare(&format!(
            "SELECT j.value, count(*) FROM queries q, json_each(q.top_ids) j WHERE {QUERY_FILTER} GROUP BY j.value"
        ))?;
        let rows = statement.query_map(args, |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (id, n) = row?;
            stats.entry(id).or_default().impressions = n as u64;
        }
    }
    let mut statement = db.prepare(&format!(
        "SELECT f.article_id, f.event, count(*) FROM feedback f JOIN queries q ON q.query_id = f.query_id WHERE {QUERY_FILTER} GROUP BY f.article_id, f.event"
    ))?;
    let rows = statement.query_map(args, |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (id, event, n) = row?;
        let entry = stats.entry(id).or_default();
        let n = n as u64;
        match event.as_str() {
            "click" => entry.clicks = n,
            "helpful" => entry.helpful = n,
            "not_helpful" => entry.not_helpful = n,
            "resolved" => entry.resolved = n,
            "used_in_reply" => entry.used_in_reply = n,
            _ => {}
        }
    }
    Ok(stats)
}

/// Positive (helpful, resolved, used in a reply) and negative (not helpful)
/// feedback per article, over everything retained.
pub fn feedback_totals(database: &Path) -> Result<BTreeMap<String, (u64, u64)>, AnalyticsError> {
    let db = open_reader(database)?;
    let mut statement = db.prepare(
        "SELECT article_id,
                sum(event IN ('helpful', 'resolved', 'used_in_reply')),
                sum(event = 'not_helpful')
         FROM feedback GROUP BY article_id",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            (row.get::<_, i64>(1)? as u64, row.get::<_, i64>(2)? as u64),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
