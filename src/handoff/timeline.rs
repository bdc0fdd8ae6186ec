//! Session timelines for the hand-off: what the customer asked (redacted),
//! what they were shown and with what confidence, their feedback, their tone
//! and every hand-off reason, so the agent who takes over starts where the
//! bot left off and never offers what already failed.
//!
//! # Design: memory is authoritative for the live window, SQLite for history
//! The answer path must not wait for a disk write, yet a `not_helpful` vote
//! has to change the very next answer in the same session. So every event is
//! applied to an in-memory map *synchronously* (a mutex held for microseconds)
//! and, when analytics are on, also queued to the analytics writer thread,
//! which stores it in the same SQLite database in batched transactions
//! (`session_events`, `customer_votes`). Reads go to memory; a session that
//! is on disk but not in memory (after a restart, or evicted when memory is
//! full) is loaded from SQLite once, on first use. Which sessions those are
//! is known from a set of hashes loaded at start-up, so a brand-new session
//! never costs a database read. Customers' votes (kept longer than sessions,
//! for the `not_helpful` window) are loaded into memory at start-up too.
//!
//! With analytics off the same map is the only copy, with the same retention.
//!
//! Session and customer ids are kept only as keyed blake3 hashes (the key is
//! derived from the analytics salt, or random per process when analytics are
//! off). Question text is redacted like analytics queries before it is kept.
//! Events older than the retention period are dropped from memory and the
//! database by a sweep that runs at most once a minute (on use, and from a
//! background thread so an idle server prunes too).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HandoffReason;
use super::tone::Tone;
use crate::analytics::store::{SessionRow, VoteRow};
use crate::analytics::{Analytics, AnalyticsError, Clock, FeedbackKind};
use crate::store::{EventBatch, Store};

/// Sessions kept in memory at most; beyond this the least recently active
/// tenth is evicted (to SQLite when analytics are on, else forgotten).
const MAX_SESSIONS: usize = 100_000;
/// Events kept per session; the oldest go first.
const MAX_EVENTS: usize = 500;
/// Query ids remembered for feedback (feedback names a query, not a session).
const MAX_QUERY_IDS: usize = 200_000;
/// Customers whose votes are kept in memory at most.
const MAX_CUSTOMERS: usize = 1_000_000;
/// Questions are stored redacted and cut to this many characters.
const MAX_QUESTION_CHARS: usize = 500;
const SWEEP_EVERY_MS: i64 = 60_000;

/// Which channel a question came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TurnChannel {
    Answer,
    Search,
    /// Inbound messages: the thread is the session.
    Email,
    Form,
    Social,
}

/// An article put in front of the customer, with the confidence the bot had
/// in it (`null` for search results, which have no confidence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShownArticle {
    pub article_id: String,
    pub title: String,
    /// The section the answer came from, if any.
    pub section: Option<String>,
    pub confidence: Option<f32>,
}

/// One timeline entry, as kept in memory and stored (JSON) in SQLite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionEvent {
    Question {
        at_ms: i64,
        query_id: String,
        channel: TurnChannel,
        /// Redacted (no e-mails, phone or card numbers, long digit runs).
        text: String,
        tone: Tone,
        handoff_reasons: Vec<HandoffReason>,
        shown: Vec<ShownArticle>,
    },
    Feedback {
        at_ms: i64,
        query_id: String,
        article_id: String,
        title: String,
        event: FeedbackKind,
    },
}

impl SessionEvent {
    pub fn at_ms(&self) -> i64 {
        match self {
            SessionEvent::Question { at_ms, .. } | SessionEvent::Feedback { at_ms, .. } => *at_ms,
        }
    }

    fn query_id(&self) -> &str {
        match self {
            SessionEvent::Question { query_id, .. } | SessionEvent::Feedback { query_id, .. } => {
                query_id
            }
        }
    }
}

/// A question as the handler knows it, before redaction.
pub struct QuestionRecord<'a> {
    pub query_id: &'a str,
    pub channel: TurnChannel,
    pub text: &'a str,
    pub tone: Tone,
    pub handoff_reasons: Vec<HandoffReason>,
    pub shown: Vec<ShownArticle>,
}

