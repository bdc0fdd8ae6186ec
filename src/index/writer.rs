//! The single writer. It owns tantivy's `IndexWriter`, applies file changes in
//! batches (one commit per batch) and keeps the index equal to the folder.
//!
//! Watcher events are only hints: every path is stat-ed and the file re-read,
//! so a missed, duplicated or reordered event can't leave the index wrong, and
//! [`Indexer::reconcile`] repairs anything after a crash or a watcher overflow.
//!
//! A reconcile at start-up trusts a file's size and mtime ([`Scan::Stat`]):
//! a file that stats as it did when it was indexed is not read. The periodic
//! reconcile reads and hashes every file ([`Scan::Content`]), the safety net
//! for a write that kept both.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tantivy::{IndexWriter, TantivyError, Term};

use super::catalog::{self, CatalogEntry, FileStat};
use super::documents::article_documents_with;
use super::{IndexError, KnowledgeIndex, SharedStatus, SkippedFile};
use crate::article::categories::FolderLayout;
use crate::article::selection::{Survey, is_category_metadata, survey};
use crate::article::{self, Article, ArticleError, ArticleRules, Audience};
use crate::search::synonyms::{SYNONYMS_FILE, Synonyms, SynonymsHandle};

// Which files are articles lives with the article rules; re-exported here,
// where callers have always found the walk.
pub use crate::article::selection::{article_files, is_ignored_name, relative_path};

const WRITER_HEAP_BYTES: usize = 64 * 1024 * 1024;
/// How long the loop waits for a command when no retry is due.
const IDLE_WAIT: Duration = Duration::from_secs(3600);
/// A file read empty is read again after this, then 4×, 16× and 64× as long.
const RETRY_AFTER: Duration = Duration::from_millis(250);
const EMPTY_FILE_RETRIES: u32 = 4;

/// Messages to the indexer thread.
pub enum IndexCommand {
    /// These paths (files or folders, absolute) may have changed.
    Changed(Vec<PathBuf>),
    /// Walk the whole folder: by stat after a watcher overflow or error, by
    /// content for the periodic safety net.
    Reconcile(Scan),
    /// Commit what is pending and stop; the sender is notified when done.
    Shutdown(std::sync::mpsc::Sender<()>),
}

/// How a reconcile tells that a file the index holds is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Its size and mtime are those it was indexed with (and settled, see
    /// [`FileStat::vouches_for`]): it is not read. What a start and a
    /// watcher overflow need: an edit moves the mtime.
    Stat,
    /// Every file is read and hashed: the periodic safety net, which also
    /// catches a write that kept size and mtime.
    Content,
}

/// What each commit records besides the documents: when it happened, which
/// [`ArticleRules`] the documents were parsed with, and when a content
/// reconcile last confirmed every file.
#[derive(serde::Serialize, serde::Deserialize)]
struct CommitPayload {
    #[serde(with = "time::serde::rfc3339")]
    committed_at: time::OffsetDateTime,
    rules: String,
    /// Nanoseconds since the epoch; see [`FileStat::settled`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verified_ns: Option<i64>,
}

