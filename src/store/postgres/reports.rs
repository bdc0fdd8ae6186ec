//! The reports' SQL on PostgreSQL: the same questions as
//! `store/sqlite/reports.rs`, with the same answers.
//!
//! Where the dialects differ: SQLite's `json_each(x)` is
//! `jsonb_array_elements_text(x::jsonb) WITH ORDINALITY` (1-based, where
//! `json_each`'s key is 0-based); a sum of booleans is a filtered
//! `count(*)`; `sum()` of BIGINT is NUMERIC here, so it is cast back;
//! text is ordered `COLLATE "C"`, byte by byte like SQLite's `BINARY`,
//! whatever the database's locale.

use std::collections::BTreeMap;

use tokio_postgres::types::ToSql;

use super::store::{Client, get};
use crate::analytics::reports::{
    ArticleStats, DaySummary, EventCounts, QueryCount, QueryReportKind, Summary, Window,
};
use crate::store::{ChannelActivity, GapCount, StoreError};

/// The window: `$1` from, `$2` to, `$3` the channel or NULL.
const QUERY_FILTER: &str =
    "q.at_ms >= $1 AND q.at_ms < $2 AND ($3::text IS NULL OR q.channel = $3::text)";

/// A query's UTC day as `YYYY-MM-DD`, from whole seconds as SQLite's
/// `date(q.at_ms / 1000, 'unixepoch')`.
macro_rules! day_of {
    ($table:literal) => {
        concat!(
            "to_char(to_timestamp((",
            $table,
            ".at_ms / 1000)::float8) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        )
    };
}

/// The per-channel figures' name for a query channel (as SQLite's
/// `figure_channel`): bot questions are `chat`, portal searches `portal`.
fn figure_channel(query_channel: &str) -> Option<&'static str> {
    match query_channel {
        "answer" => Some("chat"),
        "search" | "autocomplete" => Some("portal"),
        "email" => Some("email"),
        "form" => Some("form"),
        "social" => Some("social"),
        _ => None,
    }
}

fn window_args(window: &Window) -> [&(dyn ToSql + Sync); 3] {
    [&window.from_ms, &window.to_ms, &window.channel]
}

fn count(value: i64) -> u64 {
    value.max(0) as u64
}

