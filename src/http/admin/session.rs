//! The dashboard's sign-in sessions, held on the server: the browser only
//! carries a random id, so signing out ends a session for good, whatever
//! happened to the cookie.
//!
//! Kept in the [`Store`], so replicas behind one load balancer share them
//! (a lead's next page may reach any replica) and a restart keeps leads
//! signed in.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::analytics::Clock;
use crate::store::{AdminSessionRow, Store, StoreError};

/// A session ends after this long without a request.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; signing in beyond this forgets the one used least
/// recently. A handful of leads use the dashboard: the bound only stops a
/// flood of sign-ins from growing the table without end.
pub const MAX_SESSIONS: usize = 10_000;
/// Bytes of randomness in a session id and in a CSRF token.
const TOKEN_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One signed-in admin, as a page handler sees it.
#[derive(Clone)]
pub struct AdminSession {
    /// Every state-changing form carries it (see [`AdminSession::csrf_matches`]).
    pub csrf: String,
    /// The admin key's label ("Dana"), or its place ("admin 1").
    pub admin: Option<String>,
    /// When the session began and was last used ([`Clock`] milliseconds).
    pub created_ms: i64,
    pub last_seen_ms: i64,
}

impl AdminSession {
    /// Whether a form's token is this session's, compared in constant time
    /// so the time taken reveals nothing of the right one.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        constant_time_eq::constant_time_eq(self.csrf.as_bytes(), presented.as_bytes())
    }
}

// The token stays out of logs and panic messages.
impl fmt::Debug for AdminSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminSession")
            .field("admin", &self.admin)
            .field("created_ms", &self.created_ms)
            .field("last_seen_ms", &self.last_seen_ms)
            .finish_non_exhaustive()
    }
}

impl From<AdminSessionRow> for AdminSession {
    fn from(row: AdminSessionRow) -> Self {
        AdminSession {
            csrf: row.csrf,
            admin: row.admin,
            created_ms: row.created_ms,
            last_seen_ms: row.last_seen_ms,
        }
    }
}

/// The live sessions, keyed by a hash of their id: the raw ids (the
/// cookie's value) are never stored, so not even a dump of the database
/// yields a cookie that works.
pub struct AdminSessions {
    store: Arc<dyn Store>,
    clock: Clock,
    idle_ms: i64,
    capacity: usize,
}

impl AdminSessions {
    /// Sessions that end after [`IDLE_EXPIRY`] idle, at most [`MAX_SESSIONS`]
    /// of them, timed by `clock` (the app's: tests move it forward).
    pub fn new(clock: Clock, store: Arc<dyn Store>) -> Self {
        Self::with_limits(clock, store, IDLE_EXPIRY, MAX_SESSIONS)
    }

    pub fn with_limits(
        clock: Clock,
        store: Arc<dyn Store>,
        idle: Duration,
        capacity: usize,
    ) -> Self {
        AdminSessions {
            store,
            clock,
            idle_ms: i64::try_from(idle.as_millis()).unwrap_or(i64::MAX),
            capacity: capacity.max(1),
        }
    }

    /// Starts a session: its id (for the cookie; shown nowhere else) and
    /// the session.
    pub fn create(&self, admin: Option<String>) -> Result<(String, AdminSession), SessionError> {
        let id = random_token()?;
        let now = self.clock.now_ms();
        // Room for this one: the idle go, then the least recently used.
        self.store
            .prune_admin_sessions(now - self.idle_ms, self.capacity - 1)?;
        let row = AdminSessionRow {
            id_hash: key(&id),
            csrf: random_token()?,
            admin,
            created_ms: now,
            last_seen_ms: now,
        };
        self.store.put_admin_session(&row)?;
        Ok((id, row.into()))
    }

    /// The live session with this id, marked as used now; an expired one
    /// is forgotten and `None`. `None` too while the database cannot be
    /// read (the lead signs in again once it can).
    pub fn touch(&self, id: &str) -> Option<AdminSession> {
        let now = self.clock.now_ms();
        let key = key(id);
        let mut session = self.live(&key, now)?;
        match self.store.touch_admin_session(&key, now) {
            Ok(true) => {
                session.last_seen_ms = session.last_seen_ms.max(now);
                Some(session)
            }
            Ok(false) => None,
            Err(error) => {
                tracing::warn!(%error, "cannot mark a dashboard session used");
                None
            }
        }
    }

