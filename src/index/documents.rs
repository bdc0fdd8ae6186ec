//! Articles → tantivy documents.

use tantivy::TantivyDocument;

use super::schema::{Fields, KIND_ARTICLE, KIND_SECTION, PLAN_RESTRICTED};
use crate::article::Article;

/// One `article` document followed by one `section` document per section.
pub fn article_documents(fields: &Fields, article: &Article) -> Vec<TantivyDocument> {
    let mut docs = Vec::with_capacity(article.sections.len() + 1);

    let mut doc = TantivyDocument::default();
    doc.add_text(fields.kind, KIND_ARTICLE);
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
    let json = serde_json::to_string(article).expect("an Article always serializes to JSON");
    doc.add_text(fields.stored_article, json);
    docs.push(doc);

    for (index, section) in article.sections.iter().enumerate() {
        let mut doc = TantivyDocument::default();
        doc.add_text(fields.kind, KIND_SECTION);
        add_shared(fields, article, &mut doc);
        doc.add_u64(fields.section_index, index as u64);
        if section.anchor.is_some() {
            doc.add_text(fields.headings, &section.heading);
        }
        doc.add_text(fields.body, &section.text);
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
        doc.add_text(fields.category, category);
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
