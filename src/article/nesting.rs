//! Bounds on nesting, so that one pathological file can't pin the indexer.
//!
//! Deep nesting is cheap to write (`>>>>…`, `- - - …`, `<div><div>…`) and
//! expensive to process: pulldown-cmark re-checks every open container on
//! every line, and html5ever (inside ammonia) walks its stack of open
//! elements for most start tags, so the work grows with lines × depth and
//! tags × depth. Real articles nest a few levels. So:
//! - beyond [`MAX_NESTING`] levels, Markdown containers are flattened in the
//!   HTML (their text is kept);
//! - a file nested beyond [`NESTING_LIMIT`] levels, or whose levels beyond
//!   [`MAX_NESTING`] add up to more than its budget (summed over lines:
//!   [`LINE_BUDGET`]; over HTML start tags: [`HTML_BUDGET`]), is refused. The
//!   budgets are deterministic: the same file is always accepted or always
//!   refused, whatever the machine. They allow a few milliseconds of work
//!   (tens in a debug build).

/// Deeper Markdown containers (quotes, lists, emphasis) are shown flattened.
pub const MAX_NESTING: usize = 32;
/// A file nested deeper than this is refused.
pub const NESTING_LIMIT: usize = 256;
/// Levels beyond [`MAX_NESTING`], summed over the lines of the Markdown,
/// that a file may have (the parser spends ~1 ns on each in a release build).
pub const LINE_BUDGET: usize = 2_000_000;
/// Levels beyond [`MAX_NESTING`], summed over the start tags of the HTML,
/// that a file may have (the sanitizer spends ~10 ns on each).
pub const HTML_BUDGET: usize = 200_000;

/// Why a file was refused; the message says where and what to do.
#[derive(Debug, thiserror::Error)]
#[error("too deeply nested: {0}")]
pub struct TooDeeplyNested(pub(crate) String);

/// Checks the Markdown's block nesting before it is parsed: the parser's own
/// work is lines × open containers, so this must run first.
///
/// A line can keep every container that is open (lazy continuation) and open
/// one per container marker (`>`, `-`, `*`, `+`, `1.`) at its start, so the
/// depth bound is `max(open, markers + continued)`. Indentation only
/// continues containers already open. A line after a blank one that starts
/// without indentation or markers closes them all.
pub fn check_blocks(markdown: &str) -> Result<(), TooDeeplyNested> {
    let mut open = 0usize;
    let mut after_blank = true;
    let mut excess = 0usize;
    for (index, line) in markdown.lines().enumerate() {
        let (markers, indent) = container_prefix(line);
        let blank = line.trim().is_empty();
        let depth = if blank {
            open
        } else if after_blank && markers == 0 && indent == 0 {
            0
        } else {
            open.max(markers + (indent / 2).min(open))
        };
        if depth > NESTING_LIMIT {
            return Err(TooDeeplyNested(format!(
                "line {} opens {depth} levels of quotes or lists; files nested deeper than {NESTING_LIMIT} levels are refused",
                index + 1
            )));
        }
        excess += depth.saturating_sub(MAX_NESTING);
        if excess > LINE_BUDGET {
            return Err(TooDeeplyNested(format!(
                "by line {}, lines nested more than {MAX_NESTING} levels deep exceed the parse budget ({LINE_BUDGET} levels beyond {MAX_NESTING} in all)",
                index + 1
            )));
        }
        open = depth;
        after_blank = blank;
    }
    Ok(())
}

/// Container markers at the start of a line, and the columns of indentation
/// among them.
fn container_prefix(line: &str) -> (usize, usize) {
    let bytes = line.as_bytes();
    let (mut markers, mut indent, mut i) = (0usize, 0usize, 0usize);
    loop {
        match bytes.get(i) {
            Some(b' ') => indent += 1,
            Some(b'\t') => indent += 4,
            Some(b'>') => markers += 1,
            Some(b'-' | b'*' | b'+') if matches!(bytes.get(i + 1), None | Some(b' ' | b'\t')) => {
                markers += 1
            }
            Some(b'0'..=b'9') => {
                let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
                let after = i + digits;
                if digits <= 9
                    && matches!(bytes.get(after), Some(b'.' | b')'))
                    && matches!(bytes.get(after + 1), None | Some(b' ' | b'\t'))
                {
                    markers += 1;
                    i = after;
                } else {
                    break;
                }
            }
            _ => break,
        }
        i += 1;
    }
    (markers, indent)
}

