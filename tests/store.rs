//! The `Store` trait's behaviour, run against both backends: each
//! `suite_*` takes a store (or a way to open more handles on one), and
//! runs once on SQLite in a temporary folder and once on PostgreSQL in a
//! database of its own on a throwaway server (`support/pg.rs`; skipped
//! when PostgreSQL is not installed). The reports are also run on one data
//! set in both, and must give the same answers.

#[path = "support/pg.rs"]
mod pg;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use rapport::analytics::reports::{QueryReportKind, Window};
use rapport::analytics::store::{SessionRow, VoteRow};
use rapport::analytics::{Channel, FeedbackEvent, FeedbackKind, QueryEvent};
use rapport::store::postgres::PgStore;
use rapport::store::sqlite::SqliteStore;
use rapport::store::{
    AdminSessionRow, Attempt, AttemptOutcome, Contact, Erased, EventBatch, HandoffRecord,
    HandoffStatus, NewHandoff, OutboxCounts, OutboxDraft, Rating, Resolution, Store, StoreError,
    Transition,
};

// ---------------------------------------------------------------------------
// Opening stores.

/// Opens handles on one store: twice on the same database for the tests
/// of replicas racing each other.
type Opener = dyn Fn() -> Arc<dyn Store> + Sync;

fn sqlite_opener() -> (tempfile::TempDir, Box<Opener>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let open = move || -> Arc<dyn Store> { Arc::new(SqliteStore::open(&path).unwrap()) };
    (dir, Box::new(open))
}

/// `None` (the test returns) when PostgreSQL is not installed.
fn postgres_opener(name: &str) -> Option<Box<Opener>> {
    let url = pg::shared()?.create_database(name);
    Some(Box::new(move || -> Arc<dyn Store> {
        Arc::new(PgStore::open(&url).unwrap())
    }))
}

/// A `#[test]` per backend for each suite taking one store.
macro_rules! on_both {
    ($($suite:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[test]
        fn $sqlite() {
            let (_dir, open) = sqlite_opener();
            $suite(open().as_ref());
        }

        #[test]
        fn $postgres() {
            let Some(open) = postgres_opener(stringify!($postgres)) else {
                return;
            };
            $suite(open().as_ref());
        }
    )*};
}

/// The same for suites that open several handles on one store.
macro_rules! on_both_shared {
    ($($suite:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[test]
        fn $sqlite() {
            let (_dir, open) = sqlite_opener();
            $suite(open.as_ref());
        }

        #[test]
        fn $postgres() {
            let Some(open) = postgres_opener(stringify!($postgres)) else {
                return;
            };
            $suite(open.as_ref());
        }
    )*};
}

on_both! {
    suite_one_open_handoff_and_guarded_transitions
        => sqlite_one_open_handoff_and_guarded_transitions,
           postgres_one_open_handoff_and_guarded_transitions;
    suite_outbox_events_and_leases => sqlite_outbox_events_and_leases, postgres_outbox_events_and_leases;
    suite_outbox_delivers_in_order => sqlite_outbox_delivers_in_order, postgres_outbox_delivers_in_order;
    suite_events_and_timelines => sqlite_events_and_timelines, postgres_events_and_timelines;
    suite_prune => sqlite_prune, postgres_prune;
    suite_ratings => sqlite_ratings, postgres_ratings;
    suite_forget_sessions => sqlite_forget_sessions, postgres_forget_sessions;
    suite_erase_customer => sqlite_erase_customer, postgres_erase_customer;
    suite_erase_live_sessions => sqlite_erase_live_sessions, postgres_erase_live_sessions;
    suite_admin_sessions => sqlite_admin_sessions, postgres_admin_sessions;
    suite_schema_status => sqlite_schema_status, postgres_schema_status;
    suite_reports_sanity => sqlite_reports_sanity, postgres_reports_sanity;
}

on_both_shared! {
    suite_concurrent_claims => sqlite_concurrent_claims, postgres_concurrent_claims;
    suite_concurrent_creates => sqlite_concurrent_creates, postgres_concurrent_creates;
    suite_concurrent_leases => sqlite_concurrent_leases, postgres_concurrent_leases;
}

// ---------------------------------------------------------------------------
// Builders.

fn new_handoff(id: &str, session: &str, at_ms: i64) -> NewHandoff {
    NewHandoff {
        id: id.into(),
        session_hash: format!("hash-{session}"),
        session_id: session.into(),
        at_ms,
        contact: Some(Contact {
            name: Some("Ada".into()),
            email: Some("ada@example.com".into()),
        }),
        message: Some("my card was charged twice".into()),
        reasons: vec!["low_confidence".into()],
        channel: Some("chat".into()),
    }
}

fn event(name: &'static str) -> impl Fn(&HandoffRecord) -> Option<OutboxDraft> + Sync {
    move |record| {
        Some(OutboxDraft {
            delivery_id: format!("{}-{name}", record.id),
            event: name.into(),
            body: format!("{{\"status\":\"{}\"}}", record.status.as_str()),
        })
    }
}

fn nothing(_: &HandoffRecord) -> Option<OutboxDraft> {
    None
}

fn asked(id: &str, at_ms: i64, channel: Channel, session: &str) -> Box<QueryEvent> {
    Box::new(QueryEvent {
        query_id: id.into(),
        at_ms,
        channel,
        query: "refund".into(),
        filters: serde_json::json!({}),
        result_count: 1,
        top_ids: vec!["billing/refunds".into()],
        confidence: Some(0.8),
        handoff_reasons: Vec::new(),
        latency_ms: 1.0,
        session_hash: Some(format!("hash-{session}")),
        burst_key: None,
        auto_reply: false,
    })
}

fn feedback(query_id: &str, article: &str, kind: FeedbackKind, at_ms: i64) -> FeedbackEvent {
    FeedbackEvent {
        query_id: query_id.into(),
        article_id: article.into(),
        event: kind,
        comment: None,
        at_ms,
    }
}

fn timeline_row(
    session: &str,
    at_ms: i64,
    query_id: Option<&str>,
    customer: Option<&str>,
    event: &str,
) -> SessionRow {
    SessionRow {
        session_hash: format!("hash-{session}"),
        at_ms,
        query_id: query_id.map(str::to_string),
        customer_hash: customer.map(str::to_string),
        event: event.into(),
    }
}

fn vote(customer: &str, article: &str, event: &'static str, at_ms: i64) -> VoteRow {
    VoteRow {
        customer_hash: customer.into(),
        article_id: article.into(),
        event,
        at_ms,
    }
}

fn attempt(at_ms: i64, outcome: AttemptOutcome, next_attempt_ms: Option<i64>) -> Attempt {
    Attempt {
        at_ms,
        status_code: Some(match outcome {
            AttemptOutcome::Delivered => 200,
            AttemptOutcome::Retry => 503,
            AttemptOutcome::Dead => 410,
        }),
        error: None,
        duration_ms: 3,
        outcome,
        next_attempt_ms,
    }
}

fn window(from_ms: i64, to_ms: i64, channel: Option<&str>) -> Window {
    Window {
        from_ms,
        to_ms,
        channel: channel.map(str::to_string),
    }
}

