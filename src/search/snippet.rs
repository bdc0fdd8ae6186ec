//! Highlighted snippets. Written by hand because tantivy's snippet generator
//! only highlights the query's own terms; ours must also mark typo, prefix and
//! synonym matches. Matching is done on stems with the index analyzer, so
//! "resetting" is highlighted for "reset".

use std::collections::HashSet;

use crate::index::schema::with_plain_analyzer;

/// Characters of context in a search snippet.
pub const SNIPPET_CHARS: usize = 200;

/// Byte ranges of `text` whose stem is in `terms`.
///
/// Stemming every word of every section on a page was a tenth of a
/// search's CPU time. A stem keeps its word's first letter (Snowball's
/// English stemmer only rewrites suffixes; words of up to two letters are
/// left alone), so only words starting like some term are stemmed: the
/// plain analyzer (the stemmed one without its last step) gives the
/// words, and [`crate::search::query::stem`] finishes the few candidates.
fn matches(text: &str, terms: &HashSet<String>) -> Vec<(usize, usize, String)> {
    let mut first_letters = [false; 256];
    for term in terms {
        if let Some(&first) = term.as_bytes().first() {
            first_letters[usize::from(first)] = true;
        }
    }
    with_plain_analyzer(|analyzer| {
        let mut stream = analyzer.token_stream(text);
        let mut found = Vec::new();
        while let Some(token) = stream.next() {
            let Some(&first) = token.text.as_bytes().first() else {
                continue;
            };
            if !first_letters[usize::from(first)] {
                continue;
            }
            let stem = crate::search::query::stem(&token.text);
            if terms.contains(&stem) {
                found.push((token.offset_from, token.offset_to, stem));
            }
        }
        found
    })
}

/// The window of about `max_chars` with the most distinct matched terms,
/// HTML-escaped, matches wrapped in `<mark>`.
pub fn snippet(text: &str, terms: &HashSet<String>, max_chars: usize) -> String {
    let found = matches(text, terms);
    let max_bytes = max_chars;
    let (start, end) = if text.len() <= max_bytes {
        (0, text.len())
    } else if found.is_empty() {
        (0, floor_char_boundary(text, max_bytes))
    } else {
        let mut best = (0usize, 0usize); // (distinct terms, index of first match)
        for i in 0..found.len() {
            let window_end = found[i].0 + max_bytes;
            let distinct: HashSet<&str> = found[i..]
                .iter()
                .take_while(|m| m.1 <= window_end)
                .map(|m| m.2.as_str())
                .collect();
            if distinct.len() > best.0 {
                best = (distinct.len(), i);
            }
        }
        // Start a little before the first match, at a word boundary.
        let first = found[best.1].0;
        let lead = first.saturating_sub(max_bytes / 5);
        let start = word_start(text, lead, first);
        let hard_end = floor_char_boundary(text, (start + max_bytes).min(text.len()));
        // Backing off to a word boundary must not go before the start (a
        // tiny window right after a space did: " 0[g[…", one character).
        let end = match word_end(text, hard_end) {
            end if end > start => end,
            _ => hard_end,
        };
        (start, end)
    };
    let mut out = String::with_capacity(end - start + 32);
    if start > 0 {
        out.push('…');
    }
    let mut cursor = start;
    for (from, to, _) in found.iter().filter(|m| m.0 >= start && m.1 <= end) {
        escape_lines_into(&mut out, text, cursor, *from);
        out.push_str("<mark>");
        escape_into(&mut out, &text[*from..*to]);
        out.push_str("</mark>");
        cursor = *to;
    }
    escape_lines_into(&mut out, text, cursor, end);
    if end < text.len() {
        out.push('…');
    }
    out
}

/// Escapes `text[from..to]` onto one line. A line that ends a sentence is
/// followed by a space; one that doesn't (a list item, a table row) by a
/// `·`, so rows and items don't run together.
fn escape_lines_into(out: &mut String, text: &str, from: usize, to: usize) {
    let mut cursor = from;
    for (offset, _) in text[from..to].match_indices('\n') {
        let at = from + offset;
        escape_into(out, &text[cursor..at]);
        let ends_sentence = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| matches!(c, '.' | '!' | '?' | ':' | ';' | ',' | '…' | '\n'));
        out.push_str(if ends_sentence { " " } else { " · " });
        cursor = at + 1;
    }
    escape_into(out, &text[cursor..to]);
}

/// The whole text, escaped, every match marked (titles in autocomplete).
pub fn highlight_all(text: &str, terms: &HashSet<String>) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut cursor = 0;
    for (from, to, _) in matches(text, terms) {
        escape_into(&mut out, &text[cursor..from]);
        out.push_str("<mark>");
        escape_into(&mut out, &text[from..to]);
        out.push_str("</mark>");
        cursor = to;
    }
    escape_into(&mut out, &text[cursor..]);
    out
}

pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// A word boundary in `[from, limit]`, or `limit` if there is none.
fn word_start(text: &str, from: usize, limit: usize) -> usize {
    let from = floor_char_boundary(text, from);
    if from == 0 {
        return 0;
    }
    text[from..limit]
        .find(char::is_whitespace)
        .map(|i| from + i + 1)
        .filter(|&i| i <= limit)
        .unwrap_or(limit)
}

