//! Relevance on judged query sets: rapport's ranking vs. a plain BM25
//! baseline (one text field with title + body, tantivy's default tokenizer and
//! query parser), both built and measured in the same run.
//!
//! ```sh
//! cargo run --release --features tools --example relevance -- ../shared/eval/stackfaq ../shared/eval/covidfaq
//! cargo run --release --features tools --example relevance -- ../shared/eval/stackfaq --dump-failures 15
//! cargo run --release --features tools --example relevance -- ../shared/eval/covidfaq --weights title=2,proximity=1
//! ```
//!
//! Each set folder holds `articles/` (Markdown with an explicit `id` in front
//! matter) and `queries.jsonl` (`{"qid", "query", "relevant": [ids]}`). Per set
//! and system it prints MRR@10, Recall@5, p50/p95 query latency and Hit@1.
//! rapport is queried through [`SearchEngine::search`] exactly as the HTTP API
//! does (limit 10, internal articles included, no filters), so a query that
//! ends mid-word gets its last word completed as a prefix, as it would live.
//! Latencies are wall time per query, including loading the stored hits (and,
//! for rapport, picking the best section and building the snippet).
//! rapport's index is built by several writer threads, so articles with
//! exactly tied scores can swap places between runs (the baseline uses one
//! thread and is repeatable).
//!
//! `--dump-failures N` prints N queries (spread evenly over all failures)
//! whose top-1 rapport hit is not relevant, with the expected and returned
//! titles. `--weights name=value,…` overrides [`RankingWeights`].
//! `--complete-words` appends a space to every query sent to rapport, so its
//! last word is taken as typed instead of completed as a prefix: a diagnostic
//! for how much search-as-you-type costs on whole questions.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use rapport::article::Selection;
use rapport::index::writer::{Indexer, article_files};
use rapport::index::{IndexStatus, KnowledgeIndex};
use rapport::search::query::RankingWeights;
use rapport::search::{SearchEngine, SearchRequest, Visibility};
use serde::Deserialize;
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{STORED, STRING, Schema, TEXT, Value};
use tantivy::{Index, TantivyDocument, doc};

type BoxError = Box<dyn std::error::Error>;

const USAGE: &str =
    "usage: relevance SET_DIR... [--dump-failures N] [--weights name=value,...] [--complete-words]";

#[derive(Deserialize)]
struct Judged {
    qid: String,
    query: String,
    relevant: Vec<String>,
}

/// Per-query measurements for one system on one set.
#[derive(Default)]
struct Scores {
    reciprocal_ranks: Vec<f64>,
    recalls_at_5: Vec<f64>,
    hits_at_1: Vec<f64>,
    latencies_ms: Vec<f64>,
}

impl Scores {
    /// Records one query; `ranked` is the result ids, best first.
    fn add(&mut self, ranked: &[String], relevant: &[String], latency_ms: f64) {
        let first = first_relevant_rank(ranked, relevant);
        self.reciprocal_ranks
            .push(first.map_or(0.0, |rank| 1.0 / rank as f64));
        let found = relevant
            .iter()
            .filter(|r| ranked.iter().take(5).any(|id| id == *r))
            .count();
        self.recalls_at_5
            .push(found as f64 / relevant.len().max(1) as f64);
        self.hits_at_1
            .push(if first == Some(1) { 1.0 } else { 0.0 });
        self.latencies_ms.push(latency_ms);
    }

    fn row(&self, set: &str, system: &str) -> String {
        let mut latencies = self.latencies_ms.clone();
        latencies.sort_by(f64::total_cmp);
        format!(
            "| {set} | {} | {system} | {:.3} | {:.3} | {:.2} | {:.2} | {:.3} |",
            self.reciprocal_ranks.len(),
            mean(&self.reciprocal_ranks),
            mean(&self.recalls_at_5),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.95),
            mean(&self.hits_at_1),
        )
    }
}

