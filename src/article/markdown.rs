//! Markdown body → sections of plain text (for indexing) and sanitized HTML
//! (for display).

use std::sync::LazyLock;

use pulldown_cmark::{
    Alignment, BlockQuoteKind, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd,
};
use regex::Regex;

use super::directives;
use super::nesting::{self, MAX_NESTING, NESTING_LIMIT, TooDeeplyNested};
use super::slug::AnchorSet;

/// One heading and the text up to the next heading. Sections are flat: an
/// `###` under an `##` is its own section, so an answer can point at the most
/// specific part of an article.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Section {
    /// The heading text; for the intro before the first heading, the article title.
    pub heading: String,
    /// GitHub-style anchor; `None` for the intro, which has no heading of its own.
    pub anchor: Option<String>,
    /// Heading level 1–6; 0 for the intro.
    pub level: u8,
    /// Plain text of the section body (without the heading).
    pub text: String,
}

pub struct RenderedBody {
    pub sections: Vec<Section>,
    /// Text of the first `#` heading, the title fallback.
    pub first_h1: Option<String>,
    pub html: String,
    /// Links to other articles, resolved when the article is served.
    pub links: Vec<ArticleLink>,
    /// How deep the deepest Markdown nesting went, when it was deeper than
    /// [`MAX_NESTING`] and the HTML shows it flattened.
    pub flattened_depth: Option<usize>,
}

/// A link to another article, written the way the help center's generator
/// wants it (`../x.md`, `/docs/x`, `{{site.baseurl}}/article/x/`). The HTML
/// carries `href` until the link is resolved against the articles that exist
/// when the page is served, so a link to an article added later works too.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArticleLink {
    /// The href as it appears in the rendered HTML (ASCII, percent-encoded).
    pub href: String,
    pub target: LinkTarget,
    /// `#anchor` part, kept on the resolved URL.
    pub fragment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum LinkTarget {
    /// A file path relative to the articles root, without its extension.
    Path(String),
    /// A site-absolute URL path (`article/reset-password`), matched against
    /// permalinks and path endings.
    Site(String),
}

static TEMPLATE_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)\{%.*?%\}|\{\{.*?\}\}").expect("static regex is valid"));
static MDX_IMPORT_EXPORT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^(?:import|export)\s.*$").expect("static regex is valid"));
/// Hugo `{{< ref "x.md" >}}` / `{{< relref "x" >}}` link targets.
static HUGO_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\{\{[<%]\s*(?:rel)?ref\s+"([^"]+)"\s*[>%]\}\}"#).expect("static regex is valid")
});
static HTML_HIDDEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<script\b.*?</script\s*>|<style\b.*?</style\s*>|<!--.*?-->")
        .expect("static regex is valid")
});
static JSX_EXPRESSION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{[^{}]*\}").expect("static regex is valid"));
/// A JSX attribute expression (`src={useBaseUrl('/a.png')}`), which makes a
/// component tag invalid HTML and would leave it in the text.
static JSX_ATTRIBUTE_EXPRESSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"=\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}").expect("static regex is valid")
});
static HTML_HREF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"href="([^"]*)""#).expect("static regex is valid"));
static HTML_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"</?[A-Za-z][^>]*>|<>|</>").expect("static regex is valid"));

/// Removes what static-site generators would have expanded or hidden: Liquid and
/// Hugo template tags, MDX `import`/`export` lines; DocFX and Docusaurus
/// directives become plain Markdown ([`directives`]), alerts stay for the parser.
pub fn strip_site_generator_syntax(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut in_fence: Option<&str> = None;
    for line in body.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let fence = ["```", "~~~"].into_iter().find(|f| trimmed.starts_with(f));
        match (in_fence, fence) {
            (None, Some(f)) => in_fence = Some(f),
            (Some(open), Some(f)) if open == f => in_fence = None,
            _ => {}
        }
        if in_fence.is_none() && fence.is_none() {
            // Cheap literal checks first: most lines have none of this
            // syntax, and the regexes cost more (in debug builds above all).
            if (line.starts_with("import") || line.starts_with("export"))
                && MDX_IMPORT_EXPORT.is_match(line)
            {
                continue;
            }
            if line.contains("={") {
                out.push_str(&JSX_ATTRIBUTE_EXPRESSION.replace_all(line, "=\"\""));
            } else {
                out.push_str(line);
            }
        } else {
            out.push_str(line);
        }
    }
    let out = HUGO_REF.replace_all(&out, "$1");
    let out = TEMPLATE_TAG.replace_all(&out, "");
    // Last: a template tag may have hidden where a DocFX line starts.
    directives::rewrite(&out).into_owned()
}

