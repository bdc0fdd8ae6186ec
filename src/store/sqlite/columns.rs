//! Columns added to tables after their first release. `CREATE TABLE IF NOT
//! EXISTS` leaves an existing table as it was, so a database from an older
//! version gets its new columns here, at open. (Versioned migrations are
//! planned; until then this is the one place a column is added.)

use rusqlite::Connection;

/// Columns added since the tables were first created: (table, column, the
/// SQL that follows the column name in `ADD COLUMN`).
pub(super) const ADDED_COLUMNS: [(&str, &str, &str); 3] = [
    ("handoffs", "channel", "TEXT"),
    ("queries", "auto_reply", "INTEGER NOT NULL DEFAULT 0"),
    // Which hand-off an event is about, so erasing a customer finds it
    // without parsing bodies.
    ("outbox", "handoff_id", "TEXT"),
];

/// Adds `column` to `table` unless the table already has it; `true` when it
/// was added. `table` and `definition` come from the code, never from input
/// (SQLite cannot bind identifiers).
pub(super) fn add_column_if_missing(
    connection: &Connection,
    table: &str,
    column: &str,
    definition: &str,
) -> rusqlite::Result<bool> {
    let mut statement = connection.prepare(&format!("PRAGMA table_info({table})"))?;
    let mut names = statement.query_map([], |row| row.get::<_, String>(1))?;
    if names.try_fold(false, |found, name| {
        Ok::<_, rusqlite::Error>(found || name? == column)
    })? {
        return Ok(false);
    }
    connection.execute_batch(&format!(
        "ALTER TABLE {table} ADD COLUMN {column} {definition}"
    ))?;
    Ok(true)
}

/// Brings every table up to the columns this version writes.
pub(super) fn add_missing_columns(connection: &Connection) -> rusqlite::Result<()> {
    for (table, column, definition) in ADDED_COLUMNS {
        if add_column_if_missing(connection, table, column, definition)? {
            tracing::info!(table, column, "added a column to an existing database");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(connection: &Connection, table: &str) -> Vec<String> {
        let mut statement = connection
            .prepare(&format!("PRAGMA table_info({table})"))
            .unwrap();
        statement
            .query_map([], |row| row.get(1))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_missing_column_is_added_once_and_keeps_the_rows() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE queries (query_id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL);
                 INSERT INTO queries VALUES ('q1', 5);",
            )
            .unwrap();
        let definition = "INTEGER NOT NULL DEFAULT 0";
        assert!(add_column_if_missing(&connection, "queries", "auto_reply", definition).unwrap());
        assert!(!add_column_if_missing(&connection, "queries", "auto_reply", definition).unwrap());
        assert_eq!(
            columns(&connection, "queries"),
            ["query_id", "at_ms", "auto_reply"]
        );
        let old_row: (i64, i64) = connection
            .query_row(
                "SELECT at_ms, auto_reply FROM queries WHERE query_id = 'q1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(old_row, (5, 0), "existing rows get the default");
    }

    /// A database as the previous release left it: the tables without the
    /// added columns, with a hand-off in it.
    #[test]
    fn a_database_from_the_old_schema_opens_with_the_new_columns() {
        let dir = tempfile::tempdir().unwrap();
        {
            let old = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
            old.execute_batch(
                "CREATE TABLE handoffs (id TEXT PRIMARY KEY, session_hash TEXT NOT NULL,
                     session_id TEXT, status TEXT NOT NULL, created_ms INTEGER NOT NULL,
                     claimed_ms INTEGER, claimed_by TEXT, closed_ms INTEGER, resolution TEXT,
                     note TEXT, contact_name TEXT, contact_email TEXT, message TEXT,
                     reasons TEXT NOT NULL, updated_ms INTEGER NOT NULL);
                 INSERT INTO handoffs (id, session_hash, session_id, status, created_ms, reasons, updated_ms)
                     VALUES ('h_old', 'hash-s', 's', 'waiting', 10, '[]', 10);
                 CREATE TABLE queries (query_id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL,
                     channel TEXT NOT NULL, query TEXT NOT NULL, filters TEXT NOT NULL,
                     result_count INTEGER NOT NULL, top_ids TEXT NOT NULL, confidence REAL,
                     handoff_reasons TEXT NOT NULL, latency_ms REAL NOT NULL, session_hash TEXT);
                 CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                     delivery_id TEXT NOT NULL UNIQUE, event TEXT NOT NULL, body TEXT,
                     created_ms INTEGER NOT NULL, state TEXT NOT NULL,
                     attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL,
                     done_ms INTEGER);",
            )
            .unwrap();
        }
        let store = super::super::SqliteStore::open(dir.path()).unwrap();
        let connection = store.lock();
        assert!(columns(&connection, "handoffs").contains(&"channel".to_string()));
        assert!(columns(&connection, "queries").contains(&"auto_reply".to_string()));
        assert!(columns(&connection, "outbox").contains(&"handoff_id".to_string()));
        drop(connection);
        use crate::store::Store;
        let old = store.handoff("h_old").unwrap().unwrap();
        assert_eq!((old.id.as_str(), old.channel), ("h_old", None));
    }
}
