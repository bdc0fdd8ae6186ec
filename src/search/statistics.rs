//! BM25 statistics from the documents a caller may see.
//!
//! BM25 weighs a term by how many documents hold it, and a field's length by
//! the average length of that field. tantivy counts every document, internal
//! articles and their sections included, so an anonymous caller's scores
//! would move when internal articles use a word: a side channel telling
//! whether internal articles mention it. Anonymous searches are therefore
//! scored, and their queries planned (typo and prefix expansions, stop words,
//! IDFs), with [`PublicStatistics`]: tantivy's numbers over the public
//! documents only. Agents keep tantivy's own ([`Statistics::Everything`]).
//!
//! The counting follows tantivy's conventions so that, with no internal
//! document, every number is tantivy's own, bit for bit: a deleted document
//! counts in document frequencies, token totals and the document total until
//! a merge purges it, as in tantivy (`doc_freq` reads the term dictionary,
//! `total_num_docs` is `max_doc`). That is the one way internal articles can
//! still touch anonymous statistics: they change when a deleted public
//! document is purged (a segment is dropped once all its documents are
//! deleted, and merges follow commits), and what lingers is old public text,
//! never an internal word.
//!
//! Exactness: a segment with no internal document uses tantivy's figures as
//! they are; a segment with none public contributes nothing. Only a segment
//! holding both (after a merge, or a batch that indexed both) needs counting:
//! document frequencies exactly, by walking the term's postings; token totals
//! from the public documents' field norms, which tantivy quantizes above 40
//! tokens (so a long field counts within a few percent of its length; tantivy
//! itself estimates merged segments' totals this way).
//!
//! Cost: which documents are public is read once per segment (segments never
//! change); totals once per searcher generation; document frequencies are
//! cached per generation, bounded. A help center without internal articles
//! pays one cache look-up per query and gets tantivy's statistics themselves.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tantivy::collector::Collector;
use tantivy::index::{InvertedIndexReader, SegmentId};
use tantivy::postings::{Postings, TermInfo};
use tantivy::query::{Bm25StatisticsProvider, Query};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocSet, Opstamp, Searcher, SegmentReader, TERMINATED, TantivyError, Term};

use crate::article::Audience;

/// Articles' and sections' text fields, scored with their joint statistics
/// ([`Joint`]).
const JOINT_TEXT: [(&str, &str); 2] = [("headings", "section_headings"), ("body", "section_body")];

/// Scores an article's headings and body, and a section's, with the
/// statistics of both kinds together: how rare a word is and how long a
/// text is, whichever document holds it. Until schema 10 both kinds shared
/// these fields, and the ranking was measured and tuned on those joint
/// statistics (`rapport eval`: without them MRR@10 fell by 0.022 on
/// covidfaq); the fields were split only so that an article query never
/// walks section postings.
pub struct Joint<'p> {
    inner: &'p dyn Bm25StatisticsProvider,
    pairs: Vec<(Field, Field)>,
    cache: Option<(&'p DocFreqCache, u64, bool)>,
}

/// Joint document frequencies of one searcher generation, per audience:
/// every query builds weights for dozens of terms (candidates, re-scoring,
/// sections), and each lookup walked every segment's term dictionary twice
/// (7 % of a search at 100k articles). Customers' words repeat.
#[derive(Default)]
pub struct DocFreqCache {
    inner: Mutex<DocFreqs>,
}

#[derive(Default)]
struct DocFreqs {
    generation: u64,
    terms: HashMap<(bool, Term), u64>,
}

impl<'p> Joint<'p> {
    pub fn new(inner: &'p dyn Bm25StatisticsProvider, searcher: &Searcher) -> Self {
        let schema = searcher.schema();
        let pairs = JOINT_TEXT
            .iter()
            .filter_map(|(a, b)| Some((schema.get_field(a).ok()?, schema.get_field(b).ok()?)))
            .collect();
        Joint {
            inner,
            pairs,
            cache: None,
        }
    }

