//! Articles → tantivy documents.

use tantivy::TantivyDocument;

use super::schema::{Fields, KIND_ARTICLE, KIND_SECTION, PLAN_RESTRICTED};
use crate::article::rules::category_ancestors;
use crate::article::{Article, LinkTarget, strip_article_extension};

/// One `article` document followed by one `section` document per section.
pub fn article_documents(fields: &Fields, article: &Article) -> Vec<TantivyDocument> {
    article_documents_with(fields, article, None)
}

/// [`article_documents`], the article document carrying the indexer's
/// `catalog` record ([`super::catalog::encode`]).
pub fn article_documents_with(
    fields: &Fields,
    article: &Article,
    catalog: Option<&[u8]>,
) -> Vec<TantivyDocument> {
    let mut docs = Vec::with_capacity(article.sections.len() + 1);

    let mut doc = TantivyDocument::default();
    doc.add_text(fields.kind, KIND_ARTICLE);
    // Before the stored article: added after it, the document's buffer
    // (tens of KB) would grow by doubling, and up to 10,000 documents wait
    // in tantivy's queue (a 10k build's heap peaked at 139 MB, not 96).
    if let Some(record) = catalog {
        doc.add_bytes(fields.catalog, record);
    }
    add_shared(fields, article, &mut doc);
    doc.add_text(fields.content_hash, &article.content_hash);
    doc.add_text(fields.title, &article.title);
    for heading in article.headings() {
        doc.add_text(fields.headings, heading);
    }
    doc.add_text(fields.summary, &article.summary);
    doc.add_text(fields.tags_text, article.tags.join(" "));
    let body = article.body_text();
    doc.add_text(fields.body, &body);
    doc.add_text(fields.any_text, &article.title);
    for heading in article.headings() {
        doc.add_text(fields.any_text, heading);
    }
    doc.add_text(fields.any_text, &article.summary);
    doc.add_text(fields.any_text, article.tags.join(" "));
    doc.add_text(fields.any_text, &body);
    // Every surface word a query could be a typo or prefix of.
    for text in [&article.title, &article.summary, &body] {
        doc.add_text(fields.vocabulary, text);
    }
    for tag in &article.tags {
        doc.add_text(fields.vocabulary, tag);
    }
    if let Some(category) = &article.category {
        doc.add_text(fields.category_facet, category);
    }
    for tag in &article.tags {
        doc.add_text(fields.tag_facet, tag);
    }
    doc.add_text(fields.title_sort, article.title.to_lowercase());
    for key in link_keys(article) {
        doc.add_text(fields.link_key, key);
    }
    let json = serde_json::to_string(article).expect("an Article always serializes to JSON");
    doc.add_text(fields.stored_article, json);
    docs.push(doc);

    for (index, section) in article.sections.iter().enumerate() {
        let mut doc = TantivyDocument::default();
        doc.add_text(fields.kind, KIND_SECTION);
        add_shared(fields, article, &mut doc);
        doc.add_u64(fields.section_index, index as u64);
        if section.anchor.is_some() {
            doc.add_text(fields.section_headings, &section.heading);
        }
        doc.add_text(fields.section_body, &section.text);
        docs.push(doc);
    }
    docs
}

/// Identity and filter fields every document of an article carries, so that
/// filters and deletes work the same on both kinds.
fn add_shared(fields: &Fields, article: &Article, doc: &mut TantivyDocument) {
    doc.add_text(fields.path, &article.path);
    doc.add_text(fields.id, &article.id);
    doc.add_text(fields.audience, article.audience.as_str());
    doc.add_text(fields.locale, &article.locale);
    if let Some(category) = &article.category {
        for category in category_ancestors(category) {
            doc.add_text(fields.category, category);
        }
    }
    for tag in &article.tags {
        doc.add_text(fields.tag, tag);
    }
    for product in &article.products {
        doc.add_text(fields.product, product);
    }
    for plan in &article.plans {
        doc.add_text(fields.plan, plan);
    }
    if !article.plans.is_empty() {
        doc.add_text(fields.plan, PLAN_RESTRICTED);
    }
}

/// The keys a link to `article` can be resolved by: its path without the
/// extension (`path:`), its permalink (`site:`), and every ending of both
/// (`tail:`), for generators that link from a site root other than the
/// articles folder (Docusaurus `/x/y` for `docs/x/y.md`, Jekyll
/// `/article/y/`).
pub fn link_keys(article: &Article) -> Vec<String> {
    let path = strip_article_extension(&article.path).unwrap_or(&article.path);
    let mut keys = vec![format!("path:{path}")];
    let add_tails = |text: &str, keys: &mut Vec<String>| {
        let parts: Vec<&str> = text.split('/').filter(|p| !p.is_empty()).collect();
        for start in 0..parts.len() {
            let key = format!("tail:{}", parts[start..].join("/"));
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    };
    add_tails(path, &mut keys);
    if let Some(permalink) = &article.permalink {
        let permalink = permalink.trim_matches('/');
        if !permalink.is_empty() {
            keys.push(format!("site:{permalink}"));
            add_tails(permalink, &mut keys);
        }
    }
    keys
}

/// Keys to look a link target up by, most specific first: the exact path,
/// then ever shorter endings of it (Hugo resolves `ref "a/b.md"` from the
/// current page, then from the content root). Callers take the first key
/// that matches exactly one article.
pub fn target_keys(target: &LinkTarget) -> Vec<String> {
    let (exact, path) = match target {
        LinkTarget::Path(path) => (format!("path:{path}"), path),
        LinkTarget::Site(path) => (format!("site:{path}"), path),
    };
    let mut keys = vec![exact];
    if let LinkTarget::Site(path) = target {
        keys.push(format!("path:{path}"));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for start in 0..parts.len() {
        keys.push(format!("tail:{}", parts[start..].join("/")));
    }
    keys
}
