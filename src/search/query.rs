//! Turns a customer's text into a tantivy query, in code (never through the
//! query parser, so quotes, colons, `AND (` or URLs are just words).
//!
//! Each content word becomes a set of weighted term variants:
//! - the word itself (stemmed), weight 1;
//! - typo variants found in the index vocabulary (1 edit for 5+ letters, 2 for
//!   9+), weighted down and never given a higher IDF than the word typed, so
//!   an exact match outranks a typo match;
//! - for the word being typed (the last one), completions by prefix;
//! - synonyms from `synonyms.toml`, as extra weighted clauses.
//!
//! Field weights implement a BM25F-like ranking, and adjacent word pairs add a
//! proximity boost through sloppy phrase queries.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tantivy::postings::TermInfo;
use tantivy::query::{
    BooleanQuery, BoostQuery, DisjunctionMaxQuery, FuzzyTermQuery, Occur, PhraseQuery, Query,
    TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Searcher, Term};
use tantivy_fst::Automaton;

use super::statistics::Statistics;
use super::synonyms::Synonyms;
use crate::index::schema::{with_plain_analyzer, with_stemmed_analyzer};

/// Tokens beyond this are ignored: a pasted 10 KB e-mail must not cost more
/// than a question.
pub const MAX_QUERY_WORDS: usize = 32;
/// Tokens read from one input text, before stop words and selection.
pub const MAX_SEGMENT_TOKENS: usize = 512;

/// Every ranking knob in one place, so calibration runs
/// (`examples/relevance.rs --weights …`) can vary them without code changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankingWeights {
    pub title: f32,
    pub headings: f32,
    pub summary: f32,
    pub tags: f32,
    pub body: f32,
    /// A typo variant of a word that also exists as typed.
    pub typo: f32,
    /// A typo variant of a word the index doesn't know (a likely misspelling).
    pub typo_unknown_word: f32,
    /// A completion of the word being typed.
    pub prefix: f32,
    /// A completion of the word being typed when it is already a whole word.
    pub prefix_complete_word: f32,
    pub synonym: f32,
    pub proximity: f32,
    /// Score multipliers for articles matching the customer's context.
    pub context_product: f32,
    pub context_plan: f32,
    pub context_locale: f32,
}

impl Default for RankingWeights {
    fn default() -> Self {
        RankingWeights {
            title: 3.0,
            headings: 2.0,
            summary: 1.5,
            tags: 1.5,
            body: 1.5,
            typo: 0.25,
            typo_unknown_word: 0.6,
            prefix: 0.7,
            prefix_complete_word: 0.35,
            synonym: 0.6,
            proximity: 0.25,
            context_product: 1.3,
            context_plan: 1.15,
            context_locale: 1.5,
        }
    }
}

impl RankingWeights {
    /// Applies `name=value,name=value` overrides.
    pub fn with_overrides(mut self, overrides: &str) -> Result<Self, String> {
        for pair in overrides.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("expected name=value, got {pair:?}"))?;
            let value: f32 = value.trim().parse().map_err(|e| format!("{name}: {e}"))?;
            let slot = match name.trim() {
                "title" => &mut self.title,
                "headings" => &mut self.headings,
                "summary" => &mut self.summary,
                "tags" => &mut self.tags,
                "body" => &mut self.body,
                "typo" => &mut self.typo,
                "typo_unknown_word" => &mut self.typo_unknown_word,
                "prefix" => &mut self.prefix,
                "prefix_complete_word" => &mut self.prefix_complete_word,
                "synonym" => &mut self.synonym,
                "proximity" => &mut self.proximity,
                "context_product" => &mut self.context_product,
                "context_plan" => &mut self.context_plan,
                "context_locale" => &mut self.context_locale,
                other => return Err(format!("unknown weight {other:?}")),
            };
            *slot = value;
        }
        Ok(self)
    }
}
const MAX_TYPO_VARIANTS: usize = 6;
/// See [`Vocabulary::well_attested`].
const WELL_ATTESTED_MIN_DOCS: u64 = 5;
const WELL_ATTESTED_PER_DOCS: u64 = 1000;
const MAX_PREFIX_VARIANTS: usize = 12;

