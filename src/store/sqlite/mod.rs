//! The SQLite [`Store`]: one connection behind a mutex (SQLite has one
//! writer anyway), WAL so the analytics readers never wait, and every state
//! change in a `BEGIN IMMEDIATE` transaction whose `UPDATE … WHERE status = …`
//! is the atomic check (the same SQL a PostgreSQL backend runs).

mod columns;
mod erase;
mod events;
mod reports;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};

use super::migrate::{self, Applied, Migration, SchemaStatus};
use super::{
    AdminSessionRow, Attempt, AttemptOutcome, ChannelActivity, Contact, DeliveryRecord, Erased,
    EventBatch, GapCount, HandoffRecord, HandoffStats, HandoffStatus, NewHandoff, OutboxCounts,
    OutboxDraft, OutboxItem, Rating, RenderEvent, Resolution, Store, StoreError, Transition,
};

use crate::analytics::reports::{ArticleStats, QueryCount, QueryReportKind, Summary, Window};
use crate::analytics::store::{SessionRow, VoteRow};

/// Everything in one file (the name is from when it held only analytics).
pub const DATABASE_FILE: &str = "analytics.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS handoffs (
    id TEXT PRIMARY KEY,
    session_hash TEXT NOT NULL,
    session_id TEXT,
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    claimed_ms INTEGER,
    claimed_by TEXT,
    closed_ms INTEGER,
    resolution TEXT,
    note TEXT,
    contact_name TEXT,
    contact_email TEXT,
    message TEXT,
    reasons TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    channel TEXT
);
CREATE INDEX IF NOT EXISTS handoffs_status ON handoffs(status, created_ms);
CREATE INDEX IF NOT EXISTS handoffs_session ON handoffs(session_hash, created_ms);
CREATE INDEX IF NOT EXISTS handoffs_created ON handoffs(created_ms);
-- At most one open hand-off per session, whatever the callers do.
CREATE UNIQUE INDEX IF NOT EXISTS handoffs_open ON handoffs(session_hash) WHERE status <> 'closed';
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    body TEXT,
    created_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    done_ms INTEGER,
    handoff_id TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_attempt_ms);
CREATE TABLE IF NOT EXISTS delivery_attempts (
    delivery_id TEXT NOT NULL,
    event TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_attempts_at ON delivery_attempts(at_ms);
CREATE TABLE IF NOT EXISTS ratings (
    session_hash TEXT PRIMARY KEY,
    score INTEGER NOT NULL,
    comment TEXT,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ratings_at ON ratings(at_ms);
";

/// Version 1 is every table as it was before versioned migrations
/// (`CREATE … IF NOT EXISTS`, plus the columns added since: a database
/// from then is brought to the same place as a new one).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: "",
    },
    Migration {
        version: 2,
        name: "outbox leases and dashboard sign-ins",
        sql: "
ALTER TABLE outbox ADD COLUMN lease_until_ms INTEGER;
CREATE TABLE admin_sessions (
    id_hash TEXT PRIMARY KEY,
    csrf TEXT NOT NULL,
    admin TEXT,
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE INDEX admin_sessions_seen ON admin_sessions(last_seen_ms);
",
    },
];

/// Applies pending migrations, each in its own `BEGIN IMMEDIATE`
/// transaction (SQLite's one writer is the lock); refuses a newer schema.
fn migrate(connection: &mut Connection) -> Result<Vec<i64>, StoreError> {
    connection.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)",
        migrate::TABLE
    ))?;
    let mut done = Vec::new();
    let mut fresh = None;
    loop {
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let status = schema_status(&transaction)?;
        status.check()?;
        let fresh = *fresh.get_or_insert(status.applied.is_empty());
        let Some(next) = migrate::pending(&status.applied, MIGRATIONS).next() else {
            return Ok(done);
        };
        if next.version == 1 {
            transaction.execute_batch(events::EVENTS_SCHEMA)?;
            transaction.execute_batch(SCHEMA)?;
            columns::add_missing_columns(&transaction)?;
        } else {
            transaction.execute_batch(next.sql)?;
        }
        transaction.execute(
            &format!(
                "INSERT INTO {} (version, name, applied_ms) VALUES (?1, ?2, ?3)",
                migrate::TABLE
            ),
            params![next.version, next.name, wall_ms()],
        )?;
        transaction.commit()?;
        if !fresh {
            tracing::info!(
                version = next.version,
                name = next.name,
                "applied a database migration"
            );
        }
        done.push(next.version);
    }
}

