//! The reports' SQL: the summary's counts, query lists, per-article counts
//! and the feedback totals ranking uses. Each runs on its own read-only
//! connection, so a long report never holds up a hand-off.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use crate::analytics::reports::{
    ArticleStats, DaySummary, EventCounts, QueryCount, QueryReportKind, Summary, Window,
};
use crate::store::{ChannelActivity, GapCount, StoreError};

const QUERY_FILTER: &str = "q.at_ms >= ?1 AND q.at_ms < ?2 AND (?3 IS NULL OR q.channel = ?3)";

pub(super) fn summary(db: &Connection, window: &Window) -> Result<Summary, StoreError> {
    let args = params![window.from_ms, window.to_ms, window.channel];
    let count = |db: &Connection, sql: &str| -> Result<u64, StoreError> {
        Ok(db.query_row(sql, args, |row| row.get::<_, i64>(0))? as u64)
    };
    let queries = count(
        db,
        &format!("SELECT count(*) FROM queries q WHERE {QUERY_FILTER}"),
    )?;
    let searches = count(
        db,
        &format!(
            "SELECT count(*) FROM queries q WHERE {QUERY_FILTER} AND q.channel IN ('search', 'autocomplete')"
        ),
    )?;
    let zero = count(
        db,
        &format!(
            "SELECT count(*) FROM queries q WHERE {QUERY_FILTER} AND q.channel IN ('search', 'autocomplete') AND q.result_count = 0"
        ),
    )?;
    let clicked = count(
        db,
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
            db,
            &format!(
                "SELECT count(*) FROM queries q JOIN feedback f ON f.query_id = q.query_id WHERE {QUERY_FILTER} AND f.event = '{event}'"
            ),
        )
    };
    let helpful = votes("helpful")?;
    let not_helpful = votes("not_helpful")?;
    let bot_questions = count(
        db,
        &format!("SELECT count(*) FROM queries q WHERE {QUERY_FILTER} AND q.channel = 'answer'"),
    )?;
    let handed_off = count(
        db,
        &format!(
            "SELECT count(*) FROM queries q WHERE {QUERY_FILTER} AND q.channel = 'answer' AND json_array_length(q.handoff_reasons) > 0"
        ),
    )?;
    let answered = count(
        db,
        &format!(
            "SELECT count(*) FROM queries q WHERE {QUERY_FILTER} AND q.channel = 'answer' AND json_array_length(q.handoff_reasons) = 0 AND q.result_count > 0"
        ),
    )?;
    let resolved = count(
        db,
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
    Ok(EventCounts {
        queries,
        searches,
        zero_results: zero,
        clicked,
        mean_click_position,
        helpful,
        not_helpful,
        bot_questions,
        answered,
        handed_off,
        resolved,
        handoff_reasons,
        per_day,
    }
    .into_summary())
}