/// Short, very common words that carry no meaning in a support question.
/// Only dropped when the query has other words.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did", "do",
    "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its",
    "me", "my", "of", "on", "or", "our", "please", "should", "so", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "to", "was", "we", "were", "what", "when", "where",
    "which", "who", "why", "will", "with", "would", "you", "your", "am", "im", "t", "s", "don",
    "doesn", "isn", "hi", "hello", "thanks", "thank",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Exact,
    Prefix,
    Typo,
}

#[derive(Debug, Clone)]
pub struct Variant {
    pub stem: String,
    pub weight: f32,
    pub kind: MatchKind,
}

#[derive(Debug, Clone)]
pub struct QueryWord {
    pub surface: String,
    pub stem: String,
    pub variants: Vec<Variant>,
    /// How much this word counts (1 for a search; less for older or agent turns).
    pub weight: f32,
    /// Inverse document frequency of the word as typed, over articles.
    pub idf: f32,
    /// Which input segment (transcript turn) the word came from.
    pub segment: usize,
}

#[derive(Debug, Clone)]
pub struct SynonymClause {
    /// Each alternative is a stemmed token sequence (a phrase when 2+ tokens).
    pub alternatives: Vec<Vec<String>>,
    pub weight: f32,
}

/// Everything derived from the query text, reusable across the article query,
/// the section queries and the snippets.
#[derive(Debug, Clone, Default)]
pub struct QueryPlan {
    pub weights: RankingWeights,
    pub words: Vec<QueryWord>,
    pub synonyms: Vec<SynonymClause>,
    /// Stems to highlight in snippets: words, their variants and synonyms.
    pub highlight: HashSet<String>,
}

pub struct PlanOptions<'a> {
    /// Treat the last word as a prefix (the customer is still typing it).
    pub prefix_last_word: bool,
    /// Minimum length before the last word is prefix-expanded.
    pub min_prefix_len: usize,
    pub synonyms: &'a Synonyms,
    /// Field holding the un-stemmed vocabulary, for typo and prefix expansion.
    pub vocabulary: Field,
    pub weights: RankingWeights,
    /// Remembers expansions across queries; `None` computes every one.
    pub expansions: Option<&'a ExpansionCache>,
}

/// Past this many remembered expansions the cache starts over.
const MAX_CACHED_EXPANSIONS: usize = 50_000;
/// Expansion walks read at most this many times their cap of terms: terms no
/// document the caller may see holds are skipped without counting, and must
/// not make a walk unbounded.
const MAX_EXAMINED_PER_KEPT: usize = 4;

/// Typo and prefix expansions of words already seen, for the current index
/// generation. Walking the vocabulary with a Levenshtein automaton was the
/// largest single cost of a search (a quarter of its CPU on a 2,500-article
/// help center), and customers' words repeat. Cleared when the reader reloads,
/// since the vocabulary may have changed.
#[derive(Default)]
pub struct ExpansionCache {
    inner: Mutex<(u64, HashMap<ExpansionKey, Expansion>)>,
}

/// (word, 0 for prefix or 1 + edit distance, as prefix, limit, public only)
type ExpansionKey = (String, u8, bool, usize, bool);
/// Vocabulary terms with their document frequencies, most frequent first.
type Expansion = Arc<Vec<(String, u64)>>;

impl ExpansionCache {
    fn get_or(
        &self,
        generation: u64,
        key: ExpansionKey,
        compute: impl FnOnce() -> Vec<(String, u64)>,
    ) -> Arc<Vec<(String, u64)>> {
        {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if inner.0 != generation {
                *inner = (generation, HashMap::new());
            }
            if let Some(found) = inner.1.get(&key) {
                return found.clone();
            }
        }
        let found = Arc::new(compute());
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.0 == generation {
            if inner.1.len() >= MAX_CACHED_EXPANSIONS {
                inner.1.clear();
            }
            inner.1.insert(key, found.clone());
        }
        found
    }
}

