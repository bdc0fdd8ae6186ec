//! `rapport db copy`: a single server's SQLite state into PostgreSQL, so a
//! team moving to replicas keeps its analytics, session timelines,
//! hand-offs, webhook log and ratings, and the salt its session hashes
//! were made with (without it no stored session would match its id again).
//!
//! Each table goes over with `COPY … FROM STDIN` (CSV), in SQLite's row
//! order, in one transaction: the copy lands whole or not at all. The
//! target must be migrated and empty. Dashboard sign-ins are not copied
//! (leads sign in again).

use std::path::Path;

use futures_util::SinkExt;
use rusqlite::types::ValueRef;
use serde::Serialize;

use super::PgStore;
use crate::store::StoreError;

/// The tables copied, with the columns both schemas have, in SQLite's
/// insertion order (`rowid`); PostgreSQL's identity columns that stand
/// for `rowid` are filled in that order.
const TABLES: &[(&str, &[&str])] = &[
    (
        "queries",
        &[
            "query_id",
            "at_ms",
            "channel",
            "query",
            "filters",
            "result_count",
            "top_ids",
            "confidence",
            "handoff_reasons",
            "latency_ms",
            "session_hash",
            "auto_reply",
        ],
    ),
    (
        "feedback",
        &["query_id", "article_id", "event", "comment", "at_ms"],
    ),
    (
        "session_events",
        &[
            "session_hash",
            "at_ms",
            "query_id",
            "customer_hash",
            "event",
        ],
    ),
    (
        "customer_votes",
        &["customer_hash", "article_id", "event", "at_ms"],
    ),
    (
        "handoffs",
        &[
            "id",
            "session_hash",
            "session_id",
            "status",
            "created_ms",
            "claimed_ms",
            "claimed_by",
            "closed_ms",
            "resolution",
            "note",
            "contact_name",
            "contact_email",
            "message",
            "reasons",
            "updated_ms",
            "channel",
        ],
    ),
    (
        "outbox",
        &[
            "seq",
            "delivery_id",
            "event",
            "body",
            "created_ms",
            "state",
            "attempts",
            "next_attempt_ms",
            "done_ms",
            "handoff_id",
        ],
    ),
    (
        "delivery_attempts",
        &[
            "delivery_id",
            "event",
            "attempt",
            "at_ms",
            "status_code",
            "error",
            "duration_ms",
            "outcome",
        ],
    ),
    ("ratings", &["session_hash", "score", "comment", "at_ms"]),
];

/// What a copy moved: rows per table, in [`TABLES`] order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copied {
    pub tables: Vec<(String, u64)>,
    /// The salt of session and customer hashes came along.
    pub salt: bool,
}

/// PostgreSQL's "no value" in the CSV sent: unquoted, so a text value
/// `\N` (always quoted) stays text.
const NULL: &str = "\\N";

/// One SQLite table as CSV rows for `COPY`.
fn table_csv(
    sqlite: &rusqlite::Connection,
    table: &str,
    columns: &[&str],
) -> Result<(Vec<u8>, u64), StoreError> {
    let mut statement = sqlite.prepare(&format!(
        "SELECT {} FROM {table} ORDER BY rowid",
        columns.join(", ")
    ))?;
    let mut rows = statement.query([])?;
    let mut out = Vec::new();
    let mut count = 0u64;
    while let Some(row) = rows.next()? {
        let mut fields = Vec::with_capacity(columns.len());
        for (index, column) in columns.iter().enumerate() {
            fields.push(match row.get_ref(index)? {
                ValueRef::Null => NULL.to_string(),
                ValueRef::Integer(n) => n.to_string(),
                ValueRef::Real(x) => x.to_string(),
                ValueRef::Text(bytes) => quote(&String::from_utf8_lossy(bytes)),
                ValueRef::Blob(_) => {
                    return Err(StoreError::Corrupt(format!(
                        "{table}.{column}: a blob where rapport writes text"
                    )));
                }
            });
        }
        out.extend_from_slice(fields.join(",").as_bytes());
        out.push(b'\n');
        count += 1;
    }
    Ok((out, count))
}

/// A CSV field, always quoted (so it is never taken for [`NULL`]).
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

impl PgStore {
    /// Copies the SQLite database in `data_dir` (and its `session-salt`)
    /// into this database, which must be migrated and hold no rows yet.
    pub fn copy_from_sqlite(&self, data_dir: &Path) -> Result<Copied, StoreError> {
        let path = data_dir.join(crate::store::sqlite::DATABASE_FILE);
        if !path.exists() {
            return Err(StoreError::Io {
                path,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no SQLite database"),
            });
        }
        // Bring the file to this build's schema first (a no-op when it is).
        drop(crate::store::sqlite::SqliteStore::open(data_dir)?);
        let sqlite = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut tables = Vec::new();
        for (table, columns) in TABLES {
            let (csv, rows) = table_csv(&sqlite, table, columns)?;
            tables.push((*table, *columns, csv, rows));
        }
        let salt = std::fs::read_to_string(data_dir.join("session-salt"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        self.status()?.check()?;
        let pool = self.pool().clone();
        let has_salt = salt.is_some();
        let counts = self.block(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await?;
            for (table, _) in TABLES {
                let row = transaction
                    .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])
                    .await?;
                if row.get::<_, bool>(0) {
                    return Err(StoreError::Postgres(format!(
                        "the database already holds {table}: copy into an empty one (rapport db migrate on a new database)"
                    )));
                }
            }
            let mut counts = Vec::new();
            for (table, columns, csv, rows) in tables {
                let sink = transaction
                    .copy_in(&format!(
                        "COPY {table} ({}) FROM STDIN WITH (FORMAT csv, NULL '{NULL}')",
                        columns.join(", ")
                    ))
                    .await?;
                let mut sink = Box::pin(sink);
                sink.send(bytes::Bytes::from(csv)).await?;
                sink.as_mut().finish().await?;
                counts.push((table.to_string(), rows));
            }
            // COPY keeps the outbox's `seq` numbers (identity columns take
            // the values given): the sequence moves past them.
            transaction
                .batch_execute(
                    "SELECT setval(pg_get_serial_sequence('outbox', 'seq'),
                                   coalesce((SELECT max(seq) FROM outbox), 0) + 1, false)",
                )
                .await?;
            if let Some(salt) = &salt {
                transaction
                    .execute(
                        "INSERT INTO rapport_settings (key, value) VALUES ('session_salt', $1)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        &[salt],
                    )
                    .await?;
            }
            transaction.commit().await?;
            Ok(counts)
        })?;
        Ok(Copied {
            tables: counts,
            salt: has_salt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_always_quoted_so_only_null_is_bare() {
        assert_eq!(quote("a \"b\", c"), "\"a \"\"b\"\", c\"");
        assert_eq!(quote(NULL), "\"\\N\"");
        assert_eq!(quote(""), "\"\"");
    }
}
