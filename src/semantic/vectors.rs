//! Section vectors: what the ranking core searches by meaning, and the
//! on-disk cache that makes a restart or an edit re-embed only what changed.
//!
//! Pure Rust, no model: built with or without the `semantic` feature, so the
//! ranking core has one code path and a lexical-only build simply never has
//! vectors.
//!
//! Search is exact: a dot product of the query with every allowed row
//! (unit vectors, so the dot product is the cosine): 384 multiply-adds per
//! section. An approximate index would sit behind
//! [`SectionVectors::best_articles`] when that stops being fast enough
//! (issue 17 sets the scale).

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// One row's place: which article (ordinal into `articles`) and section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowOf {
    pub article: u32,
    pub section: u32,
}

/// The best section of one article for a query, by cosine.
#[derive(Debug, Clone, PartialEq)]
pub struct SemanticHit {
    pub article_id: String,
    pub section_index: usize,
    pub cosine: f32,
}

/// An immutable snapshot of every embedded section, swapped whole when the
/// embedder publishes progress. Rows of one section are its windows.
#[derive(Debug, Default)]
pub struct SectionVectors {
    dims: usize,
    data: Vec<f32>,
    rows: Vec<RowOf>,
    articles: Vec<String>,
    by_id: HashMap<String, u32>,
    /// Row numbers of each article (by ordinal): an article's sections are
    /// scored without a pass over every row.
    rows_of: Vec<Vec<u32>>,
}

impl SectionVectors {
    /// Builds a snapshot from `(article id, section index, vector)` rows;
    /// rows with the wrong dimension are dropped.
    pub fn build<'a>(
        dims: usize,
        rows: impl IntoIterator<Item = (&'a str, usize, &'a [f32])>,
    ) -> SectionVectors {
        let mut vectors = SectionVectors {
            dims,
            ..SectionVectors::default()
        };
        for (article, section, vector) in rows {
            if vector.len() != dims || dims == 0 {
                continue;
            }
            let ordinal = match vectors.by_id.get(article) {
                Some(&ordinal) => ordinal,
                None => {
                    let ordinal = vectors.articles.len() as u32;
                    vectors.articles.push(article.to_string());
                    vectors.rows_of.push(Vec::new());
                    vectors.by_id.insert(article.to_string(), ordinal);
                    ordinal
                }
            };
            vectors.rows_of[ordinal as usize].push(vectors.rows.len() as u32);
            vectors.rows.push(RowOf {
                article: ordinal,
                section: section as u32,
            });
            vectors.data.extend_from_slice(vector);
        }
        vectors
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Articles with at least one embedded section.
    pub fn article_count(&self) -> usize {
        self.articles.len()
    }

    pub fn contains_article(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// The `limit` articles most similar to `query` among those `allowed`
    /// says may be shown, each with its best section; at least `floor`
    /// cosine. Articles `allowed` refuses are never scored, so a filter or
    /// the caller's audience applies before a vector can become a result.
    pub fn best_articles(
        &self,
        query: &[f32],
        allowed: impl Fn(&str) -> bool,
        limit: usize,
        floor: f32,
    ) -> Vec<SemanticHit> {
        if query.len() != self.dims || self.rows.is_empty() || limit == 0 {
            return Vec::new();
        }
        let permitted: Vec<bool> = self.articles.iter().map(|id| allowed(id)).collect();
        // Best (cosine, section) per article ordinal.
        let mut best: Vec<Option<(f32, u32)>> = vec![None; self.articles.len()];
        for (row, place) in self.rows.iter().enumerate() {
            if !permitted[place.article as usize] {
                continue;
            }
            let cosine = dot(query, &self.data[row * self.dims..(row + 1) * self.dims]);
            let slot = &mut best[place.article as usize];
            if slot.is_none_or(|(b, _)| cosine > b) {
                *slot = Some((cosine, place.section));
            }
        }
        let mut hits: Vec<SemanticHit> = best
            .into_iter()
            .enumerate()
            .filter_map(|(ordinal, best)| {
                let (cosine, section) = best?;
                (cosine >= floor).then(|| SemanticHit {
                    article_id: self.articles[ordinal].clone(),
                    section_index: section as usize,
                    cosine,
                })
            })
            .collect();
        hits.sort_by(|a, b| {
            b.cosine
                .total_cmp(&a.cosine)
                .then_with(|| a.article_id.cmp(&b.article_id))
        });
        hits.truncate(limit);
        hits
    }

    /// Every embedded section of one article with its cosine to `query`
    /// (the best window of each), for choosing the section that answers.
    pub fn section_scores(&self, query: &[f32], article_id: &str) -> Vec<(usize, f32)> {
        let Some(&ordinal) = self.by_id.get(article_id) else {
            return Vec::new();
        };
        if query.len() != self.dims {
            return Vec::new();
        }
        let mut scores: Vec<(usize, f32)> = Vec::new();
        for &row in &self.rows_of[ordinal as usize] {
            let row = row as usize;
            let place = self.rows[row];
            let cosine = dot(query, &self.data[row * self.dims..(row + 1) * self.dims]);
            match scores
                .iter_mut()
                .find(|(section, _)| *section == place.section as usize)
            {
                Some((_, best)) => *best = best.max(cosine),
                None => scores.push((place.section as usize, cosine)),
            }
        }
        scores
    }
}

/// Written so the compiler vectorises it: eight independent accumulators
/// over exact chunks (no bounds checks in the loop), summed at the end.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut sums = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            sums[lane] += x[lane] * y[lane];
        }
    }
    let mut total: f32 = sums.iter().sum();
    for (x, y) in a_rest.iter().zip(b_rest) {
        total += x * y;
    }
    total
}

