//! Everything rapport keeps besides the index, behind one trait: analytics
//! events and session timelines (written in batches by the analytics
//! thread), the reports over them, hand-offs, the webhook outbox written
//! with them, and customers' ratings.
//!
//! One trait, so a PostgreSQL backend (replicas) is one more implementation
//! rather than a rewrite. SQLite is the default ([`sqlite::SqliteStore`]):
//! WAL, one file in `--data-dir`, so a hand-off's session and its record
//! live side by side.
//!
//! Every state change that emits an event writes that event to the outbox in
//! the same transaction ([`RenderEvent`]): a crash either loses both or
//! neither, and the delivery worker finds whatever was committed.

pub mod migrate;
pub mod postgres;
pub mod sqlite;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::analytics::reports::{ArticleStats, QueryCount, QueryReportKind, Summary, Window};
use crate::analytics::store::{SessionRow, VoteRow};
use crate::analytics::{FeedbackEvent, QueryEvent};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database folder {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stored value not understood: {0}")]
    Corrupt(String),
    /// PostgreSQL answered with an error (a constraint, a bad statement).
    #[error("database: {0}")]
    Postgres(String),
    /// The database cannot be reached (down, restarting, the network, the
    /// pool's wait timed out): worth retrying later, never the caller's fault.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(
        "the database schema is at version {found}, newer than this rapport understands \
         (up to {known}): upgrade rapport before starting it against this database"
    )]
    SchemaTooNew { found: i64, known: i64 },
}

impl StoreError {
    /// The database is down or unreachable (as opposed to a bad request or
    /// a bug): callers degrade or answer 503 with `Retry-After`.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HandoffStatus {
    /// Created, no agent yet.
    Waiting,
    Claimed,
    Closed,
}

impl HandoffStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffStatus::Waiting => "waiting",
            HandoffStatus::Claimed => "claimed",
            HandoffStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "waiting" => Some(HandoffStatus::Waiting),
            "claimed" => Some(HandoffStatus::Claimed),
            "closed" => Some(HandoffStatus::Closed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Solved,
    NotSolved,
    Duplicate,
    Spam,
}

impl Resolution {
    pub const ALL: [Resolution; 4] = [
        Resolution::Solved,
        Resolution::NotSolved,
        Resolution::Duplicate,
        Resolution::Spam,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Solved => "solved",
            Resolution::NotSolved => "not_solved",
            Resolution::Duplicate => "duplicate",
            Resolution::Spam => "spam",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Resolution::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// How the customer asked to be reached, exactly as given (validated, not
/// normalised), forgotten with the session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Contact {
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HandoffRecord {
    pub id: String,
    /// The keyed hash the session timelines are stored under.
    pub session_hash: String,
    /// The id the channel sent; `None` once the session has been forgotten.
    pub session_id: Option<String>,
    pub status: HandoffStatus,
    pub created_ms: i64,
    pub claimed_ms: Option<i64>,
    /// The claiming key's label.
    pub claimed_by: Option<String>,
    pub closed_ms: Option<i64>,
    pub resolution: Option<Resolution>,
    pub note: Option<String>,
    pub contact: Option<Contact>,
    pub message: Option<String>,
    /// Hand-off reason codes the session had when the customer asked.
    pub reasons: Vec<String>,
    /// Where the customer was when they asked (`chat`, `portal`, `email`,
    /// `form`, `social`); `None` for hand-offs stored before channels were.
    pub channel: Option<String>,
}

pub struct NewHandoff {
    pub id: String,
    pub session_hash: String,
    pub session_id: String,
    pub at_ms: i64,
    pub contact: Option<Contact>,
    pub message: Option<String>,
    pub reasons: Vec<String>,
    /// See [`HandoffRecord::channel`].
    pub channel: Option<String>,
}

/// The result of a claim or close.
#[derive(Debug)]
pub enum Transition {
    Done(HandoffRecord),
    /// Not allowed from the record's current state (claimed by someone else,
    /// already closed); the record as it is.
    Conflict(HandoffRecord),
    NotFound,
}

/// An event to deliver, rendered inside the transaction from the record as
/// it is after the change (so the body is what the change produced, and is
/// the same bytes on every retry).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxDraft {
    pub delivery_id: String,
    pub event: String,
    pub body: String,
}

/// Renders the event for a state change; `None` when nothing is delivered
/// (no webhook configured).
pub type RenderEvent<'a> = &'a (dyn Fn(&HandoffRecord) -> Option<OutboxDraft> + Sync);

#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub seq: i64,
    pub delivery_id: String,
    pub event: String,
    pub body: String,
    pub created_ms: i64,
    /// Attempts made before this one.
    pub attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; tried again later.
    Retry,
    /// Failed for good (a 4xx other than 429, or 24 hours of failures).
    Dead,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry => "retry",
            AttemptOutcome::Dead => "dead",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "delivered" => Some(AttemptOutcome::Delivered),
            "retry" => Some(AttemptOutcome::Retry),
            "dead" => Some(AttemptOutcome::Dead),
            _ => None,
        }
    }
}

