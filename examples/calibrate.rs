//! Fits the bot's confidence model (`search::answer::ConfidenceModel`) and
//! prints the precision/coverage trade-off.
//!
//! ```sh
//! cargo run --release --features tools --example calibrate -- ../shared/eval/stackfaq ../shared/eval/covidfaq
//! cargo run --release --features tools --example calibrate -- --model models/all-MiniLM-L6-v2 ../shared/eval/stackfaq ../shared/eval/covidfaq
//! ```
//!
//! With `--model`, the sets are embedded and ranked by words and meaning
//! fused (as the server does with a model), and the fused coefficients
//! (`FusedConfidence`, nine features with the two cosines) are fitted.
//!
//! Every set's questions are asked against its own articles (in scope: the
//! label is "the top article is judged relevant") and against every other
//! set's articles (out of scope: the label is always "wrong", the bot must hand
//! off). A logistic regression is fitted on half of the questions (even
//! positions) and the curve is reported on the other half, so the figures are
//! not measured on the data the model was fitted on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rapport::index::writer::Indexer;
use rapport::index::{IndexStatus, KnowledgeIndex};
use rapport::search::answer::{AnswerFeatures, ConfidenceModel};
use rapport::search::{Context, SearchEngine, Visibility};
use rapport::semantic::SentenceModel;
use rapport::semantic::model::LoadOptions;
use rapport::semantic::runtime::{embed_into, scratch_cache_dir};
use serde::Deserialize;

type BoxError = Box<dyn std::error::Error>;

#[derive(Deserialize)]
struct Judged {
    query: String,
    relevant: Vec<String>,
}

struct Sample {
    features: AnswerFeatures,
    correct: bool,
    in_scope: bool,
    held_out: bool,
}

