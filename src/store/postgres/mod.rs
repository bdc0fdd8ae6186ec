//! The PostgreSQL [`Store`](super::Store): the state every replica behind
//! one load balancer shares.
//!
//! # Driver
//! tokio-postgres with a deadpool-postgres pool: the async driver that
//! LISTEN/NOTIFY comes with (the hand-off stream across replicas), with
//! pipelined prepared statements and no compile-time database (sqlx's
//! checked queries would need one at build time, or an offline cache to
//! keep in step). The store runs its own small runtime for the pool's
//! connections; the [`Store`](super::Store) methods block (like SQLite's)
//! and drive their queries with [`PgStore::block`].
//!
//! # When the database is down
//! The first call that cannot reach it marks the store down; from then on
//! calls fail at once with [`StoreError::Unavailable`] (no caller waits
//! for a timeout) while a background task pings with backoff, and marks
//! it up again (one more reconnect) when PostgreSQL answers.

mod events;
mod handoffs;
mod import;
pub use import::Copied;
mod reports;
mod store;
mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::migrate::{self, Applied, Migration, SchemaStatus};
use super::{Health, StoreError};

/// The notification channel replicas tell each other about changes on.
pub const CHANNEL: &str = "rapport_events";

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "shared settings",
        sql: include_str!("migrations/0002_settings.sql"),
    },
];

/// Any 64-bit number only rapport uses: `pg_advisory_lock` takes it while
/// migrating, so replicas starting together migrate one after the other.
const MIGRATION_LOCK: i64 = 0x7261_7070_6f72_7401;

/// Connections per replica. Requests wait for one at most [`WAIT`].
const POOL_SIZE: usize = 16;
const WAIT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Between pings while the database is down: doubling up to the last.
const RETRY: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];
/// Between pings while it is up (a dead connection is also found by the
/// first query that uses it).
const PING_EVERY: Duration = Duration::from_secs(5);

pub struct PgStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// For the listener's own connection, as the pool's.
    tls: MakeRustlsConnect,
    /// `sslmode=verify-full`: the server's certificate was checked.
    verified: bool,
    /// Owns the connections' tasks; shut down without waiting on drop
    /// (dropping a runtime inside another would panic).
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    health: Arc<Health>,
    /// Where, for logs and errors: host, port and database, no password.
    target: String,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// `host:port/dbname` of a parsed URL, without user or password.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("");
    format!("{host}:{port}/{db}")
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        match error.as_db_error() {
            // Admin shutdown, crash recovery, too many connections: the
            // server is there but not serving; the same as unreachable.
            Some(db) if is_unavailable_code(db.code().code()) => {
                StoreError::Unavailable(db.message().to_string())
            }
            Some(db) => StoreError::Postgres(format!("{} ({})", db.message(), db.code().code())),
            None => StoreError::Unavailable(match std::error::Error::source(&error) {
                Some(cause) => format!("{error}: {cause}"),
                None => error.to_string(),
            }),
        }
    }
}

/// SQLSTATE classes 08 (connection), 53 (resources), 57 (operator
/// intervention: shutdown, recovery).
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57")
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(error) => error.into(),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

