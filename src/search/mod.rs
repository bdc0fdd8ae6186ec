//! Search and ranking: query building ([`query`]), synonyms ([`synonyms`]) and
//! snippets ([`snippet`]). [`SearchEngine`] is what the HTTP channels and the
//! CLI call; it never writes.
//!
//! Ranking is two-stage: article documents are ranked with field-weighted
//! BM25, typo/prefix/synonym variants and a proximity boost; then, for each
//! hit on the page, the same query over that article's section documents
//! picks the section to deep-link to and take the snippet from.

pub mod query;
pub mod snippet;
pub mod synonyms;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};

use serde::Serialize;
use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, Order, Searcher, TantivyDocument, TantivyError, Term};

use self::query::{PlanOptions, QueryPlan, RankingWeights};
use self::synonyms::{Synonyms, SynonymsHandle};
use crate::article::{Article, Audience, Section};
use crate::index::schema::{KIND_ARTICLE, KIND_SECTION, keyword};
use crate::index::{Fields, KnowledgeIndex};

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

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub text: String,
    pub limit: usize,
    pub offset: usize,
    pub filters: Filters,
    pub visibility: Visibility,
}

#[derive(Debug, Clone, Serialize)]
pub struct SectionRef {
    pub heading: String,
    pub anchor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Default, Serialize)]
pub struct Facets {
    pub category: BTreeMap<String, u64>,
    pub tags: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    pub total: usize,
    pub hits: Vec<SearchHit>,
    pub facets: Facets,
}

#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    pub id: String,
    pub title: String,
    pub url: String,
    pub category: Option<String>,
    /// The title, HTML-escaped, with `<mark>` around what matched.
    pub highlighted: String,
}

#[derive(Debug, Clone, Serialize)]
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
        }
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

    pub fn plan(&self, searcher: &Searcher, text: &str, min_prefix_len: usize) -> QueryPlan {
        let synonyms = self.current_synonyms();
        QueryPlan::build(
            text,
            searcher,
            &PlanOptions {
                prefix_last_word: true,
                min_prefix_len,
                synonyms: &synonyms,
                vocabulary: self.fields().vocabulary,
                weights: self.weights,
            },
        )
    }

    pub fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        let searcher = self.kb.reader.searcher();
        let plan = self.plan(&searcher, &request.text, 2);
        if plan.is_empty() {
            return Ok(SearchResults {
                total: 0,
                hits: Vec::new(),
                facets: Facets::default(),
            });
        }
        let f = self.fields();
        let scoring = plan.scoring_query(&self.article_fields(), &[(f.title, 1.5), (f.body, 1.0)]);
        let query = self.filtered(KIND_ARTICLE, &request.filters, request.visibility, scoring);

        let mut facet_collector = FacetCollector::for_field("facet");
        facet_collector.add_facet("/category");
        facet_collector.add_facet("/tag");
        let top = TopDocs::with_limit(request.limit.clamp(1, MAX_LIMIT))
            .and_offset(request.offset)
            .order_by_score();
        let (top_docs, total, facet_counts) =
            searcher.search(&query, &(top, Count, facet_collector))?;

        let mut hits = Vec::with_capacity(top_docs.len());
        for (score, address) in top_docs {
            let article = self.stored_article(&searcher, address)?;
            let section = self.best_section(&searcher, &plan, &article)?;
            let text = match section {
                Some(section) if !section.text.is_empty() => section.text.as_str(),
                _ if !article.summary.is_empty() => article.summary.as_str(),
                _ => section.map_or("", |s| s.text.as_str()),
            };
            let snippet = snippet::snippet(text, &plan.highlight, snippet::SNIPPET_CHARS);
            let section_ref = match section {
                Some(s) => SectionRef {
                    heading: s.heading.clone(),
                    anchor: s.anchor.clone(),
                },
                None => SectionRef {
                    heading: article.title.clone(),
                    anchor: None,
                },
            };
            hits.push(SearchHit {
                url: article_url(&article.id, section_ref.anchor.as_deref()),
                id: article.id,
                title: article.title,
                category: article.category,
                tags: article.tags,
                summary: article.summary,
                audience: article.audience,
                score,
                section: section_ref,
                snippet,
            });
        }

        let facet_values = |root: &str| -> BTreeMap<String, u64> {
            facet_counts
                .get(root)
                .filter_map(|(facet, count)| {
                    facet.to_path().last().map(|name| (name.to_string(), count))
                })
                .collect()
        };
        Ok(SearchResults {
            total,
            hits,
            facets: Facets {
                category: facet_values("/category"),
                tags: facet_values("/tag"),
            },
        })
    }

    /// The section of `article` that best matches the plan, if any matches.
    fn best_section<'a>(
        &self,
        searcher: &Searcher,
        plan: &QueryPlan,
        article: &'a Article,
    ) -> Result<Option<&'a Section>, SearchError> {
        let f = self.fields();
        let scoring = plan.scoring_query(&[(f.headings, 2.0), (f.body, 1.0)], &[(f.body, 1.0)]);
        let query = BooleanQuery::new(vec![
            (Occur::Must, term(f.kind, KIND_SECTION)),
            (Occur::Must, term(f.path, &article.path)),
            (Occur::Must, scoring),
        ]);
        let top = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
        let best = match top.first() {
            Some((_, address)) => {
                let doc: TantivyDocument = searcher.doc(*address)?;
                doc.get_first(f.section_index)
                    .and_then(|v| v.as_u64())
                    .and_then(|i| article.sections.get(i as usize))
            }
            None => article.sections.first(),
        };
        Ok(best)
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
        let plan = self.plan(&searcher, text, 1);
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        let f = self.fields();
        let scoring = plan.scoring_query(&[(f.title, 3.0), (f.tags_text, 0.5)], &[(f.title, 1.0)]);
        let query = self.filtered(KIND_ARTICLE, filters, visibility, scoring);
        let top = searcher.search(
            &query,
            &TopDocs::with_limit(limit.clamp(1, MAX_LIMIT)).order_by_score(),
        )?;
        let mut suggestions = Vec::with_capacity(top.len());
        for (_, address) in top {
            let article = self.stored_article(&searcher, address)?;
            suggestions.push(Suggestion {
                highlighted: snippet::highlight_all(&article.title, &plan.highlight),
                url: article_url(&article.id, None),
                id: article.id,
                title: article.title,
                category: article.category,
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
        let top = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
        match top.first() {
            Some((_, address)) => Ok(Some(self.stored_article(&searcher, *address)?)),
            None => Ok(None),
        }
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
        let f = self.fields();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, term(f.kind, kind))];
        if visibility == Visibility::PublicOnly {
            clauses.push((Occur::Must, term(f.audience, Audience::Public.as_str())));
        }
        for (field, value) in [
            (f.category, &filters.category),
            (f.tag, &filters.tag),
            (f.product, &filters.product),
            (f.locale, &filters.locale),
        ] {
            if let Some(value) = value {
                clauses.push((Occur::Must, term(field, &keyword(value))));
            }
        }
        clauses.push((Occur::Must, scoring));
        BooleanQuery::new(clauses)
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

fn percent_encode_into(out: &mut String, text: &str) {
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
    use super::*;

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
