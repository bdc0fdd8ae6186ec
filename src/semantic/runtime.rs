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