impl QueryPlan {
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.synonyms.is_empty()
    }

    /// `statistics` are the caller's: which words exist and how rare they
    /// are, as far as the documents the caller may see tell.
    pub fn build(text: &str, statistics: &Statistics<'_>, options: &PlanOptions<'_>) -> QueryPlan {
        Self::build_weighted(&[(text, 1.0)], statistics, options)
    }

    /// Builds one plan from several weighted texts (a chat transcript's turns:
    /// customer over agent, recent over old). A word seen in several segments
    /// keeps its highest weight. Only the last segment's last word can be a
    /// prefix. Beyond [`MAX_QUERY_WORDS`] the highest-weighted words are kept.
    pub fn build_weighted(
        segments: &[(&str, f32)],
        statistics: &Statistics<'_>,
        options: &PlanOptions<'_>,
    ) -> QueryPlan {
        let vocabulary = Vocabulary::new(statistics, options.vocabulary, options.expansions);
        let weights = options.weights;
        let mut plan = QueryPlan {
            weights,
            ..QueryPlan::default()
        };
        let tokenized: Vec<(Vec<String>, Vec<String>, f32)> = segments
            .iter()
            .map(|(text, weight)| {
                let surfaces = surface_tokens_unbounded(text);
                let stems = surfaces.iter().map(|s| stem(s)).collect();
                (surfaces, stems, *weight)
            })
            .collect();
        let has_content = tokenized
            .iter()
            .flat_map(|(surfaces, _, _)| surfaces)
            .any(|s| !is_stop_word(s));
        let ends_mid_word = segments
            .last()
            .and_then(|(text, _)| text.chars().last())
            .is_some_and(|c| c.is_alphanumeric());

        // Candidate words: (segment, position, surface, stem, weight).
        let mut candidates: Vec<(usize, usize, String, String, f32)> = Vec::new();
        let last_segment = tokenized.len().saturating_sub(1);
        for (segment, (surfaces, stems, weight)) in tokenized.iter().enumerate() {
            let last = surfaces.len().saturating_sub(1);
            for (i, (surface, word_stem)) in surfaces.iter().zip(stems).enumerate() {
                let typing_here = segment == last_segment && i == last && ends_mid_word;
                // Stop words are noise, except as the word still being typed
                // ("in" may become "invoice") when it isn't a whole word yet.
                if has_content
                    && is_stop_word(surface)
                    && (!typing_here || vocabulary.doc_freq(surface) > 0)
                {
                    continue;
                }
                match candidates.iter_mut().find(|c| c.3 == *word_stem) {
                    Some(existing) => existing.4 = existing.4.max(*weight),
                    None => {
                        candidates.push((segment, i, surface.clone(), word_stem.clone(), *weight))
                    }
                }
            }
        }
        if candidates.len() > MAX_QUERY_WORDS {
            // Keep the heaviest words; among equals, the earliest.
            let mut order: Vec<usize> = (0..candidates.len()).collect();
            order.sort_by(|&a, &b| candidates[b].4.total_cmp(&candidates[a].4).then(a.cmp(&b)));
            let keep: HashSet<usize> = order.into_iter().take(MAX_QUERY_WORDS).collect();
            candidates = candidates
                .into_iter()
                .enumerate()
                .filter(|(i, _)| keep.contains(i))
                .map(|(_, c)| c)
                .collect();
        }

        for (segment, position, surface, word_stem, weight) in candidates {
            let exact_df = vocabulary.doc_freq(&surface);
            let mut variants = vec![Variant {
                stem: word_stem.clone(),
                weight: 1.0,
                kind: MatchKind::Exact,
            }];
            let typing = options.prefix_last_word
                && segment == last_segment
                && position + 1 == tokenized[segment].0.len()
                && ends_mid_word
                && surface.chars().count() >= options.min_prefix_len;
            if typing {
                let prefix_weight = if exact_df > 0 {
                    weights.prefix_complete_word
                } else {
                    weights.prefix
                };
                for (candidate, _) in vocabulary.prefix(&surface, MAX_PREFIX_VARIANTS).iter() {
                    push_variant(
                        &mut variants,
                        stem(candidate),
                        prefix_weight,
                        MatchKind::Prefix,
                    );
                }
            }
            let distance = typo_distance(&surface);
            if distance > 0 && !vocabulary.well_attested(exact_df) {
                let exact_idf = vocabulary.idf(exact_df);
                for (candidate, df) in vocabulary
                    .fuzzy(&surface, distance, typing, MAX_TYPO_VARIANTS)
                    .iter()
                {
                    if *candidate == surface {
                        continue;
                    }
                    let typo_weight = if exact_df > 0 {
                        // Never let a rarer misspelling outscore the word typed.
                        weights.typo * (exact_idf / vocabulary.idf(*df)).min(1.0)
                    } else {
                        weights.typo_unknown_word
                    };
                    push_variant(&mut variants, stem(candidate), typo_weight, MatchKind::Typo);
                }
            }
            plan.highlight
                .extend(variants.iter().map(|v| v.stem.clone()));
            plan.words.push(QueryWord {
                surface,
                stem: word_stem,
                variants,
                weight,
                idf: vocabulary.idf(exact_df.max(1)),
                segment,
            });
        }

        for (_, stems, weight) in &tokenized {
            for found in options.synonyms.find(stems) {
                for alternative in &found.alternatives {
                    plan.highlight.extend(alternative.iter().cloned());
                }
                plan.synonyms.push(SynonymClause {
                    alternatives: found.alternatives,
                    weight: *weight,
                });
            }
        }
        plan
    }

    /// The scoring query over `fields` (field, weight). Matches any document
    /// containing any variant of any word; ranking does the rest.
    pub fn scoring_query(
        &self,
        fields: &[(Field, f32)],
        proximity: &[(Field, f32)],
    ) -> Box<dyn Query> {
        self.scoring_tree(fields, proximity).to_query()
    }

    /// [`Self::scoring_query`] as a [`ScoreTree`], which candidates can
    /// also be scored with one at a time.
    pub fn scoring_tree(&self, fields: &[(Field, f32)], proximity: &[(Field, f32)]) -> ScoreTree {
        let mut clauses: Vec<ScoreTree> = Vec::new();
        for word in &self.words {
            let per_field: Vec<ScoreTree> = fields
                .iter()
                .map(|&(field, field_weight)| {
                    let mut variants: Vec<ScoreTree> = word
                        .variants
                        .iter()
                        .map(|v| ScoreTree::term(field, &v.stem).boosted(v.weight))
                        .collect();
                    let best_variant = if variants.len() == 1 {
                        variants.pop().expect("one variant")
                    } else {
                        ScoreTree::Max(variants)
                    };
                    best_variant.boosted(field_weight)
                })
                .collect();
            clauses.push(ScoreTree::Sum(per_field).boosted(word.weight));
        }
        for pair in self.words.windows(2) {
            if pair[0].segment != pair[1].segment {
                continue;
            }
            let pair_weight = pair[0].weight.min(pair[1].weight);
            for &(field, weight) in proximity {
                let terms = vec![
                    (0, Term::from_field_text(field, &pair[0].stem)),
                    (1, Term::from_field_text(field, &pair[1].stem)),
                ];
                clauses.push(
                    ScoreTree::Phrase(terms, 2)
                        .boosted(weight * self.weights.proximity * pair_weight),
                );
            }
        }
        for synonym in &self.synonyms {
            let alternatives: Vec<ScoreTree> = synonym
                .alternatives
                .iter()
                .map(|alternative| {
                    ScoreTree::Sum(
                        fields
                            .iter()
                            .map(|&(field, weight)| sequence(field, alternative).boosted(weight))
                            .collect(),
                    )
                })
                .collect();
            clauses
                .push(ScoreTree::Max(alternatives).boosted(self.weights.synonym * synonym.weight));
        }
        ScoreTree::Sum(clauses)
    }

    /// The terms of [`Self::scoring_tree`] as one flat union of term
    /// queries, each weighted by its word, field and variant (the larger
    /// weight when a term comes up twice): the shape block-max WAND can
    /// prune, which nested queries and phrases are not. It finds the
    /// candidates the full tree then re-scores ([`super::topk`]); here
    /// variants add up instead of the best counting, synonyms count word
    /// by word, and proximity waits for the re-scoring. Measured at 100k
    /// articles, the top 10 of 100 candidates were those of scoring every
    /// match for 99.8 % of the hits (the same terms in one field holding
    /// every field, BM25F-style: 76 %).
    pub fn candidate_query(&self, fields: &[(Field, f32)]) -> Box<dyn Query> {
        let mut terms: Vec<(Field, &str, f32)> = Vec::new();
        for word in &self.words {
            for &(field, field_weight) in fields {
                for variant in &word.variants {
                    add_term(
                        &mut terms,
                        field,
                        &variant.stem,
                        word.weight * field_weight * variant.weight,
                    );
                }
            }
        }
        for synonym in &self.synonyms {
            let weight = self.weights.synonym * synonym.weight;
            for alternative in &synonym.alternatives {
                for stem in alternative {
                    for &(field, field_weight) in fields {
                        add_term(&mut terms, field, stem, weight * field_weight);
                    }
                }
            }
        }
        ScoreTree::Sum(
            terms
                .into_iter()
                .map(|(field, stem, weight)| ScoreTree::term(field, stem).boosted(weight))
                .collect(),
        )
        .to_query()
    }

    /// What [`Self::scoring_tree`] over `fields` matches, as cheaply as it
    /// can be told: any variant of any word in `any_text` (which holds all
    /// of `fields`), or a synonym's words in order in one of `fields`.
    pub fn matching_tree(&self, any_text: Field, fields: &[(Field, f32)]) -> ScoreTree {
        let mut clauses: Vec<ScoreTree> = self
            .words
            .iter()
            .flat_map(|word| &word.variants)
            .map(|variant| {
                ScoreTree::Term(
                    Term::from_field_text(any_text, &variant.stem),
                    IndexRecordOption::Basic,
                )
            })
            .collect();
        for synonym in &self.synonyms {
            for alternative in &synonym.alternatives {
                for &(field, _) in fields {
                    clauses.push(sequence(field, alternative));
                }
            }
        }
        ScoreTree::Sum(clauses)
    }
}

