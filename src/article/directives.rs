//! Site-generator block syntax rewritten into plain Markdown before parsing,
//! so that no marker reaches a page, a snippet, an answer or the index:
//!
//! - DocFX `> [!div class="…"]` (a styled box, usually "next step" links):
//!   the marker goes and its quote is unwrapped, the links render as links;
//! - DocFX `> [!VIDEO url]`: a link labelled "Video" (never an iframe);
//! - DocFX `:::image … alt-text="…":::`: its alt text; `:::no-loc text="…":::`:
//!   its text; `:::zone`, `:::row:::`, `:::column:::` and other directives:
//!   dropped, their content kept (every zone pivot shows);
//! - `> [!NOTE] text` on one line: split, so the parser's GitHub alerts
//!   (`Options::ENABLE_GFM`) see the callout;
//! - Docusaurus admonitions (`:::tip Title` … `:::`): GitHub alerts, the title
//!   in bold, so they render as callouts too.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// `[!div class="nextstepaction"]` alone after its container prefix.
static DIV_MARKER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\[!div\b[^\]]*\]\s*$").expect("static regex is valid"));
/// `[!VIDEO https://…]` anywhere.
static VIDEO_MARKER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\[!VIDEO\s+([^\]\s]*)\s*\]").expect("static regex is valid"));
/// `[!NOTE] text` on one line (the parser wants the text on the next).
static ALERT_WITH_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\[!(NOTE|TIP|IMPORTANT|WARNING|CAUTION)\][ \t]*(.*)$")
        .expect("static regex is valid")
});
/// A Docusaurus admonition opening: `:::tip`, `:::tip Title`, `:::tip[Title]`.
static ADMONITION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^:{3,}[ \t]*(note|tip|info|caution|danger|warning|important|success|secondary)\b[ \t]*(?:\[(.*)\]|(.*))$",
    )
    .expect("static regex is valid")
});
/// An inline DocFX directive, `:::name attributes:::`.
static INLINE_DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i):::\s*([a-z-]+)\b((?:[^:]|:[^:]|::[^:])*):::").expect("static regex is valid")
});
/// Other `[!…]` markers of DocFX that are never text.
static STRAY_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\[!(?:div|INCLUDE|NOTE|TIP|IMPORTANT|WARNING|CAUTION)\b(?:[^\[\]]|\[[^\]]*\]|\([^)]*\))*\]")
        .expect("static regex is valid")
});
/// The words a reader sees in a DocFX image block: its alt text.
static ALT_TEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"alt-text\s*=\s*"([^"]*)""#).expect("static regex is valid"));
/// The text of `:::no-loc text="…":::`.
static NO_LOC_TEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"text\s*=\s*"([^"]*)""#).expect("static regex is valid"));

/// Length of a line's container prefix: indentation, quote markers (`>`) and
/// list markers (`-`, `*`, `+`, `1.`, `1)`) before its content.
pub(super) fn container_prefix(line: &str) -> usize {
    let bytes = line.as_bytes();
    let mut i = 0;
    loop {
        match bytes.get(i) {
            Some(b' ' | b'\t' | b'>') => i += 1,
            Some(b'-' | b'*' | b'+') if matches!(bytes.get(i + 1), Some(b' ' | b'\t')) => i += 2,
            Some(b'0'..=b'9') => {
                let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
                let after = i + digits;
                if digits <= 9
                    && matches!(bytes.get(after), Some(b'.' | b')'))
                    && matches!(bytes.get(after + 1), Some(b' ' | b'\t'))
                {
                    i = after + 2;
                } else {
                    return i;
                }
            }
            _ => return i,
        }
    }
}

/// Tracks fenced code blocks (in quotes and list items too), whose lines are
/// code and never rewritten.
#[derive(Default)]
pub(super) struct Fences {
    /// The open fence's character and length.
    open: Option<(u8, usize)>,
}

impl Fences {
    /// Whether `line` is code: a fence, or inside a fenced block.
    pub(super) fn is_code(&mut self, line: &str) -> bool {
        let content = line[container_prefix(line)..].trim_end();
        let fence = content
            .bytes()
            .next()
            .filter(|b| matches!(b, b'`' | b'~'))
            .map(|b| (b, content.bytes().take_while(|&c| c == b).count()))
            .filter(|&(_, n)| n >= 3);
        match (self.open, fence) {
            (None, Some(fence)) => {
                self.open = Some(fence);
                true
            }
            (Some((open, length)), Some((c, n))) if c == open && n >= length => {
                // A closing fence has nothing after it.
                if content.len() == n {
                    self.open = None;
                }
                true
            }
            (Some(_), _) => true,
            (None, None) => false,
        }
    }
}

/// What the output holds before a line that opens a quote with `marker`.
enum QuoteBefore {
    /// Not that quote.
    None,
    /// Only blank lines of it, from this offset: the quote's start.
    BlankFrom(usize),
    /// Text of it (or of a quote inside it, or lines that continue its
    /// paragraph without a `>`): a new line would continue it.
    Text,
}

/// Ends the output so that a line opening a quote with `marker` (an alert)
/// starts a new quote: the parser sees an alert only on a quote's first line.
fn start_quote(out: &mut String, marker: &str) {
    match quote_before(out, marker.trim_end()) {
        QuoteBefore::Text => {
            out.push_str(&without_last_quote(marker.trim_end()));
            out.push('\n');
        }
        QuoteBefore::BlankFrom(start) => out.truncate(start),
        QuoteBefore::None => {}
    }
}

/// Lines looked back at for an open quote; past them, one is assumed.
const QUOTE_LOOKBACK: usize = 200;

/// Looks back from the end of `out` for the quote `marker` opens: its blank
/// first lines, its text, or none.
fn quote_before(out: &str, marker: &str) -> QuoteBefore {
    let mut end = out.len();
    let mut blank_from = None;
    let mut lines = 0;
    while let Some(text) = out[..end].strip_suffix('\n') {
        lines += 1;
        if lines > QUOTE_LOOKBACK {
            return QuoteBefore::Text;
        }
        let start = text.rfind('\n').map_or(0, |i| i + 1);
        let line = &text[start..];
        let (prefix, content) = line.split_at(container_prefix(line));
        let in_quote = prefix.trim_end().starts_with(marker);
        match (in_quote, content.trim().is_empty()) {
            (true, false) => return QuoteBefore::Text,
            (true, true) if lines == 1 || blank_from.is_some() => blank_from = Some(start),
            // A paragraph line may continue a quote above it without `>`.
            (false, false) if blank_from.is_none() => {}
            _ => break,
        }
        end = start;
    }
    if lines > 1 && blank_from.is_none() {
        // Only paragraph lines, then a blank line or the start: no quote.
        return QuoteBefore::None;
    }
    blank_from.map_or(QuoteBefore::None, QuoteBefore::BlankFrom)
}

/// An open Docusaurus admonition: its lines go into a quote after `prefix`.
struct Admonition {
    prefix: String,
}

/// Rewrites DocFX and Docusaurus markers into plain Markdown (see the module
/// documentation); code blocks are left as they are.
pub fn rewrite(body: &str) -> Cow<'_, str> {
    if !body.contains("[!") && !body.contains(":::") {
        return Cow::Borrowed(body);
    }
    let mut out = String::with_capacity(body.len() + 64);
    let mut fences = Fences::default();
    // A quote prefix (`>`, `   >`) whose following lines lose their last `>`.
    let mut unwrap: Option<String> = None;
    let mut admonitions: Vec<Admonition> = Vec::new();
    for raw in body.split_inclusive('\n') {
        let had_newline = raw.ends_with('\n');
        let raw = raw.trim_end_matches(['\n', '\r']);
        let code = fences.is_code(raw);
        if !code && !admonitions.is_empty() && is_closing_fence(raw) {
            // A blank line ends its quote, so what follows stays out of it.
            if let Some(admonition) = admonitions.pop() {
                out.push_str(admonition.prefix.trim_end());
                out.push('\n');
            }
            continue;
        }
        let mut line: Cow<'_, str> = Cow::Borrowed(raw);
        if let Some(quote) = &unwrap {
            match line.strip_prefix(quote.as_str()) {
                Some(rest) => {
                    let rest = rest.strip_prefix(' ').unwrap_or(rest);
                    line = Cow::Owned(format!("{}{rest}", without_last_quote(quote)));
                }
                None => unwrap = None,
            }
        }
        for admonition in &admonitions {
            line = Cow::Owned(into_quote(&admonition.prefix, &line));
        }
        let prefix_len = container_prefix(&line);
        let (prefix, content) = line.split_at(prefix_len);
        // The prefix up to its last `>`, when the line is in a quote.
        let marker = prefix.trim_end();
        let quoted = marker.ends_with('>');
        if code {
            push_line(&mut out, &line, had_newline);
            continue;
        }
        if DIV_MARKER.is_match(content) {
            if quoted {
                unwrap = Some(marker.to_string());
            }
            continue;
        }
        if let Some(video) = VIDEO_MARKER.captures(content).filter(|c| {
            c.get(0)
                .is_some_and(|m| m.start() == 0 && content[m.end()..].trim().is_empty())
        }) {
            if quoted {
                unwrap = Some(marker.to_string());
            }
            let link = video_link(video.get(1).map_or("", |m| m.as_str()));
            if !link.is_empty() {
                let outer = if quoted {
                    without_last_quote(marker)
                } else {
                    prefix.to_string()
                };
                push_line(&mut out, &format!("{outer}{link}"), had_newline);
            }
            continue;
        }
        if let Some(alert) = ALERT_WITH_TEXT.captures(content) {
            let kind = alert.get(1).map_or("NOTE", |m| m.as_str());
            let text = alert.get(2).map_or("", |m| m.as_str());
            if quoted {
                start_quote(&mut out, marker);
                out.push_str(&format!("{prefix}[!{kind}]\n"));
                if !text.is_empty() {
                    push_line(
                        &mut out,
                        &format!("{marker} {}", clean_inline(text)),
                        had_newline,
                    );
                }
            } else if !text.is_empty() {
                // Not in a quote: no callout, only its text.
                push_line(
                    &mut out,
                    &format!("{prefix}{}", clean_inline(text)),
                    had_newline,
                );
            }
            continue;
        }
        if content.starts_with(":::") {
            if let Some(admonition) = ADMONITION.captures(content)
                && !content.trim_end()[3..].contains(":::")
            {
                let kind = admonition_kind(admonition.get(1).map_or("", |m| m.as_str()));
                let title = admonition
                    .get(2)
                    .or(admonition.get(3))
                    .map_or("", |m| m.as_str().trim());
                start_quote(&mut out, &format!("{prefix}>"));
                out.push_str(&format!("{prefix}> [!{kind}]\n"));
                let continuation = continuation_prefix(prefix);
                if !title.is_empty() {
                    out.push_str(&format!(
                        "{continuation}> **{}**\n{continuation}>\n",
                        clean_inline(title)
                    ));
                }
                admonitions.push(Admonition {
                    prefix: continuation,
                });
                continue;
            }
            // `:::zone pivot="…"`, `:::zone-end`, a stray `:::`: nothing to show.
            let Some(directive) = INLINE_DIRECTIVE.find(content).filter(|m| m.start() == 0) else {
                continue;
            };
            let cleaned = clean_inline(content);
            if cleaned.trim().is_empty() {
                continue; // `:::row:::`, `:::column:::`
            }
            push_line(&mut out, &format!("{prefix}{cleaned}"), had_newline);
            if directive.end() == content.trim_end().len() && had_newline {
                // An image's alt text stands as a paragraph of its own.
                out.push('\n');
            }
            continue;
        }
        if content.contains("[!") || content.contains(":::") {
            push_line(
                &mut out,
                &format!("{prefix}{}", clean_inline(content)),
                had_newline,
            );
        } else {
            push_line(&mut out, &line, had_newline);
        }
    }
    Cow::Owned(out)
}

/// Markers inside a line: inline directives become their words, `[!VIDEO]`
/// a link, `[!div]`, alert and leftover `[!INCLUDE]` markers go. Code spans
/// are left as written.
fn clean_inline(text: &str) -> Cow<'_, str> {
    if !text.contains("[!") && !text.contains(":::") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    for (from, to) in code_spans(text) {
        out.push_str(&clean_markers(&text[cursor..from]));
        out.push_str(&text[from..to]);
        cursor = to;
    }
    out.push_str(&clean_markers(&text[cursor..]));
    Cow::Owned(out)
}

/// Byte ranges of a line's code spans: a run of backticks up to the next run
/// of the same length (an unmatched run is text).
fn code_spans(text: &str) -> Vec<(usize, usize)> {
    let runs: Vec<(usize, usize)> = {
        let bytes = text.as_bytes();
        let mut runs = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'`' {
                let start = i;
                while i < bytes.len() && bytes[i] == b'`' {
                    i += 1;
                }
                runs.push((start, i - start));
            } else {
                i += 1;
            }
        }
        runs
    };
    let mut spans = Vec::new();
    let mut next = 0;
    while next < runs.len() {
        let (start, length) = runs[next];
        match runs[next + 1..].iter().position(|&(_, l)| l == length) {
            Some(offset) => {
                let (close, _) = runs[next + 1 + offset];
                spans.push((start, close + length));
                next += offset + 2;
            }
            None => next += 1,
        }
    }
    spans
}

/// [`clean_inline`] on text outside code spans.
fn clean_markers(text: &str) -> String {
    let text = INLINE_DIRECTIVE.replace_all(text, |c: &regex::Captures<'_>| {
        let name = c.get(1).map_or("", |m| m.as_str()).to_lowercase();
        let attributes = c.get(2).map_or("", |m| m.as_str());
        let words = match name.as_str() {
            "image" => ALT_TEXT.captures(attributes),
            "no-loc" => NO_LOC_TEXT.captures(attributes),
            _ => None,
        };
        words
            .and_then(|w| w.get(1))
            .map_or(String::new(), |m| m.as_str().trim().to_string())
    });
    let text = VIDEO_MARKER.replace_all(&text, |c: &regex::Captures<'_>| {
        video_link(c.get(1).map_or("", |m| m.as_str()))
    });
    STRAY_MARKER.replace_all(&text, "").into_owned()
}

