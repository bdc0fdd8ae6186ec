//! Per-hit article metadata, decoded once per (segment, document).
//!
//! Every hit used to load its stored document and parse the whole article JSON
//! (Markdown and HTML included) on every request: with the per-hit section
//! query, most of a search's time. Segments are immutable, so a document's
//! stored article never changes; it is decoded once without the Markdown and
//! HTML (only the article endpoint returns those, and it reads the full JSON)
//! and shared until its segment is merged away.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use tantivy::index::SegmentId;
use tantivy::schema::Value;
use tantivy::{DocAddress, DocId, Searcher, TantivyDocument};

use super::SearchError;
use crate::article::{Article, Audience, Section};
use crate::index::Fields;

/// Bound on the cache's estimated heap size. A hit is decoded from the doc
/// store in a few microseconds, so the cache only needs the articles that
/// recur across requests: at 100k generated articles, 8,192 articles of
/// any size (the earlier bound) held about 80 MB.
const MAX_BYTES: u64 = 24 << 20;
/// quick_cache sizes its table from this; it is not a bound.
const ESTIMATED_ENTRIES: usize = 4096;

/// [`Article`] minus `markdown`, `html` and `links` (only the article
/// endpoint needs them) and `includes` (only the indexer does), which serde
/// skips over without allocating them.
#[derive(Deserialize)]
struct ArticleMeta {
    id: String,
    path: String,
    title: String,
    summary: String,
    category: Option<String>,
    tags: Vec<String>,
    products: Vec<String>,
    #[serde(default)]
    plans: Vec<String>,
    audience: Audience,
    #[serde(default)]
    unrecognized_audience: Option<String>,
    #[serde(default)]
    permalink: Option<String>,
    locale: String,
    updated: Option<String>,
    sections: Vec<Section>,
    content_hash: String,
}

impl From<ArticleMeta> for Article {
    fn from(m: ArticleMeta) -> Article {
        Article {
            id: m.id,
            path: m.path,
            title: m.title,
            summary: m.summary,
            category: m.category,
            tags: m.tags,
            products: m.products,
            plans: m.plans,
            audience: m.audience,
            unrecognized_audience: m.unrecognized_audience,
            permalink: m.permalink,
            links: Vec::new(),
            locale: m.locale,
            updated: m.updated,
            markdown: String::new(),
            html: String::new(),
            sections: m.sections,
            content_hash: m.content_hash,
            includes: Vec::new(),
        }
    }
}

/// Weighs an article by the heap its strings take (what [`MAX_BYTES`]
/// bounds), plus a small constant for the struct and map entry.
#[derive(Clone)]
struct HeapSize;

impl quick_cache::Weighter<(SegmentId, DocId), Arc<Article>> for HeapSize {
    fn weight(&self, _key: &(SegmentId, DocId), article: &Arc<Article>) -> u64 {
        let strings = [
            &article.id,
            &article.path,
            &article.title,
            &article.summary,
            &article.locale,
            &article.content_hash,
        ];
        let lists = [&article.tags, &article.products, &article.plans];
        let bytes = 256
            + strings.iter().map(|s| s.len()).sum::<usize>()
            + lists
                .iter()
                .flat_map(|l| l.iter())
                .map(|s| 24 + s.len())
                .sum::<usize>()
            + article
                .sections
                .iter()
                .map(|s| 64 + s.heading.len() + s.text.len())
                .sum::<usize>();
        bytes as u64
    }
}

/// Decoded articles by (segment, document), bounded by [`MAX_BYTES`];
/// quick_cache's S3-FIFO keeps the articles that recur.
pub struct ArticleCache {
    entries: quick_cache::sync::Cache<(SegmentId, DocId), Arc<Article>, HeapSize>,
    /// The searcher generation last pruned for; pruning runs once per reload.
    pruned_generation: AtomicU64,
}

impl Default for ArticleCache {
    fn default() -> Self {
        ArticleCache {
            entries: quick_cache::sync::Cache::with_weighter(
                ESTIMATED_ENTRIES,
                MAX_BYTES,
                HeapSize,
            ),
            pruned_generation: AtomicU64::new(0),
        }
    }
}

impl ArticleCache {
    /// The article stored in `address`, without its Markdown and HTML.
    pub fn get(
        &self,
        searcher: &Searcher,
        fields: &Fields,
        address: DocAddress,
    ) -> Result<Arc<Article>, SearchError> {
        let key = (
            searcher.segment_reader(address.segment_ord).segment_id(),
            address.doc_id,
        );
        if let Some(article) = self.entries.get(&key) {
            return Ok(article);
        }
        let meta: ArticleMeta = serde_json::from_str(&stored_json(searcher, fields, address)?)?;
        let article = Arc::new(Article::from(meta));
        self.entries.insert(key, article.clone());
        Ok(article)
    }

    /// Forgets segments the searcher no longer has; a no-op unless the reader
    /// reloaded since the last call.
    pub fn forget_stale(&self, searcher: &Searcher) {
        let generation = searcher.generation().generation_id();
        if self.pruned_generation.swap(generation, Ordering::AcqRel) == generation {
            return;
        }
        let live: HashSet<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(|s| s.segment_id())
            .collect();
        self.entries
            .retain(|(segment, _), _| live.contains(segment));
    }
}

/// The whole stored article JSON of an article document.
pub fn stored_json(
    searcher: &Searcher,
    fields: &Fields,
    address: DocAddress,
) -> Result<String, SearchError> {
    let doc: TantivyDocument = searcher.doc(address)?;
    Ok(doc
        .get_first(fields.stored_article)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_the_article_without_markdown_and_html() {
        let article = crate::article::parse(
            b"---\nid: a/b\ntitle: T\ntags: [x]\nplans: [pro]\n---\nIntro.\n\n## Part\n\nBody text.\n",
            "a/b.md",
        )
        .expect("parses");
        let json = serde_json::to_string(&article).expect("serializes");
        let meta: ArticleMeta = serde_json::from_str(&json).expect("decodes");
        let light = Article::from(meta);
        assert_eq!(
            light,
            Article {
                markdown: String::new(),
                html: String::new(),
                ..article.clone()
            }
        );
        assert!(!article.markdown.is_empty() && !article.html.is_empty());
    }

    /// The bound is on bytes, not entries: long articles leave fewer in
    /// the cache, so memory stays bounded whatever the help center writes.
    #[test]
    fn the_cache_holds_articles_up_to_its_byte_budget() {
        let cache = ArticleCache::default();
        let long = Article {
            sections: vec![Section {
                heading: "Part".into(),
                anchor: None,
                level: 2,
                text: "word ".repeat(200_000),
            }],
            ..crate::article::parse(b"---\nid: a\ntitle: T\n---\nx\n", "a.md").expect("parses")
        };
        let long = Arc::new(long);
        let segment = SegmentId::generate_random();
        for doc in 0..100 {
            cache.entries.insert((segment, doc), long.clone());
        }
        assert!(cache.entries.weight() <= MAX_BYTES);
        let fits = (MAX_BYTES / 1_000_000) as usize;
        assert!(
            (1..=fits).contains(&cache.entries.len()),
            "{} articles of 1 MB cached",
            cache.entries.len()
        );
    }
}