/// Checks the HTML that goes to the sanitizer, raw HTML included: an
/// estimate of the depth of html5ever's stack of open elements, modelled on
/// its rules so that it does not under-estimate (quoted attributes, comments,
/// raw-text elements, end tags that html5ever ignores, self-closing tags,
/// which only foreign content honours).
pub fn check_html(html: &str) -> Result<(), TooDeeplyNested> {
    let mut stack: Vec<Open> = Vec::new();
    let mut excess = 0usize;
    let mut scanner = Scanner {
        bytes: html.as_bytes(),
        at: 0,
    };
    while let Some(token) =
        scanner.next_token(stack.last().is_some_and(|o| o.foreign && !o.integration))
    {
        match token {
            Token::Start {
                name,
                self_closing,
                breaks_out,
            } => {
                let in_foreign = stack.last().is_some_and(|o| o.foreign && !o.integration);
                if in_foreign && (breaks_out || is_breakout(&name)) {
                    while stack.last().is_some_and(|o| o.foreign && !o.integration) {
                        stack.pop();
                    }
                }
                let foreign_context = stack.last().is_some_and(|o| o.foreign && !o.integration);
                let foreign = foreign_context || name == "svg" || name == "math";
                if foreign {
                    if !self_closing {
                        stack.push(Open {
                            integration: matches!(
                                name.as_str(),
                                "foreignobject"
                                    | "desc"
                                    | "title"
                                    | "mi"
                                    | "mo"
                                    | "mn"
                                    | "ms"
                                    | "mtext"
                            ),
                            name,
                            foreign: true,
                        });
                    }
                } else {
                    if matches!(name.as_str(), "html" | "head" | "body" | "frameset")
                        || is_void(&name)
                    {
                        continue;
                    }
                    if matches!(name.as_str(), "li" | "dd" | "dt") {
                        close_list_item(&mut stack, &name);
                    }
                    if closes_paragraph(&name)
                        && let Some(at) = in_scope(&stack, "p", BUTTON_SCOPE)
                    {
                        stack.truncate(at);
                    }
                    if let Some(text_end) = raw_text_end(&name) {
                        // Pushed and popped: its content is text.
                        scanner.skip_raw_text(&name, text_end);
                        continue;
                    }
                    stack.push(Open {
                        name,
                        foreign: false,
                        integration: false,
                    });
                }
                let depth = stack.len();
                if depth > NESTING_LIMIT {
                    return Err(TooDeeplyNested(format!(
                        "its HTML nests {depth} elements deep; files nested deeper than {NESTING_LIMIT} levels are refused"
                    )));
                }
                excess += depth.saturating_sub(MAX_NESTING);
                if excess > HTML_BUDGET {
                    return Err(TooDeeplyNested(format!(
                        "HTML elements nested more than {MAX_NESTING} levels deep exceed the parse budget ({HTML_BUDGET} levels beyond {MAX_NESTING} in all)"
                    )));
                }
            }
            Token::End { name } => end_tag(&mut stack, &name),
        }
    }
    Ok(())
}

struct Open {
    name: String,
    /// SVG or MathML, where self-closing tags are honoured.
    foreign: bool,
    /// Foreign, but its children are parsed as HTML again.
    integration: bool,
}

/// `<li>` (`<dd>`, `<dt>`) closes an open item unless a special element other
/// than address, div or p lies between (html5ever's rule).
fn close_list_item(stack: &mut Vec<Open>, name: &str) {
    let closes: &[&str] = if name == "li" { &["li"] } else { &["dd", "dt"] };
    for index in (0..stack.len()).rev() {
        let open = &stack[index];
        if !open.foreign && closes.contains(&open.name.as_str()) {
            stack.truncate(index);
            return;
        }
        if open.foreign
            || (is_special(&open.name) && !matches!(open.name.as_str(), "address" | "div" | "p"))
        {
            return;
        }
    }
}