/// `[Video](<url>)` for a web address, else nothing.
fn video_link(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    let web = lower.starts_with("https://") || lower.starts_with("http://");
    if web && !url.contains(['<', '>']) {
        format!("[Video](<{url}>)")
    } else {
        String::new()
    }
}

/// The GitHub alert kind a Docusaurus admonition shows as.
fn admonition_kind(name: &str) -> &'static str {
    match name.to_ascii_lowercase().as_str() {
        "tip" | "success" => "TIP",
        "important" => "IMPORTANT",
        "warning" | "caution" => "WARNING",
        "danger" => "CAUTION",
        _ => "NOTE",
    }
}

/// A line of only colons: the end of an admonition or a directive.
fn is_closing_fence(line: &str) -> bool {
    let content = line[container_prefix(line)..].trim();
    content.len() >= 3 && content.bytes().all(|b| b == b':')
}

/// `prefix` without its last quote marker (and the space after it).
fn without_last_quote(prefix: &str) -> String {
    match prefix.rfind('>') {
        Some(at) => {
            let mut out = prefix[..at].to_string();
            out.push_str(prefix[at + 1..].trim_start_matches(' '));
            out
        }
        None => prefix.to_string(),
    }
}

/// A line of an admonition opened after `prefix` (its continuation
/// prefix), moved into its quote.
fn into_quote(prefix: &str, line: &str) -> String {
    // A blank quote line has no space after its `>`.
    let rest = line
        .strip_prefix(prefix)
        .or_else(|| line.strip_prefix(prefix.trim_end()))
        .unwrap_or_else(|| line.trim_start());
    if rest.trim().is_empty() {
        format!("{prefix}>")
    } else {
        format!("{prefix}> {rest}")
    }
}

