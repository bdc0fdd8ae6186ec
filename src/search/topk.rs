//! Top-k without scoring every match.
//!
//! At 100k articles a query's words match tens of thousands of articles, and
//! scoring, boosting and counting each of them was two thirds of a search
//! (BENCHMARKS.md, issue 17). A ranking now takes three passes, each doing
//! only what it must:
//!
//! 1. **Candidates** ([`top_k`]): a flat union of term queries (every variant
//!    of every word in every field, weights folded in) under tantivy's
//!    block-max WAND, which skips blocks of postings that cannot reach the
//!    current top. What the caller may see is a bit set per segment
//!    ([`Restriction`]), checked per candidate. Context and feedback boosts
//!    multiply each candidate's score; the pruning threshold handed back to
//!    WAND is divided by the largest possible boost, so a boosted document
//!    is never skipped.
//! 2. **Re-scoring** ([`rescore`]): the full query (variants as a
//!    disjunction max, proximity, synonyms) scores only the candidates,
//!    seeking to each, so the final scores are the ones a scan of every
//!    match would give.
//! 3. **Counting** ([`count`]): matches counted (and faceted) without scores,
//!    exactly up to a bound; above it the total is a lower bound (`gte`), as
//!    Elasticsearch's `track_total_hits` does.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};

use tantivy::query::{EnableScoring, Query, Weight};
use tantivy::{BitSet, DocAddress, DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED};

use super::facets::{FacetCache, FacetFruit};
use super::query::ScoreTree;

/// The documents a request may return, one bit set per segment (by
/// ordinal), deleted documents left out.
pub struct Restriction {
    segments: Vec<BitSet>,
}

impl Restriction {
    /// Every live document `query` matches (scores are not computed).
    pub fn build(searcher: &Searcher, query: &dyn Query) -> tantivy::Result<Self> {
        let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
        let mut segments = Vec::with_capacity(searcher.segment_readers().len());
        for reader in searcher.segment_readers() {
            let mut allowed = BitSet::with_max_value(reader.max_doc());
            let alive = reader.alive_bitset();
            let mut docs = weight.scorer(reader, 1.0)?;
            let mut doc = docs.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|alive| alive.is_alive(doc)) {
                    allowed.insert(doc);
                }
                doc = docs.advance();
            }
            segments.push(allowed);
        }
        Ok(Restriction { segments })
    }

    /// Every document allowed, in index order.
    pub fn addresses(&self) -> impl Iterator<Item = DocAddress> + '_ {
        self.segments
            .iter()
            .enumerate()
            .flat_map(|(ordinal, allowed)| {
                (0..allowed.max_value())
                    .filter(|&doc| allowed.contains(doc))
                    .map(move |doc| DocAddress::new(ordinal as u32, doc))
            })
    }

    fn allows(&self, segment: usize, doc: DocId) -> bool {
        self.segments
            .get(segment)
            .is_some_and(|allowed| doc < allowed.max_value() && allowed.contains(doc))
    }
}

/// Multiplies a document's score (context and feedback boosts); one per
/// segment, built from that segment's columns.
pub type SegmentBoost = Box<dyn Fn(DocId, Score) -> Score + Send + Sync>;

/// How a request's boosts reach the passes: one [`SegmentBoost`] per segment,
/// and the largest factor any document can get (at least 1), which bounds
/// how far a boost can lift a document over the pruning threshold.
pub trait Boosting {
    fn segment(&self, reader: &SegmentReader) -> tantivy::Result<SegmentBoost>;
    fn max_factor(&self) -> Score;
}

/// No boosts (choosing sections).
pub struct Unboosted;

impl Boosting for Unboosted {
    fn segment(&self, _: &SegmentReader) -> tantivy::Result<SegmentBoost> {
        Ok(Box::new(|_, score| score))
    }

    fn max_factor(&self) -> Score {
        1.0
    }
}

