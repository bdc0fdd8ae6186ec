//! Bot answers: the best section of the best article, trimmed to a message,
//! with a calibrated confidence that it is the right one.
//!
//! Confidence is a logistic model over features that can be explained to a
//! support lead. Its coefficients were fitted on judged questions plus
//! out-of-scope questions (`examples/calibrate.rs`, which also prints the
//! precision/coverage curve); refit them when the ranking changes.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Serialize;

use super::RankedHit;
use super::query::{MatchKind, QueryPlan};
use crate::article::{Article, Section};
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
    /// Cosine of the question to the answering section, when ranked by
    /// meaning too (a strong, well-calibrated signal on unseen help centers).
    pub cosine: Option<f32>,
    /// The top article's cosine minus the runner-up's.
    pub cosine_margin: Option<f32>,
    /// The top article's word score relative to the best word score among
    /// the candidates: 1 when words and meaning agree on it, 0 when only
    /// meaning found it.
    pub lexical_share: Option<f32>,
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

impl AnswerFeatures {
    /// The lexical features and the two by meaning (0 when absent).
    pub fn as_fused_array(&self) -> [f32; 10] {
        let [a, b, c, d, e, f, g] = self.as_array();
        [
            a,
            b,
            c,
            d,
            e,
            f,
            g,
            self.cosine.unwrap_or(0.0),
            self.cosine_margin.unwrap_or(0.0),
            self.lexical_share.unwrap_or(0.0),
        ]
    }

    /// [`Self::NAMES`] and the three features by meaning.
    pub const FUSED_NAMES: [&'static str; 10] = {
        let mut names = [""; 10];
        let mut i = 0;
        while i < Self::NAMES.len() {
            names[i] = Self::NAMES[i];
            i += 1;
        }
        names[7] = "cosine";
        names[8] = "cosine_margin";
        names[9] = "lexical_share";
        names
    };
}

/// Logistic regression: confidence = σ(bias + Σ weight·feature). Two sets of
/// coefficients: by words only, and with the meaning features when the
/// answer was ranked by meaning too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfidenceModel {
    pub bias: f32,
    pub weights: [f32; 7],
    pub fused: FusedConfidence,
}

/// The coefficients used when the features include cosine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedConfidence {
    pub bias: f32,
    pub weights: [f32; 10],
}

impl Default for ConfidenceModel {
    /// Fitted by `examples/calibrate.rs` on stackfaq + covidfaq (in scope) and
    /// the two sets asked against each other (out of scope).
    fn default() -> Self {
        ConfidenceModel {
            bias: -8.086,
            weights: [0.716, 1.845, 0.489, 3.451, 2.406, -2.743, 4.836],
            fused: FusedConfidence::default(),
        }
    }
}

impl Default for FusedConfidence {
    /// Fitted by `examples/calibrate.rs --model models/all-MiniLM-L6-v2` on
    /// stackfaq + covidfaq (in scope) and the two sets asked against each
    /// other (out of scope).
    fn default() -> Self {
        FusedConfidence {
            bias: -3.976,
            weights: [
                1.314, 1.275, -0.899, 2.175, 1.250, -3.020, 1.041, 5.492, 2.457, -1.661,
            ],
        }
    }
}

impl ConfidenceModel {
    pub fn confidence(&self, features: &AnswerFeatures) -> f32 {
        if features.cosine.is_some() {
            logistic(
                self.fused.bias,
                &self.fused.weights,
                &features.as_fused_array(),
            )
        } else {
            logistic(self.bias, &self.weights, &features.as_array())
        }
    }
}

/// σ(bias + Σ weight·feature).
fn logistic(bias: f32, weights: &[f32], features: &[f32]) -> f32 {
    let z = bias
        + weights
            .iter()
            .zip(features)
            .map(|(w, x)| w * x)
            .sum::<f32>();
    1.0 / (1.0 + (-z).exp())
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
        cosine: top.cosine,
        cosine_margin: top
            .cosine
            .map(|c| c - hits.get(1).and_then(|h| h.cosine).unwrap_or(0.0)),
        lexical_share: top.cosine.map(|_| {
            let best = hits.iter().map(|h| h.score).fold(0.0f32, f32::max);
            if best > 0.0 { top.score / best } else { 0.0 }
        }),
    })
}

/// Below this many words a section's own text only introduces what follows
/// ("To do this:", "Follow these steps."): said alone, it answers nothing.
pub const SHORT_INTRO_WORDS: usize = 12;