/// Adds `field:stem` to a candidate query's terms, keeping the larger weight.
fn add_term<'a>(terms: &mut Vec<(Field, &'a str, f32)>, field: Field, stem: &'a str, weight: f32) {
    match terms.iter_mut().find(|(f, s, _)| *f == field && *s == stem) {
        Some(existing) => existing.2 = existing.2.max(weight),
        None => terms.push((field, stem, weight)),
    }
}

fn push_variant(variants: &mut Vec<Variant>, stem: String, weight: f32, kind: MatchKind) {
    match variants.iter_mut().find(|v| v.stem == stem) {
        Some(existing) if existing.weight < weight => {
            existing.weight = weight;
            existing.kind = kind;
        }
        Some(_) => {}
        None => variants.push(Variant { stem, weight, kind }),
    }
}

fn typo_distance(word: &str) -> u8 {
    let len = word.chars().count();
    if word.chars().any(|c| c.is_ascii_digit()) {
        0 // error codes and plan names are exact
    } else if len >= 9 {
        2
    } else if len >= 5 {
        1
    } else {
        0
    }
}

pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// `stems` in order (one slop allowed), or the one term.
fn sequence(field: Field, stems: &[String]) -> ScoreTree {
    match stems {
        [one] => ScoreTree::term(field, one),
        _ => ScoreTree::Phrase(
            stems
                .iter()
                .enumerate()
                .map(|(i, s)| (i, Term::from_field_text(field, s)))
                .collect(),
            1,
        ),
    }
}