/// Pops what html5ever pops for an end tag, never more.
fn end_tag(stack: &mut Vec<Open>, name: &str) {
    if matches!(name, "br" | "html" | "body" | "head") || is_void(name) {
        return;
    }
    // Foreign elements close by name, up to the first HTML element.
    let mut index = stack.len();
    while index > 0 && stack[index - 1].foreign {
        index -= 1;
        if stack[index].name == name {
            stack.truncate(index);
            return;
        }
    }
    let html_top = index;
    if name == "form" {
        // Removes the form element only, not what is open inside it.
        if let Some(at) = in_scope(&stack[..html_top], name, DEFAULT_SCOPE) {
            stack.remove(at);
        }
        return;
    }
    if is_special(name) {
        let boundaries = if is_table_part(name) {
            TABLE_SCOPE
        } else {
            DEFAULT_SCOPE
        };
        if let Some(at) = in_scope(&stack[..html_top], name, boundaries) {
            stack.truncate(at);
        }
        return;
    }
    // Any other end tag: the nearest element of that name, unless a special
    // element comes first (then html5ever ignores the tag).
    for at in (0..html_top).rev() {
        if stack[at].name == name {
            stack.truncate(at);
            return;
        }
        if is_special(&stack[at].name) {
            return;
        }
    }
}

const DEFAULT_SCOPE: &[&str] = &[
    "applet", "caption", "html", "table", "td", "th", "marquee", "object", "template",
];
const BUTTON_SCOPE: &[&str] = &[
    "applet", "caption", "html", "table", "td", "th", "marquee", "object", "template", "button",
];
const TABLE_SCOPE: &[&str] = &["html", "table", "template"];

/// Start tags that close an open paragraph (in button scope).
fn closes_paragraph(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "center"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "header"
            | "hgroup"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "p"
            | "search"
            | "section"
            | "summary"
            | "ul"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "pre"
            | "listing"
            | "form"
            | "plaintext"
            | "table"
            | "hr"
            | "xmp"
            | "li"
            | "dd"
            | "dt"
    )
}

/// Where `name` is open, searching from the top down to a scope boundary
/// (foreign elements are boundaries too).
fn in_scope(stack: &[Open], name: &str, boundaries: &[&str]) -> Option<usize> {
    for at in (0..stack.len()).rev() {
        let open = &stack[at];
        if open.name == name && !open.foreign {
            return Some(at);
        }
        if open.foreign || boundaries.contains(&open.name.as_str()) {
            return None;
        }
    }
    None
}

fn is_table_part(name: &str) -> bool {
    matches!(
        name,
        "table" | "tbody" | "thead" | "tfoot" | "tr" | "td" | "th" | "caption" | "colgroup"
    )
}

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "basefont"
            | "bgsound"
            | "br"
            | "col"
            | "embed"
            | "frame"
            | "hr"
            | "image"
            | "img"
            | "input"
            | "keygen"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
    )
}

/// html5ever's "special" elements.
fn is_special(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "applet"
            | "area"
            | "article"
            | "aside"
            | "base"
            | "basefont"
            | "bgsound"
            | "blockquote"
            | "body"
            | "br"
            | "button"
            | "caption"
            | "center"
            | "col"
            | "colgroup"
            | "dd"
            | "details"
            | "dir"
            | "div"
            | "dl"
            | "dt"
            | "embed"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "frame"
            | "frameset"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "head"
            | "header"
            | "hgroup"
            | "hr"
            | "html"
            | "iframe"
            | "img"
            | "input"
            | "isindex"
            | "li"
            | "link"
            | "listing"
            | "main"
            | "marquee"
            | "menu"
            | "meta"
            | "nav"
            | "noembed"
            | "noframes"
            | "noscript"
            | "object"
            | "ol"
            | "p"
            | "param"
            | "plaintext"
            | "pre"
            | "script"
            | "section"
            | "select"
            | "source"
            | "style"
            | "summary"
            | "table"
            | "tbody"
            | "td"
            | "template"
            | "textarea"
            | "tfoot"
            | "th"
            | "thead"
            | "title"
            | "tr"
            | "track"
            | "ul"
            | "wbr"
            | "xmp"
    )
}