/// The readable text of a raw HTML or JSX block: no scripts, styles,
/// comments, `{expressions}` or tags.
fn html_block_text(html: &str) -> String {
    let text = HTML_HIDDEN.replace_all(html, " ");
    let mut text = text.into_owned();
    // Two passes strip one level of nesting (`{f({a: 1})}`).
    for _ in 0..2 {
        text = JSX_EXPRESSION.replace_all(&text, " ").into_owned();
    }
    let text = HTML_TAG.replace_all(&text, " ");
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Recognizes a link to another article and rewrites it to rapport's own
/// URL for that article's default id (what the link becomes if the target
/// has no id of its own). `article_path` is the linking file's relative path.
fn article_link(dest: &str, article_path: &str) -> Option<ArticleLink> {
    let dest = dest.trim();
    if dest.is_empty() || dest.starts_with('#') || dest.starts_with("//") {
        return None;
    }
    // Any scheme (`https:`, `mailto:`) is another site.
    if let Some(colon) = dest.find(':')
        && !dest[..colon].contains('/')
    {
        return None;
    }
    let (without_fragment, fragment) = match dest.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment.to_string()).filter(|f| !f.is_empty())),
        None => (dest, None),
    };
    let path = without_fragment.split('?').next().unwrap_or_default();
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?
        .into_owned();
    let (stem, has_article_extension) = match super::strip_article_extension(&path) {
        Some(stem) => (stem.to_string(), true),
        None => (path.clone(), false),
    };
    let last = stem.rsplit('/').next().unwrap_or_default();
    if !has_article_extension && last.contains('.') {
        return None; // an image, a PDF, a download
    }
    let target = if let Some(site_path) = stem.strip_prefix('/') {
        let site_path = site_path.trim_matches('/');
        if site_path.is_empty() {
            return None;
        }
        LinkTarget::Site(site_path.to_string())
    } else if has_article_extension || !stem.is_empty() {
        let folder = article_path
            .rsplit_once('/')
            .map_or("", |(folder, _)| folder);
        LinkTarget::Path(normalize_path(folder, stem.trim_end_matches('/'))?)
    } else {
        return None;
    };
    let guess = match &target {
        LinkTarget::Path(path) => format!("/articles/{}", encode_path(path)),
        LinkTarget::Site(path) => format!("/{}", encode_path(path)),
    };
    let href = match &fragment {
        Some(fragment) => format!("{guess}#{}", encode_path(fragment)),
        None => guess,
    };
    Some(ArticleLink {
        href,
        target,
        fragment,
    })
}