    /// Whether this id names a live session (without marking it used).
    pub fn is_live(&self, id: &str) -> bool {
        self.live(&key(id), self.clock.now_ms()).is_some()
    }

    fn live(&self, key: &str, now: i64) -> Option<AdminSession> {
        let row = match self.store.admin_session(key) {
            Ok(row) => row?,
            Err(error) => {
                tracing::warn!(%error, "cannot read a dashboard session");
                return None;
            }
        };
        if now - row.last_seen_ms >= self.idle_ms {
            if let Err(error) = self.store.delete_admin_session(key) {
                tracing::warn!(%error, "cannot forget an expired dashboard session");
            }
            return None;
        }
        Some(row.into())
    }

    /// Ends a session (signing out); `false` if there was none.
    pub fn remove(&self, id: &str) -> Result<bool, SessionError> {
        Ok(self.store.delete_admin_session(&key(id))?)
    }
}

fn key(id: &str) -> String {
    blake3::hash(id.as_bytes()).to_hex().to_string()
}

/// 32 bytes from the OS's CSPRNG, as 64 lowercase hex digits.
fn random_token() -> Result<String, SessionError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(SessionError::Random)?;
    Ok(bytes
        .iter()
        .fold(String::with_capacity(2 * TOKEN_BYTES), |mut out, byte| {
            use std::fmt::Write;
            let _ = write!(out, "{byte:02x}");
            out
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        (dir, store)
    }

    #[test]
    fn sessions_end_after_twelve_hours_idle_not_while_used() {
        let clock = Clock::default();
        let (_dir, store) = store();
        let sessions = AdminSessions::new(clock.clone(), store.clone());
        let (id, session) = sessions.create(Some("Dana".into())).unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, session.csrf, "the token is not the id");
        // Used every 11 hours: still signed in after 33.
        for _ in 0..3 {
            clock.advance(Duration::from_secs(11 * 3600));
            let touched = sessions.touch(&id).expect("still live");
            assert_eq!(touched.admin.as_deref(), Some("Dana"));
            assert_eq!(touched.csrf, session.csrf);
        }
        clock.advance(IDLE_EXPIRY);
        assert!(!sessions.is_live(&id));
        assert!(sessions.touch(&id).is_none(), "12 h idle ends it");
        assert!(
            store.admin_session(&key(&id)).unwrap().is_none(),
            "and it is forgotten"
        );
    }

    #[test]
    fn signing_out_ends_only_that_session() {
        let (_dir, store) = store();
        let sessions = AdminSessions::new(Clock::default(), store.clone());
        let (first, _) = sessions.create(None).unwrap();
        let (second, _) = sessions.create(None).unwrap();
        assert_ne!(first, second);
        assert!(sessions.remove(&first).unwrap());
        assert!(!sessions.remove(&first).unwrap());
        assert!(sessions.touch(&first).is_none());
        assert!(sessions.touch(&second).is_some());
        assert!(sessions.touch("not-a-session").is_none());
    }

    #[test]
    fn the_least_recently_used_session_makes_room() {
        let clock = Clock::default();
        let (_dir, store) = store();
        let sessions = AdminSessions::with_limits(clock.clone(), store, IDLE_EXPIRY, 3);
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(sessions.create(None).unwrap().0);
            clock.advance(Duration::from_secs(1));
        }
        // The first is used again: the second is now the stalest.
        assert!(sessions.touch(&ids[0]).is_some());
        clock.advance(Duration::from_secs(1));
        let (newest, _) = sessions.create(None).unwrap();
        assert!(sessions.is_live(&ids[0]));
        assert!(!sessions.is_live(&ids[1]), "evicted");
        assert!(sessions.is_live(&ids[2]));
        assert!(sessions.is_live(&newest));
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let (_dir, store) = store();
        let sessions = AdminSessions::new(Clock::default(), store);
        let (_, session) = sessions.create(None).unwrap();
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches(&session.csrf[..63]));
        assert!(!session.csrf_matches(&session.csrf.to_uppercase()));
        let (_, other) = sessions.create(None).unwrap();
        assert!(!session.csrf_matches(&other.csrf));
        assert!(!format!("{session:?}").contains(&session.csrf));
    }
}