/// Backs off to the last whitespace before `end` (unless that loses too much).
fn word_end(text: &str, end: usize) -> usize {
    if end >= text.len() {
        return text.len();
    }
    match text[..end].rfind(char::is_whitespace) {
        Some(i) if end - i < 30 => i,
        _ => end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(words: &[&str]) -> HashSet<String> {
        words
            .iter()
            .map(|w| crate::search::query::stem(w))
            .collect()
    }

    #[test]
    fn marks_stemmed_matches_and_escapes_html() {
        let text = "Resetting your <b>password</b> & more";
        let out = snippet(text, &terms(&["reset", "password"]), 200);
        assert_eq!(
            out,
            "<mark>Resetting</mark> your &lt;b&gt;<mark>password</mark>&lt;/b&gt; &amp; more"
        );
    }

    #[test]
    fn long_text_is_windowed_around_the_densest_matches() {
        let text = format!(
            "{} The refund arrives in five days. {}",
            "filler words here. ".repeat(30),
            "more filler text. ".repeat(30)
        );
        let out = snippet(&text, &terms(&["refund", "days"]), 120);
        assert!(out.starts_with('…') && out.ends_with('…'), "{out}");
        assert!(
            out.contains("<mark>refund</mark>") && out.contains("<mark>days</mark>"),
            "{out}"
        );
        let visible = out.replace("<mark>", "").replace("</mark>", "");
        assert!(visible.chars().count() <= 123, "{visible}");
    }

    #[test]
    fn lines_without_a_full_stop_are_kept_apart() {
        let text = "Plan | Price\nGrowth | $19\nBusiness | $39\nPick one.\nThen pay";
        assert_eq!(
            snippet(text, &terms(&["growth"]), 200),
            "Plan | Price · <mark>Growth</mark> | $19 · Business | $39 · Pick one. Then pay"
        );
    }

    #[test]
    fn multibyte_text_never_splits_a_char() {
        let text = "é".repeat(500);
        let out = snippet(&text, &terms(&["x"]), 101);
        assert!(out.ends_with('…'));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// The straightforward way: stem every word.
    fn every_word(text: &str, terms: &HashSet<String>) -> Vec<(usize, usize, String)> {
        crate::index::schema::with_stemmed_analyzer(|analyzer| {
            let mut stream = analyzer.token_stream(text);
            let mut found = Vec::new();
            while let Some(token) = stream.next() {
                if terms.contains(&token.text) {
                    found.push((token.offset_from, token.offset_to, token.text.clone()));
                }
            }
            found
        })
    }

    #[test]
    fn every_english_word_keeps_its_first_letter_when_stemmed() {
        // The bundled articles' whole vocabulary, and the stemmer's own
        // exceptions ("dying" → "die", "skies" → "sky", "gently" → "gentl").
        let mut words: Vec<String> = [
            "dying", "lying", "tying", "skies", "skis", "idly", "gently", "ugly", "early", "only",
            "singly", "news", "howe", "atlas", "cosmos", "bias", "andes", "yelling", "yes", "ays",
            "aing", "eed", "ied", "ies", "sses", "ing", "ed",
        ]
        .iter()
        .map(|w| w.to_string())
        .collect();
        for entry in walkdir::WalkDir::new(concat!(env!("CARGO_MANIFEST_DIR"), "/articles")) {
            let entry = entry.unwrap();
            if entry.file_type().is_file() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                words.extend(crate::index::schema::with_plain_analyzer(|analyzer| {
                    let mut stream = analyzer.token_stream(&text);
                    let mut out = Vec::new();
                    while let Some(token) = stream.next() {
                        out.push(token.text.clone());
                    }
                    out
                }));
            }
        }
        assert!(words.len() > 10_000, "{} words", words.len());
        for word in &words {
            let stem = crate::search::query::stem(word);
            assert_eq!(
                stem.as_bytes().first(),
                word.as_bytes().first(),
                "{word} → {stem}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn snippets_never_panic_and_never_leak_markup(
            text in any::<String>(),
            words in prop::collection::vec("[a-z]{1,8}", 0..5),
            max in 1usize..400,
        ) {
            let terms: HashSet<String> = words.iter().map(|w| crate::search::query::stem(w)).collect();
            for out in [snippet(&text, &terms, max), highlight_all(&text, &terms)] {
                let visible = out.replace("<mark>", "").replace("</mark>", "");
                prop_assert!(!visible.contains('<') && !visible.contains('>'));
            }
        }

        /// The first-letter shortcut finds exactly what stemming every word
        /// finds.
        #[test]
        fn matches_equal_stemming_every_word(
            text in "([A-Za-zÀ-ÿ]{1,12}[ ,.!?']{1,2}){0,40}",
            words in prop::collection::vec("[a-z]{1,10}", 1..6),
        ) {
            let terms: HashSet<String> = words.iter().map(|w| crate::search::query::stem(w)).collect();
            prop_assert_eq!(matches(&text, &terms), every_word(&text, &terms));
        }

        #[test]
        fn query_tokens_are_bounded(text in any::<String>()) {
            prop_assert!(crate::search::query::surface_tokens(&text).len() <= crate::search::query::MAX_QUERY_WORDS);
        }
    }
}