fn schema_status(connection: &Connection) -> Result<SchemaStatus, StoreError> {
    let mut statement = connection.prepare(&format!(
        "SELECT version, name, applied_ms FROM {} ORDER BY version",
        migrate::TABLE
    ))?;
    let applied = statement
        .query_map([], |row| {
            Ok(Applied {
                version: row.get(0)?,
                name: row.get(1)?,
                applied_ms: row.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(SchemaStatus::new("sqlite", applied, MIGRATIONS))
}

fn wall_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

const HANDOFF_COLUMNS: &str = "id, session_hash, session_id, status, created_ms, claimed_ms, \
    claimed_by, closed_ms, resolution, note, contact_name, contact_email, message, reasons, channel";

/// Delivery attempts kept for `GET /api/v1/handoffs/deliveries`.
const KEEP_ATTEMPTS: i64 = 10_000;

pub struct SqliteStore {
    connection: Mutex<Connection>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (or creates) `data_dir/analytics.sqlite` and its tables.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let mut connection = Connection::open(&path)?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode: a committed transaction survives a killed
        // process (only a power cut can undo the last ones).
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        migrate(&mut connection)?;
        // One process owns the file: leases of a process that died with
        // events in flight end now, not when they run out.
        connection.execute(
            "UPDATE outbox SET lease_until_ms = NULL WHERE lease_until_ms IS NOT NULL",
            [],
        )?;
        Ok(SqliteStore {
            connection: Mutex::new(connection),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the database in `data_dir` stands, without creating or
    /// migrating it (`rapport db status`).
    pub fn status_of(data_dir: &Path) -> Result<SchemaStatus, StoreError> {
        let path = data_dir.join(DATABASE_FILE);
        if !path.exists() {
            return Ok(SchemaStatus::new("sqlite", Vec::new(), MIGRATIONS));
        }
        let connection = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let versioned: bool = connection.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [migrate::TABLE],
            |row| row.get(0),
        )?;
        if !versioned {
            return Ok(SchemaStatus::new("sqlite", Vec::new(), MIGRATIONS));
        }
        schema_status(&connection)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A read-only connection of its own, for reports: they may take a
    /// while on a big database and must not hold up the writer.
    fn reader(&self) -> Result<Connection, StoreError> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_secs(5))?;
        Ok(connection)
    }
}

fn read_handoff(row: &Row<'_>) -> rusqlite::Result<HandoffRecord> {
    let status: String = row.get(3)?;
    let resolution: Option<String> = row.get(8)?;
    let name: Option<String> = row.get(10)?;
    let email: Option<String> = row.get(11)?;
    let reasons: String = row.get(13)?;
    let corrupt = |column: usize, text: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("unknown value {text:?}").into(),
        )
    };
    Ok(HandoffRecord {
        id: row.get(0)?,
        session_hash: row.get(1)?,
        session_id: row.get(2)?,
        status: HandoffStatus::parse(&status).ok_or_else(|| corrupt(3, &status))?,
        created_ms: row.get(4)?,
        claimed_ms: row.get(5)?,
        claimed_by: row.get(6)?,
        closed_ms: row.get(7)?,
        resolution: match resolution {
            Some(text) => Some(Resolution::parse(&text).ok_or_else(|| corrupt(8, &text))?),
            None => None,
        },
        note: row.get(9)?,
        contact: (name.is_some() || email.is_some()).then_some(Contact { name, email }),
        message: row.get(12)?,
        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        channel: row.get(14)?,
    })
}

fn get_handoff(connection: &Connection, id: &str) -> rusqlite::Result<Option<HandoffRecord>> {
    connection
        .prepare_cached(&format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE id = ?1"
        ))?
        .query_row([id], read_handoff)
        .optional()
}

/// Writes the event about `record` (if any) to the outbox.
fn enqueue(
    transaction: &Transaction<'_>,
    record: &HandoffRecord,
    draft: Option<OutboxDraft>,
    at_ms: i64,
) -> rusqlite::Result<()> {
    if let Some(draft) = draft {
        transaction.execute(
            "INSERT INTO outbox (delivery_id, event, body, created_ms, state, next_attempt_ms, handoff_id)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?4, ?5)",
            params![draft.delivery_id, draft.event, draft.body, at_ms, record.id],
        )?;
    }
    Ok(())
}

/// Runs `change` (an `UPDATE … RETURNING` guarded by the allowed states);
/// when it matched nothing, tells a missing record from a conflicting one.
fn transition(
    connection: &mut Connection,
    id: &str,
    at_ms: i64,
    render: RenderEvent<'_>,
    change: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<Option<HandoffRecord>>,
) -> Result<Transition, StoreError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let outcome = match change(&transaction)? {
        Some(record) => {
            enqueue(&transaction, &record, render(&record), at_ms)?;
            Transition::Done(record)
        }
        None => match get_handoff(&transaction, id)? {
            Some(record) => Transition::Conflict(record),
            None => Transition::NotFound,
        },
    };
    transaction.commit()?;
    Ok(outcome)
}