pub(super) async fn summary(client: &Client, window: &Window) -> Result<Summary, StoreError> {
    let args = window_args(window);
    let totals = client
        .query_one(
            &format!(
                "SELECT count(*),
                        count(*) FILTER (WHERE q.channel IN ('search', 'autocomplete')),
                        count(*) FILTER (WHERE q.channel IN ('search', 'autocomplete')
                                           AND q.result_count = 0),
                        count(*) FILTER (WHERE q.channel = 'answer'),
                        count(*) FILTER (WHERE q.channel = 'answer'
                                           AND jsonb_array_length(q.handoff_reasons::jsonb) > 0),
                        count(*) FILTER (WHERE q.channel = 'answer'
                                           AND jsonb_array_length(q.handoff_reasons::jsonb) = 0
                                           AND q.result_count > 0)
                 FROM queries q WHERE {QUERY_FILTER}"
            ),
            &args,
        )
        .await?;
    let queries = count(get(&totals, 0)?);
    let searches = count(get(&totals, 1)?);
    let zero = count(get(&totals, 2)?);
    let bot_questions = count(get(&totals, 3)?);
    let handed_off = count(get(&totals, 4)?);
    let answered = count(get(&totals, 5)?);

    let votes = client
        .query_one(
            &format!(
                "SELECT count(DISTINCT q.query_id) FILTER (WHERE q.channel IN ('search', 'autocomplete')
                                                             AND f.event = 'click'),
                        count(*) FILTER (WHERE f.event = 'helpful'),
                        count(*) FILTER (WHERE f.event = 'not_helpful'),
                        count(DISTINCT q.query_id) FILTER (WHERE q.channel = 'answer'
                                                             AND f.event = 'resolved')
                 FROM queries q JOIN feedback f ON f.query_id = q.query_id WHERE {QUERY_FILTER}"
            ),
            &args,
        )
        .await?;
    let clicked = count(get(&votes, 0)?);
    let helpful = count(get(&votes, 1)?);
    let not_helpful = count(get(&votes, 2)?);
    let resolved = count(get(&votes, 3)?);

    // SQLite's avg() of integers: their exact sum over their count, in
    // double precision; computed here the same way.
    let positions = client
        .query_one(
            &format!(
                "SELECT sum(j.n)::bigint, count(*)
                 FROM queries q JOIN feedback f ON f.query_id = q.query_id,
                      jsonb_array_elements_text(q.top_ids::jsonb) WITH ORDINALITY AS j(value, n)
                 WHERE {QUERY_FILTER} AND f.event = 'click' AND j.value = f.article_id"
            ),
            &args,
        )
        .await?;
    let position_sum: Option<i64> = get(&positions, 0)?;
    let position_count: i64 = get(&positions, 1)?;
    let mean_click_position = position_sum
        .filter(|_| position_count > 0)
        .map(|sum| sum as f64 / position_count as f64);

    let mut handoff_reasons = BTreeMap::new();
    for row in client
        .query(
            &format!(
                "SELECT j.value, count(*)
                 FROM queries q, jsonb_array_elements_text(q.handoff_reasons::jsonb) AS j(value)
                 WHERE {QUERY_FILTER} GROUP BY j.value"
            ),
            &args,
        )
        .await?
    {
        handoff_reasons.insert(get::<String>(&row, 0)?, count(get(&row, 1)?));
    }

    let per_day = client
        .query(
            &format!(
                "WITH clicks AS (
                     SELECT {day} AS day, count(*) AS n
                     FROM feedback f JOIN queries q ON q.query_id = f.query_id
                     WHERE f.event = 'click' AND {QUERY_FILTER}
                     GROUP BY 1
                 ),
                 days AS (
                     SELECT {day} AS day, count(*) AS queries,
                            count(*) FILTER (WHERE q.result_count = 0
                                               AND q.channel IN ('search', 'autocomplete')) AS zero,
                            count(*) FILTER (WHERE jsonb_array_length(q.handoff_reasons::jsonb) > 0)
                                AS handoffs
                     FROM queries q WHERE {QUERY_FILTER}
                     GROUP BY 1
                 )
                 SELECT d.day, d.queries, d.zero, coalesce(c.n, 0), d.handoffs
                 FROM days d LEFT JOIN clicks c ON c.day = d.day
                 ORDER BY d.day COLLATE \"C\"",
                day = day_of!("q"),
            ),
            &args,
        )
        .await?
        .iter()
        .map(|row| {
            Ok(DaySummary {
                date: get(row, 0)?,
                queries: count(get(row, 1)?),
                zero_results: count(get(row, 2)?),
                clicks: count(get(row, 3)?),
                handoffs: count(get(row, 4)?),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

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
pub(super) async fn queries(
    client: &Client,
    window: &Window,
    kind: QueryReportKind,
    limit: usize,
) -> Result<Vec<QueryCount>, StoreError> {
    let condition = match kind {
        QueryReportKind::Top => "TRUE",
        QueryReportKind::NoResults => "q.result_count = 0",
        QueryReportKind::NoClicks => {
            "q.channel IN ('search', 'autocomplete') AND q.result_count > 0
             AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = q.query_id AND f.event = 'click')"
        }
        QueryReportKind::Handoff => {
            "q.channel = 'answer' AND jsonb_array_length(q.handoff_reasons::jsonb) > 0"
        }
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            &format!(
                "SELECT q.query, count(*) AS n FROM queries q
                 WHERE {QUERY_FILTER} AND {condition} AND q.query <> ''
                 GROUP BY q.query ORDER BY n DESC, q.query COLLATE \"C\" LIMIT $4"
            ),
            &[&window.from_ms, &window.to_ms, &window.channel, &limit],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(QueryCount {
                query: get(row, 0)?,
                count: count(get(row, 1)?),
            })
        })
        .collect()
}

/// Per-article counts over the window, by article id.
pub(super) async fn article_stats(
    client: &Client,
    window: &Window,
) -> Result<BTreeMap<String, ArticleStats>, StoreError> {
    let args = window_args(window);
    let mut stats: BTreeMap<String, ArticleStats> = BTreeMap::new();
    for row in client
        .query(
            &format!(
                "SELECT j.value, count(*)
                 FROM queries q, jsonb_array_elements_text(q.top_ids::jsonb) AS j(value)
                 WHERE {QUERY_FILTER} GROUP BY j.value"
            ),
            &args,
        )
        .await?
    {
        stats.entry(get(&row, 0)?).or_default().impressions = count(get(&row, 1)?);
    }
    for row in client
        .query(
            &format!(
                "SELECT f.article_id, f.event, count(*)
                 FROM feedback f JOIN queries q ON q.query_id = f.query_id
                 WHERE {QUERY_FILTER} GROUP BY f.article_id, f.event"
            ),
            &args,
        )
        .await?
    {
        let event: &str = get(&row, 1)?;
        let n = count(get(&row, 2)?);
        let entry = stats.entry(get(&row, 0)?).or_default();
        match event {
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
pub(super) async fn feedback_totals(
    client: &Client,
) -> Result<BTreeMap<String, (u64, u64)>, StoreError> {
    let rows = client
        .query(
            "SELECT article_id,
                    count(*) FILTER (WHERE event IN ('helpful', 'resolved', 'used_in_reply')),
                    count(*) FILTER (WHERE event = 'not_helpful')
             FROM feedback GROUP BY article_id",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((get(row, 0)?, (count(get(row, 1)?), count(get(row, 2)?)))))
        .collect()
}

/// Each session with a query in the window, and whether it repeated a question.
pub(super) async fn session_outcomes(
    client: &Client,
    window: &Window,
) -> Result<Vec<(String, bool)>, StoreError> {
    let rows = client
        .query(
            "SELECT q.session_hash,
                    bool_or(EXISTS (SELECT 1 FROM jsonb_array_elements_text(q.handoff_reasons::jsonb) AS j(value)
                                    WHERE j.value = 'repeated_question'))
             FROM queries q WHERE q.at_ms >= $1 AND q.at_ms < $2 AND q.session_hash IS NOT NULL
             GROUP BY q.session_hash ORDER BY q.session_hash COLLATE \"C\"",
            &[&window.from_ms, &window.to_ms],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((get(row, 0)?, get(row, 1)?)))
        .collect()
}

/// Queries that showed a content gap, by wording and UTC day.
pub(super) async fn gap_counts(
    client: &Client,
    window: &Window,
) -> Result<Vec<GapCount>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT query, day, count(*), sum(no_results)::bigint, sum(no_click)::bigint,
                        sum(bad_answer)::bigint
                 FROM (
                   SELECT q.query AS query, q.at_ms / 86400000 AS day,
                     CASE WHEN q.result_count = 0 THEN 1 ELSE 0 END AS no_results,
                     CASE WHEN q.channel IN ('search', 'autocomplete') AND q.result_count > 0
                           AND NOT EXISTS (SELECT 1 FROM feedback f
                                           WHERE f.query_id = q.query_id AND f.event = 'click')
                          THEN 1 ELSE 0 END AS no_click,
                     CASE WHEN q.channel = 'answer' AND (q.handoff_reasons <> '[]'
                           OR EXISTS (SELECT 1 FROM feedback f
                                      WHERE f.query_id = q.query_id AND f.event = 'not_helpful')
                           OR EXISTS (SELECT 1 FROM handoffs h
                                      WHERE h.session_hash = q.session_hash AND h.created_ms >= q.at_ms))
                          THEN 1 ELSE 0 END AS bad_answer
                   FROM queries q WHERE {QUERY_FILTER} AND q.query <> ''
                 ) g
                 WHERE no_results + no_click + bad_answer > 0
                 GROUP BY query, day ORDER BY query COLLATE \"C\", day"
            ),
            &window_args(window),
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(GapCount {
                query: get(row, 0)?,
                day: get(row, 1)?,
                count: count(get(row, 2)?),
                no_results: count(get(row, 3)?),
                no_click: count(get(row, 4)?),
                not_helpful_or_handoff: count(get(row, 5)?),
            })
        })
        .collect()
}

/// Per article, the hand-offs created in the window whose session had been
/// shown it first (each hand-off counted once per article).
pub(super) async fn shown_before_handoff(
    client: &Client,
    window: &Window,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let rows = client
        .query(
            "SELECT j.value, count(DISTINCT h.id)
             FROM handoffs h
                  JOIN queries q ON q.session_hash = h.session_hash AND q.at_ms <= h.created_ms,
                  jsonb_array_elements_text(q.top_ids::jsonb) AS j(value)
             WHERE h.created_ms >= $1 AND h.created_ms < $2
               AND ($3::text IS NULL OR q.channel = $3::text)
             GROUP BY j.value",
            &window_args(window),
        )
        .await?;
    rows.iter()
        .map(|row| Ok((get(row, 0)?, count(get(row, 1)?))))
        .collect()
}

/// Questions per channel (bot questions and inbound messages) and the
/// hand-offs created in the window, by the channel stored with them.
pub(super) async fn channel_activity(
    client: &Client,
    window: &Window,
) -> Result<BTreeMap<String, ChannelActivity>, StoreError> {
    let mut channels: BTreeMap<String, ChannelActivity> = BTreeMap::new();
    for row in client
        .query(
            &format!(
                "SELECT CASE q.channel WHEN 'answer' THEN 'chat' ELSE q.channel END,
                        count(*),
                        count(*) FILTER (WHERE jsonb_array_length(q.handoff_reasons::jsonb) = 0
                                           AND q.result_count > 0),
                        count(*) FILTER (WHERE q.auto_reply)
                 FROM queries q
                 WHERE {QUERY_FILTER} AND q.channel IN ('answer', 'email', 'form', 'social')
                 GROUP BY 1"
            ),
            &window_args(window),
        )
        .await?
    {
        let entry = channels.entry(get(&row, 0)?).or_default();
        entry.messages = count(get(&row, 1)?);
        entry.answered = count(get(&row, 2)?);
        entry.auto_replied = count(get(&row, 3)?);
    }
    // In the order they were created (SQLite reads them through the
    // `created_ms` index: by time, then by rowid).
    for row in client
        .query(
            "SELECT channel, claimed_ms - created_ms, closed_ms - created_ms FROM handoffs
             WHERE created_ms >= $1 AND created_ms < $2 AND channel IS NOT NULL
             ORDER BY created_ms, seq",
            &[&window.from_ms, &window.to_ms],
        )
        .await?
    {
        let first_response: Option<i64> = get(&row, 1)?;
        let resolution: Option<i64> = get(&row, 2)?;
        let entry = channels.entry(get(&row, 0)?).or_default();
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
