//! Analytics events and session timelines in SQLite: the batched writes of
//! the analytics writer thread, pruning, and the reads that bring a session
//! back after a restart.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

use crate::analytics::QueryEvent;
use crate::analytics::store::{SessionRow, VoteRow};
use crate::store::{EventBatch, StoreError};

pub(super) const EVENTS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queries (
    query_id TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    channel TEXT NOT NULL,
    query TEXT NOT NULL,
    filters TEXT NOT NULL,
    result_count INTEGER NOT NULL,
    top_ids TEXT NOT NULL,
    confidence REAL,
    handoff_reasons TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    session_hash TEXT,
    auto_reply INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queries_at ON queries(at_ms);
CREATE TABLE IF NOT EXISTS feedback (
    query_id TEXT NOT NULL,
    article_id TEXT NOT NULL,
    event TEXT NOT NULL,
    comment TEXT,
    at_ms INTEGER NOT NULL,
    UNIQUE (query_id, article_id, event)
);
CREATE INDEX IF NOT EXISTS feedback_at ON feedback(at_ms);
CREATE INDEX IF NOT EXISTS feedback_query ON feedback(query_id);
CREATE TABLE IF NOT EXISTS session_events (
    session_hash TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    query_id TEXT,
    customer_hash TEXT,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS session_events_session ON session_events(session_hash, at_ms);
CREATE INDEX IF NOT EXISTS session_events_at ON session_events(at_ms);
CREATE INDEX IF NOT EXISTS session_events_query ON session_events(query_id);
CREATE INDEX IF NOT EXISTS session_events_customer ON session_events(customer_hash, at_ms);
CREATE TABLE IF NOT EXISTS customer_votes (
    customer_hash TEXT NOT NULL,
    article_id TEXT NOT NULL,
    event TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (customer_hash, article_id)
);
CREATE INDEX IF NOT EXISTS customer_votes_at ON customer_votes(at_ms);
";

pub(super) fn write(connection: &mut Connection, batch: &EventBatch<'_>) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let transaction = connection.transaction()?;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT OR IGNORE INTO queries (query_id, at_ms, channel, query, filters, result_count, top_ids, confidence, handoff_reasons, latency_ms, session_hash, auto_reply)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for event in batch.queries {
            insert_query(&mut insert, event)?;
        }
        let mut insert_feedback = transaction.prepare_cached(
            "INSERT OR IGNORE INTO feedback (query_id, article_id, event, comment, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for event in batch.feedback {
            insert_feedback.execute(params![
                event.query_id,
                event.article_id,
                event.event.as_str(),
                event.comment,
                event.at_ms,
            ])?;
        }
        let mut insert_session = transaction.prepare_cached(
            "INSERT INTO session_events (session_hash, at_ms, query_id, customer_hash, event) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for row in batch.sessions {
            insert_session.execute(params![
                row.session_hash,
                row.at_ms,
                row.query_id,
                row.customer_hash,
                row.event,
            ])?;
        }
        let mut upsert_vote = transaction.prepare_cached(
            "INSERT INTO customer_votes (customer_hash, article_id, event, at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (customer_hash, article_id) DO UPDATE SET event = excluded.event, at_ms = excluded.at_ms",
        )?;
        for vote in batch.votes {
            upsert_vote.execute(params![
                vote.customer_hash,
                vote.article_id,
                vote.event,
                vote.at_ms,
            ])?;
        }
    }
    transaction.commit()?;
    Ok(())
}

fn insert_query(
    statement: &mut rusqlite::CachedStatement<'_>,
    event: &QueryEvent,
) -> rusqlite::Result<usize> {
    statement.execute(params![
        event.query_id,
        event.at_ms,
        event.channel.as_str(),
        event.query,
        event.filters.to_string(),
        event.result_count as i64,
        serde_json::to_string(&event.top_ids).unwrap_or_default(),
        event.confidence,
        serde_json::to_string(&event.handoff_reasons).unwrap_or_default(),
        event.latency_ms,
        event.session_hash,
        event.auto_reply,
    ])
}

pub(super) fn prune(connection: &Connection, before_ms: i64) -> Result<usize, StoreError> {
    let queries = connection.execute("DELETE FROM queries WHERE at_ms < ?1", params![before_ms])?;
    let feedback =
        connection.execute("DELETE FROM feedback WHERE at_ms < ?1", params![before_ms])?;
    Ok(queries + feedback)
}

pub(super) fn prune_sessions(
    connection: &Connection,
    events_before: i64,
    votes_before: i64,
) -> Result<usize, StoreError> {
    let events = connection.execute(
        "DELETE FROM session_events WHERE at_ms < ?1",
        params![events_before],
    )?;
    let votes = connection.execute(
        "DELETE FROM customer_votes WHERE at_ms < ?1",
        params![votes_before],
    )?;
    Ok(events + votes)
}

pub(super) fn knows_query(connection: &Connection, query_id: &str) -> Result<bool, StoreError> {
    Ok(connection
        .query_row(
            "SELECT 1 FROM queries WHERE query_id = ?1",
            [query_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub(super) fn stored_sessions(
    connection: &Connection,
    since_ms: i64,
) -> Result<HashSet<String>, StoreError> {
    let mut statement =
        connection.prepare("SELECT DISTINCT session_hash FROM session_events WHERE at_ms >= ?1")?;
    let hashes = statement
        .query_map(params![since_ms], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(hashes)
}

pub(super) fn customer_sessions(
    connection: &Connection,
    customer_hash: &str,
    since_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT session_hash FROM session_events WHERE customer_hash = ?1 AND at_ms >= ?2
         GROUP BY session_hash ORDER BY MAX(at_ms) DESC",
    )?;
    let hashes = statement
        .query_map(params![customer_hash, since_ms], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(hashes)
}

pub(super) fn session_rows(
    connection: &Connection,
    session_hash: &str,
    since_ms: i64,
) -> Result<Vec<SessionRow>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT at_ms, query_id, customer_hash, event FROM session_events
         WHERE session_hash = ?1 AND at_ms >= ?2 ORDER BY at_ms, rowid",
    )?;
    let rows = statement
        .query_map(params![session_hash, since_ms], |row| {
            Ok(SessionRow {
                session_hash: session_hash.to_string(),
                at_ms: row.get(0)?,
                query_id: row.get(1)?,
                customer_hash: row.get(2)?,
                event: row.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn session_of_query(
    connection: &Connection,
    query_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT session_hash FROM session_events WHERE query_id = ?1 LIMIT 1",
            params![query_id],
            |row| row.get(0),
        )
        .optional()?)
}

pub(super) fn customer_votes(
    connection: &Connection,
    since_ms: i64,
) -> Result<Vec<VoteRow>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT customer_hash, article_id, event, at_ms FROM customer_votes WHERE at_ms >= ?1",
    )?;
    let rows = statement
        .query_map(params![since_ms], vote_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn customer_votes_of(
    connection: &Connection,
    customer_hash: &str,
    since_ms: i64,
) -> Result<Vec<VoteRow>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT customer_hash, article_id, event, at_ms FROM customer_votes
         WHERE customer_hash = ?1 AND at_ms >= ?2",
    )?;
    let rows = statement
        .query_map(params![customer_hash, since_ms], vote_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

fn vote_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<VoteRow> {
    let event: String = row.get(2)?;
    Ok(VoteRow {
        customer_hash: row.get(0)?,
        article_id: row.get(1)?,
        event: if event == "not_helpful" {
            "not_helpful"
        } else {
            "helpful"
        },
        at_ms: row.get(3)?,
    })
}