/// `folder` joined with a relative `path`, `.` and `..` applied; `None` when
/// it climbs above the articles root.
pub(super) fn normalize_path(folder: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Characters kept as they are in a URL path; everything else is
/// percent-encoded, so the href survives HTML escaping unchanged.
const PATH_SAFE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn encode_path(path: &str) -> String {
    percent_encoding::utf8_percent_encode(path, PATH_SAFE).to_string()
}

/// Containers that may nest without bound and can be dropped from the HTML
/// (their content stays) when nested too deep.
fn is_flattenable(tag: &Tag<'_>) -> bool {
    matches!(
        tag,
        Tag::BlockQuote(_)
            | Tag::List(_)
            | Tag::Item
            | Tag::FootnoteDefinition(_)
            | Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
    )
}

/// Parses the body (metadata blocks off) once, producing both the indexed
/// sections and the sanitized HTML with heading anchors. Nesting is bounded
/// first (see [`nesting`]): deeper than [`MAX_NESTING`] is flattened, deeper
/// than [`NESTING_LIMIT`] or over the budget is refused.
pub fn render(
    body: &str,
    title_for_intro: Option<&str>,
    article_path: &str,
) -> Result<RenderedBody, TooDeeplyNested> {
    let cleaned = strip_site_generator_syntax(body);
    nesting::check_blocks(&cleaned)?;
    // GFM: `> [!NOTE]` alerts (DocFX writes the same) arrive as
    // `Tag::BlockQuote(Some(kind))`, shown as callouts.
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_GFM;
    let events: Vec<Event<'_>> = Parser::new_ext(&cleaned, options).collect();
    // For each open tag: whether it reaches the HTML, whether it is a
    // container; how many open tags reach the HTML, how many containers are open.
    let mut open_tags: Vec<(bool, bool)> = Vec::new();
    let mut kept_depth = 0usize;
    let mut containers = 0usize;
    let mut deepest = 0usize;
    let mut flattened = false;

    let mut anchors = AnchorSet::default();
    let mut sections = Vec::new();
    let mut current = Section {
        heading: title_for_intro.unwrap_or_default().to_string(),
        anchor: None,
        level: 0,
        text: String::new(),
    };
    let mut first_h1 = None;
    let mut heading_text: Option<String> = None;
    let mut html_events: Vec<Event<'_>> = Vec::with_capacity(events.len());
    let mut heading_start_index = 0;
    let mut links: Vec<ArticleLink> = Vec::new();
    let mut html_block: Option<String> = None;
    let mut table = TableLayout::default();
    // The table being read, collected whole: its rows read as lines only
    // once the header names are known.
    let mut table_text: Option<TableText> = None;

    for mut event in events {
        if let Event::Start(Tag::Link { dest_url, .. }) = &mut event
            && let Some(link) = article_link(dest_url, article_path)
        {
            *dest_url = CowStr::from(link.href.clone());
            if !links.contains(&link) {
                links.push(link);
            }
        }
        // Raw HTML links (`<a href="install">` in a table) are links too.
        if let Event::Html(html) | Event::InlineHtml(html) = &mut event
            && HTML_HREF.is_match(html)
        {
            let rewritten = HTML_HREF.replace_all(html, |captures: &regex::Captures<'_>| {
                match article_link(&captures[1], article_path) {
                    Some(link) => {
                        let href = format!("href=\"{}\"", link.href);
                        if !links.contains(&link) {
                            links.push(link);
                        }
                        href
                    }
                    None => captures[0].to_string(),
                }
            });
            *html = CowStr::from(rewritten.into_owned());
        }
        match &event {
            Event::Start(Tag::HtmlBlock) => html_block = Some(String::new()),
            Event::Html(html) => {
                if let Some(block) = html_block.as_mut() {
                    block.push_str(html);
                }
            }
            Event::End(TagEnd::HtmlBlock) => {
                // JSX and HTML blocks (`<details>`, `<Tabs>`) hold words people read.
                let text = html_block_text(&html_block.take().unwrap_or_default());
                match heading_text.as_mut() {
                    Some(h) => h.push_str(&text),
                    None => {
                        current.text.push_str(&text);
                        current.text.push('\n');
                    }
                }
            }
            Event::Start(Tag::Heading { .. }) => {
                heading_text = Some(String::new());
                heading_start_index = html_events.len();
            }
            Event::End(TagEnd::Heading(level)) => {
                let text = heading_text.take().unwrap_or_default();
                let text = collapse_whitespace(&text);
                let anchor = anchors.unique(&text);
                if *level == HeadingLevel::H1 && first_h1.is_none() {
                    first_h1 = Some(text.clone());
                }
                if let Some(Event::Start(Tag::Heading { id, .. })) =
                    html_events.get_mut(heading_start_index)
                {
                    *id = Some(CowStr::from(anchor.clone()));
                }
                let finished = std::mem::replace(
                    &mut current,
                    Section {
                        heading: text,
                        anchor: Some(anchor),
                        level: *level as u8,
                        text: String::new(),
                    },
                );
                push_section(&mut sections, finished);
            }
            Event::Text(t) | Event::Code(t) => match (heading_text.as_mut(), table_text.as_mut()) {
                (Some(h), _) => h.push_str(t),
                (None, Some(table)) => table.cell.push_str(t),
                (None, None) => current.text.push_str(t),
            },
            Event::SoftBreak | Event::HardBreak => {
                match (heading_text.as_mut(), table_text.as_mut()) {
                    (Some(h), _) => h.push(' '),
                    (None, Some(table)) => table.cell.push(' '),
                    (None, None) => current.text.push(' '),
                }
            }
            // `a<br>b` in a table cell (the only way to break a line there)
            // must not read as `ab`.
            Event::InlineHtml(html) if is_line_break(html) => {
                match (heading_text.as_mut(), table_text.as_mut()) {
                    (Some(h), _) => h.push(' '),
                    (None, Some(table)) => table.cell.push(' '),
                    (None, None) => current.text.push(' '),
                }
            }
            Event::End(
                TagEnd::Paragraph | TagEnd::Item | TagEnd::CodeBlock | TagEnd::BlockQuote(_),
            ) => current.text.push('\n'),
            Event::Start(Tag::Table(_)) => table_text = Some(TableText::default()),
            Event::Start(Tag::TableHead | Tag::TableRow) => {
                if let Some(table) = table_text.as_mut() {
                    table.row.clear();
                }
            }
            Event::End(TagEnd::TableHead) => {
                if let Some(table) = table_text.as_mut() {
                    table.head = std::mem::take(&mut table.row);
                }
            }
            Event::End(TagEnd::TableRow) => {
                if let Some(table) = table_text.as_mut() {
                    let row = std::mem::take(&mut table.row);
                    table.rows.push(row);
                }
            }
            Event::Start(Tag::TableCell) => {
                if let Some(table) = table_text.as_mut() {
                    table.cell.clear();
                }
            }
            Event::End(TagEnd::TableCell) => {
                if let Some(table) = table_text.as_mut() {
                    let cell = collapse_whitespace(&std::mem::take(&mut table.cell));
                    table.row.push(cell);
                }
            }
            Event::End(TagEnd::Table) => {
                if let Some(table) = table_text.take() {
                    current.text.push('\n');
                    for line in table.lines() {
                        current.text.push_str(&line);
                        current.text.push('\n');
                    }
                }
            }
            Event::Start(Tag::Item) => current.text.push('\n'),
            // Raw HTML and JSX are display-only; their text never reaches the index.
            _ => {}
        }
        match &event {
            Event::Start(tag) => {
                if open_tags.len() >= NESTING_LIMIT {
                    return Err(TooDeeplyNested(format!(
                        "quotes, lists, emphasis or links nest more than {NESTING_LIMIT} levels deep; files nested deeper than {NESTING_LIMIT} levels are refused"
                    )));
                }
                // A list needs room for its items too.
                let room = if matches!(tag, Tag::List(_)) { 2 } else { 1 };
                let container = is_flattenable(tag);
                let keep = !container || kept_depth + room <= MAX_NESTING;
                open_tags.push((keep, container));
                if container {
                    containers += 1;
                    deepest = deepest.max(containers);
                }
                if keep {
                    kept_depth += 1;
                } else {
                    flattened = true;
                    continue;
                }
            }
            Event::End(end) => {
                let (keep, container) = open_tags.pop().unwrap_or((true, false));
                if container {
                    containers = containers.saturating_sub(1);
                }
                if keep {
                    kept_depth = kept_depth.saturating_sub(1);
                } else {
                    if *end == TagEnd::Item {
                        // Flattened items still read as separate lines.
                        html_events.push(Event::SoftBreak);
                    }
                    continue;
                }
            }
            _ => {}
        }
        html_events.push(table.display(event));
    }
    push_section(&mut sections, current);

    if let Some(title) = title_for_intro.map(str::to_string).or(first_h1.clone())
        && let Some(intro) = sections.first_mut().filter(|s| s.anchor.is_none())
    {
        intro.heading = title;
    }

    let mut raw_html = String::with_capacity(cleaned.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut raw_html, html_events.into_iter());
    // Raw HTML nests too, and the sanitizer's work grows with its depth.
    nesting::check_html(&raw_html)?;
    Ok(RenderedBody {
        sections,
        first_h1,
        html: sanitize_html(&raw_html),
        links,
        flattened_depth: flattened.then_some(deepest),
    })
}

