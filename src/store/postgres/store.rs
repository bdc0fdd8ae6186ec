//! [`Store`] for [`PgStore`]: each method takes one pooled connection and
//! runs the SQL of its sibling module ([`super::events`],
//! [`super::reports`], [`super::handoffs`]) on the calling thread.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

use super::{PgStore, events, handoffs, reports};
use crate::analytics::reports::{ArticleStats, QueryCount, QueryReportKind, Summary, Window};
use crate::analytics::store::{SessionRow, VoteRow};
use crate::store::migrate::SchemaStatus;
use crate::store::{
    AdminSessionRow, Attempt, ChannelActivity, DeliveryRecord, Erased, EventBatch, GapCount,
    HandoffRecord, HandoffStats, HandoffStatus, Health, NewHandoff, OutboxCounts, OutboxItem,
    Rating, RenderEvent, Resolution, Store, StoreError, Transition,
};

/// A connection from the pool.
pub(super) type Client = deadpool_postgres::Client;

/// A column of `row`; a value of the wrong type (or a NULL where none is
/// allowed) is a stored value not understood, never a panic.
pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index)
        .map_err(|error| StoreError::Corrupt(format!("column {index}: {error}")))
}

/// A stored count or number converted to the narrower type Rust keeps it in.
pub(super) fn narrow<T: TryFrom<i64>>(value: i64, what: &str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {value}")))
}

impl PgStore {
    /// Runs `work` with one connection from the pool (see [`PgStore::block`]).
    fn with<T>(
        &self,
        work: impl AsyncFnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pool = self.pool();
        self.block(async move {
            let mut client = pool.get().await?;
            work(&mut client).await
        })
    }
}

impl Store for PgStore {
    fn write_events(&self, batch: &EventBatch<'_>) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.with(async |client| events::write(client, batch).await)
    }

    fn prune_events(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.with(async |client| events::prune(client, before_ms).await)
    }

    fn prune_sessions(&self, events_before: i64, votes_before: i64) -> Result<usize, StoreError> {
        self.with(async |client| events::prune_sessions(client, events_before, votes_before).await)
    }

    fn knows_query(&self, query_id: &str) -> Result<bool, StoreError> {
        self.with(async |client| events::knows_query(client, query_id).await)
    }

    fn stored_sessions(&self, since_ms: i64) -> Result<HashSet<String>, StoreError> {
        self.with(async |client| events::stored_sessions(client, since_ms).await)
    }

    fn customer_sessions(
        &self,
        customer_hash: &str,
        since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.with(async |client| events::customer_sessions(client, customer_hash, since_ms).await)
    }

    fn session_rows(
        &self,
        session_hash: &str,
        since_ms: i64,
    ) -> Result<Vec<SessionRow>, StoreError> {
        self.with(async |client| events::session_rows(client, session_hash, since_ms).await)
    }

    fn session_of_query(&self, query_id: &str) -> Result<Option<String>, StoreError> {
        self.with(async |client| events::session_of_query(client, query_id).await)
    }

    fn customer_votes(&self, since_ms: i64) -> Result<Vec<VoteRow>, StoreError> {
        self.with(async |client| events::customer_votes(client, None, since_ms).await)
    }

    fn customer_votes_of(
        &self,
        customer_hash: &str,
        since_ms: i64,
    ) -> Result<Vec<VoteRow>, StoreError> {
        self.with(async |client| {
            events::customer_votes(client, Some(customer_hash), since_ms).await
        })
    }

    fn event_summary(&self, window: &Window) -> Result<Summary, StoreError> {
        self.with(async |client| reports::summary(client, window).await)
    }

    fn query_counts(
        &self,
        window: &Window,
        kind: QueryReportKind,
        limit: usize,
    ) -> Result<Vec<QueryCount>, StoreError> {
        self.with(async |client| reports::queries(client, window, kind, limit).await)
    }

    fn article_stats(&self, window: &Window) -> Result<BTreeMap<String, ArticleStats>, StoreError> {
        self.with(async |client| reports::article_stats(client, window).await)
    }

    fn feedback_totals(&self) -> Result<BTreeMap<String, (u64, u64)>, StoreError> {
        self.with(async |client| reports::feedback_totals(client).await)
    }

    fn session_outcomes(&self, window: &Window) -> Result<Vec<(String, bool)>, StoreError> {
        self.with(async |client| reports::session_outcomes(client, window).await)
    }

    fn gap_counts(&self, window: &Window) -> Result<Vec<GapCount>, StoreError> {
        self.with(async |client| reports::gap_counts(client, window).await)
    }

    fn shown_before_handoff(&self, window: &Window) -> Result<BTreeMap<String, u64>, StoreError> {
        self.with(async |client| reports::shown_before_handoff(client, window).await)
    }

    fn channel_activity(
        &self,
        window: &Window,
    ) -> Result<BTreeMap<String, ChannelActivity>, StoreError> {
        self.with(async |client| reports::channel_activity(client, window).await)
    }

    fn create_handoff(
        &self,
        new: NewHandoff,
        render: RenderEvent<'_>,
    ) -> Result<(HandoffRecord, bool), StoreError> {
        self.with(async |client| handoffs::create(client, &new, render).await)
    }