fn rows(rows: &[SessionRow]) -> Vec<(i64, Option<String>, Option<String>, String)> {
    rows.iter()
        .map(|r| {
            (
                r.at_ms,
                r.query_id.clone(),
                r.customer_hash.clone(),
                r.event.clone(),
            )
        })
        .collect()
}

fn votes(rows: &[VoteRow]) -> Vec<(String, String, &'static str, i64)> {
    let mut votes: Vec<_> = rows
        .iter()
        .map(|v| {
            (
                v.customer_hash.clone(),
                v.article_id.clone(),
                v.event,
                v.at_ms,
            )
        })
        .collect();
    votes.sort();
    votes
}

// ---------------------------------------------------------------------------
// Hand-offs.

fn suite_one_open_handoff_and_guarded_transitions(store: &dyn Store) {
    let (first, created) = store
        .create_handoff(new_handoff("h1", "s1", 10), &event("handoff.created"))
        .unwrap();
    assert!(created);
    assert_eq!(first.status, HandoffStatus::Waiting);
    assert_eq!(
        first.contact.as_ref().unwrap().email.as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(first.reasons, ["low_confidence"]);
    assert_eq!(first.channel.as_deref(), Some("chat"));
    let (again, created) = store
        .create_handoff(new_handoff("h2", "s1", 20), &event("handoff.created"))
        .unwrap();
    assert!(!created);
    assert_eq!(again, first);
    let (other, _) = store
        .create_handoff(new_handoff("h3", "s2", 30), &event("handoff.created"))
        .unwrap();
    // Same millisecond: the one created first is ahead.
    let (tied, _) = store
        .create_handoff(new_handoff("h0", "s3", 30), &event("handoff.created"))
        .unwrap();
    assert_eq!(store.position(&first).unwrap(), Some(1));
    assert_eq!(store.position(&other).unwrap(), Some(2));
    assert_eq!(store.position(&tied).unwrap(), Some(3));
    assert_eq!(store.handoff("h1").unwrap(), Some(first.clone()));
    assert_eq!(store.handoff("h2").unwrap(), None);

    let claimed = store
        .claim("h1", "Dana", 50, &event("handoff.claimed"))
        .unwrap();
    let Transition::Done(claimed) = claimed else {
        panic!("{claimed:?}")
    };
    assert_eq!(
        (
            claimed.status,
            claimed.claimed_by.as_deref(),
            claimed.claimed_ms
        ),
        (HandoffStatus::Claimed, Some("Dana"), Some(50))
    );
    assert_eq!(store.position(&claimed).unwrap(), None);
    assert_eq!(store.position(&other).unwrap(), Some(1));
    match store
        .claim("h1", "Sam", 60, &event("handoff.claimed"))
        .unwrap()
    {
        Transition::Conflict(record) => assert_eq!(record.claimed_by.as_deref(), Some("Dana")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.claim("nope", "Sam", 60, &event("x")).unwrap(),
        Transition::NotFound
    ));
    assert!(matches!(
        store
            .close("nope", Resolution::Spam, None, 60, &event("x"))
            .unwrap(),
        Transition::NotFound
    ));
    let closed = store
        .close(
            "h1",
            Resolution::Solved,
            Some("refunded".into()),
            90,
            &event("handoff.closed"),
        )
        .unwrap();
    match &closed {
        Transition::Done(record) => {
            assert_eq!(record.status, HandoffStatus::Closed);
            assert_eq!(record.resolution, Some(Resolution::Solved));
            assert_eq!(record.note.as_deref(), Some("refunded"));
            assert_eq!(record.closed_ms, Some(90));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store
            .close("h1", Resolution::Spam, None, 95, &event("x"))
            .unwrap(),
        Transition::Conflict(_)
    ));
    // A waiting one can be closed without a claim.
    assert!(matches!(
        store
            .close("h0", Resolution::Duplicate, None, 96, &nothing)
            .unwrap(),
        Transition::Done(_)
    ));
    // Closed: the session may ask again.
    let (next, created) = store
        .create_handoff(new_handoff("h4", "s1", 100), &event("handoff.created"))
        .unwrap();
    assert!(created && next.id == "h4");
    assert_eq!(store.session_handoff("hash-s1").unwrap().unwrap().id, "h4");
    assert_eq!(store.session_handoff("hash-nobody").unwrap(), None);

    let all: Vec<String> = store
        .handoffs(None, 100)
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(all, ["h1", "h3", "h0", "h4"]);
    let waiting: Vec<String> = store
        .handoffs(Some(HandoffStatus::Waiting), 1)
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(waiting, ["h3"]);
    let created: Vec<String> = store
        .handoffs_created(20, 100)
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(created, ["h3", "h0"]);

    // One event per successful change, none for the refused ones.
    let due = store.due_deliveries(1_000, 1_000 + 90_000, 100).unwrap();
    let names: Vec<&str> = due.iter().map(|i| i.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "handoff.created",
            "handoff.created",
            "handoff.created",
            "handoff.claimed",
            "handoff.closed",
            "handoff.created"
        ]
    );
    assert_eq!(due[3].body, "{\"status\":\"claimed\"}");
    assert_eq!(due[3].delivery_id, "h1-handoff.claimed");
    assert_eq!(due[3].created_ms, 50);
    assert_eq!(store.claim_waits(0).unwrap(), vec![40]);
    assert!(store.claim_waits(51).unwrap().is_empty());
    let stats = store.handoff_stats(0, 1_000, 95).unwrap();
    assert_eq!((stats.created, stats.claimed), (4, 1));
    assert_eq!(stats.closed.get(&Resolution::Solved), Some(&1));
    assert_eq!(stats.closed.get(&Resolution::Duplicate), Some(&1));
    // h3 has waited since 30, longer than the cut-off at 95; h0 was closed
    // without a claim.
    assert_eq!(stats.abandoned, 2);
    assert_eq!(stats.waits_ms, vec![40]);
    assert_eq!(stats.sessions, ["hash-s1", "hash-s2", "hash-s3"]);
}

/// Agents on two replicas claim the same hand-offs at once: exactly one
/// claim of each wins, and only its event is written.
fn suite_concurrent_claims(open: &Opener) {
    let stores = [open(), open()];
    const HANDOFFS: usize = 8;
    for n in 0..HANDOFFS {
        stores[0]
            .create_handoff(
                new_handoff(&format!("h{n}"), &format!("s{n}"), 10),
                &nothing,
            )
            .unwrap();
    }
    let barrier = Barrier::new(4);
    let wins: Vec<Vec<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                let store = stores[worker % 2].clone();
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let mut won = Vec::new();
                    for n in 0..HANDOFFS {
                        let id = format!("h{n}");
                        let agent = format!("agent{worker}");
                        match store
                            .claim(&id, &agent, 20, &event("handoff.claimed"))
                            .unwrap()
                        {
                            Transition::Done(record) => {
                                assert_eq!(record.claimed_by.as_deref(), Some(agent.as_str()));
                                won.push(id);
                            }
                            Transition::Conflict(record) => {
                                assert_eq!(record.status, HandoffStatus::Claimed);
                                assert_ne!(record.claimed_by.as_deref(), Some(agent.as_str()));
                            }
                            Transition::NotFound => panic!("{id} not found"),
                        }
                    }
                    won
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<String> = wins.into_iter().flatten().collect();
    all.sort();
    let expected: Vec<String> = (0..HANDOFFS).map(|n| format!("h{n}")).collect();
    assert_eq!(all, expected, "every hand-off claimed exactly once");
    let due = stores[1].due_deliveries(100, 200, 1_000).unwrap();
    assert_eq!(due.len(), HANDOFFS, "one claimed event per hand-off");
}