/// The column alignments of the table being shown, and where in it we are.
#[derive(Default)]
struct TableLayout {
    alignments: Vec<Alignment>,
    head: bool,
    cell: usize,
}

impl TableLayout {
    /// The event as the page shows it: an alert as a labelled callout box, a
    /// table cell aligned by a class (the portal's CSP forbids the `style`
    /// attributes pulldown-cmark would write, and the sanitizer drops them).
    fn display<'a>(&mut self, event: Event<'a>) -> Event<'a> {
        match event {
            Event::Start(Tag::BlockQuote(Some(kind))) => {
                let (class, label) = callout(kind);
                Event::Html(CowStr::from(format!(
                    "<div class=\"callout callout-{class}\" role=\"note\">\n<p class=\"callout-title\">{label}</p>\n"
                )))
            }
            Event::End(TagEnd::BlockQuote(Some(_))) => Event::Html(CowStr::Borrowed("</div>\n")),
            Event::Start(Tag::Table(ref alignments)) => {
                self.alignments.clone_from(alignments);
                event
            }
            Event::Start(Tag::TableHead) => {
                self.head = true;
                self.cell = 0;
                event
            }
            Event::End(TagEnd::TableHead) => {
                self.head = false;
                event
            }
            Event::Start(Tag::TableRow) => {
                self.cell = 0;
                event
            }
            Event::Start(Tag::TableCell) => {
                let element = if self.head { "th" } else { "td" };
                let class = match self.alignments.get(self.cell) {
                    Some(Alignment::Left) => " class=\"align-left\"",
                    Some(Alignment::Center) => " class=\"align-center\"",
                    Some(Alignment::Right) => " class=\"align-right\"",
                    _ => "",
                };
                Event::Html(CowStr::from(format!("<{element}{class}>")))
            }
            Event::End(TagEnd::TableCell) => {
                self.cell += 1;
                Event::Html(CowStr::Borrowed(if self.head { "</th>" } else { "</td>" }))
            }
            other => other,
        }
    }
}

