//! The hand-off queue: a customer asks for a person, agents see the queue
//! (with the session's brief), one claims, someone closes, the customer rates.
//!
//! Every change is one store transaction that also writes the webhook event
//! to the outbox (when a webhook is configured); after the commit the same
//! event goes to the agents' live stream (`GET /api/v1/handoffs/events`).
//! Replicas sharing a store tell each other about each change (ids only,
//! PostgreSQL `NOTIFY`), and each renders it for its own stream's agents.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::HandoffReason;
use super::brief::{
    EarlierContact, ShownSummary, earlier_contact, rfc3339, session_view, with_earlier_contacts,
};
use super::outbox::Outbox;
use super::timeline::{SessionEvent, SessionLog, TurnChannel};
use crate::analytics::Clock;
use crate::store::{
    Contact, HandoffRecord, HandoffStatus, NewHandoff, OutboxDraft, Rating, Resolution, Store,
    StoreError, Transition,
};

/// Earlier sessions of the same customer an agent sees with a hand-off,
/// and the repeated-question rule compares with.
pub const EARLIER_CONTACTS: usize = 5;
/// The expected wait is the median of the claims in this window.
const WAIT_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// Events a slow live-stream reader may fall behind by before it is told to
/// reload (`lagged`).
const STREAM_BUFFER: usize = 256;
pub const MAX_LIST: usize = 500;
const FORGET_EVERY: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(
        "no session {0:?} (unknown, or older than the retention period); ask a question with this session_id first"
    )]
    UnknownSession(String),
    #[error("no hand-off {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the customer (the widget) sees of their hand-off.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CustomerHandoff {
    #[schema(example = "h_4f1c2a9e0b7d4e5f8a6b3c2d1e0f9a8b")]
    pub handoff_id: String,
    pub status: HandoffStatus,
    /// 1 = next in line; `null` unless waiting.
    pub position: Option<u64>,
    /// The median wait from request to claim over the last 7 days; `null`
    /// before anything was measured.
    pub expected_wait_seconds: Option<u64>,
    /// RFC 3339.
    pub created_at: String,
    /// The agent who picked it up (their key's label).
    pub agent: Option<String>,
    pub claimed_at: Option<String>,
    pub closed_at: Option<String>,
    pub resolution: Option<Resolution>,
}

/// What agents (and the webhook) see: the record, the customer's contact
/// and the session the bot had with them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HandoffView {
    pub handoff_id: String,
    /// `null` once the session is past its retention period.
    pub session_id: Option<String>,
    pub status: HandoffStatus,
    pub created_at: String,
    pub claimed_at: Option<String>,
    /// The claiming agent key's label.
    pub claimed_by: Option<String>,
    pub closed_at: Option<String>,
    pub resolution: Option<Resolution>,
    /// The closing agent's note.
    pub note: Option<String>,
    /// 1 = next in line; `null` unless waiting.
    pub position: Option<u64>,
    /// From the request until it was claimed (or until now, while waiting).
    pub waiting_seconds: u64,
    pub contact: Option<Contact>,
    /// What the customer wrote when asking for a person.
    pub message: Option<String>,
    /// Why the customer is here: the session's hand-off reasons.
    pub reasons: Vec<String>,
    /// Where the customer was when they asked: `chat`, `portal`, `email`,
    /// `form` or `social`; `null` for hand-offs from before channels were kept.
    #[schema(example = "chat")]
    pub channel: Option<String>,
    /// The session in one paragraph (as `GET /api/v1/sessions/{id}`).
    pub brief: String,
    /// The customer's questions, oldest first (personal data redacted).
    pub questions: Vec<String>,
    /// Articles already shown, with the customer's verdict.
    pub shown: Vec<ShownSummary>,
    /// The same customer's earlier sessions on any channel (when the
    /// session carried a `customer_id`), most recent first.
    pub earlier_contacts: Vec<EarlierContact>,
}

