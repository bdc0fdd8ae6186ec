//! Micro-benchmarks of the hot paths, on the bundled `articles/` folder so they
//! run anywhere: parse, index one article, query build, search, snippet,
//! answer and suggest. The HTTP-level, side-by-side figures come from
//! `scripts/bench/run`; these isolate where the time inside one request goes.
//!
//! ```sh
//! cargo bench --bench hot_paths              # all
//! cargo bench --bench hot_paths -- search    # one group
//! ```

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use criterion::{Criterion, criterion_group, criterion_main};
use rapport::article::{self, Article};
use rapport::handoff::HandoffRules;
use rapport::handoff::config::HandoffConfig;
use rapport::index::documents::article_documents;
use rapport::index::writer::{Indexer, article_files};
use rapport::index::{IndexStatus, KnowledgeIndex};
use rapport::search::query::{PlanOptions, QueryPlan, RankingWeights};
use rapport::search::snippet::{SNIPPET_CHARS, snippet};
use rapport::search::synonyms::Synonyms;
use rapport::search::transcript::{Role, Turn, transcript_segments};
use rapport::search::{Context, SearchEngine, SearchRequest, Visibility};

const QUERIES: &[&str] = &[
    "charged twice",
    "reset password",
    "lost my phone",
    "export invoices to csv",
    "recieve payment",
    "recurring inv",
];

/// The bundled help center, parsed once: (relative path, raw bytes, article).
fn bundled() -> (PathBuf, Vec<(String, Vec<u8>, Article)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("articles");
    let files = article_files(&dir, &dir)
        .into_iter()
        .filter_map(|(relative, path)| {
            let bytes = std::fs::read(&path).ok()?;
            let article = article::parse(&bytes, &relative).ok()?;
            Some((relative, bytes, article))
        })
        .collect();
    (dir, files)
}

/// A search engine over an index of the bundled articles, built as the server builds it.
fn engine(dir: &Path) -> (tempfile::TempDir, Arc<KnowledgeIndex>, SearchEngine) {
    let index_dir = tempfile::tempdir().expect("temp dir");
    let kb = Arc::new(KnowledgeIndex::open_or_create(index_dir.path()).expect("index"));
    let synonyms = Arc::default();
    let status = Arc::new(RwLock::new(IndexStatus::default()));
    let mut indexer = Indexer::new(
        kb.clone(),
        dir,
        rapport::config::DEFAULT_MAX_ARTICLE_BYTES,
        status,
        Arc::clone(&synonyms),
    )
    .expect("indexer");
    indexer.reconcile(|_, _| {}).expect("reconcile");
    drop(indexer);
    (index_dir, kb.clone(), SearchEngine::new(kb, synonyms))
}

fn benches(c: &mut Criterion) {
    let (dir, files) = bundled();
    assert!(!files.is_empty(), "no bundled articles found in {dir:?}");
    let largest = files
        .iter()
        .max_by_key(|(_, bytes, _)| bytes.len())
        .expect("one article");

    c.bench_function("parse/largest_bundled_article", |b| {
        b.iter(|| article::parse(black_box(&largest.1), &largest.0).expect("parses"))
    });

    // Index one article: its documents into an in-RAM writer (commit excluded;
    // the harness measures edit → searchable, commit and reload included).
    let (schema, fields) = rapport::index::schema::build_schema();
    let ram = tantivy::Index::create_in_ram(schema);
    rapport::index::schema::register_analyzers(ram.tokenizers());
    rapport::index::schema::register_analyzers(ram.fast_field_tokenizer());
    let writer: tantivy::IndexWriter = ram.writer(50_000_000).expect("writer");
    c.bench_function("index/one_article_documents", |b| {
        b.iter(|| {
            for doc in article_documents(&fields, black_box(&largest.2)) {
                writer.add_document(doc).expect("add");
            }
        })
    });
    drop(writer);

    let (_index_dir, kb, engine) = engine(&dir);
    let kb_searcher = kb.reader.searcher();
    let synonyms = Synonyms::default();
    c.bench_function("query/build_plan", |b| {
        let options = PlanOptions {
            prefix_last_word: true,
            min_prefix_len: 2,
            synonyms: &synonyms,
            vocabulary: kb.fields.vocabulary,
            weights: RankingWeights::default(),
            expansions: None,
        };
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % QUERIES.len();
            QueryPlan::build(black_box(QUERIES[i]), &kb_searcher, &options)
        })
    });

    c.bench_function("search/top10_with_facets", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % QUERIES.len();
            let request = SearchRequest::new(QUERIES[i], 10, Visibility::PublicOnly);
            engine.search(black_box(&request)).expect("search")
        })
    });

    let plan = engine.plan(&kb_searcher, "lost phone recovery codes", 2);
    let text = largest.2.body_text();
    c.bench_function("snippet/largest_article_body", |b| {
        b.iter(|| snippet(black_box(&text), &plan.highlight, SNIPPET_CHARS))
    });

    c.bench_function("answer/question", |b| {
        let context = Context::default();
        b.iter(|| {
            engine
                .answer(
                    black_box("where do I find my recovery codes?"),
                    &context,
                    Visibility::PublicOnly,
                    2,
                )
                .expect("answer")
        })
    });

    let rules = HandoffRules::new(HandoffConfig::defaults());
    let transcript = vec![
        turn(Role::Agent, "Hi! How can I help you today?"),
        turn(Role::Customer, "hi, I bought a new iPhone"),
        turn(
            Role::Customer,
            "the receipts I scan never upload, they stay stuck offline",
        ),
        turn(Role::Agent, "Sorry to hear that. Which version of the app?"),
        turn(Role::Customer, "the latest one, and I was charged twice"),
    ];
    c.bench_function("suggest/five_turn_transcript", |b| {
        let context = Context::default();
        b.iter(|| {
            let segments = transcript_segments(black_box(&transcript), rules.turn_weights(), |t| {
                rules.strip_chatter(t)
            });
            engine
                .suggest(&segments, &context, Visibility::IncludeInternal, 5, &[])
                .expect("suggest")
        })
    });
}

fn turn(role: Role, text: &str) -> Turn {
    Turn {
        role,
        text: text.to_string(),
    }
}

criterion_group! {
    name = hot_paths;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(hot_paths);
