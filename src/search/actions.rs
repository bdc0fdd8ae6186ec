//! What the customer wants to *do*: add, remove or change something. A
//! section about removing an integration shares almost every word with a
//! question about connecting it, and words (and even meaning) rank it high;
//! the verb is the difference. So the section chosen for an answer must not
//! do the opposite of what was asked, and an answer that does gets a low
//! confidence.
//!
//! Three groups of support actions, matched as whole words (or phrases) in
//! the question and in section headings. Two texts conflict when each names
//! an action and no group is shared.

use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Bring something into being or into use.
    Add,
    /// Take it away or out of use.
    Remove,
    /// Alter what exists.
    Change,
}

/// Two-word phrases, as (first word, second word).
const PHRASES: &[(&str, &str, Action)] = &[
    ("turn", "on", Action::Add),
    ("switch", "on", Action::Add),
    ("set", "up", Action::Add),
    ("sign", "up", Action::Add),
    ("turn", "off", Action::Remove),
    ("switch", "off", Action::Remove),
    ("opt", "out", Action::Remove),
    ("get", "rid", Action::Remove),
];

const WORDS: &[(&str, Action)] = &[
    ("add", Action::Add),
    ("create", Action::Add),
    ("connect", Action::Add),
    ("link", Action::Add),
    ("install", Action::Add),
    ("enable", Action::Add),
    ("activate", Action::Add),
    ("setup", Action::Add),
    ("subscribe", Action::Add),
    ("invite", Action::Add),
    ("import", Action::Add),
    ("track", Action::Add),
    ("start", Action::Add),
    ("remove", Action::Remove),
    ("delete", Action::Remove),
    ("disconnect", Action::Remove),
    ("unlink", Action::Remove),
    ("uninstall", Action::Remove),
    ("disable", Action::Remove),
    ("deactivate", Action::Remove),
    ("unsubscribe", Action::Remove),
    ("cancel", Action::Remove),
    ("close", Action::Remove),
    ("stop", Action::Remove),
    ("revoke", Action::Remove),
    ("edit", Action::Change),
    ("change", Action::Change),
    ("update", Action::Change),
    ("rename", Action::Change),
    ("modify", Action::Change),
    ("move", Action::Change),
];

/// The actions `text` names. Inflections count (`connecting`, `deleted`,
/// `removes`): a word matches when it starts with the verb and what follows
/// is a usual ending.
pub fn actions(text: &str) -> BTreeSet<Action> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut found = BTreeSet::new();
    // Runs on every search: no allocation per word pair.
    for pair in words.windows(2) {
        for (first, second, action) in PHRASES {
            if pair[0] == *first && pair[1] == *second {
                found.insert(*action);
            }
        }
    }
    for word in &words {
        for (verb, action) in WORDS {
            if inflection_of(word, verb) {
                found.insert(*action);
            }
        }
    }
    found
}

fn inflection_of(word: &str, verb: &str) -> bool {
    let stem = verb.trim_end_matches('e');
    let Some(rest) = word.strip_prefix(stem) else {
        return false;
    };
    if matches!(
        rest,
        "" | "e" | "s" | "es" | "ed" | "d" | "ing" | "ion" | "ions" | "ation"
    ) {
        return true;
    }
    // A doubled last consonant: cancelled, stopped, starting is covered above.
    let Some(last) = stem.chars().last() else {
        return false;
    };
    rest.strip_prefix(last)
        .is_some_and(|r| matches!(r, "ed" | "ing"))
}

/// True when both name an action and none in common: the heading does
/// something other than what the question asks.
pub fn conflict(question: &BTreeSet<Action>, heading: &str) -> bool {
    if question.is_empty() {
        return false;
    }
    let offered = actions(heading);
    !offered.is_empty() && question.is_disjoint(&offered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_and_phrases_map_to_their_action() {
        let q = actions("How do I connect Google Search Console?");
        assert_eq!(q, BTreeSet::from([Action::Add]));
        assert!(conflict(&q, "Remove the Search Console integration"));
        assert!(conflict(&q, "Disconnecting Search Console"));
        assert!(!conflict(&q, "Connect your Search Console account"));
        assert!(!conflict(&q, "Troubleshooting"), "no action: no conflict");
        let on = actions("turn on two-step verification");
        assert!(conflict(&on, "Turn off two-step verification"));
        assert!(!conflict(&on, "Turn on two-step verification"));
        let track = actions("how do I track custom events");
        assert!(conflict(&track, "Edit a custom event"));
        let delete = actions("how do I delete my account");
        assert!(!conflict(&delete, "Close your account"), "same group");
        assert!(actions("what does the reports page show").is_empty());
        assert!(
            actions("the startup guide").is_empty(),
            "startup is not start"
        );
        assert_eq!(
            actions("cancelled subscription"),
            BTreeSet::from([Action::Remove])
        );
        assert_eq!(
            actions("I created an invoice"),
            BTreeSet::from([Action::Add])
        );
    }
}