/// Two replicas create a hand-off for one session at once: one record.
fn suite_concurrent_creates(open: &Opener) {
    let stores = [open(), open()];
    for round in 0..6 {
        let session = format!("race{round}");
        let barrier = Barrier::new(2);
        let results: Vec<(HandoffRecord, bool)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..2)
                .map(|worker| {
                    let store = stores[worker].clone();
                    let barrier = &barrier;
                    let session = session.clone();
                    scope.spawn(move || {
                        barrier.wait();
                        store
                            .create_handoff(
                                new_handoff(&format!("{session}-{worker}"), &session, 10),
                                &event("handoff.created"),
                            )
                            .unwrap()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(results[0].0, results[1].0, "both see the one record");
        assert_eq!(
            results.iter().filter(|(_, created)| *created).count(),
            1,
            "exactly one created it"
        );
    }
    let records = stores[0].handoffs(None, 100).unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(stores[1].due_deliveries(100, 200, 100).unwrap().len(), 6);
}

// ---------------------------------------------------------------------------
// The outbox.

fn suite_outbox_events_and_leases(store: &dyn Store) {
    assert_eq!(store.next_due().unwrap(), None);
    assert!(store.due_deliveries(10, 100, 10).unwrap().is_empty());
    // No webhook: nothing is written.
    store
        .create_handoff(new_handoff("h0", "s0", 5), &nothing)
        .unwrap();
    assert_eq!(store.outbox_counts().unwrap(), OutboxCounts::default());

    let (record, _) = store
        .create_handoff(new_handoff("h1", "s1", 10), &event("handoff.created"))
        .unwrap();
    assert_eq!(store.next_due().unwrap(), Some(10));
    let leased = store.due_deliveries(10, 10 + 90_000, 10).unwrap();
    assert_eq!(leased.len(), 1);
    let item = leased[0].clone();
    assert_eq!(
        (
            item.delivery_id.as_str(),
            item.event.as_str(),
            item.created_ms,
            item.attempts
        ),
        ("h1-handoff.created", "handoff.created", 10, 0)
    );
    assert_eq!(item.body, "{\"status\":\"waiting\"}");
    assert_eq!(record.id, "h1");
    // Leased: no one else gets it until the lease ends.
    assert!(
        store
            .due_deliveries(20, 20 + 90_000, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due().unwrap(), Some(10 + 90_000));
    // A dead worker's lease runs out.
    let again = store.due_deliveries(10 + 90_000, 10 + 180_000, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].seq, item.seq);

    store
        .record_attempt(&item, &attempt(11, AttemptOutcome::Retry, Some(500)))
        .unwrap();
    // Settled: the lease is gone, the retry time counts.
    assert_eq!(store.next_due().unwrap(), Some(500));
    assert!(
        store
            .due_deliveries(499, 499 + 90_000, 10)
            .unwrap()
            .is_empty()
    );
    let item = store
        .due_deliveries(500, 500 + 90_000, 10)
        .unwrap()
        .remove(0);
    assert_eq!(item.attempts, 1);
    store
        .record_attempt(&item, &attempt(501, AttemptOutcome::Delivered, None))
        .unwrap();
    assert_eq!(store.next_due().unwrap(), None);
    assert_eq!(
        store.outbox_counts().unwrap(),
        OutboxCounts {
            pending: 0,
            delivered: 1,
            dead: 0,
            retried: 1
        }
    );
    let log = store.deliveries(10).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].attempt, log[0].result.status_code), (2, Some(200)));
    assert_eq!(log[0].result.outcome, AttemptOutcome::Delivered);
    assert_eq!((log[1].attempt, log[1].result.status_code), (1, Some(503)));
    assert_eq!(log[1].result.outcome, AttemptOutcome::Retry);
    assert_eq!(log[0].delivery_id, log[1].delivery_id);
    assert_eq!(store.deliveries(1).unwrap().len(), 1);

    // A dead event leaves the queue too.
    store
        .claim("h1", "Dana", 600, &event("handoff.claimed"))
        .unwrap();
    let item = store.due_deliveries(600, 700, 10).unwrap().remove(0);
    store
        .record_attempt(&item, &attempt(601, AttemptOutcome::Dead, None))
        .unwrap();
    let counts = store.outbox_counts().unwrap();
    assert_eq!((counts.pending, counts.delivered, counts.dead), (0, 1, 1));
}

/// The oldest event holds back the later ones while it waits.
fn suite_outbox_delivers_in_order(store: &dyn Store) {
    for n in 0..3 {
        store
            .create_handoff(
                new_handoff(&format!("h{n}"), &format!("s{n}"), 10 + n),
                &event("handoff.created"),
            )
            .unwrap();
    }
    let first = store.due_deliveries(100, 1_000, 1).unwrap();
    assert_eq!(first.len(), 1, "the limit holds");
    assert_eq!(first[0].delivery_id, "h0-handoff.created");
    // The first is leased: nothing after it is given out.
    assert!(store.due_deliveries(100, 1_000, 10).unwrap().is_empty());
    store
        .record_attempt(&first[0], &attempt(101, AttemptOutcome::Retry, Some(5_000)))
        .unwrap();
    // Waiting for its retry: still nothing after it.
    assert!(store.due_deliveries(200, 1_000, 10).unwrap().is_empty());
    assert_eq!(store.next_due().unwrap(), Some(11));
    let all = store.due_deliveries(5_000, 6_000, 10).unwrap();
    let ids: Vec<&str> = all.iter().map(|i| i.delivery_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "h0-handoff.created",
            "h1-handoff.created",
            "h2-handoff.created"
        ]
    );
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
}

/// Workers on two replicas lease and deliver at once: each event goes to
/// exactly one of them.
fn suite_concurrent_leases(open: &Opener) {
    let stores = [open(), open()];
    const EVENTS: usize = 30;
    for n in 0..EVENTS {
        stores[0]
            .create_handoff(
                new_handoff(&format!("h{n}"), &format!("s{n}"), 10),
                &event("handoff.created"),
            )
            .unwrap();
    }
    let barrier = Barrier::new(4);
    let delivered: Vec<Vec<i64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                let store = stores[worker % 2].clone();
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let mut seqs = Vec::new();
                    let deadline = Instant::now() + Duration::from_secs(60);
                    // Leases far in the future: none runs out during the test.
                    while store.outbox_counts().unwrap().pending > 0 {
                        assert!(Instant::now() < deadline, "the outbox never drained");
                        let items = store.due_deliveries(1_000, 1_000_000_000, 3).unwrap();
                        for item in &items {
                            seqs.push(item.seq);
                            store
                                .record_attempt(
                                    item,
                                    &attempt(1_001, AttemptOutcome::Delivered, None),
                                )
                                .unwrap();
                        }
                        if items.is_empty() {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                    seqs
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = delivered.iter().flatten().copied().collect();
    let count = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), count, "an event was leased twice: {delivered:?}");
    assert_eq!(count, EVENTS);
    assert_eq!(stores[1].outbox_counts().unwrap().delivered, EVENTS as u64);
}

