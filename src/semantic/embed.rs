//! Texts → unit-length vectors with a loaded [`SentenceModel`].
//!
//! Batches are formed from length-sorted texts and padded only to their own
//! longest text, with an attention mask so padding never changes a vector
//! (measured on 2 cores: sorting alone took ~80-word passages from ~6 to ~9
//! texts/s). A long text is first cut into overlapping [`TextWindow`]s that
//! each fit the model's max length, so nothing past the limit is silently lost.

use std::ops::Range;

use candle_core::{D, DType, Tensor};

use super::SemanticError;
use super::model::{Pooling, SentenceModel};

/// Texts per forward pass: 8 measured fastest on 2 cores for ~80-word
/// passages (length-sorted, 2026-12: 8 > 16 > 32 in every run; larger
/// batches also add memory: ~750 MB peak at 32 with 256-token texts).
pub const DEFAULT_BATCH_SIZE: usize = 8;
/// Upper bound on a batch, whatever the caller asks, to bound peak memory.
pub const MAX_BATCH_SIZE: usize = 64;
/// Tokens shared by consecutive windows of a long text, so a sentence cut at
/// a window's edge is whole in the next one.
pub const DEFAULT_WINDOW_OVERLAP: usize = 32;

/// A piece of a longer text that fits the model: `text` is
/// `&source[range]`, starting and ending on word boundaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextWindow<'a> {
    pub range: Range<usize>,
    pub text: &'a str,
    /// Word pieces in the window, special tokens not counted.
    pub tokens: usize,
}

impl SentenceModel {
    /// One unit vector per text, in the order given, batched by
    /// [`DEFAULT_BATCH_SIZE`]. Texts longer than [`Self::max_seq_length`]
    /// tokens are truncated: cut them with [`Self::windows`] first.
    pub fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, SemanticError> {
        self.embed_batch_with(texts, DEFAULT_BATCH_SIZE)
    }

