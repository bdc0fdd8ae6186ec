//! Per-hit article metadata, decoded once per (segment, document).
//!
//! Every hit used to load its stored document and parse the whole article JSON
//! (Markdown and HTML included) on every request: with the per-hit section
//! query, most of a search's time. Segments are immutable, so a document's
//! stored article never changes; it is decoded once without the Markdown and
//! HTML (only the article endpoint returns those, and it reads the full JSON)
//! and shared until its segment is merged away.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tantivy::index::SegmentId;
use tantivy::schema::Value;
use tantivy::{DocAddress, DocId, Searcher, TantivyDocument};

use super::SearchError;
use crate::article::{Article, Audience, Section};
use crate::index::Fields;

/// Bound on cached articles; past it the cache starts over. 8,192 articles
/// without Markdown and HTML take a few tens of MB on real help centers.
const MAX_ENTRIES: usize = 8192;

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

#[derive(Default)]
pub struct ArticleCache {
    entries: Mutex<HashMap<(SegmentId, DocId), Arc<Article>>>,
    /// The searcher generation last pruned for; pruning runs once per reload.
    pruned_generation: AtomicU64,
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
        if let Some(article) = self.lock().get(&key) {
            return Ok(article.clone());
        }
        let meta: ArticleMeta = serde_json::from_str(&stored_json(searcher, fields, address)?)?;
        let article = Arc::new(Article::from(meta));
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, article.clone());
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
        self.lock().retain(|(segment, _), _| live.contains(segment));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(SegmentId, DocId), Arc<Article>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
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
}