impl CommitPayload {
    fn parse(text: &str) -> Option<CommitPayload> {
        serde_json::from_str(text).ok()
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChangeCounts {
    pub added: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub skipped: usize,
    /// Files opened and read (to hash, then parse if changed); a start over
    /// an unchanged, settled folder reads none.
    pub read: usize,
}

impl ChangeCounts {
    fn is_dirty(&self) -> bool {
        self.added + self.updated + self.deleted > 0
    }
}

pub struct Indexer {
    kb: Arc<KnowledgeIndex>,
    writer: IndexWriter,
    articles_dir: PathBuf,
    max_article_bytes: u64,
    status: SharedStatus,
    synonyms: SynonymsHandle,
    /// Relative path → what the index holds for it (mirrors the index).
    catalog: HashMap<Arc<str>, CatalogEntry>,
    /// Article id → relative path, to refuse duplicate ids (the strings are
    /// the catalog's).
    paths_by_id: HashMap<Arc<str>, Arc<str>>,
    pending: ChangeCounts,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Set after a failed batch: the next batch walks the whole folder.
    needs_reconcile: bool,
    rules: ArticleRules,
    /// `rules.fingerprint()`, kept beside the rules it describes.
    rules_fingerprint: String,
    /// The rules the last commit was parsed with (`None`: unknown).
    committed_rules: Option<String>,
    /// When a content reconcile last confirmed every file (`None`: never),
    /// as committed, and as known in memory (ahead until the next commit).
    committed_verified_ns: Option<i64>,
    verified_ns: Option<i64>,
    /// Set while a content reconcile runs when a file the index holds could
    /// not be read: that reconcile confirms nothing.
    unverified: bool,
    /// Files read empty, by relative path: probably caught while being
    /// written, so they are read again even if no event comes.
    retries: HashMap<String, Retry>,
    /// Reads DocFX includes from the articles folder.
    includes: article::FolderIncludes,
    /// What the last folder scan said about unusable category metadata,
    /// so each note is logged once, not on every reconcile.
    layout_notes: Vec<(String, String)>,
    /// Set once the start-up warning about closed articles was considered.
    access_checked: bool,
}

/// When to read a file that was empty again.
#[derive(Debug, Default)]
struct Retry {
    /// `None` once handed to a batch.
    due: Option<Instant>,
    /// Empty reads so far.
    attempts: u32,
}

impl Indexer {
    /// Takes the index's writer lock and loads what the index holds.
    pub fn new(
        kb: Arc<KnowledgeIndex>,
        articles_dir: &Path,
        max_article_bytes: u64,
        status: SharedStatus,
        synonyms: SynonymsHandle,
    ) -> Result<Self, IndexError> {
        // One indexing thread: documents get ids in folder order, so equal
        // scores rank the same way on every build (a help center is small).
        let writer = kb
            .index
            .writer_with_num_threads(1, WRITER_HEAP_BYTES)
            .map_err(|e| match e {
                TantivyError::LockFailure(..) => IndexError::Locked(kb.dir.clone()),
                other => IndexError::Tantivy(other),
            })?;
        let mut indexer = Indexer {
            kb,
            writer,
            articles_dir: articles_dir.to_path_buf(),
            max_article_bytes,
            status,
            synonyms,
            catalog: HashMap::new(),
            paths_by_id: HashMap::new(),
            pending: ChangeCounts::default(),
            metrics: None,
            needs_reconcile: false,
            rules_fingerprint: ArticleRules::default().fingerprint(),
            rules: ArticleRules::default(),
            committed_rules: None,
            committed_verified_ns: None,
            verified_ns: None,
            unverified: false,
            retries: HashMap::new(),
            includes: article::FolderIncludes::new(articles_dir, max_article_bytes),
            layout_notes: Vec::new(),
            access_checked: false,
        };
        indexer.load_catalog()?;
        Ok(indexer)
    }

    /// Parses articles with `rules` (which files, the access field, the
    /// category fallback). When the index was built with other rules, the
    /// next batch re-parses every file, so a changed access field can never
    /// leave an article readable under the old rule. The folder layout part
    /// of the rules is the indexer's own: it scans the folder for it.
    pub fn with_rules(mut self, rules: ArticleRules) -> Self {
        let folders = std::mem::take(&mut self.rules.folders);
        self.rules = ArticleRules { folders, ..rules };
        self.rules_fingerprint = self.rules.fingerprint();
        self
    }

    /// Takes the folder layout (shared top folder, category titles) from a
    /// survey of the whole folder. A changed layout changes the rules'
    /// fingerprint, so the caller's reconcile re-parses every article.
    fn update_layout(&mut self, survey: &Survey) {
        let (layout, notes) = FolderLayout::scan(
            survey
                .articles
                .iter()
                .map(|(relative, _)| relative.as_str()),
            &survey.metadata,
            self.max_article_bytes,
        );
        for (path, note) in &notes {
            if !self.layout_notes.contains(&(path.clone(), note.clone())) {
                tracing::warn!("{path}: {note}");
            }
        }
        self.layout_notes = notes;
        if layout != self.rules.folders {
            self.rules.folders = layout;
            self.rules_fingerprint = self.rules.fingerprint();
        }
    }

    /// Whether adding or removing `paths` changed which folders hold
    /// articles: the layout depends on nothing else but metadata files, so
    /// an article added beside others (or one of several removed) needs no
    /// walk of the folder. Checked against the index, in memory.
    fn folders_changed(&self, paths: &[String]) -> bool {
        if paths.is_empty() {
            return false;
        }
        fn folder(path: &str) -> &str {
            path.rsplit_once('/').map_or("", |(folder, _)| folder)
        }
        let mut articles_in: HashMap<&str, usize> = HashMap::new();
        for path in self.catalog.keys() {
            *articles_in.entry(folder(path)).or_default() += 1;
        }
        paths.iter().any(|path| {
            let now = articles_in.get(folder(path)).copied().unwrap_or(0);
            // Its folder's first article arrived, or its last one left.
            if self.catalog.contains_key(path.as_str()) {
                now == 1
            } else {
                now == 0
            }
        })
    }

    /// Whether a scan of the folder would give another layout than the one
    /// the articles were parsed with.
    fn layout_changed(&mut self) -> bool {
        let survey = survey(
            &self.articles_dir,
            &self.articles_dir,
            &self.rules.selection,
        );
        let before = self.rules.folders.clone();
        self.update_layout(&survey);
        self.rules.folders != before
    }

    /// Whether the index holds documents parsed with other rules; checked
    /// when work starts, once the rules are final.
    fn rules_changed(&self) -> bool {
        self.committed_rules.as_deref() != Some(self.rules_fingerprint.as_str())
    }

    /// Reports commit durations to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Reads what the last commit holds for every file ([`catalog::load`]).
    fn load_catalog(&mut self) -> Result<(), IndexError> {
        self.kb.reader.reload()?;
        let searcher = self.kb.reader.searcher();
        let payload = self
            .kb
            .index
            .load_metas()?
            .payload
            .and_then(|p| CommitPayload::parse(&p));
        let last_commit = payload.as_ref().map(|p| p.committed_at);
        self.committed_verified_ns = payload.as_ref().and_then(|p| p.verified_ns);
        self.verified_ns = self.committed_verified_ns;
        self.committed_rules = payload.map(|p| p.rules);
        self.status
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .last_commit = last_commit;
        self.catalog = catalog::load(&searcher, &self.kb.fields)?;
        self.paths_by_id = self
            .catalog
            .iter()
            .map(|(path, entry)| (entry.id.clone(), path.clone()))
            .collect();
        Ok(())
    }

    /// Makes the index match the folder exactly: new and changed files are
    /// (re)indexed, files that are gone are deleted, unchanged files (same
    /// content hash) are not touched. Reads and hashes every file; commits
    /// once at the end.
    pub fn reconcile(
        &mut self,
        progress: impl FnMut(usize, usize),
    ) -> Result<ChangeCounts, IndexError> {
        self.reconcile_by(Scan::Content, progress)
    }

    /// [`Indexer::reconcile`], telling unchanged files as `scan` says: by
    /// [`Scan::Stat`], a file whose size and mtime are as indexed is not read.
    pub fn reconcile_by(
        &mut self,
        scan: Scan,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ChangeCounts, IndexError> {
        let started_ns = catalog::unix_ns(SystemTime::now());
        let started = Instant::now();
        self.unverified = false;
        let survey = self.walk_folder();
        self.update_layout(&survey);
        let walked = started.elapsed();
        if self.rules_changed() {
            if !self.catalog.is_empty() {
                tracing::info!(
                    "article rules changed since the last commit; re-parsing every article"
                );
            }
            for entry in self.catalog.values_mut() {
                entry.content_hash = None;
            }
        }
        let files = survey.articles;
        let total = files.len();
        let present: HashSet<&str> = files.iter().map(|(rel, _)| rel.as_str()).collect();
        let gone: Vec<Arc<str>> = self
            .catalog
            .keys()
            .filter(|path| !present.contains(&***path))
            .cloned()
            .collect();
        for path in gone {
            self.delete(&path);
        }
        self.forget_skipped_unless(|path| present.contains(path) || path == SYNONYMS_FILE);
        drop(present);
        let compared = started.elapsed();
        let stats = lstat_all(&files);
        let stated = started.elapsed();
        for (done, ((relative, absolute), stat)) in files.into_iter().zip(stats).enumerate() {
            self.upsert_file_by(&relative, &absolute, scan, stat);
            progress(done + 1, total);
        }
        let upserted = started.elapsed();
        self.reload_synonyms();
        self.retry_duplicates();
        if scan == Scan::Content && !self.unverified {
            // Every file was read after `started_ns`: stats taken too soon
            // after a write are settled by it.
            self.verified_ns = Some(started_ns);
        }
        let counts = self.commit()?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        tracing::debug!(
            ?scan,
            walk_ms = ms(walked),
            deletes_ms = ms(compared - walked),
            stat_ms = ms(stated - compared),
            files_ms = ms(upserted - stated),
            commit_ms = ms(started.elapsed() - upserted),
            read = counts.read,
            "reconcile stages"
        );
        if !self.access_checked {
            self.access_checked = true;
            self.warn_if_mostly_closed();
        }
        Ok(counts)
    }

    /// At start-up, one loud line when most articles are closed to
    /// customers: usually an access field that means something else here.
    fn warn_if_mostly_closed(&self) {
        let status = self.status.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(line) = super::access_warning(
            status.articles,
            status.internal_articles,
            &status.unrecognized_audience,
            &self.rules.audience_field,
        ) {
            tracing::warn!("{line}");
        }
    }

    /// Applies a batch of changed paths (from the watcher) and commits once.
    pub fn apply_changes(&mut self, paths: &[PathBuf]) -> Result<ChangeCounts, IndexError> {
        if self.rules_changed() {
            // Every article must be re-parsed before the new rules are committed.
            return self.reconcile_by(Scan::Stat, |_, _| {});
        }
        let mut reload_synonyms = false;
        // Category titles and the shared top folder depend on metadata files
        // and on which articles exist: checked after the batch when either
        // may have changed.
        let mut layout_may_change = false;
        // Every changed path: articles that include one are parsed again.
        let mut changed = BTreeSet::new();
        // Articles this batch's events added to or removed from the index.
        let mut appeared_or_gone: Vec<String> = Vec::new();
        let churn_before = self.pending.added + self.pending.deleted;
        for event_path in paths {
            // Folder links are not followed: an event seen through one
            // stands for the real file, or for nothing when it is outside.
            let Some(absolute) = real_location(&self.articles_dir, event_path) else {
                continue;
            };
            let absolute = absolute.as_path();
            let Some(relative) = self.relative(absolute) else {
                continue;
            };
            if relative.is_empty() {
                // The articles folder itself: walk it all.
                return self.reconcile_by(Scan::Stat, |_, _| {});
            }
            changed.insert(relative.clone());
            let was_indexed = self.catalog.contains_key(relative.as_str());
            if relative == SYNONYMS_FILE {
                reload_synonyms = true;
                continue;
            }
            if relative.split('/').any(is_ignored_name) {
                continue;
            }
            if relative
                .rsplit('/')
                .next()
                .is_some_and(is_category_metadata)
            {
                layout_may_change = true;
            }
            // The same rule as the start-up walk: a file created under
            // `includes/` is no more an article than one found there.
            let candidate =
                article::is_article_file(&relative) && self.rules.selection.admits(&relative);
            // The link itself, not what it leads to: a link to a folder is
            // never walked, as at start-up.
            match std::fs::symlink_metadata(absolute) {
                Ok(meta) if meta.is_dir() => {
                    layout_may_change = true;
                    for (rel, abs) in self.walk(absolute) {
                        self.upsert_file(&rel, &abs);
                    }
                }
                Ok(meta) if meta.is_file() => {
                    if candidate {
                        self.upsert_file(&relative, absolute);
                    }
                }
                // A symlinked file is checked (and refused) where it leads.
                Ok(meta) if meta.file_type().is_symlink() && candidate => {
                    self.upsert_file(&relative, absolute);
                }
                // Gone, a link to a folder, or not a regular file: remove it
                // and anything below it.
                _ => {
                    let prefix = format!("{relative}/");
                    let doomed: Vec<Arc<str>> = self
                        .catalog
                        .keys()
                        .filter(|p| ***p == *relative || p.starts_with(&prefix))
                        .cloned()
                        .collect();
                    if doomed.iter().any(|p| **p != *relative) {
                        // A whole folder went.
                        layout_may_change = true;
                    }
                    for path in doomed {
                        self.delete(&path);
                    }
                    self.forget_skipped_unless(|p| p != relative && !p.starts_with(&prefix));
                    self.retries
                        .retain(|p, _| *p != relative && !p.starts_with(&prefix));
                }
            }
            if was_indexed != self.catalog.contains_key(relative.as_str()) {
                appeared_or_gone.push(relative);
            }
        }
        self.upsert_dependents(&changed);
        if reload_synonyms {
            self.reload_synonyms();
        }
        self.retry_duplicates();
        let churn = self.pending.added + self.pending.deleted - churn_before;
        // Adds and deletes the events don't account for (a duplicate id
        // resolved, say) are not traced to a folder: the scan decides.
        let untraced = churn != appeared_or_gone.len();
        if (layout_may_change || untraced || self.folders_changed(&appeared_or_gone))
            && self.layout_changed()
        {
            tracing::info!("category folders or titles changed; re-parsing every article");
            // With the new layout in the fingerprint, this re-parses every
            // file and commits the batch's changes with them.
            return self.reconcile_by(Scan::Stat, |_, _| {});
        }
        self.commit()
    }

    /// Runs the indexer loop until shutdown: coalesces commands that arrive
    /// together into one batch and one commit. Files that were read empty
    /// join a batch when their retry is due, with or without a command.
    pub fn run(mut self, commands: Receiver<IndexCommand>) {
        loop {
            let wait = self.next_retry().map_or(IDLE_WAIT, |due| {
                due.saturating_duration_since(Instant::now())
            });
            let first = match commands.recv_timeout(wait) {
                Ok(command) => Some(command),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut changed = self.take_due_retries();
            if first.is_none() && changed.is_empty() {
                continue;
            }
            let mut reconcile = None;
            let mut shutdown = None;
            for command in first.into_iter().chain(commands.try_iter()) {
                match command {
                    IndexCommand::Changed(paths) => changed.extend(paths),
                    // Reading every file covers a stat scan too.
                    IndexCommand::Reconcile(scan) => {
                        if reconcile != Some(Scan::Content) {
                            reconcile = Some(scan);
                        }
                    }
                    IndexCommand::Shutdown(done) => shutdown = Some(done),
                }
            }
            if self.needs_reconcile {
                // What a failed batch left is unknown: read everything.
                reconcile = Some(Scan::Content);
            }
            let started = Instant::now();
            let result = if let Some(scan) = reconcile {
                self.needs_reconcile = false;
                self.reconcile_by(scan, |_, _| {})
            } else if !changed.is_empty() {
                let paths: Vec<PathBuf> = changed.into_iter().collect();
                self.apply_changes(&paths)
            } else {
                Ok(ChangeCounts::default())
            };
            match result {
                Ok(counts) if counts.is_dirty() => tracing::info!(
                    added = counts.added,
                    updated = counts.updated,
                    deleted = counts.deleted,
                    skipped = counts.skipped,
                    took_ms = started.elapsed().as_secs_f64() * 1e3,
                    "index updated"
                ),
                Ok(_) => {}
                Err(error) => {
                    self.status
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .degraded = Some(error.to_string());
                    // What the batch did is unknown: rebuild the catalog view
                    // from the folder on the next change.
                    self.needs_reconcile = true;
                    if let Err(error) = self.writer.rollback() {
                        tracing::error!(%error, "cannot roll back the failed batch");
                    }
                    self.catalog.clear();
                    self.paths_by_id.clear();
                    self.pending = ChangeCounts::default();
                    if let Err(error) = self.load_catalog() {
                        tracing::error!(%error, "cannot reread the index after a failed batch");
                    }
                    tracing::error!(%error, "indexing batch failed; will retry with a full reconcile on the next change")
                }
            }
            if let Some(done) = shutdown {
                // Through `commit`, which keeps the payload (time and rules):
                // a bare `IndexWriter::commit` would erase it.
                if let Err(error) = self.commit() {
                    tracing::error!(%error, "final commit failed");
                }
                let _ = done.send(());
                break;
            }
        }
        tracing::debug!("indexer stopped");
    }

    /// The earliest retry that is due or waiting.
    fn next_retry(&self) -> Option<Instant> {
        self.retries.values().filter_map(|r| r.due).min()
    }

    /// The files whose retry is due, as absolute paths for a batch.
    fn take_due_retries(&mut self) -> BTreeSet<PathBuf> {
        let now = Instant::now();
        let mut due = BTreeSet::new();
        for (relative, retry) in &mut self.retries {
            if retry.due.is_some_and(|at| at <= now) {
                retry.due = None;
                due.insert(self.articles_dir.join(relative));
            }
        }
        due
    }

    /// An empty file is most likely being written: its last good version
    /// stays and it is read again later, a few times (`attempts` so far).
    fn schedule_retry(&mut self, relative: &str, attempts: u32) {
        if attempts < EMPTY_FILE_RETRIES {
            let due = Instant::now() + RETRY_AFTER * 4u32.pow(attempts);
            self.retries.insert(
                relative.to_string(),
                Retry {
                    due: Some(due),
                    attempts: attempts + 1,
                },
            );
        }
    }

    /// Reads `relative` and indexes it if its content changed.
    fn upsert_file(&mut self, relative: &str, absolute: &Path) {
        self.upsert_file_by(relative, absolute, Scan::Content, lstat(absolute));
    }

    /// Indexes `relative` if it changed, telling as `scan` says; `stat` is
    /// its [`lstat`], taken before anything is read.
    fn upsert_file_by(
        &mut self,
        relative: &str,
        absolute: &Path,
        scan: Scan,
        stat: Option<FileStat>,
    ) {
        // Any read ends a pending retry; only another empty read asks again.
        let attempts = self.retries.remove(relative).map_or(0, |r| r.attempts);
        if scan == Scan::Stat && attempts == 0 && self.stat_vouches(relative, stat) {
            self.pending.unchanged += 1;
            self.clear_skipped(relative);
            return;
        }
        if let Err(reason) = self.check_inside(absolute) {
            // Refused like any bad file; a last good version stays, if any.
            self.skip(relative, reason, None);
            return;
        }
        self.pending.read += 1;
        match self.read_if_changed(relative, absolute) {
            Ok(None) => {
                self.pending.unchanged += 1;
                // Same content under a new stat (touched, copied): the next
                // stat scan in this process need not read it again. The
                // same stat stays as indexed, for a verification to settle.
                if let Some(entry) = self.catalog.get_mut(relative)
                    && !same_file_state(entry.stat, stat)
                {
                    entry.stat = stat;
                }
                self.clear_skipped(relative);
            }
            Ok(Some(article)) => self.index_article(article, stat),
            Err(error @ ArticleError::Empty) => {
                // An index written before empty files were refused may hold
                // one as an article: that is no version worth keeping.
                let empty = article::content_hash(b"");
                if self
                    .catalog
                    .get(relative)
                    .and_then(|entry| entry.content_hash)
                    .is_some_and(|hash| hash.is(&empty))
                {
                    self.delete(relative);
                }
                self.skip(relative, error.to_string(), None);
                self.schedule_retry(relative, attempts);
            }
            Err(error) => self.skip(relative, error.to_string(), None),
        }
    }

    /// Whether the file at `relative`, a regular file (not a link) that
    /// stats as `current`, is what the index holds without reading it. Not
    /// for an article with includes (they may have changed), one to parse
    /// again, or one now over the size limit.
    fn stat_vouches(&self, relative: &str, current: Option<FileStat>) -> bool {
        let (Some(current), Some(entry)) = (current, self.catalog.get(relative)) else {
            return false;
        };
        entry.includes().is_empty()
            && entry.content_hash.is_some()
            && current.size <= self.max_article_bytes
            && entry
                .stat
                .is_some_and(|indexed| indexed.vouches_for(&current, self.verified_ns))
    }

    /// A symlink may only lead to a file inside the articles folder: an article
    /// can never expose a file from elsewhere on the machine.
    /// Checked on the resolved path, so a symlinked folder can't leak either.
    fn check_inside(&self, absolute: &Path) -> Result<(), String> {
        resolves_inside(&self.articles_dir, absolute)
    }

    /// Reads the file; `None` when the index already holds this exact content.
    fn read_if_changed(
        &self,
        relative: &str,
        absolute: &Path,
    ) -> Result<Option<Article>, ArticleError> {
        let bytes = article::read_bounded(absolute, self.max_article_bytes)?;
        if bytes.is_empty() {
            // Before the hash check: an old index may hold an empty version.
            return Err(ArticleError::Empty);
        }
        let hash = article::content_hash(&bytes);
        if let Some(entry) = self.catalog.get(relative) {
            // An article with includes is unchanged only if they are too.
            let current = if entry.includes().is_empty() {
                hash
            } else {
                article::includes::current_hash(&hash, entry.includes(), &self.includes)
            };
            if entry.content_hash.is_some_and(|held| held.is(&current)) {
                return Ok(None);
            }
        }
        let checked = article::parse_including(&bytes, relative, &self.rules, &self.includes)?;
        for note in &checked.notes {
            tracing::info!("{relative}: {note}");
        }
        Ok(Some(checked.article))
    }

    /// Parses again the articles that include `changed` (a file, or a folder
    /// of them, created, edited or deleted): their text comes from it.
    fn upsert_dependents(&mut self, changed: &BTreeSet<String>) {
        let mut dependents: Vec<String> = self
            .catalog
            .iter()
            .filter(|(_, entry)| {
                entry.includes().iter().any(|include| {
                    changed.iter().any(|path| {
                        include == path
                            || include
                                .strip_prefix(path.as_str())
                                .is_some_and(|rest| rest.starts_with('/'))
                    })
                })
            })
            .map(|(path, _)| path.to_string())
            .collect();
        dependents.sort();
        for relative in dependents {
            let absolute = self.articles_dir.join(&relative);
            // A dependent that is gone too is deleted by its own event.
            if absolute.is_file() {
                self.upsert_file(&relative, &absolute);
            }
        }
    }

    /// Replaces the article's documents; `stat` is the file's, taken before
    /// it was read.
    fn index_article(&mut self, article: Article, stat: Option<FileStat>) {
        let path = article.path.clone();
        if let Some(owner) = self.paths_by_id.get(article.id.as_str())
            && **owner != *path
        {
            let reason = format!("duplicate id {:?} (already used by {owner})", article.id);
            let duplicate_of = (article.id.clone(), owner.to_string());
            self.skip(&path, reason, Some(duplicate_of));
            return;
        }
        let fields = &self.kb.fields;
        let previous = self.catalog.get(path.as_str()).cloned();
        let entry = CatalogEntry::of(&article, stat);
        let record = catalog::encode(&path, &entry);
        let docs = article_documents_with(fields, &article, record.as_deref());
        // The catalog mirrors the index: a path it lacks has no documents to
        // delete (and each queued delete holds a 1 KB scorer until the
        // commit: 90 MB in a 100k build).
        if previous.is_some() {
            self.writer
                .delete_term(Term::from_field_text(fields.path, &path));
        }
        for doc in docs {
            if let Err(error) = self.writer.add_document(doc) {
                // Only fails if the writer itself is dead; surfaced by the commit.
                tracing::error!(path, %error, "cannot add document");
            }
        }
        if let Some(previous) = &previous
            && *previous.id != *article.id
        {
            self.paths_by_id.remove(&previous.id);
        }
        if previous.is_some() {
            self.pending.updated += 1;
        } else {
            self.pending.added += 1;
        }
        self.clear_skipped(&path);
        let path: Arc<str> = path.into();
        self.paths_by_id.insert(entry.id.clone(), path.clone());
        self.catalog.insert(path, entry);
    }

    fn delete(&mut self, relative: &str) {
        self.retries.remove(relative);
        if let Some(entry) = self.catalog.remove(relative) {
            self.writer
                .delete_term(Term::from_field_text(self.kb.fields.path, relative));
            if self.paths_by_id.get(&entry.id).map(|path| &**path) == Some(relative) {
                self.paths_by_id.remove(&entry.id);
            }
            self.pending.deleted += 1;
        }
        self.clear_skipped(relative);
    }

    /// Records a file that can't be indexed. Its last good version, if any,
    /// stays in the index until the file is fixed or deleted.
    fn skip(&mut self, relative: &str, reason: String, duplicate_of: Option<(String, String)>) {
        let serving_last_good_version = self.catalog.contains_key(relative);
        // Its content was not confirmed: a content reconcile settles nothing.
        self.unverified |= serving_last_good_version;
        tracing::warn!("{relative}: {reason}");
        self.pending.skipped += 1;
        let mut status = self.status.write().unwrap_or_else(PoisonError::into_inner);
        status.skipped.insert(
            relative.to_string(),
            SkippedFile {
                path: relative.to_string(),
                reason,
                serving_last_good_version,
                duplicate_of,
            },
        );
    }

    fn clear_skipped(&mut self, relative: &str) {
        let mut status = self.status.write().unwrap_or_else(PoisonError::into_inner);
        status.skipped.remove(relative);
    }

    fn forget_skipped_unless(&mut self, keep: impl Fn(&str) -> bool) {
        let mut status = self.status.write().unwrap_or_else(PoisonError::into_inner);
        status.skipped.retain(|path, _| keep(path));
    }

    /// A file refused for a duplicate id gets its turn once the other file is
    /// deleted or changes its id.
    fn retry_duplicates(&mut self) {
        let retry: Vec<String> = {
            let status = self.status.read().unwrap_or_else(PoisonError::into_inner);
            status
                .skipped
                .values()
                .filter(|s| {
                    s.duplicate_of.as_ref().is_some_and(|(id, owner)| {
                        self.paths_by_id.get(id.as_str()).map(|path| &**path)
                            != Some(owner.as_str())
                    })
                })
                .map(|s| s.path.clone())
                .collect()
        };
        for relative in retry {
            let absolute = self.articles_dir.join(&relative);
            if absolute.is_file() {
                self.upsert_file(&relative, &absolute);
            } else {
                self.clear_skipped(&relative);
            }
        }
    }

    fn reload_synonyms(&mut self) {
        let path = self.articles_dir.join(SYNONYMS_FILE);
        let loaded = if path.exists() {
            Synonyms::load(&path, self.max_article_bytes)
        } else {
            Ok(Synonyms::default())
        };
        match loaded {
            Ok(synonyms) => {
                *self
                    .synonyms
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(synonyms);
                self.clear_skipped(SYNONYMS_FILE);
            }
            Err(error) => {
                tracing::warn!("{SYNONYMS_FILE}: {error}");
                let mut status = self.status.write().unwrap_or_else(PoisonError::into_inner);
                status.skipped.insert(
                    SYNONYMS_FILE.to_string(),
                    SkippedFile {
                        path: SYNONYMS_FILE.to_string(),
                        reason: error.to_string(),
                        serving_last_good_version: true,
                        duplicate_of: None,
                    },
                );
            }
        }
    }

    fn commit(&mut self) -> Result<ChangeCounts, IndexError> {
        let counts = std::mem::take(&mut self.pending);
        let now = time::OffsetDateTime::now_utc();
        let documents_changed = counts.is_dirty() || self.rules_changed();
        if documents_changed || self.verification_settles_stats() {
            // The commit time, the rules and the last verification travel
            // with the commit, so `/api/v1/status` and the next start know
            // them.
            let started = Instant::now();
            let mut prepared = self.writer.prepare_commit()?;
            let payload = CommitPayload {
                committed_at: now,
                rules: self.rules_fingerprint.clone(),
                verified_ns: self.verified_ns,
            };
            if let Ok(json) = serde_json::to_string(&payload) {
                prepared.set_payload(&json);
            }
            prepared.commit()?;
            self.committed_rules = Some(self.rules_fingerprint.clone());
            self.committed_verified_ns = self.verified_ns;
            if documents_changed {
                self.kb.reader.reload()?;
            }
            if let Some(metrics) = &self.metrics {
                metrics
                    .commit_duration
                    .observe(started.elapsed().as_secs_f64());
            }
        }
        let mut status = self.status.write().unwrap_or_else(PoisonError::into_inner);
        status.batches += 1;
        status.degraded = None;
        if counts.is_dirty() {
            status.last_commit = Some(now);
            status.commits += 1;
        }
        status.articles = self.catalog.len();
        status.internal_articles = self
            .catalog
            .values()
            .filter(|e| e.audience == Audience::Internal)
            .count();
        status.sections = self.catalog.values().map(|e| e.sections as usize).sum();
        status.unrecognized_audience = self.unrecognized_audience();
        Ok(counts)
    }

    /// Whether committing the last verification would let the next start
    /// trust a stat it would otherwise have to read past: only then is a
    /// reconcile that changed nothing worth a commit.
    fn verification_settles_stats(&self) -> bool {
        self.verified_ns != self.committed_verified_ns
            && self.catalog.values().filter_map(|e| e.stat).any(|stat| {
                !stat.settled(self.committed_verified_ns) && stat.settled(self.verified_ns)
            })
    }

    /// Each access value that isn't public or internal, with how many
    /// articles it closed and how to fix it.
    fn unrecognized_audience(&self) -> Vec<super::UnrecognizedAudience> {
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for value in self
            .catalog
            .values()
            .filter_map(CatalogEntry::unrecognized_audience)
        {
            *counts.entry(value).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|(value, articles)| {
                super::UnrecognizedAudience::new(&self.rules.audience_field, value, articles)
            })
            .collect()
    }

    fn relative(&self, absolute: &Path) -> Option<String> {
        relative_path(&self.articles_dir, absolute)
    }

    fn walk_folder(&self) -> Survey {
        survey(
            &self.articles_dir,
            &self.articles_dir,
            &self.rules.selection,
        )
    }

    fn walk(&self, root: &Path) -> Vec<(String, PathBuf)> {
        article_files(&self.articles_dir, root, &self.rules.selection)
    }
}

/// The stat of the regular file at `absolute`, not following a link (`None`
/// for a link or anything else). Taken before the file is read, so the
/// content read is at least as recent and a later write shows as a change.
fn lstat(absolute: &Path) -> Option<FileStat> {
    std::fs::symlink_metadata(absolute)
        .ok()
        .filter(|meta| meta.is_file())
        .and_then(|meta| FileStat::of(&meta, SystemTime::now()))
}

/// [`lstat`] of every file, on a few threads: a start over 100k unchanged
/// files is mostly `statx` calls (2–3 µs each here).
fn lstat_all(files: &[(String, PathBuf)]) -> Vec<Option<FileStat>> {
    const PER_THREAD: usize = 4096;
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4)
        .min(files.len().div_ceil(PER_THREAD));
    if threads <= 1 {
        return files.iter().map(|(_, absolute)| lstat(absolute)).collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().map(|(_, absolute)| lstat(absolute)).collect())
            })
            .collect();
        workers
            .into_iter()
            .flat_map(
                |worker: std::thread::ScopedJoinHandle<'_, Vec<Option<FileStat>>>| {
                    worker
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                },
            )
            .collect()
    })
}

