//! What a stored query may not contain: e-mail addresses, phone numbers,
//! card-like numbers and long digit runs are replaced by placeholders before
//! anything reaches the database.

use std::sync::LazyLock;

use regex::Regex;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}").expect("static regex is valid")
});
/// 13–19 digits, optionally grouped by spaces or dashes.
static CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:\d[ -]?){12,18}\d\b").expect("static regex is valid"));
/// An optional +country code, then 7+ digits with common separators; an
/// area code in brackets needs only two more groups: "(977) 625-2661".
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?\d{2,4}(?:[ .-]\d{2,4}){1,4}|\d{2,4}(?:[ .-]\d{2,4}){2,4})",
    )
    .expect("static regex is valid")
});
static DIGITS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d{6,}").expect("static regex is valid"));

/// Lower-cased, whitespace-collapsed, trailing punctuation removed, personal
/// data redacted: the form queries are stored and grouped in.
pub fn normalize_query(text: &str) -> String {
    let redacted = redact(text);
    let collapsed = redacted.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed
        .trim_end_matches(['?', '!', '.', ',', ';', ':'])
        .to_lowercase()
        .chars()
        .take(500)
        .collect()
}

pub fn redact(text: &str) -> String {
    let text = EMAIL.replace_all(text, "[email]");
    let text = CARD.replace_all(&text, "[card]");
    let text = PHONE.replace_all(&text, "[phone]");
    DIGITS.replace_all(&text, "[number]").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_is_redacted() {
        assert_eq!(
            normalize_query("  My email is Jane.Doe@example.com, call +1 415-555-0100!! "),
            "my email is [email], call [phone]"
        );
        assert_eq!(
            redact("card 4111 1111 1111 1111 expired"),
            "card [card] expired"
        );
        assert_eq!(redact("order 88234421 missing"), "order [number] missing");
        assert_eq!(redact("error 404 on invoice 12"), "error 404 on invoice 12");
        assert_eq!(
            redact("My number is (977) 625-2661, or +1 (415) 555-0100"),
            "My number is [phone], or [phone]"
        );
    }
}