fn boosted(query: Box<dyn Query>, weight: f32) -> Box<dyn Query> {
    if (weight - 1.0).abs() < f32::EPSILON {
        query
    } else {
        Box::new(BoostQuery::new(query, weight))
    }
}

/// A scoring query's shape, built once and used two ways: as a tantivy
/// query ([`Self::to_query`]) to match and count, and leaf by leaf
/// ([`Self::leaves`], [`Self::combine`]) to score a few candidates. tantivy
/// scores a union by buffering windows of 4,096 documents, so seeking one to
/// each of 100 candidates scored nearly every match again (a quarter of a
/// search at 100k); a term or phrase scorer seeks through its skip list.
#[derive(Debug, Clone)]
pub enum ScoreTree {
    /// One term; `Basic` for filters (no frequencies).
    Term(Term, IndexRecordOption),
    /// Terms at these positions, within this slop.
    Phrase(Vec<(usize, Term)>, u32),
    /// Any of them must match; their scores add up (a `Should` list).
    Sum(Vec<ScoreTree>),
    /// All of them must match; their scores add up (a `Must` list).
    All(Vec<ScoreTree>),
    /// Any of them must match; the best score counts.
    Max(Vec<ScoreTree>),
    Boost(Box<ScoreTree>, f32),
}

impl ScoreTree {
    pub fn term(field: Field, stem: &str) -> ScoreTree {
        ScoreTree::Term(
            Term::from_field_text(field, stem),
            IndexRecordOption::WithFreqs,
        )
    }

    /// A boost of 1 is left out, as tantivy would not apply it either.
    pub fn boosted(self, weight: f32) -> ScoreTree {
        if (weight - 1.0).abs() < f32::EPSILON {
            self
        } else {
            ScoreTree::Boost(Box::new(self), weight)
        }
    }

