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

/// One field's values in one segment: names by ordinal, and each
/// document's ordinals as a slice of one array (`ords[starts[doc]..
/// starts[doc + 1]]`). A `Vec` per document cost 24 bytes and an
/// allocation for each of the 670k documents of a 100k-article index.
pub struct FieldValues {
    pub names: Vec<String>,
    starts: Vec<u32>,
    ords: Vec<u32>,
}

impl FieldValues {
    /// The ordinals of `doc`'s values (none for a document out of range).
    pub fn ords(&self, doc: DocId) -> &[u32] {
        let doc = doc as usize;
        match (self.starts.get(doc), self.starts.get(doc + 1)) {
            (Some(&from), Some(&to)) => &self.ords[from as usize..to as usize],
            _ => &[],
        }
    }

    /// The values of `doc`.
    pub fn of(&self, doc: DocId) -> impl Iterator<Item = &str> {
        self.ords(doc)
            .iter()
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
        let max_doc = reader.max_doc() as usize;
        let mut values = FieldValues {
            names: Vec::new(),
            starts: Vec::with_capacity(max_doc + 1),
            ords: Vec::with_capacity(max_doc),
        };
        values.starts.push(0);
        match reader.fast_fields().str(field)? {
            Some(column) => {
                // One pass over the dictionary, in ordinal order: looking
                // each ordinal up decodes its block again, and for `id` (an
                // ordinal per article) that took seconds on the first search
                // of a 100k index.
                let dictionary = column.dictionary();
                values.names.reserve(dictionary.num_terms());
                let mut terms = dictionary.stream()?;
                while terms.advance() {
                    values
                        .names
                        .push(String::from_utf8_lossy(terms.key()).into_owned());
                }
                for doc in 0..max_doc {
                    values
                        .ords
                        .extend(column.term_ords(doc as DocId).map(|o| o as u32));
                    values.starts.push(values.ords.len() as u32);
                }
            }
            None => values.starts.resize(max_doc + 1, 0),
        }
        let values = Arc::new(values);
        self.fields
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, values.clone());
        Ok(values)
    }

    pub(crate) fn values(
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
            for &ord in field.ords(doc) {
                counts[ord as usize] += 1;
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
