//! `rapport eval`: runs a golden query file through the real ranking, per
//! channel, so a team can catch a relevance regression in CI when articles or
//! synonyms change.
//!
//! One JSON object per line: `{"query", "relevant": [ids], "kind":
//! "portal|bot|agent", "expect": "answer|handoff", "transcript": [{role,
//! text}]}`; `kind` defaults to portal. An agent line without `transcript`
//! reads `query` as `role: text` lines.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::handoff::{AnswerSignal, HandoffRules};
use crate::search::transcript::{Turn, parse_transcript, transcript_segments};
use crate::search::{Context, SearchEngine, SearchError, SearchRequest, Visibility};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Portal,
    Bot,
    Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Answer,
    Handoff,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GoldenQuery {
    #[serde(default)]
    pub qid: Option<String>,
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub relevant: Vec<String>,
    pub kind: Option<Kind>,
    pub expect: Option<Expect>,
    pub transcript: Option<Vec<Turn>>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// Parses a golden file; a bad line is an error naming the line.
pub fn parse_golden(text: &str) -> Result<Vec<GoldenQuery>, EvalError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| EvalError::Line {
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

#[derive(Debug, Default, Serialize)]
pub struct PortalMetrics {
    pub queries: usize,
    pub mrr_at_10: f64,
    pub ndcg_at_10: f64,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct BotMetrics {
    pub queries: usize,
    /// Share of questions answered without hand-off.
    pub answered: f64,
    /// Of the answered questions expected to be answered, share whose article is relevant.
    pub answer_accuracy: f64,
    pub handoff_precision: f64,
    pub handoff_recall: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct AgentMetrics {
    pub queries: usize,
    pub recall_at_3: f64,
    pub mrr_at_10: f64,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub kind: Kind,
    pub qid: Option<String>,
    pub query: String,
    pub expected: Vec<String>,
    pub got: Vec<String>,
    pub note: String,
}

#[derive(Debug, Default, Serialize)]
pub struct EvalReport {
    pub portal: Option<PortalMetrics>,
    pub bot: Option<BotMetrics>,
    pub agent: Option<AgentMetrics>,
    pub failures: Vec<Failure>,
}

pub struct EvalOptions {
    /// Kind for lines that don't say.
    pub default_kind: Kind,
    /// Expectation for bot lines that don't say (else: handoff when
    /// `relevant` is empty or names no existing article, answer otherwise).
    pub default_expect: Option<Expect>,
}

pub fn evaluate(
    engine: &SearchEngine,
    rules: &HandoffRules,
    queries: &[GoldenQuery],
    options: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    let mut report = EvalReport::default();
    let (mut portal, mut bot, mut agent) = (Sums::default(), BotSums::default(), Sums::default());
    for golden in queries {
        let kind = golden.kind.unwrap_or(options.default_kind);
        let relevant: HashSet<&str> = golden.relevant.iter().map(String::as_str).collect();
        match kind {
            Kind::Portal => {
                let results = engine.search(&SearchRequest::new(
                    golden.query.clone(),
                    10,
                    Visibility::IncludeInternal,
                ))?;
                let ranked: Vec<String> = results.hits.into_iter().map(|h| h.id).collect();
                portal.add(&ranked, &relevant);
                if ranked
                    .first()
                    .is_none_or(|top| !relevant.contains(top.as_str()))
                {
                    report
                        .failures
                        .push(failure(kind, golden, ranked, "top hit not relevant"));
                }
            }
            Kind::Bot => {
                let outcome = engine.answer(
                    &golden.query,
                    &Context::default(),
                    Visibility::PublicOnly,
                    1,
                )?;
                let top = outcome.hits.first().map(|h| h.article.id.clone());
                let (handoff, _) = rules.decide(
                    &golden.query,
                    None,
                    &[],
                    AnswerSignal {
                        confidence: outcome.confidence,
                        top_article: top.as_deref(),
                    },
                );
                let answerable = relevant.iter().any(|id| {
                    engine
                        .article(id, Visibility::IncludeInternal)
                        .ok()
                        .flatten()
                        .is_some()
                });
                let expect = golden
                    .expect
                    .or(options.default_expect)
                    .unwrap_or(if answerable {
                        Expect::Answer
                    } else {
                        Expect::Handoff
                    });
                let right = top.as_deref().is_some_and(|t| relevant.contains(t));
                bot.add(expect, handoff.recommended, right);
                let wrong = match expect {
                    Expect::Handoff => !handoff.recommended,
                    Expect::Answer => handoff.recommended || !right,
                };
                if wrong {
                    let note = format!(
                        "expected {:?}; handoff {:?} {:?}, confidence {:.2}",
                        expect, handoff.recommended, handoff.reasons, outcome.confidence
                    );
                    report
                        .failures
                        .push(failure(kind, golden, top.into_iter().collect(), &note));
                }
            }
            Kind::Agent => {
                let turns = golden
                    .transcript
                    .clone()
                    .unwrap_or_else(|| parse_transcript(&golden.query));
                let segments =
                    transcript_segments(&turns, rules.turn_weights(), |t| rules.strip_chatter(t));
                let (_, hits) = engine.suggest(
                    &segments,
                    &Context::default(),
                    Visibility::IncludeInternal,
                    10,
                    &[],
                )?;
                let ranked: Vec<String> = hits.iter().map(|h| h.article.id.clone()).collect();
                agent.add(&ranked, &relevant);
                if !ranked
                    .iter()
                    .take(3)
                    .any(|id| relevant.contains(id.as_str()))
                {
                    report.failures.push(failure(
                        kind,
                        golden,
                        ranked.into_iter().take(3).collect(),
                        "no relevant article in the top 3",
                    ));
                }
            }
        }
    }
    if portal.queries > 0 {
        report.portal = Some(PortalMetrics {
            queries: portal.queries,
            mrr_at_10: portal.mean(portal.reciprocal_rank),
            ndcg_at_10: portal.mean(portal.ndcg),
            recall_at_1: portal.mean(portal.recall_1),
            recall_at_5: portal.mean(portal.recall_5),
        });
    }
    if agent.queries > 0 {
        report.agent = Some(AgentMetrics {
            queries: agent.queries,
            recall_at_3: agent.mean(agent.recall_3),
            mrr_at_10: agent.mean(agent.reciprocal_rank),
        });
    }
    if bot.queries > 0 {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        report.bot = Some(BotMetrics {
            queries: bot.queries,
            answered: ratio(bot.answered, bot.queries),
            answer_accuracy: ratio(bot.answered_right, bot.answered_expected_answer),
            handoff_precision: ratio(bot.handoff_true_positive, bot.handed_off),
            handoff_recall: ratio(bot.handoff_true_positive, bot.expected_handoff),
        });
    }
    Ok(report)
}

fn failure(kind: Kind, golden: &GoldenQuery, got: Vec<String>, note: &str) -> Failure {
    Failure {
        kind,
        qid: golden.qid.clone(),
        query: golden.query.chars().take(200).collect(),
        expected: golden.relevant.clone(),
        got,
        note: note.to_string(),
    }
}

#[derive(Default)]
struct Sums {
    queries: usize,
    reciprocal_rank: f64,
    ndcg: f64,
    recall_1: f64,
    recall_3: f64,
    recall_5: f64,
}

impl Sums {
    fn add(&mut self, ranked: &[String], relevant: &HashSet<&str>) {
        self.queries += 1;
        let is_relevant = |id: &String| relevant.contains(id.as_str());
        if let Some(rank) = ranked.iter().take(10).position(is_relevant) {
            self.reciprocal_rank += 1.0 / (rank as f64 + 1.0);
        }
        let dcg: f64 = ranked
            .iter()
            .take(10)
            .enumerate()
            .filter(|(_, id)| is_relevant(id))
            .map(|(i, _)| 1.0 / (i as f64 + 2.0).log2())
            .sum();
        let ideal: f64 = (0..relevant.len().min(10))
            .map(|i| 1.0 / (i as f64 + 2.0).log2())
            .sum();
        if ideal > 0.0 {
            self.ndcg += dcg / ideal;
        }
        let recall = |k: usize| {
            let found = ranked.iter().take(k).filter(|id| is_relevant(id)).count();
            found as f64 / relevant.len().max(1) as f64
        };
        self.recall_1 += recall(1);
        self.recall_3 += recall(3);
        self.recall_5 += recall(5);
    }

    fn mean(&self, sum: f64) -> f64 {
        sum / self.queries.max(1) as f64
    }
}

#[derive(Default)]
struct BotSums {
    queries: usize,
    answered: usize,
    answered_expected_answer: usize,
    answered_right: usize,
    handed_off: usize,
    expected_handoff: usize,
    handoff_true_positive: usize,
}

impl BotSums {
    fn add(&mut self, expect: Expect, handed_off: bool, right: bool) {
        self.queries += 1;
        if handed_off {
            self.handed_off += 1;
        } else {
            self.answered += 1;
            if expect == Expect::Answer {
                self.answered_expected_answer += 1;
                if right {
                    self.answered_right += 1;
                }
            }
        }
        if expect == Expect::Handoff {
            self.expected_handoff += 1;
            if handed_off {
                self.handoff_true_positive += 1;
            }
        }
    }
}

/// The report as a few human-readable lines.
pub fn render_text(report: &EvalReport, max_failures: usize) -> String {
    let mut out = String::new();
    if let Some(m) = &report.portal {
        out.push_str(&format!(
            "portal  {:>5} queries  MRR@10 {:.3}  nDCG@10 {:.3}  Recall@1 {:.3}  Recall@5 {:.3}\n",
            m.queries, m.mrr_at_10, m.ndcg_at_10, m.recall_at_1, m.recall_at_5
        ));
    }
    if let Some(m) = &report.bot {
        out.push_str(&format!(
            "bot     {:>5} queries  answered {:.1}%  answer accuracy {:.3}  hand-off precision {:.3}  recall {:.3}\n",
            m.queries,
            m.answered * 100.0,
            m.answer_accuracy,
            m.handoff_precision,
            m.handoff_recall
        ));
    }
    if let Some(m) = &report.agent {
        out.push_str(&format!(
            "agent   {:>5} queries  Recall@3 {:.3}  MRR@10 {:.3}\n",
            m.queries, m.recall_at_3, m.mrr_at_10
        ));
    }
    if !report.failures.is_empty() {
        out.push_str(&format!("{} failing queries", report.failures.len()));
        if report.failures.len() > max_failures {
            out.push_str(&format!(" (first {max_failures})"));
        }
        out.push_str(":\n");
        for f in report.failures.iter().take(max_failures) {
            out.push_str(&format!(
                "  [{:?}] {}{:?}\n      expected {:?}, got {:?} — {}\n",
                f.kind,
                f.qid.as_ref().map(|q| format!("{q} ")).unwrap_or_default(),
                f.query,
                f.expected,
                f.got,
                f.note
            ));
        }
    }
    out
}
