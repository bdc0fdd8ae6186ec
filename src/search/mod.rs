//! Search and ranking: query building ([`query`]), synonyms ([`synonyms`]) and
//! snippets ([`snippet`]). [`SearchEngine`] is what the HTTP channels and the
//! CLI call; it never writes.
//!
//! Ranking is two-stage: article documents are ranked with field-weighted
//! BM25, typo/prefix/synonym variants and a proximity boost; then, for each
//! hit on the page, the same query over that article's section documents
//! picks the section to deep-link to and take the snippet from.
//!
//! Both stages, and the query plan before them, use the caller's
//! [`statistics::Statistics`]: anonymous callers' term statistics leave
//! internal documents out, so their scores say nothing about internal
//! articles.

pub mod actions;
pub mod answer;
pub mod facets;
pub mod feedback;
pub mod query;
pub mod snippet;
pub mod statistics;
mod stored;
pub mod synonyms;
#[cfg(test)]
mod testing;
pub mod topk;
pub mod transcript;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};

use serde::Serialize;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, Order, Searcher, TantivyDocument, TantivyError, Term};

use self::answer::{AnswerFeatures, ConfidenceModel};
use self::facets::{FacetCache, FacetCounter, FieldValues};
use self::feedback::FeedbackBoosts;
use self::query::{PlanOptions, QueryPlan, RankingWeights, ScoreTree};
use self::statistics::{AudienceStatistics, Statistics};
use self::synonyms::{Synonyms, SynonymsHandle};
use crate::article::{Article, Audience, Section};
use crate::index::schema::{KIND_ARTICLE, KIND_SECTION, PLAN_RESTRICTED, keyword};
use crate::index::{Fields, KnowledgeIndex};
use crate::semantic::Semantic;

/// How much meaning weighs against words when both rank (the rest is the
/// words' score relative to the best one). Measured with `rapport eval
/// --retrieval all` (docs/api.md#search-by-meaning): questions in the
/// customer's words lean on meaning; an agent's transcript, full of the
/// case's specifics, leans on words; a quoted phrase or a code-like token
/// (an error code, a KB number) is matched for its exact characters.
pub fn semantic_weight(text: &str, transcript: bool) -> f32 {
    let exact = text.contains('"')
        || text.split_whitespace().any(|word| {
            let word = word.trim_matches(|c: char| !c.is_alphanumeric());
            word.len() >= 4
                && word.chars().any(|c| c.is_ascii_digit())
                && word.chars().any(|c| c.is_ascii_alphabetic())
        });
    match (exact, transcript) {
        (true, _) => 0.5,
        (false, true) => 0.7,
        (false, false) => 0.9,
    }
}

/// Moves each hit off a section that does the opposite of what `question`
/// asks (see [`actions`]): to the closest section in meaning that does not
/// (within 0.15 of the chosen one's cosine), or without vectors to the first
/// section whose heading names the asked action.
fn respect_actions(
    question: &str,
    hits: &mut [RankedHit],
    vectors: Option<(&crate::semantic::SectionVectors, &[f32])>,
) {
    let wanted = actions::actions(question);
    if wanted.is_empty() {
        return;
    }
    for hit in hits.iter_mut() {
        let Some(current) = hit.section() else {
            continue;
        };
        if !actions::conflict(&wanted, &current.heading) {
            continue;
        }
        let sections = &hit.article.sections;
        let fits = |i: usize| {
            sections.get(i).is_some_and(|s| {
                !s.text.trim().is_empty() && !actions::conflict(&wanted, &s.heading)
            })
        };
        match vectors {
            Some((vectors, query)) => {
                let scores = vectors.section_scores(query, &hit.article.id);
                let floor = hit.cosine.unwrap_or(0.0) - 0.15;
                if let Some(&(best, cosine)) = scores
                    .iter()
                    .filter(|(i, c)| fits(*i) && *c >= floor)
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                {
                    hit.section_index = Some(best);
                    hit.cosine = Some(cosine);
                }
            }
            None => {
                if let Some(best) = (0..sections.len()).find(|&i| {
                    fits(i) && !actions::actions(&sections[i].heading).is_disjoint(&wanted)
                }) {
                    hit.section_index = Some(best);
                }
            }
        }
    }
}

/// Restrictions whose allowed articles are kept: filter combinations in use.
const ALLOWED_CACHE_ENTRIES: usize = 256;
/// The string columns searches decode per segment (ids for sections and
/// feedback, facets, context boosts): [`SearchEngine::warm`] decodes them
/// before the first customer does.
const WARM_COLUMNS: [&str; 6] = [
    "id",
    "category_facet",
    "tag_facet",
    "product",
    "plan",
    "locale",
];

#[derive(Default)]
struct AllowedCache {
    generation: u64,
    entries: std::collections::HashMap<String, Arc<Allowed>>,
}

/// What one restriction (audience, filters, plan) lets a request see in one
/// index generation: the documents as bit sets, which the words' side checks
/// per candidate, and the articles by id, which the meaning's side filters
/// its vectors with (built from the bit sets on first use).
struct Allowed {
    documents: topk::Restriction,
    articles: std::sync::OnceLock<std::collections::HashMap<String, DocAddress>>,
}

impl Allowed {
    fn articles(
        &self,
        searcher: &Searcher,
        cache: &FacetCache,
    ) -> Result<&std::collections::HashMap<String, DocAddress>, SearchError> {
        if let Some(articles) = self.articles.get() {
            return Ok(articles);
        }
        let mut articles = std::collections::HashMap::new();
        for address in self.documents.addresses() {
            let ids = cache.field(searcher.segment_reader(address.segment_ord), "id")?;
            if let Some(id) = ids.of(address.doc_id).next() {
                articles.insert(id.to_string(), address);
            }
        }
        // Another thread may have won the race; both built the same map.
        Ok(self.articles.get_or_init(|| articles))
    }
}

/// Candidates found per result asked for (offset + limit), at least
/// [`MIN_CANDIDATES`]: the full query re-scores them, and proximity or a
/// synonym can lift a document over others the flat union ranked above it.
const CANDIDATES_PER_RESULT: usize = 4;
const MIN_CANDIDATES: usize = 100;
/// Matches are counted exactly up to this many; above it the total is a
/// lower bound (`total_relation: gte`), as Elasticsearch's default.
pub const EXACT_TOTAL_UP_TO: usize = 10_000;
/// When the candidates' terms hold at most this many postings in all (an
/// upper bound on the matches), one pass scoring, counting and faceting
/// every match is cheaper than the three: where few articles match (the
/// public part of the Office corpus), the three passes cost 10 % of
/// `/search` throughput; at 100k articles they gave 4×.
const EXHAUSTIVE_UP_TO: u64 = 20_000;

/// The words' side of a ranking: the top documents (score, address), the
/// total and whether it is exact, the facets.
struct LexicalPage {
    top: Vec<(f32, DocAddress)>,
    total: usize,
    total_exact: bool,
    facets: Facets,
}

/// Context and feedback factors for one request (see [`ColumnBoosts`]).
#[derive(Clone)]
struct Boosts {
    product: Option<(String, f32)>,
    plan: Option<(String, f32)>,
    locale: Option<(String, f32)>,
    feedback: Arc<std::collections::HashMap<String, f32>>,
}

/// [`Boosts`] read from each segment's columns, for the ranking passes.
#[derive(Clone)]
struct ColumnBoosts {
    boosts: Boosts,
    cache: Arc<FacetCache>,
}

impl topk::Boosting for ColumnBoosts {
    fn segment(&self, segment: &tantivy::SegmentReader) -> tantivy::Result<topk::SegmentBoost> {
        let b = &self.boosts;
        let mut columns: Vec<(Arc<FieldValues>, String, f32)> = Vec::new();
        for (field, wanted) in [
            ("product", &b.product),
            ("plan", &b.plan),
            ("locale", &b.locale),
        ] {
            if let Some((value, boost)) = wanted {
                columns.push((self.cache.field(segment, field)?, value.clone(), *boost));
            }
        }
        let ids = if b.feedback.is_empty() {
            None
        } else {
            Some(self.cache.field(segment, "id")?)
        };
        let feedback = b.feedback.clone();
        Ok(Box::new(move |doc, score| {
            let mut score = columns.iter().fold(score, |score, (values, value, boost)| {
                if values.of(doc).any(|v| v == value) {
                    score * boost
                } else {
                    score
                }
            });
            if let Some(ids) = &ids
                && let Some(factor) = ids.of(doc).next().and_then(|id| feedback.get(id))
            {
                score *= factor;
            }
            score
        }))
    }