/// One delivery attempt, as recorded.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at_ms: i64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub outcome: AttemptOutcome,
    /// When to try again (`Retry` only).
    pub next_attempt_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub delivery_id: String,
    pub event: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub result: Attempt,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Events not delivered yet (the outbox depth).
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    /// Failed attempts that were retried.
    pub retried: u64,
}

#[derive(Debug, Clone)]
pub struct Rating {
    pub session_hash: String,
    pub score: u8,
    pub comment: Option<String>,
    pub at_ms: i64,
}

/// Hand-offs created in a period, for the analytics summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HandoffStats {
    pub created: u64,
    pub claimed: u64,
    pub closed: BTreeMap<Resolution, u64>,
    /// Never claimed, and waiting longer than the abandon time (or closed
    /// without ever being claimed).
    pub abandoned: u64,
    /// Created → claimed, for the claimed ones.
    pub waits_ms: Vec<i64>,
    /// Sessions (hashes) that asked for a person.
    pub sessions: Vec<String>,
}

impl PartialOrd for Resolution {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Resolution {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// How often one wording showed a content gap on one UTC day. A query can
/// count under more than one kind (an answer with no result that was handed
/// off), so `count` is the queries, not the sum of the kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapCount {
    /// As stored: normalised and redacted.
    pub query: String,
    /// Days since the Unix epoch (UTC): integer division, the same in any SQL.
    pub day: i64,
    pub count: u64,
    /// No result, on any channel.
    pub no_results: u64,
    /// Portal searches with results and no click.
    pub no_click: u64,
    /// Bot answers voted not helpful, with a hand-off recommended, or whose
    /// session then asked for a person.
    pub not_helpful_or_handoff: u64,
}

/// One channel's questions and hand-offs in a window: the raw material of
/// the summary's per-channel figures (see
/// [`crate::analytics::reports::ChannelFigures`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelActivity {
    /// Questions received on the channel.
    pub messages: u64,
    /// Questions given an answer without a hand-off recommended.
    pub answered: u64,
    /// Messages whose reply went out without an agent.
    pub auto_replied: u64,
    /// Hand-offs created in the window with this channel.
    pub handed_off: u64,
    /// Created → claimed, for those of them claimed.
    pub first_response_ms: Vec<i64>,
    /// Created → closed, for those of them closed.
    pub resolution_ms: Vec<i64>,
}

/// What erasing one customer removed (`DELETE /api/v1/customers/{id}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Erased {
    /// Sessions of the customer (each with all its timeline rows).
    pub sessions: u64,
    pub session_events: u64,
    /// Analytics queries asked in those sessions.
    pub queries: u64,
    /// Feedback on those queries.
    pub feedback: u64,
    /// The customer's remembered votes on articles.
    pub votes: u64,
    /// Hand-offs of those sessions.
    pub handoffs: u64,
    /// Ratings of those sessions.
    pub ratings: u64,
    /// Webhook events about those hand-offs: deleted while pending, their
    /// bodies removed once delivered or dead.
    pub outbox_events: u64,
}