// ---------------------------------------------------------------------------
// Events and timelines.

fn suite_events_and_timelines(store: &dyn Store) {
    store.write_events(&EventBatch::default()).unwrap();
    let mut duplicate = asked("q1", 999, Channel::Search, "other");
    duplicate.query = "second copy".into();
    let queries = [
        asked("q1", 100, Channel::Answer, "a"),
        asked("q2", 110, Channel::Search, "a"),
        duplicate,
    ];
    let feedback = [
        feedback("q1", "billing/refunds", FeedbackKind::Helpful, 120),
        feedback("q1", "billing/refunds", FeedbackKind::Helpful, 130),
    ];
    let sessions = [
        timeline_row("a", 100, Some("q1"), Some("ada"), "{\"n\":1}"),
        timeline_row("a", 100, None, Some("ada"), "{\"n\":2}"),
        timeline_row("a", 90, Some("q0"), None, "{\"n\":0}"),
        timeline_row("b", 300, Some("q3"), Some("ada"), "{\"n\":3}"),
        timeline_row("c", 200, None, Some("bob"), "{\"n\":4}"),
    ];
    let batch_votes = [
        vote("ada", "billing/refunds", "not_helpful", 100),
        vote("ada", "billing/cards", "helpful", 101),
        // The later vote on one article replaces the earlier, in one batch too.
        vote("ada", "billing/refunds", "helpful", 102),
        vote("bob", "billing/refunds", "not_helpful", 50),
    ];
    store
        .write_events(&EventBatch {
            queries: &queries,
            feedback: &feedback,
            sessions: &sessions,
            votes: &batch_votes,
        })
        .unwrap();
    assert!(store.knows_query("q1").unwrap());
    assert!(store.knows_query("q2").unwrap());
    assert!(!store.knows_query("q9").unwrap());
    // The first copy of a query stays.
    assert_eq!(
        store.session_of_query("q1").unwrap().as_deref(),
        Some("hash-a")
    );
    assert_eq!(
        store.session_of_query("q3").unwrap().as_deref(),
        Some("hash-b")
    );
    assert_eq!(store.session_of_query("q9").unwrap(), None);
    let report = store
        .query_counts(&window(0, 1_000, None), QueryReportKind::Top, 10)
        .unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!((report[0].query.as_str(), report[0].count), ("refund", 2));
    // One vote per (query, article, kind).
    assert_eq!(store.feedback_totals().unwrap()["billing/refunds"], (1, 0));

    // Oldest first; rows of one millisecond in the order written.
    assert_eq!(
        rows(&store.session_rows("hash-a", 0).unwrap()),
        [
            (90, Some("q0".into()), None, "{\"n\":0}".into()),
            (
                100,
                Some("q1".into()),
                Some("ada".into()),
                "{\"n\":1}".into()
            ),
            (100, None, Some("ada".into()), "{\"n\":2}".into()),
        ]
    );
    assert_eq!(store.session_rows("hash-a", 95).unwrap().len(), 2);
    assert!(store.session_rows("hash-z", 0).unwrap().is_empty());
    assert_eq!(
        store.stored_sessions(0).unwrap(),
        HashSet::from(["hash-a".to_string(), "hash-b".into(), "hash-c".into()])
    );
    assert_eq!(
        store.stored_sessions(150).unwrap(),
        HashSet::from(["hash-b".to_string(), "hash-c".into()])
    );
    // Most recently active first.
    assert_eq!(
        store.customer_sessions("ada", 0).unwrap(),
        ["hash-b", "hash-a"]
    );
    assert_eq!(store.customer_sessions("ada", 150).unwrap(), ["hash-b"]);
    assert!(store.customer_sessions("nobody", 0).unwrap().is_empty());

    assert_eq!(
        votes(&store.customer_votes_of("ada", 0).unwrap()),
        [
            ("ada".into(), "billing/cards".into(), "helpful", 101),
            ("ada".into(), "billing/refunds".into(), "helpful", 102),
        ]
    );
    assert_eq!(store.customer_votes_of("ada", 102).unwrap().len(), 1);
    assert_eq!(store.customer_votes(0).unwrap().len(), 3);
    assert_eq!(
        votes(&store.customer_votes(60).unwrap()),
        votes(&store.customer_votes_of("ada", 0).unwrap())
    );
    // A later batch replaces a vote too.
    store
        .write_events(&EventBatch {
            votes: &[vote("bob", "billing/refunds", "helpful", 400)],
            ..EventBatch::default()
        })
        .unwrap();
    assert_eq!(
        votes(&store.customer_votes_of("bob", 0).unwrap()),
        [("bob".into(), "billing/refunds".into(), "helpful", 400)]
    );
}

fn suite_prune(store: &dyn Store) {
    let queries = [
        asked("old", 10, Channel::Search, "a"),
        asked("new", 100, Channel::Search, "a"),
    ];
    let feedback = [
        feedback("old", "billing/refunds", FeedbackKind::Click, 20),
        feedback("new", "billing/refunds", FeedbackKind::Click, 110),
    ];
    let sessions = [
        timeline_row("a", 10, Some("old"), Some("ada"), "{}"),
        timeline_row("a", 100, Some("new"), Some("ada"), "{}"),
    ];
    store
        .write_events(&EventBatch {
            queries: &queries,
            feedback: &feedback,
            sessions: &sessions,
            votes: &[
                vote("ada", "x", "helpful", 10),
                vote("bob", "x", "helpful", 200),
            ],
        })
        .unwrap();
    assert_eq!(store.prune_events(50).unwrap(), 2);
    assert!(!store.knows_query("old").unwrap());
    assert!(store.knows_query("new").unwrap());
    assert_eq!(store.prune_events(50).unwrap(), 0);
    assert_eq!(store.prune_sessions(50, 150).unwrap(), 2);
    assert_eq!(store.session_rows("hash-a", 0).unwrap().len(), 1);
    assert_eq!(
        votes(&store.customer_votes(0).unwrap()),
        [("bob".into(), "x".into(), "helpful", 200)]
    );
}

// ---------------------------------------------------------------------------
// Ratings, forgetting, erasing.

fn suite_ratings(store: &dyn Store) {
    let rating = |session: &str, score: u8, at_ms: i64| Rating {
        session_hash: session.into(),
        score,
        comment: Some("fine".into()),
        at_ms,
    };
    assert!(!store.rate(rating("s1", 4, 10)).unwrap());
    assert!(!store.rate(rating("s2", 2, 10)).unwrap());
    assert!(!store.rate(rating("s3", 5, 5)).unwrap());
    assert!(store.rate(rating("s1", 1, 20)).unwrap(), "replaced");
    assert!(store.rate(rating("s1", 3, 20)).unwrap(), "replaced again");
    assert_eq!(store.ratings(0, 1_000).unwrap(), vec![5, 2, 3]);
    assert_eq!(store.ratings(10, 20).unwrap(), vec![2]);
    assert!(store.ratings(21, 1_000).unwrap().is_empty());
}