impl Store for SqliteStore {
    fn write_events(&self, batch: &EventBatch<'_>) -> Result<(), StoreError> {
        events::write(&mut self.lock(), batch)
    }

    fn prune_events(&self, before_ms: i64) -> Result<usize, StoreError> {
        events::prune(&self.lock(), before_ms)
    }

    fn prune_sessions(&self, events_before: i64, votes_before: i64) -> Result<usize, StoreError> {
        events::prune_sessions(&self.lock(), events_before, votes_before)
    }

    fn knows_query(&self, query_id: &str) -> Result<bool, StoreError> {
        events::knows_query(&self.lock(), query_id)
    }

    fn stored_sessions(&self, since_ms: i64) -> Result<HashSet<String>, StoreError> {
        events::stored_sessions(&self.reader()?, since_ms)
    }

    fn customer_sessions(
        &self,
        customer_hash: &str,
        since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        events::customer_sessions(&self.reader()?, customer_hash, since_ms)
    }

    fn session_rows(
        &self,
        session_hash: &str,
        since_ms: i64,
    ) -> Result<Vec<SessionRow>, StoreError> {
        events::session_rows(&self.lock(), session_hash, since_ms)
    }

    fn session_of_query(&self, query_id: &str) -> Result<Option<String>, StoreError> {
        events::session_of_query(&self.lock(), query_id)
    }

    fn customer_votes_of(
        &self,
        customer_hash: &str,
        since_ms: i64,
    ) -> Result<Vec<VoteRow>, StoreError> {
        events::customer_votes_of(&self.lock(), customer_hash, since_ms)
    }

    fn customer_votes(&self, since_ms: i64) -> Result<Vec<VoteRow>, StoreError> {
        events::customer_votes(&self.reader()?, since_ms)
    }

    fn event_summary(&self, window: &Window) -> Result<Summary, StoreError> {
        reports::summary(&self.reader()?, window)
    }

    fn query_counts(
        &self,
        window: &Window,
        kind: QueryReportKind,
        limit: usize,
    ) -> Result<Vec<QueryCount>, StoreError> {
        reports::queries(&self.reader()?, window, kind, limit)
    }

    fn article_stats(&self, window: &Window) -> Result<BTreeMap<String, ArticleStats>, StoreError> {
        reports::article_stats(&self.reader()?, window)
    }

    fn feedback_totals(&self) -> Result<BTreeMap<String, (u64, u64)>, StoreError> {
        reports::feedback_totals(&self.reader()?)
    }

    fn session_outcomes(&self, window: &Window) -> Result<Vec<(String, bool)>, StoreError> {
        reports::session_outcomes(&self.reader()?, window)
    }

    fn gap_counts(&self, window: &Window) -> Result<Vec<GapCount>, StoreError> {
        reports::gap_counts(&self.reader()?, window)
    }

    fn shown_before_handoff(&self, window: &Window) -> Result<BTreeMap<String, u64>, StoreError> {
        reports::shown_before_handoff(&self.reader()?, window)
    }

    fn channel_activity(
        &self,
        window: &Window,
    ) -> Result<BTreeMap<String, ChannelActivity>, StoreError> {
        reports::channel_activity(&self.reader()?, window)
    }