impl PgStore {
    /// Connects (checking the database answers), without migrating: see
    /// [`PgStore::migrate`] and [`PgStore::open`].
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let tls::Target {
            mut config,
            tls,
            verified,
        } = tls::target(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("rapport");
        }
        // NOTICEs ("relation already exists, skipping") are not news.
        if config.get_options().is_none() {
            config.options("-c client_min_messages=warning");
        }
        let target = describe(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rapport-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot start its runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Postgres(e.to_string()))?;
        let store = PgStore {
            pool,
            config,
            tls,
            verified,
            runtime: Some(runtime),
            handle,
            health: Arc::new(Health::default()),
            target,
        };
        store.ping_now().map_err(|error| match error {
            StoreError::Unavailable(reason) => StoreError::Unavailable(format!(
                "cannot reach PostgreSQL at {}: {reason}",
                store.target
            )),
            other => other,
        })?;
        store.keep_checking();
        Ok(store)
    }

    /// Connects, applies pending migrations (under the advisory lock) and
    /// refuses a schema newer than this build: what `serve` does.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url)?;
        store.migrate()?;
        Ok(store)
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether the server's certificate is checked (`sslmode=verify-full`).
    pub fn verifies_server(&self) -> bool {
        self.verified
    }

    /// Whether the connection to the server is encrypted (`pg_stat_ssl`),
    /// as the start's log line says.
    pub fn encrypted(&self) -> Result<bool, StoreError> {
        let pool = self.pool.clone();
        self.block(async move {
            let client = pool.get().await?;
            let row = client
                .query_one(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await?;
            Ok(row.get(0))
        })
    }

    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Runs one database future to completion on the calling thread (the
    /// store's runtime drives the connections), marking the store down if
    /// the database cannot be reached. Fails at once while it is down.
    /// Never from the store's own runtime (a [`PgStore::listen_with`]
    /// callback): its one worker would wait on itself.
    pub(crate) fn block<T>(
        &self,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if !self.health.is_up() {
            return Err(StoreError::Unavailable(format!(
                "PostgreSQL at {} is down (reconnecting)",
                self.target
            )));
        }
        let _runtime = self.handle.enter();
        let result = futures_executor::block_on(work);
        if let Err(StoreError::Unavailable(reason)) = &result {
            self.health.mark_down(reason);
        }
        result
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The first round trip, at start: its failure is the caller's error
    /// to report (rapport exits), not an outage to wait out.
    fn ping_now(&self) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let _runtime = self.handle.enter();
        futures_executor::block_on(async move {
            let client = pool.get().await?;
            client.simple_query("SELECT 1").await?;
            Ok(())
        })
    }

    /// The background health check (see the module's doc).
    fn keep_checking(&self) {
        let pool = self.pool.clone();
        let health = self.health.clone();
        self.handle.spawn(async move {
            let mut failures = 0usize;
            loop {
                let pause = if health.is_up() {
                    PING_EVERY
                } else {
                    RETRY[failures.min(RETRY.len() - 1)]
                };
                tokio::time::sleep(pause).await;
                let ping = async {
                    let client = pool.get().await?;
                    client.simple_query("SELECT 1").await?;
                    Ok::<(), StoreError>(())
                };
                match ping.await {
                    Ok(()) => {
                        failures = 0;
                        health.mark_up();
                    }
                    Err(error) => {
                        failures += 1;
                        health.mark_down(&error.to_string());
                    }
                }
            }
        });
    }

    /// Applies pending migrations, one transaction each, holding the
    /// advisory lock; refuses a newer schema. Returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let pool = self.pool.clone();
        self.block(async move {
            let mut client = pool.get().await?;
            client
                .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            let result = async {
                ensure_table(&client).await?;
                let status = status(&client).await?;
                status.check()?;
                let mut done = Vec::new();
                for migration in migrate::pending(&status.applied, MIGRATIONS) {
                    let transaction = client.transaction().await?;
                    transaction.batch_execute(migration.sql).await?;
                    transaction
                        .execute(
                            &format!(
                                "INSERT INTO {} (version, name, applied_ms) VALUES ($1, $2, $3)",
                                migrate::TABLE
                            ),
                            &[&migration.version, &migration.name, &now_ms()],
                        )
                        .await?;
                    transaction.commit().await?;
                    tracing::info!(
                        version = migration.version,
                        name = migration.name,
                        "applied a database migration"
                    );
                    done.push(migration.version);
                }
                Ok(done)
            }
            .await;
            // The lock is the session's: give it back even after a failure,
            // since the pool keeps the connection.
            client
                .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
                .await?;
            result
        })
    }

    pub fn status(&self) -> Result<SchemaStatus, StoreError> {
        let pool = self.pool.clone();
        self.block(async move {
            let client = pool.get().await?;
            ensure_table(&client).await?;
            status(&client).await
        })
    }

    /// The stored value of `key`, set to `proposed` by whichever replica
    /// asks first.
    pub fn setting_or_insert(&self, key: &str, proposed: &str) -> Result<String, StoreError> {
        self.block(async {
            let client = self.pool.get().await?;
            client
                .execute(
                    "INSERT INTO rapport_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                    &[&key, &proposed],
                )
                .await?;
            let row = client
                .query_one("SELECT value FROM rapport_settings WHERE key = $1", &[&key])
                .await?;
            Ok(row.get(0))
        })
    }

    /// `NOTIFY` on [`CHANNEL`] (within PostgreSQL's 8,000-byte payload limit:
    /// send ids, not bodies).
    pub fn notify(&self, payload: &str) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let payload = payload.to_string();
        self.block(async move {
            let client = pool.get().await?;
            client
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                .await?;
            Ok(())
        })
    }

    /// Listens on [`CHANNEL`] over a connection of its own (outside the
    /// pool, which would hand it to other work), reconnecting with backoff
    /// for as long as the store lives.
    pub fn listen_with(&self, on_message: Box<dyn Fn(String) + Send + Sync>) {
        let config = self.config.clone();
        let tls = self.tls.clone();
        let on_message: Arc<dyn Fn(String) + Send + Sync> = Arc::from(on_message);
        self.handle.spawn(async move {
            let mut failures = 0usize;
            loop {
                match listen_once(&config, tls.clone(), on_message.clone()).await {
                    Ok(()) => failures = 0,
                    Err(error) => {
                        tracing::debug!(%error, "the notification listener lost its connection");
                        failures += 1;
                    }
                }
                tokio::time::sleep(RETRY[failures.min(RETRY.len() - 1)]).await;
            }
        });
    }
}

/// One listening connection, until it ends.
async fn listen_once(
    config: &tokio_postgres::Config,
    tls: MakeRustlsConnect,
    on_message: Arc<dyn Fn(String) + Send + Sync>,
) -> Result<(), StoreError> {
    use futures_util::StreamExt;
    let (client, mut connection) = config.connect(tls).await?;
    let (ended, mut wait) = tokio::sync::oneshot::channel::<()>();
    let mut messages = Box::pin(futures_util::stream::poll_fn(move |cx| {
        connection.poll_message(cx)
    }));
    let driver = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                    on_message(note.payload().to_string())
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = ended.send(());
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    let _ = (&mut wait).await;
    driver.abort();
    Ok(())
}

async fn ensure_table(client: &tokio_postgres::Client) -> Result<(), StoreError> {
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (
                version BIGINT PRIMARY KEY,
                name TEXT NOT NULL,
                applied_ms BIGINT NOT NULL
            )",
            migrate::TABLE
        ))
        .await?;
    Ok(())
}

async fn status(client: &tokio_postgres::Client) -> Result<SchemaStatus, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT version, name, applied_ms FROM {} ORDER BY version",
                migrate::TABLE
            ),
            &[],
        )
        .await?;
    let applied = rows
        .iter()
        .map(|row| Applied {
            version: row.get(0),
            name: row.get(1),
            applied_ms: row.get(2),
        })
        .collect();
    Ok(SchemaStatus::new("postgres", applied, MIGRATIONS))
}

fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}