fn suite_forget_sessions(store: &dyn Store) {
    store
        .create_handoff(new_handoff("h1", "s1", 10), &event("handoff.created"))
        .unwrap();
    store
        .close(
            "h1",
            Resolution::Solved,
            Some("called back".into()),
            20,
            &nothing,
        )
        .unwrap();
    // A recent one is kept whole.
    store
        .create_handoff(new_handoff("h2", "s2", 100), &nothing)
        .unwrap();
    let item = store.due_deliveries(30, 60, 10).unwrap().remove(0);
    store
        .record_attempt(&item, &attempt(21, AttemptOutcome::Delivered, None))
        .unwrap();
    store
        .rate(Rating {
            session_hash: "hash-s1".into(),
            score: 5,
            comment: Some("thanks Dana".into()),
            at_ms: 25,
        })
        .unwrap();
    // The hand-off, the comment and the delivered body.
    assert_eq!(store.forget_sessions(30).unwrap(), 3);
    assert_eq!(
        store.forget_sessions(30).unwrap(),
        0,
        "nothing left to forget"
    );
    let record = store.handoff("h1").unwrap().unwrap();
    assert_eq!(
        (
            record.session_id,
            record.contact,
            record.message,
            record.note
        ),
        (None, None, None, None)
    );
    assert_eq!(record.resolution, Some(Resolution::Solved));
    assert_eq!(store.ratings(0, 1_000).unwrap(), vec![5]);
    let kept = store.handoff("h2").unwrap().unwrap();
    assert_eq!(kept.session_id.as_deref(), Some("s2"));
    assert!(kept.contact.is_some());
    // The delivery log keeps its id.
    assert_eq!(
        store.deliveries(10).unwrap()[0].delivery_id,
        "h1-handoff.created"
    );
}

/// Ada had two sessions (the second's later rows lack her hash), Bob one:
/// erasing Ada leaves every row of Bob's.
fn suite_erase_customer(store: &dyn Store) {
    let queries = [
        asked("qa1", 5, Channel::Answer, "ada-1"),
        asked("qa2", 6, Channel::Email, "ada-2"),
        asked("qb1", 7, Channel::Answer, "bob-1"),
    ];
    let mut useless = feedback("qa1", "billing/refunds", FeedbackKind::NotHelpful, 8);
    useless.comment = Some("useless".into());
    let feedback = [
        useless,
        feedback("qb1", "billing/refunds", FeedbackKind::Helpful, 8),
    ];
    let sessions = [
        timeline_row("ada-1", 5, Some("qa1"), Some("ada"), "{}"),
        timeline_row("ada-2", 5, Some("qa2"), Some("ada"), "{}"),
        timeline_row("ada-2", 5, Some("qa2"), None, "{}"),
        timeline_row("bob-1", 5, Some("qb1"), Some("bob"), "{}"),
    ];
    store
        .write_events(&EventBatch {
            queries: &queries,
            feedback: &feedback,
            sessions: &sessions,
            votes: &[
                vote("ada", "billing/refunds", "not_helpful", 8),
                vote("bob", "billing/refunds", "not_helpful", 8),
            ],
        })
        .unwrap();
    let with_body = |record: &HandoffRecord| {
        Some(OutboxDraft {
            delivery_id: format!("{}-created", record.id),
            event: "handoff.created".into(),
            body: format!("{{\"handoff\":{{\"handoff_id\":\"{}\"}}}}", record.id),
        })
    };
    store
        .create_handoff(new_handoff("ha", "ada-1", 10), &with_body)
        .unwrap();
    store
        .create_handoff(new_handoff("hb", "bob-1", 11), &with_body)
        .unwrap();
    // Ada's event was delivered: its body is scrubbed, its log kept.
    let first = store
        .due_deliveries(100, 100 + 90_000, 1)
        .unwrap()
        .remove(0);
    assert_eq!(first.delivery_id, "ha-created");
    store
        .record_attempt(&first, &attempt(12, AttemptOutcome::Delivered, None))
        .unwrap();
    store
        .claim("ha", "Dana", 13, &|record| {
            Some(OutboxDraft {
                delivery_id: format!("{}-claimed", record.id),
                event: "handoff.claimed".into(),
                body: "{\"handoff\":{}}".into(),
            })
        })
        .unwrap();
    for session in ["ada-1", "bob-1"] {
        store
            .rate(Rating {
                session_hash: format!("hash-{session}"),
                score: 2,
                comment: Some("slow".into()),
                at_ms: 20,
            })
            .unwrap();
    }

    let erased = store.erase_customer("ada", &[]).unwrap();
    assert_eq!(
        erased,
        Erased {
            sessions: 2,
            session_events: 3,
            queries: 2,
            feedback: 1,
            votes: 1,
            handoffs: 1,
            ratings: 1,
            // The pending claim deleted, the delivered creation scrubbed.
            outbox_events: 2,
        }
    );
    assert!(store.handoff("ha").unwrap().is_none());
    assert!(store.session_rows("hash-ada-2", 0).unwrap().is_empty());
    assert!(!store.knows_query("qa1").unwrap());
    // The claim event is gone; the delivery log keeps the creation's id.
    let pending: Vec<String> = store
        .due_deliveries(1_000_000, 2_000_000, 10)
        .unwrap()
        .into_iter()
        .map(|i| i.delivery_id)
        .collect();
    assert_eq!(pending, ["hb-created"]);
    assert_eq!(store.deliveries(10).unwrap()[0].delivery_id, "ha-created");
    // Bob keeps everything.
    assert!(store.handoff("hb").unwrap().is_some());
    assert_eq!(store.session_rows("hash-bob-1", 0).unwrap().len(), 1);
    assert!(store.knows_query("qb1").unwrap());
    assert_eq!(store.feedback_totals().unwrap()["billing/refunds"], (1, 0));
    assert_eq!(
        votes(&store.customer_votes(0).unwrap()),
        [("bob".into(), "billing/refunds".into(), "not_helpful", 8)]
    );
    assert_eq!(store.ratings(0, 1_000).unwrap(), vec![2]);
    // Again: nothing left, and not an error.
    assert_eq!(store.erase_customer("ada", &[]).unwrap(), Erased::default());
}

/// With analytics off the timelines live only in memory: the hand-offs of
/// the sessions the caller names are erased all the same.
fn suite_erase_live_sessions(store: &dyn Store) {
    store
        .create_handoff(new_handoff("h1", "s1", 10), &event("handoff.created"))
        .unwrap();
    let erased = store
        .erase_customer("ada", &["hash-s1".to_string(), "hash-s1".to_string()])
        .unwrap();
    assert_eq!(
        erased,
        Erased {
            sessions: 1,
            handoffs: 1,
            outbox_events: 1,
            ..Erased::default()
        }
    );
    assert!(store.handoff("h1").unwrap().is_none());
    assert_eq!(store.outbox_counts().unwrap(), OutboxCounts::default());
}

// ---------------------------------------------------------------------------
// Dashboard sign-ins and the schema.