/// A table's cells as read so far.
#[derive(Default)]
struct TableText {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
    row: Vec<String>,
    cell: String,
}

impl TableText {
    /// One line per row: a bot reads the text aloud and search shows it as a
    /// snippet, where `a | b | c` cells lose which column said what.
    fn lines(&self) -> Vec<String> {
        if self.rows.is_empty() {
            // A header alone is all the table says.
            return Some(table_row_line(&[], &self.head))
                .filter(|line| !line.is_empty())
                .into_iter()
                .collect();
        }
        self.rows
            .iter()
            .map(|row| table_row_line(&self.head, row))
            .filter(|line| !line.is_empty())
            .collect()
    }
}

/// A table row as a sentence-like line: the first cell names the row, the
/// others follow it. With two columns the header adds nothing
/// (`Pending — Stripe is preparing the payout`); with more, each value is
/// named by its column (`Growth — Price: $19; Seats: 3`), since values alone
/// (`✓; ✓; –`) would not say which is which. Empty cells are left out.
fn table_row_line(head: &[String], row: &[String]) -> String {
    let lead = row.first().map_or("", String::as_str);
    let named = head.len().max(row.len()) > 2;
    let rest: Vec<String> = row
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, value)| !value.is_empty())
        .map(|(column, value)| match head.get(column) {
            Some(name) if named && !name.is_empty() => format!("{name}: {value}"),
            _ => value.clone(),
        })
        .collect();
    let rest = rest.join("; ");
    match (lead.is_empty(), rest.is_empty()) {
        (_, true) => lead.to_string(),
        (true, false) => rest,
        (false, false) => format!("{lead} — {rest}"),
    }
}

