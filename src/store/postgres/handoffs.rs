//! Hand-offs, their webhook outbox, ratings, erasure and dashboard sign-ins
//! on PostgreSQL, where several replicas change the same rows at once.
//!
//! What SQLite gets from its one writer is done here by the database:
//! - one open hand-off per session: the partial unique index
//!   `handoffs_open`, with `INSERT … ON CONFLICT DO NOTHING` and a re-read
//!   when another replica's insert won;
//! - claim and close: one conditional `UPDATE … WHERE status … RETURNING`,
//!   so of two agents claiming at once exactly one row changes;
//! - the outbox: leasing locks the pending rows in order (`FOR UPDATE`), so
//!   two workers never lease one event, and neither jumps past an event the
//!   other is leasing.
//!
//! Each change that emits an event writes it to the outbox in the same
//! transaction, as on SQLite.

use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::store::{Client, get, narrow};
use crate::store::{
    AdminSessionRow, Attempt, AttemptOutcome, Contact, DeliveryRecord, Erased, HandoffRecord,
    HandoffStats, HandoffStatus, NewHandoff, OutboxCounts, OutboxDraft, OutboxItem, Rating,
    RenderEvent, Resolution, StoreError, Transition,
};

const HANDOFF_COLUMNS: &str = "id, session_hash, session_id, status, created_ms, claimed_ms, \
    claimed_by, closed_ms, resolution, note, contact_name, contact_email, message, reasons, channel";

/// Delivery attempts kept for `GET /api/v1/handoffs/deliveries`.
const KEEP_ATTEMPTS: i64 = 10_000;

/// Times another replica's hand-off for the session can appear and close
/// between our insert and our re-read before we give up (each time means
/// one was created and closed within the few milliseconds in between).
const CREATE_ATTEMPTS: usize = 3;

fn read_handoff(row: &tokio_postgres::Row) -> Result<HandoffRecord, StoreError> {
    let status: &str = get(row, 3)?;
    let resolution: Option<&str> = get(row, 8)?;
    let name: Option<String> = get(row, 10)?;
    let email: Option<String> = get(row, 11)?;
    let reasons: &str = get(row, 13)?;
    let corrupt = |column: &str, text: &str| {
        StoreError::Corrupt(format!("handoffs.{column}: unknown value {text:?}"))
    };
    Ok(HandoffRecord {
        id: get(row, 0)?,
        session_hash: get(row, 1)?,
        session_id: get(row, 2)?,
        status: HandoffStatus::parse(status).ok_or_else(|| corrupt("status", status))?,
        created_ms: get(row, 4)?,
        claimed_ms: get(row, 5)?,
        claimed_by: get(row, 6)?,
        closed_ms: get(row, 7)?,
        resolution: match resolution {
            Some(text) => Some(Resolution::parse(text).ok_or_else(|| corrupt("resolution", text))?),
            None => None,
        },
        note: get(row, 9)?,
        contact: (name.is_some() || email.is_some()).then_some(Contact { name, email }),
        message: get(row, 12)?,
        // As SQLite: a list that does not parse is an empty one.
        reasons: serde_json::from_str(reasons).unwrap_or_default(),
        channel: get(row, 14)?,
    })
}

fn read_handoffs(rows: &[tokio_postgres::Row]) -> Result<Vec<HandoffRecord>, StoreError> {
    rows.iter().map(read_handoff).collect()
}

pub(super) async fn get_handoff(
    client: &Client,
    id: &str,
) -> Result<Option<HandoffRecord>, StoreError> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE id = $1"
        ))
        .await?;
    client
        .query_opt(&statement, &[&id])
        .await?
        .as_ref()
        .map(read_handoff)
        .transpose()
}

/// Writes the event about `record` (if any) to the outbox.
async fn enqueue(
    transaction: &Transaction<'_>,
    record: &HandoffRecord,
    draft: Option<OutboxDraft>,
    at_ms: i64,
) -> Result<(), StoreError> {
    if let Some(draft) = draft {
        transaction
            .execute(
                "INSERT INTO outbox (delivery_id, event, body, created_ms, state, next_attempt_ms, handoff_id)
                 VALUES ($1, $2, $3, $4, 'pending', $4, $5)",
                &[&draft.delivery_id, &draft.event, &draft.body, &at_ms, &record.id],
            )
            .await?;
    }
    Ok(())
}

