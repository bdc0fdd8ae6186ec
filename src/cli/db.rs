//! `rapport db migrate` and `rapport db status`: the schema, for operators
//! who migrate before rolling out a new version (`serve` also migrates at
//! start-up, under the same lock).

use crate::config::Settings;
use crate::store::migrate::SchemaStatus;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

use super::args::DbCommand;

pub fn run(settings: &Settings, command: &DbCommand) -> Result<(), StoreError> {
    if let DbCommand::Copy { .. } = command {
        return copy(settings);
    }
    let migrating = matches!(command, DbCommand::Migrate { .. });
    let (target, status) = match &settings.database_url {
        Some(url) => {
            let store = PgStore::connect(url)?;
            if migrating {
                let applied = store.migrate()?;
                report_applied(&applied);
            }
            (store.target().to_string(), store.status()?)
        }
        None => {
            let target = settings.data_dir.join(crate::store::sqlite::DATABASE_FILE);
            let status = if migrating {
                // Opening applies what is pending.
                let before = SqliteStore::status_of(&settings.data_dir)?;
                let store = SqliteStore::open(&settings.data_dir)?;
                report_applied(&before.pending);
                store.schema_status()?
            } else {
                SqliteStore::status_of(&settings.data_dir)?
            };
            (target.display().to_string(), status)
        }
    };
    print!("{}", describe(&target, &status));
    status.check()
}

/// `rapport db copy`: the data folder's SQLite into the (migrated, empty)
/// PostgreSQL at `--database-url`.
fn copy(settings: &Settings) -> Result<(), StoreError> {
    let Some(url) = &settings.database_url else {
        return Err(StoreError::Postgres(
            "rapport db copy needs --database-url (or RAPPORT_DATABASE_URL): the PostgreSQL to copy into".into(),
        ));
    };
    let store = PgStore::open(url)?;
    let copied = store.copy_from_sqlite(&settings.data_dir)?;
    println!(
        "copied {} into {}:",
        settings
            .data_dir
            .join(crate::store::sqlite::DATABASE_FILE)
            .display(),
        store.target()
    );
    for (table, rows) in &copied.tables {
        println!("  {table:<18} {rows:>9} rows");
    }
    println!(
        "  session salt       {}",
        if copied.salt {
            "copied (stored sessions keep matching their ids)"
        } else {
            "none in the data folder"
        }
    );
    Ok(())
}

fn report_applied(versions: &[i64]) {
    match versions {
        [] => println!("nothing to apply"),
        [one] => println!("applied migration {one}"),
        many => println!(
            "applied migrations {}",
            many.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn describe(target: &str, status: &SchemaStatus) -> String {
    let state = if status.current > status.latest {
        "NEWER than this rapport: upgrade rapport before serving from it"
    } else if status.pending.is_empty() {
        "up to date"
    } else {
        "migrations pending (`rapport db migrate`, or `serve` applies them)"
    };
    let mut text = format!(
        "database: {} {target}\nschema:   version {} of {} ({state})\n",
        status.backend, status.current, status.latest
    );
    for applied in &status.applied {
        let when = time::OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(applied.applied_ms) * 1_000_000,
        )
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
        text.push_str(&format!(
            "  applied  {:>3}  {}  {when}\n",
            applied.version, applied.name
        ));
    }
    for version in &status.pending {
        text.push_str(&format!("  pending  {version:>3}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrate::Applied;

    #[test]
    fn status_says_what_is_pending_and_what_to_do() {
        let status = SchemaStatus::new(
            "sqlite",
            vec![Applied {
                version: 1,
                name: "initial".into(),
                applied_ms: 0,
            }],
            crate::store::sqlite::MIGRATIONS,
        );
        let text = describe("data/analytics.sqlite", &status);
        assert!(text.contains("version 1 of 2"), "{text}");
        assert!(text.contains("rapport db migrate"), "{text}");
        assert!(text.contains("pending    2"), "{text}");
    }
}