fn main() -> Result<(), BoxError> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let model = match args.iter().position(|a| a == "--model") {
        Some(at) if at + 1 < args.len() => {
            let dir = PathBuf::from(args.remove(at + 1));
            args.remove(at);
            Some(dir)
        }
        Some(_) => return Err("--model needs a folder".into()),
        None => None,
    };
    let sets: Vec<PathBuf> = args.into_iter().map(PathBuf::from).collect();
    if sets.len() < 2 {
        return Err(
            "usage: calibrate SET_DIR SET_DIR... (at least two, for out-of-scope questions)".into(),
        );
    }
    let mut engines = Vec::new();
    let mut queries = Vec::new();
    for set in &sets {
        let (engine, _dir) = build_engine(&set.join("articles"), model.as_deref())?;
        engines.push((engine, _dir));
        queries.push(load_queries(&set.join("queries.jsonl"))?);
    }
    let mut samples = Vec::new();
    for (i, (engine, _)) in engines.iter().enumerate() {
        for (j, set_queries) in queries.iter().enumerate() {
            for (n, judged) in set_queries.iter().enumerate() {
                let outcome = engine.answer(
                    &judged.query,
                    &Context::default(),
                    Visibility::IncludeInternal,
                    1,
                )?;
                let Some(features) = outcome.features else {
                    continue; // no match at all: always handed off
                };
                let correct = i == j
                    && outcome
                        .hits
                        .first()
                        .is_some_and(|hit| judged.relevant.contains(&hit.article.id));
                samples.push(Sample {
                    features,
                    correct,
                    in_scope: i == j,
                    held_out: n % 2 == 1,
                });
            }
        }
    }
    let fused = model.is_some();
    let vector = |f: &AnswerFeatures| -> Vec<f32> {
        if fused {
            f.as_fused_array().to_vec()
        } else {
            f.as_array().to_vec()
        }
    };
    let train: Vec<(Vec<f32>, bool)> = samples
        .iter()
        .filter(|s| !s.held_out)
        .map(|s| (vector(&s.features), s.correct))
        .collect();
    let (bias, weights) = fit(&train);
    let names: &[&str] = if fused {
        &AnswerFeatures::FUSED_NAMES
    } else {
        &AnswerFeatures::NAMES
    };
    println!(
        "fitted model (paste into {}::default):",
        if fused {
            "FusedConfidence"
        } else {
            "ConfidenceModel"
        }
    );
    println!("  bias: {bias:.3},");
    println!(
        "  weights: [{}],  // {}",
        weights
            .iter()
            .map(|w| format!("{w:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        names.join(", ")
    );
    let mut fitted = ConfidenceModel::default();
    if fused {
        fitted.fused.bias = bias;
        fitted.fused.weights.copy_from_slice(&weights);
    } else {
        fitted.bias = bias;
        fitted.weights.copy_from_slice(&weights);
    }
    for (name, model) in [
        ("fitted", fitted),
        ("current default", ConfidenceModel::default()),
    ] {
        println!("\nprecision/coverage on held-out questions, {name} model:");
        println!(
            "| threshold | answered (in scope) | precision when answering | out-of-scope handed off |"
        );
        println!("|---:|---:|---:|---:|");
        let held: Vec<&Sample> = samples.iter().filter(|s| s.held_out).collect();
        for threshold in [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] {
            let answered: Vec<&&Sample> = held
                .iter()
                .filter(|s| model.confidence(&s.features) >= threshold)
                .collect();
            let in_scope_total = held.iter().filter(|s| s.in_scope).count().max(1);
            let oos_total = held.iter().filter(|s| !s.in_scope).count().max(1);
            let in_scope_answered = answered.iter().filter(|s| s.in_scope).count();
            let right = answered.iter().filter(|s| s.correct).count();
            let oos_answered = answered.iter().filter(|s| !s.in_scope).count();
            println!(
                "| {threshold:.1} | {:.1}% | {:.1}% | {:.1}% |",
                100.0 * in_scope_answered as f64 / in_scope_total as f64,
                100.0 * right as f64 / answered.len().max(1) as f64,
                100.0 * (oos_total - oos_answered) as f64 / oos_total as f64,
            );
        }
    }
    Ok(())
}

/// Batch gradient descent on the log loss with a little L2.
fn fit(samples: &[(Vec<f32>, bool)]) -> (f32, Vec<f32>) {
    let dims = samples.first().map_or(0, |(x, _)| x.len());
    let mut bias = 0.0f64;
    let mut weights = vec![0.0f64; dims];
    let n = samples.len().max(1) as f64;
    for _ in 0..20_000 {
        let mut grad_bias = 0.0;
        let mut grad = vec![0.0f64; dims];
        for (x, correct) in samples {
            let z = bias
                + weights
                    .iter()
                    .zip(x)
                    .map(|(w, x)| w * f64::from(*x))
                    .sum::<f64>();
            let p = 1.0 / (1.0 + (-z).exp());
            let error = p - if *correct { 1.0 } else { 0.0 };
            grad_bias += error;
            for (g, x) in grad.iter_mut().zip(x) {
                *g += error * f64::from(*x);
            }
        }
        bias -= 0.5 * grad_bias / n;
        for (w, g) in weights.iter_mut().zip(grad) {
            *w -= 0.5 * (g / n + 1e-3 * *w);
        }
    }
    (bias as f32, weights.into_iter().map(|w| w as f32).collect())
}

/// An engine over `articles` in a temporary index; with a model, its
/// sections are embedded (cached per articles folder between runs).
fn build_engine(
    articles: &Path,
    model: Option<&Path>,
) -> Result<(SearchEngine, tempfile::TempDir), BoxError> {
    let dir = tempfile::tempdir()?;
    let articles = std::fs::canonicalize(articles)?;
    let kb = Arc::new(KnowledgeIndex::open_or_create(dir.path())?);
    let status = Arc::new(RwLock::new(IndexStatus::default()));
    let mut indexer = Indexer::new(kb.clone(), &articles, 2 << 20, status, Arc::default())?;
    indexer.reconcile(|_, _| {})?;
    let engine = SearchEngine::new(kb, Arc::default());
    if let Some(model) = model {
        let model = Arc::new(SentenceModel::load(model, &LoadOptions::default())?);
        let new = embed_into(&engine, model, &scratch_cache_dir(&articles), &mut |_| {})?;
        eprintln!("{}: {new} sections embedded", articles.display());
    }
    Ok((engine, dir))
}

fn load_queries(path: &Path) -> Result<Vec<Judged>, BoxError> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?)
}
