//! Bot answers: the best section of the best article, trimmed to a message,
//! with a calibrated confidence that it is the right one.
//!
//! Confidence is a logistic model over features that can be explained to a
//! support lead. Its coefficients were fitted on judged questions plus
//! out-of-scope questions (`examples/calibrate.rs`, which also prints the
//! precision/coverage curve); refit them when the ranking changes.

use std::collections::HashSet;

use serde::Serialize;

use super::RankedHit;
use super::query::{MatchKind, QueryPlan};
use crate::handoff::lexicon::stems;

/// Why the top article is (or isn't) likely right. All in 0..1.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct AnswerFeatures {
    /// (top score − runner-up score) / top score.
    pub margin: f32,
    /// IDF-weighted share of the question's words found in the article.
    pub coverage: f32,
    /// The same, within the answering section (plus title).
    pub section_coverage: f32,
    /// The same, within the title.
    pub title_coverage: f32,
    /// Share of the matched weight that matched exactly (not via typo/prefix).
    pub exact_share: f32,
    /// 1 / number of content words: one-word questions are ambiguous.
    pub brevity: f32,
    /// Top score squashed to 0..1 (score / (score + 10)).
    pub strength: f32,
}

impl AnswerFeatures {
    pub fn as_array(&self) -> [f32; 7] {
        [
            self.margin,
            self.coverage,
            self.section_coverage,
            self.title_coverage,
            self.exact_share,
            self.brevity,
            self.strength,
        ]
    }

    pub const NAMES: [&'static str; 7] = [
        "margin",
        "coverage",
        "section_coverage",
        "title_coverage",
        "exact_share",
        "brevity",
        "strength",
    ];
}

/// Logistic regression: confidence = σ(bias + Σ weight·feature).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfidenceModel {
    pub bias: f32,
    pub weights: [f32; 7],
}

impl Default for ConfidenceModel {
    /// Fitted by `examples/calibrate.rs` on stackfaq + covidfaq (in scope) and
    /// the two sets asked against each other (out of scope).
    fn default() -> Self {
        ConfidenceModel {
            bias: -8.086,
            weights: [0.716, 1.845, 0.489, 3.451, 2.406, -2.743, 4.836],
        }
    }
}

impl ConfidenceModel {
    pub fn confidence(&self, features: &AnswerFeatures) -> f32 {
        let z = self.bias
            + self
                .weights
                .iter()
                .zip(features.as_array())
                .map(|(w, x)| w * x)
                .sum::<f32>();
        1.0 / (1.0 + (-z).exp())
    }
}

/// Features of the top hit against the runner-up.
pub fn features(plan: &QueryPlan, hits: &[RankedHit]) -> Option<AnswerFeatures> {
    let top = hits.first()?;
    let runner_up = hits.get(1).map_or(0.0, |h| h.score);
    let margin = if top.score > 0.0 {
        ((top.score - runner_up) / top.score).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let article = &top.article;
    let mut article_text = format!(
        "{}\n{}\n{}\n",
        article.title,
        article.summary,
        article.tags.join(" ")
    );
    article_text.push_str(&article.body_text());
    let article_stems: HashSet<String> = stems(&article_text).into_iter().collect();
    let section_stems: HashSet<String> = match top.section() {
        Some(section) => stems(&format!(
            "{}\n{}\n{}",
            article.title, section.heading, section.text
        )),
        None => stems(&article.title),
    }
    .into_iter()
    .collect();
    let title_stems: HashSet<String> = stems(&article.title).into_iter().collect();

    let total_idf: f32 = plan.words.iter().map(|w| w.idf * w.weight).sum();
    if total_idf <= 0.0 {
        return None;
    }
    let share = |found: &HashSet<String>| -> (f32, f32) {
        let mut matched = 0.0;
        let mut exact = 0.0;
        for word in &plan.words {
            let best = word
                .variants
                .iter()
                .filter(|v| found.contains(&v.stem))
                .max_by(|a, b| a.weight.total_cmp(&b.weight));
            if let Some(variant) = best {
                matched += word.idf * word.weight;
                if variant.kind == MatchKind::Exact {
                    exact += word.idf * word.weight;
                }
            }
        }
        (matched / total_idf, exact)
    };
    let (coverage, exact) = share(&article_stems);
    let matched_weight = coverage * total_idf;
    Some(AnswerFeatures {
        margin,
        coverage,
        section_coverage: share(&section_stems).0,
        title_coverage: share(&title_stems).0,
        exact_share: if matched_weight > 0.0 {
            exact / matched_weight
        } else {
            0.0
        },
        brevity: 1.0 / plan.words.len().max(1) as f32,
        strength: top.score / (top.score + 10.0),
    })
}

/// The section text cut to a bot-sized message: whole lines (paragraphs, list
/// items) while they fit, else the first sentences that fit, else words.
pub fn trim_answer(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let needed = out.chars().count() + usize::from(!out.is_empty()) + line.chars().count();
        if needed <= max_chars {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(line);
            continue;
        }
        if out.is_empty() {
            out = cut_sentences(line, max_chars);
        }
        break;
    }
    out
}

fn cut_sentences(line: &str, max_chars: usize) -> String {
    let limit = line
        .char_indices()
        .nth(max_chars)
        .map_or(line.len(), |(i, _)| i);
    let head = &line[..limit];
    let sentence_end = head
        .char_indices()
        .rev()
        .find(|&(i, c)| {
            matches!(c, '.' | '!' | '?')
                && line[i + c.len_utf8()..].starts_with(char::is_whitespace)
        })
        .map(|(i, c)| i + c.len_utf8());
    match sentence_end {
        Some(end) if end > limit / 3 => head[..end].to_string(),
        _ => {
            let cut = head.rfind(char::is_whitespace).unwrap_or(head.len());
            format!("{}…", head[..cut].trim_end())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_cut_at_line_then_sentence_boundaries() {
        let text =
            "First step is short.\nSecond line here.\nThird line that is long enough to overflow.";
        assert_eq!(
            trim_answer(text, 40),
            "First step is short.\nSecond line here."
        );
        let one = "One sentence here. Another sentence that is longer. And more text follows it.";
        assert_eq!(
            trim_answer(one, 55),
            "One sentence here. Another sentence that is longer."
        );
        assert_eq!(
            trim_answer("averyveryverylongword and more words", 20),
            "averyveryverylongwor…"
        );
    }

    #[test]
    fn confidence_grows_with_evidence() {
        let model = ConfidenceModel::default();
        let weak = AnswerFeatures {
            coverage: 0.2,
            brevity: 1.0,
            ..Default::default()
        };
        let strong = AnswerFeatures {
            margin: 0.6,
            coverage: 1.0,
            section_coverage: 1.0,
            title_coverage: 0.8,
            exact_share: 1.0,
            brevity: 0.25,
            strength: 0.8,
        };
        assert!(model.confidence(&strong) > model.confidence(&weak));
    }
}
