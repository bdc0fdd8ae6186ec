//! Phrase matching on stemmed word sequences: the same normalisation as the
//! index (lower-case, ASCII folding, English stemming), so "hacked" matches
//! "hack" and "can't log in" matches "cant log in".

use std::collections::HashMap;

pub use crate::index::schema::stems;

/// A list of phrases, each with a value, matched as whole word sequences.
#[derive(Debug, Default, Clone)]
pub struct PhraseSet<V: Clone> {
    by_first_stem: HashMap<String, Vec<(Vec<String>, String, V)>>,
}

/// One phrase found in a text: where, which phrase (as written), its value.
#[derive(Debug, Clone, PartialEq)]
pub struct PhraseMatch<V> {
    pub start: usize,
    pub len: usize,
    pub phrase: String,
    pub value: V,
}

impl<V: Clone> PhraseSet<V> {
    pub fn new(entries: impl IntoIterator<Item = (String, V)>) -> Self {
        let mut by_first_stem: HashMap<String, Vec<(Vec<String>, String, V)>> = HashMap::new();
        for (phrase, value) in entries {
            let phrase_stems = stems(&phrase);
            if let Some(first) = phrase_stems.first() {
                by_first_stem
                    .entry(first.clone())
                    .or_default()
                    .push((phrase_stems, phrase, value));
            }
        }
        // Longest phrases first, so "not happy at all" wins over "not happy".
        for candidates in by_first_stem.values_mut() {
            candidates.sort_by_key(|c| std::cmp::Reverse(c.0.len()));
        }
        PhraseSet { by_first_stem }
    }

    /// Non-overlapping matches, left to right, longest first at each position.
    pub fn find(&self, text_stems: &[String]) -> Vec<PhraseMatch<V>> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < text_stems.len() {
            let matched = self
                .by_first_stem
                .get(&text_stems[i])
                .and_then(|candidates| {
                    candidates
                        .iter()
                        .find(|(phrase, _, _)| text_stems[i..].starts_with(phrase))
                });
            match matched {
                Some((phrase, written, value)) => {
                    found.push(PhraseMatch {
                        start: i,
                        len: phrase.len(),
                        phrase: written.clone(),
                        value: value.clone(),
                    });
                    i += phrase.len();
                }
                None => i += 1,
            }
        }
        found
    }

    pub fn is_empty(&self) -> bool {
        self.by_first_stem.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_whole_stemmed_sequences_longest_first() {
        let set = PhraseSet::new([
            ("not happy".to_string(), 0.5),
            ("not happy at all".to_string(), 0.8),
            ("hack".to_string(), 1.0),
            ("sue".to_string(), 1.0),
        ]);
        let found = set.find(&stems("I am NOT happy at all, someone hacked me"));
        let phrases: Vec<_> = found.iter().map(|m| m.phrase.as_str()).collect();
        assert_eq!(phrases, vec!["not happy at all", "hack"]);
        assert!(
            set.find(&stems("there is an issue")).is_empty(),
            "no partial words"
        );
    }
}
