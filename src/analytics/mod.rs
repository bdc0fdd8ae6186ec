//! Search analytics: every search, autocomplete burst, answer and suggestion
//! is recorded with what happened next (clicks, votes, resolutions,
//! hand-offs), in an embedded SQLite file, and turned into reports.
//!
//! Recording never blocks a customer: events go through a bounded channel to
//! one writer thread; when the channel is full they are dropped and counted.
//!
//! What is stored: time, channel, the query normalised and redacted (no
//! e-mails, phone or card numbers, long digit runs), filters/context, result
//! count, top article ids, confidence and hand-off reasons, latency, and the
//! session id only as a salted hash. Events older than the retention period
//! (90 days by default) are deleted.

pub mod csv;
pub mod dashboard;
pub mod redact;
pub mod reports;
pub mod store;

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use self::store::{Message, Writer};
use crate::store::Store;

const QUEUE_CAPACITY: usize = 10_000;
/// How often replicas sharing a store recompute feedback boosts from it
/// (other replicas' feedback arrives nowhere else).
const SHARED_BOOSTS_EVERY: Duration = Duration::from_secs(10);
/// Query ids remembered in memory, so feedback right after a search is
/// accepted before the event reaches disk.
const RECENT_QUERY_IDS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error("analytics database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("analytics folder {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Search,
    Autocomplete,
    Answer,
    Suggest,
    /// Inbound messages (`POST /api/v1/messages`), by the channel they came from.
    Email,
    Form,
    Social,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Search => "search",
            Channel::Autocomplete => "autocomplete",
            Channel::Answer => "answer",
            Channel::Suggest => "suggest",
            Channel::Email => "email",
            Channel::Form => "form",
            Channel::Social => "social",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    Click,
    Helpful,
    NotHelpful,
    Resolved,
    Handoff,
    UsedInReply,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Click => "click",
            FeedbackKind::Helpful => "helpful",
            FeedbackKind::NotHelpful => "not_helpful",
            FeedbackKind::Resolved => "resolved",
            FeedbackKind::Handoff => "handoff",
            FeedbackKind::UsedInReply => "used_in_reply",
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueryEvent {
    pub query_id: String,
    pub at_ms: i64,
    pub channel: Channel,
    /// Normalised and redacted.
    pub query: String,
    pub filters: serde_json::Value,
    pub result_count: u64,
    pub top_ids: Vec<String>,
    pub confidence: Option<f32>,
    pub handoff_reasons: Vec<String>,
    pub latency_ms: f64,
    pub session_hash: Option<String>,
    /// Autocomplete only: keystrokes with the same key form one typing burst,
    /// of which only the last query is stored.
    pub burst_key: Option<String>,
    /// Messages only: the reply was allowed to go out without an agent.
    pub auto_reply: bool,
}

#[derive(Debug, Clone)]
pub struct FeedbackEvent {
    pub query_id: String,
    pub article_id: String,
    pub event: FeedbackKind,
    pub comment: Option<String>,
    pub at_ms: i64,
}

/// The first 128 bits of a keyed BLAKE3 hash of `domain` and `id`, as hex.
pub fn keyed_hash(key: &[u8; 32], domain: &str, id: &str) -> String {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(domain.as_bytes());
    hasher.update(b"\0");
    hasher.update(id.as_bytes());
    hasher.finalize().to_hex()[..32].to_string()
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Wall-clock milliseconds for the session timelines, which a test can move
/// forward: retention is counted in days, and tests must not sleep for days.
/// In a server nothing ever advances it, so it is [`now_ms`].
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }
}

/// The handle the HTTP channels record through.
pub struct Analytics {
    sender: SyncSender<Message>,
    dropped: AtomicU64,
    recorded: AtomicU64,
    recent: Mutex<(VecDeque<String>, HashSet<String>)>,
    store: std::sync::Arc<dyn Store>,
    salt: String,
    feedback_changed: AtomicBool,
    buffered: std::sync::Arc<store::Buffered>,
}

impl Analytics {
    /// Keeps the session-hash salt in `data_dir` and starts the writer
    /// thread, which writes through `store`.
    pub fn open(
        data_dir: &Path,
        retention: Duration,
        store: std::sync::Arc<dyn Store>,
    ) -> Result<Self, AnalyticsError> {
        Self::open_buffering(
            data_dir,
            retention,
            store,
            crate::config::DEFAULT_BUFFER_EVENTS,
        )
    }

    /// [`Analytics::open`], holding up to `buffer_events` events in memory
    /// while the database cannot be reached. With a shared store the salt
    /// of session and customer hashes is the store's, so every replica
    /// hashes a session id the same way.
    pub fn open_buffering(
        data_dir: &Path,
        retention: Duration,
        store: std::sync::Arc<dyn Store>,
        buffer_events: usize,
    ) -> Result<Self, AnalyticsError> {
        let io = |source| AnalyticsError::Io {
            path: data_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let salt_path = data_dir.join("session-salt");
        let salt = match std::fs::read_to_string(&salt_path) {
            Ok(salt) if !salt.trim().is_empty() => salt.trim().to_string(),
            _ => {
                let salt = uuid::Uuid::new_v4().to_string();
                std::fs::write(&salt_path, &salt).map_err(io)?;
                salt
            }
        };
        let salt = store.shared_salt(&salt)?;
        let buffered = std::sync::Arc::new(store::Buffered::default());
        let writer = Writer::buffering(store.clone(), retention, buffer_events, buffered.clone());
        let (sender, receiver) = sync_channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("rapport-analytics".into())
            .spawn(move || writer.run(receiver))
            .map_err(io)?;
        Ok(Analytics {
            sender,
            dropped: AtomicU64::new(0),
            recorded: AtomicU64::new(0),
            recent: Mutex::new((VecDeque::new(), HashSet::new())),
            store,
            salt,
            feedback_changed: AtomicBool::new(true),
            buffered,
        })
    }

    /// Events waiting for the database, and those dropped because that
    /// buffer was full.
    pub fn buffered(&self) -> (u64, u64) {
        (
            self.buffered.depth.load(Ordering::Relaxed),
            self.buffered.dropped.load(Ordering::Relaxed),
        )
    }

    /// Where events are written and reports read.
    pub fn store(&self) -> &std::sync::Arc<dyn Store> {
        &self.store
    }

    /// Events dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    /// The same keyed hash the session timelines and hand-offs use
    /// ([`crate::handoff::timeline::SessionLog::hash_session`]), so reports
    /// can join a session's queries to its hand-off.
    pub fn hash_session(&self, session_id: &str) -> String {
        keyed_hash(&self.id_key(), "session", session_id)
    }

    pub fn record_query(&self, event: QueryEvent) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            let (order, ids) = &mut *recent;
            if ids.insert(event.query_id.clone()) {
                order.push_back(event.query_id.clone());
            }
            while order.len() > RECENT_QUERY_IDS {
                if let Some(old) = order.pop_front() {
                    ids.remove(&old);
                }
            }
        }
        self.send(Message::Query(Box::new(event)));
    }

    /// A 32-byte key for keyed hashes of session and customer ids, derived
    /// from this database's salt (so hashes stay stable across restarts but
    /// mean nothing without the data folder).
    pub fn id_key(&self) -> [u8; 32] {
        blake3::derive_key(
            "rapport 2026 session and customer ids",
            self.salt.as_bytes(),
        )
    }

    /// Queues a session timeline entry (batched like every other event).
    pub fn record_session_event(&self, row: store::SessionRow) {
        self.send(Message::SessionEvent(row));
    }

    pub fn record_customer_vote(&self, row: store::VoteRow) {
        self.send(Message::CustomerVote(row));
    }

    /// Asks the writer to delete session events and votes older than these.
    pub fn prune_sessions(&self, events_before: i64, votes_before: i64) {
        self.send(Message::PruneSessions {
            events_before,
            votes_before,
        });
    }

    pub fn record_feedback(&self, event: FeedbackEvent) {
        self.send(Message::Feedback(event));
        self.feedback_changed.store(true, Ordering::Release);
    }

    /// Keeps `boosts` in step with the stored feedback (checked every second,
    /// recomputed only after new feedback). Stops when the server drops its
    /// analytics handle.
    pub fn keep_ranking_boosts(
        analytics: &std::sync::Arc<Analytics>,
        boosts: std::sync::Arc<crate::search::feedback::FeedbackBoosts>,
    ) {
        let weak = std::sync::Arc::downgrade(analytics);
        let spawned = std::thread::Builder::new()
            .name("rapport-feedback".into())
            .spawn(move || {
                let mut last = std::time::Instant::now();
                while let Some(analytics) = weak.upgrade() {
                    // Replicas see each other's feedback only in the store.
                    let shared_due =
                        analytics.store.is_shared() && last.elapsed() >= SHARED_BOOSTS_EVERY;
                    if analytics.feedback_changed.swap(false, Ordering::AcqRel) || shared_due {
                        last = std::time::Instant::now();
                        analytics.flush();
                        match analytics.store.feedback_totals() {
                            Ok(totals) => boosts.publish(
                                totals
                                    .into_iter()
                                    .map(|(id, (positive, negative))| {
                                        (id, crate::search::feedback::factor(positive, negative))
                                    })
                                    .filter(|(_, factor)| (*factor - 1.0).abs() > 1e-4)
                                    .collect(),
                            ),
                            Err(error) => {
                                // Keep the boosts we have; try again later.
                                analytics.feedback_changed.store(true, Ordering::Release);
                                if !error.is_unavailable() {
                                    tracing::warn!(%error, "cannot read feedback for ranking")
                                }
                            }
                        }
                    }
                    drop(analytics);
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "feedback ranking disabled: cannot start its thread");
        }
    }

    fn send(&self, message: Message) {
        match self.sender.try_send(message) {
            Ok(()) => {
                self.recorded.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether a query id was issued by this server (recently, or on disk).
    pub fn knows_query(&self, query_id: &str) -> Result<bool, AnalyticsError> {
        {
            let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.1.contains(query_id) {
                return Ok(true);
            }
        }
        match self.store.knows_query(query_id) {
            // The database is down: take the feedback (it waits in the
            // buffer with everything else) rather than lose it.
            Err(error) if error.is_unavailable() => Ok(true),
            other => Ok(other?),
        }
    }

    /// Waits until everything recorded so far is on disk (reports call this
    /// so their numbers include the latest traffic).
    pub fn flush(&self) {
        let (reply, done) = std::sync::mpsc::channel();
        // A blocking send: a flush must not be dropped.
        if self.sender.send(Message::Flush(reply)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(10));
        }
    }
}
