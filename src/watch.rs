//! Watches the articles folder and hands changed paths to the indexer.
//!
//! Events are hints only (the indexer stats every path), so the watcher never
//! needs to understand renames or editors' save dances. When the OS drops
//! events (`Rescan`) or the watcher errors, it asks for a full reconcile.

use std::path::Path;
use std::sync::mpsc::Sender;
use std::time::Duration;

use notify::RecursiveMode;
use notify::event::{AccessKind, AccessMode, EventKind};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer_opt};

use std::sync::Arc;

use crate::index::writer::{IndexCommand, Scan};
use crate::metrics::Metrics;

/// Watching stops when this is dropped.
pub enum FolderWatcher {
    /// OS events (inotify, FSEvents, …).
    Native(Debouncer<notify::RecommendedWatcher, RecommendedCache>),
    /// Periodic scans, for filesystems without events (network mounts).
    Polling(Debouncer<notify::PollWatcher, RecommendedCache>),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot watch {path}: {source}")]
pub struct WatchError {
    path: String,
    source: notify::Error,
}

/// Opening and reading a file are events too (on Linux); the indexer reads
/// every file it is told about, so forwarding them would make it re-trigger
/// itself forever. A close after writing still counts: it marks a finished save.
fn can_change_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Starts watching `articles_dir` recursively: with OS events, or by
/// scanning every `poll_interval` when one is given.
pub fn watch_folder(
    articles_dir: &Path,
    debounce: Duration,
    poll_interval: Option<Duration>,
    commands: Sender<IndexCommand>,
    metrics: Arc<Metrics>,
) -> Result<FolderWatcher, WatchError> {
    let handler = move |result: DebounceEventResult| {
        let command = match result {
            // Lost events are edits that moved an mtime: a stat scan finds them.
            Ok(events) if events.iter().any(|e| e.need_rescan()) => {
                IndexCommand::Reconcile(Scan::Stat)
            }
            Ok(events) => {
                let paths: Vec<_> = events
                    .into_iter()
                    .filter(|e| can_change_content(&e.event.kind))
                    .flat_map(|e| e.event.paths)
                    .collect();
                if paths.is_empty() {
                    return;
                }
                metrics.watcher_events.inc_by(paths.len() as u64);
                IndexCommand::Changed(paths)
            }
            Err(errors) => {
                for error in errors {
                    tracing::warn!(%error, "watcher error; reconciling the whole folder");
                }
                IndexCommand::Reconcile(Scan::Stat)
            }
        };
        // The indexer is gone only during shutdown.
        let _ = commands.send(command);
    };
    // Folder links are not followed (as at start-up): watching through
    // `ln -s . loop` would report every file twice, under two names.
    let config = notify::Config::default().with_follow_symlinks(false);
    match poll_interval {
        None => start::<notify::RecommendedWatcher>(articles_dir, debounce, config, handler)
            .map(FolderWatcher::Native),
        Some(interval) => start::<notify::PollWatcher>(
            articles_dir,
            debounce,
            config
                .with_poll_interval(interval)
                .with_compare_contents(false),
            handler,
        )
        .map(FolderWatcher::Polling),
    }
}

/// One debounced, recursive watch of `articles_dir` with watcher `W`.
fn start<W: notify::Watcher>(
    articles_dir: &Path,
    debounce: Duration,
    config: notify::Config,
    handler: impl notify_debouncer_full::DebounceEventHandler,
) -> Result<Debouncer<W, RecommendedCache>, WatchError> {
    let to_error = |source| WatchError {
        path: articles_dir.display().to_string(),
        source,
    };
    let mut debouncer =
        new_debouncer_opt::<_, W, _>(debounce, None, handler, RecommendedCache::new(), config)
            .map_err(to_error)?;
    debouncer
        .watch(articles_dir, RecursiveMode::Recursive)
        .map_err(to_error)?;
    Ok(debouncer)
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, ModifyKind};

    use super::*;

    #[test]
    fn reads_do_not_trigger_indexing_but_writes_do() {
        assert!(!can_change_content(&EventKind::Access(AccessKind::Open(
            AccessMode::Read
        ))));
        assert!(!can_change_content(&EventKind::Access(AccessKind::Read)));
        assert!(!can_change_content(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(can_change_content(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(can_change_content(&EventKind::Create(CreateKind::File)));
        assert!(can_change_content(&EventKind::Modify(ModifyKind::Any)));
        assert!(can_change_content(&EventKind::Remove(
            notify::event::RemoveKind::Any
        )));
    }
}