/// The 1-based rank of the first relevant id within the top 10.
fn first_relevant_rank(ranked: &[String], relevant: &[String]) -> Option<usize> {
    ranked
        .iter()
        .take(10)
        .position(|id| relevant.contains(id))
        .map(|index| index + 1)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Nearest-rank percentile of already sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A query whose top-1 rapport hit is not relevant.
struct Failure {
    qid: String,
    query: String,
    expected: Vec<String>,
    got: Option<String>,
    relevant_rank: Option<usize>,
}

/// What one set produced: table rows, notes and failures.
struct SetReport {
    name: String,
    rows: Vec<String>,
    notes: Vec<String>,
    failures: Vec<Failure>,
}

fn main() -> Result<(), BoxError> {
    let mut sets = Vec::new();
    let mut dump_failures = 0;
    let mut weights = RankingWeights::default();
    let mut complete_words = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dump-failures" => {
                dump_failures = args
                    .next()
                    .ok_or("--dump-failures needs a number")?
                    .parse()?;
            }
            "--weights" => {
                let overrides = args.next().ok_or("--weights needs name=value,...")?;
                weights = weights.with_overrides(&overrides)?;
            }
            "--complete-words" => complete_words = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => sets.push(PathBuf::from(arg)),
        }
    }
    if sets.is_empty() {
        return Err(USAGE.into());
    }

    let mut reports = Vec::new();
    for set in &sets {
        reports.push(evaluate(set, weights, complete_words)?);
    }

    println!("| set | queries | system | MRR@10 | Recall@5 | p50 ms | p95 ms | Hit@1 |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|");
    for report in &reports {
        for row in &report.rows {
            println!("{row}");
        }
    }
    println!();
    for report in &reports {
        for note in &report.notes {
            println!("{}: {note}", report.name);
        }
    }
    if dump_failures > 0 {
        for report in &reports {
            print_failures(report, dump_failures);
        }
    }
    Ok(())
}

fn print_failures(report: &SetReport, count: usize) {
    let failures = &report.failures;
    println!(
        "\n## {}: {} queries with a wrong top-1 (showing {})",
        report.name,
        failures.len(),
        count.min(failures.len())
    );
    if failures.is_empty() {
        return;
    }
    // Evenly spaced, so the sample isn't just the first few articles.
    let shown = count.min(failures.len());
    for i in 0..shown {
        let failure = &failures[i * failures.len() / shown];
        let rank = match failure.relevant_rank {
            Some(rank) => format!("first relevant at rank {rank}"),
            None => "no relevant hit in the top 10".to_string(),
        };
        println!("- {} {:?}", failure.qid, shortened(&failure.query));
        println!("    expected: {}", failure.expected.join(" | "));
        println!(
            "    got:      {} ({rank})",
            failure.got.as_deref().unwrap_or("<no results>")
        );
    }
}

/// Long queries (chat transcripts) cut for display.
fn shortened(query: &str) -> String {
    const MAX_CHARS: usize = 300;
    let total = query.chars().count();
    if total <= MAX_CHARS {
        return query.to_string();
    }
    let head: String = query.chars().take(MAX_CHARS).collect();
    format!("{head}… (+{} chars)", total - MAX_CHARS)
}

