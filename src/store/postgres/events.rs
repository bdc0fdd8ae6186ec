//! Analytics events and session timelines in PostgreSQL: the analytics
//! writer's batches, pruning, and the reads that bring a session back.
//!
//! A batch is one transaction of at most four statements (one statement,
//! without BEGIN and COMMIT, when it touches one table), each inserting
//! all its rows from array parameters (`unnest`): one round trip per table
//! whatever the batch's size.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::GenericClient;

use super::store::{Client, get};
use crate::analytics::store::{SessionRow, VoteRow};
use crate::store::{EventBatch, StoreError};

pub(super) async fn write(client: &mut Client, batch: &EventBatch<'_>) -> Result<(), StoreError> {
    let tables = [
        batch.queries.is_empty(),
        batch.feedback.is_empty(),
        batch.sessions.is_empty(),
        batch.votes.is_empty(),
    ]
    .iter()
    .filter(|empty| !**empty)
    .count();
    // One table is one statement, atomic by itself: a replica writing one
    // turn of a session through (on every answer) saves BEGIN and COMMIT.
    if tables <= 1 {
        return insert(&*client, batch).await;
    }
    let transaction = client.transaction().await?;
    insert(&transaction, batch).await?;
    transaction.commit().await?;
    Ok(())
}

/// Every row of the batch, one statement per table.
async fn insert(db: &impl GenericClient, batch: &EventBatch<'_>) -> Result<(), StoreError> {
    if !batch.queries.is_empty() {
        let queries = batch.queries;
        let ids: Vec<&str> = queries.iter().map(|q| q.query_id.as_str()).collect();
        let at: Vec<i64> = queries.iter().map(|q| q.at_ms).collect();
        let channels: Vec<&str> = queries.iter().map(|q| q.channel.as_str()).collect();
        let texts: Vec<&str> = queries.iter().map(|q| q.query.as_str()).collect();
        let filters: Vec<String> = queries.iter().map(|q| q.filters.to_string()).collect();
        let counts: Vec<i64> = queries.iter().map(|q| q.result_count as i64).collect();
        let top_ids: Vec<String> = queries
            .iter()
            .map(|q| serde_json::to_string(&q.top_ids).unwrap_or_default())
            .collect();
        let confidence: Vec<Option<f64>> = queries
            .iter()
            .map(|q| q.confidence.map(f64::from))
            .collect();
        let reasons: Vec<String> = queries
            .iter()
            .map(|q| serde_json::to_string(&q.handoff_reasons).unwrap_or_default())
            .collect();
        let latency: Vec<f64> = queries.iter().map(|q| q.latency_ms).collect();
        let sessions: Vec<Option<&str>> =
            queries.iter().map(|q| q.session_hash.as_deref()).collect();
        let auto_reply: Vec<bool> = queries.iter().map(|q| q.auto_reply).collect();
        // `ON CONFLICT DO NOTHING`: SQLite's `INSERT OR IGNORE` (the first
        // of two rows with one id stays).
        let insert = db
            .prepare_cached(
                "INSERT INTO queries (query_id, at_ms, channel, query, filters, result_count,
                     top_ids, confidence, handoff_reasons, latency_ms, session_hash, auto_reply)
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[],
                     $5::text[], $6::bigint[], $7::text[], $8::float8[], $9::text[],
                     $10::float8[], $11::text[], $12::bool[])
                 ON CONFLICT (query_id) DO NOTHING",
            )
            .await?;
        db.execute(
            &insert,
            &[
                &ids,
                &at,
                &channels,
                &texts,
                &filters,
                &counts,
                &top_ids,
                &confidence,
                &reasons,
                &latency,
                &sessions,
                &auto_reply,
            ],
        )
        .await?;
    }
    if !batch.feedback.is_empty() {
        let feedback = batch.feedback;
        let queries: Vec<&str> = feedback.iter().map(|f| f.query_id.as_str()).collect();
        let articles: Vec<&str> = feedback.iter().map(|f| f.article_id.as_str()).collect();
        let events: Vec<&str> = feedback.iter().map(|f| f.event.as_str()).collect();
        let comments: Vec<Option<&str>> = feedback.iter().map(|f| f.comment.as_deref()).collect();
        let at: Vec<i64> = feedback.iter().map(|f| f.at_ms).collect();
        let insert = db
            .prepare_cached(
                "INSERT INTO feedback (query_id, article_id, event, comment, at_ms)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
                 ON CONFLICT (query_id, article_id, event) DO NOTHING",
            )
            .await?;
        db.execute(&insert, &[&queries, &articles, &events, &comments, &at])
            .await?;
    }
    if !batch.sessions.is_empty() {
        let rows = batch.sessions;
        let sessions: Vec<&str> = rows.iter().map(|r| r.session_hash.as_str()).collect();
        let at: Vec<i64> = rows.iter().map(|r| r.at_ms).collect();
        let queries: Vec<Option<&str>> = rows.iter().map(|r| r.query_id.as_deref()).collect();
        let customers: Vec<Option<&str>> =
            rows.iter().map(|r| r.customer_hash.as_deref()).collect();
        let events: Vec<&str> = rows.iter().map(|r| r.event.as_str()).collect();
        // In the batch's order: `seq` keeps a session's rows of one
        // millisecond in the order they happened (SQLite's rowid).
        let insert = db
            .prepare_cached(
                "INSERT INTO session_events (session_hash, at_ms, query_id, customer_hash, event)
                 SELECT s, a, q, c, e
                 FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[])
                      WITH ORDINALITY AS u(s, a, q, c, e, n)
                 ORDER BY n",
            )
            .await?;
        db.execute(&insert, &[&sessions, &at, &queries, &customers, &events])
            .await?;
    }
    if !batch.votes.is_empty() {
        // One statement cannot update a row twice: the last vote of each
        // (customer, article) in the batch, at its first one's place.
        let mut latest: Vec<&VoteRow> = Vec::with_capacity(batch.votes.len());
        let mut place: HashMap<(&str, &str), usize> = HashMap::new();
        for vote in batch.votes {
            let key = (vote.customer_hash.as_str(), vote.article_id.as_str());
            match place.get(&key) {
                Some(&index) => latest[index] = vote,
                None => {
                    place.insert(key, latest.len());
                    latest.push(vote);
                }
            }
        }
        let customers: Vec<&str> = latest.iter().map(|v| v.customer_hash.as_str()).collect();
        let articles: Vec<&str> = latest.iter().map(|v| v.article_id.as_str()).collect();
        let events: Vec<&str> = latest.iter().map(|v| v.event).collect();
        let at: Vec<i64> = latest.iter().map(|v| v.at_ms).collect();
        let upsert = db
            .prepare_cached(
                "INSERT INTO customer_votes (customer_hash, article_id, event, at_ms)
                 SELECT c, a, e, t
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
                      WITH ORDINALITY AS u(c, a, e, t, n)
                 ORDER BY n
                 ON CONFLICT (customer_hash, article_id)
                 DO UPDATE SET event = excluded.event, at_ms = excluded.at_ms",
            )
            .await?;
        db.execute(&upsert, &[&customers, &articles, &events, &at])
            .await?;
    }
    Ok(())
}

