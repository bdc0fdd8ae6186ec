//! Fits the bot's confidence model (`search::answer::ConfidenceModel`) and
//! prints the precision/coverage trade-off.
//!
//! ```sh
//! cargo run --release --features tools --example calibrate -- ../shared/eval/stackfaq ../shared/eval/covidfaq
//! ```
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
use serde::Deserialize;

type BoxError = Box<dyn std::error::Error>;

#[derive(Deserialize)]
struct Judged {
    query: String,
    relevant: Vec<String>,
}

struct Sample {
    features: [f32; 7],
    correct: bool,
    in_scope: bool,
    held_out: bool,
}

fn main() -> Result<(), BoxError> {
    let sets: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if sets.len() < 2 {
        return Err(
            "usage: calibrate SET_DIR SET_DIR... (at least two, for out-of-scope questions)".into(),
        );
    }
    let mut engines = Vec::new();
    let mut queries = Vec::new();
    for set in &sets {
        let (engine, _dir) = build_engine(&set.join("articles"))?;
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
                    features: features.as_array(),
                    correct,
                    in_scope: i == j,
                    held_out: n % 2 == 1,
                });
            }
        }
    }
    let train: Vec<&Sample> = samples.iter().filter(|s| !s.held_out).collect();
    let model = fit(&train);
    println!("fitted model (paste into ConfidenceModel::default):");
    println!("  bias: {:.3},", model.bias);
    println!(
        "  weights: [{}],  // {}",
        model
            .weights
            .iter()
            .map(|w| format!("{w:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        AnswerFeatures::NAMES.join(", ")
    );
    for (name, model) in [
        ("fitted", model),
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
                .filter(|s| confidence(&model, &s.features) >= threshold)
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

fn confidence(model: &ConfidenceModel, x: &[f32; 7]) -> f32 {
    let features = AnswerFeatures {
        margin: x[0],
        coverage: x[1],
        section_coverage: x[2],
        title_coverage: x[3],
        exact_share: x[4],
        brevity: x[5],
        strength: x[6],
    };
    model.confidence(&features)
}

/// Batch gradient descent on the log loss with a little L2.
fn fit(samples: &[&Sample]) -> ConfidenceModel {
    let mut bias = 0.0f64;
    let mut weights = [0.0f64; 7];
    let n = samples.len().max(1) as f64;
    for _ in 0..20_000 {
        let mut grad_bias = 0.0;
        let mut grad = [0.0f64; 7];
        for sample in samples {
            let z = bias
                + weights
                    .iter()
                    .zip(sample.features)
                    .map(|(w, x)| w * f64::from(x))
                    .sum::<f64>();
            let p = 1.0 / (1.0 + (-z).exp());
            let error = p - if sample.correct { 1.0 } else { 0.0 };
            grad_bias += error;
            for (g, x) in grad.iter_mut().zip(sample.features) {
                *g += error * f64::from(x);
            }
        }
        bias -= 0.5 * grad_bias / n;
        for (w, g) in weights.iter_mut().zip(grad) {
            *w -= 0.5 * (g / n + 1e-3 * *w);
        }
    }
    ConfidenceModel {
        bias: bias as f32,
        weights: weights.map(|w| w as f32),
    }
}

fn build_engine(articles: &Path) -> Result<(SearchEngine, tempfile::TempDir), BoxError> {
    let dir = tempfile::tempdir()?;
    let articles = std::fs::canonicalize(articles)?;
    let kb = Arc::new(KnowledgeIndex::open_or_create(dir.path())?);
    let status = Arc::new(RwLock::new(IndexStatus::default()));
    let mut indexer = Indexer::new(kb.clone(), &articles, 2 << 20, status, Arc::default())?;
    indexer.reconcile(|_, _| {})?;
    Ok((SearchEngine::new(kb, Arc::default()), dir))
}

fn load_queries(path: &Path) -> Result<Vec<Judged>, BoxError> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?)
}