    /// Remembers document frequencies in `cache` for `searcher`'s
    /// generation; `public_only` tells the audiences' statistics apart.
    pub fn cached(
        mut self,
        cache: &'p DocFreqCache,
        searcher: &Searcher,
        public_only: bool,
    ) -> Self {
        self.cache = Some((cache, searcher.generation().generation_id(), public_only));
        self
    }

    fn joint_doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let own = self.inner.doc_freq(term)?;
        let partner = self
            .partner(term.field())
            .zip(term.value().as_str())
            .map(|(partner, text)| Term::from_field_text(partner, text));
        match partner {
            Some(partner) => Ok(own + self.inner.doc_freq(&partner)?),
            None => Ok(own),
        }
    }

    /// The field whose statistics join `field`'s, if any.
    fn partner(&self, field: Field) -> Option<Field> {
        self.pairs.iter().find_map(|&(a, b)| {
            if a == field {
                Some(b)
            } else if b == field {
                Some(a)
            } else {
                None
            }
        })
    }
}

impl Bm25StatisticsProvider for Joint<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        let own = self.inner.total_num_tokens(field)?;
        match self.partner(field) {
            Some(partner) => Ok(own + self.inner.total_num_tokens(partner)?),
            None => Ok(own),
        }
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        self.inner.total_num_docs()
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let Some((cache, generation, public_only)) = self.cache else {
            return self.joint_doc_freq(term);
        };
        let key = (public_only, term.clone());
        {
            let cached = lock(&cache.inner);
            if cached.generation == generation
                && let Some(&found) = cached.terms.get(&key)
            {
                return Ok(found);
            }
        }
        let found = self.joint_doc_freq(term)?;
        let mut cached = lock(&cache.inner);
        if cached.generation != generation || cached.terms.len() >= MAX_CACHED_DOC_FREQS {
            cached.generation = generation;
            cached.terms.clear();
        }
        cached.terms.insert(key, found);
        Ok(found)
    }
}

/// Past this many remembered document frequencies the cache starts over.
/// Queries expand to many terms (five fields times every typo, prefix and
/// synonym variant), but customers' words repeat.
const MAX_CACHED_DOC_FREQS: usize = 100_000;

