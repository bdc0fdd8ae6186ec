//! Erasing one customer (`DELETE /api/v1/customers/{id}`): everything kept
//! about their sessions goes, in one transaction, so a failure leaves the
//! customer whole rather than half erased.
//!
//! Lists of sessions and hand-offs are passed to SQLite as one JSON array
//! parameter (`IN (SELECT value FROM json_each(?1))`): any length, one
//! prepared statement, no temporary table.

use rusqlite::{Connection, TransactionBehavior, params};

use crate::store::{Erased, StoreError};

/// Outbox rows about one of the hand-offs in the JSON array `?1`. Rows
/// written before the outbox had `handoff_id` are recognised by their body
/// (every event body is a `HandoffEvent`).
const OUTBOX_OF_HANDOFFS: &str = "(handoff_id IN (SELECT value FROM json_each(?1))
     OR (handoff_id IS NULL AND body IS NOT NULL AND json_valid(body)
         AND json_extract(body, '$.handoff.handoff_id') IN (SELECT value FROM json_each(?1))))";

pub(super) fn customer(
    connection: &mut Connection,
    customer_hash: &str,
    live_sessions: &[String],
) -> Result<Erased, StoreError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut sessions: Vec<String> = transaction
        .prepare("SELECT DISTINCT session_hash FROM session_events WHERE customer_hash = ?1")?
        .query_map([customer_hash], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    sessions.extend(live_sessions.iter().cloned());
    sessions.sort();
    sessions.dedup();
    let session_list = to_json(&sessions)?;
    let handoffs: Vec<String> = transaction
        .prepare("SELECT id FROM handoffs WHERE session_hash IN (SELECT value FROM json_each(?1))")?
        .query_map([&session_list], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let handoff_list = to_json(&handoffs)?;

    // Feedback names a query: those asked in the sessions, as analytics
    // recorded them or as the timelines did.
    let feedback = transaction.execute(
        "DELETE FROM feedback WHERE query_id IN (
             SELECT query_id FROM queries WHERE session_hash IN (SELECT value FROM json_each(?1))
             UNION
             SELECT query_id FROM session_events
              WHERE session_hash IN (SELECT value FROM json_each(?1)) AND query_id IS NOT NULL)",
        [&session_list],
    )?;
    let queries = transaction.execute(
        "DELETE FROM queries WHERE session_hash IN (SELECT value FROM json_each(?1))",
        [&session_list],
    )?;
    let session_events = transaction.execute(
        "DELETE FROM session_events WHERE session_hash IN (SELECT value FROM json_each(?1))",
        [&session_list],
    )?;
    let votes = transaction.execute(
        "DELETE FROM customer_votes WHERE customer_hash = ?1",
        [customer_hash],
    )?;
    let ratings = transaction.execute(
        "DELETE FROM ratings WHERE session_hash IN (SELECT value FROM json_each(?1))",
        [&session_list],
    )?;
    // Not yet delivered: never sent. Delivered or dead: the delivery log
    // keeps its id and outcome, not the customer.
    let pending = transaction.execute(
        &format!("DELETE FROM outbox WHERE state = 'pending' AND {OUTBOX_OF_HANDOFFS}"),
        [&handoff_list],
    )?;
    let scrubbed = transaction.execute(
        &format!(
            "UPDATE outbox SET body = NULL WHERE state <> 'pending' AND body IS NOT NULL AND {OUTBOX_OF_HANDOFFS}"
        ),
        [&handoff_list],
    )?;
    let handoffs_deleted = transaction.execute(
        "DELETE FROM handoffs WHERE id IN (SELECT value FROM json_each(?1))",
        params![handoff_list],
    )?;
    transaction.commit()?;
    Ok(Erased {
        sessions: sessions.len() as u64,
        session_events: session_events as u64,
        queries: queries as u64,
        feedback: feedback as u64,
        votes: votes as u64,
        handoffs: handoffs_deleted as u64,
        ratings: ratings as u64,
        outbox_events: (pending + scrubbed) as u64,
    })
}

fn to_json(items: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(items).map_err(|e| StoreError::Corrupt(e.to_string()))
}