pub(super) async fn create(
    client: &mut Client,
    new: &NewHandoff,
    render: RenderEvent<'_>,
) -> Result<(HandoffRecord, bool), StoreError> {
    let transaction = client.transaction().await?;
    let open = transaction
        .prepare_cached(&format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE session_hash = $1 AND status <> 'closed'"
        ))
        .await?;
    // The conflict target is `handoffs_open`: a reused id still fails, as
    // on SQLite.
    let insert = transaction
        .prepare_cached(&format!(
            "INSERT INTO handoffs (id, session_hash, session_id, status, created_ms, contact_name,
                 contact_email, message, reasons, updated_ms, channel)
             VALUES ($1, $2, $3, 'waiting', $4, $5, $6, $7, $8, $4, $9)
             ON CONFLICT (session_hash) WHERE status <> 'closed' DO NOTHING
             RETURNING {HANDOFF_COLUMNS}"
        ))
        .await?;
    let (name, email) = match &new.contact {
        Some(contact) => (contact.name.as_deref(), contact.email.as_deref()),
        None => (None, None),
    };
    let reasons = serde_json::to_string(&new.reasons).unwrap_or_else(|_| "[]".into());
    for _ in 0..CREATE_ATTEMPTS {
        if let Some(row) = transaction.query_opt(&open, &[&new.session_hash]).await? {
            let record = read_handoff(&row)?;
            transaction.commit().await?;
            return Ok((record, false));
        }
        let inserted = transaction
            .query_opt(
                &insert,
                &[
                    &new.id,
                    &new.session_hash,
                    &new.session_id,
                    &new.at_ms,
                    &name,
                    &email,
                    &new.message,
                    &reasons,
                    &new.channel,
                ],
            )
            .await?;
        if let Some(row) = inserted {
            let record = read_handoff(&row)?;
            enqueue(&transaction, &record, render(&record), new.at_ms).await?;
            transaction.commit().await?;
            return Ok((record, true));
        }
        // Another replica's insert committed after our read (ours waited
        // for it): the next read, a new statement, sees it.
    }
    Err(StoreError::Postgres(format!(
        "session {} kept getting new hand-offs while creating one",
        new.session_hash
    )))
}

/// Runs `update` (an `UPDATE … RETURNING` guarded by the allowed states);
/// when it matched nothing, tells a missing record from a conflicting one.
async fn transition(
    client: &mut Client,
    id: &str,
    at_ms: i64,
    render: RenderEvent<'_>,
    update: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Transition, StoreError> {
    let transaction = client.transaction().await?;
    let statement = transaction.prepare_cached(update).await?;
    let outcome = match transaction.query_opt(&statement, params).await? {
        Some(row) => {
            let record = read_handoff(&row)?;
            enqueue(&transaction, &record, render(&record), at_ms).await?;
            Transition::Done(record)
        }
        None => {
            let current = transaction
                .query_opt(
                    &format!("SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE id = $1"),
                    &[&id],
                )
                .await?;
            match current {
                Some(row) => Transition::Conflict(read_handoff(&row)?),
                None => Transition::NotFound,
            }
        }
    };
    transaction.commit().await?;
    Ok(outcome)
}

pub(super) async fn claim(
    client: &mut Client,
    id: &str,
    agent: &str,
    at_ms: i64,
    render: RenderEvent<'_>,
) -> Result<Transition, StoreError> {
    transition(
        client,
        id,
        at_ms,
        render,
        &format!(
            "UPDATE handoffs SET status = 'claimed', claimed_ms = $2, claimed_by = $3, updated_ms = $2
             WHERE id = $1 AND status = 'waiting' RETURNING {HANDOFF_COLUMNS}"
        ),
        &[&id, &at_ms, &agent],
    )
    .await
}

pub(super) async fn close(
    client: &mut Client,
    id: &str,
    resolution: Resolution,
    note: Option<&str>,
    at_ms: i64,
    render: RenderEvent<'_>,
) -> Result<Transition, StoreError> {
    transition(
        client,
        id,
        at_ms,
        render,
        &format!(
            "UPDATE handoffs SET status = 'closed', closed_ms = $2, resolution = $3, note = $4,
                 updated_ms = $2
             WHERE id = $1 AND status <> 'closed' RETURNING {HANDOFF_COLUMNS}"
        ),
        &[&id, &at_ms, &resolution.as_str(), &note],
    )
    .await
}

/// `seq` is the order rows were inserted in: SQLite's rowid, which breaks
/// ties between hand-offs of one millisecond.
pub(super) async fn session_handoff(
    client: &Client,
    session_hash: &str,
) -> Result<Option<HandoffRecord>, StoreError> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE session_hash = $1
             ORDER BY created_ms DESC, seq DESC LIMIT 1"
        ))
        .await?;
    client
        .query_opt(&statement, &[&session_hash])
        .await?
        .as_ref()
        .map(read_handoff)
        .transpose()
}

