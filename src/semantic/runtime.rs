//! Loads the configured model at start-up and keeps every section embedded,
//! in the background: the server answers lexically until vectors exist, and
//! an edit is searchable by words at once and by meaning as soon as its few
//! sections are embedded.
//!
//! The unit embedded is a section with its article's title and heading in
//! front (the words that say what the section is about), cut into
//! overlapping windows when it is longer than the model reads. Vectors are
//! cached by the unit's text hash in `index/vectors/<model id>.bin`, so a
//! restart embeds nothing that did not change.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::embed::DEFAULT_WINDOW_OVERLAP;
use super::model::LoadOptions;
use super::vectors::{SectionVectors, VectorCache, unit_hash};
use super::{QueryEmbedder, Semantic, SemanticState, SentenceModel};
use crate::config::ModelChoice;
use crate::search::SearchEngine;

/// Questions whose vectors are kept: customers repeat the same few
/// questions, and an embedding costs ~10 ms of CPU.
const QUERY_CACHE_ENTRIES: usize = 4096;
/// Texts handed to the model per call; progress is published between calls.
const CHUNK: usize = 32;
/// How often an embedding run publishes what it has and saves the cache.
const PUBLISH_EVERY: Duration = Duration::from_secs(2);
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// The model folder `choice` names, if any: the default folder only when it
/// exists (so a fetched model is simply picked up).
pub fn model_dir(choice: &ModelChoice) -> Option<PathBuf> {
    match choice {
        ModelChoice::Off => None,
        ModelChoice::Dir(dir) => Some(dir.clone()),
        ModelChoice::Default => {
            let dir = Path::new(super::DEFAULT_MODELS_DIR).join(super::DEFAULT_MODEL);
            dir.join(super::model::CONFIG_FILE).exists().then_some(dir)
        }
    }
}

/// The loaded model as the ranking core uses it: one question → one vector,
/// with a bounded cache of recent questions.
pub struct ModelQueries {
    model: Arc<SentenceModel>,
    cache: Mutex<HashMap<String, Arc<Vec<f32>>>>,
}

impl ModelQueries {
    pub fn new(model: Arc<SentenceModel>) -> ModelQueries {
        ModelQueries {
            model,
            cache: Mutex::default(),
        }
    }
}

impl QueryEmbedder for ModelQueries {
    fn embed_query(&self, text: &str) -> Option<Arc<Vec<f32>>> {
        let key = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if key.is_empty() {
            return None;
        }
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Some(hit.clone());
        }
        let vector = match self.model.embed_query(&key) {
            Ok(vector) => Arc::new(vector),
            Err(error) => {
                tracing::warn!(%error, "semantic: a question could not be embedded; ranking it lexically");
                return None;
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= QUERY_CACHE_ENTRIES {
            // Simple and bounded: start over rather than track recency.
            cache.clear();
        }
        cache.insert(key, vector.clone());
        Some(vector)
    }
}

/// One section to embed: its article, place, and the text the model reads.
#[derive(Debug, Clone)]
pub struct Unit {
    pub article_id: String,
    pub section_index: usize,
    pub text: String,
}

impl From<crate::search::EmbeddingUnit> for Unit {
    fn from(unit: crate::search::EmbeddingUnit) -> Unit {
        Unit {
            text: unit_text(&unit.title, &unit.heading, &unit.text),
            article_id: unit.article_id,
            section_index: unit.section_index,
        }
    }
}

/// The text a section is embedded as: title, heading (when it says more
/// than the title), then the section's own text.
pub fn unit_text(title: &str, heading: &str, text: &str) -> String {
    let mut unit = String::with_capacity(title.len() + heading.len() + text.len() + 2);
    unit.push_str(title);
    if !heading.is_empty() && heading != title {
        unit.push('\n');
        unit.push_str(heading);
    }
    if !text.trim().is_empty() {
        unit.push('\n');
        unit.push_str(text.trim());
    }
    unit
}

/// Keeps a model's vectors in step with the index: what is cached, which
/// window hashes each unit text has (so unchanged units are not
/// re-tokenized), and where the cache is saved.
pub struct Embedder {
    model: Arc<SentenceModel>,
    cache: VectorCache,
    cache_path: PathBuf,
    windows: HashMap<[u8; 32], Vec<([u8; 32], String)>>,
    dirty: bool,
}

/// Progress of one [`Embedder::sync`] run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub embedded: usize,
    pub total: usize,
}