    /// [`Self::embed_batch`] with a chosen batch size (clamped to
    /// 1..=[`MAX_BATCH_SIZE`]).
    pub fn embed_batch_with(
        &self,
        texts: &[&str],
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>, SemanticError> {
        let batch_size = batch_size.clamp(1, MAX_BATCH_SIZE);
        let encoded = texts
            .iter()
            .map(|text| self.token_ids(text))
            .collect::<Result<Vec<_>, _>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let mut vectors = vec![Vec::new(); texts.len()];
        for batch in order.chunks(batch_size) {
            let ids: Vec<&[u32]> = batch.iter().map(|&i| encoded[i].as_slice()).collect();
            for (&i, vector) in batch.iter().zip(self.forward(&ids)?) {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }

    /// The vector of one short text (a customer's question): no padding, no
    /// sorting, no batch.
    ///
    /// It runs on the caller's rayon pool. Measured on 2 cores (release,
    /// `examples/semantic_speed`): one query alone takes ~13 ms median on the
    /// default pool and no less on a one-thread pool (candle's element-wise
    /// ops keep their own global threads), ~10 ms only when the whole process
    /// is single-threaded (`RAYON_NUM_THREADS=1`, which halves batch
    /// throughput). Eight callers at once, each on its own one-thread pool,
    /// got ~13 % more queries/s than on the shared pool: that choice belongs
    /// to the server's query path, with a cache of repeated questions.
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>, SemanticError> {
        let ids = self.token_ids(text)?;
        let mut vectors = self.forward(&[&ids])?;
        vectors
            .pop()
            .ok_or_else(|| candle_core::Error::Msg("no vector for the query".into()).into())
    }

    /// Cuts `text` into windows of at most `max_seq_length` tokens (special
    /// tokens included) sharing about `overlap` tokens with the next one.
    /// Tokenizes once and windows over the token offsets; windows start and
    /// end on word boundaries, so each re-tokenizes to the same pieces. A text
    /// that fits is one window: itself.
    pub fn windows<'a>(
        &self,
        text: &'a str,
        overlap: usize,
    ) -> Result<Vec<TextWindow<'a>>, SemanticError> {
        let encoding = self
            .untruncated
            .encode(text, false)
            .map_err(|e| SemanticError::Tokenize(e.to_string()))?;
        let budget = self.max_seq_length - self.special_tokens;
        let word_ids = encoding.get_word_ids();
        let word_starts: Vec<bool> = (0..word_ids.len())
            .map(|i| i == 0 || word_ids[i] != word_ids[i - 1] || word_ids[i].is_none())
            .collect();
        let offsets = encoding.get_offsets();
        let ranges = token_windows(&word_starts, budget, overlap);
        let last = ranges.len().saturating_sub(1);
        Ok(ranges
            .into_iter()
            .enumerate()
            .map(|(n, tokens)| {
                // The first and last windows reach the text's ends, so
                // nothing (not even leading punctuation) falls outside.
                let start = if n == 0 {
                    0
                } else {
                    offsets.get(tokens.start).map_or(0, |o| o.0)
                };
                let end = if n == last {
                    text.len()
                } else {
                    offsets
                        .get(tokens.end.saturating_sub(1))
                        .map_or(text.len(), |o| o.1)
                };
                let range = char_floor(text, start)..char_ceil(text, end.max(start));
                TextWindow {
                    text: &text[range.clone()],
                    range,
                    tokens: tokens.len(),
                }
            })
            .collect())
    }

    /// Token ids with `[CLS]`/`[SEP]`, truncated at the max length.
    fn token_ids(&self, text: &str) -> Result<Vec<u32>, SemanticError> {
        let lowered;
        let text = if self.lowercase {
            lowered = text.to_lowercase();
            lowered.as_str()
        } else {
            text
        };
        let encoding = self
            .tokenizer
            .encode_fast(text, true)
            .map_err(|e| SemanticError::Tokenize(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// One forward pass over texts padded to the longest; returns unit vectors.
    fn forward(&self, ids: &[&[u32]]) -> Result<Vec<Vec<f32>>, SemanticError> {
        let rows = ids.len();
        let width = ids.iter().map(|row| row.len()).max().unwrap_or(0);
        if rows == 0 || width == 0 {
            return Ok(vec![vec![0.0; self.dims]; rows]);
        }
        let mut input = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for row in ids {
            input.extend_from_slice(row);
            input.resize(input.len() + width - row.len(), self.pad_id);
            mask.resize(mask.len() + row.len(), 1u32);
            mask.resize(mask.len() + width - row.len(), 0u32);
        }
        let input = Tensor::from_vec(input, (rows, width), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, width), &self.device)?;
        let token_types = input.zeros_like()?;
        let hidden = self.bert.forward(&input, &token_types, Some(&mask))?;
        let pooled = pool(&hidden, &mask, self.pooling)?;
        let mut vectors: Vec<Vec<f32>> = pooled.to_vec2()?;
        for vector in &mut vectors {
            normalize(vector);
        }
        Ok(vectors)
    }
}

/// (rows, tokens, hidden) → (rows, hidden), ignoring masked (padding) tokens.
fn pool(hidden: &Tensor, mask: &Tensor, pooling: Pooling) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?;
    match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1),
        Pooling::Mean | Pooling::MeanSqrtLen => {
            let sum = hidden.broadcast_mul(&mask)?.sum(1)?;
            let count = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
            let count = match pooling {
                Pooling::MeanSqrtLen => count.sqrt()?,
                _ => count,
            };
            sum.broadcast_div(&count)
        }
        Pooling::Max => {
            // 0 for tokens, -1e9 for padding, as sentence-transformers does.
            let penalty = mask.affine(1e9, -1e9)?;
            hidden.broadcast_add(&penalty)?.max(1)
        }
    }
}