fn suite_admin_sessions(store: &dyn Store) {
    let session = |id: &str, seen: i64| AdminSessionRow {
        id_hash: id.into(),
        csrf: format!("csrf-{id}"),
        admin: Some("ops".into()),
        created_ms: 1,
        last_seen_ms: seen,
    };
    assert_eq!(store.admin_session("a").unwrap(), None);
    store.put_admin_session(&session("a", 10)).unwrap();
    assert_eq!(store.admin_session("a").unwrap(), Some(session("a", 10)));
    // Put again: replaced.
    let mut renewed = session("a", 12);
    renewed.admin = None;
    store.put_admin_session(&renewed).unwrap();
    assert_eq!(store.admin_session("a").unwrap(), Some(renewed));
    assert!(store.touch_admin_session("a", 20).unwrap());
    // Never backwards.
    assert!(store.touch_admin_session("a", 15).unwrap());
    assert_eq!(store.admin_session("a").unwrap().unwrap().last_seen_ms, 20);
    assert!(!store.touch_admin_session("nobody", 20).unwrap());
    assert!(store.delete_admin_session("a").unwrap());
    assert!(!store.delete_admin_session("a").unwrap());

    for (id, seen) in [("s1", 5), ("s2", 50), ("s3", 60), ("s4", 70), ("s5", 80)] {
        store.put_admin_session(&session(id, seen)).unwrap();
    }
    // s1 is idle; of the rest the two most recently used stay.
    assert_eq!(store.prune_admin_sessions(10, 2).unwrap(), 3);
    let left: Vec<bool> = ["s1", "s2", "s3", "s4", "s5"]
        .iter()
        .map(|id| store.admin_session(id).unwrap().is_some())
        .collect();
    assert_eq!(left, [false, false, false, true, true]);
    assert_eq!(store.prune_admin_sessions(10, 2).unwrap(), 0);
}

fn suite_schema_status(store: &dyn Store) {
    let status = store.schema_status().unwrap();
    assert!(status.current > 0);
    assert_eq!(status.current, status.latest);
    assert!(status.pending.is_empty(), "{status:?}");
    assert_eq!(status.applied.len() as i64, status.latest);
    assert_eq!(
        status.backend,
        if store.is_shared() {
            "postgres"
        } else {
            "sqlite"
        }
    );
    store.ping().unwrap();
    assert_eq!(store.health().is_some(), store.is_shared());
    // The first replica's salt is everyone's; alone, a store keeps its own.
    assert_eq!(store.shared_salt("first").unwrap(), "first");
    let second = store.shared_salt("second").unwrap();
    assert_eq!(second, if store.is_shared() { "first" } else { "second" });
}

// ---------------------------------------------------------------------------
// Reports: one data set, the same answers from both backends.

const DAY: i64 = 86_400_000;
/// 2023-11-14T22:13:20Z: two hours before midnight, so a day boundary is
/// crossed.
const T0: i64 = 1_700_000_000_000;

/// Queries on every channel over three UTC days, feedback of every kind,
/// hand-offs (claimed, closed, waiting) and wordings whose order depends on
/// the collation (`Zebra` sorts before `apple` byte by byte).
fn fill_report_data(store: &dyn Store) {
    let mut queries = Vec::new();
    let mut add = |id: &str,
                   at_ms: i64,
                   channel: Channel,
                   session: &str,
                   query: &str,
                   results: u64,
                   top: &[&str],
                   reasons: &[&str],
                   auto_reply: bool| {
        let mut q = asked(id, at_ms, channel, session);
        q.query = query.into();
        q.result_count = results;
        q.top_ids = top.iter().map(|s| s.to_string()).collect();
        q.handoff_reasons = reasons.iter().map(|s| s.to_string()).collect();
        q.auto_reply = auto_reply;
        q.confidence = (channel == Channel::Answer).then_some(0.3);
        queries.push(q);
    };
    let a = ["billing/refunds", "billing/cards", "account/password"];
    let b = ["account/password", "billing/refunds"];
    add("s1", T0, Channel::Search, "p1", "refund", 3, &a, &[], false);
    add(
        "s2",
        T0 + 1_000,
        Channel::Search,
        "p1",
        "refund",
        3,
        &a,
        &[],
        false,
    );
    add(
        "s3",
        T0 + 2_000,
        Channel::Autocomplete,
        "p2",
        "Zebra",
        0,
        &[],
        &[],
        false,
    );
    add(
        "s4",
        T0 + 3_000,
        Channel::Search,
        "p2",
        "apple",
        2,
        &b,
        &[],
        false,
    );
    add(
        "s5",
        T0 + 3 * 3_600_000,
        Channel::Search,
        "p3",
        "apple",
        0,
        &[],
        &[],
        false,
    );
    add(
        "s6",
        T0 + 3 * 3_600_000,
        Channel::Search,
        "p3",
        "",
        0,
        &[],
        &[],
        false,
    );
    add(
        "s7",
        T0 + DAY,
        Channel::Autocomplete,
        "p4",
        "Zebra",
        2,
        &b,
        &[],
        false,
    );
    add(
        "a1",
        T0 + 10_000,
        Channel::Answer,
        "c1",
        "refund",
        2,
        &a,
        &[],
        false,
    );
    add(
        "a2",
        T0 + 11_000,
        Channel::Answer,
        "c1",
        "refund",
        2,
        &a,
        &["repeated_question", "low_confidence"],
        false,
    );
    add(
        "a3",
        T0 + 12_000,
        Channel::Answer,
        "c2",
        "apple",
        0,
        &[],
        &["no_results"],
        false,
    );
    add(
        "a4",
        T0 + DAY + 5_000,
        Channel::Answer,
        "c3",
        "cards",
        1,
        &b,
        &[],
        false,
    );
    add(
        "a5",
        T0 + 2 * DAY,
        Channel::Answer,
        "c3",
        "cards",
        1,
        &b,
        &["human_request"],
        false,
    );
    add(
        "e1",
        T0 + 20_000,
        Channel::Email,
        "m1",
        "invoice",
        1,
        &a,
        &[],
        true,
    );
    add(
        "e2",
        T0 + DAY + 20_000,
        Channel::Email,
        "m2",
        "invoice",
        0,
        &[],
        &["no_results"],
        false,
    );
    add(
        "f1",
        T0 + 30_000,
        Channel::Form,
        "f1",
        "address",
        1,
        &b,
        &[],
        false,
    );
    add(
        "o1",
        T0 + 40_000,
        Channel::Social,
        "o1",
        "refund",
        1,
        &a,
        &[],
        true,
    );
    add(
        "g1",
        T0 + 50_000,
        Channel::Suggest,
        "g1",
        "refund",
        3,
        &a,
        &[],
        false,
    );
    // Outside the windows below.
    add(
        "x1",
        T0 - 10 * DAY,
        Channel::Search,
        "p9",
        "refund",
        3,
        &a,
        &[],
        false,
    );

    let feedback = [
        feedback("s1", "billing/cards", FeedbackKind::Click, T0 + 100),
        feedback("s1", "account/password", FeedbackKind::Click, T0 + 200),
        feedback("s2", "billing/refunds", FeedbackKind::Click, T0 + 1_100),
        feedback("s4", "billing/refunds", FeedbackKind::Click, T0 + 3_100),
        feedback(
            "s7",
            "account/password",
            FeedbackKind::Click,
            T0 + DAY + 100,
        ),
        feedback(
            "s7",
            "account/password",
            FeedbackKind::Helpful,
            T0 + DAY + 200,
        ),
        feedback("a1", "billing/refunds", FeedbackKind::Helpful, T0 + 10_100),
        feedback("a1", "billing/refunds", FeedbackKind::Resolved, T0 + 10_200),
        feedback(
            "a4",
            "account/password",
            FeedbackKind::NotHelpful,
            T0 + DAY + 5_100,
        ),
        feedback(
            "a5",
            "account/password",
            FeedbackKind::NotHelpful,
            T0 + 2 * DAY + 100,
        ),
        feedback(
            "e1",
            "billing/refunds",
            FeedbackKind::UsedInReply,
            T0 + 20_100,
        ),
        feedback("a2", "billing/refunds", FeedbackKind::Handoff, T0 + 11_100),
        feedback(
            "x1",
            "billing/refunds",
            FeedbackKind::Helpful,
            T0 - 10 * DAY,
        ),
    ];
    store
        .write_events(&EventBatch {
            queries: &queries,
            feedback: &feedback,
            ..EventBatch::default()
        })
        .unwrap();

    let handoff = |id: &str, session: &str, at_ms: i64, channel: Option<&str>| {
        let mut new = new_handoff(id, session, at_ms);
        new.channel = channel.map(str::to_string);
        store
            .create_handoff(new, &event("handoff.created"))
            .unwrap();
    };
    handoff("hc1", "c1", T0 + 11_500, Some("chat"));
    handoff("hc3", "c3", T0 + 2 * DAY + 1_000, Some("chat"));
    handoff("hm2", "m2", T0 + DAY + 30_000, Some("email"));
    handoff("hp2", "p2", T0 + 4_000, Some("portal"));
    handoff("hp3", "p3", T0 + 3 * 3_600_000 + 1, None);
    // Same millisecond as hp3: the creation order decides.
    handoff("hf1", "f1", T0 + 3 * 3_600_000 + 1, Some("form"));
    store
        .claim("hc1", "Dana", T0 + 41_500, &event("handoff.claimed"))
        .unwrap();
    store
        .claim("hm2", "Sam", T0 + DAY + 90_000, &event("handoff.claimed"))
        .unwrap();
    store
        .claim(
            "hf1",
            "Sam",
            T0 + 3 * 3_600_000 + 501,
            &event("handoff.claimed"),
        )
        .unwrap();
    store
        .claim(
            "hp3",
            "Dana",
            T0 + 3 * 3_600_000 + 700,
            &event("handoff.claimed"),
        )
        .unwrap();
    store
        .close(
            "hc1",
            Resolution::Solved,
            None,
            T0 + 100_000,
            &event("handoff.closed"),
        )
        .unwrap();
    store
        .close(
            "hp2",
            Resolution::Spam,
            None,
            T0 + 5_000,
            &event("handoff.closed"),
        )
        .unwrap();
    store
        .close(
            "hf1",
            Resolution::NotSolved,
            None,
            T0 + 3 * 3_600_000 + 900,
            &nothing,
        )
        .unwrap();
    for (session, score, at_ms) in [
        ("c1", 4, T0 + 200_000),
        ("m2", 2, T0 + DAY),
        ("f1", 5, T0 + DAY),
    ] {
        store
            .rate(Rating {
                session_hash: format!("hash-{session}"),
                score,
                comment: None,
                at_ms,
            })
            .unwrap();
    }
}