pub(super) async fn list(
    client: &Client,
    status: Option<HandoffStatus>,
    limit: usize,
) -> Result<Vec<HandoffRecord>, StoreError> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE $1::text IS NULL OR status = $1::text
             ORDER BY created_ms, seq LIMIT $2"
        ))
        .await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(&statement, &[&status.map(HandoffStatus::as_str), &limit])
        .await?;
    read_handoffs(&rows)
}

/// 1 for the oldest waiting hand-off (the caller checked it is waiting).
pub(super) async fn position(client: &Client, record: &HandoffRecord) -> Result<u64, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT count(*) FROM handoffs WHERE status = 'waiting'
               AND (created_ms < $1
                    OR (created_ms = $1 AND seq < (SELECT seq FROM handoffs WHERE id = $2)))",
        )
        .await?;
    let row = client
        .query_one(&statement, &[&record.created_ms, &record.id])
        .await?;
    let ahead: i64 = get(&row, 0)?;
    Ok(ahead.max(0) as u64 + 1)
}

pub(super) async fn claim_waits(client: &Client, since_ms: i64) -> Result<Vec<i64>, StoreError> {
    let rows = client
        .query(
            "SELECT claimed_ms - created_ms FROM handoffs WHERE claimed_ms >= $1 ORDER BY seq",
            &[&since_ms],
        )
        .await?;
    rows.iter().map(|row| get(row, 0)).collect()
}

pub(super) async fn stats(
    client: &Client,
    since_ms: i64,
    until_ms: i64,
    abandoned_before_ms: i64,
) -> Result<HandoffStats, StoreError> {
    let rows = client
        .query(
            "SELECT session_hash, status, created_ms, claimed_ms, resolution FROM handoffs
             WHERE created_ms >= $1 AND created_ms < $2 ORDER BY created_ms, seq",
            &[&since_ms, &until_ms],
        )
        .await?;
    let mut stats = HandoffStats::default();
    for row in &rows {
        let session: String = get(row, 0)?;
        let status: &str = get(row, 1)?;
        let created: i64 = get(row, 2)?;
        let claimed: Option<i64> = get(row, 3)?;
        let resolution: Option<&str> = get(row, 4)?;
        stats.created += 1;
        stats.sessions.push(session);
        if let Some(claimed) = claimed {
            stats.claimed += 1;
            stats.waits_ms.push(claimed - created);
        }
        if let Some(resolution) = resolution.and_then(Resolution::parse) {
            *stats.closed.entry(resolution).or_default() += 1;
        }
        let gave_up = match status {
            "waiting" => created < abandoned_before_ms,
            "closed" => claimed.is_none(),
            _ => false,
        };
        stats.abandoned += u64::from(gave_up && claimed.is_none());
    }
    stats.sessions.sort();
    stats.sessions.dedup();
    Ok(stats)
}

pub(super) async fn created(
    client: &Client,
    since_ms: i64,
    until_ms: i64,
) -> Result<Vec<HandoffRecord>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE created_ms >= $1 AND created_ms < $2
                 ORDER BY created_ms, seq"
            ),
            &[&since_ms, &until_ms],
        )
        .await?;
    read_handoffs(&rows)
}

/// One statement, so two replicas rating one session at once agree on
/// which replaced the other: `xmax` is set on a row the upsert updated.
pub(super) async fn rate(client: &Client, rating: &Rating) -> Result<bool, StoreError> {
    let row = client
        .query_one(
            "INSERT INTO ratings (session_hash, score, comment, at_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (session_hash) DO UPDATE SET score = excluded.score,
                 comment = excluded.comment, at_ms = excluded.at_ms
             RETURNING xmax::text <> '0'",
            &[
                &rating.session_hash,
                &i64::from(rating.score),
                &rating.comment,
                &rating.at_ms,
            ],
        )
        .await?;
    get(&row, 0)
}

pub(super) async fn ratings(
    client: &Client,
    since_ms: i64,
    until_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    let rows = client
        .query(
            "SELECT score FROM ratings WHERE at_ms >= $1 AND at_ms < $2 ORDER BY at_ms, seq",
            &[&since_ms, &until_ms],
        )
        .await?;
    rows.iter()
        .map(|row| narrow(get(row, 0)?, "ratings.score"))
        .collect()
}

