//! The SQLite event store: one writer thread fed by a bounded channel,
//! batched transactions, WAL mode so reports read while it writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{AnalyticsError, FeedbackEvent, QueryEvent};

pub const DATABASE_FILE: &str = "analytics.sqlite";
/// An autocomplete query is recorded once its typing burst has been quiet this long.
const BURST_QUIET: Duration = Duration::from_secs(2);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const MAX_BATCH: usize = 2000;

pub enum Message {
    Query(Box<QueryEvent>),
    Feedback(FeedbackEvent),
    /// Write everything pending (typing bursts included), then reply.
    Flush(std::sync::mpsc::Sender<()>),
    /// One entry of a session's timeline (see `handoff::timeline`).
    SessionEvent(SessionRow),
    /// A customer's latest vote on an article (replaces the previous one).
    CustomerVote(VoteRow),
    /// Deletes session events and customer votes older than these times.
    PruneSessions {
        events_before: i64,
        votes_before: i64,
    },
}

/// A session timeline entry as stored: the event itself is JSON, so the
/// timeline can grow fields without a migration.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub session_hash: String,
    pub at_ms: i64,
    pub query_id: Option<String>,
    pub customer_hash: Option<String>,
    pub event: String,
}

#[derive(Debug, Clone)]
pub struct VoteRow {
    pub customer_hash: String,
    pub article_id: String,
    pub event: &'static str,
    pub at_ms: i64,
}

const SCHEMA: &str = "
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
    session_hash TEXT
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
CREATE TABLE IF NOT EXISTS customer_votes (
    customer_hash TEXT NOT NULL,
    article_id TEXT NOT NULL,
    event TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (customer_hash, article_id)
);
CREATE INDEX IF NOT EXISTS customer_votes_at ON customer_votes(at_ms);
";

pub fn open_writer(path: &Path) -> Result<Connection, AnalyticsError> {
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute_batch(SCHEMA)?;
    Ok(connection)
}

pub fn open_reader(path: &Path) -> Result<Connection, AnalyticsError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(Duration::from_secs(5))?;
    Ok(connection)
}

pub struct Writer {
    connection: Connection,
    retention: Duration,
    /// Autocomplete events waiting for their typing burst to end, by burst key.
    bursts: HashMap<String, (Instant, Box<QueryEvent>)>,
    last_prune: Option<Instant>,
    pub path: PathBuf,
}

impl Writer {
    pub fn new(path: &Path, retention: Duration) -> Result<Self, AnalyticsError> {
        Ok(Writer {
            connection: open_writer(path)?,
            retention,
            bursts: HashMap::new(),
            last_prune: None,
            path: path.to_path_buf(),
        })
    }

