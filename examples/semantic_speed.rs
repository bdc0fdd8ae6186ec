//! Speed of the sentence-embedding model on this machine: load time,
//! passages/s at several batch sizes (length-sorted batches, and batches of
//! 8 in file order for comparison), and one short query's latency on the
//! default thread pool and on a one-thread pool. Variants are interleaved
//! round by round, so a busy machine slows them alike.
//!
//! ```sh
//! rapport model fetch                      # models/all-MiniLM-L6-v2
//! cargo run --release --example semantic_speed -- [MODEL_DIR] [ARTICLES_DIR] [--passages 96] [--queries 200] [--rounds 3] [--concurrency 8]
//! ```
//! Passages are ~80-word runs (50–110 words) of the articles' own text.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rapport::semantic::SentenceModel;
use rapport::semantic::model::LoadOptions;

const QUESTIONS: &[&str] = &[
    "how do I reset my password",
    "my order arrived smashed, what now",
    "the app keeps kicking me out",
    "charged twice this month",
    "export invoices to csv",
    "where are my recovery codes",
    "change the email on my account",
    "add a team member",
    "vat number on invoices",
    "how do I delete my account",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut positional = Vec::new();
    let mut passages = 96usize;
    let mut queries = 200usize;
    let mut rounds = 3usize;
    let mut concurrency = 8usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--passages" => passages = args.next().ok_or("--passages N")?.parse()?,
            "--queries" => queries = args.next().ok_or("--queries N")?.parse()?,
            "--concurrency" => {
                concurrency = args
                    .next()
                    .ok_or("--concurrency N")?
                    .parse::<usize>()?
                    .max(1)
            }
            "--rounds" => rounds = args.next().ok_or("--rounds N")?.parse::<usize>()?.max(1),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let model_dir = positional
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("models/all-MiniLM-L6-v2"));
    let articles = positional
        .get(1)
        .cloned()
        .unwrap_or_else(|| PathBuf::from("articles"));

    let mut loads = Vec::new();
    let mut model = None;
    for _ in 0..5 {
        let started = Instant::now();
        model = Some(SentenceModel::load(&model_dir, &LoadOptions::default())?);
        loads.push(started.elapsed());
    }
    let model = model.ok_or("no model")?;
    loads.sort();
    println!(
        "model {} ({} dims): load median {:.0} ms (min {:.0}, max {:.0}), sha256 of the weights included",
        model.model_id(),
        model.dims(),
        ms(loads[loads.len() / 2]),
        ms(loads[0]),
        ms(loads[loads.len() - 1])
    );

    let texts = passages_from(&articles, passages)?;
    let words: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    println!(
        "{} passages, {:.0} words on average, threads: {}",
        texts.len(),
        words as f64 / texts.len() as f64,
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into())
    );
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    model.embed_batch_with(&refs[..8.min(refs.len())], 8)?; // warm-up
    // Rounds interleave the variants, so a busy neighbour slows them alike.
    let variants: [(&str, usize, bool); 4] = [
        ("batch  8, file order   ", 8, false),
        ("batch  8, length-sorted", 8, true),
        ("batch 16, length-sorted", 16, true),
        ("batch 32, length-sorted", 32, true),
    ];
    let mut rates = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (v, &(_, batch, sorted)) in variants.iter().enumerate() {
            let started = Instant::now();
            if sorted {
                model.embed_batch_with(&refs, batch)?;
            } else {
                // Each call sorts only within its own chunk: file order.
                for chunk in refs.chunks(batch) {
                    model.embed_batch_with(chunk, batch)?;
                }
            }
            rates[v].push(refs.len() as f64 / started.elapsed().as_secs_f64());
        }
    }
    for ((label, _, _), mut rate) in variants.iter().zip(rates) {
        rate.sort_by(f64::total_cmp);
        println!(
            "  {label}: median {:5.1} passages/s (min {:5.1}, max {:5.1}, {rounds} rounds)",
            rate[rate.len() / 2],
            rate[0],
            rate[rate.len() - 1]
        );
    }

    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let mut times = [Vec::with_capacity(queries), Vec::with_capacity(queries)];
    for i in 0..queries + 10 {
        let question = QUESTIONS[i % QUESTIONS.len()];
        for (pooled, times) in times.iter_mut().enumerate() {
            let started = Instant::now();
            if pooled == 1 {
                one_thread.install(|| model.embed_query(question))?;
            } else {
                model.embed_query(question)?;
            }
            if i >= 10 {
                times.push(started.elapsed());
            }
        }
    }
    for (label, mut times) in ["default pool", "1-thread pool"].into_iter().zip(times) {
        times.sort();
        println!(
            "  query ({label:13}): median {:5.1} ms, p90 {:5.1} ms, p10 {:5.1} ms ({queries} queries)",
            ms(times[times.len() / 2]),
            ms(times[times.len() * 9 / 10]),
            ms(times[times.len() / 10])
        );
    }

    // As /answer would see it: `concurrency` callers at once, each either on
    // the shared default pool or on its own one-thread pool.
    let per_caller = (queries / concurrency).max(5);
    for (label, pooled) in [("default pool", false), ("1-thread pools", true)] {
        let started = Instant::now();
        let mut all: Vec<Duration> = std::thread::scope(|scope| {
            let callers: Vec<_> = (0..concurrency)
                .map(|caller| {
                    let model = &model;
                    scope.spawn(move || -> Result<Vec<Duration>, String> {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(1)
                            .build()
                            .map_err(|e| e.to_string())?;
                        let mut times = Vec::with_capacity(per_caller);
                        for i in 0..per_caller {
                            let question = QUESTIONS[(caller + i) % QUESTIONS.len()];
                            let asked = Instant::now();
                            let result = if pooled {
                                pool.install(|| model.embed_query(question))
                            } else {
                                model.embed_query(question)
                            };
                            result.map_err(|e| e.to_string())?;
                            times.push(asked.elapsed());
                        }
                        Ok(times)
                    })
                })
                .collect();
            callers
                .into_iter()
                .filter_map(|caller| caller.join().ok().and_then(Result::ok))
                .flatten()
                .collect()
        });
        let elapsed = started.elapsed();
        all.sort();
        if all.is_empty() {
            continue;
        }
        println!(
            "  {concurrency} concurrent ({label:14}): {:5.1} queries/s, median {:5.1} ms, p99 {:5.1} ms",
            all.len() as f64 / elapsed.as_secs_f64(),
            ms(all[all.len() / 2]),
            ms(all[(all.len() * 99 / 100).min(all.len() - 1)])
        );
    }
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Runs of 50–110 words (80 on average) from the articles' text, in file order.
fn passages_from(
    articles: &std::path::Path,
    count: usize,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(articles)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    let mut words = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        words.extend(
            text.split_whitespace()
                .filter(|w| !w.starts_with('#') && !w.starts_with("---"))
                .map(str::to_string),
        );
    }
    if words.len() < 110 {
        return Err(format!("{} has too few words for passages", articles.display()).into());
    }
    let mut passages = Vec::with_capacity(count);
    let mut at = 0;
    for i in 0..count {
        let length = 50 + (i * 37) % 61;
        if at + length > words.len() {
            at = 0;
        }
        passages.push(words[at..at + length].join(" "));
        at += length;
    }
    Ok(passages)
}