pub(super) async fn forget_sessions(
    client: &mut Client,
    before_ms: i64,
) -> Result<usize, StoreError> {
    let transaction = client.transaction().await?;
    let handoffs = transaction
        .execute(
            "UPDATE handoffs SET session_id = NULL, contact_name = NULL, contact_email = NULL,
                 message = NULL, note = NULL
             WHERE updated_ms < $1
               AND (session_id IS NOT NULL OR contact_name IS NOT NULL OR contact_email IS NOT NULL
                    OR message IS NOT NULL OR note IS NOT NULL)",
            &[&before_ms],
        )
        .await?;
    let comments = transaction
        .execute(
            "UPDATE ratings SET comment = NULL WHERE at_ms < $1 AND comment IS NOT NULL",
            &[&before_ms],
        )
        .await?;
    // Delivered or dead events keep their ids and outcome, not the customer.
    let bodies = transaction
        .execute(
            "UPDATE outbox SET body = NULL
             WHERE state <> 'pending' AND done_ms < $1 AND body IS NOT NULL",
            &[&before_ms],
        )
        .await?;
    transaction
        .execute(
            "DELETE FROM delivery_attempts
             WHERE id <= (SELECT max(id) FROM delivery_attempts) - $1",
            &[&KEEP_ATTEMPTS],
        )
        .await?;
    transaction.commit().await?;
    Ok((handoffs + comments + bodies) as usize)
}

/// Erases one customer in one transaction (see `store/sqlite/erase.rs`);
/// lists go to PostgreSQL as arrays (`= ANY($1)`). Every outbox row
/// written here names its hand-off (`handoff_id`), so unlike SQLite no
/// body is parsed to find older ones.
pub(super) async fn erase_customer(
    client: &mut Client,
    customer_hash: &str,
    live_sessions: &[String],
) -> Result<Erased, StoreError> {
    let transaction = client.transaction().await?;
    let mut sessions: Vec<String> = transaction
        .query(
            "SELECT DISTINCT session_hash FROM session_events WHERE customer_hash = $1",
            &[&customer_hash],
        )
        .await?
        .iter()
        .map(|row| get(row, 0))
        .collect::<Result<_, _>>()?;
    sessions.extend(live_sessions.iter().cloned());
    sessions.sort();
    sessions.dedup();
    let handoffs: Vec<String> = transaction
        .query(
            "SELECT id FROM handoffs WHERE session_hash = ANY($1)",
            &[&sessions],
        )
        .await?
        .iter()
        .map(|row| get(row, 0))
        .collect::<Result<_, _>>()?;

    // Feedback names a query: those asked in the sessions, as analytics
    // recorded them or as the timelines did.
    let feedback = transaction
        .execute(
            "DELETE FROM feedback WHERE query_id IN (
                 SELECT query_id FROM queries WHERE session_hash = ANY($1)
                 UNION
                 SELECT query_id FROM session_events
                  WHERE session_hash = ANY($1) AND query_id IS NOT NULL)",
            &[&sessions],
        )
        .await?;
    let queries = transaction
        .execute(
            "DELETE FROM queries WHERE session_hash = ANY($1)",
            &[&sessions],
        )
        .await?;
    let session_events = transaction
        .execute(
            "DELETE FROM session_events WHERE session_hash = ANY($1)",
            &[&sessions],
        )
        .await?;
    let votes = transaction
        .execute(
            "DELETE FROM customer_votes WHERE customer_hash = $1",
            &[&customer_hash],
        )
        .await?;
    let ratings = transaction
        .execute(
            "DELETE FROM ratings WHERE session_hash = ANY($1)",
            &[&sessions],
        )
        .await?;
    // Not yet delivered: never sent. Delivered or dead: the delivery log
    // keeps its id and outcome, not the customer.
    let pending = transaction
        .execute(
            "DELETE FROM outbox WHERE state = 'pending' AND handoff_id = ANY($1)",
            &[&handoffs],
        )
        .await?;
    let scrubbed = transaction
        .execute(
            "UPDATE outbox SET body = NULL
             WHERE state <> 'pending' AND body IS NOT NULL AND handoff_id = ANY($1)",
            &[&handoffs],
        )
        .await?;
    let handoffs_deleted = transaction
        .execute("DELETE FROM handoffs WHERE id = ANY($1)", &[&handoffs])
        .await?;
    transaction.commit().await?;
    Ok(Erased {
        sessions: sessions.len() as u64,
        session_events,
        queries,
        feedback,
        votes,
        handoffs: handoffs_deleted,
        ratings,
        outbox_events: pending + scrubbed,
    })
}