/// What the bot says, and the section it points to (which moves only when the
/// chosen one has no text and nothing under or after it to say instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerText {
    /// Index into the article's sections; `None` when it has none.
    pub section: Option<usize>,
    pub text: String,
}

/// The answer for `section` of `article`, at most `max_chars` long (see
/// [`trim_answer`]). A section that only introduces (a few words, or a line
/// ending in `:`) goes on with its sub-sections, else the next section at its
/// level; a heading with no text says its sub-sections' text. The text is
/// never empty while the article has any text, a summary or a title.
pub fn answer_text(article: &Article, section: Option<usize>, max_chars: usize) -> AnswerText {
    let sections = &article.sections;
    let Some(index) = section.filter(|&i| i < sections.len()) else {
        return AnswerText {
            section: None,
            text: fallback_text(article, max_chars),
        };
    };
    let own = sections[index].text.as_str();
    if !is_introduction(own) {
        return AnswerText {
            section: Some(index),
            text: trim_answer(own, max_chars),
        };
    }
    let following = continuation(sections, index);
    if following.iter().any(|&i| !sections[i].text.is_empty()) {
        return AnswerText {
            section: Some(index),
            text: fit_lines(&continued_lines(sections, index, &following), max_chars),
        };
    }
    if !own.is_empty() {
        return AnswerText {
            section: Some(index),
            text: trim_answer(own, max_chars),
        };
    }
    match nearest_with_text(sections, index) {
        // It has text, so this does not come back here.
        Some(nearest) => answer_text(article, Some(nearest), max_chars),
        None => AnswerText {
            section: Some(index),
            text: fallback_text(article, max_chars),
        },
    }
}

/// Few words, or a lead-in to what comes next.
fn is_introduction(text: &str) -> bool {
    text.split_whitespace().count() < SHORT_INTRO_WORDS || text.trim_end().ends_with(':')
}

/// The sections an introduction leads into: its sub-sections when they have
/// text, else the next section at the same level with its sub-sections. A
/// next section that asks a question is another FAQ entry, not a follow-up.
fn continuation(sections: &[Section], index: usize) -> Vec<usize> {
    let level = sections[index].level;
    let under = |start: usize| -> Vec<usize> {
        (start..sections.len())
            .take_while(|&i| sections[i].level > level)
            .collect()
    };
    let children = under(index + 1);
    if children.iter().any(|&i| !sections[i].text.is_empty()) {
        return children;
    }
    let next = index + 1 + children.len();
    match sections.get(next) {
        Some(sibling) if sibling.level == level && !sibling.heading.trim_end().ends_with('?') => {
            let mut block = vec![next];
            block.extend(under(next + 1));
            block
        }
        _ => Vec::new(),
    }
}

/// The closest section with text, earlier ones first at equal distance
/// (they are what the reader just passed).
fn nearest_with_text(sections: &[Section], index: usize) -> Option<usize> {
    (1..sections.len())
        .flat_map(|distance| [index.checked_sub(distance), Some(index + distance)])
        .flatten()
        .find(|&i| sections.get(i).is_some_and(|s| !s.text.is_empty()))
}

/// The article's summary, else its title: something to say even when no
/// section has text.
fn fallback_text(article: &Article, max_chars: usize) -> String {
    let text = if article.summary.trim().is_empty() {
        article.title.as_str()
    } else {
        article.summary.as_str()
    };
    trim_answer(text, max_chars)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// The chosen section's own text.
    Own,
    /// A following section's heading, so its text reads apart from others.
    Heading,
    /// A following section's text.
    Following,
}

