//! A raw RFC 5322 message → [`ParsedMail`]: sender, subject, threading
//! headers and one plain-text body.
//!
//! MIME, transfer encodings (quoted-printable, base64), charsets and RFC 2047
//! encoded words are all mail-parser's job. HTML bodies are ours (see
//! [`html_to_text`]): mail-parser's own conversion keeps `<blockquote>`
//! content as ordinary text and joins `<div>` lines, which would hide the
//! quoted thread from the cleaner and glue a sign-off to the name below it.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use regex::Regex;

/// The size limit the HTTP edge applies unless configured otherwise: a
/// customer's e-mail with its thread is rarely over 1 MB, but pasted
/// screenshots and logs make 2–5 MB ones ordinary.
pub const DEFAULT_MAX_BYTES: usize = 10 * 1024 * 1024;

/// What went wrong reading a message; each message names the problem so a
/// support integration can log it without the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("message too large: {size} bytes (limit {limit})")]
    TooLarge { size: usize, limit: usize },
    #[error("not an RFC 5322 message: no header block")]
    NoHeaderBlock,
    #[error("malformed MIME: multipart/{subtype} part has no boundary parameter")]
    MissingBoundary { subtype: String },
    #[error(
        "malformed MIME: multipart boundary \"{boundary}\" never appears in the body (truncated message?)"
    )]
    BoundaryNotFound { boundary: String },
    #[error("message has no text or HTML body")]
    NoBody,
}

/// The parts of an e-mail the support pipeline uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedMail {
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    /// The body as plain text: the text/plain part(s), or the HTML converted
    /// by [`html_to_text`] when there is none. Not cleaned yet.
    pub text: String,
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// The `Date:` header as Unix milliseconds (UTC).
    pub date_ms: Option<i64>,
    /// True when the body came from HTML because no text/plain part had any
    /// text: a hint for whoever debugs an odd cleaning.
    pub html_only: bool,
}

/// Parses `raw` (the bytes as received, headers first) into a [`ParsedMail`].
///
/// `max_bytes` is checked before any parsing so an oversized message costs
/// nothing; [`DEFAULT_MAX_BYTES`] is the usual value.
pub fn parse(raw: &[u8], max_bytes: usize) -> Result<ParsedMail, MailError> {
    if raw.len() > max_bytes {
        return Err(MailError::TooLarge {
            size: raw.len(),
            limit: max_bytes,
        });
    }
    if !starts_with_header_field(raw) {
        return Err(MailError::NoHeaderBlock);
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(MailError::NoHeaderBlock)?;
    if message.headers().is_empty() {
        return Err(MailError::NoHeaderBlock);
    }
    check_multiparts(&message, raw)?;

    let (text, html_only) = body_text(&message).ok_or(MailError::NoBody)?;
    let from = message.from().and_then(|address| address.first());
    Ok(ParsedMail {
        from_name: from.and_then(|addr| non_blank(addr.name())),
        from_address: from.and_then(|addr| non_blank(addr.address())),
        subject: non_blank(message.subject()),
        text,
        message_id: non_blank(message.message_id()),
        in_reply_to: header_ids(message.in_reply_to()).into_iter().next(),
        references: header_ids(message.references()),
        date_ms: message
            .date()
            .map(|date| date.to_timestamp().saturating_mul(1000)),
        html_only,
    })
}

/// A message starts with a header field (`Name: value`, RFC 5322 §2.2);
/// mail-parser accepts almost anything as headers, so plain prose pasted
/// into the endpoint would otherwise parse as a message with no body.
fn starts_with_header_field(raw: &[u8]) -> bool {
    let first_line = raw.split(|&byte| byte == b'\n').next().unwrap_or(raw);
    let name_len = first_line
        .iter()
        .take_while(|&&byte| (0x21..=0x7e).contains(&byte) && byte != b':')
        .count();
    name_len > 0
        && first_line[name_len..]
            .iter()
            .find(|&&byte| byte != b' ' && byte != b'\t')
            == Some(&b':')
}

/// mail-parser is lenient with broken multiparts (it turns them into one
/// text part or into nothing); these two checks name the defect instead.
fn check_multiparts(message: &mail_parser::Message<'_>, raw: &[u8]) -> Result<(), MailError> {
    for part in &message.parts {
        let Some(content_type) = part.content_type() else {
            continue;
        };
        if !content_type.ctype().eq_ignore_ascii_case("multipart") {
            continue;
        }
        let subtype = content_type
            .subtype()
            .unwrap_or("mixed")
            .to_ascii_lowercase();
        let Some(boundary) = content_type.attribute("boundary") else {
            return Err(MailError::MissingBoundary { subtype });
        };
        let delimiter = format!("--{boundary}");
        if !contains(raw, delimiter.as_bytes()) {
            return Err(MailError::BoundaryNotFound {
                boundary: boundary.to_string(),
            });
        }
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// The text/plain parts joined; failing that, the HTML parts converted.
/// `None` when neither has any text.
fn body_text(message: &mail_parser::Message<'_>) -> Option<(String, bool)> {
    let parts_of = |ids: &[u32]| -> Vec<&PartType<'_>> {
        ids.iter()
            .filter_map(|&id| message.parts.get(id as usize))
            .map(|part| &part.body)
            .collect()
    };
    let plain: Vec<&str> = parts_of(&message.text_body)
        .into_iter()
        .filter_map(|body| match body {
            PartType::Text(text) if !text.trim().is_empty() => Some(text.as_ref()),
            _ => None,
        })
        .collect();
    if !plain.is_empty() {
        return Some((plain.join("\n\n"), false));
    }
    let html: Vec<String> = parts_of(&message.html_body)
        .into_iter()
        .chain(parts_of(&message.text_body))
        .filter_map(|body| match body {
            PartType::Html(html) => Some(html_to_text(html)),
            _ => None,
        })
        .filter(|text| !text.trim().is_empty())
        .collect::<Vec<_>>();
    let first = html.into_iter().next()?;
    Some((first, true))
}

fn non_blank(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_string)
}

fn header_ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match value {
        mail_parser::HeaderValue::Text(id) => non_blank(Some(id)).into_iter().collect(),
        mail_parser::HeaderValue::TextList(ids) => {
            ids.iter().filter_map(|id| non_blank(Some(id))).collect()
        }
        _ => Vec::new(),
    }
}

