//! Facet counts over the whole result set.
//!
//! Written by hand: opening a string column (tantivy's `FacetCollector`
//! does the equivalent) costs about a millisecond per segment per query,
//! which was most of a search's time. Segments never change, so each
//! segment's values are decoded once into plain arrays and cached until the
//! segment is merged away; counting is then a few increments per document.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::index::SegmentId;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// One field's values in one segment: names by ordinal, ordinals per document.
pub struct FieldValues {
    pub names: Vec<String>,
    pub by_doc: Vec<Vec<u32>>,
}

impl FieldValues {
    /// The values of `doc`.
    pub fn of(&self, doc: DocId) -> impl Iterator<Item = &str> {
        self.by_doc
            .get(doc as usize)
            .into_iter()
            .flatten()
            .map(|&ord| self.names[ord as usize].as_str())
    }
}

type SegmentValues = Arc<Vec<Arc<FieldValues>>>;

/// Decoded string columns per (segment, field), shared by all queries: facet
/// counts, context boosts and feedback boosts read them.
#[derive(Default)]
pub struct FacetCache {
    fields: Mutex<HashMap<(SegmentId, &'static str), Arc<FieldValues>>>,
    /// The searcher generation last pruned for; pruning runs once per reload.
    pruned_generation: std::sync::atomic::AtomicU64,
}

impl FacetCache {
    pub fn field(
        &self,
        reader: &SegmentReader,
        field: &'static str,
    ) -> tantivy::Result<Arc<FieldValues>> {
        let key = (reader.segment_id(), field);
        if let Some(values) = self
            .fields
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(values.clone());
        }
        let mut values = FieldValues {
            names: Vec::new(),
            by_doc: vec![Vec::new(); reader.max_doc() as usize],
        };
        if let Some(column) = reader.fast_fields().str(field)? {
            let mut name = String::new();
            for ord in 0..column.dictionary().num_terms() as u64 {
                column.ord_to_str(ord, &mut name)?;
                values.names.push(name.clone());
            }
            for (doc, ords) in values.by_doc.iter_mut().enumerate() {
                ords.extend(column.term_ords(doc as DocId).map(|o| o as u32));
            }
        }
        let values = Arc::new(values);
        self.fields
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, values.clone());
        Ok(values)
    }

    fn values(
        &self,
        reader: &SegmentReader,
        fields: &[&'static str],
    ) -> tantivy::Result<SegmentValues> {
        let decoded: tantivy::Result<Vec<Arc<FieldValues>>> = fields
            .iter()
            .map(|field| self.field(reader, field))
            .collect();
        Ok(Arc::new(decoded?))
    }

    /// Forgets segments the searcher no longer has (merged or deleted); a
    /// no-op unless the reader reloaded since the last call.
    pub fn forget_stale(&self, searcher: &tantivy::Searcher) {
        use std::sync::atomic::Ordering;
        let generation = searcher.generation().generation_id();
        if self.pruned_generation.swap(generation, Ordering::AcqRel) == generation {
            return;
        }
        let live = searcher
            .segment_readers()
            .iter()
            .map(|s| s.segment_id())
            .collect();
        self.retain(&live);
    }

    /// Forgets segments that are no longer in the index (merged or deleted).
    fn retain(&self, live: &HashSet<SegmentId>) {
        self.fields
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _), _| live.contains(id));
    }
}

/// Counts the values of some string fast fields over matching documents.
pub struct FacetCounter {
    cache: Arc<FacetCache>,
    fields: Vec<&'static str>,
}

impl FacetCounter {
    pub fn new(cache: Arc<FacetCache>, fields: Vec<&'static str>) -> Self {
        FacetCounter { cache, fields }
    }
}

/// One map per field, in the order given to [`FacetCounter::new`].
pub type FacetFruit = Vec<BTreeMap<String, u64>>;

pub struct SegmentFacetCounter {
    values: SegmentValues,
    counts: Vec<Vec<u64>>,
}

impl Collector for FacetCounter {
    type Fruit = FacetFruit;
    type Child = SegmentFacetCounter;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentFacetCounter> {
        let values = self.cache.values(reader, &self.fields)?;
        let counts = values.iter().map(|f| vec![0u64; f.names.len()]).collect();
        Ok(SegmentFacetCounter { values, counts })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<FacetFruit>) -> tantivy::Result<FacetFruit> {
        let mut merged: FacetFruit = vec![BTreeMap::new(); self.fields.len()];
        for fruit in fruits {
            for (into, from) in merged.iter_mut().zip(fruit) {
                for (value, count) in from {
                    *into.entry(value).or_default() += count;
                }
            }
        }
        Ok(merged)
    }
}

impl SegmentCollector for SegmentFacetCounter {
    type Fruit = FacetFruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        for (field, counts) in self.values.iter().zip(self.counts.iter_mut()) {
            if let Some(ords) = field.by_doc.get(doc as usize) {
                for &ord in ords {
                    counts[ord as usize] += 1;
                }
            }
        }
    }

    fn harvest(self) -> FacetFruit {
        self.values
            .iter()
            .zip(self.counts)
            .map(|(field, counts)| {
                counts
                    .into_iter()
                    .enumerate()
                    .filter(|(_, count)| *count > 0)
                    .map(|(ord, count)| (field.names[ord].clone(), count))
                    .collect()
            })
            .collect()
    }
}
