//! The best section of every hit on a page, in one query.
//!
//! One section query per hit (ten per page) cost more than the ranking query
//! itself: each builds the plan's weights (term lookups for every typo and
//! prefix variant) again. One query over the sections of all the page's
//! articles scores each section exactly as before (the article's path term
//! contributes the same constant to all its sections), and this collector
//! keeps the best per article, ties going to the lower document address as
//! with `TopDocs`.

use std::collections::HashMap;
use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use super::facets::{FacetCache, FieldValues};

/// Best (score, address) per page position.
pub type Best = Vec<Option<(Score, DocAddress)>>;

pub struct BestSections {
    cache: Arc<FacetCache>,
    /// Article id → position on the page.
    positions: Arc<HashMap<String, usize>>,
}

impl BestSections {
    pub fn new(cache: Arc<FacetCache>, ids: impl IntoIterator<Item = String>) -> Self {
        let positions = ids.into_iter().enumerate().map(|(i, id)| (id, i)).collect();
        BestSections {
            cache,
            positions: Arc::new(positions),
        }
    }
}

fn better(candidate: (Score, DocAddress), current: Option<(Score, DocAddress)>) -> bool {
    match current {
        None => true,
        Some((score, address)) => {
            candidate.0 > score || (candidate.0 == score && candidate.1 < address)
        }
    }
}

pub struct SegmentBestSections {
    segment: SegmentOrdinal,
    ids: Arc<FieldValues>,
    positions: Arc<HashMap<String, usize>>,
    best: Best,
}

impl Collector for BestSections {
    type Fruit = Best;
    type Child = SegmentBestSections;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentBestSections> {
        Ok(SegmentBestSections {
            segment,
            ids: self.cache.field(reader, "id")?,
            positions: self.positions.clone(),
            best: vec![None; self.positions.len()],
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Best>) -> tantivy::Result<Best> {
        let mut merged: Best = vec![None; self.positions.len()];
        for fruit in fruits {
            for (into, from) in merged.iter_mut().zip(fruit) {
                if let Some(candidate) = from
                    && better(candidate, *into)
                {
                    *into = Some(candidate);
                }
            }
        }
        Ok(merged)
    }
}

impl SegmentCollector for SegmentBestSections {
    type Fruit = Best;

    fn collect(&mut self, doc: DocId, score: Score) {
        let Some(&position) = self
            .ids
            .of(doc)
            .next()
            .and_then(|id| self.positions.get(id))
        else {
            return;
        };
        let candidate = (score, DocAddress::new(self.segment, doc));
        if better(candidate, self.best[position]) {
            self.best[position] = Some(candidate);
        }
    }

    fn harvest(self) -> Best {
        self.best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_score_wins_and_ties_go_to_the_lower_address() {
        let at = |segment, doc| DocAddress::new(segment, doc);
        assert!(better((1.0, at(0, 5)), None));
        assert!(better((2.0, at(1, 9)), Some((1.0, at(0, 1)))));
        assert!(!better((1.0, at(1, 0)), Some((2.0, at(0, 1)))));
        assert!(better((1.0, at(0, 1)), Some((1.0, at(0, 2)))));
        assert!(!better((1.0, at(1, 0)), Some((1.0, at(0, 9)))));
    }
}