impl Embedder {
    /// Loads the cache of this model beside the index (a damaged cache is
    /// reported and started over: it only costs time).
    pub fn new(model: Arc<SentenceModel>, index_dir: &Path) -> Embedder {
        let cache_path = VectorCache::path(index_dir, model.model_id());
        let cache = match VectorCache::load(&cache_path, model.model_id(), model.dims()) {
            Ok(cache) => cache,
            Err(error) => {
                tracing::warn!(%error, "semantic: the vector cache cannot be used; embedding again");
                VectorCache::new(model.model_id(), model.dims())
            }
        };
        Embedder {
            model,
            cache,
            cache_path,
            windows: HashMap::new(),
            dirty: false,
        }
    }

    pub fn model(&self) -> &Arc<SentenceModel> {
        &self.model
    }

    fn windows_of(&mut self, text: &str) -> Vec<([u8; 32], String)> {
        let key = unit_hash(text);
        if let Some(windows) = self.windows.get(&key) {
            return windows.clone();
        }
        let windows: Vec<([u8; 32], String)> =
            match self.model.windows(text, DEFAULT_WINDOW_OVERLAP) {
                Ok(windows) => windows
                    .into_iter()
                    .map(|w| (unit_hash(w.text), w.text.to_string()))
                    .collect(),
                // Untokenizable text: embed it whole (the model truncates).
                Err(_) => vec![(key, text.to_string())],
            };
        self.windows.insert(key, windows.clone());
        windows
    }

    /// The vectors of `units` that are cached, as a searchable snapshot.
    fn snapshot(&mut self, units: &[Unit]) -> (SectionVectors, usize) {
        let mut rows: Vec<(usize, usize, Vec<f32>)> = Vec::new();
        let mut embedded = 0;
        for (n, unit) in units.iter().enumerate() {
            let windows = self.windows_of(&unit.text);
            let cached: Vec<&Vec<f32>> = windows
                .iter()
                .filter_map(|(hash, _)| self.cache.vectors.get(hash))
                .collect();
            if cached.len() == windows.len() && !windows.is_empty() {
                embedded += 1;
            }
            for vector in cached {
                rows.push((n, unit.section_index, vector.clone()));
            }
        }
        let vectors = SectionVectors::build(
            self.model.dims(),
            rows.iter().map(|(n, section, vector)| {
                (units[*n].article_id.as_str(), *section, vector.as_slice())
            }),
        );
        (vectors, embedded)
    }

    /// Embeds every unit whose windows are not cached, calling `publish`
    /// with a searchable snapshot and the progress now and then (and at the
    /// end), and saves the cache. Stops early (returning `false`) when
    /// `stale` says the units changed meanwhile.
    pub fn sync(
        &mut self,
        units: &[Unit],
        publish: &mut dyn FnMut(SectionVectors, Progress),
        stale: &dyn Fn() -> bool,
    ) -> Result<bool, super::SemanticError> {
        let total = units.len();
        let mut missing: Vec<([u8; 32], String)> = Vec::new();
        let mut queued: HashSet<[u8; 32]> = HashSet::new();
        for unit in units {
            for (hash, text) in self.windows_of(&unit.text) {
                if !self.cache.vectors.contains_key(&hash) && queued.insert(hash) {
                    missing.push((hash, text));
                }
            }
        }
        let (vectors, embedded) = self.snapshot(units);
        publish(vectors, Progress { embedded, total });
        let mut last_publish = Instant::now();
        let mut last_save = Instant::now();
        for chunk in missing.chunks(CHUNK) {
            if stale() {
                self.save_if_dirty(units);
                return Ok(false);
            }
            let texts: Vec<&str> = chunk.iter().map(|(_, text)| text.as_str()).collect();
            let vectors = self.model.embed_batch(&texts)?;
            for ((hash, _), vector) in chunk.iter().zip(vectors) {
                self.cache.vectors.insert(*hash, vector);
            }
            self.dirty = true;
            if last_publish.elapsed() >= PUBLISH_EVERY {
                let (vectors, embedded) = self.snapshot(units);
                publish(vectors, Progress { embedded, total });
                last_publish = Instant::now();
            }
            if last_save.elapsed() >= SAVE_EVERY {
                self.save_if_dirty(units);
                last_save = Instant::now();
            }
        }
        let (vectors, embedded) = self.snapshot(units);
        publish(vectors, Progress { embedded, total });
        self.save_if_dirty(units);
        Ok(true)
    }