/// Normalised queries with counts: the most asked, and the content gaps.
pub(super) fn queries(
    db: &Connection,
    window: &Window,
    kind: QueryReportKind,
    limit: usize,
) -> Result<Vec<QueryCount>, StoreError> {
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

/// Per-article counts over the window, by article id.
pub(super) fn article_stats(
    db: &Connection,
    window: &Window,
) -> Result<BTreeMap<String, ArticleStats>, StoreError> {
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
pub(super) fn feedback_totals(db: &Connection) -> Result<BTreeMap<String, (u64, u64)>, StoreError> {
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

/// Each session with a query in the window, and whether it repeated a question.
pub(super) fn session_outcomes(
    db: &Connection,
    window: &Window,
) -> Result<Vec<(String, bool)>, StoreError> {
    let mut statement = db.prepare(
        "SELECT q.session_hash, max(EXISTS (SELECT 1 FROM json_each(q.handoff_reasons) j WHERE j.value = 'repeated_question'))
         FROM queries q WHERE q.at_ms >= ?1 AND q.at_ms < ?2 AND q.session_hash IS NOT NULL
         GROUP BY q.session_hash",
    )?;
    let rows = statement
        .query_map(params![window.from_ms, window.to_ms], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Queries that showed a content gap, by wording and UTC day. The day is an
/// integer division and the JSON test a string comparison, so the SQL stays
/// close to what PostgreSQL runs.
pub(super) fn gap_counts(db: &Connection, window: &Window) -> Result<Vec<GapCount>, StoreError> {
    let mut statement = db.prepare(&format!(
        "SELECT query, day, count(*), sum(no_results), sum(no_click), sum(bad_answer) FROM (
           SELECT q.query AS query, q.at_ms / 86400000 AS day,
             CASE WHEN q.result_count = 0 THEN 1 ELSE 0 END AS no_results,
             CASE WHEN q.channel IN ('search', 'autocomplete') AND q.result_count > 0
                   AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = q.query_id AND f.event = 'click')
                  THEN 1 ELSE 0 END AS no_click,
             CASE WHEN q.channel = 'answer' AND (q.handoff_reasons <> '[]'
                   OR EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = q.query_id AND f.event = 'not_helpful')
                   OR EXISTS (SELECT 1 FROM handoffs h WHERE h.session_hash = q.session_hash AND h.created_ms >= q.at_ms))
                  THEN 1 ELSE 0 END AS bad_answer
           FROM queries q WHERE {QUERY_FILTER} AND q.query <> ''
         ) g WHERE no_results + no_click + bad_answer > 0
         GROUP BY query, day ORDER BY query, day"
    ))?;
    let rows = statement.query_map(
        params![window.from_ms, window.to_ms, window.channel],
        |row| {
            Ok(GapCount {
                query: row.get(0)?,
                day: row.get(1)?,
                count: row.get::<_, i64>(2)? as u64,
                no_results: row.get::<_, i64>(3)? as u64,
                no_click: row.get::<_, i64>(4)? as u64,
                not_helpful_or_handoff: row.get::<_, i64>(5)? as u64,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Per article, the hand-offs created in the window whose session had been
/// shown it first (each hand-off counted once per article).
pub(super) fn shown_before_handoff(
    db: &Connection,
    window: &Window,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut statement = db.prepare(
        "SELECT j.value, count(DISTINCT h.id)
         FROM handoffs h JOIN queries q ON q.session_hash = h.session_hash AND q.at_ms <= h.created_ms,
              json_each(q.top_ids) j
         WHERE h.created_ms >= ?1 AND h.created_ms < ?2 AND (?3 IS NULL OR q.channel = ?3)
         GROUP BY j.value",
    )?;
    let rows = statement.query_map(
        params![window.from_ms, window.to_ms, window.channel],
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The per-channel figures' name for a query channel: bot questions are
/// `chat`, portal searches `portal`; the agents' suggestions have none.
pub(super) fn figure_channel(query_channel: &str) -> Option<&'static str> {
    match query_channel {
        "answer" => Some("chat"),
        "search" | "autocomplete" => Some("portal"),
        "email" => Some("email"),
        "form" => Some("form"),
        "social" => Some("social"),
        _ => None,
    }
}

/// Questions per channel (bot questions and inbound messages) and the
/// hand-offs created in the window, by the channel stored with them.
pub(super) fn channel_activity(
    db: &Connection,
    window: &Window,
) -> Result<BTreeMap<String, ChannelActivity>, StoreError> {
    let mut channels: BTreeMap<String, ChannelActivity> = BTreeMap::new();
    {
        let mut statement = db.prepare(&format!(
            "SELECT CASE q.channel WHEN 'answer' THEN 'chat' ELSE q.channel END AS name,
                    count(*),
                    sum(json_array_length(q.handoff_reasons) = 0 AND q.result_count > 0),
                    sum(q.auto_reply <> 0)
             FROM queries q WHERE {QUERY_FILTER} AND q.channel IN ('answer', 'email', 'form', 'social')
             GROUP BY name"
        ))?;
        let rows = statement.query_map(
            params![window.from_ms, window.to_ms, window.channel],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            },
        )?;
        for row in rows {
            let (name, messages, answered, auto_replied) = row?;
            let entry = channels.entry(name).or_default();
            entry.messages = messages as u64;
            entry.answered = answered as u64;
            entry.auto_replied = auto_replied as u64;
        }
    }
    let mut statement = db.prepare(
        "SELECT channel, claimed_ms - created_ms, closed_ms - created_ms FROM handoffs
         WHERE created_ms >= ?1 AND created_ms < ?2 AND channel IS NOT NULL",
    )?;
    let rows = statement.query_map(params![window.from_ms, window.to_ms], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, Option<i64>>(1)?,
            row.get::<_, Option<i64>>(2)?,
        ))
    })?;
    for row in rows {
        let (name, first_response, resolution) = row?;
        let entry = channels.entry(name).or_default();
        entry.handed_off += 1;
        entry.first_response_ms.extend(first_response);
        entry.resolution_ms.extend(resolution);
    }
    // Hand-offs carry the figures' channel name, not the query channel the
    // filter names: keep the one it stands for.
    if let Some(filter) = &window.channel {
        let wanted = figure_channel(filter);
        channels.retain(|name, _| Some(name.as_str()) == wanted);
    }
    Ok(channels)
}