/// A queue change, as delivered to webhooks and the live stream.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HandoffEvent {
    /// `handoff.created`, `handoff.claimed` or `handoff.closed`.
    pub event: String,
    pub handoff: HandoffView,
    pub occurred_at: String,
}

/// One event on the live stream: the delivery id and the JSON body (the
/// same bytes the webhook receives).
#[derive(Debug, Clone)]
pub struct StreamEvent {
    pub id: String,
    pub event: &'static str,
    pub data: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RatingView {
    pub session_id: String,
    /// 1 (bad) to 5 (great).
    pub score: u8,
    pub comment: Option<String>,
    pub rated_at: String,
    /// An earlier rating of this session was replaced.
    pub replaced: bool,
}

/// A hand-off's channel name for a question's channel: the chat widget
/// and bots ask through `/answer` (`chat`), the portal through `/search`.
pub fn handoff_channel(channel: TurnChannel) -> &'static str {
    match channel {
        TurnChannel::Answer => "chat",
        TurnChannel::Search => "portal",
        TurnChannel::Email => "email",
        TurnChannel::Form => "form",
        TurnChannel::Social => "social",
    }
}

/// The channel of the session's most recent question.
fn latest_channel(events: &[SessionEvent]) -> Option<&'static str> {
    events.iter().rev().find_map(|event| match event {
        SessionEvent::Question { channel, .. } => Some(handoff_channel(*channel)),
        SessionEvent::Feedback { .. } => None,
    })
}

/// The session part of a view, read once per change.
#[derive(Default)]
struct SessionSummary {
    brief: String,
    questions: Vec<String>,
    shown: Vec<ShownSummary>,
    reasons: Vec<HandoffReason>,
    earlier_contacts: Vec<EarlierContact>,
}

/// What a replica tells the others about a change: ids, not the body
/// (`NOTIFY` payloads stop at 8,000 bytes; a brief can be longer).
#[derive(Debug, Serialize, Deserialize)]
struct ReplicaNote {
    /// The replica that made the change (it already told its own stream).
    origin: String,
    /// The stream event's id (the webhook delivery id).
    id: String,
    event: String,
    handoff_id: String,
    at_ms: i64,
}

/// The stream's event names, as `&'static str` from a note's text.
fn event_name(text: &str) -> Option<&'static str> {
    ["handoff.created", "handoff.claimed", "handoff.closed"]
        .into_iter()
        .find(|name| *name == text)
}

pub struct HandoffQueue {
    /// This process, among replicas sharing the store.
    replica: String,
    store: Arc<dyn Store>,
    sessions: Arc<SessionLog>,
    clock: Clock,
    /// Events go to the outbox only when a webhook is configured.
    outbox: Option<Outbox>,
    stream: broadcast::Sender<Arc<StreamEvent>>,
    /// Set at shutdown: live streams end, so they don't hold the server's
    /// graceful shutdown for its whole grace period.
    closing: tokio::sync::watch::Sender<bool>,
    /// Waiting longer than this without a claim counts as abandoned.
    pub abandon_after: Duration,
}

impl HandoffQueue {
    pub fn new(
        store: Arc<dyn Store>,
        sessions: Arc<SessionLog>,
        clock: Clock,
        outbox: Option<Outbox>,
        abandon_after: Duration,
    ) -> Self {
        HandoffQueue {
            replica: uuid::Uuid::new_v4().simple().to_string(),
            store,
            sessions,
            clock,
            outbox,
            stream: broadcast::channel(STREAM_BUFFER).0,
            closing: tokio::sync::watch::channel(false).0,
            abandon_after,
        }
    }