/// `<br>`, `<br/>`, `<br />` in any case.
fn is_line_break(html: &str) -> bool {
    let tag = html.trim().to_ascii_lowercase();
    tag.strip_prefix("<br")
        .is_some_and(|rest| matches!(rest.trim_start(), ">" | "/>"))
}

/// A callout's class suffix and label.
fn callout(kind: BlockQuoteKind) -> (&'static str, &'static str) {
    match kind {
        BlockQuoteKind::Note => ("note", "Note"),
        BlockQuoteKind::Tip => ("tip", "Tip"),
        BlockQuoteKind::Important => ("important", "Important"),
        BlockQuoteKind::Warning => ("warning", "Warning"),
        BlockQuoteKind::Caution => ("caution", "Caution"),
    }
}

fn push_section(sections: &mut Vec<Section>, mut section: Section) {
    section.text = tidy_text(&section.text);
    // The intro is kept only when it has text; headed sections always are, so
    // an empty "## Troubleshooting" still gets an anchor to link to.
    if section.anchor.is_some() || !section.text.is_empty() {
        sections.push(section);
    }
}

/// Sanitizes rendered HTML with ammonia; headings keep their `id` anchors,
/// callouts and aligned table cells their classes (only those).
pub fn sanitize_html(html: &str) -> String {
    ammonia::Builder::default()
        .add_allowed_classes(
            "div",
            &[
                "callout",
                "callout-note",
                "callout-tip",
                "callout-important",
                "callout-warning",
                "callout-caution",
            ],
        )
        .add_tag_attribute_values("div", "role", &["note"])
        .add_allowed_classes("p", &["callout-title"])
        .add_allowed_classes("th", &["align-left", "align-center", "align-right"])
        .add_allowed_classes("td", &["align-left", "align-center", "align-right"])
        .add_tag_attributes("h1", &["id"])
        .add_tag_attributes("h2", &["id"])
        .add_tag_attributes("h3", &["id"])
        .add_tag_attributes("h4", &["id"])
        .add_tag_attributes("h5", &["id"])
        .add_tag_attributes("h6", &["id"])
        .clean(html)
        .to_string()
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Collapses runs of blanks within lines and drops empty lines.
fn tidy_text(text: &str) -> String {
    text.lines()
        .map(collapse_whitespace)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sections_at_headings_with_unique_anchors() {
        let body = "Intro text.\n\n## Steps\n\n1. Open *Settings*\n2. Click\n\n## Steps\n\nAgain.\n\n### If you lost your phone\n\nUse codes.";
        let rendered = render(body, Some("Reset your password"), "a.md").unwrap();
        let s = &rendered.sections;
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].heading, "Reset your password");
        assert_eq!(s[0].anchor, None);
        assert_eq!(s[0].text, "Intro text.");
        assert_eq!(s[1].anchor.as_deref(), Some("steps"));
        assert_eq!(s[1].text, "Open Settings\nClick");
        assert_eq!(s[2].anchor.as_deref(), Some("steps-1"));
        assert_eq!(s[3].anchor.as_deref(), Some("if-you-lost-your-phone"));
        assert_eq!(s[3].level, 3);
        assert!(
            rendered
                .html
                .contains(r#"<h3 id="if-you-lost-your-phone">"#)
        );
    }

    #[test]
    fn html_is_sanitized() {
        let rendered = render(
            "<script>alert(1)</script>\n\n[x](javascript:alert(1)) <img src=x onerror=alert(1)>",
            None,
            "a.md",
        )
        .unwrap();
        assert!(!rendered.html.contains("<script"));
        assert!(!rendered.html.contains("javascript:"));
        assert!(!rendered.html.contains("onerror"));
        assert!(rendered.sections.iter().all(|s| !s.text.contains("alert")));
    }

    #[test]
    fn site_generator_syntax_is_dropped_but_text_kept() {
        let body = "import Tabs from '@theme/Tabs';\n\n{% include note.html %}Hello {{ site.name }}\n\n> [!NOTE]\n> Keep this note.\n\n:::image type=\"content\" source=\"a.png\":::\n\n<Tabs><TabItem value=\"a\">\n\nInside tab.\n\n</TabItem></Tabs>\n\n```js\nimport x from 'y';\n```\n";
        let rendered = render(body, Some("T"), "a.md").unwrap();
        let text = &rendered.sections[0].text;
        assert!(text.contains("Hello"), "{text}");
        assert!(text.contains("Keep this note."), "{text}");
        assert!(text.contains("Inside tab."), "{text}");
        assert!(text.contains("import x from 'y';"), "code is kept: {text}");
        for dropped in [
            "@theme",
            "include",
            "site.name",
            "[!NOTE]",
            "image",
            "TabItem",
        ] {
            assert!(!text.contains(dropped), "{dropped} in {text}");
        }
    }

    #[test]
    fn alerts_render_as_labelled_callouts_and_read_as_plain_text() {
        let body = "> [!NOTE]\n> Wait for replication.\n\n> [!warning]\n> Back up *first*.\n\n> A plain quote.\n";
        let rendered = render(body, Some("T"), "a.md").unwrap();
        let html = &rendered.html;
        assert!(
            html.contains("<div class=\"callout callout-note\" role=\"note\">\n<p class=\"callout-title\">Note</p>\n<p>Wait for replication.</p>\n</div>"),
            "{html}"
        );
        assert!(
            html.contains("<div class=\"callout callout-warning\" role=\"note\">"),
            "{html}"
        );
        assert!(
            html.contains("<blockquote>\n<p>A plain quote.</p>"),
            "{html}"
        );
        assert!(!html.contains("[!"), "{html}");
        assert_eq!(
            rendered.sections[0].text,
            "Wait for replication.\nBack up first.\nA plain quote."
        );
    }

    #[test]
    fn only_rapport_s_own_callout_and_alignment_classes_pass_the_sanitizer() {
        let html = sanitize_html(
            "<div class=\"callout callout-tip evil\" role=\"alert\" style=\"color:red\"><p class=\"callout-title x\">Tip</p></div><td class=\"align-center wide\" style=\"text-align: center\">c</td><span class=\"callout\">s</span>",
        );
        assert!(
            html.contains(
                "<div class=\"callout callout-tip\"><p class=\"callout-title\">Tip</p></div>"
            ),
            "{html}"
        );
        assert!(!html.contains("evil") && !html.contains("alert") && !html.contains("style"));
        assert!(!html.contains("<span class"), "{html}");
        assert_eq!(
            sanitize_html("<div role=\"note\">n</div>"),
            "<div role=\"note\">n</div>"
        );
    }

    #[test]
    fn tables_render_with_aligned_cells_and_read_as_rows() {
        let body = "| Plan | Price | Seats |\n|:--|--:|:-:|\n| Growth | $19 | 3 |\n| Business | | 10 |\n\nAfter.\n";
        let rendered = render(body, Some("Plans"), "a.md").unwrap();
        let html = &rendered.html;
        assert!(
            html.contains("<table><thead><tr><th class=\"align-left\">Plan</th><th class=\"align-right\">Price</th><th class=\"align-center\">Seats</th></tr></thead><tbody>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<tr><td class=\"align-left\">Business</td><td class=\"align-right\"></td>"
            ),
            "{html}"
        );
        assert!(!html.contains("style"), "{html}");
        assert_eq!(
            rendered.sections[0].text,
            "Growth — Price: $19; Seats: 3\nBusiness — Seats: 10\nAfter."
        );
        let plain = render("| a | b |\n|---|---|\n| c | d |\n", None, "a.md").unwrap();
        assert!(plain.html.contains("<th>a</th>"), "{}", plain.html);
    }

    #[test]
    fn table_rows_read_as_lines_a_bot_can_say() {
        let body = "Your payout status:\n\n| Status | Meaning |\n|---|---|\n| Pending | Stripe is preparing the payout |\n| `Paid` | Sent to<br>your bank |\n";
        let rendered = render(body, Some("Payouts"), "a.md").unwrap();
        assert_eq!(
            rendered.sections[0].text,
            "Your payout status:\nPending — Stripe is preparing the payout\nPaid — Sent to your bank"
        );
        let wide = "| | Owner | Member |\n|---|---|---|\n| Close the account | ✓ | – |\n| | | |\n| Billing | | View receipts |\n";
        let rendered = render(wide, None, "a.md").unwrap();
        assert_eq!(
            rendered.sections[0].text,
            "Close the account — Owner: ✓; Member: –\nBilling — Member: View receipts",
            "empty rows and cells are left out"
        );
        let head_only = render("| Only | A header |\n|---|---|\n", None, "a.md").unwrap();
        assert_eq!(head_only.sections[0].text, "Only — A header");
        let no_lead = render("| a | b | c |\n|---|---|---|\n| | 1 | 2 |\n", None, "a.md").unwrap();
        assert_eq!(no_lead.sections[0].text, "b: 1; c: 2");
    }

    #[test]
    fn line_breaks_are_recognized_in_any_spelling() {
        for tag in ["<br>", "<BR/>", "<br />", " <br > "] {
            assert!(is_line_break(tag), "{tag}");
        }
        for tag in ["<b>", "<brx>", "<br class=x>"] {
            assert!(!is_line_break(tag), "{tag}");
        }
    }

    #[test]
    fn docfx_markers_never_reach_the_page_or_the_text() {
        let body = "> [!div class=\"nextstepaction\"]\n> [Run Tests: Sync](https://aka.ms/sync)\n\n> [!VIDEO https://www.microsoft.com/videoplayer/embed/9ffd]\n\n:::zone pivot=\"outlook\"\nIn Outlook.\n:::zone-end\n\n[!INCLUDE [gone](../includes/gone.md)]\n\n:::tip Using WordPress?\nUse the plugin.\n:::\n";
        let rendered = render(body, Some("T"), "a.md").unwrap();
        let html = &rendered.html;
        let text: String = rendered.sections.iter().map(|s| s.text.as_str()).collect();
        for marker in [
            "nextstepaction",
            "[!",
            ":::",
            "zone",
            "INCLUDE",
            "<iframe",
            "<blockquote",
        ] {
            assert!(!html.contains(marker), "{marker} in {html}");
            assert!(!text.contains(marker), "{marker} in {text}");
        }
        assert!(
            html.contains("<p><a href=\"https://aka.ms/sync\" rel=\"noopener noreferrer\">Run Tests: Sync</a></p>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<p><a href=\"https://www.microsoft.com/videoplayer/embed/9ffd\" rel=\"noopener noreferrer\">Video</a></p>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<div class=\"callout callout-tip\" role=\"note\">\n<p class=\"callout-title\">Tip</p>\n<p><strong>Using WordPress?</strong></p>"),
            "{html}"
        );
        assert!(
            text.contains("In Outlook.") && text.contains("Using WordPress?"),
            "{text}"
        );
    }

    #[test]
    fn raw_html_links_to_articles_are_recorded_too() {
        let rendered = render(
            "<table><tr><td><a href=\"pageview-goals\">Goals</a></td></tr></table>\n\nText <a href=\"https://x.org/a\">x</a>.",
            None,
            "docs/goal-conversions.md",
        ).unwrap();
        assert_eq!(
            rendered.links[0].target,
            LinkTarget::Path("docs/pageview-goals".into())
        );
        assert!(
            rendered
                .html
                .contains(r#"href="/articles/docs/pageview-goals""#)
        );
        assert!(rendered.html.contains(r#"href="https://x.org/a""#));
    }

    #[test]
    fn first_h1_is_reported_for_the_title_fallback() {
        let rendered = render("# Getting started\n\nWelcome.\n\n## Next", None, "a.md").unwrap();
        assert_eq!(rendered.first_h1.as_deref(), Some("Getting started"));
        assert_eq!(
            rendered.sections[0].anchor.as_deref(),
            Some("getting-started")
        );
    }
}