/// The prefix for the second and later lines of a block that started after
/// `prefix`: list markers become spaces (the item continues), quotes stay.
pub(super) fn continuation_prefix(prefix: &str) -> String {
    prefix
        .chars()
        .map(|c| match c {
            '>' | '\t' => c,
            _ => ' ',
        })
        .collect()
}

fn push_line(out: &mut String, line: &str, newline: bool) {
    out.push_str(line);
    if newline {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_step_boxes_lose_their_marker_and_quote() {
        let body = "Intro.\n\n> [!div class=\"nextstepaction\"]\n> [Run Tests: Sync](https://aka.ms/sync)\n\nAfter.\n\n1. Step\n\n    >[!div class=\"nextstepaction\"]\n    > [Run](https://aka.ms/run)\n";
        assert_eq!(
            rewrite(body),
            "Intro.\n\n[Run Tests: Sync](https://aka.ms/sync)\n\nAfter.\n\n1. Step\n\n    [Run](https://aka.ms/run)\n"
        );
    }

    #[test]
    fn videos_become_links_and_never_frames() {
        assert_eq!(
            rewrite(
                "> [!VIDEO https://www.microsoft.com/videoplayer/embed/9ffd]\n\nText [!VIDEO https://x.org/v] here.\n[!VIDEO javascript:alert(1)]\n"
            ),
            "[Video](<https://www.microsoft.com/videoplayer/embed/9ffd>)\n\nText [Video](<https://x.org/v>) here.\n"
        );
    }

    #[test]
    fn docfx_directives_go_and_their_words_stay() {
        let body = ":::zone pivot=\"outlook\"\nIn Outlook.\n:::zone-end\n\n:::row:::\n:::column:::\nLeft.\n:::column-end:::\n:::row-end:::\n\n:::image type=\"content\" source=\"a.png\" alt-text=\"The quokka dialog.\":::\n\nClick the tab :::image type=\"icon\" source=\"t.png\" alt-text=\"tab icon\":::, then name it *:::no-loc text=\"AutoSave\":::*.\n";
        assert_eq!(
            rewrite(body),
            "In Outlook.\n\nLeft.\n\nThe quokka dialog.\n\n\nClick the tab tab icon, then name it *AutoSave*.\n"
        );
    }

    #[test]
    fn alerts_with_text_on_their_line_are_split() {
        assert_eq!(
            rewrite("> [!Note] Back up first.\n[!TIP] Not quoted.\n"),
            "> [!Note]\n> Back up first.\nNot quoted.\n"
        );
        assert_eq!(
            rewrite("> [!NOTE]\n> Kept.\n"),
            "> [!NOTE]\n> Kept.\n",
            "already right"
        );
        assert_eq!(
            rewrite("Intro.\n\n>\n> [!IMPORTANT]\n> Blank line first.\n"),
            "Intro.\n\n> [!IMPORTANT]\n> Blank line first.\n",
            "a quote's blank first lines go"
        );
        assert_eq!(
            rewrite("> Quoted.\n>\n> [!TIP]\n> Lazy\ncontinued.\n> [!NOTE]\n"),
            "> Quoted.\n>\n\n> [!TIP]\n> Lazy\ncontinued.\n\n> [!NOTE]\n",
            "after a blank line in a quote, or a paragraph continued without `>`"
        );
        assert_eq!(
            rewrite("> Quoted.\n> [!TIP]\n> Tip.\n\n1. Step\n   > Quoted.\n   > [!TIP]\n"),
            "> Quoted.\n\n> [!TIP]\n> Tip.\n\n1. Step\n   > Quoted.\n   \n   > [!TIP]\n",
            "an alert inside a quote starts its own"
        );
    }

    #[test]
    fn admonitions_become_alerts_with_their_title() {
        let body = ":::tip Using WordPress?\nUse the plugin.\n\n```js\n:::\n```\n:::\n\n- Item\n\n  :::note[Heads up]\n  Indented.\n  :::\n\n:::danger\nCareful.\n:::\n";
        assert_eq!(
            rewrite(body),
            "> [!TIP]\n> **Using WordPress?**\n>\n> Use the plugin.\n>\n> ```js\n> :::\n> ```\n\n\n- Item\n\n  > [!NOTE]\n  > **Heads up**\n  >\n  > Indented.\n\n\n> [!CAUTION]\n> Careful.\n\n"
        );
    }

    #[test]
    fn code_is_left_as_written() {
        let body = "```md\n> [!div class=\"x\"]\n:::zone pivot=\"a\"\n```\n";
        assert_eq!(rewrite(body), body);
    }

    #[test]
    fn container_prefixes() {
        assert_eq!(container_prefix("> > text"), 4);
        assert_eq!(container_prefix("   - [!INCLUDE"), 5);
        assert_eq!(container_prefix("10. x"), 4);
        assert_eq!(container_prefix("2025. x"), 6);
        assert_eq!(container_prefix("*emphasis*"), 0);
        assert_eq!(container_prefix("-not a list"), 0);
    }
}