    pub fn has_webhook(&self) -> bool {
        self.outbox.is_some()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The live stream of queue changes, and a signal that turns true when
    /// the server shuts down (end the stream then).
    pub fn subscribe(
        &self,
    ) -> (
        broadcast::Receiver<Arc<StreamEvent>>,
        tokio::sync::watch::Receiver<bool>,
    ) {
        (self.stream.subscribe(), self.closing.subscribe())
    }

    /// Ends every live stream (the server is shutting down).
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    fn summary(&self, session_hash: &str, session_id: Option<&str>) -> SessionSummary {
        let Some((events, customer)) = self.sessions.events(session_hash) else {
            return SessionSummary::default();
        };
        let mut view = session_view(session_id.unwrap_or_default(), &events);
        with_earlier_contacts(
            &mut view,
            self.earlier_contacts(session_hash, customer.as_deref()),
        );
        SessionSummary {
            brief: view.brief,
            questions: view.questions.into_iter().map(|q| q.text).collect(),
            shown: view.shown,
            reasons: view.handoff_reasons,
            earlier_contacts: view.earlier_contacts,
        }
    }

    /// The customer's other sessions, summarised with how each ended. May
    /// read the store: call off the async runtime.
    pub fn earlier_contacts(
        &self,
        session_hash: &str,
        customer: Option<&str>,
    ) -> Vec<EarlierContact> {
        let Some(customer) = customer else {
            return Vec::new();
        };
        let now = self.clock.now_ms();
        self.sessions
            .earlier_sessions(customer, Some(session_hash), EARLIER_CONTACTS)
            .into_iter()
            .map(|(hash, events)| {
                let handoff = match self.store.session_handoff(&hash) {
                    Ok(found) => found.map(|r| (r.status, r.resolution)),
                    Err(error) => {
                        tracing::warn!(%error, "cannot read an earlier contact's hand-off");
                        None
                    }
                };
                earlier_contact(&events, handoff, now)
            })
            .collect()
    }

    fn view(
        &self,
        record: &HandoffRecord,
        summary: &SessionSummary,
        position: Option<u64>,
        now_ms: i64,
    ) -> HandoffView {
        let mut reasons = record.reasons.clone();
        for reason in &summary.reasons {
            if !reasons.iter().any(|r| r == reason.as_str()) {
                reasons.push(reason.as_str().to_string());
            }
        }
        let waited_until = record.claimed_ms.or(record.closed_ms).unwrap_or(now_ms);
        HandoffView {
            handoff_id: record.id.clone(),
            session_id: record.session_id.clone(),
            status: record.status,
            created_at: rfc3339(record.created_ms),
            claimed_at: record.claimed_ms.map(rfc3339),
            claimed_by: record.claimed_by.clone(),
            closed_at: record.closed_ms.map(rfc3339),
            resolution: record.resolution,
            note: record.note.clone(),
            position,
            waiting_seconds: ((waited_until - record.created_ms).max(0) / 1000) as u64,
            contact: record.contact.clone(),
            message: record.message.clone(),
            reasons,
            channel: record.channel.clone(),
            brief: summary.brief.clone(),
            questions: summary.questions.clone(),
            shown: summary.shown.clone(),
            earlier_contacts: summary.earlier_contacts.clone(),
        }
    }

    /// The event body for a change: rendered inside the transaction for the
    /// outbox, and again (the same bytes) for the live stream.
    fn event_body(
        &self,
        event: &str,
        record: &HandoffRecord,
        summary: &SessionSummary,
        at_ms: i64,
    ) -> String {
        let body = HandoffEvent {
            event: event.to_string(),
            handoff: self.view(record, summary, None, at_ms),
            occurred_at: rfc3339(at_ms),
        };
        serde_json::to_string(&body).unwrap_or_default()
    }

    /// Runs a store change with its event and, once committed, wakes the
    /// webhook worker and tells the live stream.
    fn change<T>(
        &self,
        event: &'static str,
        summary: &SessionSummary,
        at_ms: i64,
        apply: impl FnOnce(&(dyn Fn(&HandoffRecord) -> Option<OutboxDraft> + Sync)) -> T,
        changed: impl FnOnce(&T) -> Option<&HandoffRecord>,
    ) -> T {
        let delivery_id = uuid::Uuid::new_v4().to_string();
        let with_webhook = self.outbox.is_some();
        let render = |record: &HandoffRecord| {
            with_webhook.then(|| OutboxDraft {
                delivery_id: delivery_id.clone(),
                event: event.to_string(),
                body: self.event_body(event, record, summary, at_ms),
            })
        };
        let result = apply(&render);
        if let Some(record) = changed(&result) {
            if let Some(outbox) = &self.outbox {
                outbox.wake();
            }
            // No subscriber is fine: nobody is watching the queue.
            let _ = self.stream.send(Arc::new(StreamEvent {
                id: delivery_id.clone(),
                event,
                data: self.event_body(event, record, summary, at_ms),
            }));
            if self.store.is_shared() {
                self.tell_replicas(&delivery_id, event, &record.id, at_ms);
            }
        }
        result
    }

    fn tell_replicas(&self, id: &str, event: &str, handoff_id: &str, at_ms: i64) {
        let note = ReplicaNote {
            origin: self.replica.clone(),
            id: id.to_string(),
            event: event.to_string(),
            handoff_id: handoff_id.to_string(),
            at_ms,
        };
        let published = serde_json::to_string(&note)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
            .and_then(|payload| self.store.publish(&payload));
        if let Err(error) = published {
            // The change is committed; other replicas' agents see it on
            // their next list or reconnect.
            tracing::warn!(%error, "cannot tell the other replicas about a hand-off change");
        }
    }

    /// Feeds the live stream with the other replicas' changes, when the
    /// store is shared; a thread of its own renders them (the notification
    /// arrives on the store's runtime, which must not wait on the store).
    pub fn listen_to_replicas(queue: &Arc<HandoffQueue>) -> Result<(), StoreError> {
        if !queue.store.is_shared() {
            return Ok(());
        }
        let (notes, received) = std::sync::mpsc::sync_channel::<String>(1024);
        queue.store.listen(Box::new(move |payload| {
            // Full: agents' streams are far behind anyway; they re-list.
            let _ = notes.try_send(payload);
        }))?;
        let weak = Arc::downgrade(queue);
        std::thread::Builder::new()
            .name("rapport-replica-events".into())
            .spawn(move || {
                for payload in received {
                    let Some(queue) = weak.upgrade() else {
                        return;
                    };
                    queue.replay(&payload);
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start a thread: {e}")))?;
        Ok(())
    }

    /// Another replica's change, for this replica's stream.
    fn replay(&self, payload: &str) {
        let Ok(note) = serde_json::from_str::<ReplicaNote>(payload) else {
            tracing::debug!("ignoring a notification that is not a hand-off change");
            return;
        };
        if note.origin == self.replica || self.stream.receiver_count() == 0 {
            return;
        }
        let Some(event) = event_name(&note.event) else {
            return;
        };
        // The record as it is now: a claim right after the creation shows
        // in both events' bodies (the stream tells of changes; the record
        // is the truth).
        let record = match self.store.handoff(&note.handoff_id) {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "cannot read another replica's hand-off change");
                return;
            }
        };
        let summary = self.summary(&record.session_hash, record.session_id.as_deref());
        let _ = self.stream.send(Arc::new(StreamEvent {
            id: note.id,
            event,
            data: self.event_body(event, &record, &summary, note.at_ms),
        }));
    }

    fn expected_wait_seconds(&self, now_ms: i64) -> Result<Option<u64>, StoreError> {
        let mut waits = self
            .store
            .claim_waits(now_ms - WAIT_WINDOW.as_millis() as i64)?;
        if waits.is_empty() {
            return Ok(None);
        }
        waits.sort_unstable();
        let middle = waits.len() / 2;
        let median = if waits.len() % 2 == 0 {
            (waits[middle - 1] + waits[middle]) / 2
        } else {
            waits[middle]
        };
        Ok(Some((median.max(0) as u64).div_ceil(1000)))
    }

    fn customer_view(&self, record: &HandoffRecord) -> Result<CustomerHandoff, StoreError> {
        let now = self.clock.now_ms();
        Ok(CustomerHandoff {
            handoff_id: record.id.clone(),
            status: record.status,
            position: self.store.position(record)?,
            expected_wait_seconds: match record.status {
                HandoffStatus::Waiting => self.expected_wait_seconds(now)?,
                _ => None,
            },
            created_at: rfc3339(record.created_ms),
            agent: record.claimed_by.clone(),
            claimed_at: record.claimed_ms.map(rfc3339),
            closed_at: record.closed_ms.map(rfc3339),
            resolution: record.resolution,
        })
    }

    /// The customer asks for a person. Returns the hand-off and whether it
    /// was created now (`false`: the session's open one).
    pub fn request(
        &self,
        session_id: &str,
        contact: Option<Contact>,
        message: Option<String>,
    ) -> Result<(CustomerHandoff, bool), QueueError> {
        let session_hash = self.sessions.hash_session(session_id);
        let Some((events, _)) = self.sessions.events(&session_hash) else {
            return Err(QueueError::UnknownSession(session_id.to_string()));
        };
        let channel = latest_channel(&events).map(str::to_string);
        let summary = self.summary(&session_hash, Some(session_id));
        let mut reasons: Vec<String> = summary
            .reasons
            .iter()
            .map(|r| r.as_str().to_string())
            .collect();
        if reasons.is_empty() {
            // Nothing the bot saw called for a person: the customer asked.
            reasons.push(HandoffReason::HumanRequest.as_str().to_string());
        }
        let at_ms = self.clock.now_ms();
        let new = NewHandoff {
            id: format!("h_{}", uuid::Uuid::new_v4().simple()),
            session_hash,
            session_id: session_id.to_string(),
            at_ms,
            contact,
            message,
            reasons,
            channel,
        };
        let (record, created) = self.change(
            "handoff.created",
            &summary,
            at_ms,
            |render| self.store.create_handoff(new, render),
            |result| match result {
                Ok((record, true)) => Some(record),
                _ => None,
            },
        )?;
        Ok((self.customer_view(&record)?, created))
    }

    /// The session's latest hand-off, as the customer sees it.
    pub fn customer_status(&self, session_id: &str) -> Result<CustomerHandoff, QueueError> {
        let session_hash = self.sessions.hash_session(session_id);
        match self.store.session_handoff(&session_hash)? {
            Some(record) => Ok(self.customer_view(&record)?),
            None => Err(QueueError::NotFound(format!("for session {session_id}"))),
        }
    }

    pub fn list(
        &self,
        status: Option<HandoffStatus>,
        limit: usize,
    ) -> Result<Vec<HandoffView>, QueueError> {
        let now = self.clock.now_ms();
        let records = self.store.handoffs(status, limit.min(MAX_LIST))?;
        let mut position = 0;
        Ok(records
            .iter()
            .map(|record| {
                let summary = self.summary(&record.session_hash, record.session_id.as_deref());
                // Oldest first, so a waiting one's place is its rank.
                let place = (record.status == HandoffStatus::Waiting).then(|| {
                    position += 1;
                    position
                });
                let place = if status == Some(HandoffStatus::Waiting) {
                    place
                } else {
                    None
                };
                self.view(record, &summary, place, now)
            })
            .collect())
    }

    pub fn get(&self, id: &str) -> Result<HandoffView, QueueError> {
        let record = self
            .store
            .handoff(id)?
            .ok_or_else(|| QueueError::NotFound(id.to_string()))?;
        let summary = self.summary(&record.session_hash, record.session_id.as_deref());
        let position = self.store.position(&record)?;
        Ok(self.view(&record, &summary, position, self.clock.now_ms()))
    }

    fn transition(
        &self,
        id: &str,
        event: &'static str,
        apply: impl FnOnce(
            i64,
            &(dyn Fn(&HandoffRecord) -> Option<OutboxDraft> + Sync),
        ) -> Result<Transition, StoreError>,
        conflict: impl FnOnce(&HandoffRecord) -> String,
    ) -> Result<HandoffView, QueueError> {
        let record = self
            .store
            .handoff(id)?
            .ok_or_else(|| QueueError::NotFound(id.to_string()))?;
        let summary = self.summary(&record.session_hash, record.session_id.as_deref());
        let at_ms = self.clock.now_ms();
        let outcome = self.change(
            event,
            &summary,
            at_ms,
            |render| apply(at_ms, render),
            |result| match result {
                Ok(Transition::Done(record)) => Some(record),
                _ => None,
            },
        )?;
        match outcome {
            Transition::Done(record) => Ok(self.view(&record, &summary, None, at_ms)),
            Transition::Conflict(record) => Err(QueueError::Conflict(conflict(&record))),
            Transition::NotFound => Err(QueueError::NotFound(id.to_string())),
        }
    }

    /// waiting → claimed by `agent`; exactly one of two simultaneous claims wins.
    pub fn claim(&self, id: &str, agent: &str) -> Result<HandoffView, QueueError> {
        self.transition(
            id,
            "handoff.claimed",
            |at_ms, render| self.store.claim(id, agent, at_ms, render),
            |record| match (record.status, &record.claimed_by) {
                (HandoffStatus::Closed, _) => format!("hand-off {id} is already closed"),
                (_, Some(holder)) => format!("hand-off {id} is already claimed by {holder}"),
                _ => format!("hand-off {id} cannot be claimed"),
            },
        )
    }

    pub fn close(
        &self,
        id: &str,
        resolution: Resolution,
        note: Option<String>,
    ) -> Result<HandoffView, QueueError> {
        self.transition(
            id,
            "handoff.closed",
            |at_ms, render| self.store.close(id, resolution, note, at_ms, render),
            |_| format!("hand-off {id} is already closed"),
        )
    }

    /// The customer's rating of the session (a later one replaces it).
    pub fn rate(
        &self,
        session_id: &str,
        score: u8,
        comment: Option<String>,
    ) -> Result<RatingView, QueueError> {
        let session_hash = self.sessions.hash_session(session_id);
        if self.sessions.events(&session_hash).is_none() {
            return Err(QueueError::UnknownSession(session_id.to_string()));
        }
        let at_ms = self.clock.now_ms();
        let replaced = self.store.rate(Rating {
            session_hash,
            score,
            comment: comment.clone(),
            at_ms,
        })?;
        Ok(RatingView {
            session_id: session_id.to_string(),
            score,
            comment,
            rated_at: rfc3339(at_ms),
            replaced,
        })
    }

    /// Forgets customers' details with their sessions (contact, message,
    /// comments), checking every few minutes, until the queue is dropped.
    pub fn keep_forgetting(queue: Weak<HandoffQueue>, clock: Clock, retention: Duration) {
        let spawned = std::thread::Builder::new()
            .name("rapport-handoff-retention".into())
            .spawn(move || {
                let mut last: Option<std::time::Instant> = None;
                while let Some(queue) = queue.upgrade() {
                    if last.is_none_or(|at| at.elapsed() >= FORGET_EVERY) {
                        last = Some(std::time::Instant::now());
                        let before = clock.now_ms() - retention.as_millis() as i64;
                        match queue.store.forget_sessions(before) {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(
                                forgotten = n,
                                "hand-off details past the session retention forgotten"
                            ),
                            Err(error) => {
                                tracing::warn!(%error, "cannot forget old hand-off details")
                            }
                        }
                    }
                    drop(queue);
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "hand-off details are not forgotten: cannot start the thread");
        }
    }
}