/// Every report and read over the data set, as text: the same text from
/// both backends is the same answers.
fn report_everything(store: &dyn Store) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut put = |name: String, value: String| out.push((name, value));
    let windows = [
        window(T0 - DAY, T0 + 3 * DAY, None),
        window(T0 + 2_000, T0 + DAY + 10_000, None),
        window(T0 - DAY, T0 + 3 * DAY, Some("search")),
        window(T0 - DAY, T0 + 3 * DAY, Some("autocomplete")),
        window(T0 - DAY, T0 + 3 * DAY, Some("answer")),
        window(T0 - DAY, T0 + 3 * DAY, Some("email")),
        window(T0 - DAY, T0 + 3 * DAY, Some("suggest")),
        window(T0 - 20 * DAY, T0 + 3 * DAY, None),
        window(0, 1, None),
    ];
    for (n, w) in windows.iter().enumerate() {
        put(
            format!("{n} event_summary"),
            format!("{:?}", store.event_summary(w).unwrap()),
        );
        for kind in [
            QueryReportKind::Top,
            QueryReportKind::NoResults,
            QueryReportKind::NoClicks,
            QueryReportKind::Handoff,
        ] {
            for limit in [2, 100] {
                put(
                    format!("{n} query_counts {kind:?} {limit}"),
                    format!("{:?}", store.query_counts(w, kind, limit).unwrap()),
                );
            }
        }
        put(
            format!("{n} article_stats"),
            format!("{:?}", store.article_stats(w).unwrap()),
        );
        put(
            format!("{n} session_outcomes"),
            format!("{:?}", store.session_outcomes(w).unwrap()),
        );
        put(
            format!("{n} gap_counts"),
            format!("{:?}", store.gap_counts(w).unwrap()),
        );
        put(
            format!("{n} shown_before_handoff"),
            format!("{:?}", store.shown_before_handoff(w).unwrap()),
        );
        put(
            format!("{n} channel_activity"),
            format!("{:?}", store.channel_activity(w).unwrap()),
        );
        put(
            format!("{n} handoff_stats"),
            format!(
                "{:?}",
                store.handoff_stats(w.from_ms, w.to_ms, T0 + DAY).unwrap()
            ),
        );
        put(
            format!("{n} handoffs_created"),
            format!("{:?}", store.handoffs_created(w.from_ms, w.to_ms).unwrap()),
        );
        put(
            format!("{n} ratings"),
            format!("{:?}", store.ratings(w.from_ms, w.to_ms).unwrap()),
        );
    }
    put(
        "feedback_totals".into(),
        format!("{:?}", store.feedback_totals().unwrap()),
    );
    put(
        "claim_waits".into(),
        format!("{:?}", store.claim_waits(0).unwrap()),
    );
    put(
        "handoffs".into(),
        format!("{:?}", store.handoffs(None, 100).unwrap()),
    );
    put(
        "handoffs claimed".into(),
        format!(
            "{:?}",
            store.handoffs(Some(HandoffStatus::Claimed), 100).unwrap()
        ),
    );
    put(
        "session_handoff".into(),
        format!("{:?}", store.session_handoff("hash-c3").unwrap()),
    );
    put(
        "next_due".into(),
        format!("{:?}", store.next_due().unwrap()),
    );
    put(
        "outbox_counts".into(),
        format!("{:?}", store.outbox_counts().unwrap()),
    );
    put(
        "due_deliveries".into(),
        format!(
            "{:?}",
            store
                .due_deliveries(T0 + 3 * DAY, T0 + 4 * DAY, 100)
                .unwrap()
        ),
    );
    out
}