/// Leases the due prefix of the pending events (see
/// [`crate::store::Store::due_deliveries`]). `FOR UPDATE SKIP LOCKED`: a
/// worker never waits on another replica's lease transaction. Skipping
/// alone would let it lease later events while an earlier one is being
/// leased, and deliver them first; so it takes only the rows that are the
/// unbroken head of the pending line, and stops at the first it skipped
/// (or that is leased or not due).
pub(super) async fn due_deliveries(
    client: &mut Client,
    now_ms: i64,
    lease_until_ms: i64,
    limit: usize,
) -> Result<Vec<OutboxItem>, StoreError> {
    let transaction = client.transaction().await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // What is pending, in order, as committed: the head of the line.
    let line: Vec<i64> = transaction
        .query(
            "SELECT seq FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT $1",
            &[&limit],
        )
        .await?
        .iter()
        .map(|row| get(row, 0))
        .collect::<Result<_, _>>()?;
    // SKIP LOCKED: a row another replica's worker is leasing right now is
    // passed over, never waited for.
    let pending = transaction
        .prepare_cached(
            "SELECT seq, delivery_id, event, body, created_ms, attempts, next_attempt_ms, lease_until_ms
             FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .await?;
    let locked = transaction.query(&pending, &[&limit]).await?;
    // Only the unbroken head of the line: a skipped row means another
    // worker has it, and what follows it must wait (events go in order).
    let mut rows = Vec::new();
    for (row, expected) in locked.iter().zip(&line) {
        if get::<i64>(row, 0)? != *expected {
            break;
        }
        rows.push(row);
    }
    let mut items = Vec::new();
    for row in rows {
        let next_attempt: i64 = get(row, 6)?;
        let lease: Option<i64> = get(row, 7)?;
        // In order: while the oldest event waits for its retry (or is out
        // with another worker), the later ones wait too, so a receiver
        // sees a hand-off's events in order.
        if next_attempt > now_ms || lease.is_some_and(|until| until > now_ms) {
            break;
        }
        let body: Option<String> = get(row, 3)?;
        items.push(OutboxItem {
            seq: get(row, 0)?,
            delivery_id: get(row, 1)?,
            event: get(row, 2)?,
            body: body.unwrap_or_default(),
            created_ms: get(row, 4)?,
            attempts: narrow(get(row, 5)?, "outbox.attempts")?,
        });
    }
    if !items.is_empty() {
        let seqs: Vec<i64> = items.iter().map(|item| item.seq).collect();
        transaction
            .execute(
                "UPDATE outbox SET lease_until_ms = $2 WHERE seq = ANY($1)",
                &[&seqs, &lease_until_ms],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(items)
}

pub(super) async fn next_due(client: &Client) -> Result<Option<i64>, StoreError> {
    let row = client
        .query_one(
            "SELECT min(greatest(next_attempt_ms, coalesce(lease_until_ms, 0)))
             FROM outbox WHERE state = 'pending'",
            &[],
        )
        .await?;
    get(&row, 0)
}

pub(super) async fn record_attempt(
    client: &mut Client,
    item: &OutboxItem,
    attempt: &Attempt,
) -> Result<(), StoreError> {
    let transaction = client.transaction().await?;
    let number = i64::from(item.attempts) + 1;
    transaction
        .execute(
            "INSERT INTO delivery_attempts (delivery_id, event, attempt, at_ms, status_code, error,
                 duration_ms, outcome)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &item.delivery_id,
                &item.event,
                &number,
                &attempt.at_ms,
                &attempt.status_code.map(i64::from),
                &attempt.error,
                &attempt.duration_ms,
                &attempt.outcome.as_str(),
            ],
        )
        .await?;
    let (state, next, done) = match attempt.outcome {
        AttemptOutcome::Retry => (
            "pending",
            attempt.next_attempt_ms.unwrap_or(attempt.at_ms),
            None,
        ),
        AttemptOutcome::Delivered => ("delivered", attempt.at_ms, Some(attempt.at_ms)),
        AttemptOutcome::Dead => ("dead", attempt.at_ms, Some(attempt.at_ms)),
    };
    transaction
        .execute(
            "UPDATE outbox SET state = $2, attempts = $3, next_attempt_ms = $4, done_ms = $5,
                 lease_until_ms = NULL
             WHERE seq = $1",
            &[&item.seq, &state, &number, &next, &done],
        )
        .await?;
    transaction.commit().await?;
    Ok(())
}

pub(super) async fn deliveries(
    client: &Client,
    limit: usize,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT delivery_id, event, attempt, at_ms, status_code, error, duration_ms, outcome
             FROM delivery_attempts ORDER BY id DESC LIMIT $1",
            &[&limit],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let outcome: &str = get(row, 7)?;
            let status_code: Option<i64> = get(row, 4)?;
            Ok(DeliveryRecord {
                delivery_id: get(row, 0)?,
                event: get(row, 1)?,
                attempt: narrow(get(row, 2)?, "delivery_attempts.attempt")?,
                result: Attempt {
                    at_ms: get(row, 3)?,
                    status_code: status_code
                        .map(|code| narrow(code, "delivery_attempts.status_code"))
                        .transpose()?,
                    error: get(row, 5)?,
                    duration_ms: get(row, 6)?,
                    // As SQLite reads it: an unknown outcome is shown as a retry.
                    outcome: AttemptOutcome::parse(outcome).unwrap_or(AttemptOutcome::Retry),
                    next_attempt_ms: None,
                },
            })
        })
        .collect()
}