/// Whether two stats saw the same size and mtime (not when they were taken).
fn same_file_state(a: Option<FileStat>, b: Option<FileStat>) -> bool {
    a.map(|s| (s.size, s.mtime_ns)) == b.map(|s| (s.size, s.mtime_ns))
}

/// Whether `absolute`, symlinks resolved, is a file inside `articles_dir`
/// (which must itself be canonical), reached without passing through a
/// symlinked folder: folder links are not followed, so `ln -s . loop` can't
/// make every article appear twice.
pub fn resolves_inside(articles_dir: &Path, absolute: &Path) -> Result<(), String> {
    let resolved = std::fs::canonicalize(absolute);
    // A path that resolves to itself has no link on the way; only one that
    // doesn't (a linked file, or a linked folder above it) needs its folder
    // resolved too, so the common case costs one `realpath`.
    if resolved.as_deref().ok() != Some(absolute)
        && let Some(folder) = absolute.parent()
        && std::fs::canonicalize(folder).ok().as_deref() != Some(folder)
    {
        return Err("inside a symlinked folder (folder links are not followed)".to_string());
    }
    match resolved {
        Ok(target) if target.starts_with(articles_dir) && target.is_file() => Ok(()),
        Ok(target) => Err(format!(
            "symlink to {} is outside the articles folder (refused)",
            target.display()
        )),
        Err(error) => Err(format!("broken symlink: {error}")),
    }
}