/// HTML start tags that end foreign content (`font` only with certain
/// attributes, reported by the scanner).
fn is_breakout(name: &str) -> bool {
    matches!(
        name,
        "b" | "big"
            | "blockquote"
            | "body"
            | "br"
            | "center"
            | "code"
            | "dd"
            | "div"
            | "dl"
            | "dt"
            | "em"
            | "embed"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "head"
            | "hr"
            | "i"
            | "img"
            | "li"
            | "listing"
            | "menu"
            | "meta"
            | "nobr"
            | "ol"
            | "p"
            | "pre"
            | "ruby"
            | "s"
            | "small"
            | "span"
            | "strong"
            | "strike"
            | "sub"
            | "sup"
            | "table"
            | "tt"
            | "u"
            | "ul"
            | "var"
    )
}

#[derive(Clone, Copy)]
enum TextEnd {
    /// `</name>` ends it (style, textarea, …).
    EndTag,
    /// Like `EndTag`, but `<!--<script>` hides a `</script>` (script data
    /// escape states).
    Script,
    /// Nothing ends it.
    Never,
}

/// Elements whose content html5ever reads as text, in HTML content
/// (ammonia parses with scripting enabled, so `noscript` too).
fn raw_text_end(name: &str) -> Option<TextEnd> {
    match name {
        "script" => Some(TextEnd::Script),
        "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" | "textarea" | "title" => {
            Some(TextEnd::EndTag)
        }
        "plaintext" => Some(TextEnd::Never),
        _ => None,
    }
}

enum Token {
    Start {
        name: String,
        self_closing: bool,
        /// A `font` with color, face or size.
        breaks_out: bool,
    },
    End {
        name: String,
    },
}

/// Just enough of html5ever's tokenizer to find tags where it finds them.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'\x0C')
}

