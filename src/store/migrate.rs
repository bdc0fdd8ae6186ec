//! Versioned schema migrations, one list per backend.
//!
//! Each migration is a numbered SQL file applied once, in order, in its own
//! transaction, and recorded in `rapport_migrations` (version, name, when).
//! Start-up applies what is pending; `rapport db migrate` does the same for
//! operators who migrate before a rollout, and `rapport db status` shows
//! where a database stands. A database whose schema is newer than the
//! running build is refused ([`StoreError::SchemaTooNew`]): an old replica
//! left running during a rollout stops at its next start rather than
//! writing rows a newer schema no longer means.
//!
//! Written by hand rather than with refinery or sqlx's migrator: rapport
//! needs the same runner for rusqlite and tokio-postgres, a PostgreSQL
//! advisory lock around it (two replicas starting at once migrate once),
//! and the refusal above; neither gives all three.

use serde::Serialize;

use super::StoreError;

/// The table every backend records applied migrations in.
pub const TABLE: &str = "rapport_migrations";

#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// One applied migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub version: i64,
    pub name: String,
    pub applied_ms: i64,
}

/// Where a database stands (`rapport db status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaStatus {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The highest version applied; 0 for an empty database.
    pub current: i64,
    /// The highest version this build knows.
    pub latest: i64,
    pub applied: Vec<Applied>,
    /// Known versions not applied yet, oldest first.
    pub pending: Vec<i64>,
}

impl SchemaStatus {
    pub fn new(backend: &'static str, applied: Vec<Applied>, known: &[Migration]) -> Self {
        let current = applied.iter().map(|a| a.version).max().unwrap_or(0);
        SchemaStatus {
            backend,
            current,
            latest: latest(known),
            pending: pending(&applied, known).map(|m| m.version).collect(),
            applied,
        }
    }

    /// Fails when the database is newer than this build.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.current > self.latest {
            return Err(StoreError::SchemaTooNew {
                found: self.current,
                known: self.latest,
            });
        }
        Ok(())
    }
}

pub fn latest(known: &[Migration]) -> i64 {
    known.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The known migrations not in `applied`, in order.
pub fn pending<'a>(
    applied: &'a [Applied],
    known: &'a [Migration],
) -> impl Iterator<Item = &'a Migration> + 'a {
    known
        .iter()
        .filter(move |m| !applied.iter().any(|a| a.version == m.version))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: [Migration; 2] = [
        Migration {
            version: 1,
            name: "initial",
            sql: "",
        },
        Migration {
            version: 2,
            name: "more",
            sql: "",
        },
    ];

    fn applied(version: i64) -> Applied {
        Applied {
            version,
            name: format!("v{version}"),
            applied_ms: 0,
        }
    }

    #[test]
    fn pending_are_the_known_ones_not_applied() {
        let status = SchemaStatus::new("sqlite", vec![applied(1)], &KNOWN);
        assert_eq!((status.current, status.latest), (1, 2));
        assert_eq!(status.pending, vec![2]);
        assert!(status.check().is_ok());
        let empty = SchemaStatus::new("sqlite", Vec::new(), &KNOWN);
        assert_eq!((empty.current, empty.pending), (0, vec![1, 2]));
    }

    #[test]
    fn a_newer_database_is_refused() {
        let status = SchemaStatus::new("postgres", vec![applied(1), applied(3)], &KNOWN);
        let error = status.check().unwrap_err();
        assert!(matches!(
            error,
            StoreError::SchemaTooNew { found: 3, known: 2 }
        ));
        assert!(error.to_string().contains("upgrade rapport"), "{error}");
    }
}
