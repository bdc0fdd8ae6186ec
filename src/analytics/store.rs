//! The analytics writer: one thread fed by a bounded channel, writing
//! batches through the [`Store`] (one transaction each), holding each
//! autocomplete typing burst until it ends.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{AnalyticsError, FeedbackEvent, QueryEvent};
use crate::store::{EventBatch, Store};

pub use crate::store::sqlite::DATABASE_FILE;
/// An autocomplete query is recorded once its typing burst has been quiet this long.
const BURST_QUIET: Duration = Duration::from_secs(2);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const MAX_BATCH: usize = 2000;
/// How long a batch gathers events after its first. Under load, taking only
/// what was already queued made batches of a few events and a commit each:
/// a tenth of the server's CPU at 3,000 searches/s. A flush ends the wait.
const BATCH_WINDOW: Duration = Duration::from_millis(100);

/// `first` and what follows it within [`BATCH_WINDOW`] (up to
/// [`MAX_BATCH`]), stopping early at a flush; and whether the senders are gone.
fn collect_batch(first: Message, messages: &Receiver<Message>) -> (Vec<Message>, bool) {
    let deadline = Instant::now() + BATCH_WINDOW;
    let mut flushing = matches!(first, Message::Flush(_));
    let mut batch = vec![first];
    while !flushing && batch.len() < MAX_BATCH {
        let left = deadline.saturating_duration_since(Instant::now());
        match messages.recv_timeout(left) {
            Ok(message) => {
                flushing = matches!(message, Message::Flush(_));
                batch.push(message);
            }
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => return (batch, true),
        }
    }
    // Whatever else is already queued joins too.
    batch.extend(
        messages
            .try_iter()
            .take(MAX_BATCH.saturating_sub(batch.len())),
    );
    (batch, false)
}

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

/// What is held back while the database is unreachable: counted for the
/// status page and `/metrics`.
#[derive(Debug, Default)]
pub struct Buffered {
    /// Events waiting for the database.
    pub depth: AtomicU64,
    /// Events given up because the buffer was full (oldest first).
    pub dropped: AtomicU64,
}

/// Events not yet written because the database was down, oldest first.
#[derive(Default)]
struct Backlog {
    queries: VecDeque<Box<QueryEvent>>,
    feedback: VecDeque<FeedbackEvent>,
    sessions: VecDeque<SessionRow>,
    votes: VecDeque<VoteRow>,
}

impl Backlog {
    fn len(&self) -> usize {
        self.queries.len() + self.feedback.len() + self.sessions.len() + self.votes.len()
    }

    /// Drops the oldest events until at most `capacity` remain; how many
    /// went. Queries go first: a customer's feedback and timeline matter
    /// more to the next answer than one search's record.
    fn trim(&mut self, capacity: usize) -> u64 {
        let mut dropped = 0;
        while self.len() > capacity {
            let gone = self.queries.pop_front().is_some()
                || self.feedback.pop_front().is_some()
                || self.sessions.pop_front().is_some()
                || self.votes.pop_front().is_some();
            if !gone {
                break;
            }
            dropped += 1;
        }
        dropped
    }
}

pub struct Writer {
    store: Arc<dyn Store>,
    retention: Duration,
    /// Autocomplete events waiting for their typing burst to end, by burst key.
    bursts: HashMap<String, (Instant, Box<QueryEvent>)>,
    last_prune: Option<Instant>,
    backlog: Backlog,
    capacity: usize,
    buffered: Arc<Buffered>,
}

impl Writer {
    pub fn new(store: Arc<dyn Store>, retention: Duration) -> Self {
        Self::buffering(
            store,
            retention,
            crate::config::DEFAULT_BUFFER_EVENTS,
            Arc::default(),
        )
    }

    /// A writer that holds up to `capacity` events while the database is
    /// unreachable, and writes them (in order) once it answers again.
    pub fn buffering(
        store: Arc<dyn Store>,
        retention: Duration,
        capacity: usize,
        buffered: Arc<Buffered>,
    ) -> Self {
        Writer {
            store,
            retention,
            bursts: HashMap::new(),
            last_prune: None,
            backlog: Backlog::default(),
            capacity,
            buffered,
        }
    }

    pub fn run(mut self, messages: Receiver<Message>) {
        loop {
            let first = match messages.recv_timeout(Duration::from_millis(500)) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let (batch, disconnected) = match first {
                Some(first) => collect_batch(first, &messages),
                None => (Vec::new(), false),
            };
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
            if disconnected {
                break;
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
        // Earlier events held back while the database was down go first.
        let backlog = std::mem::take(&mut self.backlog);
        let queries: Vec<Box<QueryEvent>> = backlog.queries.into_iter().chain(queries).collect();
        let feedback: Vec<FeedbackEvent> = backlog.feedback.into_iter().chain(feedback).collect();
        let session_rows: Vec<SessionRow> =
            backlog.sessions.into_iter().chain(session_rows).collect();
        let votes: Vec<VoteRow> = backlog.votes.into_iter().chain(votes).collect();
        let written = self.store.write_events(&EventBatch {
            queries: &queries,
            feedback: &feedback,
            sessions: &session_rows,
            votes: &votes,
        });
        match written {
            Err(error) if error.is_unavailable() => {
                self.backlog = Backlog {
                    queries: queries.into(),
                    feedback: feedback.into(),
                    sessions: session_rows.into(),
                    votes: votes.into(),
                };
                let dropped = self.backlog.trim(self.capacity);
                self.buffered.dropped.fetch_add(dropped, Ordering::Relaxed);
                self.buffered
                    .depth
                    .store(self.backlog.len() as u64, Ordering::Relaxed);
                // A flush must not wait for the database: what it asked
                // for is as written as it can be.
                for reply in flushed {
                    let _ = reply.send(());
                }
                return Ok(());
            }
            Err(error) => {
                self.buffered.depth.store(0, Ordering::Relaxed);
                for reply in flushed {
                    let _ = reply.send(());
                }
                return Err(error.into());
            }
            Ok(()) => self.buffered.depth.store(0, Ordering::Relaxed),
        }
        for (events_before, votes_before) in prunes {
            let deleted = self.store.prune_sessions(events_before, votes_before)?;
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
        Ok(self.store.prune_events(cutoff)?)
    }
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
            auto_reply: false,
        })
    }

    #[test]
    fn retention_prunes_old_events_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::sqlite::SqliteStore::open(dir.path()).unwrap());
        let day = 24 * 3600 * 1000;
        let now = 1_000 * day;
        let mut writer = Writer::new(store.clone(), Duration::from_secs(90 * 24 * 3600));
        let (reply, _) = std::sync::mpsc::channel();
        writer
            .apply(vec![
                Message::Query(event("old", now - 91 * day)),
                Message::Query(event("recent", now - 89 * day)),
                Message::Flush(reply),
            ])
            .unwrap();
        assert_eq!(writer.prune(now).unwrap(), 1);
        assert!(store.knows_query("recent").unwrap());
        assert!(!store.knows_query("old").unwrap());
    }
}