    fn max_factor(&self) -> f32 {
        let b = &self.boosts;
        let context: f32 = [&b.product, &b.plan, &b.locale]
            .into_iter()
            .flatten()
            .map(|(_, boost)| boost.max(1.0))
            .product();
        let feedback = b.feedback.values().copied().fold(1.0f32, f32::max);
        context * feedback
    }
}

impl Boosts {
    fn is_neutral(&self) -> bool {
        self.product.is_none()
            && self.plan.is_none()
            && self.locale.is_none()
            && self.feedback.is_empty()
    }
}

/// One section as the embedder reads it.
#[derive(Debug, Clone)]
pub struct EmbeddingUnit {
    pub article_id: String,
    pub section_index: usize,
    pub title: String,
    pub heading: String,
    pub text: String,
}

pub const MAX_LIMIT: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("index error: {0}")]
    Tantivy(#[from] TantivyError),
    #[error("stored article is unreadable: {0}")]
    CorruptStoredArticle(#[from] serde_json::Error),
}

/// Restricts results; values compare case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub category: Option<String>,
    pub tag: Option<String>,
    pub product: Option<String>,
    pub locale: Option<String>,
}

/// Whether the caller may see internal (agent-only) articles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    PublicOnly,
    IncludeInternal,
}

/// What a channel knows about the customer. Matching articles are boosted,
/// others still shown.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct Context {
    pub product: Option<String>,
    pub plan: Option<String>,
    pub locale: Option<String>,
}

impl Context {
    pub fn is_empty(&self) -> bool {
        self.product.is_none() && self.plan.is_none() && self.locale.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub text: String,
    pub limit: usize,
    pub offset: usize,
    pub filters: Filters,
    pub visibility: Visibility,
    pub context: Context,
    /// Leave out articles limited to plans other than `context.plan` (the bot
    /// must not answer with them).
    pub exclude_other_plans: bool,
    /// Words, meaning, or both fused (the default; `rapport eval` compares).
    pub retrieval: Retrieval,
    /// `text` is an agent's transcript, not a customer's question.
    pub transcript: bool,
}

/// Which evidence ranks: the words, the meaning (section vectors), or both
/// fused. Without a model or vectors, every choice ranks by words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retrieval {
    #[default]
    Fused,
    Lexical,
    Semantic,
}

impl SearchRequest {
    pub fn new(text: impl Into<String>, limit: usize, visibility: Visibility) -> Self {
        SearchRequest {
            text: text.into(),
            limit,
            offset: 0,
            filters: Filters::default(),
            visibility,
            context: Context::default(),
            exclude_other_plans: false,
            retrieval: Retrieval::default(),
            transcript: false,
        }
    }
}

/// One ranked article with the section chosen for it.
#[derive(Debug, Clone)]
pub struct RankedHit {
    pub score: f32,
    /// Without `markdown` and `html` (empty): ranking never needs them.
    pub article: Arc<Article>,
    /// Index into `article.sections`; `None` only for an article without text.
    pub section_index: Option<usize>,
    /// Cosine of the question to the chosen section, when ranked by meaning too.
    pub cosine: Option<f32>,
}

impl RankedHit {
    pub fn section(&self) -> Option<&Section> {
        self.section_index
            .and_then(|i| self.article.sections.get(i))
    }

    pub fn section_ref(&self) -> SectionRef {
        match self.section() {
            Some(s) => SectionRef {
                heading: s.heading.clone(),
                anchor: s.anchor.clone(),
            },
            None => SectionRef {
                heading: self.article.title.clone(),
                anchor: None,
            },
        }
    }

    pub fn url(&self) -> String {
        article_url(
            &self.article.id,
            self.section().and_then(|s| s.anchor.as_deref()),
        )
    }

    /// The query's words (as typed) found in the title or the chosen section.
    pub fn matched_terms(&self, plan: &QueryPlan) -> Vec<String> {
        let mut text = self.article.title.clone();
        if let Some(section) = self.section() {
            text.push('\n');
            text.push_str(&section.heading);
            text.push('\n');
            text.push_str(&section.text);
        }
        let found: std::collections::HashSet<String> =
            crate::handoff::lexicon::stems(&text).into_iter().collect();
        plan.words
            .iter()
            .filter(|w| w.variants.iter().any(|v| found.contains(&v.stem)))
            .map(|w| w.surface.clone())
            .collect()
    }

    /// The snippet text: the section's, else the summary.
    pub fn snippet(&self, plan: &QueryPlan) -> String {
        let text = match self.section() {
            Some(section) if !section.text.is_empty() => section.text.as_str(),
            _ if !self.article.summary.is_empty() => self.article.summary.as_str(),
            _ => self.section().map_or("", |s| s.text.as_str()),
        };
        snippet::snippet(text, &plan.highlight, snippet::SNIPPET_CHARS)
    }