/// Whether feedback counts for or against an article. `resolved` counts as
/// helpful; other kinds (clicks, agent use) are not the customer's verdict.
pub fn verdict(event: FeedbackKind) -> Option<bool> {
    match event {
        FeedbackKind::Helpful | FeedbackKind::Resolved => Some(true),
        FeedbackKind::NotHelpful => Some(false),
        _ => None,
    }
}

/// Each article's latest verdict in a session (a later "helpful" overrides an
/// earlier "not helpful", and the reverse).
pub fn latest_verdicts(events: &[SessionEvent]) -> HashMap<&str, bool> {
    let mut verdicts = HashMap::new();
    for event in events {
        if let SessionEvent::Feedback {
            article_id, event, ..
        } = event
            && let Some(helpful) = verdict(*event)
        {
            verdicts.insert(article_id.as_str(), helpful);
        }
    }
    verdicts
}

#[derive(Default)]
struct Live {
    events: VecDeque<SessionEvent>,
    customer: Option<String>,
    last_ms: i64,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Live>,
    /// On disk but not in memory: loaded on first use.
    stored: HashSet<String>,
    /// customer hash → article → (helpful?, when).
    customers: HashMap<String, HashMap<String, (bool, i64)>>,
    queries: HashMap<String, String>,
    query_order: VecDeque<String>,
    last_sweep_ms: i64,
}

pub struct SessionLog {
    key: [u8; 32],
    clock: Clock,
    retention_ms: i64,
    customer_window_ms: i64,
    store: Option<Arc<Analytics>>,
    /// A store other replicas share: the next question of a session may
    /// reach any of them, so timelines and votes are written through to it
    /// at once and read back from it on every turn; memory is only what
    /// this replica saw, used while the store cannot be reached.
    shared: Option<Arc<dyn Store>>,
    state: Mutex<State>,
}

/// Whether a turn could read the session's memory (its timeline and the
/// customer's votes) from the shared store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionMemory {
    Available,
    /// The shared store was unreachable: only what this replica remembers
    /// was used, so an article that failed on another replica may not be
    /// known to have failed.
    Unavailable,
}

impl SessionLog {
    /// With `store`, timelines are also written to (and, after a restart,
    /// read from) the analytics database.
    pub fn open(
        store: Option<Arc<Analytics>>,
        retention: Duration,
        customer_window: Duration,
        clock: Clock,
    ) -> Result<Arc<Self>, AnalyticsError> {
        Self::open_with(store, None, retention, customer_window, clock)
    }

    /// [`SessionLog::open`] beside other replicas sharing `shared` (see
    /// [`SessionLog`]'s `shared`).
    pub fn open_shared(
        store: Option<Arc<Analytics>>,
        shared: Arc<dyn Store>,
        retention: Duration,
        customer_window: Duration,
        clock: Clock,
    ) -> Result<Arc<Self>, AnalyticsError> {
        Self::open_with(store, Some(shared), retention, customer_window, clock)
    }