    /// Saves the cache, keeping only the windows of the current units.
    fn save_if_dirty(&mut self, units: &[Unit]) {
        let keep: HashSet<[u8; 32]> = units
            .iter()
            .flat_map(|unit| {
                self.windows
                    .get(&unit_hash(&unit.text))
                    .into_iter()
                    .flatten()
                    .map(|(hash, _)| *hash)
            })
            .collect();
        let unused = self.cache.vectors.keys().any(|k| !keep.contains(k));
        if !self.dirty && !unused {
            return;
        }
        if let Err(error) = self.cache.save(&self.cache_path, &|key| keep.contains(key)) {
            tracing::warn!(%error, "semantic: the vector cache could not be saved");
        }
        self.cache.vectors.retain(|key, _| keep.contains(key));
        self.dirty = false;
    }
}

/// Where one-shot runs over a temporary index (`rapport eval`, calibration)
/// keep the vectors of `articles_dir`, so a second run embeds nothing new:
/// one folder per articles folder under the system's temp dir.
pub fn scratch_cache_dir(articles_dir: &Path) -> PathBuf {
    let key = blake3::hash(articles_dir.to_string_lossy().as_bytes()).to_hex();
    std::env::temp_dir()
        .join("rapport-eval-vectors")
        .join(&key.as_str()[..16])
}