impl Scanner<'_> {
    fn next_token(&mut self, foreign: bool) -> Option<Token> {
        loop {
            let offset = self.bytes.get(self.at..)?.iter().position(|&b| b == b'<')?;
            self.at += offset + 1;
            let rest = &self.bytes[self.at..];
            match rest.first() {
                Some(b'!') => {
                    if rest.starts_with(b"!--") {
                        // `<!-->` and `<!--->` end at once; else the first
                        // `-->` or `--!>`.
                        let from = self.at + 1;
                        let end = [&b"-->"[..], &b"--!>"[..]]
                            .iter()
                            .filter_map(|pattern| find(self.bytes, from, pattern))
                            .min();
                        self.at = end.unwrap_or(self.bytes.len());
                    } else if foreign && rest.starts_with(b"![CDATA[") {
                        self.at = find(self.bytes, self.at, b"]]>").unwrap_or(self.bytes.len());
                    } else {
                        self.skip_past(b'>');
                    }
                }
                Some(b'?') => self.skip_past(b'>'),
                Some(b'/') => match rest.get(1) {
                    Some(b) if b.is_ascii_alphabetic() => {
                        self.at += 1;
                        let name = self.tag_name();
                        let (complete, _, _) = self.attributes();
                        if complete {
                            return Some(Token::End { name });
                        }
                    }
                    Some(b'>') => self.at += 2,
                    Some(_) => self.skip_past(b'>'),
                    None => return None,
                },
                Some(b) if b.is_ascii_alphabetic() => {
                    let name = self.tag_name();
                    let (complete, self_closing, font_attribute) = self.attributes();
                    if complete {
                        let breaks_out = name == "font" && font_attribute;
                        return Some(Token::Start {
                            name,
                            self_closing,
                            breaks_out,
                        });
                    }
                }
                _ => {}
            }
        }
    }

    fn skip_past(&mut self, byte: u8) {
        self.at = match self.bytes[self.at..].iter().position(|&b| b == byte) {
            Some(offset) => self.at + offset + 1,
            None => self.bytes.len(),
        };
    }

    fn tag_name(&mut self) -> String {
        let start = self.at;
        while let Some(&b) = self.bytes.get(self.at) {
            if is_space(b) || b == b'/' || b == b'>' {
                break;
            }
            self.at += 1;
        }
        String::from_utf8_lossy(&self.bytes[start..self.at]).to_ascii_lowercase()
    }

    /// Skips the attributes to the end of the tag: (the tag is complete,
    /// it is self-closing, it has a color/face/size attribute).
    fn attributes(&mut self) -> (bool, bool, bool) {
        let mut font_attribute = false;
        loop {
            while self.bytes.get(self.at).is_some_and(|&b| is_space(b)) {
                self.at += 1;
            }
            match self.bytes.get(self.at) {
                None => return (false, false, font_attribute),
                Some(b'>') => {
                    self.at += 1;
                    return (true, false, font_attribute);
                }
                Some(b'/') => {
                    self.at += 1;
                    if self.bytes.get(self.at) == Some(&b'>') {
                        self.at += 1;
                        return (true, true, font_attribute);
                    }
                    continue;
                }
                Some(_) => {}
            }
            // An attribute name: its first character may be `=`.
            let start = self.at;
            self.at += 1;
            while let Some(&b) = self.bytes.get(self.at) {
                if is_space(b) || matches!(b, b'/' | b'>' | b'=') {
                    break;
                }
                self.at += 1;
            }
            let attribute = self.bytes[start..self.at].to_ascii_lowercase();
            font_attribute |= matches!(&attribute[..], b"color" | b"face" | b"size");
            while self.bytes.get(self.at).is_some_and(|&b| is_space(b)) {
                self.at += 1;
            }
            if self.bytes.get(self.at) != Some(&b'=') {
                continue;
            }
            self.at += 1;
            while self.bytes.get(self.at).is_some_and(|&b| is_space(b)) {
                self.at += 1;
            }
            match self.bytes.get(self.at) {
                Some(&quote @ (b'"' | b'\'')) => {
                    self.at += 1;
                    match self.bytes[self.at..].iter().position(|&b| b == quote) {
                        Some(offset) => self.at += offset + 1,
                        None => return (false, false, font_attribute),
                    }
                }
                Some(b'>') | None => continue,
                Some(_) => {
                    while let Some(&b) = self.bytes.get(self.at) {
                        if is_space(b) || b == b'>' {
                            break;
                        }
                        self.at += 1;
                    }
                }
            }
        }
    }

    /// Moves past the text content of a raw-text element and its end tag.
    fn skip_raw_text(&mut self, name: &str, end: TextEnd) {
        let mut escaped = false;
        let mut double_escaped = false;
        loop {
            let Some(offset) = self.bytes[self.at..]
                .iter()
                .position(|&b| b == b'<' || b == b'-')
            else {
                self.at = self.bytes.len();
                return;
            };
            self.at += offset;
            let rest = &self.bytes[self.at..];
            match end {
                TextEnd::Never => {
                    self.at = self.bytes.len();
                    return;
                }
                TextEnd::Script if rest.starts_with(b"<!--") && !escaped => {
                    escaped = true;
                    self.at += 4;
                    continue;
                }
                TextEnd::Script if rest.starts_with(b"-->") && escaped => {
                    escaped = false;
                    double_escaped = false;
                    self.at += 3;
                    continue;
                }
                TextEnd::Script if escaped && !double_escaped && is_tag_named(rest, b"<", name) => {
                    double_escaped = true;
                    self.at += 1;
                    continue;
                }
                _ => {}
            }
            if is_tag_named(rest, b"</", name) {
                if double_escaped {
                    double_escaped = false;
                    self.at += 2;
                    continue;
                }
                self.at += 2;
                let _ = self.tag_name();
                let _ = self.attributes();
                return;
            }
            self.at += 1;
        }
    }
}