/// Scales to unit length (a zero vector stays zero).
fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 1e-12 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Token ranges of the windows: each at most `budget` tokens, ending before a
/// word start when one is in reach (a word longer than the budget is cut),
/// the next starting at the first word start at least `overlap` tokens back.
fn token_windows(word_starts: &[bool], budget: usize, overlap: usize) -> Vec<Range<usize>> {
    let n = word_starts.len();
    let budget = budget.max(1);
    let overlap = overlap.min(budget / 2);
    let is_start = |i: usize| i >= n || word_starts[i];
    let mut windows = Vec::new();
    let mut start = 0;
    loop {
        let limit = start + budget;
        if limit >= n {
            windows.push(start..n);
            return windows;
        }
        let end = (start + 1..=limit)
            .rev()
            .find(|&e| is_start(e))
            .unwrap_or(limit);
        windows.push(start..end);
        let from = end.saturating_sub(overlap).max(start + 1);
        start = (from..=end).find(|&s| is_start(s)).unwrap_or(end);
    }
}

fn char_floor(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn char_ceil(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semantic::model::LoadOptions;
    use crate::semantic::testing::{HIDDEN, TinyModel, tiny_model};

    fn load(spec: TinyModel) -> (tempfile::TempDir, SentenceModel) {
        let dir = tiny_model(spec);
        let model = SentenceModel::load(dir.path(), &LoadOptions::default()).unwrap();
        (dir, model)
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn max_difference(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    const TEXTS: &[&str] = &[
        "my order arrived damaged",
        "how do i change my password",
        "the app keeps signing me out of every device",
        "refund",
        "",
        "where is my package? it was late, and the box was broken!",
        "export personal data from your account settings page",
    ];

    #[test]
    fn vectors_have_unit_length_in_every_pooling_mode() {
        for mode in ["mean", "cls", "max", "mean_sqrt_len"] {
            let (_dir, model) = load(TinyModel {
                pooling: Some(mode),
                ..TinyModel::default()
            });
            for vector in model.embed_batch(TEXTS).unwrap() {
                assert_eq!(vector.len(), HIDDEN);
                let norm = cosine(&vector, &vector).sqrt();
                assert!((norm - 1.0).abs() < 1e-5, "{mode}: norm {norm}");
            }
        }
    }

    #[test]
    fn pooling_modes_give_different_vectors() {
        let vector = |mode| {
            let (_dir, model) = load(TinyModel {
                pooling: Some(mode),
                ..TinyModel::default()
            });
            model.embed_query(TEXTS[2]).unwrap()
        };
        let mean = vector("mean");
        assert!(max_difference(&mean, &vector("cls")) > 1e-3);
        assert!(max_difference(&mean, &vector("max")) > 1e-3);
        // Dividing by √n instead of n changes only the length: same direction.
        assert!(max_difference(&mean, &vector("mean_sqrt_len")) < 1e-5);
    }

    #[test]
    fn batching_and_padding_do_not_change_vectors() {
        for mode in ["mean", "cls", "max"] {
            let (_dir, model) = load(TinyModel {
                pooling: Some(mode),
                ..TinyModel::default()
            });
            let one_by_one: Vec<Vec<f32>> = TEXTS
                .iter()
                .map(|text| model.embed_query(text).unwrap())
                .collect();
            for batch_size in [1, 2, 3, 16] {
                let batched = model.embed_batch_with(TEXTS, batch_size).unwrap();
                for (i, (a, b)) in one_by_one.iter().zip(&batched).enumerate() {
                    let difference = max_difference(a, b);
                    assert!(
                        difference < 1e-5,
                        "{mode}, batch {batch_size}, text {i}: {difference}"
                    );
                }
            }
        }
    }

    #[test]
    fn different_texts_get_different_vectors_and_order_is_kept() {
        let (_dir, model) = load(TinyModel::default());
        let vectors = model.embed_batch(&[TEXTS[0], TEXTS[1], TEXTS[0]]).unwrap();
        assert!(max_difference(&vectors[0], &vectors[1]) > 1e-3);
        assert!(max_difference(&vectors[0], &vectors[2]) < 1e-6);
        assert!(model.embed_batch(&[]).unwrap().is_empty());
    }

    #[test]
    fn long_texts_are_truncated_at_max_seq_length_not_at_the_shipped_128() {
        // The tiny tokenizer.json ships truncating at 16 tokens; the model's
        // max_seq_length is 24, so words 15..22 must still count.
        let (_dir, model) = load(TinyModel::default());
        let base = "the order of the item was late and the box was broken when it arrived on";
        let a = format!("{base} my device");
        let b = format!("{base} your card");
        assert!(model.token_ids(&a).unwrap().len() > 16);
        let va = model.embed_query(&a).unwrap();
        let vb = model.embed_query(&b).unwrap();
        assert!(max_difference(&va, &vb) > 1e-4);
        let long = [base; 4].join(" ");
        assert_eq!(model.token_ids(&long).unwrap().len(), 24);
    }

    #[test]
    fn windows_cover_the_whole_text_with_overlap() {
        let (_dir, model) = load(TinyModel::default());
        let text = "How do I return a damaged item? Open the order page, click return, \
                    and save. When the package arrived broken, the support team can help \
                    with a refund to your card. Why was my payment late? Track the invoice \
                    from the settings page, then email support with the link. Café é!";
        let windows = model.windows(text, 4).unwrap();
        assert!(windows.len() > 2, "{windows:?}");
        let budget = model.max_seq_length() - 2;
        assert_eq!(windows[0].range.start, 0);
        assert_eq!(windows.last().unwrap().range.end, text.len());
        for window in &windows {
            assert!(window.tokens <= budget, "{window:?}");
            assert_eq!(&text[window.range.clone()], window.text);
            // Word boundaries: re-tokenizing gives no more pieces than counted.
            let again = model.untruncated.encode(window.text, false).unwrap();
            assert!(again.len() <= budget, "{window:?}");
            assert_eq!(again.len(), window.tokens, "{window:?}");
        }
        for pair in windows.windows(2) {
            assert!(
                pair[1].range.start < pair[0].range.end,
                "consecutive windows overlap: {pair:?}"
            );
            assert!(pair[1].range.start > pair[0].range.start);
        }
        // Every word of the text is inside some window.
        let mut offset = 0;
        for word in text.split_whitespace() {
            let at = offset + text[offset..].find(word).unwrap();
            offset = at + word.len();
            assert!(
                windows
                    .iter()
                    .any(|w| w.range.start <= at && at + word.len() <= w.range.end),
                "{word} at {at}"
            );
        }
    }

    #[test]
    fn a_short_text_is_one_window_itself() {
        let (_dir, model) = load(TinyModel::default());
        let windows = model.windows("reset your password", 8).unwrap();
        assert_eq!(windows.len(), 1);
        assert_eq!(windows[0].text, "reset your password");
        assert_eq!(model.windows("", 8).unwrap()[0].text, "");
    }

    #[test]
    fn token_windows_respect_budget_words_and_overlap() {
        // Words of 1, 3, 1, 2, 1... pieces.
        let starts = [
            true, true, false, false, true, true, false, true, true, false, false, true, true,
        ];
        for budget in 1..=8 {
            for overlap in 0..=4 {
                let windows = token_windows(&starts, budget, overlap);
                assert_eq!(windows[0].start, 0);
                assert_eq!(windows.last().unwrap().end, starts.len());
                for window in &windows {
                    assert!(window.len() <= budget && !window.is_empty());
                }
                for pair in windows.windows(2) {
                    assert!(pair[1].start > pair[0].start);
                    assert!(pair[1].start <= pair[0].end, "no gap: {windows:?}");
                }
            }
        }
        assert_eq!(token_windows(&[], 4, 2), vec![0..0]);
        // A word longer than the budget is cut rather than looping forever.
        let long_word = [true, false, false, false, false, false];
        assert_eq!(token_windows(&long_word, 2, 1), vec![0..2, 2..4, 4..6]);
    }
}