pub(super) async fn outbox_counts(client: &Client) -> Result<OutboxCounts, StoreError> {
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE state = 'pending'),
                    count(*) FILTER (WHERE state = 'delivered'),
                    count(*) FILTER (WHERE state = 'dead'),
                    (SELECT count(*) FROM delivery_attempts WHERE outcome = 'retry')
             FROM outbox",
            &[],
        )
        .await?;
    let count =
        |index: usize| -> Result<u64, StoreError> { Ok(get::<i64>(&row, index)?.max(0) as u64) };
    Ok(OutboxCounts {
        pending: count(0)?,
        delivered: count(1)?,
        dead: count(2)?,
        retried: count(3)?,
    })
}

pub(super) async fn put_admin_session(
    client: &Client,
    session: &AdminSessionRow,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO admin_sessions (id_hash, csrf, admin, created_ms, last_seen_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id_hash) DO UPDATE SET csrf = excluded.csrf, admin = excluded.admin,
                 created_ms = excluded.created_ms, last_seen_ms = excluded.last_seen_ms",
            &[
                &session.id_hash,
                &session.csrf,
                &session.admin,
                &session.created_ms,
                &session.last_seen_ms,
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn admin_session(
    client: &Client,
    id_hash: &str,
) -> Result<Option<AdminSessionRow>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT id_hash, csrf, admin, created_ms, last_seen_ms FROM admin_sessions
             WHERE id_hash = $1",
        )
        .await?;
    client
        .query_opt(&statement, &[&id_hash])
        .await?
        .map(|row| {
            Ok(AdminSessionRow {
                id_hash: get(&row, 0)?,
                csrf: get(&row, 1)?,
                admin: get(&row, 2)?,
                created_ms: get(&row, 3)?,
                last_seen_ms: get(&row, 4)?,
            })
        })
        .transpose()
}

pub(super) async fn touch_admin_session(
    client: &Client,
    id_hash: &str,
    at_ms: i64,
) -> Result<bool, StoreError> {
    let statement = client
        .prepare_cached(
            "UPDATE admin_sessions SET last_seen_ms = greatest(last_seen_ms, $2) WHERE id_hash = $1",
        )
        .await?;
    Ok(client.execute(&statement, &[&id_hash, &at_ms]).await? > 0)
}

pub(super) async fn delete_admin_session(
    client: &Client,
    id_hash: &str,
) -> Result<bool, StoreError> {
    Ok(client
        .execute("DELETE FROM admin_sessions WHERE id_hash = $1", &[&id_hash])
        .await?
        > 0)
}

pub(super) async fn prune_admin_sessions(
    client: &Client,
    idle_before_ms: i64,
    keep: usize,
) -> Result<usize, StoreError> {
    let idle = client
        .execute(
            "DELETE FROM admin_sessions WHERE last_seen_ms < $1",
            &[&idle_before_ms],
        )
        .await?;
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let over = client
        .execute(
            "DELETE FROM admin_sessions WHERE id_hash NOT IN
                 (SELECT id_hash FROM admin_sessions ORDER BY last_seen_ms DESC LIMIT $1)",
            &[&keep],
        )
        .await?;
    Ok((idle + over) as usize)
}