/// Converts an HTML body to plain text with one line per block and a blank
/// line between paragraphs, the shape [`super::clean`] works on.
///
/// Shared by the MIME path and by bodies that arrive as JSON (`{"html": …}`).
/// `<style>`, `<script>`, `<head>` and `<title>` are dropped. A quoted thread
/// (`<blockquote>`, Gmail's `div.gmail_quote`, Outlook's `#appendonsend` and
/// `#divRplyFwdMsg`, Thunderbird's `.moz-cite-prefix`) and everything after
/// it is kept but marked: each of its lines starts with `> `, so the cleaner
/// removes it and reports a quote. A Gmail forward (also a `gmail_quote`) is
/// not marked: a forwarded message is often the customer's question.
///
/// Written by hand over ammonia's output (already a dependency: html5ever
/// parses and normalises the HTML, so a small scanner reads the result):
/// mail-parser's converter keeps quotes unmarked and breaks
/// lines only at `<br>` and `</p>`.
pub fn html_to_text(html: &str) -> String {
    let document = ammonia::Builder::empty()
        .tags(
            HashSet::from(BLOCK_TAGS)
                .union(&HashSet::from([
                    "br", "span", "a", "b", "i", "strong", "em", "font", "u", "code",
                ]))
                .copied()
                .collect(),
        )
        .clean_content_tags(HashSet::from(["script", "style", "title", "head"]))
        .generic_attributes(HashSet::from(["id", "class"]))
        .tag_attributes(HashMap::new())
        .strip_comments(true)
        .clean(html);
    let mut writer = TextWriter::default();
    write_html(&document.to_string(), &mut writer);
    writer.finish()
}

const BLOCK_TAGS: [&str; 24] = [
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "tbody",
    "thead",
    "blockquote",
    "pre",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "section",
    "article",
    "header",
    "footer",
    "dl",
    "dd",
];