    pub fn run(mut self, messages: Receiver<Message>) {
        loop {
            let first = match messages.recv_timeout(Duration::from_millis(500)) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let batch: Vec<Message> = first
                .into_iter()
                .chain(messages.try_iter().take(MAX_BATCH))
                .collect();
            if let Err(error) = self.apply(batch) {
                tracing::error!(%error, "cannot write analytics events");
            }
            if self.last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                self.last_prune = Some(Instant::now());
                match self.prune(super::now_ms()) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(deleted = n, "pruned analytics past the retention period")
                    }
                    Err(error) => tracing::error!(%error, "cannot prune analytics"),
                }
            }
        }
        // Shutdown: write the typing bursts still pending.
        let (reply, _) = std::sync::mpsc::channel();
        if let Err(error) = self.apply(vec![Message::Flush(reply)]) {
            tracing::error!(%error, "cannot write the last analytics events");
        }
    }

    fn apply(&mut self, batch: Vec<Message>) -> Result<(), AnalyticsError> {
        let mut queries = Vec::new();
        let mut feedback = Vec::new();
        let mut flushed = Vec::new();
        let mut session_rows = Vec::new();
        let mut votes = Vec::new();
        let mut prunes = Vec::new();
        for message in batch {
            match message {
                Message::Query(event) => match event.burst_key.clone() {
                    // Each keystroke replaces the previous query of its burst.
                    Some(key) => {
                        self.bursts.insert(key, (Instant::now(), event));
                    }
                    None => queries.push(event),
                },
                Message::Feedback(event) => feedback.push(event),
                Message::Flush(reply) => flushed.push(reply),
                Message::SessionEvent(row) => session_rows.push(row),
                Message::CustomerVote(row) => votes.push(row),
                Message::PruneSessions {
                    events_before,
                    votes_before,
                } => prunes.push((events_before, votes_before)),
            }
        }
        let quiet: Vec<String> = self
            .bursts
            .iter()
            .filter(|(_, (at, _))| !flushed.is_empty() || at.elapsed() >= BURST_QUIET)
            .map(|(key, _)| key.clone())
            .collect();
        for key in quiet {
            if let Some((_, event)) = self.bursts.remove(&key) {
                queries.push(event);
            }
        }
        if !queries.is_empty()
            || !feedback.is_empty()
            || !session_rows.is_empty()
            || !votes.is_empty()
        {
            let transaction = self.connection.transaction()?;
            {
                let mut insert_query = transaction.prepare_cached(
                    "INSERT OR IGNORE INTO queries (query_id, at_ms, channel, query, filters, result_count, top_ids, confidence, handoff_reasons, latency_ms, session_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?;
                for event in &queries {
                    insert_query.execute(params![
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
                    ])?;
                }
                let mut insert_feedback = transaction.prepare_cached(
                    "INSERT OR IGNORE INTO feedback (query_id, article_id, event, comment, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for event in &feedback {
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
                for row in &session_rows {
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
                for vote in &votes {
                    upsert_vote.execute(params![
                        vote.customer_hash,
                        vote.article_id,
                        vote.event,
                        vote.at_ms,
                    ])?;
                }
            }
            transaction.commit()?;
        }
        for (events_before, votes_before) in prunes {
            let deleted = self.prune_sessions(events_before, votes_before)?;
            if deleted > 0 {
                tracing::info!(deleted, "pruned session timelines past their retention");
            }
        }
        for reply in flushed {
            let _ = reply.send(());
        }
        Ok(())
    }

    /// Deletes events older than the retention period.
    pub fn prune(&mut self, now_ms: i64) -> Result<usize, AnalyticsError> {
        let cutoff = now_ms - self.retention.as_millis() as i64;
        let queries = self
            .connection
            .execute("DELETE FROM queries WHERE at_ms < ?1", params![cutoff])?;
        let feedback = self
            .connection
            .execute("DELETE FROM feedback WHERE at_ms < ?1", params![cutoff])?;
        Ok(queries + feedback)
    }
}

impl Writer {
    /// Deletes session events and customer votes older than the cut-offs
    /// (sessions and customer votes have their own retention periods).
    pub fn prune_sessions(
        &mut self,
        events_before: i64,
        votes_before: i64,
    ) -> Result<usize, AnalyticsError> {
        let events = self.connection.execute(
            "DELETE FROM session_events WHERE at_ms < ?1",
            params![events_before],
        )?;
        let votes = self.connection.execute(
            "DELETE FROM customer_votes WHERE at_ms < ?1",
            params![votes_before],
        )?;
        Ok(events + votes)
    }
}

/// Session hashes with at least one event since `since_ms`.
pub fn stored_sessions(
    path: &Path,
    since_ms: i64,
) -> Result<std::collections::HashSet<String>, AnalyticsError> {
    let connection = open_reader(path)?;
    let mut statement =
        connection.prepare("SELECT DISTINCT session_hash FROM session_events WHERE at_ms >= ?1")?;
    let hashes = statement
        .query_map(params![since_ms], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(hashes)
}

/// One session's events since `since_ms`, oldest first, with the customer
/// hash if any event carried one.
pub fn session_rows(
    path: &Path,
    session_hash: &str,
    since_ms: i64,
) -> Result<Vec<SessionRow>, AnalyticsError> {
    let connection = open_reader(path)?;
    let mut statement = connection.prepare(
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

/// The session a query id was asked in, if it was asked in one.
pub fn session_of_query(path: &Path, query_id: &str) -> Result<Option<String>, AnalyticsError> {
    let connection = open_reader(path)?;
    let found = connection
        .query_row(
            "SELECT session_hash FROM session_events WHERE query_id = ?1 LIMIT 1",
            params![query_id],
            |row| row.get(0),
        )
        .optional()?;
    Ok(found)
}

/// Every customer vote since `since_ms`.
pub fn customer_votes(path: &Path, since_ms: i64) -> Result<Vec<VoteRow>, AnalyticsError> {
    let connection = open_reader(path)?;
    let mut statement = connection.prepare(
        "SELECT customer_hash, article_id, event, at_ms FROM customer_votes WHERE at_ms >= ?1",
    )?;
    let rows = statement
        .query_map(params![since_ms], |row| {
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
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::{Channel, QueryEvent};

    fn event(id: &str, at_ms: i64) -> Box<QueryEvent> {
        Box::new(QueryEvent {
            query_id: id.into(),
            at_ms,
            channel: Channel::Search,
            query: "q".into(),
            filters: serde_json::json!({}),
            result_count: 1,
            top_ids: vec!["a".into()],
            confidence: None,
            handoff_reasons: Vec::new(),
            latency_ms: 1.0,
            session_hash: None,
            burst_key: None,
        })
    }

    #[test]
    fn retention_prunes_old_events_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DATABASE_FILE);
        let day = 24 * 3600 * 1000;
        let now = 1_000 * day;
        let mut writer = Writer::new(&path, Duration::from_secs(90 * 24 * 3600)).unwrap();
        let (reply, _) = std::sync::mpsc::channel();
        writer
            .apply(vec![
                Message::Query(event("old", now - 91 * day)),
                Message::Query(event("recent", now - 89 * day)),
                Message::Flush(reply),
            ])
            .unwrap();
        assert_eq!(writer.prune(now).unwrap(), 1);
        let reader = open_reader(&path).unwrap();
        let ids: Vec<String> = reader
            .prepare("SELECT query_id FROM queries")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ids, vec!["recent"]);
    }
}