/// A scored document, ordered worst first for the heap: lower score, then
/// the later address (ties keep index order, as tantivy's `TopDocs` does).
#[derive(PartialEq)]
struct Scored {
    score: Score,
    address: DocAddress,
}

impl Eq for Scored {}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.address.cmp(&self.address))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The `k` best documents `weight` matches among those `restriction`
/// allows, boosted, best first. `weight` should be a flat union of term
/// queries for WAND to prune; any other weight still works, scoring every
/// match.
pub fn top_k(
    weight: &dyn Weight,
    searcher: &Searcher,
    restriction: &Restriction,
    k: usize,
    boosting: &dyn Boosting,
) -> tantivy::Result<Vec<(Score, DocAddress)>> {
    if k == 0 {
        return Ok(Vec::new());
    }
    let max_factor = boosting.max_factor().max(1.0);
    let mut heap: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(k + 1);
    // The raw score a document needs before boosts to possibly enter the
    // heap; `f32::MIN` while it is not full.
    let threshold = |heap: &BinaryHeap<Reverse<Scored>>| match heap.peek() {
        Some(Reverse(worst)) if heap.len() >= k => worst.score / max_factor,
        _ => Score::MIN,
    };
    for (ordinal, reader) in searcher.segment_readers().iter().enumerate() {
        let boost = boosting.segment(reader)?;
        let start = threshold(&heap);
        weight.for_each_pruning(start, reader, &mut |doc, score| {
            if restriction.allows(ordinal, doc) {
                let entry = Scored {
                    score: boost(doc, score),
                    address: DocAddress::new(ordinal as u32, doc),
                };
                if heap.len() < k {
                    heap.push(Reverse(entry));
                } else if heap.peek().is_some_and(|Reverse(worst)| entry > *worst) {
                    heap.pop();
                    heap.push(Reverse(entry));
                }
            }
            threshold(&heap)
        })?;
    }
    let mut best: Vec<Scored> = heap.into_iter().map(|Reverse(s)| s).collect();
    best.sort_by(|a, b| b.cmp(a));
    Ok(best.into_iter().map(|s| (s.score, s.address)).collect())
}

/// `tree`'s boosted score for each of `candidates` it matches, best first
/// (a candidate it does not match is left out). Each leaf (a term, a
/// phrase) gets its own scorer, weighted by `weight`, which seeks from
/// candidate to candidate; the tree adds them up ([`ScoreTree::combine`]).
pub fn rescore(
    tree: &ScoreTree,
    weight: impl Fn(&dyn Query) -> tantivy::Result<Box<dyn Weight>>,
    searcher: &Searcher,
    candidates: impl IntoIterator<Item = DocAddress>,
    boosting: &dyn Boosting,
) -> tantivy::Result<Vec<(Score, DocAddress)>> {
    let mut candidates: Vec<DocAddress> = candidates.into_iter().collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    candidates.sort();
    let weights = tree
        .leaves()
        .into_iter()
        .map(|leaf| weight(&*leaf.to_query()))
        .collect::<tantivy::Result<Vec<_>>>()?;
    let mut scored = Vec::with_capacity(candidates.len());
    let mut leaf_scores: Vec<Option<Score>> = vec![None; weights.len()];
    for group in candidates.chunk_by(|a, b| a.segment_ord == b.segment_ord) {
        let ordinal = group[0].segment_ord;
        let reader = searcher.segment_reader(ordinal);
        let boost = boosting.segment(reader)?;
        let mut scorers = weights
            .iter()
            .map(|w| w.scorer(reader, 1.0))
            .collect::<tantivy::Result<Vec<_>>>()?;
        for address in group {
            let doc = address.doc_id;
            for (scorer, score) in scorers.iter_mut().zip(leaf_scores.iter_mut()) {
                if scorer.doc() < doc {
                    scorer.seek(doc);
                }
                *score = (scorer.doc() == doc).then(|| scorer.score());
            }
            if let Some(score) = tree.combine(&mut leaf_scores.iter().copied()) {
                scored.push(Scored {
                    score: boost(doc, score),
                    address: *address,
                });
            }
        }
    }
    scored.sort_by(|a, b| b.cmp(a));
    Ok(scored.into_iter().map(|s| (s.score, s.address)).collect())
}