/// The store the settings name: PostgreSQL at `database_url` (connected,
/// migrated under the advisory lock, refused if its schema is newer than
/// this build), else SQLite in `data_dir`.
pub fn open(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
) -> Result<Arc<dyn Store>, StoreError> {
    match database_url {
        Some(url) => {
            let store = postgres::PgStore::open(url)?;
            tracing::info!(
                database = store.target(),
                encrypted = store.encrypted()?,
                certificate_checked = store.verifies_server(),
                "state in PostgreSQL, shared by replicas"
            );
            Ok(Arc::new(store))
        }
        None => Ok(Arc::new(sqlite::SqliteStore::open(data_dir)?)),
    }
}

/// A dashboard sign-in as stored: the id only as a hash (the cookie's
/// value is never stored), so replicas share sessions and no dump of the
/// store yields a working cookie.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminSessionRow {
    /// Hex BLAKE3 of the session id.
    pub id_hash: String,
    pub csrf: String,
    pub admin: Option<String>,
    pub created_ms: i64,
    pub last_seen_ms: i64,
}

impl std::fmt::Debug for AdminSessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSessionRow")
            .field("admin", &self.admin)
            .field("created_ms", &self.created_ms)
            .field("last_seen_ms", &self.last_seen_ms)
            .finish_non_exhaustive()
    }
}

/// Whether the database answers, as the status page and metrics show it.
#[derive(Debug, Default)]
pub struct Health {
    down: AtomicBool,
    /// Times the database came back after being down.
    reconnects: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Health {
    pub fn is_up(&self) -> bool {
        !self.down.load(Ordering::Acquire)
    }

    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn mark_down(&self, error: &str) {
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(%error, "database unavailable; retrying in the background");
        }
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
    }

    pub(crate) fn mark_up(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!("database reachable again");
        }
    }
}

/// One batch of analytics events, written in one transaction.
#[derive(Default)]
pub struct EventBatch<'a> {
    pub queries: &'a [Box<QueryEvent>],
    pub feedback: &'a [FeedbackEvent],
    /// Session timeline entries.
    pub sessions: &'a [SessionRow],
    /// Customers' latest votes (each replaces the previous one).
    pub votes: &'a [VoteRow],
}

impl EventBatch<'_> {
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
            && self.feedback.is_empty()
            && self.sessions.is_empty()
            && self.votes.is_empty()
    }
}

/// Everything rapport stores. Methods block (call them off the async runtime).
pub trait Store: Send + Sync {
    // Analytics events and session timelines.