    fn open_with(
        store: Option<Arc<Analytics>>,
        shared: Option<Arc<dyn Store>>,
        retention: Duration,
        customer_window: Duration,
        clock: Clock,
    ) -> Result<Arc<Self>, AnalyticsError> {
        let key = match (&store, &shared) {
            (Some(analytics), _) => analytics.id_key(),
            (None, shared) => {
                let random = format!("{}{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
                // Replicas must hash a session id alike, analytics or not.
                let salt = match shared {
                    Some(shared) => shared.shared_salt(&random)?,
                    None => random,
                };
                blake3::derive_key("rapport 2026 session and customer ids", salt.as_bytes())
            }
        };
        let log = SessionLog {
            key,
            retention_ms: retention.as_millis() as i64,
            customer_window_ms: customer_window.as_millis() as i64,
            store,
            shared,
            state: Mutex::new(State::default()),
            clock,
        };
        // Replicas read what they need on each turn instead.
        if let Some(analytics) = log.store.as_ref().filter(|_| log.shared.is_none()) {
            let now = log.clock.now_ms();
            let stored = analytics.store().stored_sessions(now - log.retention_ms)?;
            let votes = analytics
                .store()
                .customer_votes(now - log.customer_window_ms)?;
            let mut state = log.lock();
            state.stored = stored;
            for vote in votes {
                state
                    .customers
                    .entry(vote.customer_hash)
                    .or_default()
                    .insert(vote.article_id, (vote.event != "not_helpful", vote.at_ms));
            }
        }
        let log = Arc::new(log);
        Self::keep_pruning(Arc::downgrade(&log));
        Ok(log)
    }

    fn keep_pruning(log: Weak<SessionLog>) {
        let spawned = std::thread::Builder::new()
            .name("rapport-sessions".into())
            .spawn(move || {
                while let Some(log) = log.upgrade() {
                    log.sweep_if_due();
                    drop(log);
                    std::thread::sleep(Duration::from_millis(SWEEP_EVERY_MS as u64));
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "session pruning only on use: cannot start its thread");
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether other replicas share the store (see [`SessionLog`]'s `shared`).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Now, by the clock timelines are stamped with.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn hash_session(&self, session_id: &str) -> String {
        self.keyed("session", session_id)
    }

    pub fn hash_customer(&self, customer_id: &str) -> String {
        self.keyed("customer", customer_id)
    }

    fn keyed(&self, domain: &str, id: &str) -> String {
        crate::analytics::keyed_hash(&self.key, domain, id)
    }

    /// Articles this session marked not helpful (latest vote), plus those the
    /// customer marked not helpful within the customer window, and whether
    /// a shared store could be read for them. Reads the store (SQLite once
    /// for a session from before a restart; a shared store every time):
    /// call off the async runtime.
    pub fn failed_articles(
        &self,
        session: Option<&str>,
        customer: Option<&str>,
    ) -> (Vec<String>, SessionMemory) {
        let mut failed: Vec<String> = Vec::new();
        let mut memory = SessionMemory::Available;
        if let Some(session) = session {
            if !self.hydrate(session) {
                memory = SessionMemory::Unavailable;
            }
            let state = self.lock();
            if let Some(live) = state.sessions.get(session) {
                let events: Vec<SessionEvent> = live.events.iter().cloned().collect();
                failed.extend(
                    latest_verdicts(&events)
                        .into_iter()
                        .filter(|(_, helpful)| !helpful)
                        .map(|(id, _)| id.to_string()),
                );
            }
        }
        if let Some(customer) = customer {
            let (votes, read) = self.customer_failed_checked(customer);
            failed.extend(votes);
            if read == SessionMemory::Unavailable {
                memory = SessionMemory::Unavailable;
            }
        }
        failed.sort();
        failed.dedup();
        (failed, memory)
    }

    /// Articles the customer marked not helpful within the window.
    pub fn customer_failed(&self, customer: &str) -> Vec<String> {
        self.customer_failed_checked(customer).0
    }

    fn customer_failed_checked(&self, customer: &str) -> (Vec<String>, SessionMemory) {
        let since = self.clock.now_ms() - self.customer_window_ms;
        if let Some(shared) = &self.shared {
            match shared.customer_votes_of(customer, since) {
                Ok(votes) => {
                    let mut failed: Vec<String> = votes
                        .into_iter()
                        .filter(|vote| vote.event == "not_helpful")
                        .map(|vote| vote.article_id)
                        .collect();
                    failed.sort();
                    return (failed, SessionMemory::Available);
                }
                Err(error) => {
                    tracing::debug!(%error, "customer votes from memory: the store is unavailable");
                    return (
                        self.customer_failed_in_memory(customer, since),
                        SessionMemory::Unavailable,
                    );
                }
            }
        }
        (
            self.customer_failed_in_memory(customer, since),
            SessionMemory::Available,
        )
    }

    fn customer_failed_in_memory(&self, customer: &str, since: i64) -> Vec<String> {
        let state = self.lock();
        let mut failed: Vec<String> = state
            .customers
            .get(customer)
            .into_iter()
            .flatten()
            .filter(|(_, (helpful, at))| !helpful && *at >= since)
            .map(|(id, _)| id.clone())
            .collect();
        failed.sort();
        failed
    }

    /// The session's events within the retention period, oldest first, and
    /// its customer hash (`None` when the session is unknown or expired).
    pub fn events(&self, session: &str) -> Option<(Vec<SessionEvent>, Option<String>)> {
        self.sweep_if_due();
        self.hydrate(session);
        self.events_held(session)
    }

    /// [`SessionLog::events`] as memory holds them, without reading the
    /// store: for a turn that has just read the session back.
    pub fn events_held(&self, session: &str) -> Option<(Vec<SessionEvent>, Option<String>)> {
        let since = self.clock.now_ms() - self.retention_ms;
        let state = self.lock();
        let live = state.sessions.get(session)?;
        let events: Vec<SessionEvent> = live
            .events
            .iter()
            .filter(|e| e.at_ms() >= since)
            .cloned()
            .collect();
        (!events.is_empty()).then(|| (events, live.customer.clone()))
    }

    /// The customer's other sessions within the customer window (and the
    /// retention period), most recently active first, at most `limit`: what
    /// an agent, and the repeated-question rule, know of earlier contacts on
    /// any channel. May read SQLite: call off the async runtime.
    pub fn earlier_sessions(
        &self,
        customer: &str,
        except: Option<&str>,
        limit: usize,
    ) -> Vec<(String, Vec<SessionEvent>)> {
        let now = self.clock.now_ms();
        let since = now - self.customer_window_ms.min(self.retention_ms);
        let (mut hashes, unloaded): (Vec<String>, bool) = {
            let state = self.lock();
            let live = state
                .sessions
                .iter()
                .filter(|(_, live)| live.customer.as_deref() == Some(customer))
                .map(|(hash, _)| hash.clone())
                .collect();
            (live, !state.stored.is_empty() || self.shared.is_some())
        };
        // Every session not in memory is in `stored` (from before a restart,
        // or evicted): SQLite is asked only while there are such sessions,
        // as `session_of_query` does, not on every question.
        if unloaded && let Some(store) = self.backing_store() {
            match store.customer_sessions(customer, since) {
                Ok(stored) => {
                    let state = self.lock();
                    hashes.extend(stored.into_iter().filter(|h| {
                        (self.shared.is_some() && !state.sessions.contains_key(h))
                            || state.stored.contains(h)
                    }));
                }
                Err(error) if error.is_unavailable() => {
                    tracing::debug!(%error, "earlier contacts from memory: the store is unavailable")
                }
                Err(error) => tracing::warn!(%error, "cannot look up a customer's sessions"),
            }
        }
        hashes.retain(|hash| Some(hash.as_str()) != except);
        let mut found: Vec<(i64, String, Vec<SessionEvent>)> = hashes
            .into_iter()
            .filter_map(|hash| {
                let (events, _) = self.events(&hash)?;
                let last = events.last().map_or(0, SessionEvent::at_ms);
                (last >= since).then_some((last, hash, events))
            })
            .collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        found.truncate(limit);
        found
            .into_iter()
            .map(|(_, hash, events)| (hash, events))
            .collect()
    }

    /// Records a question (redacted here) and what was shown for it.
    pub fn record_question(
        &self,
        session: &str,
        customer: Option<&str>,
        question: QuestionRecord<'_>,
    ) {
        let text: String = crate::analytics::redact::redact(question.text)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(MAX_QUESTION_CHARS)
            .collect();
        let event = SessionEvent::Question {
            at_ms: self.clock.now_ms(),
            query_id: question.query_id.to_string(),
            channel: question.channel,
            text,
            tone: question.tone,
            handoff_reasons: question.handoff_reasons,
            shown: question.shown,
        };
        self.append(session, customer, event);
    }

    /// The session a query was asked in. Every query of this process is in
    /// memory; SQLite is asked only while sessions from before a restart
    /// remain unloaded (feedback without a session, e.g. portal clicks,
    /// would otherwise always cost a read).
    pub fn session_of_query(&self, query_id: &str) -> Option<String> {
        {
            let state = self.lock();
            if let Some(session) = state.queries.get(query_id) {
                return Some(session.clone());
            }
            if state.stored.is_empty() && self.shared.is_none() {
                return None;
            }
        }
        let store = self.backing_store()?;
        match store.session_of_query(query_id) {
            Ok(found) => found,
            Err(error) => {
                if !error.is_unavailable() {
                    tracing::warn!(%error, "cannot look up a query's session");
                }
                None
            }
        }
    }

    /// Records the customer's feedback on an article in the session (and,
    /// when the session has a customer, as that customer's latest vote).
    pub fn record_feedback(
        &self,
        session: &str,
        query_id: &str,
        article_id: &str,
        title: &str,
        event: FeedbackKind,
    ) {
        let Some(helpful) = verdict(event) else {
            return;
        };
        self.hydrate(session);
        let at_ms = self.clock.now_ms();
        let customer = {
            let state = self.lock();
            state.sessions.get(session).and_then(|l| l.customer.clone())
        };
        self.append(
            session,
            None,
            SessionEvent::Feedback {
                at_ms,
                query_id: query_id.to_string(),
                article_id: article_id.to_string(),
                title: title.to_string(),
                event,
            },
        );
        if let Some(customer) = customer {
            {
                let mut state = self.lock();
                if state.customers.len() >= MAX_CUSTOMERS
                    && !state.customers.contains_key(&customer)
                {
                    let since = at_ms - self.customer_window_ms;
                    state
                        .customers
                        .retain(|_, votes| votes.values().any(|(_, at)| *at >= since));
                    if state.customers.len() >= MAX_CUSTOMERS
                        && let Some(victim) = state.customers.keys().next().cloned()
                    {
                        state.customers.remove(&victim);
                    }
                }
                state
                    .customers
                    .entry(customer.clone())
                    .or_default()
                    .insert(article_id.to_string(), (helpful, at_ms));
            }
            let vote = VoteRow {
                customer_hash: customer,
                article_id: article_id.to_string(),
                event: if helpful { "helpful" } else { "not_helpful" },
                at_ms,
            };
            let written = self.written_through(EventBatch {
                votes: std::slice::from_ref(&vote),
                ..EventBatch::default()
            });
            if !written && let Some(analytics) = &self.store {
                analytics.record_customer_vote(vote);
            }
        }
    }

    fn append(&self, session: &str, customer: Option<&str>, event: SessionEvent) {
        self.sweep_if_due();
        // Replicas: the turn read the session back a moment ago; appending
        // needs no second read (the entry goes to the store either way).
        if self.shared.is_none() {
            self.hydrate(session);
        }
        let at_ms = event.at_ms();
        let query_id = event.query_id().to_string();
        let customer_hash = {
            let mut state = self.lock();
            if state.sessions.len() >= MAX_SESSIONS && !state.sessions.contains_key(session) {
                self.evict(&mut state);
            }
            let live = state.sessions.entry(session.to_string()).or_default();
            if let Some(customer) = customer {
                live.customer = Some(customer.to_string());
            }
            live.last_ms = live.last_ms.max(at_ms);
            live.events.push_back(event.clone());
            while live.events.len() > MAX_EVENTS {
                live.events.pop_front();
            }
            let customer_hash = live.customer.clone();
            if !state.queries.contains_key(&query_id) {
                state.query_order.push_back(query_id.clone());
                state.queries.insert(query_id.clone(), session.to_string());
            }
            while state.query_order.len() > MAX_QUERY_IDS {
                if let Some(old) = state.query_order.pop_front() {
                    state.queries.remove(&old);
                }
            }
            customer_hash
        };
        if self.store.is_none() && self.shared.is_none() {
            return;
        }
        let row = match serde_json::to_string(&event) {
            Ok(json) => SessionRow {
                session_hash: session.to_string(),
                at_ms,
                query_id: Some(query_id),
                customer_hash,
                event: json,
            },
            Err(error) => {
                tracing::warn!(%error, "cannot serialise a session event");
                return;
            }
        };
        // Another replica may take the session's next turn: it must find
        // this entry in the store already, not after the next batch.
        let written = self.written_through(EventBatch {
            sessions: std::slice::from_ref(&row),
            ..EventBatch::default()
        });
        // Otherwise (or when the shared store is down: it is buffered
        // until it answers) through the analytics writer.
        if !written && let Some(analytics) = &self.store {
            analytics.record_session_event(row);
        }
    }

    /// Forgets a customer in memory (erasure): their live sessions, their
    /// votes and the query ids of those sessions. Returns the session
    /// hashes removed, so the store can erase them too (with analytics off
    /// they exist nowhere else). What is on disk is the store's to erase.
    pub fn forget_customer(&self, customer_hash: &str) -> Vec<String> {
        let mut state = self.lock();
        let removed: Vec<String> = state
            .sessions
            .iter()
            .filter(|(_, live)| live.customer.as_deref() == Some(customer_hash))
            .map(|(session, _)| session.clone())
            .collect();
        let State {
            sessions,
            customers,
            queries,
            query_order,
            ..
        } = &mut *state;
        for session in &removed {
            sessions.remove(session);
        }
        customers.remove(customer_hash);
        queries.retain(|_, session| !removed.contains(session));
        query_order.retain(|query| queries.contains_key(query));
        removed
    }

    /// Drops the least recently active tenth of the sessions from memory.
    fn evict(&self, state: &mut State) {
        let mut by_age: Vec<(i64, String)> = state
            .sessions
            .iter()
            .map(|(k, l)| (l.last_ms, k.clone()))
            .collect();
        by_age.sort();
        for (_, key) in by_age.into_iter().take(MAX_SESSIONS / 10) {
            state.sessions.remove(&key);
            if self.store.is_some() {
                state.stored.insert(key);
            }
        }
    }

    /// Writes a batch to the shared store now; `false` when there is none
    /// or it could not (the caller queues the batch for the writer then).
    fn written_through(&self, batch: EventBatch<'_>) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        match shared.write_events(&batch) {
            Ok(()) => true,
            Err(error) => {
                tracing::debug!(%error, "buffering a session event: the store is unavailable");
                false
            }
        }
    }

    /// The store timelines are read back from, if any.
    fn backing_store(&self) -> Option<&dyn Store> {
        match (&self.shared, &self.store) {
            (Some(shared), _) => Some(shared.as_ref()),
            (None, Some(analytics)) => Some(analytics.store().as_ref()),
            (None, None) => None,
        }
    }

    /// Brings the session's timeline into memory: from the shared store on
    /// every call (another replica may have added to it), else once, for a
    /// session on disk but not in memory. `false` when the shared store
    /// could not be read (memory is used as it is).
    fn hydrate(&self, session: &str) -> bool {
        if let Some(shared) = &self.shared {
            return self.reload(shared.as_ref(), session);
        }
        let Some(analytics) = &self.store else {
            return true;
        };
        {
            let state = self.lock();
            if state.sessions.contains_key(session) || !state.stored.contains(session) {
                return true;
            }
        }
        // Rare (once per session after a restart or eviction): make sure
        // nothing for it is still queued, then read it.
        analytics.flush();
        let since = self.clock.now_ms() - self.retention_ms;
        let rows = match analytics.store().session_rows(session, since) {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "cannot load a session timeline");
                return true;
            }
        };
        self.load(session, rows, false);
        true
    }

    /// A session's timeline read back from the shared store.
    fn reload(&self, shared: &dyn Store, session: &str) -> bool {
        let since = self.clock.now_ms() - self.retention_ms;
        match shared.session_rows(session, since) {
            Ok(rows) => {
                self.load(session, rows, true);
                true
            }
            Err(error) => {
                tracing::debug!(%error, "session timeline from memory: the store is unavailable");
                false
            }
        }
    }

    /// Puts stored rows in memory as the session's timeline: in place of
    /// what memory holds when `replace` (unless memory holds more: entries
    /// written while the store was down, still on their way to it).
    fn load(&self, session: &str, rows: Vec<SessionRow>, replace: bool) {
        let mut live = Live::default();
        for row in rows {
            match serde_json::from_str::<SessionEvent>(&row.event) {
                Ok(event) => {
                    live.last_ms = live.last_ms.max(event.at_ms());
                    live.events.push_back(event);
                }
                Err(error) => tracing::warn!(%error, "skipping an unreadable session event"),
            }
            if row.customer_hash.is_some() {
                live.customer = row.customer_hash;
            }
        }
        let mut state = self.lock();
        state.stored.remove(session);
        if !live.events.is_empty() {
            for event in &live.events {
                let query_id = event.query_id().to_string();
                if !state.queries.contains_key(&query_id) {
                    state.query_order.push_back(query_id.clone());
                    state.queries.insert(query_id, session.to_string());
                }
            }
            let keep_memory = state
                .sessions
                .get(session)
                .is_some_and(|held| !replace || held.events.len() > live.events.len());
            if !keep_memory {
                state.sessions.insert(session.to_string(), live);
            }
        }
    }

    fn sweep_if_due(&self) {
        let now = self.clock.now_ms();
        {
            let mut state = self.lock();
            if now - state.last_sweep_ms < SWEEP_EVERY_MS {
                return;
            }
            state.last_sweep_ms = now;
        }
        self.sweep(now);
    }

    /// Forgets events past the retention period and votes past the customer
    /// window, in memory and (queued) in SQLite.
    fn sweep(&self, now: i64) {
        let events_before = now - self.retention_ms;
        let votes_before = now - self.customer_window_ms;
        {
            let mut state = self.lock();
            state.sessions.retain(|_, live| {
                while live
                    .events
                    .front()
                    .is_some_and(|e| e.at_ms() < events_before)
                {
                    live.events.pop_front();
                }
                !live.events.is_empty()
            });
            state.customers.retain(|_, votes| {
                votes.retain(|_, (_, at)| *at >= votes_before);
                !votes.is_empty()
            });
            let State {
                sessions,
                queries,
                query_order,
                stored,
                ..
            } = &mut *state;
            queries.retain(|_, s| sessions.contains_key(s) || stored.contains(s));
            query_order.retain(|q| queries.contains_key(q));
        }
        if let Some(analytics) = &self.store {
            analytics.prune_sessions(events_before, votes_before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn question<'a>(query_id: &'a str, text: &'a str, article: &str) -> QuestionRecord<'a> {
        QuestionRecord {
            query_id,
            channel: TurnChannel::Answer,
            text,
            tone: Tone::default(),
            handoff_reasons: Vec::new(),
            shown: vec![ShownArticle {
                article_id: article.into(),
                title: article.to_uppercase(),
                section: None,
                confidence: Some(0.9),
            }],
        }
    }

    fn memory_log(clock: &Clock) -> Arc<SessionLog> {
        SessionLog::open(None, 7 * DAY, 30 * DAY, clock.clone()).unwrap()
    }

    #[test]
    fn not_helpful_is_failed_until_a_later_helpful() {
        let clock = Clock::default();
        let log = memory_log(&clock);
        let s = log.hash_session("chat-1");
        log.record_question(&s, None, question("q1", "export my vault", "vault/export"));
        assert!(log.failed_articles(Some(&s), None).0.is_empty());
        assert_eq!(log.session_of_query("q1"), Some(s.clone()));
        log.record_feedback(&s, "q1", "vault/export", "Export", FeedbackKind::NotHelpful);
        assert_eq!(log.failed_articles(Some(&s), None).0, vec!["vault/export"]);
        let other = log.hash_session("chat-2");
        assert!(log.failed_articles(Some(&other), None).0.is_empty());
        log.record_feedback(&s, "q1", "vault/export", "Export", FeedbackKind::Resolved);
        assert!(log.failed_articles(Some(&s), None).0.is_empty());
        // Clicks are not a verdict and are not kept.
        log.record_feedback(&s, "q1", "vault/export", "Export", FeedbackKind::Click);
        assert_eq!(log.events(&s).unwrap().0.len(), 3);
    }

    #[test]
    fn questions_are_redacted_and_ids_hashed_with_a_key() {
        let clock = Clock::default();
        let log = memory_log(&clock);
        let s = log.hash_session("chat-1");
        assert_ne!(s, log.hash_customer("chat-1"), "domains are separate");
        assert_ne!(s, memory_log(&clock).hash_session("chat-1"), "keyed");
        assert!(!s.contains("chat"));
        log.record_question(&s, None, question("q1", "I am jane@example.com", "a"));
        let (events, _) = log.events(&s).unwrap();
        match &events[0] {
            SessionEvent::Question { text, .. } => assert_eq!(text, "I am [email]"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn customer_votes_last_for_the_window_across_sessions() {
        let clock = Clock::default();
        let log = memory_log(&clock);
        let customer = log.hash_customer("cust-9");
        let first = log.hash_session("monday");
        log.record_question(
            &first,
            Some(&customer),
            question("q1", "refund", "billing/refunds"),
        );
        log.record_feedback(
            &first,
            "q1",
            "billing/refunds",
            "Refunds",
            FeedbackKind::NotHelpful,
        );
        let second = log.hash_session("tuesday");
        assert_eq!(
            log.failed_articles(Some(&second), Some(&customer)).0,
            vec!["billing/refunds"]
        );
        assert!(log.failed_articles(Some(&second), None).0.is_empty());
        clock.advance(29 * DAY);
        assert_eq!(log.customer_failed(&customer), vec!["billing/refunds"]);
        clock.advance(2 * DAY);
        assert!(log.customer_failed(&customer).is_empty());
    }

    #[test]
    fn forgetting_a_customer_removes_their_sessions_votes_and_queries_only() {
        let clock = Clock::default();
        let log = memory_log(&clock);
        let ada = log.hash_customer("ada");
        let bob = log.hash_customer("bob");
        let (monday, tuesday, bobs) = (
            log.hash_session("monday"),
            log.hash_session("tuesday"),
            log.hash_session("bob-chat"),
        );
        log.record_question(
            &monday,
            Some(&ada),
            question("q1", "refund", "billing/refunds"),
        );
        log.record_feedback(
            &monday,
            "q1",
            "billing/refunds",
            "Refunds",
            FeedbackKind::NotHelpful,
        );
        log.record_question(
            &tuesday,
            Some(&ada),
            question("q2", "invoice", "billing/invoices"),
        );
        log.record_question(
            &bobs,
            Some(&bob),
            question("q3", "refund", "billing/refunds"),
        );
        log.record_feedback(
            &bobs,
            "q3",
            "billing/refunds",
            "Refunds",
            FeedbackKind::NotHelpful,
        );

        let mut removed = log.forget_customer(&ada);
        removed.sort();
        let mut expected = vec![monday.clone(), tuesday.clone()];
        expected.sort();
        assert_eq!(removed, expected);
        assert!(log.events(&monday).is_none());
        assert!(log.events(&tuesday).is_none());
        assert!(log.customer_failed(&ada).is_empty());
        assert_eq!(log.session_of_query("q1"), None);
        assert_eq!(log.session_of_query("q2"), None);
        // Bob is untouched.
        assert_eq!(log.events(&bobs).unwrap().0.len(), 2);
        assert_eq!(log.customer_failed(&bob), vec!["billing/refunds"]);
        assert_eq!(log.session_of_query("q3"), Some(bobs));
        assert!(log.forget_customer(&ada).is_empty(), "idempotent");
    }

    #[test]
    fn retention_forgets_sessions_in_memory() {
        let clock = Clock::default();
        let log = memory_log(&clock);
        let s = log.hash_session("chat-1");
        log.record_question(&s, None, question("q1", "export", "a"));
        clock.advance(6 * DAY);
        assert!(log.events(&s).is_some());
        clock.advance(2 * DAY);
        assert!(log.events(&s).is_none());
        assert!(log.lock().sessions.is_empty(), "swept, not just hidden");
        assert!(log.session_of_query("q1").is_none());
    }

    #[test]
    fn sessions_and_votes_survive_a_restart_through_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::default();
        let open = || {
            let store = Arc::new(crate::store::sqlite::SqliteStore::open(dir.path()).unwrap());
            let analytics = Arc::new(Analytics::open(dir.path(), 90 * DAY, store).unwrap());
            let log = SessionLog::open(Some(analytics.clone()), 7 * DAY, 30 * DAY, clock.clone())
                .unwrap();
            (analytics, log)
        };
        let (analytics, log) = open();
        let s = log.hash_session("chat-1");
        let c = log.hash_customer("cust-1");
        log.record_question(&s, Some(&c), question("q1", "export", "vault/export"));
        log.record_feedback(&s, "q1", "vault/export", "Export", FeedbackKind::NotHelpful);
        analytics.flush();
        drop((analytics, log));

        let (analytics, log) = open();
        assert_eq!(log.hash_session("chat-1"), s, "same key after a restart");
        assert_eq!(log.customer_failed(&c), vec!["vault/export"]);
        assert_eq!(log.session_of_query("q1"), Some(s.clone()));
        assert_eq!(log.failed_articles(Some(&s), None).0, vec!["vault/export"]);
        let (events, customer) = log.events(&s).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(customer, Some(c.clone()));

        clock.advance(8 * DAY);
        assert!(log.events(&s).is_none());
        analytics.flush();
        let path = dir.path().join(crate::store::sqlite::DATABASE_FILE);
        let reader = rusqlite::Connection::open(path).unwrap();
        let count: i64 = reader
            .query_row("SELECT COUNT(*) FROM session_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 0, "pruned from SQLite too");
        let votes: i64 = reader
            .query_row("SELECT COUNT(*) FROM customer_votes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(votes, 1, "customer votes keep their own, longer window");
    }
}