/// The term statistics one caller's queries are planned and scored with.
pub enum Statistics<'s> {
    /// tantivy's own, over every document: agents, or an index without
    /// internal documents (where the public statistics are the same).
    Everything(&'s Searcher),
    /// Over the public documents only: anonymous callers.
    Public(PublicStatistics<'s>),
}

impl<'s> Statistics<'s> {
    pub fn everything(searcher: &'s Searcher) -> Self {
        Statistics::Everything(searcher)
    }

    pub fn searcher(&self) -> &'s Searcher {
        match self {
            Statistics::Everything(searcher) => searcher,
            Statistics::Public(public) => public.searcher,
        }
    }

    /// `query`'s weight, scored with these statistics (as
    /// [`Self::search`] scores).
    pub fn weight(
        &self,
        query: &dyn Query,
        cache: &DocFreqCache,
    ) -> tantivy::Result<Box<dyn tantivy::query::Weight>> {
        let joint = Joint::new(self.provider(), self.searcher()).cached(
            cache,
            self.searcher(),
            self.is_public_only(),
        );
        query.weight(
            tantivy::query::EnableScoring::enabled_from_statistics_provider(
                &joint,
                self.searcher(),
            ),
        )
    }

    /// The joint document frequency of `term`, remembered in `cache`.
    pub fn cached_doc_freq(&self, term: &Term, cache: &DocFreqCache) -> tantivy::Result<u64> {
        Joint::new(self.provider(), self.searcher())
            .cached(cache, self.searcher(), self.is_public_only())
            .doc_freq(term)
    }

    /// Whether internal documents are left out (expansion caches key on it).
    pub fn is_public_only(&self) -> bool {
        matches!(self, Statistics::Public(_))
    }

    pub fn provider(&self) -> &dyn Bm25StatisticsProvider {
        match self {
            Statistics::Everything(searcher) => *searcher,
            Statistics::Public(public) => public,
        }
    }

    /// Runs `query`, scoring it with these statistics.
    pub fn search<C: Collector>(
        &self,
        query: &dyn Query,
        collector: &C,
    ) -> tantivy::Result<C::Fruit> {
        let joint = Joint::new(self.provider(), self.searcher());
        self.searcher()
            .search_with_statistics_provider(query, collector, &joint)
    }

    /// Documents holding `term`.
    pub fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        self.provider().doc_freq(term)
    }

    /// Documents not deleted (the query planner's IDF base).
    pub fn alive_docs(&self) -> u64 {
        match self {
            Statistics::Everything(searcher) => searcher
                .segment_readers()
                .iter()
                .map(|s| u64::from(s.num_docs()))
                .sum(),
            Statistics::Public(public) => public.generation.public_alive_docs,
        }
    }

    /// Whether segment `ord` holds any document counted here (walking the
    /// term dictionary of one that doesn't would only find nothing).
    pub fn counts_segment(&self, ord: usize) -> bool {
        match self {
            Statistics::Everything(_) => true,
            Statistics::Public(public) => public
                .segments
                .get(ord)
                .is_some_and(|s| !matches!(s.kind(), SegmentKind::Internal)),
        }
    }

    /// Documents of segment `ord` holding the term `info` describes (found
    /// while streaming `inverted`'s term dictionary); 0 if unreadable.
    pub fn segment_doc_freq(
        &self,
        ord: usize,
        inverted: &InvertedIndexReader,
        info: &TermInfo,
    ) -> u64 {
        let Statistics::Public(public) = self else {
            return u64::from(info.doc_freq);
        };
        let Some(segment) = public.segments.get(ord) else {
            return 0;
        };
        match segment.kind() {
            SegmentKind::Public => u64::from(info.doc_freq),
            SegmentKind::Internal => 0,
            SegmentKind::Mixed(public) => public_doc_freq(inverted, info, public).unwrap_or(0),
        }
    }
}

#[derive(Clone, Copy)]
enum SegmentKind<'a> {
    /// Every document is public: tantivy's figures apply as they are.
    Public,
    /// No document is public.
    Internal,
    /// Both; the public documents.
    Mixed(&'a BitSet),
}

/// Which documents of one segment are public. A segment never changes
/// (deletions aside, which these counts ignore as tantivy's do), so this is
/// read once per segment, not per reload.
struct SegmentAudience {
    /// `None` when every document is public.
    public: Option<BitSet>,
    /// Public documents, deleted ones included.
    public_docs: u32,
    /// Public tokens per field, for mixed segments; filled on first use.
    tokens: Mutex<HashMap<Field, u64>>,
}

impl SegmentAudience {
    fn read(reader: &SegmentReader, audience: Field) -> tantivy::Result<Self> {
        let max_doc = reader.max_doc();
        let mut public = BitSet::with_max_value(max_doc);
        let mut public_docs = 0;
        let term = Term::from_field_text(audience, Audience::Public.as_str());
        if let Some(mut postings) = reader
            .inverted_index(audience)?
            .read_postings(&term, IndexRecordOption::Basic)?
        {
            let mut doc = postings.doc();
            while doc != TERMINATED {
                public.insert(doc);
                public_docs += 1;
                doc = postings.advance();
            }
        }
        Ok(SegmentAudience {
            public: (public_docs < max_doc).then_some(public),
            public_docs,
            tokens: Mutex::default(),
        })
    }

