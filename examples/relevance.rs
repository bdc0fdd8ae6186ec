//! Relevance on judged query sets: rapport's ranking vs. a plain BM25
//! baseline (one text field, tantivy's default tokenizer and query parser),
//! both built and measured in the same run.
//!
//! ```sh
//! cargo run --release --example relevance -- ../shared/eval/stackfaq ../shared/eval/covidfaq
//! cargo run --release --example relevance -- ../shared/eval/stackfaq --dump-failures 15
//! cargo run --release --example relevance -- ../shared/eval/covidfaq --weights title=2,proximity=1
//! ```
//!
//! Each set folder holds `articles/` and `queries.jsonl` (`{"qid", "query",
//! "relevant": [ids]}`). Prints MRR@10, Recall@5, Hit@1 and latency per system.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use rapport::index::writer::Indexer;
use rapport::index::{IndexStatus, KnowledgeIndex};
use rapport::search::query::RankingWeights;
use rapport::search::synonyms::{SYNONYMS_FILE, Synonyms};
use rapport::search::{Filters, SearchEngine, SearchRequest, Visibility};
use serde::Deserialize;
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{STORED, STRING, Schema, TEXT, Value};
use tantivy::{Index, TantivyDocument, doc};

#[derive(Deserialize)]
struct Judged {
    qid: String,
    query: String,
    relevant: Vec<String>,
}

#[derive(Default)]
struct Scores {
    reciprocal_ranks: Vec<f64>,
    recalls_at_5: Vec<f64>,
    hits_at_1: Vec<f64>,
    latencies_ms: Vec<f64>,
}

impl Scores {
    fn add(&mut self, ranked: &[String], relevant: &[String], latency_ms: f64) {
        let first = ranked.iter().take(10).position(|id| relevant.contains(id));
        self.reciprocal_ranks
            .push(first.map_or(0.0, |rank| 1.0 / (rank as f64 + 1.0)));
        let found = relevant
            .iter()
            .filter(|r| ranked.iter().take(5).any(|id| id == *r))
            .count();
        self.recalls_at_5
            .push(found as f64 / relevant.len().max(1) as f64);
        self.hits_at_1
            .push(if first == Some(0) { 1.0 } else { 0.0 });
        self.latencies_ms.push(latency_ms);
    }

    fn row(&self, set: &str, system: &str) -> String {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let mut latencies = self.latencies_ms.clone();
        latencies.sort_by(f64::total_cmp);
        let percentile = |p: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        format!(
            "| {set} | {} | {system} | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} |",
            self.reciprocal_ranks.len(),
            mean(&self.reciprocal_ranks),
            mean(&self.recalls_at_5),
            mean(&self.hits_at_1),
            percentile(0.5),
            percentile(0.95)
        )
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sets = Vec::new();
    let mut dump_failures = 0;
    let mut weights = RankingWeights::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--dump-failures" {
            dump_failures = args
                .next()
                .ok_or("--dump-failures needs a number")?
                .parse()?;
        } else if arg == "--weights" {
            weights =
                weights.with_overrides(&args.next().ok_or("--weights needs name=value,…")?)?;
        } else {
            sets.push(PathBuf::from(arg));
        }
    }
    if sets.is_empty() {
        return Err("usage: relevance SET_DIR... [--dump-failures N]".into());
    }
    println!("| set | queries | system | MRR@10 | Recall@5 | Hit@1 | p50 ms | p95 ms |");
    println!("|---|---|---|---|---|---|---|---|");
    for set in sets {
        evaluate(&set, dump_failures, weights)?;
    }
    Ok(())
}

fn evaluate(
    set: &Path,
    dump_failures: usize,
    weights: RankingWeights,
) -> Result<(), Box<dyn std::error::Error>> {
    let name = set
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let articles_dir = std::fs::canonicalize(set.join("articles"))?;
    let queries: Vec<Judged> = std::fs::read_to_string(set.join("queries.jsonl"))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;

    // rapport, built exactly as the server builds it.
    let index_dir = tempfile::tempdir()?;
    let kb = Arc::new(KnowledgeIndex::open_or_create(index_dir.path())?);
    let synonyms_path = articles_dir.join(SYNONYMS_FILE);
    let synonyms = if synonyms_path.exists() {
        Synonyms::load(&synonyms_path, u64::MAX)?
    } else {
        Synonyms::default()
    };
    let synonyms = Arc::new(RwLock::new(Arc::new(synonyms)));
    let status = Arc::new(RwLock::new(IndexStatus::default()));
    let mut indexer = Indexer::new(kb.clone(), &articles_dir, 2 << 20, status, synonyms.clone())?;
    indexer.reconcile(|_, _| {})?;
    let engine = SearchEngine::with_weights(kb, synonyms, weights);

    // Baseline: one TEXT field (title + body), default tokenizer and parser.
    let mut schema = Schema::builder();
    let id_field = schema.add_text_field("id", STRING | STORED);
    let text_field = schema.add_text_field("text", TEXT);
    let baseline = Index::create_in_ram(schema.build());
    let mut writer = baseline.writer(50_000_000)?;
    for entry in walkdir::WalkDir::new(&articles_dir) {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().ends_with(".md") {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(&articles_dir)?
            .to_string_lossy()
            .replace('\\', "/");
        let Ok(article) = rapport::article::parse(&std::fs::read(entry.path())?, &relative) else {
            continue;
        };
        writer.add_document(doc!(
            id_field => article.id.clone(),
            text_field => format!("{}\n{}", article.title, article.body_text()),
        ))?;
    }
    writer.commit()?;
    let baseline_reader = baseline.reader()?;
    let parser = QueryParser::for_index(&baseline, vec![text_field]);

    let mut ours = Scores::default();
    let mut theirs = Scores::default();
    let mut failures = Vec::new();
    for judged in &queries {
        let started = Instant::now();
        let results = engine.search(&SearchRequest {
            text: judged.query.clone(),
            limit: 10,
            offset: 0,
            filters: Filters::default(),
            visibility: Visibility::IncludeInternal,
        })?;
        let latency = started.elapsed().as_secs_f64() * 1e3;
        let ranked: Vec<String> = results.hits.iter().map(|h| h.id.clone()).collect();
        ours.add(&ranked, &judged.relevant, latency);
        if ranked
            .first()
            .is_none_or(|top| !judged.relevant.contains(top))
        {
            failures.push((judged, results.hits.first().map(|h| h.title.clone())));
        }

        let started = Instant::now();
        let searcher = baseline_reader.searcher();
        let (query, _errors) = parser.parse_query_lenient(&judged.query);
        let top = searcher.search(&query, &TopDocs::with_limit(10).order_by_score())?;
        let mut ranked = Vec::with_capacity(top.len());
        for (_, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = doc.get_first(id_field).and_then(|v| v.as_str()) {
                ranked.push(id.to_string());
            }
        }
        theirs.add(
            &ranked,
            &judged.relevant,
            started.elapsed().as_secs_f64() * 1e3,
        );
    }
    println!("{}", ours.row(&name, "rapport"));
    println!("{}", theirs.row(&name, "BM25 baseline"));
    for (judged, got) in failures.iter().take(dump_failures) {
        eprintln!(
            "  {} {:?}\n    expected {:?}, got {:?}",
            judged.qid, judged.query, judged.relevant, got
        );
    }
    Ok(())
}
