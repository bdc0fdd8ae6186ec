//! Query-time synonyms from `synonyms.toml` in the articles folder.
//!
//! Groups make every member match the others; mappings are one-way (a
//! customer's `"charged twice"` also searches `"duplicate charge"`, not the
//! reverse). Entries may be several words; they are analyzed with the same
//! stemming analyzer as the index, so `"log in"`, `"log-in"` and `"logging in"`
//! are the same entry.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::Deserialize;

use crate::index::schema::stems;

pub const SYNONYMS_FILE: &str = "synonyms.toml";

/// Swapped in whole by the indexer when the file changes.
pub type SynonymsHandle = Arc<RwLock<Arc<Synonyms>>>;

#[derive(Debug, thiserror::Error)]
pub enum SynonymsError {
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    #[error("file is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("invalid TOML: {0}")]
    Toml(#[from] toml::de::Error),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SynonymsFile {
    #[serde(default)]
    groups: Vec<Vec<String>>,
    #[serde(default)]
    mappings: BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Stemmed token sequences: `pattern` in a query also searches each alternative.
#[derive(Debug, Default)]
pub struct Synonyms {
    alternatives_by_pattern: HashMap<Vec<String>, Vec<Vec<String>>>,
    longest_pattern: usize,
}

/// One place in the query where a synonym entry matched.
#[derive(Debug, Clone, PartialEq)]
pub struct SynonymMatch {
    pub start: usize,
    pub len: usize,
    pub alternatives: Vec<Vec<String>>,
}

impl Synonyms {
    pub fn load(path: &Path, max_bytes: u64) -> Result<Self, SynonymsError> {
        let size = std::fs::metadata(path)?.len();
        if size > max_bytes {
            return Err(SynonymsError::TooLarge {
                size,
                limit: max_bytes,
            });
        }
        Self::parse(&std::fs::read_to_string(path)?)
    }

    pub fn parse(source: &str) -> Result<Self, SynonymsError> {
        let file: SynonymsFile = toml::from_str(source)?;
        let mut synonyms = Synonyms::default();
        for group in &file.groups {
            let members: Vec<Vec<String>> = group.iter().map(|m| stems(m)).collect();
            for (i, pattern) in members.iter().enumerate() {
                let others = members
                    .iter()
                    .enumerate()
                    .filter(|(j, other)| *j != i && *other != pattern)
                    .map(|(_, other)| other.clone());
                synonyms.add(pattern.clone(), others);
            }
        }
        for (from, to) in &file.mappings {
            let targets = match to {
                OneOrMany::One(target) => vec![stems(target)],
                OneOrMany::Many(targets) => targets.iter().map(|t| stems(t)).collect(),
            };
            synonyms.add(stems(from), targets.into_iter());
        }
        Ok(synonyms)
    }

    fn add(&mut self, pattern: Vec<String>, alternatives: impl Iterator<Item = Vec<String>>) {
        if pattern.is_empty() {
            return;
        }
        self.longest_pattern = self.longest_pattern.max(pattern.len());
        let entry = self
            .alternatives_by_pattern
            .entry(pattern.clone())
            .or_default();
        for alternative in alternatives {
            if !alternative.is_empty() && alternative != pattern && !entry.contains(&alternative) {
                entry.push(alternative);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.alternatives_by_pattern.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alternatives_by_pattern.is_empty()
    }

    /// Every span of `tokens` (stemmed) that matches an entry.
    pub fn find(&self, tokens: &[String]) -> Vec<SynonymMatch> {
        let mut matches = Vec::new();
        for start in 0..tokens.len() {
            let max_len = self.longest_pattern.min(tokens.len() - start);
            for len in 1..=max_len {
                if let Some(alternatives) = self
                    .alternatives_by_pattern
                    .get(&tokens[start..start + len])
                {
                    matches.push(SynonymMatch {
                        start,
                        len,
                        alternatives: alternatives.clone(),
                    });
                }
            }
        }
        matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_symmetric_and_mappings_one_way() {
        let synonyms = Synonyms::parse(
            r#"
groups = [["sign in", "log in", "login"]]
[mappings]
"charged twice" = ["duplicate payment", "double charge"]
"2fa" = "two-step verification"
"#,
        )
        .unwrap();
        let found = synonyms.find(&stems("how to log in"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].start, 2);
        assert!(found[0].alternatives.contains(&stems("sign in")));
        assert!(found[0].alternatives.contains(&stems("login")));

        let found = synonyms.find(&stems("I was charged twice"));
        assert_eq!(
            found[0].alternatives,
            vec![stems("duplicate payment"), stems("double charge")]
        );
        assert!(synonyms.find(&stems("duplicate payment")).is_empty());
        assert_eq!(
            synonyms.find(&stems("2FA help"))[0].alternatives,
            vec![stems("two-step verification")]
        );
    }

    #[test]
    fn invalid_file_is_an_error() {
        assert!(Synonyms::parse("groups = [1, 2]").is_err());
        assert!(Synonyms::parse("unknown = 1").is_err());
    }
}