/// Where the file an event names really is: its folder with symlinks
/// resolved (the file itself may be a link, and is checked where it leads).
/// `None` when that folder is outside `articles_dir`; the path as given when
/// its folder is gone (then so is the file).
pub fn real_location(articles_dir: &Path, absolute: &Path) -> Option<PathBuf> {
    let (Some(folder), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        return Some(absolute.to_path_buf());
    };
    if absolute == articles_dir || !absolute.starts_with(articles_dir) {
        return Some(absolute.to_path_buf());
    }
    match std::fs::canonicalize(folder) {
        Ok(real) if real.starts_with(articles_dir) => Some(real.join(name)),
        Ok(_) => None,
        Err(_) => Some(absolute.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::index::IndexStatus;

    const HOUR: Duration = Duration::from_secs(3600);

    /// A folder of articles and an index beside it; each [`Folder::start`]
    /// opens both as a server start does.
    struct Folder {
        articles: tempfile::TempDir,
        index: tempfile::TempDir,
    }

    impl Folder {
        fn new() -> Self {
            let articles = tempfile::tempdir().unwrap();
            let index = tempfile::tempdir().unwrap();
            Folder { articles, index }
        }

        fn start(&self, rules: ArticleRules) -> Indexer {
            let kb = Arc::new(KnowledgeIndex::open_or_create(self.index.path()).unwrap());
            let articles = std::fs::canonicalize(self.articles.path()).unwrap();
            let status: SharedStatus = Arc::new(std::sync::RwLock::new(IndexStatus::default()));
            Indexer::new(kb, &articles, 1 << 20, status, Arc::default())
                .unwrap()
                .with_rules(rules)
        }

        /// Writes `relative` and dates it `age` ago, as a file edited
        /// before the server started.
        fn write(&self, relative: &str, text: &str, age: Duration) {
            let path = self.articles.path().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            self.date(relative, SystemTime::now() - age);
        }

        fn date(&self, relative: &str, mtime: SystemTime) {
            let file = std::fs::File::options()
                .write(true)
                .open(self.articles.path().join(relative))
                .unwrap();
            file.set_modified(mtime).unwrap();
        }

        fn mtime(&self, relative: &str) -> SystemTime {
            std::fs::metadata(self.articles.path().join(relative))
                .unwrap()
                .modified()
                .unwrap()
        }
    }

    fn article(title: &str, body: &str) -> String {
        format!("---\ntitle: {title}\n---\n{body}\n")
    }

    fn counts(
        added: usize,
        updated: usize,
        deleted: usize,
        unchanged: usize,
        read: usize,
    ) -> ChangeCounts {
        ChangeCounts {
            added,
            updated,
            deleted,
            unchanged,
            skipped: 0,
            read,
        }
    }

    /// Three articles written an hour ago and indexed.
    fn indexed_folder() -> Folder {
        let folder = Folder::new();
        folder.write("a.md", &article("Alpha", "First."), HOUR);
        folder.write("b.md", &article("Bravo", "Second."), HOUR);
        folder.write("guides/c.md", &article("Charlie", "Third."), HOUR);
        let mut indexer = folder.start(ArticleRules::default());
        let first = indexer.reconcile_by(Scan::Stat, |_, _| {}).unwrap();
        assert_eq!(first, counts(3, 0, 0, 0, 3));
        folder
    }

    #[test]
    fn a_start_over_an_unchanged_folder_reads_no_file() {
        let folder = indexed_folder();
        let mut indexer = folder.start(ArticleRules::default());
        assert_eq!(
            indexer.reconcile_by(Scan::Stat, |_, _| {}).unwrap(),
            counts(0, 0, 0, 3, 0)
        );
        let status = indexer.status.read().unwrap().clone();
        assert_eq!((status.articles, status.sections), (3, 3));
        assert!(status.skipped.is_empty(), "{:?}", status.skipped);
        // The safety net still reads everything.
        assert_eq!(indexer.reconcile(|_, _| {}).unwrap(), counts(0, 0, 0, 3, 3));
    }

    #[test]
    fn files_changed_while_stopped_are_read_and_the_rest_are_not() {
        let folder = indexed_folder();
        // Another size.
        folder.write("a.md", &article("Alpha", "First, edited."), HOUR / 2);
        // The same size, another mtime.
        folder.write("b.md", &article("Bravo", "Secund."), HOUR / 2);
        // Same content, touched: read, found unchanged.
        folder.date("guides/c.md", SystemTime::now() - HOUR / 2);
        folder.write("new.md", &article("Delta", "Fourth."), HOUR / 2);
        let mut indexer = folder.start(ArticleRules::default());
        assert_eq!(
            indexer.reconcile_by(Scan::Stat, |_, _| {}).unwrap(),
            counts(1, 2, 0, 1, 4)
        );

        std::fs::remove_file(folder.articles.path().join("b.md")).unwrap();
        let mut indexer = {
            drop(indexer);
            folder.start(ArticleRules::default())
        };
        let after_delete = indexer.reconcile_by(Scan::Stat, |_, _| {}).unwrap();
        // The touched file is read at every start: its record still holds
        // the old mtime (only a change of content rewrites it).
        assert_eq!(after_delete, counts(0, 0, 1, 3, 1));
        assert!(!indexer.catalog.contains_key("b.md"));
        assert_eq!(indexer.status.read().unwrap().articles, 3);
    }

    #[test]
    fn a_file_read_right_after_a_write_is_read_again_at_the_next_start() {
        let folder = Folder::new();
        folder.write("old.md", &article("Old", "Settled."), HOUR);
        folder.write("fresh.md", &article("Fresh", "Just saved."), Duration::ZERO);
        let mut indexer = folder.start(ArticleRules::default());
        indexer.reconcile_by(Scan::Stat, |_, _| {}).unwrap();
        drop(indexer);

        // A write in the same timestamp tick as the read would not show.
        let mut indexer = folder.start(ArticleRules::default());
        assert_eq!(
            indexer.reconcile_by(Scan::Stat, |_, _| {}).unwrap(),
            counts(0, 0, 0, 2, 1)
        );
    }

    #[test]
    fn a_full_reconcile_settles_a_stat_taken_right_after_a_write() {
        let folder = Folder::new();
        folder.write("fresh.md", &article("Fresh", "Just saved."), Duration::ZERO);
        let mut indexer = folder.start(ArticleRules::default());
        indexer.reconcile_by(Scan::Stat, |_, _| {}).unwrap();
        let stat = indexer.catalog["fresh.md"].stat.unwrap();
        assert!(!stat.settled(None), "read right after its write");
        // The periodic reconcile, once the tick has passed.
        std::thread::sleep(Duration::from_nanos(
            (catalog::SETTLE_NS + 100_000_000) as u64,
        ));
        assert_eq!(indexer.reconcile(|_, _| {}).unwrap(), counts(0, 0, 0, 1, 1));
        drop(indexer);
        let mut indexer = folder.start(ArticleRules::default());
        assert!(indexer.verified_ns.is_some_and(|v| stat.settled(Some(v))));
        assert_eq!(
            indexer.reconcile_by(Scan::Stat, |_, _| {}).unwrap(),
            counts(0, 0, 0, 1, 0)
        );
    }

    #[test]
    fn a_write_that_keeps_size_and_mtime_is_caught_by_the_content_reconcile() {
        let folder = indexed_folder();
        let mtime = folder.mtime("a.md");
        // `cp -p` of another version of the same length.
        folder.write("a.md", &article("Alpha", "Fir5t."), HOUR);
        folder.date("a.md", mtime);
        let mut indexer = folder.start(ArticleRules::default());
        assert_eq!(
            indexer.reconcile_by(Scan::Stat, |_, _| {}).unwrap(),
            counts(0, 0, 0, 3, 0),
            "the accepted limit of telling changes by stat"
        );
        assert_eq!(indexer.reconcile(|_, _| {}).unwrap(), counts(0, 1, 0, 2, 3));
    }

    #[test]
    fn changed_rules_re_parse_every_file_even_by_stat() {
        let folder = indexed_folder();
        let rules = ArticleRules {
            audience_field: "visibility".into(),
            ..ArticleRules::default()
        };
        let mut indexer = folder.start(rules);
        assert_eq!(
            indexer.reconcile_by(Scan::Stat, |_, _| {}).unwrap(),
            counts(0, 3, 0, 0, 3)
        );
    }

    #[test]
    fn the_catalog_loaded_at_start_is_the_one_indexed() {
        let folder = indexed_folder();
        let mut indexer = folder.start(ArticleRules::default());
        indexer.reconcile_by(Scan::Stat, |_, _| {}).unwrap();
        let before = indexer.catalog.clone();
        drop(indexer);
        let indexer = folder.start(ArticleRules::default());
        assert_eq!(indexer.catalog, before);
        assert_eq!(indexer.paths_by_id.len(), 3);
        assert_eq!(&*indexer.paths_by_id["guides/c"], "guides/c.md");
        assert!(before.values().all(|e| e.stat.is_some()));
    }
}
