//! The reply an agent can send to a message (or rapport can send by
//! itself, when the team allows it): a greeting, the answer's own text and
//! links to the sections. Nothing in it is invented: the only words that are
//! not the customer's name or article text are the fixed greeting, the one
//! line that introduces the answer and the sign-off.

use serde::Serialize;

/// One section the reply quotes or links to.
pub struct ReplySection<'a> {
    pub title: &'a str,
    pub heading: &'a str,
    pub url: &'a str,
    /// The section's answer text (only the first section is quoted).
    pub text: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SuggestedReply {
    /// Plain text, for e-mail bodies and ticket comments.
    pub text: String,
    /// The same reply in Markdown (links as links).
    pub markdown: String,
}

/// The reply to a message: `name` greets the customer when known, the first
/// section is quoted, the others are linked. `sign_off` closes it (the
/// team's name). `None` when there is nothing to answer with.
pub fn suggested_reply(
    name: Option<&str>,
    sections: &[ReplySection<'_>],
    sign_off: &str,
) -> Option<SuggestedReply> {
    let (first, more) = sections.split_first()?;
    let greeting = match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => format!("Hi {},", first_name(name)),
        None => "Hello,".to_string(),
    };
    let intro = "Thanks for getting in touch. This should help:";
    let heading = |s: &ReplySection<'_>| {
        if s.heading.is_empty() || s.heading == s.title {
            s.title.to_string()
        } else {
            format!("{}: {}", s.title, s.heading)
        }
    };
    let mut text = format!(
        "{greeting}\n\n{intro}\n\n{}\n\n{}\n\nFull article: {}\n",
        heading(first),
        first.text.trim(),
        first.url
    );
    let mut markdown = format!(
        "{greeting}\n\n{intro}\n\n**[{}]({})**\n\n{}\n",
        escape_markdown(&heading(first)),
        first.url,
        first.text.trim()
    );
    if !more.is_empty() {
        text.push_str("\nThese may help too:\n");
        markdown.push_str("\nThese may help too:\n\n");
        for section in more {
            text.push_str(&format!("- {}: {}\n", heading(section), section.url));
            markdown.push_str(&format!(
                "- [{}]({})\n",
                escape_markdown(&heading(section)),
                section.url
            ));
        }
    }
    let closing = format!("\nKind regards,\n{sign_off}\n");
    text.push_str(&closing);
    markdown.push_str(&closing);
    Some(SuggestedReply { text, markdown })
}

/// "Priya Raman" → "Priya"; "Dr. Jones" stays whole (a title is not a
/// first name).
fn first_name(name: &str) -> &str {
    let mut words = name.split_whitespace();
    match (words.next(), words.next()) {
        (Some(first), Some(_)) if !first.ends_with('.') => first,
        _ => name,
    }
}

/// Link text may not close the brackets it sits in.
fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '[' | ']' | '*' | '_' | '`' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section<'a>(title: &'a str, heading: &'a str, text: &'a str) -> ReplySection<'a> {
        ReplySection {
            title,
            heading,
            url: "https://help.example.com/articles/vault/export#steps",
            text,
        }
    }

    #[test]
    fn greets_by_first_name_quotes_the_answer_and_links_the_rest() {
        let reply = suggested_reply(
            Some("Priya Raman"),
            &[
                section(
                    "Export vault data",
                    "Steps",
                    "1. Open Settings.\n2. Choose Export.",
                ),
                section("Vault limits", "Size", "unused"),
            ],
            "The Help Center team",
        )
        .unwrap();
        assert!(reply.text.starts_with("Hi Priya,\n"), "{}", reply.text);
        assert!(reply.text.contains("1. Open Settings.\n2. Choose Export."));
        assert!(
            reply
                .text
                .contains("- Vault limits: Size: https://help.example.com")
        );
        assert!(
            !reply.text.contains("unused"),
            "only the first section is quoted"
        );
        assert!(reply.markdown.contains(
            "**[Export vault data: Steps](https://help.example.com/articles/vault/export#steps)**"
        ));
        assert!(
            reply
                .text
                .ends_with("Kind regards,\nThe Help Center team\n")
        );
    }

    #[test]
    fn without_a_name_or_an_answer() {
        let reply = suggested_reply(None, &[section("T", "T", "Body")], "Support").unwrap();
        assert!(reply.text.starts_with("Hello,\n"));
        assert!(reply.text.contains("\nT\n\nBody\n"), "{}", reply.text);
        assert_eq!(suggested_reply(Some("Ann"), &[], "Support"), None);
    }

    #[test]
    fn link_text_cannot_break_out_of_its_brackets() {
        let reply = suggested_reply(None, &[section("a](evil)", "", "x")], "S").unwrap();
        assert!(
            reply.markdown.contains("[a\\](evil)]("),
            "{}",
            reply.markdown
        );
    }
}