/// The text of one embedded unit (a section, or a window of a long one):
/// the key under which its vector is cached.
pub fn unit_hash(text: &str) -> [u8; 32] {
    *blake3::hash(text.as_bytes()).as_bytes()
}

/// Vectors already computed, by unit-text hash, for one model. Saved next to
/// the index so a restart embeds nothing that did not change.
#[derive(Debug, Default)]
pub struct VectorCache {
    pub model_id: String,
    pub dims: usize,
    pub vectors: HashMap<[u8; 32], Vec<f32>>,
}

/// A cache file that cannot be used; the embedder starts over and says why.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a rapport vector cache ({reason})")]
    Format { path: PathBuf, reason: String },
}

const MAGIC: &[u8; 8] = b"RPVEC001";

impl VectorCache {
    pub fn new(model_id: &str, dims: usize) -> VectorCache {
        VectorCache {
            model_id: model_id.to_string(),
            dims,
            vectors: HashMap::new(),
        }
    }

    /// Where the cache of `model_id` lives under the index folder: one file
    /// per model, so switching models back and forth loses nothing.
    pub fn path(index_dir: &Path, model_id: &str) -> PathBuf {
        let safe: String = model_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        index_dir.join("vectors").join(format!("{safe}.bin"))
    }

    /// Loads the cache for `model_id`; a missing file is an empty cache, a
    /// file of another model or dimension is refused.
    pub fn load(path: &Path, model_id: &str, dims: usize) -> Result<VectorCache, CacheError> {
        let io = |source| CacheError::Io {
            path: path.to_path_buf(),
            source,
        };
        let format = |reason: &str| CacheError::Format {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(VectorCache::new(model_id, dims));
            }
            Err(error) => return Err(io(error)),
        };
        let mut reader = BufReader::new(file);
        let mut magic = [0u8; 8];
        reader.read_exact(&mut magic).map_err(io)?;
        if &magic != MAGIC {
            return Err(format("bad header"));
        }
        let id_len = read_u32(&mut reader).map_err(io)? as usize;
        if id_len > 4096 {
            return Err(format("model id too long"));
        }
        let mut id = vec![0u8; id_len];
        reader.read_exact(&mut id).map_err(io)?;
        if id != model_id.as_bytes() {
            return Err(format("written for another model"));
        }
        let stored_dims = read_u32(&mut reader).map_err(io)? as usize;
        if stored_dims != dims {
            return Err(format("another dimension"));
        }
        let count = read_u32(&mut reader).map_err(io)? as usize;
        let mut cache = VectorCache::new(model_id, dims);
        cache.vectors.reserve(count.min(1 << 20));
        let mut bytes = vec![0u8; dims * 4];
        for _ in 0..count {
            let mut key = [0u8; 32];
            reader.read_exact(&mut key).map_err(io)?;
            reader.read_exact(&mut bytes).map_err(io)?;
            let vector = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            cache.vectors.insert(key, vector);
        }
        Ok(cache)
    }

    /// Writes the cache atomically (a temporary file renamed over the old),
    /// keeping only the `keep` keys: vectors of deleted or edited sections
    /// do not pile up.
    pub fn save(&self, path: &Path, keep: &dyn Fn(&[u8; 32]) -> bool) -> Result<(), CacheError> {
        let io = |source| CacheError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let temporary = path.with_extension("bin.tmp");
        {
            let file = std::fs::File::create(&temporary).map_err(io)?;
            let mut writer = BufWriter::new(file);
            let kept: Vec<(&[u8; 32], &Vec<f32>)> = self
                .vectors
                .iter()
                .filter(|(key, vector)| keep(key) && vector.len() == self.dims)
                .collect();
            writer.write_all(MAGIC).map_err(io)?;
            writer
                .write_all(&(self.model_id.len() as u32).to_le_bytes())
                .map_err(io)?;
            writer.write_all(self.model_id.as_bytes()).map_err(io)?;
            writer
                .write_all(&(self.dims as u32).to_le_bytes())
                .map_err(io)?;
            writer
                .write_all(&(kept.len() as u32).to_le_bytes())
                .map_err(io)?;
            for (key, vector) in kept {
                writer.write_all(key).map_err(io)?;
                for value in vector {
                    writer.write_all(&value.to_le_bytes()).map_err(io)?;
                }
            }
            writer.flush().map_err(io)?;
            writer.get_ref().sync_all().map_err(io)?;
        }
        std::fs::rename(&temporary, path).map_err(io)
    }
}