    fn into_search_hit(self, plan: &QueryPlan) -> SearchHit {
        let snippet = self.snippet(plan);
        let section = self.section_ref();
        let url = self.url();
        let article = &self.article;
        SearchHit {
            url,
            id: article.id.clone(),
            title: article.title.clone(),
            category: article.category.clone(),
            tags: article.tags.clone(),
            summary: article.summary.clone(),
            audience: article.audience,
            score: self.score,
            section,
            snippet,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RankedPage {
    pub total: usize,
    /// False when `total` is a lower bound ([`EXACT_TOTAL_UP_TO`]).
    pub total_exact: bool,
    pub hits: Vec<RankedHit>,
    pub facets: Facets,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SectionRef {
    pub heading: String,
    pub anchor: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    pub id: String,
    pub title: String,
    pub url: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub summary: String,
    pub audience: Audience,
    pub score: f32,
    pub section: SectionRef,
    /// HTML-escaped text with `<mark>` around matches.
    pub snippet: String,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Facets {
    pub category: BTreeMap<String, u64>,
    pub tags: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    pub total: usize,
    pub total_exact: bool,
    pub hits: Vec<SearchHit>,
    pub facets: Facets,
}

/// Autocomplete answers kept: a few MB at most (eight short titles each).
const SUGGESTION_CACHE_ENTRIES: usize = 4096;

/// Everything an autocomplete answer depends on besides the synonyms: the
/// index as searched (its generation), who asks, and what they typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SuggestionKey {
    generation: u64,
    internal: bool,
    limit: usize,
    category: Option<String>,
    tag: Option<String>,
    product: Option<String>,
    locale: Option<String>,
    text: String,
}

fn suggestion_key(
    searcher: &Searcher,
    text: &str,
    limit: usize,
    filters: &Filters,
    visibility: Visibility,
) -> SuggestionKey {
    SuggestionKey {
        generation: searcher.generation().generation_id(),
        internal: visibility == Visibility::IncludeInternal,
        limit: limit.clamp(1, MAX_LIMIT),
        category: filters.category.clone(),
        tag: filters.tag.clone(),
        product: filters.product.clone(),
        locale: filters.locale.clone(),
        text: text.to_string(),
    }
}

/// An answer, with the synonyms it was planned with: a hit made before the
/// synonyms file changed is not served (the entry holds its `Arc`, so a new
/// set can never share its address).
struct CachedSuggestions {
    synonyms: Arc<Synonyms>,
    suggestions: Vec<Suggestion>,
}

/// Recent autocomplete answers. Keystrokes recur across customers ("ou",
/// "out", "outl…"), and a hit skips planning, ranking and highlighting.
type SuggestionCache = quick_cache::sync::Cache<SuggestionKey, Arc<CachedSuggestions>>;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    pub id: String,
    pub title: String,
    pub url: String,
    pub category: Option<String>,
    /// The title, HTML-escaped, with `<mark>` around what matched.
    pub highlighted: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ArticleListing {
    pub id: String,
    pub title: String,
    pub url: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub summary: String,
    pub audience: Audience,
    pub updated: Option<String>,
}

pub struct SearchEngine {
    kb: Arc<KnowledgeIndex>,
    synonyms: SynonymsHandle,
    weights: RankingWeights,
    confidence: ConfidenceModel,
    facet_cache: Arc<FacetCache>,
    articles: stored::ArticleCache,
    suggestions: SuggestionCache,
    expansions: query::ExpansionCache,
    feedback: Arc<FeedbackBoosts>,
    audience: AudienceStatistics,
    semantic: Arc<Semantic>,
    /// The articles each restriction (audience, filters, plan) allows, for
    /// the current index: the meaning side's filter, built once per
    /// restriction rather than once per query.
    allowed: std::sync::Mutex<AllowedCache>,
    /// What a request asking for the default (fused) ranking gets:
    /// `rapport eval --retrieval` measures each side alone with it.
    retrieval: Retrieval,
    /// See [`EXACT_TOTAL_UP_TO`]; smaller in tests.
    exact_total_up_to: usize,
    /// See [`EXHAUSTIVE_UP_TO`]; 0 in tests of the passes.
    exhaustive_up_to: u64,
    doc_freqs: statistics::DocFreqCache,
}

/// The highest confidence an answer may have when its section does the
/// opposite of what the question asks: below the default `min_confidence`.
const ACTION_CONFLICT_CONFIDENCE: f32 = 0.5;

/// How many candidates each side contributes to fusion: deep enough that an
/// article ranked 30th by words but 1st by meaning still surfaces.
const FUSION_DEPTH: usize = 50;
/// Below this cosine a section is not "about" the question at all: it may
/// not enter results by meaning alone.
const SEMANTIC_FLOOR: f32 = 0.30;
/// A lexically chosen section keeps its place unless another section of the
/// article is this much closer in meaning.
const SECTION_SWITCH_MARGIN: f32 = 0.03;

/// The bot's candidate answer before hand-off rules are applied.
#[derive(Debug, Clone)]
pub struct AnswerOutcome {
    pub plan: QueryPlan,
    /// Best first; the first is the answer, the rest are alternatives.
    pub hits: Vec<RankedHit>,
    pub features: Option<AnswerFeatures>,
    pub confidence: f32,
}

impl SearchEngine {
    pub fn new(kb: Arc<KnowledgeIndex>, synonyms: SynonymsHandle) -> Self {
        Self::with_weights(kb, synonyms, RankingWeights::default())
    }

    pub fn with_weights(
        kb: Arc<KnowledgeIndex>,
        synonyms: SynonymsHandle,
        weights: RankingWeights,
    ) -> Self {
        SearchEngine {
            kb,
            synonyms,
            weights,
            confidence: ConfidenceModel::default(),
            facet_cache: Arc::default(),
            articles: stored::ArticleCache::default(),
            suggestions: SuggestionCache::new(SUGGESTION_CACHE_ENTRIES),
            expansions: query::ExpansionCache::default(),
            feedback: Arc::default(),
            audience: AudienceStatistics::default(),
            semantic: Arc::default(),
            allowed: std::sync::Mutex::default(),
            retrieval: Retrieval::Fused,
            exact_total_up_to: EXACT_TOTAL_UP_TO,
            exhaustive_up_to: EXHAUSTIVE_UP_TO,
            doc_freqs: statistics::DocFreqCache::default(),
        }
    }

    /// Ranks every request by `retrieval` unless the request names another.
    pub fn with_retrieval(mut self, retrieval: Retrieval) -> Self {
        self.retrieval = retrieval;
        self
    }

    /// Counts matches exactly up to `bound` (default [`EXACT_TOTAL_UP_TO`]).
    pub fn with_exact_total_up_to(mut self, bound: usize) -> Self {
        self.exact_total_up_to = bound;
        self
    }

    /// Scores every match in one pass when the candidates' terms hold at
    /// most `postings` (default [`EXHAUSTIVE_UP_TO`]; 0: always the passes).
    pub fn with_exhaustive_up_to(mut self, postings: u64) -> Self {
        self.exhaustive_up_to = postings;
        self
    }

    /// Shares `semantic` (filled by the embedder) with this engine.
    pub fn with_semantic(mut self, semantic: Arc<Semantic>) -> Self {
        self.semantic = semantic;
        self
    }

    pub fn semantic(&self) -> &Arc<Semantic> {
        &self.semantic
    }

    /// Changes whenever the index does (a commit was published).
    pub fn generation(&self) -> u64 {
        self.kb.reader.searcher().generation().generation_id()
    }

    /// Every section of every article (internal ones too: agents search
    /// them), as the embedder reads it: title, heading, text.
    pub fn embedding_units(&self) -> Result<Vec<EmbeddingUnit>, SearchError> {
        let searcher = self.kb.reader.searcher();
        let all = Box::new(tantivy::query::AllQuery);
        let query = self.filtered(
            KIND_ARTICLE,
            &Filters::default(),
            Visibility::IncludeInternal,
            all,
        );
        let addresses = searcher.search(&query, &tantivy::collector::DocSetCollector)?;
        let mut units = Vec::new();
        for address in addresses {
            let article = self.articles.get(&searcher, self.fields(), address)?;
            for (index, section) in article.sections.iter().enumerate() {
                units.push(EmbeddingUnit {
                    article_id: article.id.clone(),
                    section_index: index,
                    title: article.title.clone(),
                    heading: section.heading.clone(),
                    text: section.text.clone(),
                });
            }
        }
        units.sort_by(|a, b| {
            (a.article_id.as_str(), a.section_index).cmp(&(b.article_id.as_str(), b.section_index))
        });
        Ok(units)
    }

    pub fn index_dir(&self) -> &std::path::Path {
        &self.kb.dir
    }

    /// Where feedback-based boosts are published (by the analytics refresher).
    pub fn feedback_boosts(&self) -> Arc<FeedbackBoosts> {
        self.feedback.clone()
    }

    pub fn with_confidence_model(mut self, model: ConfidenceModel) -> Self {
        self.confidence = model;
        self
    }

    /// The bot channel: the same ranking as search (so the same question gets
    /// the same top article), never an article meant for another plan, plus
    /// the answer's features and confidence.
    pub fn answer(
        &self,
        question: &str,
        context: &Context,
        visibility: Visibility,
        alternatives: usize,
    ) -> Result<AnswerOutcome, SearchError> {
        self.answer_excluding(question, context, visibility, alternatives, &[])
            .map(|(outcome, _)| outcome)
    }

    /// [`Self::answer`] without the `exclude`d articles (what the session
    /// already said didn't help). Confidence is that of the best remaining
    /// article, measured against the remaining runner-up, as if the excluded
    /// ones didn't exist. Also says whether the best article was excluded.
    pub fn answer_excluding(
        &self,
        question: &str,
        context: &Context,
        visibility: Visibility,
        alternatives: usize,
        exclude: &[String],
    ) -> Result<(AnswerOutcome, bool), SearchError> {
        let searcher = self.kb.reader.searcher();
        let plan = self.plan(&searcher, question, 2, visibility)?;
        let wanted = (alternatives + 1).max(2);
        let mut request = SearchRequest::new(
            question,
            (wanted + exclude.len()).min(MAX_LIMIT),
            visibility,
        );
        request.context = context.clone();
        request.exclude_other_plans = true;
        let mut page = self.rank(&searcher, &plan, &request, false)?;
        let best_excluded = page
            .hits
            .first()
            .is_some_and(|hit| exclude.contains(&hit.article.id));
        page.hits.retain(|hit| !exclude.contains(&hit.article.id));
        page.hits.truncate(wanted);
        let features = answer::features(&plan, &page.hits);
        let mut confidence = features.map_or(0.0, |f| self.confidence.confidence(&f));
        // A section that does the opposite of what was asked (no better one
        // in the article) is not an answer the bot may give by itself.
        if let Some(section) = page.hits.first().and_then(RankedHit::section)
            && actions::conflict(&actions::actions(question), &section.heading)
        {
            confidence = confidence.min(ACTION_CONFLICT_CONFIDENCE);
        }
        Ok((
            AnswerOutcome {
                plan,
                hits: page.hits,
                features,
                confidence,
            },
            best_excluded,
        ))
    }

    /// The agent channel: rank from weighted transcript segments (already
    /// stripped of chatter), skipping articles the agent already shared.
    pub fn suggest(
        &self,
        segments: &[(String, f32)],
        context: &Context,
        visibility: Visibility,
        limit: usize,
        exclude: &[String],
    ) -> Result<(QueryPlan, Vec<RankedHit>), SearchError> {
        let searcher = self.kb.reader.searcher();
        let statistics = self.statistics(&searcher, visibility)?;
        let synonyms = self.current_synonyms();
        let borrowed: Vec<(&str, f32)> = segments.iter().map(|(t, w)| (t.as_str(), *w)).collect();
        let plan = QueryPlan::build_weighted(
            &borrowed,
            &statistics,
            &PlanOptions {
                prefix_last_word: false,
                min_prefix_len: 2,
                synonyms: &synonyms,
                vocabulary: self.fields().vocabulary,
                weights: self.weights,
                expansions: Some(&self.expansions),
            },
        );
        // For meaning, the most telling turns (the weights say which), most
        // telling first: the model reads only so many words.
        let mut telling: Vec<&(String, f32)> = segments.iter().collect();
        telling.sort_by(|a, b| b.1.total_cmp(&a.1));
        let text = telling
            .iter()
            .take(3)
            .map(|(text, _)| text.as_str())
            .collect::<Vec<_>>()
            .join(". ");
        let mut request =
            SearchRequest::new(text, (limit + exclude.len()).min(MAX_LIMIT), visibility);
        request.transcript = true;
        request.context = context.clone();
        let page = self.rank(&searcher, &plan, &request, false)?;
        let hits = page
            .hits
            .into_iter()
            .filter(|hit| !exclude.contains(&hit.article.id))
            .take(limit)
            .collect();
        Ok((plan, hits))
    }

    fn fields(&self) -> &Fields {
        &self.kb.fields
    }

    fn current_synonyms(&self) -> Arc<Synonyms> {
        self.synonyms
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn article_fields(&self) -> [(Field, f32); 5] {
        let f = self.fields();
        let w = &self.weights;
        [
            (f.title, w.title),
            (f.headings, w.headings),
            (f.summary, w.summary),
            (f.tags_text, w.tags),
            (f.body, w.body),
        ]
    }

    /// The term statistics `visibility`'s callers are planned and scored
    /// with: for anonymous callers, those of the public documents only.
    pub fn statistics<'s>(
        &self,
        searcher: &'s Searcher,
        visibility: Visibility,
    ) -> Result<Statistics<'s>, SearchError> {
        Ok(match visibility {
            Visibility::IncludeInternal => Statistics::everything(searcher),
            Visibility::PublicOnly => self.audience.public(searcher, self.fields().audience)?,
        })
    }

    /// The query plan of `text` for a caller with `visibility` (typo and
    /// prefix expansions only from words that caller's documents hold).
    pub fn plan(
        &self,
        searcher: &Searcher,
        text: &str,
        min_prefix_len: usize,
        visibility: Visibility,
    ) -> Result<QueryPlan, SearchError> {
        Ok(self.plan_with(
            &self.statistics(searcher, visibility)?,
            text,
            min_prefix_len,
        ))
    }

    fn plan_with(
        &self,
        statistics: &Statistics<'_>,
        text: &str,
        min_prefix_len: usize,
    ) -> QueryPlan {
        let synonyms = self.current_synonyms();
        QueryPlan::build(
            text,
            statistics,
            &PlanOptions {
                prefix_last_word: true,
                min_prefix_len,
                synonyms: &synonyms,
                vocabulary: self.fields().vocabulary,
                weights: self.weights,
                expansions: Some(&self.expansions),
            },
        )
    }

    /// Builds what the first searches would otherwise build while a
    /// customer waits: each segment's decoded columns (ids, facets, context
    /// fields), the audience statistics, and one search per audience (term
    /// dictionaries, the vocabulary). Run before `/ready` says yes: on a
    /// 100k-article index the first search took 1.6 s without it.
    pub fn warm(&self) -> Result<(), SearchError> {
        let searcher = self.kb.reader.searcher();
        for segment in searcher.segment_readers() {
            for field in WARM_COLUMNS {
                self.facet_cache.field(segment, field)?;
            }
        }
        let sample = searcher.search(
            &tantivy::query::TermQuery::new(
                tantivy::Term::from_field_text(self.fields().kind, KIND_ARTICLE),
                tantivy::schema::IndexRecordOption::Basic,
            ),
            &TopDocs::with_limit(1).order_by_score(),
        )?;
        let title = match sample.first() {
            Some((_, address)) => self
                .articles
                .get(&searcher, self.fields(), *address)?
                .title
                .clone(),
            None => return Ok(()),
        };
        for visibility in [Visibility::PublicOnly, Visibility::IncludeInternal] {
            self.search(&SearchRequest::new(title.clone(), 10, visibility))?;
            self.autocomplete(&title, 5, &Filters::default(), visibility)?;
        }
        Ok(())
    }

    pub fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        let searcher = self.kb.reader.searcher();
        let plan = self.plan(&searcher, &request.text, 2, request.visibility)?;
        let page = self.rank(&searcher, &plan, request, true)?;
        let hits = page
            .hits
            .into_iter()
            .map(|hit| hit.into_search_hit(&plan))
            .collect();
        Ok(SearchResults {
            total: page.total,
            total_exact: page.total_exact,
            hits,
            facets: page.facets,
        })
    }

    /// The ranking core shared by every channel (search, answer, suggest):
    /// one query, the same weights, context boosts, then the best section of
    /// each hit on the page; scored with `request.visibility`'s statistics.
    /// With section vectors and a query vector, the words' ranking and the
    /// meaning's are fused, and sections are chosen by meaning too.
    /// `with_facets` counts and facets the matches (search does); without,
    /// `total` is only a lower bound, and answers and suggestions never
    /// read it.
    pub fn rank(
        &self,
        searcher: &Searcher,
        plan: &QueryPlan,
        request: &SearchRequest,
        with_facets: bool,
    ) -> Result<RankedPage, SearchError> {
        let retrieval = match request.retrieval {
            Retrieval::Fused => self.retrieval,
            other => other,
        };
        let query_vector = match retrieval {
            Retrieval::Lexical => None,
            Retrieval::Fused | Retrieval::Semantic => self.semantic.query_vector(&request.text),
        };
        if plan.is_empty() && query_vector.is_none() {
            return Ok(RankedPage {
                total_exact: true,
                ..RankedPage::default()
            });
        }
        self.facet_cache.forget_stale(searcher);
        self.articles.forget_stale(searcher);
        let statistics = self.statistics(searcher, request.visibility)?;
        let f = self.fields();
        let limit = request.limit.clamp(1, MAX_LIMIT);
        let Some(query_vector) = query_vector else {
            let page = self.lexical(
                &statistics,
                plan,
                limit,
                request.offset,
                request,
                with_facets,
            )?;
            let mut hits = Vec::with_capacity(page.top.len());
            for (score, address) in page.top {
                hits.push(RankedHit {
                    score,
                    article: self.articles.get(searcher, f, address)?,
                    section_index: None,
                    cosine: None,
                });
            }
            self.choose_sections(&statistics, plan, &mut hits)?;
            if !request.transcript {
                respect_actions(&request.text, &mut hits, None);
            }
            return Ok(RankedPage {
                total: page.total,
                total_exact: page.total_exact,
                hits,
                facets: page.facets,
            });
        };
        self.rank_fused(
            &statistics,
            plan,
            request,
            retrieval,
            with_facets,
            &query_vector,
        )
    }

    /// Every restriction on what `request` may return (kind, audience,
    /// filters, other plans), around `scoring`: the lexical and the semantic
    /// side both go through it, so a vector can never reach a result the
    /// words could not.
    fn restricted(&self, request: &SearchRequest, scoring: Box<dyn Query>) -> BooleanQuery {
        let f = self.fields();
        let mut query = self.filtered(KIND_ARTICLE, &request.filters, request.visibility, scoring);
        if request.exclude_other_plans
            && let Some(plan_name) = &request.context.plan
        {
            // Articles limited to some plans, none of which is the customer's.
            let other_plans = BooleanQuery::new(vec![
                (Occur::Must, term(f.plan, PLAN_RESTRICTED)),
                (Occur::MustNot, term(f.plan, &keyword(plan_name))),
            ]);
            query = BooleanQuery::new(vec![
                (Occur::Must, Box::new(query)),
                (Occur::MustNot, Box::new(other_plans)),
            ]);
        }
        query
    }

    /// What `request`'s restrictions allow ([`Allowed`]), from
    /// [`Self::restricted`] around a match-all query: built once per
    /// restriction and index generation.
    fn allowed(
        &self,
        searcher: &Searcher,
        request: &SearchRequest,
    ) -> Result<Arc<Allowed>, SearchError> {
        let generation = searcher.generation().generation_id();
        let key = restriction_key(request);
        {
            let cache = self.allowed.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.generation == generation
                && let Some(hit) = cache.entries.get(&key)
            {
                return Ok(hit.clone());
            }
        }
        let query = self.restricted(request, Box::new(tantivy::query::AllQuery));
        let allowed = Arc::new(Allowed {
            documents: topk::Restriction::build(searcher, &query)?,
            articles: std::sync::OnceLock::new(),
        });
        let mut cache = self.allowed.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.generation != generation || cache.entries.len() >= ALLOWED_CACHE_ENTRIES {
            cache.generation = generation;
            cache.entries.clear();
        }
        cache.entries.insert(key, allowed.clone());
        Ok(allowed)
    }

    /// The words' side of a ranking ([`topk`]): candidates by block-max WAND
    /// over a flat union of the plan's terms, re-scored by the full query
    /// (boosts applied in both), then, if `with_facets`, the matches
    /// counted and faceted without scores (without, the total is a lower
    /// bound: what was ranked).
    fn lexical(
        &self,
        statistics: &Statistics<'_>,
        plan: &QueryPlan,
        limit: usize,
        offset: usize,
        request: &SearchRequest,
        with_facets: bool,
    ) -> Result<LexicalPage, SearchError> {
        let searcher = statistics.searcher();
        let f = self.fields();
        let fields = self.article_fields();
        let allowed = self.allowed(searcher, request)?;
        let restriction = &allowed.documents;
        let boosts = self.boosts(&request.context);
        let wanted = offset + limit;
        let window = wanted
            .saturating_mul(CANDIDATES_PER_RESULT)
            .max(MIN_CANDIDATES);
        let candidates = plan.candidate_query(&fields);
        let bound = self.exhaustive_up_to.min(self.exact_total_up_to as u64);
        if bound > 0 {
            let mut postings = 0u64;
            let mut failed = None;
            candidates.query_terms(&mut |term, _| match statistics
                .cached_doc_freq(term, &self.doc_freqs)
            {
                Ok(found) => postings = postings.saturating_add(found),
                Err(error) => failed = Some(error),
            });
            if let Some(error) = failed {
                return Err(error.into());
            }
            if postings <= bound {
                return self.exhaustive(
                    statistics,
                    plan,
                    limit,
                    offset,
                    request,
                    with_facets,
                    &boosts,
                );
            }
        }
        let candidates = statistics.weight(&*candidates, &self.doc_freqs)?;
        let candidates = topk::top_k(&*candidates, searcher, restriction, window, &boosts)?;
        // Scored as the restricted query scored every match before: the
        // filters' terms add their (constant) scores too.
        let mut full: Vec<ScoreTree> = self
            .filter_terms(KIND_ARTICLE, &request.filters, request.visibility)
            .into_iter()
            .map(|t| ScoreTree::Term(t, IndexRecordOption::Basic))
            .collect();
        full.push(plan.scoring_tree(&fields, &[(f.title, 1.5), (f.body, 1.0)]));
        let mut top = topk::rescore(
            &ScoreTree::All(full),
            |query| statistics.weight(query, &self.doc_freqs),
            searcher,
            candidates.into_iter().map(|(_, address)| address),
            &boosts,
        )?;
        top.truncate(wanted);
        top.drain(..offset.min(top.len()));
        if !with_facets {
            // Answers and suggestions show neither a total nor facets.
            return Ok(LexicalPage {
                total: offset + top.len(),
                total_exact: false,
                top,
                facets: Facets::default(),
            });
        }
        let matching = plan.matching_tree(f.any_text, &fields).to_query().weight(
            tantivy::query::EnableScoring::disabled_from_searcher(searcher),
        )?;
        let facet_fields = ["category_facet", "tag_facet"];
        let counted = topk::count(
            &*matching,
            searcher,
            restriction,
            self.exact_total_up_to,
            with_facets.then_some((&*self.facet_cache, &facet_fields[..])),
        )?;
        let mut counts = counted.facets.into_iter();
        Ok(LexicalPage {
            top,
            total: counted.total,
            total_exact: counted.exact,
            facets: Facets {
                category: counts.next().unwrap_or_default(),
                tags: counts.next().unwrap_or_default(),
            },
        })
    }

    /// [`Self::lexical`] when the matches are few: the full query scores,
    /// counts and facets every match in one pass (exact: the candidates'
    /// terms held no more postings than the counting bound).
    #[allow(clippy::too_many_arguments)]
    fn exhaustive(
        &self,
        statistics: &Statistics<'_>,
        plan: &QueryPlan,
        limit: usize,
        offset: usize,
        request: &SearchRequest,
        with_facets: bool,
        boosts: &ColumnBoosts,
    ) -> Result<LexicalPage, SearchError> {
        let f = self.fields();
        let query = self.restricted(
            request,
            plan.scoring_query(&self.article_fields(), &[(f.title, 1.5), (f.body, 1.0)]),
        );
        let boosts = boosts.clone();
        let top = TopDocs::with_limit(limit).and_offset(offset).tweak_score(
            move |segment: &tantivy::SegmentReader| {
                use topk::Boosting;
                // A column that cannot be read boosts nothing.
                let boost = boosts
                    .segment(segment)
                    .unwrap_or_else(|_| Box::new(|_, score| score));
                move |doc: tantivy::DocId, score: f32| boost(doc, score)
            },
        );
        let (top, total, facets) = if with_facets {
            let counter = FacetCounter::new(
                self.facet_cache.clone(),
                vec!["category_facet", "tag_facet"],
            );
            let (top, total, counts) = statistics.search(&query, &(top, Count, counter))?;
            let mut counts = counts.into_iter();
            let facets = Facets {
                category: counts.next().unwrap_or_default(),
                tags: counts.next().unwrap_or_default(),
            };
            (top, total, facets)
        } else {
            let (top, total) = statistics.search(&query, &(top, Count))?;
            (top, total, Facets::default())
        };
        Ok(LexicalPage {
            top,
            total,
            total_exact: true,
            facets,
        })
    }

    /// [`Self::rank`] with a query vector: the top [`FUSION_DEPTH`] by words
    /// and by meaning, fused by score: `w·cosine + (1−w)·score/best score`
    /// ([`semantic_weight`]). Articles found by meaning alone count in the
    /// total and the facets like any other hit.
    fn rank_fused(
        &self,
        statistics: &Statistics<'_>,
        plan: &QueryPlan,
        request: &SearchRequest,
        retrieval: Retrieval,
        with_facets: bool,
        query_vector: &[f32],
    ) -> Result<RankedPage, SearchError> {
        let searcher = statistics.searcher();
        let f = self.fields();
        let limit = request.limit.clamp(1, MAX_LIMIT);
        let depth = (request.offset + limit).max(FUSION_DEPTH);
        let LexicalPage {
            top: lexical,
            total: lexical_total,
            total_exact,
            mut facets,
        } = if plan.is_empty() || retrieval == Retrieval::Semantic {
            LexicalPage {
                top: Vec::new(),
                total: 0,
                total_exact: true,
                facets: Facets::default(),
            }
        } else {
            self.lexical(statistics, plan, depth, 0, request, with_facets)?
        };
        // What the caller may see, by the same restrictions as the words.
        let allowed = self.allowed(searcher, request)?;
        let allowed = allowed.articles(searcher, &self.facet_cache)?;
        let vectors = self.semantic.vectors();
        let mut semantic = vectors.best_articles(
            query_vector,
            |id| allowed.contains_key(id),
            depth,
            SEMANTIC_FLOOR,
        );
        // Context and feedback boosts apply to the meaning's ranking too,
        // read from the same columns as the words' side.
        let boosts = self.boosts(&request.context);
        if !boosts.boosts.is_neutral() {
            use topk::Boosting;
            let per_segment = searcher
                .segment_readers()
                .iter()
                .map(|segment| boosts.segment(segment))
                .collect::<tantivy::Result<Vec<_>>>()?;
            for hit in &mut semantic {
                if let Some(&address) = allowed.get(&hit.article_id) {
                    hit.cosine =
                        per_segment[address.segment_ord as usize](address.doc_id, hit.cosine);
                }
            }
            semantic.sort_by(|a, b| b.cosine.total_cmp(&a.cosine));
        }

        struct Candidate {
            fused: f32,
            lexical: f32,
            address: DocAddress,
            semantic: Option<(usize, f32)>,
        }
        let mut candidates: std::collections::HashMap<String, Candidate> =
            std::collections::HashMap::new();
        let lexical_ids: Vec<String> = lexical
            .iter()
            .map(|(_, address)| Ok(self.articles.get(searcher, f, *address)?.id.clone()))
            .collect::<Result<_, SearchError>>()?;
        let weight = semantic_weight(&request.text, request.transcript);
        // Relative to the best lexical score: BM25's scale varies by query.
        let max_lexical = lexical.first().map_or(1.0, |(s, _)| s.max(1e-6));
        for ((score, address), id) in lexical.iter().zip(&lexical_ids) {
            candidates.insert(
                id.clone(),
                Candidate {
                    fused: (1.0 - weight) * score / max_lexical,
                    lexical: *score,
                    address: *address,
                    semantic: None,
                },
            );
        }
        let mut semantic_only = Vec::new();
        for hit in &semantic {
            let share = weight * hit.cosine;
            match candidates.get_mut(&hit.article_id) {
                Some(candidate) => {
                    candidate.fused += share;
                    candidate.semantic = Some((hit.section_index, hit.cosine));
                }
                None => {
                    let Some(&address) = allowed.get(&hit.article_id) else {
                        continue;
                    };
                    semantic_only.push(address);
                    candidates.insert(
                        hit.article_id.clone(),
                        Candidate {
                            fused: share,
                            lexical: 0.0,
                            address,
                            semantic: Some((hit.section_index, hit.cosine)),
                        },
                    );
                }
            }
        }
        // Articles found by meaning alone join the total and the facets.
        let total = lexical_total + semantic_only.len();
        if with_facets {
            for &address in &semantic_only {
                let article = self.articles.get(searcher, f, address)?;
                if let Some(category) = &article.category {
                    *facets.category.entry(category.clone()).or_default() += 1;
                }
                for tag in &article.tags {
                    *facets.tags.entry(tag.clone()).or_default() += 1;
                }
            }
        }
        let mut ranked: Vec<(String, Candidate)> = candidates.into_iter().collect();
        ranked.sort_by(|(a_id, a), (b_id, b)| {
            b.fused
                .total_cmp(&a.fused)
                .then(b.lexical.total_cmp(&a.lexical))
                .then_with(|| a_id.cmp(b_id))
        });
        let mut hits = Vec::with_capacity(limit);
        for (_, candidate) in ranked.into_iter().skip(request.offset).take(limit) {
            hits.push(RankedHit {
                score: candidate.lexical,
                article: self.articles.get(searcher, f, candidate.address)?,
                section_index: candidate.semantic.map(|(section, _)| section),
                cosine: candidate.semantic.map(|(_, cosine)| cosine),
            });
        }
        if !plan.is_empty() {
            // The words' choice of section, then meaning may overrule it.
            let by_meaning: Vec<Option<usize>> = hits.iter().map(|h| h.section_index).collect();
            self.choose_sections(statistics, plan, &mut hits)?;
            for (hit, by_meaning) in hits.iter_mut().zip(by_meaning) {
                if hit.score == 0.0 && by_meaning.is_some() {
                    hit.section_index = by_meaning;
                }
            }
        }
        for hit in &mut hits {
            let scores = vectors.section_scores(query_vector, &hit.article.id);
            let Some(&(best, best_cosine)) = scores.iter().max_by(|a, b| a.1.total_cmp(&b.1))
            else {
                continue;
            };
            let current = hit
                .section_index
                .and_then(|i| scores.iter().find(|(s, _)| *s == i).map(|(_, c)| *c));
            match current {
                Some(cosine) if cosine + SECTION_SWITCH_MARGIN >= best_cosine => {
                    hit.cosine = Some(cosine);
                }
                _ if best < hit.article.sections.len() => {
                    hit.section_index = Some(best);
                    hit.cosine = Some(best_cosine);
                }
                _ => {}
            }
        }
        if !request.transcript {
            respect_actions(&request.text, &mut hits, Some((&vectors, query_vector)));
        }
        Ok(RankedPage {
            total,
            total_exact,
            hits,
            facets,
        })
    }

    /// The context and feedback boosts of a request, read from columns.
    fn boosts(&self, context: &Context) -> ColumnBoosts {
        let w = self.weights;
        let pick = |value: &Option<String>, boost: f32| value.as_ref().map(|v| (keyword(v), boost));
        ColumnBoosts {
            boosts: Boosts {
                product: pick(&context.product, w.context_product),
                plan: pick(&context.plan, w.context_plan),
                locale: pick(&context.locale, w.context_locale),
                feedback: self.feedback.current(),
            },
            cache: self.facet_cache.clone(),
        }
    }

    /// Sets each hit's section to the one that best matches the plan (one
    /// query for the whole page), else its first section. Scored with the
    /// ranking's statistics: which section wins depends on term rarity.
    fn choose_sections(
        &self,
        statistics: &Statistics<'_>,
        plan: &QueryPlan,
        hits: &mut [RankedHit],
    ) -> Result<(), SearchError> {
        if hits.is_empty() {
            return Ok(());
        }
        let searcher = statistics.searcher();
        let f = self.fields();
        // The hits' sections, then each scored on its own (a union's scorer
        // would score every matching section around them).
        let paths = hits
            .iter()
            .map(|hit| (Occur::Should, term(f.path, &hit.article.path)))
            .collect();
        let sections = BooleanQuery::new(vec![
            (Occur::Must, term(f.kind, KIND_SECTION)),
            (Occur::Must, Box::new(BooleanQuery::new(paths))),
        ]);
        let sections = searcher.search(&sections, &tantivy::collector::DocSetCollector)?;
        let scoring = plan.scoring_tree(
            &[(f.section_headings, 2.0), (f.section_body, 1.0)],
            &[(f.section_body, 1.0)],
        );
        let scored = topk::rescore(
            &scoring,
            |query| statistics.weight(query, &self.doc_freqs),
            searcher,
            sections,
            &topk::Unboosted,
        )?;
        // Best first, ties to the earlier section: the first of each article.
        let positions: std::collections::HashMap<&str, usize> = hits
            .iter()
            .enumerate()
            .map(|(i, hit)| (hit.article.id.as_str(), i))
            .collect();
        let mut best: Vec<Option<(f32, DocAddress)>> = vec![None; hits.len()];
        for (score, address) in scored {
            let ids = self
                .facet_cache
                .field(searcher.segment_reader(address.segment_ord), "id")?;
            if let Some(&i) = ids
                .of(address.doc_id)
                .next()
                .and_then(|id| positions.get(id))
                && best[i].is_none()
            {
                best[i] = Some((score, address));
            }
        }
        for (hit, best) in hits.iter_mut().zip(best) {
            let chosen = match best {
                Some((_, address)) => {
                    let doc: TantivyDocument = searcher.doc(address)?;
                    doc.get_first(f.section_index)
                        .and_then(|v| v.as_u64())
                        .map(|i| i as usize)
                        .filter(|&i| i < hit.article.sections.len())
                }
                None => None,
            };
            hit.section_index = chosen.or((!hit.article.sections.is_empty()).then_some(0));
        }
        Ok(())
    }

    /// Title suggestions for every keystroke: prefix- and typo-tolerant.
    pub fn autocomplete(
        &self,
        text: &str,
        limit: usize,
        filters: &Filters,
        visibility: Visibility,
    ) -> Result<Vec<Suggestion>, SearchError> {
        let searcher = self.kb.reader.searcher();
        let key = suggestion_key(&searcher, text, limit, filters, visibility);
        let synonyms = self.current_synonyms();
        if let Some(cached) = self.suggestions.get(&key)
            && Arc::ptr_eq(&cached.synonyms, &synonyms)
        {
            return Ok(cached.suggestions.clone());
        }
        let suggestions = self.rank_suggestions(&searcher, text, key.limit, filters, visibility)?;
        self.suggestions.insert(
            key,
            Arc::new(CachedSuggestions {
                synonyms,
                suggestions: suggestions.clone(),
            }),
        );
        Ok(suggestions)
    }

    /// [`Self::autocomplete`]'s answer if it is cached, without ranking:
    /// cheap enough for the async worker, so only misses pay the trip to
    /// the blocking pool.
    pub fn cached_autocomplete(
        &self,
        text: &str,
        limit: usize,
        filters: &Filters,
        visibility: Visibility,
    ) -> Option<Vec<Suggestion>> {
        let searcher = self.kb.reader.searcher();
        let key = suggestion_key(&searcher, text, limit, filters, visibility);
        let cached = self.suggestions.get(&key)?;
        Arc::ptr_eq(&cached.synonyms, &self.current_synonyms()).then(|| cached.suggestions.clone())
    }

    /// [`Self::autocomplete`] without its cache.
    fn rank_suggestions(
        &self,
        searcher: &Searcher,
        text: &str,
        limit: usize,
        filters: &Filters,
        visibility: Visibility,
    ) -> Result<Vec<Suggestion>, SearchError> {
        let statistics = self.statistics(searcher, visibility)?;
        let plan = self.plan_with(&statistics, text, 1);
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        let f = self.fields();
        let scoring = plan.scoring_query(&[(f.title, 3.0), (f.tags_text, 0.5)], &[(f.title, 1.0)]);
        let query = self.filtered(KIND_ARTICLE, filters, visibility, scoring);
        let top = statistics.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        self.articles.forget_stale(searcher);
        let mut suggestions = Vec::with_capacity(top.len());
        for (_, address) in top {
            let article = self.articles.get(searcher, f, address)?;
            suggestions.push(Suggestion {
                highlighted: snippet::highlight_all(&article.title, &plan.highlight),
                url: article_url(&article.id, None),
                id: article.id.clone(),
                title: article.title.clone(),
                category: article.category.clone(),
            });
        }
        Ok(suggestions)
    }

    /// The article with this id, if it exists and the caller may see it.
    /// Internal articles are simply absent for public callers, so their
    /// existence isn't leaked.
    pub fn article(
        &self,
        id: &str,
        visibility: Visibility,
    ) -> Result<Option<Article>, SearchError> {
        let searcher = self.kb.reader.searcher();
        let f = self.fields();
        let query = self.filtered(
            KIND_ARTICLE,
            &Filters::default(),
            visibility,
            term(f.id, id),
        );
        let top = self
            .statistics(&searcher, visibility)?
            .search(&query, &TopDocs::with_limit(1).order_by_score())?;
        match top.first() {
            Some((_, address)) => {
                let mut article = self.stored_article(&searcher, *address)?;
                self.resolve_links(&searcher, &mut article, visibility)?;
                Ok(Some(article))
            }
            None => Ok(None),
        }
    }

    /// Points links to other articles at the `/articles/{id}` URL of the
    /// article they mean, as the index holds it now (so a link to an article
    /// added later works without touching this one). Only articles the
    /// caller may read are linked; a link that matches none, or more than
    /// one, is left as written.
    fn resolve_links(
        &self,
        searcher: &Searcher,
        article: &mut Article,
        visibility: Visibility,
    ) -> Result<(), SearchError> {
        let f = self.fields();
        let statistics = self.statistics(searcher, visibility)?;
        for link in &article.links {
            let mut resolved = None;
            for key in crate::index::documents::target_keys(&link.target) {
                let query = self.filtered(
                    KIND_ARTICLE,
                    &Filters::default(),
                    visibility,
                    term(f.link_key, &key),
                );
                let hits = statistics.search(&query, &TopDocs::with_limit(2).order_by_score())?;
                if let [(_, address)] = hits[..] {
                    let doc: TantivyDocument = searcher.doc(address)?;
                    resolved = doc
                        .get_first(f.id)
                        .and_then(|v| v.as_str())
                        .map(str::to_string);
                    break;
                }
                if hits.len() > 1 {
                    break; // ambiguous: a wrong article is worse than none
                }
            }
            let Some(id) = resolved else { continue };
            let mut url = format!("/articles/{}", crate::article::encode_path(&id));
            if let Some(fragment) = &link.fragment {
                url.push('#');
                url.push_str(&crate::article::encode_path(fragment));
            }
            if url != link.href {
                article.html = article.html.replace(
                    &format!("href=\"{}\"", link.href),
                    &format!("href=\"{url}\""),
                );
            }
        }
        Ok(())
    }

    /// Every article the caller may see: id, title, file path (relative to
    /// the articles folder) and `updated`, by id.
    pub fn all_articles(
        &self,
        visibility: Visibility,
    ) -> Result<Vec<crate::analytics::dashboard::ArticleInfo>, SearchError> {
        let searcher = self.kb.reader.searcher();
        let all = Box::new(tantivy::query::AllQuery);
        let query = self.filtered(KIND_ARTICLE, &Filters::default(), visibility, all);
        let addresses = searcher.search(&query, &tantivy::collector::DocSetCollector)?;
        let mut articles = Vec::with_capacity(addresses.len());
        for address in addresses {
            let article = self.stored_article(&searcher, address)?;
            articles.push(crate::analytics::dashboard::ArticleInfo {
                id: article.id,
                title: article.title,
                path: article.path,
                updated: article.updated,
            });
        }
        articles.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(articles)
    }

    /// Article counts per category and tag over everything the caller may
    /// see (the portal's home page); as cheap as a search's facets.
    pub fn browse_facets(&self, visibility: Visibility) -> Result<Facets, SearchError> {
        let searcher = self.kb.reader.searcher();
        self.facet_cache.forget_stale(&searcher);
        let all = Box::new(tantivy::query::AllQuery);
        let query = self.filtered(KIND_ARTICLE, &Filters::default(), visibility, all);
        let counter = FacetCounter::new(
            self.facet_cache.clone(),
            vec!["category_facet", "tag_facet"],
        );
        let mut counts = searcher.search(&query, &counter)?.into_iter();
        Ok(Facets {
            category: counts.next().unwrap_or_default(),
            tags: counts.next().unwrap_or_default(),
        })
    }

    /// Articles sorted by title, for browsing a category.
    pub fn list(
        &self,
        filters: &Filters,
        limit: usize,
        offset: usize,
        visibility: Visibility,
    ) -> Result<(usize, Vec<ArticleListing>), SearchError> {
        let searcher = self.kb.reader.searcher();
        let all = Box::new(tantivy::query::AllQuery);
        let query = self.filtered(KIND_ARTICLE, filters, visibility, all);
        let top = TopDocs::with_limit(limit.clamp(1, MAX_LIMIT))
            .and_offset(offset)
            .order_by_string_fast_field("title_sort", Order::Asc);
        let (docs, total) = searcher.search(&query, &(top, Count))?;
        let mut listings = Vec::with_capacity(docs.len());
        for (_, address) in docs {
            let article = self.stored_article(&searcher, address)?;
            listings.push(ArticleListing {
                url: article_url(&article.id, None),
                id: article.id,
                title: article.title,
                category: article.category,
                tags: article.tags,
                summary: article.summary,
                audience: article.audience,
                updated: article.updated,
            });
        }
        Ok((total, listings))
    }

    fn filtered(
        &self,
        kind: &str,
        filters: &Filters,
        visibility: Visibility,
        scoring: Box<dyn Query>,
    ) -> BooleanQuery {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = self
            .filter_terms(kind, filters, visibility)
            .into_iter()
            .map(|t| {
                (
                    Occur::Must,
                    Box::new(TermQuery::new(t, IndexRecordOption::Basic)) as _,
                )
            })
            .collect();
        clauses.push((Occur::Must, scoring));
        BooleanQuery::new(clauses)
    }

    /// The terms a document of `kind` must hold to pass `filters` for a
    /// caller with `visibility`.
    fn filter_terms(&self, kind: &str, filters: &Filters, visibility: Visibility) -> Vec<Term> {
        let f = self.fields();
        let mut terms = vec![Term::from_field_text(f.kind, kind)];
        if visibility == Visibility::PublicOnly {
            terms.push(Term::from_field_text(f.audience, Audience::Public.as_str()));
        }
        for (field, value) in [
            (f.category, &filters.category),
            (f.tag, &filters.tag),
            (f.product, &filters.product),
            (f.locale, &filters.locale),
        ] {
            if let Some(value) = value {
                terms.push(Term::from_field_text(field, &keyword(value)));
            }
        }
        terms
    }

    fn stored_article(
        &self,
        searcher: &Searcher,
        address: DocAddress,
    ) -> Result<Article, SearchError> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let json = doc
            .get_first(self.fields().stored_article)
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        Ok(serde_json::from_str(json)?)
    }
}

/// What tells one request's restrictions from another's (see
/// [`SearchEngine::restricted`]).
fn restriction_key(request: &SearchRequest) -> String {
    let filters = &request.filters;
    format!(
        "{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}",
        request.visibility,
        filters.category,
        filters.tag,
        filters.product,
        filters.locale,
        request.exclude_other_plans.then_some(&request.context.plan),
    )
}

fn term(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

/// The portal URL of an article, with an optional section anchor. Each id
/// segment is percent-encoded (ids may hold spaces, quotes, `?` or `#`).
pub fn article_url(id: &str, anchor: Option<&str>) -> String {
    let mut url = String::from("/articles/");
    for (i, segment) in id.split('/').enumerate() {
        if i > 0 {
            url.push('/');
        }
        percent_encode_into(&mut url, segment);
    }
    if let Some(anchor) = anchor {
        url.push('#');
        percent_encode_into(&mut url, anchor);
    }
    url
}

/// Percent-encodes everything but unreserved characters (URL paths and query values).
pub fn percent_encode_into(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{QUERIES, help_center};
    use super::*;

    /// `n` articles that score exactly alike for "printer offline" (and
    /// rank in index order), then one more like them for product `acme`.
    fn tied_printers(n: usize) -> super::testing::TestIndex {
        let mut index = super::testing::TestIndex::new();
        let body = "The printer shows offline. Restart the print spooler.";
        for i in 0..n {
            index.add_source(
                &format!("p{i:04}.md"),
                &format!("---\ntitle: Printer offline\ncategory: Printing\n---\n{body}\n"),
            );
        }
        index.add_source(
            "zz-acme.md",
            &format!(
                "---\ntitle: Printer offline\ncategory: Acme\nproducts: [acme]\n---\n{body}\n"
            ),
        );
        index.commit();
        index
    }

    #[test]
    fn a_context_boost_lifts_an_article_from_beyond_the_candidate_window() {
        let index = tied_printers(MIN_CANDIDATES * 2);
        // The passes, not one exhaustive pass over these few matches.
        let engine =
            SearchEngine::new(index.kb.clone(), SynonymsHandle::default()).with_exhaustive_up_to(0);
        let mut request = SearchRequest::new("printer offline", 10, Visibility::PublicOnly);
        let plain = engine.search(&request).expect("search");
        assert!(
            plain.hits.iter().all(|h| h.id != "zz-acme"),
            "last in index order among ties: {:?}",
            plain.hits.iter().map(|h| &h.id).collect::<Vec<_>>()
        );
        request.context.product = Some("ACME".into());
        let boosted = engine.search(&request).expect("search");
        assert_eq!(boosted.hits[0].id, "zz-acme");
        assert!(boosted.hits[0].score > boosted.hits[1].score);
        // Re-scored like every other hit: its score is the tie's, boosted.
        let ratio = boosted.hits[0].score / boosted.hits[1].score;
        assert!(
            (ratio - engine.weights.context_product).abs() < 1e-4,
            "{ratio}"
        );
    }

    /// What a search shows: ids, sections, snippets, total, facets, and
    /// scores to 1e-4 (the passes add a query's parts in another order).
    fn page(engine: &SearchEngine, request: &SearchRequest) -> (Vec<String>, Vec<f32>, String) {
        let results = engine.search(request).expect("search");
        let shown = results
            .hits
            .iter()
            .map(|h| format!("{} {:?} {}", h.id, h.section.anchor, h.snippet))
            .collect();
        let scores = results.hits.iter().map(|h| h.score).collect();
        let counts = format!(
            "{} {} {:?}",
            results.total, results.total_exact, results.facets
        );
        (shown, scores, counts)
    }

    #[test]
    fn the_passes_show_what_one_exhaustive_pass_shows() {
        for internal in [false, true] {
            let index = help_center(internal);
            let one_pass = SearchEngine::new(index.kb.clone(), SynonymsHandle::default());
            let passes = SearchEngine::new(index.kb.clone(), SynonymsHandle::default())
                .with_exhaustive_up_to(0);
            for text in QUERIES {
                for visibility in [Visibility::PublicOnly, Visibility::IncludeInternal] {
                    let mut request = SearchRequest::new(*text, 10, visibility);
                    request.context.locale = Some("en".into());
                    let (a, a_scores, a_counts) = page(&one_pass, &request);
                    let (b, b_scores, b_counts) = page(&passes, &request);
                    assert_eq!(a, b, "{text} {visibility:?}");
                    assert_eq!(a_counts, b_counts, "{text} {visibility:?}");
                    for (x, y) in a_scores.iter().zip(&b_scores) {
                        assert!((x - y).abs() <= 1e-4 * x.abs(), "{text}: {x} vs {y}");
                    }
                }
            }
        }
        // Ties broken alike, boosts applied alike.
        let index = tied_printers(30);
        let one_pass = SearchEngine::new(index.kb.clone(), SynonymsHandle::default());
        let passes =
            SearchEngine::new(index.kb.clone(), SynonymsHandle::default()).with_exhaustive_up_to(0);
        let mut request = SearchRequest::new("printer offline", 10, Visibility::PublicOnly);
        request.context.product = Some("acme".into());
        assert_eq!(page(&one_pass, &request).0, page(&passes, &request).0);
    }

    #[test]
    fn totals_past_the_bound_are_lower_bounds_and_pages_still_work() {
        let index = tied_printers(30);
        let engine = SearchEngine::new(index.kb.clone(), SynonymsHandle::default())
            .with_exact_total_up_to(20);
        let mut request = SearchRequest::new("printer offline", 10, Visibility::PublicOnly);
        let bounded = engine.search(&request).expect("search");
        assert_eq!((bounded.total, bounded.total_exact), (20, false));
        // The facets count the matches counted: lower bounds too.
        let counted: u64 = bounded.facets.category.values().sum();
        assert_eq!(counted, 20);
        // Counting stops; ranking does not: the last page is reachable.
        request.offset = 25;
        let last = engine.search(&request).expect("search");
        assert_eq!(last.hits.len(), 6, "31 matches, from the 26th");

        let exact = SearchEngine::new(index.kb.clone(), SynonymsHandle::default())
            .with_exact_total_up_to(31);
        let all = exact
            .search(&SearchRequest::new(
                "printer offline",
                10,
                Visibility::PublicOnly,
            ))
            .expect("search");
        assert_eq!((all.total, all.total_exact), (31, true));
        assert_eq!(all.facets.category["Printing"], 30);
        assert_eq!(all.facets.category["Acme"], 1);
    }

    /// Everything a channel shows of a ranking, scores to the bit.
    fn shown(engine: &SearchEngine, text: &str, visibility: Visibility) -> Vec<String> {
        let request = SearchRequest::new(text, 10, visibility);
        let mut shown: Vec<String> = engine
            .search(&request)
            .expect("search")
            .hits
            .into_iter()
            .map(|h| {
                format!(
                    "{} {} {:?} {}",
                    h.id,
                    h.score.to_bits(),
                    h.section.anchor,
                    h.snippet
                )
            })
            .collect();
        let (plan, suggested) = engine
            .suggest(
                &[(text.to_string(), 1.0)],
                &Context::default(),
                visibility,
                5,
                &[],
            )
            .expect("suggest");
        shown.extend(
            plan.words
                .iter()
                .map(|w| format!("{} {}", w.stem, w.idf.to_bits())),
        );
        shown.extend(
            suggested
                .iter()
                .map(|h| format!("suggest {} {}", h.article.id, h.score.to_bits())),
        );
        let answer = engine
            .answer(text, &Context::default(), visibility, 2)
            .expect("answer");
        shown.push(format!("confidence {}", answer.confidence.to_bits()));
        shown.extend(answer.plan.words.iter().flat_map(|w| {
            w.variants
                .iter()
                .map(|v| format!("variant {} {}", v.stem, v.weight.to_bits()))
        }));
        shown.extend(
            answer
                .hits
                .iter()
                .map(|h| format!("answer {} {}", h.article.id, h.score.to_bits())),
        );
        let completions = engine
            .autocomplete(text, 5, &Filters::default(), visibility)
            .expect("autocomplete");
        shown.extend(
            completions
                .into_iter()
                .map(|s| format!("complete {}", s.id)),
        );
        shown
    }

    /// Scores of the public articles found for `text`.
    fn public_scores(engine: &SearchEngine, text: &str, visibility: Visibility) -> Vec<String> {
        let request = SearchRequest::new(text, 10, visibility);
        let results = engine.search(&request).expect("search");
        results
            .hits
            .into_iter()
            .filter(|h| h.audience == Audience::Public)
            .map(|h| format!("{} {}", h.id, h.score.to_bits()))
            .collect()
    }

    #[test]
    fn anonymous_rankings_are_those_of_an_index_without_internal_articles() {
        let public = help_center(false);
        let mixed = help_center(true);
        let public_engine = SearchEngine::new(public.kb.clone(), SynonymsHandle::default());
        let mixed_engine = SearchEngine::new(mixed.kb.clone(), SynonymsHandle::default());
        let mut agent_differs = false;
        for text in QUERIES {
            let expected = shown(&public_engine, text, Visibility::PublicOnly);
            assert!(
                expected.iter().any(|s| s.starts_with("answer")),
                "{text:?}: {expected:?}"
            );
            assert_eq!(
                shown(&mixed_engine, text, Visibility::PublicOnly),
                expected,
                "{text:?}"
            );
            // Twice: the second comes from the caches.
            assert_eq!(
                shown(&mixed_engine, text, Visibility::PublicOnly),
                expected,
                "{text:?}"
            );
            // Agents' statistics count everything: the internal articles
            // move their scores of the same public articles.
            agent_differs |= public_scores(&mixed_engine, text, Visibility::IncludeInternal)
                != public_scores(&public_engine, text, Visibility::IncludeInternal);
        }
        assert!(
            agent_differs,
            "internal articles change agents' scores of public articles"
        );
    }

    #[test]
    fn article_urls_are_percent_encoded_per_segment() {
        assert_eq!(
            article_url("account/reset", Some("if-lost")),
            "/articles/account/reset#if-lost"
        );
        assert_eq!(
            article_url("excel/can't use?#", None),
            "/articles/excel/can%27t%20use%3F%23"
        );
    }
}