    fn handoff(&self, id: &str) -> Result<Option<HandoffRecord>, StoreError> {
        self.with(async |client| handoffs::get_handoff(client, id).await)
    }

    fn session_handoff(&self, session_hash: &str) -> Result<Option<HandoffRecord>, StoreError> {
        self.with(async |client| handoffs::session_handoff(client, session_hash).await)
    }

    fn handoffs(
        &self,
        status: Option<HandoffStatus>,
        limit: usize,
    ) -> Result<Vec<HandoffRecord>, StoreError> {
        self.with(async |client| handoffs::list(client, status, limit).await)
    }

    fn position(&self, record: &HandoffRecord) -> Result<Option<u64>, StoreError> {
        if record.status != HandoffStatus::Waiting {
            return Ok(None);
        }
        self.with(async |client| handoffs::position(client, record).await)
            .map(Some)
    }

    fn claim(
        &self,
        id: &str,
        agent: &str,
        at_ms: i64,
        render: RenderEvent<'_>,
    ) -> Result<Transition, StoreError> {
        self.with(async |client| handoffs::claim(client, id, agent, at_ms, render).await)
    }

    fn close(
        &self,
        id: &str,
        resolution: Resolution,
        note: Option<String>,
        at_ms: i64,
        render: RenderEvent<'_>,
    ) -> Result<Transition, StoreError> {
        self.with(async |client| {
            handoffs::close(client, id, resolution, note.as_deref(), at_ms, render).await
        })
    }

    fn claim_waits(&self, since_ms: i64) -> Result<Vec<i64>, StoreError> {
        self.with(async |client| handoffs::claim_waits(client, since_ms).await)
    }

    fn handoff_stats(
        &self,
        since_ms: i64,
        until_ms: i64,
        abandoned_before_ms: i64,
    ) -> Result<HandoffStats, StoreError> {
        self.with(async |client| {
            handoffs::stats(client, since_ms, until_ms, abandoned_before_ms).await
        })
    }

    fn handoffs_created(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<HandoffRecord>, StoreError> {
        self.with(async |client| handoffs::created(client, since_ms, until_ms).await)
    }

    fn rate(&self, rating: Rating) -> Result<bool, StoreError> {
        self.with(async |client| handoffs::rate(client, &rating).await)
    }

    fn ratings(&self, since_ms: i64, until_ms: i64) -> Result<Vec<u8>, StoreError> {
        self.with(async |client| handoffs::ratings(client, since_ms, until_ms).await)
    }

    fn forget_sessions(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.with(async |client| handoffs::forget_sessions(client, before_ms).await)
    }

    fn erase_customer(
        &self,
        customer_hash: &str,
        live_sessions: &[String],
    ) -> Result<Erased, StoreError> {
        self.with(async |client| {
            handoffs::erase_customer(client, customer_hash, live_sessions).await
        })
    }

    fn due_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.with(async |client| {
            handoffs::due_deliveries(client, now_ms, lease_until_ms, limit).await
        })
    }

    fn next_due(&self) -> Result<Option<i64>, StoreError> {
        self.with(async |client| handoffs::next_due(client).await)
    }

    fn record_attempt(&self, item: &OutboxItem, attempt: &Attempt) -> Result<(), StoreError> {
        self.with(async |client| handoffs::record_attempt(client, item, attempt).await)
    }

    fn deliveries(&self, limit: usize) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.with(async |client| handoffs::deliveries(client, limit).await)
    }

    fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.with(async |client| handoffs::outbox_counts(client).await)
    }

    fn put_admin_session(&self, session: &AdminSessionRow) -> Result<(), StoreError> {
        self.with(async |client| handoffs::put_admin_session(client, session).await)
    }

    fn admin_session(&self, id_hash: &str) -> Result<Option<AdminSessionRow>, StoreError> {
        self.with(async |client| handoffs::admin_session(client, id_hash).await)
    }

    fn touch_admin_session(&self, id_hash: &str, at_ms: i64) -> Result<bool, StoreError> {
        self.with(async |client| handoffs::touch_admin_session(client, id_hash, at_ms).await)
    }

    fn delete_admin_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        self.with(async |client| handoffs::delete_admin_session(client, id_hash).await)
    }

    fn prune_admin_sessions(&self, idle_before_ms: i64, keep: usize) -> Result<usize, StoreError> {
        self.with(async |client| handoffs::prune_admin_sessions(client, idle_before_ms, keep).await)
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with(async |client| {
            client.simple_query("SELECT 1").await?;
            Ok(())
        })
    }

    fn publish(&self, payload: &str) -> Result<(), StoreError> {
        self.notify(payload)
    }

    fn listen(&self, on_message: Box<dyn Fn(String) + Send + Sync>) -> Result<(), StoreError> {
        self.listen_with(on_message);
        Ok(())
    }

    fn health(&self) -> Option<Arc<Health>> {
        Some(PgStore::health(self).clone())
    }

    fn shared_salt(&self, proposed: &str) -> Result<String, StoreError> {
        self.setting_or_insert("session_salt", proposed)
    }

    fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        self.status()
    }
}