/// Whether `rest` starts with `prefix`, then `name` (any case), then a
/// space, `/` or `>`.
fn is_tag_named(rest: &[u8], prefix: &[u8], name: &str) -> bool {
    let Some(after) = rest.strip_prefix(prefix) else {
        return false;
    };
    after.len() > name.len()
        && after[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        && (is_space(after[name.len()]) || matches!(after[name.len()], b'/' | b'>'))
}

/// Index just past the first `pattern` at or after `from`.
fn find(bytes: &[u8], from: usize, pattern: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(pattern.len())
        .position(|window| window == pattern)
        .map(|offset| from + offset + pattern.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_blocks(text: &str) -> bool {
        check_blocks(text).is_err()
    }

    fn refused_html(html: &str) -> bool {
        check_html(html).is_err()
    }

    #[test]
    fn ordinary_markdown_passes_the_block_check() {
        let text = "# Title\n\n> quote\n> - item\n>   - nested\n>\n> more\n\n1. one\n   - sub\n\n    code\n\n---\n* * *\n";
        assert!(check_blocks(&text.repeat(5_000)).is_ok());
        let indented = format!("{}x\n", " ".repeat(2_000));
        assert!(
            check_blocks(&indented).is_ok(),
            "indentation alone nests nothing"
        );
    }

    #[test]
    fn deep_blocks_are_refused_before_parsing() {
        assert!(refused_blocks(&">".repeat(50_000)));
        assert!(refused_blocks(&"- ".repeat(30_000)));
        assert!(refused_blocks(&"1. ".repeat(300)));
        assert!(!refused_blocks(&"> ".repeat(200)), "flattened, not refused");
        // Deep, then many lines that keep it open (lazy continuation).
        let lazy = format!("{}x\n{}", "> ".repeat(200), "x\n".repeat(20_000));
        let err = check_blocks(&lazy).unwrap_err().to_string();
        assert!(err.contains("too deeply nested"), "{err}");
        // A blank line then unindented text closes everything.
        let closed = format!("{}x\n\n{}", "> ".repeat(200), "x\n".repeat(20_000));
        assert!(check_blocks(&closed).is_ok());
    }

    #[test]
    fn ordinary_html_passes() {
        let html = "<div class=\"a\"><p>x<br>y<img src=\"a>b\"></p><ul><li>one<li>two</ul><table><tr><td>c<td>d</table><svg><path d=\"M0\"/><circle/></svg><script>if (a < b) { x = '</div>' }</script><!-- <div> --></div>";
        assert!(check_html(&html.repeat(2_000)).is_ok());
        // Legacy HTML: unclosed paragraphs and items.
        let legacy = "<p>para<p>more<ul><li>one<li>two</ul><dl><dt>term<dd>meaning</dl><h2>x</h2>";
        assert!(check_html(&legacy.repeat(2_000)).is_ok());
    }

    #[test]
    fn deep_html_is_refused() {
        assert!(refused_html(&"<div>".repeat(300)));
        assert!(refused_html(&"<blockquote><p>x".repeat(300)));
        assert!(!refused_html(&"<div>".repeat(200)));
        // Tricks that would hide depth from a naive counter.
        assert!(refused_html(&"<div></span>".repeat(300)), "ignored end tag");
        assert!(
            refused_html(&"<span><div></span>".repeat(300)),
            "special in between"
        );
        assert!(
            refused_html(&"<div/>".repeat(300)),
            "self-closing is ignored in HTML"
        );
        assert!(
            refused_html(&format!("<svg><div>{}", "<path/>".repeat(300))),
            "broke out of svg"
        );
        assert!(
            refused_html(&"<div title=\"</div>\">".repeat(300)),
            "quoted"
        );
        assert!(refused_html(&"<div><!--</div>-->".repeat(300)), "comment");
        assert!(
            refused_html(&"<div><script><!--<script></script></div>--></script>".repeat(300)),
            "escaped script"
        );
        // Deep but allowed levels add up to the budget.
        let many = format!("{}{}", "<div>".repeat(250), "<p>x</p>".repeat(1_000));
        assert!(refused_html(&many));
    }
}