/// The answers the reports must give on either backend (a few, by hand).
fn suite_reports_sanity(store: &dyn Store) {
    fill_report_data(store);
    let all = window(T0 - DAY, T0 + 3 * DAY, None);
    let summary = store.event_summary(&all).unwrap();
    assert_eq!(summary.queries, 17);
    assert_eq!(summary.searches, 7);
    assert_eq!(summary.bot_questions, 5);
    // Clicks at positions 2, 3, 1, 2 and 1.
    assert_eq!(summary.mean_click_position, Some(9.0 / 5.0));
    assert_eq!(summary.handoff_reasons.get("no_results"), Some(&2));
    let days: Vec<&str> = summary.per_day.iter().map(|d| d.date.as_str()).collect();
    assert_eq!(days, ["2023-11-14", "2023-11-15", "2023-11-16"]);
    let gaps = store.gap_counts(&all).unwrap();
    let words: Vec<&str> = gaps.iter().map(|g| g.query.as_str()).collect();
    assert_eq!(words.first(), Some(&"Zebra"), "byte order: {words:?}");
    let top = store.query_counts(&all, QueryReportKind::Top, 100).unwrap();
    assert_eq!((top[0].query.as_str(), top[0].count), ("refund", 6));
    let outcomes: BTreeMap<String, bool> =
        store.session_outcomes(&all).unwrap().into_iter().collect();
    assert_eq!(outcomes.get("hash-c1"), Some(&true));
    assert_eq!(outcomes.get("hash-c2"), Some(&false));
    let channels = store.channel_activity(&all).unwrap();
    assert_eq!(channels["chat"].messages, 5);
    assert_eq!(channels["email"].auto_replied, 1);
    assert_eq!(channels["form"].first_response_ms, vec![500]);
    let shown = store.shown_before_handoff(&all).unwrap();
    // hc1, hc3, hp2 and hf1 (hp3's session was shown nothing).
    assert_eq!(shown.get("billing/refunds"), Some(&4));
}

#[test]
fn reports_are_the_same_on_both_backends() {
    let Some(open) = postgres_opener("reports_agree") else {
        return;
    };
    let postgres = open();
    let (_dir, open_sqlite) = sqlite_opener();
    let sqlite = open_sqlite();
    fill_report_data(sqlite.as_ref());
    fill_report_data(postgres.as_ref());
    let expected = report_everything(sqlite.as_ref());
    let found = report_everything(postgres.as_ref());
    assert_eq!(expected.len(), found.len());
    let mut differences = Vec::new();
    for ((name, sqlite), (_, postgres)) in expected.iter().zip(&found) {
        if sqlite != postgres {
            differences.push(format!(
                "{name}:\n  sqlite:   {sqlite}\n  postgres: {postgres}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

// ---------------------------------------------------------------------------
// PostgreSQL only: migrations, replicas starting together, the database
// going away and coming back, notifications.

#[test]
fn postgres_migrating_twice_is_a_no_op() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    let url = cluster.create_database("migrate_twice");
    let store = PgStore::connect(&url).unwrap();
    assert_eq!(store.status().unwrap().current, 0);
    let all: Vec<i64> = rapport::store::postgres::MIGRATIONS
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(store.migrate().unwrap(), all);
    assert!(store.migrate().unwrap().is_empty());
    let reopened = PgStore::open(&url).unwrap();
    let status = reopened.status().unwrap();
    assert_eq!(status.current, status.latest);
    assert_eq!(status.applied.len(), all.len());
}

#[test]
fn postgres_replicas_starting_together_migrate_once() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    let url = cluster.create_database("open_together");
    let barrier = Barrier::new(3);
    let stores: Vec<PgStore> = std::thread::scope(|scope| {
        let openers: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    PgStore::open(&url)
                })
            })
            .collect();
        openers
            .into_iter()
            .map(|o| o.join().unwrap().unwrap())
            .collect()
    });
    for store in &stores {
        let status = store.schema_status().unwrap();
        assert_eq!(
            status.applied.len() as i64,
            status.latest,
            "each applied once"
        );
        assert!(status.pending.is_empty());
    }
}

#[test]
fn postgres_down_fails_fast_and_comes_back() {
    let Some(cluster) = pg::Cluster::start() else {
        return;
    };
    let url = cluster.create_database("down");
    let store = PgStore::open(&url).unwrap();
    let health = Store::health(&store).unwrap();
    store
        .create_handoff(new_handoff("h1", "s1", 10), &nothing)
        .unwrap();
    cluster.stop();
    let error = store.handoff("h1").unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(!health.is_up());
    // Down: the next call fails at once, without waiting for a timeout.
    let started = Instant::now();
    assert!(matches!(store.ping(), Err(StoreError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_millis(500));
    cluster.start_again();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !health.is_up() {
        assert!(Instant::now() < deadline, "never came back");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(health.reconnects() >= 1);
    // Connections from before the restart may be dead: each such call
    // fails as unavailable, and a later one succeeds.
    let deadline = Instant::now() + Duration::from_secs(20);
    let record = loop {
        match store.handoff("h1") {
            Ok(record) => break record,
            Err(error) if error.is_unavailable() => {
                assert!(Instant::now() < deadline, "{error}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("{error}"),
        }
    };
    assert_eq!(record.unwrap().id, "h1");
}

#[test]
fn postgres_replicas_hear_each_other() {
    let Some(open) = postgres_opener("notify") else {
        return;
    };
    let (listener, speaker) = (open(), open());
    assert!(listener.is_shared());
    let (sender, heard) = std::sync::mpsc::channel();
    let sender = std::sync::Mutex::new(sender);
    listener
        .listen(Box::new(move |payload| {
            let _ = sender.lock().unwrap().send(payload);
        }))
        .unwrap();
    // The listener connects in the background: say it until it is heard.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        speaker.publish("handoff:h1").unwrap();
        match heard.recv_timeout(Duration::from_millis(200)) {
            Ok(payload) => {
                assert_eq!(payload, "handoff:h1");
                break;
            }
            Err(_) => assert!(Instant::now() < deadline, "never heard"),
        }
    }
}

// ---------------------------------------------------------------------------
// TLS, as a managed database requires it.

/// A server that refuses unencrypted TCP connections (`hostssl` only), with
/// a self-signed certificate for 127.0.0.1: `require` connects encrypted
/// without checking it, `verify-full` connects only when told to trust it
/// (`sslrootcert`), and fails against the system's trust store.
#[test]
fn postgres_over_tls_follows_sslmode() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let (cert_pem, key_pem) = (certified.cert.pem(), certified.signing_key.serialize_pem());
    let Some(cluster) = pg::Cluster::start_tls(&cert_pem, &key_pem) else {
        return;
    };
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &cert_pem).unwrap();
    let url = cluster.url("postgres");

    let required = PgStore::open(&format!("{url}?sslmode=require")).unwrap();
    assert!(required.encrypted().unwrap());
    assert!(!required.verifies_server());
    // A store used through TLS like any other.
    required
        .put_admin_session(&AdminSessionRow {
            id_hash: "tls".into(),
            csrf: "csrf".into(),
            admin: None,
            created_ms: 1,
            last_seen_ms: 1,
        })
        .unwrap();
    assert!(required.admin_session("tls").unwrap().is_some());

    let verified = PgStore::open(&format!(
        "{url}?sslmode=verify-full&sslrootcert={}",
        ca.path().display()
    ))
    .unwrap();
    assert!(verified.encrypted().unwrap() && verified.verifies_server());

    // Not trusted by the system: refused, saying why.
    let refused = PgStore::open(&format!("{url}?sslmode=verify-full")).unwrap_err();
    assert!(refused.is_unavailable(), "{refused}");
    assert!(
        refused.to_string().to_lowercase().contains("certificate"),
        "{refused}"
    );
    // And without TLS the server says no.
    let plain = PgStore::open(&format!("{url}?sslmode=disable")).unwrap_err();
    assert!(plain.to_string().contains("pg_hba.conf"), "{plain}");
}