/// Builds the text: collapses HTML whitespace, opens lines at blocks, and
/// prefixes `> ` once the quoted thread has begun.
#[derive(Default)]
struct TextWriter {
    text: String,
    quoting: bool,
    at_line_start: bool,
    pending_space: bool,
}

impl TextWriter {
    fn push_words(&mut self, raw: &str) {
        let starts_with_space = raw.starts_with(|c: char| c.is_whitespace());
        let mut words = raw
            .split(|c: char| c.is_whitespace() || c == '\u{a0}')
            .filter(|w| !w.is_empty())
            .peekable();
        if words.peek().is_none() {
            if !raw.is_empty() {
                self.pending_space = true;
            }
            return;
        }
        if starts_with_space {
            self.pending_space = true;
        }
        for word in words {
            if self.at_line_start || self.text.is_empty() {
                if self.quoting {
                    self.text.push_str("> ");
                }
                self.at_line_start = false;
            } else if self.pending_space {
                self.text.push(' ');
            }
            self.text.push_str(word);
            self.pending_space = true;
        }
        self.pending_space = raw.ends_with(|c: char| c.is_whitespace() || c == '\u{a0}');
    }

    fn line_break(&mut self) {
        if self.quoting && self.at_line_start {
            self.text.push('>');
        }
        self.text.push('\n');
        self.at_line_start = true;
        self.pending_space = false;
    }

    /// Ends the current line unless already at the start of one.
    fn block_edge(&mut self) {
        if !self.at_line_start && !self.text.is_empty() {
            self.line_break();
        }
    }

    fn paragraph_edge(&mut self) {
        self.block_edge();
        if !self.text.is_empty() && !self.text.ends_with("\n\n") && !self.text.ends_with(">\n") {
            self.line_break();
        }
    }

    fn finish(self) -> String {
        super::join_lines(self.text.lines().map(str::trim_end), |line| {
            line.is_empty() || line == ">"
        })
    }
}