    fn kind(&self) -> SegmentKind<'_> {
        match &self.public {
            None => SegmentKind::Public,
            Some(_) if self.public_docs == 0 => SegmentKind::Internal,
            Some(public) => SegmentKind::Mixed(public),
        }
    }

    /// Public documents not deleted in `reader` (this segment, as of its
    /// current deletes).
    fn public_alive_docs(&self, reader: &SegmentReader) -> u64 {
        match (self.kind(), reader.alive_bitset()) {
            (SegmentKind::Public, _) => u64::from(reader.num_docs()),
            (SegmentKind::Internal, _) => 0,
            (SegmentKind::Mixed(_), None) => u64::from(self.public_docs),
            (SegmentKind::Mixed(public), Some(alive)) => (0..reader.max_doc())
                .filter(|&doc| public.contains(doc) && alive.is_alive(doc))
                .count() as u64,
        }
    }

    /// Tokens of `field` in this segment's public documents.
    fn public_tokens(&self, reader: &SegmentReader, field: Field) -> tantivy::Result<u64> {
        let public = match self.kind() {
            SegmentKind::Public => return Ok(reader.inverted_index(field)?.total_num_tokens()),
            SegmentKind::Internal => return Ok(0),
            SegmentKind::Mixed(public) => public,
        };
        if let Some(&tokens) = lock(&self.tokens).get(&field) {
            return Ok(tokens);
        }
        let tokens = match reader.fieldnorms_readers().get_field(field)? {
            Some(norms) => (0..reader.max_doc())
                .filter(|&doc| public.contains(doc))
                .map(|doc| u64::from(norms.fieldnorm(doc)))
                .sum(),
            None => counted_tokens(&*reader.inverted_index(field)?, public)?,
        };
        lock(&self.tokens).insert(field, tokens);
        Ok(tokens)
    }
}

/// A field without norms: its public tokens counted from the postings (every
/// occurrence of every term), as tantivy counts them when writing a segment.
fn counted_tokens(inverted: &InvertedIndexReader, public: &BitSet) -> tantivy::Result<u64> {
    let mut tokens = 0;
    let mut terms = inverted.terms().stream()?;
    while terms.advance() {
        let mut postings =
            inverted.read_postings_from_terminfo(terms.value(), IndexRecordOption::WithFreqs)?;
        let mut doc = postings.doc();
        while doc != TERMINATED {
            if public.contains(doc) {
                tokens += u64::from(postings.term_freq());
            }
            doc = postings.advance();
        }
    }
    Ok(tokens)
}

/// Documents in `public` holding the term `info` describes, deleted ones
/// included (as the term dictionary's document frequency counts them).
fn public_doc_freq(
    inverted: &InvertedIndexReader,
    info: &TermInfo,
    public: &BitSet,
) -> tantivy::Result<u64> {
    let mut postings = inverted.read_postings_from_terminfo(info, IndexRecordOption::Basic)?;
    let mut count = 0;
    let mut doc = postings.doc();
    while doc != TERMINATED {
        if public.contains(doc) {
            count += 1;
        }
        doc = postings.advance();
    }
    Ok(count)
}

/// What every anonymous query of one searcher generation shares.
struct Generation {
    id: u64,
    /// The generation's segments and their deletes: equal maps, equal counts.
    segments: BTreeMap<SegmentId, Option<Opstamp>>,
    audiences: HashMap<SegmentId, Arc<SegmentAudience>>,
    has_internal: bool,
    /// Public documents, deleted ones included (tantivy's `max_doc` convention).
    public_docs: u64,
    public_alive_docs: u64,
    doc_freqs: Mutex<HashMap<Term, u64>>,
}

/// The per-segment and per-generation caches behind [`PublicStatistics`],
/// shared by every query of a [`super::SearchEngine`].
#[derive(Default)]
pub struct AudienceStatistics {
    segments: Mutex<HashMap<SegmentId, Arc<SegmentAudience>>>,
    current: Mutex<Option<Arc<Generation>>>,
}