/// Embeds every section of `engine`'s index now (caching under
/// `cache_dir`) and makes the engine rank by meaning too: for one-shot
/// commands (`rapport index`, `rapport eval`, calibration). Returns how many
/// sections had to be embedded (the rest came from the cache).
pub fn embed_into(
    engine: &SearchEngine,
    model: Arc<SentenceModel>,
    cache_dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<usize, super::SemanticError> {
    let units: Vec<Unit> = engine
        .embedding_units()
        .map_err(|e| super::SemanticError::Usage(e.to_string()))?
        .into_iter()
        .map(Unit::from)
        .collect();
    let mut embedder = Embedder::new(model.clone(), cache_dir);
    let semantic = engine.semantic().clone();
    let mut cached = None;
    embedder.sync(
        &units,
        &mut |vectors, step| {
            cached.get_or_insert(step.embedded);
            progress(step);
            semantic.publish(vectors);
        },
        &|| false,
    )?;
    semantic.set_embedder(Some(Arc::new(ModelQueries::new(model.clone()))));
    semantic.update_status(|s| {
        s.state = SemanticState::Ready;
        s.model = Some(model.model_id().to_string());
        s.dims = Some(model.dims());
        s.embedded = units.len();
        s.total = units.len();
    });
    Ok(units.len() - cached.unwrap_or(0))
}

/// Loads the model `choice` names and, on a thread of its own, keeps the
/// section vectors of `engine`'s index up to date, publishing through
/// `semantic`. Returns at once; a model that is missing or fails to load
/// leaves `semantic` off (or in error) and rapport lexical, and says so once.
pub fn start(
    choice: &ModelChoice,
    index_dir: PathBuf,
    engine: &Arc<SearchEngine>,
    semantic: Arc<Semantic>,
    index_ready: impl Fn() -> bool + Send + 'static,
) {
    // Weak: the embedder stops when the server (the engine's owner) is gone.
    let engine = Arc::downgrade(engine);
    let Some(dir) = model_dir(choice) else {
        tracing::info!("semantic: off — no model; run `rapport model fetch` to search by meaning");
        return;
    };
    semantic.update_status(|s| s.state = SemanticState::Loading);
    let spawned = std::thread::Builder::new()
        .name("rapport-semantic".into())
        .spawn(move || {
            let started = Instant::now();
            let model = match SentenceModel::load(&dir, &LoadOptions::default()) {
                Ok(model) => Arc::new(model),
                Err(error) => {
                    tracing::warn!(
                        "semantic: off — the model in {} cannot be used: {error}",
                        dir.display()
                    );
                    semantic.update_status(|s| {
                        s.state = SemanticState::Error;
                        s.error = Some(error.to_string());
                    });
                    return;
                }
            };
            tracing::info!(
                model = model.model_id(),
                dims = model.dims(),
                took_ms = started.elapsed().as_millis() as u64,
                "semantic: model loaded from {}",
                dir.display()
            );
            semantic.update_status(|s| {
                s.model = Some(model.model_id().to_string());
                s.dims = Some(model.dims());
            });
            semantic.set_embedder(Some(Arc::new(ModelQueries::new(model.clone()))));
            let mut embedder = Embedder::new(model, &index_dir);
            keep_up(&mut embedder, &engine, &semantic, index_ready);
            tracing::debug!("semantic: the server stopped; embedder done");
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "semantic: off — no thread for the embedder");
    }
}

/// The embedder's loop: whenever the index changes, embed what changed.
fn keep_up(
    embedder: &mut Embedder,
    engine: &Weak<SearchEngine>,
    semantic: &Semantic,
    index_ready: impl Fn() -> bool,
) {
    let mut seen: Option<u64> = None;
    loop {
        let Some(engine) = engine.upgrade() else {
            return;
        };
        if !index_ready() {
            drop(engine);
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let generation = engine.generation();
        if seen == Some(generation) {
            drop(engine);
            std::thread::sleep(Duration::from_millis(250));
            continue;
        }
        let units: Vec<Unit> = match engine.embedding_units() {
            Ok(units) => units.into_iter().map(Unit::from).collect(),
            Err(error) => {
                tracing::warn!(%error, "semantic: cannot read the index's sections");
                drop(engine);
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let started = Instant::now();
        let mut publish = |vectors: SectionVectors, progress: Progress| {
            semantic.publish(vectors);
            semantic.update_status(|s| {
                s.embedded = progress.embedded;
                s.total = progress.total;
                s.state = if progress.embedded < progress.total {
                    SemanticState::Embedding
                } else {
                    SemanticState::Ready
                };
            });
        };
        let stale = || engine.generation() != generation;
        match embedder.sync(&units, &mut publish, &stale) {
            Ok(true) => {
                seen = Some(generation);
                tracing::info!(
                    sections = units.len(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "semantic: every section embedded"
                );
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "semantic: embedding failed; ranking stays lexical for what is not embedded");
                semantic.update_status(|s| {
                    s.state = SemanticState::Error;
                    s.error = Some(error.to_string());
                });
                seen = Some(generation);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semantic::testing::{TinyModel, tiny_model};

    fn unit(article: &str, section: usize, text: &str) -> Unit {
        Unit {
            article_id: article.to_string(),
            section_index: section,
            text: text.to_string(),
        }
    }

    /// Runs one sync, returning the snapshot and how many texts the model
    /// was asked to embed (cached ones are not).
    fn sync(embedder: &mut Embedder, units: &[Unit]) -> (SectionVectors, Progress) {
        let mut last = None;
        let done = embedder
            .sync(units, &mut |v, p| last = Some((v, p)), &|| false)
            .expect("embeds");
        assert!(done);
        last.expect("published")
    }

    #[test]
    fn a_restart_embeds_nothing_and_an_edit_only_what_changed() {
        let model_dir = tiny_model(TinyModel::default());
        let model =
            Arc::new(SentenceModel::load(model_dir.path(), &LoadOptions::default()).unwrap());
        let index = tempfile::tempdir().unwrap();
        let mut units = vec![
            unit("returns", 0, "return a damaged item"),
            unit("returns", 1, "my order arrived broken what now"),
            unit("account", 0, "reset your password with the link"),
        ];
        let mut embedder = Embedder::new(model.clone(), index.path());
        let (vectors, progress) = sync(&mut embedder, &units);
        assert_eq!(
            progress,
            Progress {
                embedded: 3,
                total: 3
            }
        );
        assert_eq!(vectors.article_count(), 2);
        let cache_file = VectorCache::path(index.path(), model.model_id());
        assert!(cache_file.exists(), "the cache is saved beside the index");

        // A restart: a new embedder over the saved cache has everything.
        let mut restarted = Embedder::new(model.clone(), index.path());
        let windows: Vec<[u8; 32]> = units
            .iter()
            .flat_map(|u| restarted.windows_of(&u.text))
            .map(|(hash, _)| hash)
            .collect();
        let missing_before = windows
            .iter()
            .filter(|hash| !restarted.cache.vectors.contains_key(*hash))
            .count();
        assert_eq!(missing_before, 0, "nothing to embed after a restart");
        let (_, progress) = sync(&mut restarted, &units);
        assert_eq!(progress.embedded, 3);

        // An edit: only the edited unit is new; a deleted one leaves the cache.
        units[2] = unit("account", 0, "change your password in settings");
        units.remove(1);
        let windows: Vec<[u8; 32]> = units
            .iter()
            .flat_map(|u| restarted.windows_of(&u.text))
            .map(|(hash, _)| hash)
            .collect();
        let new: Vec<&[u8; 32]> = windows
            .iter()
            .filter(|hash| !restarted.cache.vectors.contains_key(*hash))
            .collect();
        assert_eq!(new.len(), 1, "only the edited section is embedded again");
        sync(&mut restarted, &units);
        let saved = VectorCache::load(&cache_file, model.model_id(), model.dims()).unwrap();
        assert_eq!(
            saved.vectors.len(),
            2,
            "vectors of gone sections are dropped"
        );
    }

    #[test]
    fn long_sections_are_embedded_in_windows_and_match_by_their_best_one() {
        let model_dir = tiny_model(TinyModel::default());
        let model =
            Arc::new(SentenceModel::load(model_dir.path(), &LoadOptions::default()).unwrap());
        let index = tempfile::tempdir().unwrap();
        let long = "the order arrived late and the box was broken ".repeat(12);
        let units = vec![unit("long", 0, &long), unit("short", 0, "reset password")];
        let mut embedder = Embedder::new(model.clone(), index.path());
        assert!(
            embedder.windows_of(&long).len() > 1,
            "past max_seq_length: windows"
        );
        let (vectors, progress) = sync(&mut embedder, &units);
        assert_eq!(progress.embedded, 2);
        let query = model.embed_query("the box was broken").unwrap();
        let scores = vectors.section_scores(&query, "long");
        assert_eq!(scores.len(), 1, "windows of one section score as one");
    }

    #[test]
    fn a_stale_index_stops_the_run_and_keeps_what_was_done() {
        let model_dir = tiny_model(TinyModel::default());
        let model =
            Arc::new(SentenceModel::load(model_dir.path(), &LoadOptions::default()).unwrap());
        let index = tempfile::tempdir().unwrap();
        let units: Vec<Unit> = (0..80)
            .map(|n| unit("many", n, &format!("item {n} was damaged in the package")))
            .collect();
        let mut embedder = Embedder::new(model, index.path());
        let calls = std::cell::Cell::new(0);
        let done = embedder
            .sync(&units, &mut |_, _| {}, &|| {
                calls.set(calls.get() + 1);
                calls.get() > 1
            })
            .unwrap();
        assert!(!done, "a changed index interrupts the run");
        assert_eq!(
            embedder.cache.vectors.len(),
            CHUNK,
            "the chunk done is kept"
        );
    }

    #[test]
    fn unit_text_puts_title_and_heading_first_once() {
        assert_eq!(unit_text("Refunds", "Refunds", " body "), "Refunds\nbody");
        assert_eq!(
            unit_text("Refunds", "How long", "5 days"),
            "Refunds\nHow long\n5 days"
        );
        assert_eq!(unit_text("Refunds", "", ""), "Refunds");
    }

    #[test]
    fn repeated_questions_come_from_the_cache() {
        let model_dir = tiny_model(TinyModel::default());
        let model =
            Arc::new(SentenceModel::load(model_dir.path(), &LoadOptions::default()).unwrap());
        let queries = ModelQueries::new(model);
        let first = queries.embed_query("reset  my password").unwrap();
        let again = queries.embed_query(" reset my password ").unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "same words, same cached vector"
        );
        assert!(queries.embed_query("   ").is_none());
    }
}