fn read_u32(reader: &mut impl Read) -> std::io::Result<u32> {
    let mut bytes = [0u8; 4];
    reader.read_exact(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / norm).collect()
    }

    #[test]
    fn best_articles_scores_only_allowed_articles_and_keeps_their_best_section() {
        let a0 = unit(&[1.0, 0.0, 0.0]);
        let a1 = unit(&[0.6, 0.8, 0.0]);
        let b0 = unit(&[0.9, 0.1, 0.0]);
        let secret = unit(&[1.0, 0.0, 0.0]);
        let vectors = SectionVectors::build(
            3,
            [
                ("a", 0, a0.as_slice()),
                ("a", 1, a1.as_slice()),
                ("b", 0, b0.as_slice()),
                ("internal", 0, secret.as_slice()),
            ],
        );
        let query = unit(&[1.0, 0.05, 0.0]);
        let hits = vectors.best_articles(&query, |id| id != "internal", 10, 0.0);
        let ids: Vec<&str> = hits.iter().map(|h| h.article_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(hits[0].section_index, 0);
        assert!(vectors.best_articles(&query, |_| true, 10, 0.0)[0].article_id != "b");
        // A floor drops weak matches; a wrong dimension matches nothing.
        assert!(vectors.best_articles(&query, |_| true, 10, 0.9999).len() <= 2);
        assert!(
            vectors
                .best_articles(&[1.0, 0.0], |_| true, 10, 0.0)
                .is_empty()
        );
        let scores = vectors.section_scores(&unit(&[0.0, 1.0, 0.0]), "a");
        assert_eq!(scores.len(), 2);
        assert!(scores[1].1 > scores[0].1);
    }

    #[test]
    fn dot_matches_the_naive_sum_for_any_length() {
        for len in [0, 1, 7, 8, 9, 384, 385] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-4, "len {len}");
        }
    }

    #[test]
    fn the_cache_round_trips_and_refuses_another_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = VectorCache::path(dir.path(), "model/one:v1");
        let mut cache = VectorCache::new("model/one:v1", 2);
        cache.vectors.insert(unit_hash("kept"), vec![0.6, 0.8]);
        cache.vectors.insert(unit_hash("gone"), vec![1.0, 0.0]);
        let kept = unit_hash("kept");
        cache.save(&path, &|key| *key == kept).unwrap();
        let loaded = VectorCache::load(&path, "model/one:v1", 2).unwrap();
        assert_eq!(loaded.vectors.len(), 1);
        assert_eq!(loaded.vectors[&kept], vec![0.6, 0.8]);
        assert!(VectorCache::load(&path, "model/two", 2).is_err());
        assert!(VectorCache::load(&path, "model/one:v1", 3).is_err());
        let missing = VectorCache::load(&dir.path().join("none.bin"), "m", 2).unwrap();
        assert!(missing.vectors.is_empty());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(VectorCache::load(&path, "model/one:v1", 2).is_err());
    }
}