impl AudienceStatistics {
    /// The statistics of what an anonymous caller may see in `searcher`,
    /// `audience` being the field that says who may read a document.
    pub fn public<'s>(
        &self,
        searcher: &'s Searcher,
        audience: Field,
    ) -> tantivy::Result<Statistics<'s>> {
        let generation = self.generation(searcher, audience)?;
        if !generation.has_internal {
            return Ok(Statistics::Everything(searcher));
        }
        PublicStatistics::new(searcher, generation).map(Statistics::Public)
    }

    /// Like [`Self::public`], but never tantivy's own statistics (tests
    /// compare the two).
    #[cfg(test)]
    fn always_counted<'s>(
        &self,
        searcher: &'s Searcher,
        audience: Field,
    ) -> tantivy::Result<PublicStatistics<'s>> {
        PublicStatistics::new(searcher, self.generation(searcher, audience)?)
    }

    fn generation(&self, searcher: &Searcher, audience: Field) -> tantivy::Result<Arc<Generation>> {
        let segments = searcher.generation().segments();
        if let Some(current) = lock(&self.current).as_ref()
            && current.segments == *segments
        {
            return Ok(current.clone());
        }
        let mut audiences = HashMap::with_capacity(segments.len());
        let (mut public_docs, mut public_alive_docs, mut has_internal) = (0, 0, false);
        for reader in searcher.segment_readers() {
            let id = reader.segment_id();
            let cached = lock(&self.segments).get(&id).cloned();
            let segment = match cached {
                Some(segment) => segment,
                None => {
                    let segment = Arc::new(SegmentAudience::read(reader, audience)?);
                    lock(&self.segments).insert(id, segment.clone());
                    segment
                }
            };
            has_internal |= !matches!(segment.kind(), SegmentKind::Public);
            public_docs += u64::from(segment.public_docs);
            public_alive_docs += segment.public_alive_docs(reader);
            audiences.insert(id, segment);
        }
        let generation = Arc::new(Generation {
            id: searcher.generation().generation_id(),
            segments: segments.clone(),
            audiences,
            has_internal,
            public_docs,
            public_alive_docs,
            doc_freqs: Mutex::default(),
        });
        let mut current = lock(&self.current);
        if current.as_ref().is_none_or(|c| c.id <= generation.id) {
            // Segments merged away since are never searched again.
            lock(&self.segments).retain(|id, _| generation.segments.contains_key(id));
            *current = Some(generation.clone());
        }
        Ok(generation)
    }
}

/// tantivy's BM25 statistics over the public documents of one searcher.
pub struct PublicStatistics<'s> {
    searcher: &'s Searcher,
    generation: Arc<Generation>,
    /// In the order of `searcher.segment_readers()`.
    segments: Vec<Arc<SegmentAudience>>,
}

impl<'s> PublicStatistics<'s> {
    fn new(searcher: &'s Searcher, generation: Arc<Generation>) -> tantivy::Result<Self> {
        let segments = searcher
            .segment_readers()
            .iter()
            .map(|reader| {
                generation
                    .audiences
                    .get(&reader.segment_id())
                    .cloned()
                    .ok_or_else(|| {
                        TantivyError::InternalError(format!(
                            "no audience read for segment {}",
                            reader.segment_id().uuid_string()
                        ))
                    })
            })
            .collect::<tantivy::Result<_>>()?;
        Ok(PublicStatistics {
            searcher,
            generation,
            segments,
        })
    }

    fn segments(&self) -> impl Iterator<Item = (&SegmentReader, &SegmentAudience)> {
        self.searcher
            .segment_readers()
            .iter()
            .zip(self.segments.iter().map(Arc::as_ref))
    }

    fn count_doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let mut total = 0;
        for (reader, segment) in self.segments() {
            total += match segment.kind() {
                SegmentKind::Internal => 0,
                SegmentKind::Public => {
                    u64::from(reader.inverted_index(term.field())?.doc_freq(term)?)
                }
                SegmentKind::Mixed(public) => {
                    let inverted = reader.inverted_index(term.field())?;
                    match inverted.get_term_info(term)? {
                        Some(info) => public_doc_freq(&inverted, &info, public)?,
                        None => 0,
                    }
                }
            };
        }
        Ok(total)
    }
}