    pub fn to_query(&self) -> Box<dyn Query> {
        match self {
            ScoreTree::Term(term, option) => Box::new(TermQuery::new(term.clone(), *option)),
            ScoreTree::Phrase(terms, slop) => {
                Box::new(PhraseQuery::new_with_offset_and_slop(terms.clone(), *slop))
            }
            ScoreTree::Sum(children) => Box::new(BooleanQuery::new(
                children
                    .iter()
                    .map(|c| (Occur::Should, c.to_query()))
                    .collect(),
            )),
            ScoreTree::All(children) => Box::new(BooleanQuery::new(
                children
                    .iter()
                    .map(|c| (Occur::Must, c.to_query()))
                    .collect(),
            )),
            ScoreTree::Max(children) => Box::new(DisjunctionMaxQuery::new(
                children.iter().map(|c| c.to_query()).collect(),
            )),
            ScoreTree::Boost(child, weight) => boosted(child.to_query(), *weight),
        }
    }

    /// The terms and phrases, depth first: the order [`Self::combine`]
    /// reads their scores in.
    pub fn leaves(&self) -> Vec<&ScoreTree> {
        let mut out = Vec::new();
        self.collect_leaves(&mut out);
        out
    }

    fn collect_leaves<'a>(&'a self, out: &mut Vec<&'a ScoreTree>) {
        match self {
            ScoreTree::Term(..) | ScoreTree::Phrase(..) => out.push(self),
            ScoreTree::Sum(children) | ScoreTree::All(children) | ScoreTree::Max(children) => {
                for child in children {
                    child.collect_leaves(out);
                }
            }
            ScoreTree::Boost(child, _) => child.collect_leaves(out),
        }
    }

    /// The score of one document from its leaves' scores (`None` where a
    /// leaf does not match), in [`Self::leaves`] order; `None` if the whole
    /// query does not match. Adds and multiplies as tantivy does.
    pub fn combine(&self, leaves: &mut impl Iterator<Item = Option<f32>>) -> Option<f32> {
        match self {
            ScoreTree::Term(..) | ScoreTree::Phrase(..) => leaves.next().flatten(),
            ScoreTree::Sum(children) => {
                let mut sum = None;
                for child in children {
                    if let Some(score) = child.combine(leaves) {
                        sum = Some(sum.unwrap_or(0.0) + score);
                    }
                }
                sum
            }
            ScoreTree::All(children) => {
                let mut sum = Some(0.0);
                for child in children {
                    let score = child.combine(leaves);
                    sum = sum.zip(score).map(|(a, b)| a + b);
                }
                sum
            }
            ScoreTree::Max(children) => {
                let mut best: Option<f32> = None;
                for child in children {
                    if let Some(score) = child.combine(leaves) {
                        best = Some(best.map_or(score, |b| b.max(score)));
                    }
                }
                best
            }
            ScoreTree::Boost(child, weight) => child.combine(leaves).map(|s| s * weight),
        }
    }
}

/// Lower-cased, ASCII-folded words of `text`, at most [`MAX_QUERY_WORDS`].
pub fn surface_tokens(text: &str) -> Vec<String> {
    let mut tokens = surface_tokens_unbounded(text);
    tokens.truncate(MAX_QUERY_WORDS);
    tokens
}

/// Lower-cased, ASCII-folded words of `text`, at most [`MAX_SEGMENT_TOKENS`].
pub fn surface_tokens_unbounded(text: &str) -> Vec<String> {
    with_plain_analyzer(|analyzer| {
        let mut stream = analyzer.token_stream(text);
        let mut tokens = Vec::new();
        while let Some(token) = stream.next() {
            if tokens.len() == MAX_SEGMENT_TOKENS {
                break;
            }
            tokens.push(token.text.clone());
        }
        tokens
    })
}

/// Cuts `text` to at most `max` bytes at a char boundary.
pub fn bounded(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

pub fn stem(surface: &str) -> String {
    with_stemmed_analyzer(|analyzer| {
        let mut stream = analyzer.token_stream(surface);
        match stream.next() {
            Some(token) => token.text.clone(),
            None => surface.to_string(),
        }
    })
}

/// The surface vocabulary of the article documents, read from the term
/// dictionaries of every segment, with the frequencies of the documents the
/// caller may see (a word only internal articles use is no word at all).
struct Vocabulary<'a> {
    statistics: &'a Statistics<'a>,
    searcher: &'a Searcher,
    field: Field,
    documents: u64,
    cache: Option<&'a ExpansionCache>,
}

