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
use rapport::article::Selection;
use rapport::article::{self, Article};
use rapport::handoff::HandoffRules;
use rapport::handoff::config::HandoffConfig;
use rapport::index::documents::article_documents;
use rapport::index::writer::{Indexer, article_files};
use rapport::index::{IndexStatus, KnowledgeIndex};
use rapport::search::query::{PlanOptions, QueryPlan, RankingWeights};
use rapport::search::snippet::{SNIPPET_CHARS, snippet};
use rapport::search::statistics::{AudienceStatistics, Statistics};
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
    let files = article_files(&dir, &dir, &Selection::default())
        .into_iter()
        .filter_map(|(relative, path)| {
            let bytes = std::fs::read(&path).ok()?;
            let article = article::parse(&bytes, &relative).ok()?;
            Some((relative, bytes, article))
        })
        .collect();
    (dir, files)
}

/// A help center of `count` generated articles, every `internal_every`th one
/// internal, written to a temporary folder: a corpus large enough for the
/// per-term statistics of anonymous searches to cost what they cost, with
/// internal and public articles sharing words (and segments). Deterministic.
fn generated(count: usize, internal_every: usize) -> (tempfile::TempDir, Vec<String>) {
    const SYLLABLES: &[&str] = &[
        "ba", "ker", "lo", "mi", "tan", "rex", "vo", "sul", "pri", "den", "ga", "nor", "ti", "que",
        "fal", "om", "ru", "sep", "ly", "dra",
    ];
    let vocabulary: Vec<String> = (0..SYLLABLES.len() * SYLLABLES.len() * 3)
        .map(|i| {
            let n = SYLLABLES.len();
            let mut word = format!("{}{}", SYLLABLES[i % n], SYLLABLES[(i / n) % n]);
            if i >= n * n {
                word.push_str(SYLLABLES[(i / (n * n)) % n]);
            }
            word
        })
        .collect();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    // Roughly Zipfian: small indexes are common words.
    let word = |next: &mut dyn FnMut(usize) -> usize| {
        let r = next(1000) + 1;
        vocabulary[(vocabulary.len() * r * r / 1_000_000).min(vocabulary.len() - 1)].clone()
    };
    let words = |n: usize, next: &mut dyn FnMut(usize) -> usize| {
        (0..n).map(|_| word(next)).collect::<Vec<_>>().join(" ")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    for i in 0..count {
        let audience = if i % internal_every == 0 {
            "internal"
        } else {
            "public"
        };
        let mut text = format!(
            "---\ntitle: {}\nsummary: {}\naudience: {audience}\n---\n{}\n",
            words(4, &mut next),
            words(10, &mut next),
            words(40, &mut next)
        );
        for _ in 0..3 {
            text.push_str(&format!(
                "\n## {}\n\n{}\n",
                words(2, &mut next),
                words(60, &mut next)
            ));
        }
        std::fs::write(dir.path().join(format!("article-{i:04}.md")), text).expect("write");
    }
    let common = |i: usize| vocabulary[i * 7].clone();
    let queries = vec![
        format!("{} {}", common(1), common(2)),
        format!("{} {}", common(3), &common(4)[..3]),
        format!("{} {}x", common(5), common(6)),
        format!("{} {} {}", common(7), common(8), common(9)),
    ];
    (dir, queries)
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

    // ~120 KB files built to make parsing explode (issue 21): each must be
    // flattened or refused in milliseconds; an ordinary 100 KB file beside them.
    for (name, body) in hostile_articles() {
        c.bench_function(&format!("parse/hostile/{name}"), |b| {
            b.iter(|| article::parse(black_box(body.as_bytes()), "hostile.md").is_ok())
        });
    }

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

    let (generated_dir, generated_queries) = generated(400, 4);
    let (_generated_index, generated_kb, generated_engine) = engine(generated_dir.path());
    let (_index_dir, kb, engine) = engine(&dir);
    let kb_searcher = kb.reader.searcher();
    let synonyms = Synonyms::default();
    c.bench_function("query/build_plan", |b| {
        let statistics = Statistics::everything(&kb_searcher);
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
            QueryPlan::build(black_box(QUERIES[i]), &statistics, &options)
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

    let plan = engine
        .plan(
            &kb_searcher,
            "lost phone recovery codes",
            2,
            Visibility::PublicOnly,
        )
        .expect("plan");
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

    // Anonymous search on a few hundred generated articles, a quarter of them
    // internal: the cost of scoring with the public documents' statistics.
    for (name, visibility) in [
        ("search/generated_400_anonymous", Visibility::PublicOnly),
        ("search/generated_400_agent", Visibility::IncludeInternal),
    ] {
        c.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % generated_queries.len();
                let request = SearchRequest::new(&generated_queries[i], 10, visibility);
                generated_engine
                    .search(black_box(&request))
                    .expect("search")
            })
        });
    }
    // What a reload adds to the first anonymous search: which documents of
    // each segment are public, and the generation's totals.
    let generated_searcher = generated_kb.reader.searcher();
    c.bench_function("statistics/generated_400_public_generation", |b| {
        b.iter(|| {
            AudienceStatistics::default()
                .public(black_box(&generated_searcher), generated_kb.fields.audience)
                .expect("statistics")
                .is_public_only()
        })
    });
    // The first anonymous search after a reload: every per-generation cache
    // (facets, expansions, audience statistics) starts empty.
    c.bench_function("search/generated_400_anonymous_cold", |b| {
        b.iter(|| {
            let engine = SearchEngine::new(generated_kb.clone(), Arc::default());
            let request = SearchRequest::new(&generated_queries[0], 10, Visibility::PublicOnly);
            engine.search(black_box(&request)).expect("search")
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

fn hostile_articles() -> Vec<(&'static str, String)> {
    let list_triangle: String = (0..)
        .map(|i| format!("{}- x\n", "  ".repeat(i)))
        .scan(0, |len, line| {
            *len += line.len();
            (*len < 120_000).then_some(line)
        })
        .collect();
    vec![
        ("quotes_50k_one_line", ">".repeat(50_000) + " deep\n"),
        (
            "quotes_then_lazy_lines",
            ">".repeat(50_000) + " deep\n" + &"x\n".repeat(35_000),
        ),
        ("list_60k_one_line", "- ".repeat(60_000) + "deep\n"),
        ("list_triangle", list_triangle),
        (
            "stars_around",
            "*".repeat(60_000) + "a" + &"*".repeat(60_000),
        ),
        ("raw_div_24k", "<div>".repeat(24_000)),
        (
            "nested_links",
            "[".repeat(40_000) + "a" + &"](b)".repeat(20_000),
        ),
        (
            "ordinary_100kb",
            "## Heading\n\nSome *text* with [a link](x.md).\n\n- one\n- two\n\n> quote\n\n"
                .repeat(1500),
        ),
    ]
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
