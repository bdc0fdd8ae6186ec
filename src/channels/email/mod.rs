//! E-mail: a raw message → [`ParsedMail`] ([`parse()`]) → the customer's
//! question without the quoted thread, signature and boilerplate
//! ([`clean()`]).

pub mod clean;
pub mod parse;

pub use clean::{Cleaned, Removed, clean};
pub use parse::{DEFAULT_MAX_BYTES, MailError, ParsedMail, html_to_text, parse};

/// `lines` joined with `\n`, each run of blank lines (as `is_blank`
/// decides) kept to its first, the whole trimmed: what both the HTML
/// conversion and the cleaner hand on.
fn join_lines<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    is_blank: impl Fn(&str) -> bool,
) -> String {
    let mut out = String::new();
    let mut blank_run = 0;
    for line in lines {
        if is_blank(line) {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim().to_string()
}

/// Every message in `tests/fixtures/mail/` through [`parse()`] and
/// [`clean()`], checked against `expected.toml`.
#[cfg(test)]
mod fixtures {
    use std::path::{Path, PathBuf};

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Manifest {
        message: Vec<Expected>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Expected {
        file: String,
        /// The exact cleaned question.
        question: Option<String>,
        #[serde(default)]
        contains: Vec<String>,
        #[serde(default)]
        excludes: Vec<String>,
        removed: Option<Vec<String>>,
        greeting_name: Option<String>,
        /// The exact query text (subject + question), when the case is
        /// about the subject.
        query: Option<String>,
        /// Malformed messages: the error's message contains this.
        error_contains: Option<String>,
        /// The template's `@ATTACHMENT@` is replaced by base64 lines until
        /// the message is at least this large.
        inflate_to_bytes: Option<usize>,
        html_only: Option<bool>,
        from_name: Option<String>,
        subject: Option<String>,
    }

    fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail")
    }

    fn load(expected: &Expected) -> Vec<u8> {
        let raw = std::fs::read(fixture_dir().join(&expected.file)).unwrap();
        let Some(target) = expected.inflate_to_bytes else {
            return raw;
        };
        let line =
            "Q29udGFjdCBJRCxOYW1lLEVtYWlsLFBob25lLENvbXBhbnksQ291bnRyeQ0KMSxBbm5hLGFubmFA\r\n";
        let attachment = line.repeat(target / line.len() + 1);
        let inflated = String::from_utf8(raw)
            .unwrap()
            .replace("@ATTACHMENT@", attachment.trim_end());
        assert!(inflated.len() >= target, "{} not inflated", expected.file);
        inflated.into_bytes()
    }

    /// Checks one fixture; `Err` lists what did not match.
    fn check(expected: &Expected) -> Result<(), String> {
        let raw = load(expected);
        let parsed = parse(&raw, DEFAULT_MAX_BYTES);
        if let Some(needle) = &expected.error_contains {
            return match parsed {
                Err(error) if error.to_string().contains(needle.as_str()) => Ok(()),
                Err(error) => Err(format!("error \"{error}\" lacks \"{needle}\"")),
                Ok(mail) => Err(format!("parsed, expected an error: {mail:?}")),
            };
        }
        let mail = parsed.map_err(|error| format!("parse failed: {error}"))?;
        let cleaned = clean(mail.subject.as_deref(), &mail.text);
        let mut problems = Vec::new();
        if let Some(question) = &expected.question
            && &cleaned.question_text != question
        {
            problems.push(format!(
                "question:\n  got      {:?}\n  expected {question:?}",
                cleaned.question_text
            ));
        }
        for needle in &expected.contains {
            if !cleaned.question_text.contains(needle.as_str()) {
                problems.push(format!("question lacks {needle:?}"));
            }
        }
        for needle in &expected.excludes {
            if cleaned.question_text.contains(needle.as_str()) {
                problems.push(format!("question contains {needle:?}"));
            }
        }
        if let Some(removed) = &expected.removed {
            let got: Vec<String> = cleaned
                .removed
                .iter()
                .map(|kind| {
                    serde_json::to_value(kind)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            if &got != removed {
                problems.push(format!("removed: got {got:?}, expected {removed:?}"));
            }
        }
        if cleaned.greeting_name != expected.greeting_name {
            problems.push(format!(
                "greeting_name: got {:?}, expected {:?}",
                cleaned.greeting_name, expected.greeting_name
            ));
        }
        if let Some(query) = &expected.query
            && &cleaned.query_text != query
        {
            problems.push(format!(
                "query: got {:?}, expected {query:?}",
                cleaned.query_text
            ));
        }
        if let Some(html_only) = expected.html_only
            && mail.html_only != html_only
        {
            problems.push(format!("html_only: got {}", mail.html_only));
        }
        if expected.from_name.is_some() && mail.from_name != expected.from_name {
            problems.push(format!("from_name: got {:?}", mail.from_name));
        }
        if expected.subject.is_some() && mail.subject != expected.subject {
            problems.push(format!("subject: got {:?}", mail.subject));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    #[test]
    fn every_fixture_cleans_as_the_manifest_says() {
        let manifest: Manifest =
            toml::from_str(&std::fs::read_to_string(fixture_dir().join("expected.toml")).unwrap())
                .unwrap();
        let mut on_disk: Vec<String> = std::fs::read_dir(fixture_dir())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".eml"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = manifest.message.iter().map(|m| m.file.clone()).collect();
        listed.sort();
        assert_eq!(on_disk, listed, "every .eml has exactly one manifest entry");
        assert!(listed.len() >= 16);

        let failures: Vec<String> = manifest
            .message
            .iter()
            .filter_map(|expected| {
                check(expected)
                    .err()
                    .map(|why| format!("{}:\n{why}", expected.file))
            })
            .collect();
        let passed = manifest.message.len() - failures.len();
        let accuracy = passed as f64 / manifest.message.len() as f64;
        eprintln!(
            "e-mail cleaning accuracy: {passed}/{} = {:.1} %",
            manifest.message.len(),
            accuracy * 100.0
        );
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    /// Prints what each fixture parses and cleans to; for writing the
    /// manifest (`cargo test --lib dump_fixtures -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn dump_fixtures() {
        let mut names: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        names.sort();
        for path in names {
            let raw = std::fs::read(&path).unwrap();
            eprintln!("=== {}", path.display());
            match parse(&raw, DEFAULT_MAX_BYTES) {
                Err(error) => eprintln!("ERROR {error}"),
                Ok(mail) => {
                    let cleaned = clean(mail.subject.as_deref(), &mail.text);
                    eprintln!("{mail:#?}\n{cleaned:#?}");
                }
            }
        }
    }
}
