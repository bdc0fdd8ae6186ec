//! GitHub-style heading anchors, so deep links written for GitHub or most
//! static-site generators keep working against rapport.

use std::collections::HashMap;

/// Slugs a heading the way GitHub does: lower-case, drop punctuation other than
/// `-` and `_`, turn spaces into `-`. Non-ASCII letters are kept.
pub fn slugify(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// Hands out unique anchors within one article: the second "Overview" becomes
/// `overview-1`, like GitHub.
#[derive(Default)]
pub struct AnchorSet {
    seen: HashMap<String, usize>,
}

impl AnchorSet {
    pub fn unique(&mut self, heading: &str) -> String {
        let base = slugify(heading);
        let base = if base.is_empty() {
            "section".to_string()
        } else {
            base
        };
        let mut candidate = base.clone();
        loop {
            let count = self.seen.entry(candidate.clone()).or_insert(0);
            if *count == 0 {
                *count = 1;
                // Reserve the base too, so a later literal "overview-1" heading
                // doesn't collide with a generated one.
                return candidate;
            }
            let n = self.seen.get(&base).copied().unwrap_or(1);
            self.seen.insert(base.clone(), n + 1);
            candidate = format!("{base}-{n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_like_github() {
        assert_eq!(slugify("If you lost your phone"), "if-you-lost-your-phone");
        assert_eq!(
            slugify("Why was I charged twice?"),
            "why-was-i-charged-twice"
        );
        assert_eq!(slugify("C++ & Rust: a_b"), "c--rust-a_b");
        assert_eq!(slugify("Résumé upload"), "résumé-upload");
    }

    #[test]
    fn duplicate_headings_get_numbered_anchors() {
        let mut anchors = AnchorSet::default();
        assert_eq!(anchors.unique("Overview"), "overview");
        assert_eq!(anchors.unique("Overview"), "overview-1");
        assert_eq!(anchors.unique("Overview"), "overview-2");
        assert_eq!(anchors.unique("Overview 1"), "overview-1-1");
        assert_eq!(anchors.unique("!!!"), "section");
    }
}