impl<'a> Vocabulary<'a> {
    fn new(
        statistics: &'a Statistics<'a>,
        field: Field,
        cache: Option<&'a ExpansionCache>,
    ) -> Self {
        Vocabulary {
            statistics,
            searcher: statistics.searcher(),
            field,
            documents: statistics.alive_docs().max(1),
            cache,
        }
    }

    fn doc_freq(&self, word: &str) -> u64 {
        self.statistics
            .doc_freq(&Term::from_field_text(self.field, word))
            .unwrap_or(0)
    }

    /// Whether a word typed as is appears in enough documents
    /// ([`WELL_ATTESTED_MIN_DOCS`], or one in [`WELL_ATTESTED_PER_DOCS`]) to
    /// be taken as meant: its typo readings would mostly add noise, and
    /// postings to walk. Typo expansion is for words missing or rare here.
    fn well_attested(&self, doc_freq: u64) -> bool {
        doc_freq >= WELL_ATTESTED_MIN_DOCS.max(self.documents / WELL_ATTESTED_PER_DOCS)
    }

    fn idf(&self, doc_freq: u64) -> f32 {
        let n = self.documents as f32;
        let df = doc_freq as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln().max(1e-3)
    }

    /// Terms within `distance` edits of `word` (of a prefix of them when
    /// `as_prefix`), most frequent first.
    fn fuzzy(
        &self,
        word: &str,
        distance: u8,
        as_prefix: bool,
        limit: usize,
    ) -> Arc<Vec<(String, u64)>> {
        self.cached((word.to_string(), 1 + distance, as_prefix, limit), || {
            self.fuzzy_uncached(word, distance, as_prefix, limit)
        })
    }

    fn prefix(&self, prefix: &str, limit: usize) -> Arc<Vec<(String, u64)>> {
        self.cached((prefix.to_string(), 0, true, limit), || {
            self.prefix_uncached(prefix, limit)
        })
    }

    fn cached(
        &self,
        (word, kind, as_prefix, limit): (String, u8, bool, usize),
        compute: impl FnOnce() -> Vec<(String, u64)>,
    ) -> Arc<Vec<(String, u64)>> {
        let key = (
            word,
            kind,
            as_prefix,
            limit,
            self.statistics.is_public_only(),
        );
        match self.cache {
            Some(cache) => cache.get_or(self.searcher.generation().generation_id(), key, compute),
            None => Arc::new(compute()),
        }
    }

    fn fuzzy_uncached(
        &self,
        word: &str,
        distance: u8,
        as_prefix: bool,
        limit: usize,
    ) -> Vec<(String, u64)> {
        let term = Term::from_field_text(self.field, word);
        let query = if as_prefix {
            FuzzyTermQuery::new_prefix(term, distance, true)
        } else {
            FuzzyTermQuery::new(term, distance, true)
        };
        // One DFA for every segment: building it is most of a short walk's cost.
        let Ok(automaton) = query.automaton() else {
            return Vec::new();
        };
        self.collect(limit, |terms, doc_freq| {
            stream_terms(terms.search(&automaton).into_stream(), 256, doc_freq)
        })
    }

    fn prefix_uncached(&self, prefix: &str, limit: usize) -> Vec<(String, u64)> {
        self.collect(limit, |terms, doc_freq| {
            let upper = prefix_upper_bound(prefix.as_bytes());
            let range = terms.range().ge(prefix.as_bytes());
            let range = match &upper {
                Some(upper) => range.lt(upper),
                None => range,
            };
            stream_terms(range.into_stream(), 512, doc_freq)
        })
    }

    /// Sums `per_segment`'s terms over the segments, given how to count a
    /// term's documents in each.
    fn collect(
        &self,
        limit: usize,
        per_segment: impl Fn(
            &tantivy::termdict::TermDictionary,
            &dyn Fn(&TermInfo) -> u64,
        ) -> Vec<(String, u64)>,
    ) -> Vec<(String, u64)> {
        let mut totals: HashMap<String, u64> = HashMap::new();
        for (ord, segment) in self.searcher.segment_readers().iter().enumerate() {
            if !self.statistics.counts_segment(ord) {
                continue;
            }
            let Ok(inverted) = segment.inverted_index(self.field) else {
                continue;
            };
            let doc_freq = |info: &TermInfo| self.statistics.segment_doc_freq(ord, &inverted, info);
            for (term, df) in per_segment(inverted.terms(), &doc_freq) {
                *totals.entry(term).or_default() += df;
            }
        }
        let mut found: Vec<(String, u64)> = totals.into_iter().collect();
        found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        found.truncate(limit);
        found
    }
}