pub(super) async fn prune(client: &Client, before_ms: i64) -> Result<usize, StoreError> {
    let queries = client
        .execute("DELETE FROM queries WHERE at_ms < $1", &[&before_ms])
        .await?;
    let feedback = client
        .execute("DELETE FROM feedback WHERE at_ms < $1", &[&before_ms])
        .await?;
    Ok((queries + feedback) as usize)
}

pub(super) async fn prune_sessions(
    client: &Client,
    events_before: i64,
    votes_before: i64,
) -> Result<usize, StoreError> {
    let events = client
        .execute(
            "DELETE FROM session_events WHERE at_ms < $1",
            &[&events_before],
        )
        .await?;
    let votes = client
        .execute(
            "DELETE FROM customer_votes WHERE at_ms < $1",
            &[&votes_before],
        )
        .await?;
    Ok((events + votes) as usize)
}

pub(super) async fn knows_query(client: &Client, query_id: &str) -> Result<bool, StoreError> {
    let statement = client
        .prepare_cached("SELECT 1 FROM queries WHERE query_id = $1")
        .await?;
    Ok(client.query_opt(&statement, &[&query_id]).await?.is_some())
}

pub(super) async fn stored_sessions(
    client: &Client,
    since_ms: i64,
) -> Result<HashSet<String>, StoreError> {
    let rows = client
        .query(
            "SELECT DISTINCT session_hash FROM session_events WHERE at_ms >= $1",
            &[&since_ms],
        )
        .await?;
    rows.iter().map(|row| get(row, 0)).collect()
}