    fn write_events(&self, batch: &EventBatch<'_>) -> Result<(), StoreError>;
    /// Deletes queries and feedback older than `before_ms`.
    fn prune_events(&self, before_ms: i64) -> Result<usize, StoreError>;
    /// Deletes session events and customer votes older than these.
    fn prune_sessions(&self, events_before: i64, votes_before: i64) -> Result<usize, StoreError>;
    fn knows_query(&self, query_id: &str) -> Result<bool, StoreError>;
    /// Session hashes with an event since `since_ms`.
    fn stored_sessions(&self, since_ms: i64) -> Result<HashSet<String>, StoreError>;
    /// Sessions with an event of this customer since `since_ms`, most
    /// recently active first (one customer across channels).
    fn customer_sessions(
        &self,
        customer_hash: &str,
        since_ms: i64,
    ) -> Result<Vec<String>, StoreError>;
    /// One session's events since `since_ms`, oldest first.
    fn session_rows(
        &self,
        session_hash: &str,
        since_ms: i64,
    ) -> Result<Vec<SessionRow>, StoreError>;
    /// The session a query was asked in.
    fn session_of_query(&self, query_id: &str) -> Result<Option<String>, StoreError>;
    fn customer_votes(&self, since_ms: i64) -> Result<Vec<VoteRow>, StoreError>;
    /// One customer's votes since `since_ms` (replicas read them on every
    /// answer instead of keeping every customer in memory).
    fn customer_votes_of(
        &self,
        customer_hash: &str,
        since_ms: i64,
    ) -> Result<Vec<VoteRow>, StoreError>;

    // Reports over the events.

    /// The summary's counts from the events (what people did is added by
    /// [`crate::analytics::reports::summary`]).
    fn event_summary(&self, window: &Window) -> Result<Summary, StoreError>;
    fn query_counts(
        &self,
        window: &Window,
        kind: QueryReportKind,
        limit: usize,
    ) -> Result<Vec<QueryCount>, StoreError>;
    fn article_stats(&self, window: &Window) -> Result<BTreeMap<String, ArticleStats>, StoreError>;
    /// (positive, negative) feedback per article, over everything retained.
    fn feedback_totals(&self) -> Result<BTreeMap<String, (u64, u64)>, StoreError>;
    /// Each session with a query in the window, and whether it asked the
    /// same question again.
    fn session_outcomes(&self, window: &Window) -> Result<Vec<(String, bool)>, StoreError>;
    /// Queries in the window that showed a content gap (see [`GapCount`]),
    /// by wording and day, with the empty query left out.
    fn gap_counts(&self, window: &Window) -> Result<Vec<GapCount>, StoreError>;
    /// Per article: hand-offs created in the window whose session was shown
    /// the article (in results or an answer) before asking for a person.
    /// The channel filter applies to the queries that showed it.
    fn shown_before_handoff(&self, window: &Window) -> Result<BTreeMap<String, u64>, StoreError>;
    /// Per channel (`chat` for bot questions, `email`, `form`, `social`,
    /// `portal` for hand-offs from search-only sessions): questions and
    /// hand-offs in the window. A `channel` filter keeps the matching one
    /// (`answer` → `chat`, `search`/`autocomplete` → `portal`).
    fn channel_activity(
        &self,
        window: &Window,
    ) -> Result<BTreeMap<String, ChannelActivity>, StoreError>;

    // Hand-offs, the outbox and ratings.

    /// Creates a hand-off, or returns the session's open one (`false`).
    fn create_handoff(
        &self,
        new: NewHandoff,
        render: RenderEvent<'_>,
    ) -> Result<(HandoffRecord, bool), StoreError>;
    fn handoff(&self, id: &str) -> Result<Option<HandoffRecord>, StoreError>;
    /// The session's most recent hand-off.
    fn session_handoff(&self, session_hash: &str) -> Result<Option<HandoffRecord>, StoreError>;
    /// Oldest first; `None`: every status.
    fn handoffs(
        &self,
        status: Option<HandoffStatus>,
        limit: usize,
    ) -> Result<Vec<HandoffRecord>, StoreError>;
    /// 1 for the oldest waiting hand-off; `None` unless waiting.
    fn position(&self, record: &HandoffRecord) -> Result<Option<u64>, StoreError>;
    /// waiting → claimed, atomically: of two agents claiming at once exactly one wins.
    fn claim(
        &self,
        id: &str,
        agent: &str,
        at_ms: i64,
        render: RenderEvent<'_>,
    ) -> Result<Transition, StoreError>;
    /// waiting or claimed → closed.
    fn close(
        &self,
        id: &str,
        resolution: Resolution,
        note: Option<String>,
        at_ms: i64,
        render: RenderEvent<'_>,
    ) -> Result<Transition, StoreError>;
    /// Created → claimed durations of hand-offs claimed since `since_ms`.
    fn claim_waits(&self, since_ms: i64) -> Result<Vec<i64>, StoreError>;
    /// Hand-offs created in `[since_ms, until_ms)`.
    fn handoff_stats(
        &self,
        since_ms: i64,
        until_ms: i64,
        abandoned_before_ms: i64,
    ) -> Result<HandoffStats, StoreError>;
    /// Hand-offs created in `[since_ms, until_ms)`, oldest first.
    fn handoffs_created(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<HandoffRecord>, StoreError>;
    /// Stores the session's rating; `true` when it replaced an earlier one.
    fn rate(&self, rating: Rating) -> Result<bool, StoreError>;
    /// Scores given in `[since_ms, until_ms)`.
    fn ratings(&self, since_ms: i64, until_ms: i64) -> Result<Vec<u8>, StoreError>;
    /// Forgets what identifies a customer (contact, message, session id,
    /// comments, delivered bodies) for hand-offs and ratings not touched
    /// since `before_ms`: the session timelines' retention.
    fn forget_sessions(&self, before_ms: i64) -> Result<usize, StoreError>;
    /// Erases everything stored about one customer, in one transaction: every
    /// session with a timeline row carrying `customer_hash` (plus
    /// `live_sessions`, the customer's sessions the caller knows of, which
    /// may exist only in memory when analytics are off), those sessions'
    /// queries and their feedback, hand-offs and ratings, what the outbox
    /// holds about those hand-offs, and the customer's votes. Erasing again
    /// removes nothing and is not an error.
    fn erase_customer(
        &self,
        customer_hash: &str,
        live_sessions: &[String],
    ) -> Result<Erased, StoreError>;
    /// Pending events due by `now_ms`, in the order they were written,
    /// stopping at the first that is not due (events are delivered in
    /// order), leased to the caller until `lease_until_ms`: no other
    /// worker (on any replica) is given them before the lease ends or
    /// [`Store::record_attempt`] settles them, and a dead worker's lease
    /// simply runs out.
    fn due_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError>;
    /// When the next pending event is due.
    fn next_due(&self) -> Result<Option<i64>, StoreError>;
    fn record_attempt(&self, item: &OutboxItem, attempt: &Attempt) -> Result<(), StoreError>;
    /// Most recent attempts first.
    fn deliveries(&self, limit: usize) -> Result<Vec<DeliveryRecord>, StoreError>;
    fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;

    // Dashboard sign-ins.

    fn put_admin_session(&self, session: &AdminSessionRow) -> Result<(), StoreError>;
    fn admin_session(&self, id_hash: &str) -> Result<Option<AdminSessionRow>, StoreError>;
    /// Marks the session used at `at_ms`; `false` when there is none.
    fn touch_admin_session(&self, id_hash: &str, at_ms: i64) -> Result<bool, StoreError>;
    /// `true` when there was one.
    fn delete_admin_session(&self, id_hash: &str) -> Result<bool, StoreError>;
    /// Deletes sessions idle since before `idle_before_ms`, then the least
    /// recently used beyond `keep`.
    fn prune_admin_sessions(&self, idle_before_ms: i64, keep: usize) -> Result<usize, StoreError>;

    // Running beside other replicas.

    /// Whether other processes share this store (PostgreSQL): then what a
    /// replica holds in memory is only a cache, and state is read back
    /// from the store when it matters.
    fn is_shared(&self) -> bool {
        false
    }
    /// A cheap round trip, for the health check.
    fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Tells every replica listening (see [`Store::listen`]) about a
    /// change; a no-op where nothing else shares the store.
    fn publish(&self, _payload: &str) -> Result<(), StoreError> {
        Ok(())
    }
    /// Calls `on_message` with each payload [`Store::publish`]ed by any
    /// replica (this one included), from a background task that
    /// reconnects by itself. A no-op where nothing else shares the store.
    fn listen(&self, _on_message: Box<dyn Fn(String) + Send + Sync>) -> Result<(), StoreError> {
        Ok(())
    }
    /// The salt of session and customer hashes: `proposed` (this data
    /// folder's) where nothing else shares the store; the first replica's,
    /// kept in the store, where replicas do, so a session id hashes the
    /// same on all of them.
    fn shared_salt(&self, proposed: &str) -> Result<String, StoreError> {
        Ok(proposed.to_string())
    }
    /// Whether the database answers; `None` for an embedded one, which
    /// is up whenever the process is.
    fn health(&self) -> Option<Arc<Health>> {
        None
    }
    /// The schema version applied and the newest this build knows.
    fn schema_status(&self) -> Result<migrate::SchemaStatus, StoreError>;
}