/// Up to `cap` terms of `stream` that some counted document holds, with
/// their `doc_freq`; terms none holds don't count towards `cap`.
fn stream_terms<A>(
    stream: std::io::Result<tantivy::termdict::TermStreamer<'_, A>>,
    cap: usize,
    doc_freq: &dyn Fn(&TermInfo) -> u64,
) -> Vec<(String, u64)>
where
    A: Automaton,
    A::State: Clone,
{
    let mut found = Vec::new();
    let Ok(mut stream) = stream else {
        return found;
    };
    let mut examined = 0;
    while examined < cap * MAX_EXAMINED_PER_KEPT && stream.advance() && found.len() < cap {
        examined += 1;
        if let Ok(term) = std::str::from_utf8(stream.key()) {
            let df = doc_freq(stream.value());
            if df > 0 {
                found.push((term.to_string(), df));
            }
        }
    }
    found
}

/// The smallest byte string greater than every string starting with `prefix`.
fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut upper = prefix.to_vec();
    while let Some(last) = upper.pop() {
        if last < 0xff {
            upper.push(last + 1);
            return Some(upper);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typo variants of each word of `text` in an index of `bodies`.
    fn typo_variants(bodies: &[String], text: &str) -> Vec<Vec<(String, MatchKind)>> {
        let mut index = crate::search::testing::TestIndex::new();
        for (i, body) in bodies.iter().enumerate() {
            index.add(&format!("a{i}.md"), "public", &format!("Article {i}"), body);
        }
        index.commit();
        let searcher = index.searcher();
        let statistics = Statistics::everything(&searcher);
        let synonyms = Synonyms::default();
        let plan = QueryPlan::build(
            text,
            &statistics,
            &PlanOptions {
                prefix_last_word: false,
                min_prefix_len: 2,
                synonyms: &synonyms,
                vocabulary: index.kb.fields.vocabulary,
                weights: RankingWeights::default(),
                expansions: None,
            },
        );
        plan.words
            .iter()
            .map(|w| {
                w.variants
                    .iter()
                    .map(|v| (v.stem.clone(), v.kind))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn typo_expansion_is_bounded_and_only_for_missing_or_rare_words() {
        // Many words one edit from "printer", each in one article.
        let neighbours = [
            "printers", "printor", "prenter", "printed", "pointer", "painter", "sprinter",
            "printe", "printir", "primter", "printet", "prinker",
        ];
        let mut bodies: Vec<String> = neighbours.iter().map(|w| format!("{w} here")).collect();
        // A word every article holds, and its near miss in one.
        for body in &mut bodies {
            body.push_str(" spooler");
        }
        bodies.push("spoolet".into());
        let variants = typo_variants(&bodies, "printer spooler");
        // A missing word: typo variants, at most MAX_TYPO_VARIANTS, after
        // the word itself.
        let printer = &variants[0];
        assert_eq!(printer[0].1, MatchKind::Exact);
        let typos = printer.iter().filter(|v| v.1 == MatchKind::Typo).count();
        assert!(typos > 0 && typos <= MAX_TYPO_VARIANTS, "{printer:?}");
        // A well-attested word is taken as meant: no typo readings.
        assert_eq!(variants[1], vec![("spooler".to_string(), MatchKind::Exact)]);
    }

    #[test]
    fn typo_budget_follows_word_length() {
        assert_eq!(typo_distance("pass"), 0);
        assert_eq!(typo_distance("passw"), 1);
        assert_eq!(typo_distance("passwords"), 2);
        assert_eq!(typo_distance("e12345"), 0);
    }

    #[test]
    fn tokens_are_bounded_and_normalised() {
        let long = "word ".repeat(1000);
        assert_eq!(surface_tokens(&long).len(), MAX_QUERY_WORDS);
        assert_eq!(surface_tokens("Café: AND (x)"), vec!["cafe", "and", "x"]);
        assert!(surface_tokens("🙂 \"\" :: ((").is_empty());
    }

    #[test]
    fn prefix_upper_bound_is_exclusive_successor() {
        assert_eq!(prefix_upper_bound(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_upper_bound(&[0x61, 0xff]), Some(vec![0x62]));
        assert_eq!(prefix_upper_bound(&[0xff]), None);
    }
}