impl Bm25StatisticsProvider for PublicStatistics<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        let mut total = 0;
        for (reader, segment) in self.segments() {
            total += segment.public_tokens(reader, field)?;
        }
        Ok(total)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.generation.public_docs)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        if let Some(&found) = lock(&self.generation.doc_freqs).get(term) {
            return Ok(found);
        }
        let found = self.count_doc_freq(term)?;
        let mut cache = lock(&self.generation.doc_freqs);
        if cache.len() >= MAX_CACHED_DOC_FREQS {
            cache.clear();
        }
        cache.insert(term.clone(), found);
        Ok(found)
    }
}

/// Caches stay usable after a panic elsewhere: every value is complete.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use tantivy::collector::TopDocs;
    use tantivy::query::{BooleanQuery, Occur, TermQuery};
    use tantivy::schema::{STRING, Schema, TEXT, TextFieldIndexing, TextOptions, Value};

    use super::*;
    use crate::search::query::{PlanOptions, QueryPlan, RankingWeights};
    use crate::search::synonyms::Synonyms;
    use crate::search::testing::{
        PLAYBOOK, QUERIES, REFUNDS, TestIndex, add, help_center as corpus,
    };

    fn indexed_fields(searcher: &Searcher) -> Vec<Field> {
        searcher
            .schema()
            .fields()
            .filter(|(_, entry)| entry.is_indexed())
            .map(|(field, _)| field)
            .collect()
    }

    /// Every term of every indexed field of `searcher`'s segments.
    fn all_terms(searcher: &Searcher) -> Vec<Term> {
        let mut terms = std::collections::BTreeSet::new();
        for field in indexed_fields(searcher) {
            for segment in searcher.segment_readers() {
                let inverted = segment.inverted_index(field).expect("inverted index");
                let mut stream = inverted.terms().stream().expect("terms");
                while stream.advance() {
                    terms.insert(Term::from_field_bytes(field, stream.key()));
                }
            }
        }
        terms.into_iter().collect()
    }

    fn plan(statistics: &Statistics<'_>, vocabulary: Field, text: &str) -> QueryPlan {
        let synonyms = Synonyms::default();
        QueryPlan::build(
            text,
            statistics,
            &PlanOptions {
                prefix_last_word: true,
                min_prefix_len: 2,
                synonyms: &synonyms,
                vocabulary,
                weights: RankingWeights::default(),
                expansions: None,
            },
        )
    }

    /// A word's stem and IDF bits, and its variants' stems and weight bits.
    type WordSummary = (String, u32, Vec<(String, u32)>);

    /// What a plan says about each word: its IDF and weighted variants.
    fn plan_summary(plan: &QueryPlan) -> Vec<WordSummary> {
        plan.words
            .iter()
            .map(|w| {
                let variants = w
                    .variants
                    .iter()
                    .map(|v| (v.stem.clone(), v.weight.to_bits()))
                    .collect();
                (w.stem.clone(), w.idf.to_bits(), variants)
            })
            .collect()
    }

    /// (article id, score bits) of the public articles matching `text`,
    /// planned and scored with `statistics`.
    fn public_scores(
        index: &TestIndex,
        statistics: &Statistics<'_>,
        text: &str,
    ) -> Vec<(String, u32)> {
        let f = &index.kb.fields;
        let plan = plan(statistics, f.vocabulary, text);
        let scoring = plan.scoring_query(
            &[(f.title, 3.0), (f.headings, 2.0), (f.body, 1.5)],
            &[(f.title, 1.5), (f.body, 1.0)],
        );
        let query = BooleanQuery::new(vec![
            (Occur::Must, term_query(f.kind, "article")),
            (Occur::Must, term_query(f.audience, "public")),
            (Occur::Must, scoring),
        ]);
        let searcher = statistics.searcher();
        let top = statistics
            .search(&query, &TopDocs::with_limit(10).order_by_score())
            .expect("search");
        let mut scores: Vec<(String, u32)> = top
            .into_iter()
            .map(|(score, address)| {
                let doc: tantivy::TantivyDocument = searcher.doc(address).expect("doc");
                let id = doc
                    .get_first(f.id)
                    .and_then(|v| v.as_str())
                    .expect("an id")
                    .to_string();
                (id, score.to_bits())
            })
            .collect();
        scores.sort();
        scores
    }

    fn term_query(field: Field, text: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, text),
            IndexRecordOption::Basic,
        ))
    }

    fn assert_same_numbers(
        expected: &dyn Bm25StatisticsProvider,
        actual: &dyn Bm25StatisticsProvider,
        fields: &[Field],
        terms: &[Term],
    ) {
        assert_eq!(
            actual.total_num_docs().expect("docs"),
            expected.total_num_docs().expect("docs")
        );
        for &field in fields {
            assert_eq!(
                actual.total_num_tokens(field).expect("tokens"),
                expected.total_num_tokens(field).expect("tokens"),
                "tokens of field {field:?}"
            );
        }
        for term in terms {
            assert_eq!(
                actual.doc_freq(term).expect("df"),
                expected.doc_freq(term).expect("df"),
                "doc_freq of {term:?}"
            );
        }
    }

    #[test]
    fn counted_statistics_are_tantivys_own_when_every_document_is_public() {
        let index = corpus(false);
        let searcher = index.searcher();
        assert!(
            searcher.segment_readers().iter().any(|s| s.has_deletes()),
            "the corpus holds deleted documents"
        );
        let cache = AudienceStatistics::default();
        let counted = cache
            .always_counted(&searcher, index.kb.fields.audience)
            .expect("statistics");
        assert_same_numbers(
            &searcher,
            &counted,
            &indexed_fields(&searcher),
            &all_terms(&searcher),
        );
        let absent = Term::from_field_text(index.kb.fields.body, "zebracorn");
        assert_eq!(counted.doc_freq(&absent).expect("df"), 0);

        let counted = Statistics::Public(counted);
        let tantivy = Statistics::everything(&searcher);
        assert_eq!(counted.alive_docs(), tantivy.alive_docs());
        for text in QUERIES {
            let vocabulary = index.kb.fields.vocabulary;
            assert_eq!(
                plan_summary(&plan(&counted, vocabulary, text)),
                plan_summary(&plan(&tantivy, vocabulary, text)),
                "plan of {text:?}"
            );
            let scores = public_scores(&index, &tantivy, text);
            assert!(!scores.is_empty(), "{text:?} matches");
            assert_eq!(public_scores(&index, &counted, text), scores, "{text:?}");
        }
        // And the engine uses tantivy's own statistics outright.
        assert!(
            !cache
                .public(&searcher, index.kb.fields.audience)
                .expect("statistics")
                .is_public_only()
        );
    }

    #[test]
    fn internal_documents_leave_the_public_statistics_unchanged() {
        let public = corpus(false);
        let mixed = corpus(true);
        let (public_searcher, mixed_searcher) = (public.searcher(), mixed.searcher());
        let cache = AudienceStatistics::default();
        let counted = cache
            .public(&mixed_searcher, mixed.kb.fields.audience)
            .expect("statistics");
        assert!(counted.is_public_only(), "internal documents exist");
        let tantivy = Statistics::everything(&public_searcher);
        // Short fields: their norms are exact, so even the mixed segment's
        // token totals are.
        assert_same_numbers(
            &public_searcher,
            counted.provider(),
            &indexed_fields(&public_searcher),
            &all_terms(&public_searcher),
        );
        let public_terms = all_terms(&public_searcher);
        for term in all_terms(&mixed_searcher) {
            if !public_terms.contains(&term) {
                assert_eq!(counted.doc_freq(&term).expect("df"), 0, "{term:?}");
            }
        }
        assert_eq!(counted.alive_docs(), tantivy.alive_docs());

        let vocabulary = public.kb.fields.vocabulary;
        let agent = Statistics::everything(&mixed_searcher);
        let mut agent_differs = false;
        for text in QUERIES {
            assert_eq!(
                plan_summary(&plan(&counted, vocabulary, text)),
                plan_summary(&plan(&tantivy, vocabulary, text)),
                "plan of {text:?}"
            );
            let scores = public_scores(&public, &tantivy, text);
            assert_eq!(public_scores(&mixed, &counted, text), scores, "{text:?}");
            agent_differs |= public_scores(&mixed, &agent, text) != scores;
        }
        assert!(agent_differs, "tantivy's statistics would have leaked");
    }

    #[test]
    fn mixed_segments_count_long_fields_from_their_norms() {
        let mut index = TestIndex::new();
        let long = "refund ".repeat(100);
        index.add("a.md", "public", "Long", &long);
        index.add("b.md", "internal", "Other", &"invoice ".repeat(30));
        index.commit();
        let searcher = index.searcher();
        let statistics = AudienceStatistics::default()
            .always_counted(&searcher, index.kb.fields.audience)
            .expect("statistics");
        // The article document's body and its section's, 100 tokens each:
        // 100 is stored as 96, the nearest norm at or below.
        let body = statistics
            .total_num_tokens(index.kb.fields.body)
            .expect("tokens");
        assert_eq!(body, 96);
        let section_body = statistics
            .total_num_tokens(index.kb.fields.section_body)
            .expect("tokens");
        assert_eq!(section_body, 96);
    }

    #[test]
    fn fields_without_norms_count_their_postings() {
        let mut builder = Schema::builder();
        let audience = builder.add_text_field("audience", STRING);
        let text = builder.add_text_field(
            "text",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_fieldnorms(false)
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        );
        let normed = builder.add_text_field("normed", TEXT);
        let index = tantivy::Index::create_in_ram(builder.build());
        let mut writer: tantivy::IndexWriter = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        for (who, words) in [
            ("public", "a b b c"),
            ("internal", "a a a"),
            ("public", "c"),
        ] {
            writer
                .add_document(tantivy::doc!(audience => who, text => words, normed => words))
                .expect("add");
        }
        writer.commit().expect("commit");
        let reader = index.reader().expect("reader");
        let searcher = reader.searcher();
        let statistics = AudienceStatistics::default()
            .always_counted(&searcher, audience)
            .expect("statistics");
        assert_eq!(statistics.total_num_tokens(text).expect("tokens"), 5);
        assert_eq!(statistics.total_num_tokens(normed).expect("tokens"), 5);
        assert_eq!(statistics.total_num_docs().expect("docs"), 2);
        let a = Term::from_field_text(text, "a");
        assert_eq!(statistics.doc_freq(&a).expect("df"), 1);
        assert_eq!(searcher.doc_freq(&a).expect("df"), 2);
    }

    #[test]
    fn statistics_follow_reloads() {
        let mut index = TestIndex::new();
        add(&mut index, REFUNDS, "public");
        index.commit();
        let cache = AudienceStatistics::default();
        let audience = index.kb.fields.audience;
        let refund = Term::from_field_text(index.kb.fields.title, "refund");
        let before = index.searcher();
        assert!(
            !cache
                .public(&before, audience)
                .expect("stats")
                .is_public_only()
        );

        add(&mut index, PLAYBOOK, "internal");
        index.commit();
        let after = index.searcher();
        let statistics = cache.public(&after, audience).expect("stats");
        assert!(statistics.is_public_only());
        assert_eq!(statistics.doc_freq(&refund).expect("df"), 1);
        assert_eq!(after.doc_freq(&refund).expect("df"), 2);

        // The internal article becomes public: cached counts must not survive.
        index.delete(PLAYBOOK.0);
        add(&mut index, PLAYBOOK, "public");
        index.commit();
        let republished = index.searcher();
        let statistics = cache.public(&republished, audience).expect("stats");
        assert_eq!(statistics.doc_freq(&refund).expect("df"), 2);
        // An older searcher still gets its own generation's numbers.
        let statistics = cache.public(&after, audience).expect("stats");
        assert_eq!(statistics.doc_freq(&refund).expect("df"), 1);
    }
}