pub(super) async fn customer_sessions(
    client: &Client,
    customer_hash: &str,
    since_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT session_hash FROM session_events WHERE customer_hash = $1 AND at_ms >= $2
             GROUP BY session_hash ORDER BY max(at_ms) DESC, session_hash COLLATE \"C\"",
        )
        .await?;
    let rows = client
        .query(&statement, &[&customer_hash, &since_ms])
        .await?;
    rows.iter().map(|row| get(row, 0)).collect()
}

pub(super) async fn session_rows(
    client: &Client,
    session_hash: &str,
    since_ms: i64,
) -> Result<Vec<SessionRow>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT at_ms, query_id, customer_hash, event FROM session_events
             WHERE session_hash = $1 AND at_ms >= $2 ORDER BY at_ms, seq",
        )
        .await?;
    let rows = client
        .query(&statement, &[&session_hash, &since_ms])
        .await?;
    rows.iter()
        .map(|row| {
            Ok(SessionRow {
                session_hash: session_hash.to_string(),
                at_ms: get(row, 0)?,
                query_id: get(row, 1)?,
                customer_hash: get(row, 2)?,
                event: get(row, 3)?,
            })
        })
        .collect()
}

pub(super) async fn session_of_query(
    client: &Client,
    query_id: &str,
) -> Result<Option<String>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT session_hash FROM session_events WHERE query_id = $1 ORDER BY seq LIMIT 1",
        )
        .await?;
    match client.query_opt(&statement, &[&query_id]).await? {
        Some(row) => Ok(Some(get(&row, 0)?)),
        None => Ok(None),
    }
}

/// Every customer's votes since `since_ms`, or one customer's.
pub(super) async fn customer_votes(
    client: &Client,
    customer_hash: Option<&str>,
    since_ms: i64,
) -> Result<Vec<VoteRow>, StoreError> {
    // Two statements: the one customer's (read on every answer) uses the
    // primary key's index.
    let rows = match customer_hash {
        Some(customer_hash) => {
            let statement = client
                .prepare_cached(
                    "SELECT customer_hash, article_id, event, at_ms FROM customer_votes
                     WHERE customer_hash = $1 AND at_ms >= $2 ORDER BY at_ms, seq",
                )
                .await?;
            client
                .query(&statement, &[&customer_hash, &since_ms])
                .await?
        }
        None => {
            let statement = client
                .prepare_cached(
                    "SELECT customer_hash, article_id, event, at_ms FROM customer_votes
                     WHERE at_ms >= $1 ORDER BY at_ms, seq",
                )
                .await?;
            client.query(&statement, &[&since_ms]).await?
        }
    };
    rows.iter()
        .map(|row| {
            let event: &str = get(row, 2)?;
            Ok(VoteRow {
                customer_hash: get(row, 0)?,
                article_id: get(row, 1)?,
                event: if event == "not_helpful" {
                    "not_helpful"
                } else {
                    "helpful"
                },
                at_ms: get(row, 3)?,
            })
        })
        .collect()
}