    fn create_handoff(
        &self,
        new: NewHandoff,
        render: RenderEvent<'_>,
    ) -> Result<(HandoffRecord, bool), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let open: Option<HandoffRecord> = transaction
            .prepare_cached(&format!(
                "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE session_hash = ?1 AND status <> 'closed'"
            ))?
            .query_row([&new.session_hash], read_handoff)
            .optional()?;
        if let Some(open) = open {
            return Ok((open, false));
        }
        let contact = new.contact.unwrap_or_default();
        let record = transaction
            .prepare_cached(&format!(
                "INSERT INTO handoffs (id, session_hash, session_id, status, created_ms, contact_name,
                     contact_email, message, reasons, updated_ms, channel)
                 VALUES (?1, ?2, ?3, 'waiting', ?4, ?5, ?6, ?7, ?8, ?4, ?9)
                 RETURNING {HANDOFF_COLUMNS}"
            ))?
            .query_row(
                params![
                    new.id,
                    new.session_hash,
                    new.session_id,
                    new.at_ms,
                    contact.name,
                    contact.email,
                    new.message,
                    serde_json::to_string(&new.reasons).unwrap_or_else(|_| "[]".into()),
                    new.channel,
                ],
                read_handoff,
            )?;
        enqueue(&transaction, &record, render(&record), new.at_ms)?;
        transaction.commit()?;
        Ok((record, true))
    }

    fn handoff(&self, id: &str) -> Result<Option<HandoffRecord>, StoreError> {
        Ok(get_handoff(&self.lock(), id)?)
    }

    fn session_handoff(&self, session_hash: &str) -> Result<Option<HandoffRecord>, StoreError> {
        Ok(self
            .lock()
            .prepare_cached(&format!(
                "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE session_hash = ?1
                 ORDER BY created_ms DESC, rowid DESC LIMIT 1"
            ))?
            .query_row([session_hash], read_handoff)
            .optional()?)
    }

    fn handoffs(
        &self,
        status: Option<HandoffStatus>,
        limit: usize,
    ) -> Result<Vec<HandoffRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE ?1 IS NULL OR status = ?1
             ORDER BY created_ms, rowid LIMIT ?2"
        ))?;
        let records = statement
            .query_map(
                params![status.map(HandoffStatus::as_str), limit as i64],
                read_handoff,
            )?
            .collect::<Result<_, _>>()?;
        Ok(records)
    }

    fn position(&self, record: &HandoffRecord) -> Result<Option<u64>, StoreError> {
        if record.status != HandoffStatus::Waiting {
            return Ok(None);
        }
        let ahead: i64 = self.lock().prepare_cached(
            "SELECT count(*) FROM handoffs WHERE status = 'waiting'
               AND (created_ms < ?1 OR (created_ms = ?1 AND rowid < (SELECT rowid FROM handoffs WHERE id = ?2)))",
        )?
        .query_row(params![record.created_ms, record.id], |row| row.get(0))?;
        Ok(Some(ahead as u64 + 1))
    }

    fn claim(
        &self,
        id: &str,
        agent: &str,
        at_ms: i64,
        render: RenderEvent<'_>,
    ) -> Result<Transition, StoreError> {
        transition(&mut self.lock(), id, at_ms, render, |transaction| {
            transaction
                .prepare_cached(&format!(
                    "UPDATE handoffs SET status = 'claimed', claimed_ms = ?2, claimed_by = ?3, updated_ms = ?2
                     WHERE id = ?1 AND status = 'waiting' RETURNING {HANDOFF_COLUMNS}"
                ))?
                .query_row(params![id, at_ms, agent], read_handoff)
                .optional()
        })
    }

    fn close(
        &self,
        id: &str,
        resolution: Resolution,
        note: Option<String>,
        at_ms: i64,
        render: RenderEvent<'_>,
    ) -> Result<Transition, StoreError> {
        transition(&mut self.lock(), id, at_ms, render, |transaction| {
            transaction
                .prepare_cached(&format!(
                    "UPDATE handoffs SET status = 'closed', closed_ms = ?2, resolution = ?3, note = ?4, updated_ms = ?2
                     WHERE id = ?1 AND status <> 'closed' RETURNING {HANDOFF_COLUMNS}"
                ))?
                .query_row(params![id, at_ms, resolution.as_str(), note], read_handoff)
                .optional()
        })
    }

    fn claim_waits(&self, since_ms: i64) -> Result<Vec<i64>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT claimed_ms - created_ms FROM handoffs WHERE claimed_ms >= ?1",
        )?;
        let waits = statement
            .query_map([since_ms], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(waits)
    }

    fn handoff_stats(
        &self,
        since_ms: i64,
        until_ms: i64,
        abandoned_before_ms: i64,
    ) -> Result<HandoffStats, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT session_hash, status, created_ms, claimed_ms, resolution FROM handoffs
             WHERE created_ms >= ?1 AND created_ms < ?2",
        )?;
        let mut rows = statement.query([since_ms, until_ms])?;
        let mut stats = HandoffStats::default();
        while let Some(row) = rows.next()? {
            let session: String = row.get(0)?;
            let status: String = row.get(1)?;
            let created: i64 = row.get(2)?;
            let claimed: Option<i64> = row.get(3)?;
            let resolution: Option<String> = row.get(4)?;
            stats.created += 1;
            stats.sessions.push(session);
            if let Some(claimed) = claimed {
                stats.claimed += 1;
                stats.waits_ms.push(claimed - created);
            }
            if let Some(resolution) = resolution.as_deref().and_then(Resolution::parse) {
                *stats.closed.entry(resolution).or_default() += 1;
            }
            let gave_up = match status.as_str() {
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

    fn handoffs_created(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<HandoffRecord>, StoreError> {
        let connection = self.reader()?;
        let mut statement = connection.prepare(&format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE created_ms >= ?1 AND created_ms < ?2
             ORDER BY created_ms, rowid"
        ))?;
        let records = statement
            .query_map(params![since_ms, until_ms], read_handoff)?
            .collect::<Result<_, _>>()?;
        Ok(records)
    }

    fn rate(&self, rating: Rating) -> Result<bool, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existed = transaction
            .query_row(
                "SELECT 1 FROM ratings WHERE session_hash = ?1",
                [&rating.session_hash],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        transaction.execute(
            "INSERT INTO ratings (session_hash, score, comment, at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (session_hash) DO UPDATE SET score = excluded.score,
                 comment = excluded.comment, at_ms = excluded.at_ms",
            params![
                rating.session_hash,
                rating.score,
                rating.comment,
                rating.at_ms
            ],
        )?;
        transaction.commit()?;
        Ok(existed)
    }

    fn ratings(&self, since_ms: i64, until_ms: i64) -> Result<Vec<u8>, StoreError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached("SELECT score FROM ratings WHERE at_ms >= ?1 AND at_ms < ?2")?;
        let scores = statement
            .query_map([since_ms, until_ms], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(scores)
    }

    fn forget_sessions(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let handoffs = transaction.execute(
            "UPDATE handoffs SET session_id = NULL, contact_name = NULL, contact_email = NULL,
                 message = NULL, note = NULL
             WHERE updated_ms < ?1
               AND (session_id IS NOT NULL OR contact_name IS NOT NULL OR contact_email IS NOT NULL
                    OR message IS NOT NULL OR note IS NOT NULL)",
            [before_ms],
        )?;
        let comments = transaction.execute(
            "UPDATE ratings SET comment = NULL WHERE at_ms < ?1 AND comment IS NOT NULL",
            [before_ms],
        )?;
        // Delivered or dead events keep their ids and outcome, not the customer.
        let bodies = transaction.execute(
            "UPDATE outbox SET body = NULL WHERE state <> 'pending' AND done_ms < ?1 AND body IS NOT NULL",
            [before_ms],
        )?;
        transaction.execute(
            "DELETE FROM delivery_attempts WHERE rowid <= (SELECT max(rowid) FROM delivery_attempts) - ?1",
            [KEEP_ATTEMPTS],
        )?;
        transaction.commit()?;
        Ok(handoffs + comments + bodies)
    }

    fn erase_customer(
        &self,
        customer_hash: &str,
        live_sessions: &[String],
    ) -> Result<Erased, StoreError> {
        erase::customer(&mut self.lock(), customer_hash, live_sessions)
    }

    fn due_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let items: Vec<OutboxItem> = {
            let mut statement = transaction.prepare_cached(
                "SELECT seq, delivery_id, event, body, created_ms, attempts, next_attempt_ms, lease_until_ms
                 FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT ?1",
            )?;
            let mut due = true;
            statement
                .query_map(params![limit as i64], |row| {
                    let leased = row
                        .get::<_, Option<i64>>(7)?
                        .is_some_and(|until| until > now_ms);
                    due = due && row.get::<_, i64>(6)? <= now_ms && !leased;
                    Ok(OutboxItem {
                        seq: row.get(0)?,
                        delivery_id: row.get(1)?,
                        event: row.get(2)?,
                        body: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        created_ms: row.get(4)?,
                        attempts: row.get(5)?,
                    })
                    .map(|item| due.then_some(item))
                })?
                // In order: while the oldest event waits for its retry (or is
                // out with another worker), the later ones wait too, so a
                // receiver sees a hand-off's events in order.
                .map_while(|item| item.transpose())
                .collect::<Result<_, _>>()?
        };
        {
            let mut lease = transaction
                .prepare_cached("UPDATE outbox SET lease_until_ms = ?2 WHERE seq = ?1")?;
            for item in &items {
                lease.execute(params![item.seq, lease_until_ms])?;
            }
        }
        transaction.commit()?;
        Ok(items)
    }

    fn next_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT min(max(next_attempt_ms, coalesce(lease_until_ms, 0))) FROM outbox WHERE state = 'pending'",
                [],
                |row| row.get(0),
            )
            .optional()?
            .flatten())
    }

    fn record_attempt(&self, item: &OutboxItem, attempt: &Attempt) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let number = item.attempts + 1;
        transaction.execute(
            "INSERT INTO delivery_attempts (delivery_id, event, attempt, at_ms, status_code, error, duration_ms, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                item.delivery_id,
                item.event,
                number,
                attempt.at_ms,
                attempt.status_code,
                attempt.error,
                attempt.duration_ms,
                attempt.outcome.as_str(),
            ],
        )?;
        let (state, next, done) = match attempt.outcome {
            AttemptOutcome::Retry => (
                "pending",
                attempt.next_attempt_ms.unwrap_or(attempt.at_ms),
                None,
            ),
            AttemptOutcome::Delivered => ("delivered", attempt.at_ms, Some(attempt.at_ms)),
            AttemptOutcome::Dead => ("dead", attempt.at_ms, Some(attempt.at_ms)),
        };
        transaction.execute(
            "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt_ms = ?4, done_ms = ?5, lease_until_ms = NULL WHERE seq = ?1",
            params![item.seq, state, number, next, done],
        )?;
        transaction.commit()?;
        Ok(())
    }

    fn deliveries(&self, limit: usize) -> Result<Vec<DeliveryRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT delivery_id, event, attempt, at_ms, status_code, error, duration_ms, outcome
             FROM delivery_attempts ORDER BY rowid DESC LIMIT ?1",
        )?;
        let records = statement
            .query_map([limit as i64], |row| {
                let outcome: String = row.get(7)?;
                Ok(DeliveryRecord {
                    delivery_id: row.get(0)?,
                    event: row.get(1)?,
                    attempt: row.get(2)?,
                    result: Attempt {
                        at_ms: row.get(3)?,
                        status_code: row.get(4)?,
                        error: row.get(5)?,
                        duration_ms: row.get(6)?,
                        outcome: AttemptOutcome::parse(&outcome).unwrap_or(AttemptOutcome::Retry),
                        next_attempt_ms: None,
                    },
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(records)
    }

    fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let connection = self.lock();
        let mut counts = OutboxCounts::default();
        let mut statement =
            connection.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let state: String = row.get(0)?;
            let n: i64 = row.get(1)?;
            match state.as_str() {
                "pending" => counts.pending = n as u64,
                "delivered" => counts.delivered = n as u64,
                "dead" => counts.dead = n as u64,
                _ => {}
            }
        }
        counts.retried = connection.query_row(
            "SELECT count(*) FROM delivery_attempts WHERE outcome = 'retry'",
            [],
            |row| row.get::<_, i64>(0),
        )? as u64;
        Ok(counts)
    }

    fn put_admin_session(&self, session: &AdminSessionRow) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT INTO admin_sessions (id_hash, csrf, admin, created_ms, last_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id_hash) DO UPDATE SET csrf = excluded.csrf, admin = excluded.admin,
                 created_ms = excluded.created_ms, last_seen_ms = excluded.last_seen_ms",
            params![
                session.id_hash,
                session.csrf,
                session.admin,
                session.created_ms,
                session.last_seen_ms
            ],
        )?;
        Ok(())
    }

    fn admin_session(&self, id_hash: &str) -> Result<Option<AdminSessionRow>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT id_hash, csrf, admin, created_ms, last_seen_ms FROM admin_sessions WHERE id_hash = ?1",
                [id_hash],
                |row| {
                    Ok(AdminSessionRow {
                        id_hash: row.get(0)?,
                        csrf: row.get(1)?,
                        admin: row.get(2)?,
                        created_ms: row.get(3)?,
                        last_seen_ms: row.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    fn touch_admin_session(&self, id_hash: &str, at_ms: i64) -> Result<bool, StoreError> {
        Ok(self.lock().execute(
            "UPDATE admin_sessions SET last_seen_ms = max(last_seen_ms, ?2) WHERE id_hash = ?1",
            params![id_hash, at_ms],
        )? > 0)
    }

    fn delete_admin_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .execute("DELETE FROM admin_sessions WHERE id_hash = ?1", [id_hash])?
            > 0)
    }

    fn prune_admin_sessions(&self, idle_before_ms: i64, keep: usize) -> Result<usize, StoreError> {
        let connection = self.lock();
        let idle = connection.execute(
            "DELETE FROM admin_sessions WHERE last_seen_ms < ?1",
            [idle_before_ms],
        )?;
        let over = connection.execute(
            "DELETE FROM admin_sessions WHERE id_hash NOT IN
                 (SELECT id_hash FROM admin_sessions ORDER BY last_seen_ms DESC LIMIT ?1)",
            [keep as i64],
        )?;
        Ok(idle + over)
    }

    fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        schema_status(&self.lock())
    }
}

