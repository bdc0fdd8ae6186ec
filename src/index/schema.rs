//! The tantivy schema and analyzers. Changing anything here changes what is on
//! disk: bump [`SCHEMA_VERSION`] so existing indexes are rebuilt on start.

use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer,
    Stemmer, TextAnalyzer, TokenizerManager,
};

/// Stored next to the index; a mismatch triggers a full rebuild. Bumped too
/// when parsing changes what sections hold (7: table rows read as lines), since
/// unchanged files are otherwise never parsed again. 8: the catalog column;
/// 9: string columns without zstd (tantivy built without it); 10: sections
/// in their own text fields, and `any_text`.
pub const SCHEMA_VERSION: u32 = 10;

/// English prose: lower-case, ASCII folding, Snowball stemming.
pub const STEMMED: &str = "rapport_en";
/// Same without stemming: the surface vocabulary used for typo and prefix expansion.
pub const PLAIN: &str = "rapport_plain";
/// Whole value, lower-cased: categories, tags, products, locales for filters.
pub const KEYWORD: &str = "rapport_keyword";

pub const KIND_ARTICLE: &str = "article";
pub const KIND_SECTION: &str = "section";
/// Indexed in `plan` when an article is limited to some plans.
pub const PLAN_RESTRICTED: &str = "__restricted__";
/// The name of [`Fields::catalog`], for reading its column.
pub const CATALOG: &str = "catalog";

/// Every field, resolved once. Two kinds of documents share the schema: one
/// `article` document per file (ranking, facets, listing) and one `section`
/// document per section (picking the best section and its snippet). Both carry
/// the file's `path`, so one delete-by-term removes a whole article.
#[derive(Clone, Debug)]
pub struct Fields {
    pub kind: Field,
    pub path: Field,
    pub id: Field,
    pub content_hash: Field,
    pub title: Field,
    pub headings: Field,
    pub summary: Field,
    pub tags_text: Field,
    pub body: Field,
    /// Section docs: the section's heading and text. Fields of their own, not
    /// `headings`/`body`: sharing them made every article query walk the
    /// postings of all section documents (572k at 100k articles) only for
    /// the `kind` filter to drop them, and mixed both kinds' statistics.
    pub section_headings: Field,
    pub section_body: Field,
    /// Article docs: all their text in one field, document ids only, for
    /// counting matches ([`crate::search::topk::count`]): one posting list
    /// per word variant instead of five to merge.
    pub any_text: Field,
    pub vocabulary: Field,
    pub category: Field,
    pub tag: Field,
    pub product: Field,
    pub plan: Field,
    pub locale: Field,
    pub audience: Field,
    /// Category and tags as written (case kept), as columns for facet counts.
    pub category_facet: Field,
    pub tag_facet: Field,
    pub title_sort: Field,
    /// Section docs: position of the section within its article.
    pub section_index: Field,
    /// Article docs: the whole [`crate::article::Article`] as JSON.
    pub stored_article: Field,
    /// Ways other articles link to this one (`path:`, `site:`, `tail:` keys,
    /// see [`link_keys`](super::documents::link_keys)); article documents only.
    pub link_key: Field,
    /// Article docs: what the indexer keeps about the file (id, hash, stat),
    /// as a column so a start reads it without the doc store
    /// ([`super::catalog`]).
    pub catalog: Field,
}

pub fn build_schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let stemmed = |stored: bool| {
        let options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(STEMMED)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        if stored {
            options.set_stored()
        } else {
            options
        }
    };
    let keyword = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(KEYWORD)
                .set_index_option(IndexRecordOption::Basic),
        )
        .set_stored();
    // Context fields are also columns, so context boosts are a per-document
    // lookup while scoring rather than extra query clauses.
    let context_keyword = keyword.clone().set_fast(KEYWORD);
    let vocabulary = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(PLAIN)
            .set_index_option(IndexRecordOption::Basic),
    );

    let fields = Fields {
        kind: builder.add_text_field("kind", STRING),
        path: builder.add_text_field("path", STRING | STORED),
        id: builder.add_text_field("id", STRING | STORED | FAST),
        content_hash: builder.add_text_field("content_hash", STORED),
        title: builder.add_text_field("title", stemmed(true)),
        headings: builder.add_text_field("headings", stemmed(false)),
        summary: builder.add_text_field("summary", stemmed(false)),
        tags_text: builder.add_text_field("tags_text", stemmed(false)),
        body: builder.add_text_field("body", stemmed(false)),
        section_headings: builder.add_text_field("section_headings", stemmed(false)),
        section_body: builder.add_text_field("section_body", stemmed(false)),
        any_text: builder.add_text_field(
            "any_text",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(STEMMED)
                    .set_index_option(IndexRecordOption::Basic),
            ),
        ),
        vocabulary: builder.add_text_field("vocabulary", vocabulary),
        category: builder.add_text_field("category", keyword.clone()),
        tag: builder.add_text_field("tag", keyword.clone()),
        product: builder.add_text_field("product", context_keyword.clone()),
        plan: builder.add_text_field("plan", context_keyword.clone()),
        locale: builder.add_text_field("locale", context_keyword),
        audience: builder.add_text_field("audience", keyword),
        category_facet: builder.add_text_field("category_facet", STRING | FAST),
        tag_facet: builder.add_text_field("tag_facet", STRING | FAST),
        title_sort: builder.add_text_field("title_sort", STRING | FAST),
        section_index: builder.add_u64_field("section_index", STORED),
        stored_article: builder.add_text_field("stored_article", STORED),
        link_key: builder.add_text_field("link_key", STRING),
        catalog: builder.add_bytes_field(CATALOG, FAST),
    };
    (builder.build(), fields)
}

pub fn stemmed_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(48))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::English))
        .build()
}

pub fn plain_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(48))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

pub fn keyword_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .build()
}

thread_local! {
    static STEMMED_ANALYZER: std::cell::RefCell<TextAnalyzer> = std::cell::RefCell::new(stemmed_analyzer());
    static PLAIN_ANALYZER: std::cell::RefCell<TextAnalyzer> = std::cell::RefCell::new(plain_analyzer());
}

/// Runs `f` with this thread's cached stemming analyzer (building one costs
/// more than analyzing a query).
pub fn with_stemmed_analyzer<R>(f: impl FnOnce(&mut TextAnalyzer) -> R) -> R {
    STEMMED_ANALYZER.with(|analyzer| f(&mut analyzer.borrow_mut()))
}

/// Like [`with_stemmed_analyzer`], without stemming.
pub fn with_plain_analyzer<R>(f: impl FnOnce(&mut TextAnalyzer) -> R) -> R {
    PLAIN_ANALYZER.with(|analyzer| f(&mut analyzer.borrow_mut()))
}

/// The stems of `text`, in order, as the index sees them.
pub fn stems(text: &str) -> Vec<String> {
    with_stemmed_analyzer(|analyzer| {
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            out.push(token.text.clone());
        }
        out
    })
}

pub fn register_analyzers(manager: &TokenizerManager) {
    manager.register(STEMMED, stemmed_analyzer());
    manager.register(PLAIN, plain_analyzer());
    manager.register(KEYWORD, keyword_analyzer());
}

/// Normalises a filter value the way [`KEYWORD`] fields are indexed.
pub fn keyword(value: &str) -> String {
    value.trim().to_lowercase()
}