fn evaluate(
    set: &Path,
    weights: RankingWeights,
    complete_words: bool,
) -> Result<SetReport, BoxError> {
    let name = set
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| set.display().to_string());
    let articles_dir = std::fs::canonicalize(set.join("articles"))
        .map_err(|e| format!("{}: {e}", set.join("articles").display()))?;
    let queries_path = set.join("queries.jsonl");
    let queries: Vec<Judged> = std::fs::read_to_string(&queries_path)
        .map_err(|e| format!("{}: {e}", queries_path.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let mut notes = Vec::new();

    // rapport, built exactly as the server builds it (reconcile also loads
    // the folder's synonyms.toml, if any, into the handle).
    let started = Instant::now();
    let index_dir = tempfile::tempdir()?;
    let kb = Arc::new(KnowledgeIndex::open_or_create(index_dir.path())?);
    let synonyms = Arc::default();
    let status = Arc::new(RwLock::new(IndexStatus::default()));
    let mut indexer = Indexer::new(
        kb.clone(),
        &articles_dir,
        rapport::config::DEFAULT_MAX_ARTICLE_BYTES,
        status.clone(),
        Arc::clone(&synonyms),
    )?;
    let counts = indexer.reconcile(|_, _| {})?;
    drop(indexer);
    let engine = SearchEngine::with_weights(kb, synonyms, weights);
    notes.push(format!(
        "rapport indexed {} articles in {:.0} ms, {} skipped",
        counts.added,
        started.elapsed().as_secs_f64() * 1e3,
        counts.skipped
    ));
    for skipped in status
        .read()
        .map_err(|_| "status lock poisoned")?
        .skipped
        .values()
    {
        notes.push(format!(
            "rapport skipped {}: {}",
            skipped.path, skipped.reason
        ));
    }

    // Baseline: one TEXT field (title + body), default tokenizer and parser.
    let started = Instant::now();
    let mut schema = Schema::builder();
    let id_field = schema.add_text_field("id", STRING | STORED);
    let text_field = schema.add_text_field("text", TEXT);
    let baseline = Index::create_in_ram(schema.build());
    // One thread, one segment: ties then break the same way on every run.
    let mut writer = baseline.writer_with_num_threads(1, 50_000_000)?;
    let mut titles: HashMap<String, String> = HashMap::new();
    // The same files, in the same order, as the indexer reads.
    for (relative, path) in article_files(&articles_dir, &articles_dir, &Selection::default()) {
        let article = match rapport::article::parse(&std::fs::read(&path)?, &relative) {
            Ok(article) => article,
            Err(error) => {
                notes.push(format!("baseline skipped {relative}: {error}"));
                continue;
            }
        };
        writer.add_document(doc!(
            id_field => article.id.clone(),
            text_field => format!("{}\n{}", article.title, article.body_text()),
        ))?;
        titles.insert(article.id, article.title);
    }
    writer.commit()?;
    let baseline_reader = baseline.reader()?;
    let parser = QueryParser::for_index(&baseline, vec![text_field]);
    notes.push(format!(
        "baseline indexed {} articles in {:.0} ms",
        titles.len(),
        started.elapsed().as_secs_f64() * 1e3
    ));
    let unanswerable = queries
        .iter()
        .filter(|q| q.relevant.iter().all(|id| !titles.contains_key(id)))
        .count();
    let unknown: BTreeSet<&str> = queries
        .iter()
        .flat_map(|q| &q.relevant)
        .filter(|id| !titles.contains_key(*id))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        notes.push(format!(
            "{unanswerable} queries can't be answered: their judgements name ids no article has: {unknown:?}"
        ));
    }

    let mut ours = Scores::default();
    let mut theirs = Scores::default();
    let mut failures = Vec::new();
    for judged in &queries {
        let started = Instant::now();
        let text = if complete_words {
            format!("{} ", judged.query)
        } else {
            judged.query.clone()
        };
        let results = engine.search(&SearchRequest::new(text, 10, Visibility::IncludeInternal))?;
        let latency = started.elapsed().as_secs_f64() * 1e3;
        let ranked: Vec<String> = results.hits.iter().map(|h| h.id.clone()).collect();
        ours.add(&ranked, &judged.relevant, latency);
        let relevant_rank = first_relevant_rank(&ranked, &judged.relevant);
        if relevant_rank != Some(1) {
            failures.push(Failure {
                qid: judged.qid.clone(),
                query: judged.query.clone(),
                expected: judged
                    .relevant
                    .iter()
                    .map(|id| titles.get(id).cloned().unwrap_or_else(|| id.clone()))
                    .collect(),
                got: results.hits.first().map(|h| h.title.clone()),
                relevant_rank,
            });
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

    Ok(SetReport {
        rows: vec![
            ours.row(&name, "rapport"),
            theirs.row(&name, "BM25 baseline"),
        ],
        name,
        notes,
        failures,
    })
}