fn continued_lines<'a>(
    sections: &'a [Section],
    index: usize,
    following: &[usize],
) -> Vec<(LineKind, Cow<'a, str>)> {
    let mut lines: Vec<(LineKind, Cow<'a, str>)> = sections[index]
        .text
        .lines()
        .map(|line| (LineKind::Own, Cow::Borrowed(line)))
        .collect();
    // One following section needs no heading; several do, or their steps
    // would run together. A heading is kept only over text (its own, or a
    // deeper section's right after it).
    let named = following.len() > 1;
    for (k, &i) in following.iter().enumerate() {
        let section = &sections[i];
        let leads_to_text = !section.text.is_empty()
            || following
                .get(k + 1)
                .is_some_and(|&next| sections[next].level > section.level);
        if named && leads_to_text && !section.heading.trim().is_empty() {
            lines.push((
                LineKind::Heading,
                Cow::Owned(heading_line(&section.heading)),
            ));
        }
        lines.extend(
            section
                .text
                .lines()
                .map(|line| (LineKind::Following, Cow::Borrowed(line))),
        );
    }
    lines
}

/// A heading as a line introducing text: `On iPhone` → `On iPhone:`.
fn heading_line(heading: &str) -> String {
    let heading = heading.trim();
    if heading.ends_with([':', '.', '?', '!']) {
        heading.to_string()
    } else {
        format!("{heading}:")
    }
}

/// [`trim_answer`] over an introduction and what follows it, with two
/// differences: the first following line too long to fit whole is cut to the
/// room left (an introduction alone says nothing), and a heading is never
/// the last line.
fn fit_lines(lines: &[(LineKind, Cow<'_, str>)], max_chars: usize) -> String {
    let mut out: Vec<(LineKind, String)> = Vec::new();
    let mut used = 0;
    for (kind, line) in lines {
        let separator = usize::from(!out.is_empty());
        let length = line.chars().count();
        if used + separator + length <= max_chars {
            out.push((*kind, line.to_string()));
            used += separator + length;
            continue;
        }
        let followed = out.iter().any(|(k, _)| *k == LineKind::Following);
        let first_text = !out.iter().any(|(k, _)| *k != LineKind::Heading);
        if *kind != LineKind::Heading && (first_text || (*kind == LineKind::Following && !followed))
        {
            // One character is kept for the `…` a cut between words adds.
            let room = max_chars.saturating_sub(used + separator + 1);
            if room > 0 {
                out.push((*kind, cut_sentences(line, room)));
            }
        }
        break;
    }
    while out.last().is_some_and(|(k, _)| *k == LineKind::Heading) {
        out.pop();
    }
    if out.is_empty() {
        // Headings took the room: the first text alone, cut to fit.
        if let Some((_, line)) = lines.iter().find(|(k, _)| *k != LineKind::Heading) {
            return cut_sentences(line, max_chars.saturating_sub(1).max(1));
        }
    }
    out.into_iter()
        .map(|(_, line)| line)
        .collect::<Vec<_>>()
        .join("\n")
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

    fn article(body: &str) -> Article {
        crate::article::parse(body.as_bytes(), "help/a.md").unwrap()
    }

    fn index_of(article: &Article, heading: &str) -> usize {
        article
            .sections
            .iter()
            .position(|s| s.heading == heading)
            .unwrap()
    }

    #[test]
    fn a_short_introduction_goes_on_with_its_sub_sections() {
        let a = article(
            "# Reset\n\n## Reset your password\n\nTo do this:\n\n### On the web\n\n1. Open Settings.\n2. Select Reset.\n\n### In the app\n\nTap Profile, then Reset.\n\n## Other\n\nUnrelated text.",
        );
        let chosen = index_of(&a, "Reset your password");
        let said = answer_text(&a, Some(chosen), 600);
        assert_eq!(said.section, Some(chosen));
        assert_eq!(
            said.text,
            "To do this:\nOn the web:\nOpen Settings.\nSelect Reset.\nIn the app:\nTap Profile, then Reset."
        );
    }

    #[test]
    fn a_short_introduction_without_sub_sections_goes_on_with_the_next_section() {
        let a = article(
            "## Change your plan\n\nFollow these steps.\n\n## Steps\n\n1. Go to Billing.\n2. Pick a plan.\n\n## Prices\n\nSee the pricing page.",
        );
        let said = answer_text(&a, Some(index_of(&a, "Change your plan")), 600);
        assert_eq!(
            said.text,
            "Follow these steps.\nGo to Billing.\nPick a plan."
        );
        // A lead-in ending in `:` introduces whatever its length.
        let a = article(
            "## Export\n\nIf you need a copy of every invoice you sent in the last year, do this in Settings:\n\n## Steps\n\nSelect Export.",
        );
        let said = answer_text(&a, Some(0), 600);
        assert!(said.text.ends_with(":\nSelect Export."), "{}", said.text);
    }

    #[test]
    fn short_complete_answers_stay_as_they_are() {
        let a = article(
            "## Can I pay by PayPal?\n\nYes, on every plan.\n\n## Can I pay by invoice?\n\nOnly on Business.\n\n## Refunds\n\nAsk us.",
        );
        let said = answer_text(&a, Some(0), 600);
        assert_eq!(
            said.text, "Yes, on every plan.",
            "the next question is another topic"
        );
        // The last section has no next one.
        let said = answer_text(&a, Some(index_of(&a, "Refunds")), 600);
        assert_eq!(said.text, "Ask us.");
        let long = article(
            "## Payouts\n\nPayouts reach your bank two business days after the payment clears, on every plan.\n\n## More\n\nOther text.",
        );
        assert!(!answer_text(&long, Some(0), 600).text.contains("Other"));
    }

    #[test]
    fn a_heading_without_text_says_its_sub_sections_or_moves_to_the_nearest_text() {
        let a = article(
            "## Set up\n\n### On Android\n\nInstall the app.\n\n### On iPhone\n\nOpen the App Store.\n\n## Can I skip this?\n\nNo.\n\n## Troubleshooting\n",
        );
        let said = answer_text(&a, Some(0), 600);
        assert_eq!(said.section, Some(0));
        assert_eq!(
            said.text,
            "On Android:\nInstall the app.\nOn iPhone:\nOpen the App Store."
        );
        let empty = index_of(&a, "Troubleshooting");
        let said = answer_text(&a, Some(empty), 600);
        assert_eq!(said.section, Some(index_of(&a, "Can I skip this?")));
        assert_eq!(said.text, "No.");
    }

    #[test]
    fn continued_answers_keep_to_the_limit_and_never_end_on_a_heading() {
        let a = article(
            "## Set up\n\nDo this:\n\n### First\n\nStep one is short.\n\n### Second\n\nStep two is a much longer line that cannot fit.",
        );
        let said = answer_text(&a, Some(0), 40);
        assert_eq!(said.text, "Do this:\nFirst:\nStep one is short.");
        // The first step is cut to the room left rather than left out.
        let a = article(
            "## Set up\n\nDo this:\n\n## Steps\n\nOpen the settings page. Then select the security tab and scroll down.",
        );
        let said = answer_text(&a, Some(0), 40);
        assert_eq!(said.text, "Do this:\nOpen the settings page.");
    }

    #[test]
    fn articles_without_section_text_say_their_summary_or_title() {
        let a = article("---\ntitle: Empty\nsummary: A stub.\n---\n## Nothing\n\n## Here\n");
        assert_eq!(answer_text(&a, Some(1), 600).text, "A stub.");
        assert_eq!(answer_text(&a, None, 600).text, "A stub.");
        let a = article("---\ntitle: Empty\n---\n## Nothing\n");
        assert_eq!(answer_text(&a, Some(0), 600).text, "Empty");
        assert_eq!(answer_text(&a, Some(7), 600).text, "Empty", "out of range");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        #[test]
        fn answers_are_never_empty_and_keep_to_the_limit(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Just("\n## Heading\n".to_string()),
                    proptest::prelude::Just("\n### Sub?\n".to_string()),
                    proptest::prelude::Just("\n#### Deep\n".to_string()),
                    proptest::prelude::Just("\nTo do this:\n".to_string()),
                    proptest::prelude::Just("\n| a | b | c |\n|---|---|---|\n| x | | z |\n".to_string()),
                    "[a-z ]{0,80}\\.",
                ],
                0..12,
            ),
            max_chars in 1usize..200,
        ) {
            let a = article(&format!("---\ntitle: T\n---\n{}", pieces.concat()));
            for index in (0..a.sections.len()).map(Some).chain([None]) {
                let said = answer_text(&a, index, max_chars);
                proptest::prop_assert!(!said.text.trim().is_empty(), "{:?} at {:?}", a.sections, index);
                // `…` after a cut between words is the one character over.
                proptest::prop_assert!(said.text.chars().count() <= max_chars + 1, "{}", said.text);
                proptest::prop_assert!(said.section.is_none_or(|i| i < a.sections.len()));
            }
        }
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
            ..Default::default()
        };
        assert!(model.confidence(&strong) > model.confidence(&weak));
        // With meaning, a close section makes the bot surer than a far one.
        let close = AnswerFeatures {
            cosine: Some(0.8),
            cosine_margin: Some(0.2),
            lexical_share: Some(1.0),
            ..strong
        };
        let far = AnswerFeatures {
            cosine: Some(0.2),
            cosine_margin: Some(0.0),
            lexical_share: Some(1.0),
            ..strong
        };
        assert!(model.confidence(&close) > model.confidence(&far));
    }
}