/// The store's behaviour is tested on this backend and on PostgreSQL alike
/// in `tests/store.rs`; here, one report's exact figures.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::{Channel, QueryEvent};

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

    /// Chat and e-mail questions, and a hand-off from each (one claimed and
    /// closed): each channel gets its own counts and times.
    #[test]
    fn channel_activity_splits_questions_and_handoffs_by_channel() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut handed_off = asked("c2", 110, Channel::Answer, "chat-1");
        handed_off.handoff_reasons = vec!["low_confidence".into()];
        let mut auto = asked("e1", 120, Channel::Email, "mail-1");
        auto.auto_reply = true;
        let queries = [
            asked("c1", 100, Channel::Answer, "chat-1"),
            handed_off,
            auto,
            asked("e2", 130, Channel::Email, "mail-2"),
            asked("s1", 140, Channel::Search, "portal-1"),
            // Outside the window.
            asked("c0", 5, Channel::Answer, "chat-0"),
        ];
        store
            .write_events(&EventBatch {
                queries: &queries,
                ..EventBatch::default()
            })
            .unwrap();
        let mut chat = new_handoff("hc", "chat-1", 200);
        chat.channel = Some("chat".into());
        let mut mail = new_handoff("he", "mail-2", 210);
        mail.channel = Some("email".into());
        store.create_handoff(chat, &|_| None).unwrap();
        store.create_handoff(mail, &|_| None).unwrap();
        store.claim("hc", "Dana", 200 + 30_000, &|_| None).unwrap();
        store
            .close("hc", Resolution::Solved, None, 200 + 90_000, &|_| None)
            .unwrap();

        let window = crate::analytics::reports::Window {
            from_ms: 50,
            to_ms: 1_000_000,
            channel: None,
        };
        let channels = store.channel_activity(&window).unwrap();
        assert_eq!(
            channels.keys().map(String::as_str).collect::<Vec<_>>(),
            ["chat", "email"]
        );
        assert_eq!(
            channels["chat"],
            ChannelActivity {
                messages: 2,
                answered: 1,
                auto_replied: 0,
                handed_off: 1,
                first_response_ms: vec![30_000],
                resolution_ms: vec![90_000],
            }
        );
        assert_eq!(
            channels["email"],
            ChannelActivity {
                messages: 2,
                answered: 2,
                auto_replied: 1,
                handed_off: 1,
                first_response_ms: vec![],
                resolution_ms: vec![],
            }
        );
        let only_email = crate::analytics::reports::Window {
            channel: Some("email".into()),
            ..window
        };
        let channels = store.channel_activity(&only_email).unwrap();
        assert_eq!(
            channels.keys().map(String::as_str).collect::<Vec<_>>(),
            ["email"]
        );
    }
}