/// How many documents matched, and whether that is exact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counted {
    pub total: usize,
    /// False when counting stopped at the bound: `total` is a lower bound.
    pub exact: bool,
    /// Per facet field, value → count, over the documents counted.
    pub facets: FacetFruit,
}

/// Counts the documents `weight` matches among those `restriction` allows,
/// up to `bound` (then one more is looked for, to know whether the count is
/// exact), and the values of `facet_fields` over them.
pub fn count(
    weight: &dyn Weight,
    searcher: &Searcher,
    restriction: &Restriction,
    bound: usize,
    facets: Option<(&FacetCache, &[&'static str])>,
) -> tantivy::Result<Counted> {
    let mut total = 0usize;
    let mut exact = true;
    let mut merged: FacetFruit = match facets {
        Some((_, fields)) => vec![BTreeMap::new(); fields.len()],
        None => Vec::new(),
    };
    'segments: for (ordinal, reader) in searcher.segment_readers().iter().enumerate() {
        let values = match facets {
            Some((cache, fields)) => Some(cache.values(reader, fields)?),
            None => None,
        };
        let mut counts: Vec<Vec<u64>> = values
            .iter()
            .flat_map(|v| v.iter())
            .map(|field| vec![0u64; field.names.len()])
            .collect();
        let mut docs = weight.scorer(reader, 1.0)?;
        let mut doc = docs.doc();
        let mut stop = false;
        while doc != TERMINATED {
            if restriction.allows(ordinal, doc) {
                if total == bound {
                    exact = false;
                    stop = true;
                    break;
                }
                total += 1;
                if let Some(values) = &values {
                    for (field, counts) in values.iter().zip(counts.iter_mut()) {
                        for &ord in field.ords(doc) {
                            counts[ord as usize] += 1;
                        }
                    }
                }
            }
            doc = docs.advance();
        }
        if let Some(values) = &values {
            for ((field, counts), into) in values.iter().zip(counts).zip(merged.iter_mut()) {
                for (ord, count) in counts.into_iter().enumerate() {
                    if count > 0 {
                        *into.entry(field.names[ord].clone()).or_default() += count;
                    }
                }
            }
        }
        if stop {
            break 'segments;
        }
    }
    Ok(Counted {
        total,
        exact,
        facets: merged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::TopDocs;
    use tantivy::query::{BooleanQuery, BoostQuery, Occur, TermQuery};
    use tantivy::schema::{IndexRecordOption, STRING, Schema, TEXT};
    use tantivy::{Index, IndexWriter, Term, doc};

    struct NoBoost;
    impl Boosting for NoBoost {
        fn segment(&self, _: &SegmentReader) -> tantivy::Result<SegmentBoost> {
            Ok(Box::new(|_, score| score))
        }
        fn max_factor(&self) -> Score {
            1.0
        }
    }

    /// Multiplies one document's score (by its `id` number).
    struct BoostOne {
        id: tantivy::schema::Field,
        doc: u64,
        factor: Score,
    }
    impl Boosting for BoostOne {
        fn segment(&self, reader: &SegmentReader) -> tantivy::Result<SegmentBoost> {
            let column = reader
                .fast_fields()
                .u64(reader.schema().get_field_name(self.id).to_string().as_str())?;
            let (wanted, factor) = (self.doc, self.factor);
            Ok(Box::new(move |doc, score| {
                if column.first(doc) == Some(wanted) {
                    score * factor
                } else {
                    score
                }
            }))
        }
        fn max_factor(&self) -> Score {
            self.factor
        }
    }

    /// Many documents over several segments, with "refund" in varying
    /// amounts in two thirds of them and "invoice" in one fifth; `kind` is
    /// "a" for even ids.
    fn corpus() -> (
        Index,
        tantivy::schema::Field,
        tantivy::schema::Field,
        tantivy::schema::Field,
    ) {
        let mut builder = Schema::builder();
        let text = builder.add_text_field("text", TEXT);
        let kind = builder.add_text_field("kind", STRING);
        let id = builder.add_u64_field("id", tantivy::schema::FAST);
        let index = Index::create_in_ram(builder.build());
        let mut writer: IndexWriter = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        for n in 0..3000u64 {
            let refunds = if n % 3 == 2 { 0 } else { n % 7 + 1 };
            let mut body = "refund ".repeat(refunds as usize);
            body.push_str(&"filler ".repeat((n % 13) as usize));
            if n % 5 == 0 {
                body.push_str(" invoice");
            }
            let k = if n % 2 == 0 { "a" } else { "b" };
            writer
                .add_document(doc!(text => body, kind => k, id => n))
                .expect("add");
            if n % 1000 == 999 {
                writer.commit().expect("commit");
            }
        }
        writer.commit().expect("commit");
        (index, text, kind, id)
    }

    fn union(text: tantivy::schema::Field) -> BooleanQuery {
        BooleanQuery::new(
            [("refund", 1.0), ("invoice", 2.0)]
                .into_iter()
                .map(|(word, boost)| {
                    let term = TermQuery::new(
                        Term::from_field_text(text, word),
                        IndexRecordOption::WithFreqs,
                    );
                    (
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(term), boost)) as Box<dyn Query>,
                    )
                })
                .collect(),
        )
    }

    fn everything(searcher: &Searcher) -> Restriction {
        Restriction::build(searcher, &tantivy::query::AllQuery).expect("restriction")
    }

    #[test]
    fn pruned_top_k_equals_scoring_every_match() {
        let (index, text, _, _) = corpus();
        let searcher = index.reader().expect("reader").searcher();
        assert!(searcher.segment_readers().len() > 1, "several segments");
        let query = union(text);
        let weight = query
            .weight(EnableScoring::enabled_from_searcher(&searcher))
            .expect("weight");
        let pruned = top_k(&*weight, &searcher, &everything(&searcher), 25, &NoBoost).expect("top");
        let full = searcher
            .search(&query, &TopDocs::with_limit(25).order_by_score())
            .expect("search");
        let scores = |hits: &[(Score, DocAddress)]| hits.iter().map(|h| h.0).collect::<Vec<_>>();
        assert_eq!(scores(&pruned), scores(&full));
    }

    #[test]
    fn a_boosted_document_far_down_still_wins() {
        let (index, text, _, id) = corpus();
        let searcher = index.reader().expect("reader").searcher();
        let query = union(text);
        let weight = query
            .weight(EnableScoring::enabled_from_searcher(&searcher))
            .expect("weight");
        // Document 1: two "refund", no invoice: below every invoice.
        let plain =
            top_k(&*weight, &searcher, &everything(&searcher), 3000, &NoBoost).expect("all");
        let position = plain
            .iter()
            .position(|(_, a)| {
                searcher
                    .segment_reader(a.segment_ord)
                    .fast_fields()
                    .u64("id")
                    .expect("col")
                    .first(a.doc_id)
                    == Some(1)
            })
            .expect("document 1 matches");
        assert!(position > 500, "document 1 starts far down: {position}");
        let boost = BoostOne {
            id,
            doc: 1,
            factor: 50.0,
        };
        let top = top_k(&*weight, &searcher, &everything(&searcher), 3, &boost).expect("top");
        let first = top[0].1;
        let first_id = searcher
            .segment_reader(first.segment_ord)
            .fast_fields()
            .u64("id")
            .expect("column")
            .first(first.doc_id);
        assert_eq!(first_id, Some(1));
        // The same ranking as re-scoring every match with the boost.
        let tree = ScoreTree::Sum(vec![
            ScoreTree::term(text, "refund"),
            ScoreTree::term(text, "invoice").boosted(2.0),
        ]);
        let all = rescore(
            &tree,
            |q| q.weight(EnableScoring::enabled_from_searcher(&searcher)),
            &searcher,
            plain.iter().map(|(_, a)| *a),
            &boost,
        )
        .expect("rescore");
        assert_eq!(top.len(), 3);
        for ((a, x), (b, y)) in top.iter().zip(&all) {
            assert_eq!(x, y);
            assert!((a - b).abs() <= 1e-4 * a.abs(), "{a} vs {b}");
        }
    }

    #[test]
    fn a_tree_scores_each_document_as_its_query_does() {
        let (index, text, kind, _) = corpus();
        let searcher = index.reader().expect("reader").searcher();
        let tree = ScoreTree::All(vec![
            ScoreTree::Term(Term::from_field_text(kind, "a"), IndexRecordOption::Basic),
            ScoreTree::Sum(vec![
                ScoreTree::Max(vec![
                    ScoreTree::term(text, "refund"),
                    ScoreTree::term(text, "invoice").boosted(0.5),
                ])
                .boosted(2.0),
                ScoreTree::Phrase(
                    vec![
                        (0, Term::from_field_text(text, "refund")),
                        (1, Term::from_field_text(text, "invoice")),
                    ],
                    2,
                )
                .boosted(3.0),
                ScoreTree::term(text, "filler").boosted(0.7),
            ]),
        ]);
        let enable = || EnableScoring::enabled_from_searcher(&searcher);
        let expected = searcher
            .search(
                &*tree.to_query(),
                &TopDocs::with_limit(5000).order_by_score(),
            )
            .expect("search");
        assert!(expected.len() > 1000, "{}", expected.len());
        // Every document, matching or not: the tree must tell them apart.
        let every = (0..searcher.segment_readers().len() as u32).flat_map(|s| {
            (0..searcher.segment_reader(s).max_doc()).map(move |d| DocAddress::new(s, d))
        });
        let scored =
            rescore(&tree, |q| q.weight(enable()), &searcher, every, &NoBoost).expect("rescore");
        assert_eq!(scored.len(), expected.len());
        let expected: std::collections::HashMap<DocAddress, Score> =
            expected.into_iter().map(|(s, a)| (a, s)).collect();
        for (score, address) in scored {
            let want = expected[&address];
            assert!(
                (score - want).abs() <= 1e-4 * want.abs(),
                "{address:?}: {score} vs {want}"
            );
        }
    }

    #[test]
    fn restriction_and_count_agree_and_the_bound_makes_a_lower_bound() {
        let (index, text, kind, _) = corpus();
        let searcher = index.reader().expect("reader").searcher();
        let only_a = Restriction::build(
            &searcher,
            &TermQuery::new(Term::from_field_text(kind, "a"), IndexRecordOption::Basic),
        )
        .expect("restriction");
        let invoice = TermQuery::new(
            Term::from_field_text(text, "invoice"),
            IndexRecordOption::Basic,
        );
        let weight = invoice
            .weight(EnableScoring::disabled_from_searcher(&searcher))
            .expect("weight");
        // Multiples of 10 below 3000: 300 documents.
        let exact = count(&*weight, &searcher, &only_a, 10_000, None).expect("count");
        assert_eq!((exact.total, exact.exact), (300, true));
        let at = count(&*weight, &searcher, &only_a, 300, None).expect("count");
        assert_eq!((at.total, at.exact), (300, true));
        let bounded = count(&*weight, &searcher, &only_a, 120, None).expect("count");
        assert_eq!((bounded.total, bounded.exact), (120, false));
        let scored = invoice
            .weight(EnableScoring::enabled_from_searcher(&searcher))
            .expect("weight");
        let top = top_k(&*scored, &searcher, &only_a, 1000, &NoBoost).expect("top");
        assert_eq!(top.len(), 300, "the restriction applies to candidates too");
    }
}