/// One tag or text run of ammonia's serialized output. That output is
/// html5ever's serialization of a sanitized tree: only allowed tags, double-
/// quoted attributes, and text escaped with exactly `&amp; &lt; &gt;
/// &nbsp; &quot;` — regular enough for a small scanner.
static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"<(/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>|[^<]+"#).expect("static regex")
});
static ATTRIBUTE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"([a-zA-Z-]+)="([^"]*)""#).expect("static regex"));

fn write_html(sanitized: &str, writer: &mut TextWriter) {
    for token in TOKEN.captures_iter(sanitized) {
        let Some(tag) = token.get(2) else {
            writer.push_words(&unescape(&token[0]));
            continue;
        };
        let tag = tag.as_str().to_ascii_lowercase();
        let closing = !token[1].is_empty();
        let attributes = token.get(3).map_or("", |m| m.as_str());
        if !closing && !writer.quoting && starts_quote(&tag, attributes) {
            let rest = &sanitized[token.get(0).map_or(0, |m| m.end())..];
            if !is_forward_header(rest) {
                writer.block_edge();
                writer.quoting = true;
            }
        }
        match tag.as_str() {
            "br" => writer.line_break(),
            "p" | "blockquote" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "pre" => {
                writer.paragraph_edge()
            }
            "td" | "th" => writer.pending_space = true,
            tag if BLOCK_TAGS.contains(&tag) => writer.block_edge(),
            _ => {}
        }
    }
}

fn unescape(text: &str) -> String {
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn starts_quote(tag: &str, attributes: &str) -> bool {
    if tag == "blockquote" {
        return true;
    }
    ATTRIBUTE
        .captures_iter(attributes)
        .any(|attribute| match &attribute[1] {
            "id" => matches!(
                &attribute[2],
                "appendonsend" | "divRplyFwdMsg" | "mail-editor-reference-message-container"
            ),
            "class" => attribute[2]
                .split_whitespace()
                .any(|class| matches!(class, "gmail_quote" | "moz-cite-prefix" | "yahoo_quoted")),
            _ => false,
        })
}

/// Gmail wraps a forwarded message in the same `div.gmail_quote` as a
/// quoted reply; the text right after it tells them apart.
fn is_forward_header(following_html: &str) -> bool {
    let mut writer = TextWriter::default();
    let head: String = following_html.chars().take(400).collect();
    // Cut at the last tag end so a tag split by `take` isn't read as text.
    let head = head.rfind('>').map_or("", |end| &head[..=end]);
    write_html(head, &mut writer);
    writer.text.contains("Forwarded message")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = "From: Jane Doe <jane@example.com>\r\nSubject: =?UTF-8?Q?R=C3=A9initialiser?=\r\nDate: Mon, 3 Nov 2025 14:02:00 +0000\r\nMessage-ID: <a@example.com>\r\nIn-Reply-To: <b@example.com>\r\nReferences: <c@example.com> <b@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHow do I reset my password?\r\n";

    #[test]
    fn headers_and_body_are_read() {
        let mail = parse(PLAIN.as_bytes(), DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(mail.from_name.as_deref(), Some("Jane Doe"));
        assert_eq!(mail.from_address.as_deref(), Some("jane@example.com"));
        assert_eq!(mail.subject.as_deref(), Some("Réinitialiser"));
        assert_eq!(mail.message_id.as_deref(), Some("a@example.com"));
        assert_eq!(mail.in_reply_to.as_deref(), Some("b@example.com"));
        assert_eq!(mail.references, vec!["c@example.com", "b@example.com"]);
        assert_eq!(mail.date_ms, Some(1_762_178_520_000));
        assert_eq!(mail.text.trim(), "How do I reset my password?");
        assert!(!mail.html_only);
    }

    #[test]
    fn too_large_is_refused_before_parsing() {
        let error = parse(PLAIN.as_bytes(), 10).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("message too large: {} bytes (limit 10)", PLAIN.len())
        );
    }

    #[test]
    fn prose_without_headers_is_not_a_message() {
        for raw in ["Hello, I need help", "", "\r\n\r\nbody"] {
            assert_eq!(
                parse(raw.as_bytes(), DEFAULT_MAX_BYTES),
                Err(MailError::NoHeaderBlock)
            );
        }
    }

    #[test]
    fn a_message_without_a_text_body_says_so() {
        let raw = "From: a@example.com\r\nSubject: Logo\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n";
        let error = parse(raw.as_bytes(), DEFAULT_MAX_BYTES).unwrap_err();
        assert_eq!(error.to_string(), "message has no text or HTML body");
    }

    #[test]
    fn garbage_bytes_give_an_error_not_a_panic() {
        let inputs: [&[u8]; 4] = [
            b"\xff\xfe\x00\x01garbage",
            b"Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n",
            b"Subject: \xff\xff\r\n\r\n\xff",
            b"A:\r\n",
        ];
        for raw in inputs {
            let _ = parse(raw, DEFAULT_MAX_BYTES);
        }
    }

    #[test]
    fn html_conversion_drops_style_and_script_and_keeps_paragraphs() {
        let html = "<html><head><title>T</title><style>p { color: red }</style></head><body><script>alert(1)</script><p>First &amp; one.</p><p>Second</p><div>Third</div><div>Fourth<br>Fifth</div></body></html>";
        assert_eq!(
            html_to_text(html),
            "First & one.\n\nSecond\n\nThird\nFourth\nFifth"
        );
    }

    #[test]
    fn html_quotes_are_marked_for_the_cleaner() {
        let html = "<div>New question?</div><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Mon, Jane wrote:</div><blockquote>Old answer</blockquote></div><div>after</div>";
        assert_eq!(
            html_to_text(html),
            "New question?\n> On Mon, Jane wrote:\n>\n> Old answer\n>\n> after"
        );
        let outlook = "<p>Question</p><div id=\"appendonsend\"></div><hr><div id=\"divRplyFwdMsg\"><b>From:</b> Support</div><div>Old</div>";
        assert_eq!(html_to_text(outlook), "Question\n\n> From: Support\n> Old");
    }

    #[test]
    fn gmail_forwards_are_not_marked_as_quotes() {
        let html = "<div class=\"gmail_quote\"><div class=\"gmail_attr\">---------- Forwarded message ---------<br>From: Billing</div><div>Your payment failed.</div></div>";
        assert_eq!(
            html_to_text(html),
            "---------- Forwarded message ---------\nFrom: Billing\nYour payment failed."
        );
    }
}
