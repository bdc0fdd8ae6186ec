//! Article parsing: one Markdown file with front matter → an [`Article`] with
//! metadata, flat [`Section`]s of plain text and sanitized HTML.
//!
//! Parsing is pure (bytes in, article out) so the indexer, `rapport check` and
//! the tests all share exactly the same rules.

pub mod categories;
mod directives;
mod front_matter;
pub mod includes;
mod markdown;
pub mod nesting;
pub mod rules;
pub mod selection;
mod slug;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use includes::{FolderIncludes, IncludeResolver, NoIncludes};
pub use markdown::{ArticleLink, LinkTarget, Section, encode_path, sanitize_html};
pub use rules::{ArticleRules, CategoryFromFolder};
pub use selection::{Selection, SkipReason};

/// File extensions that hold articles: Markdown as Jekyll, Hugo and DocFX
/// write it, and MDX as Docusaurus does.
pub const ARTICLE_EXTENSIONS: [&str; 3] = [".md", ".markdown", ".mdx"];

/// Whether a file name is an article by its extension.
pub fn is_article_file(name: &str) -> bool {
    strip_article_extension(name).is_some()
}

/// `name` without its article extension, if it has one.
pub fn strip_article_extension(name: &str) -> Option<&str> {
    ARTICLE_EXTENSIONS
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .filter(|stem| !stem.is_empty() && !stem.ends_with('/'))
}
pub use slug::slugify;

/// Why a file could not become an article. The message never names the file:
/// callers add the path, so each log line reads `path: reason`.
#[derive(Debug, thiserror::Error)]
pub enum ArticleError {
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    #[error("file is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("not valid UTF-8 (invalid byte at offset {0})")]
    InvalidUtf8(usize),
    /// Text files have no NUL bytes; images, archives and UTF-16 files do.
    #[error("binary content, not text (NUL byte at offset {0})")]
    Binary(usize),
    /// Zero bytes: usually a file caught while it is being written.
    #[error("empty file (still being written?)")]
    Empty,
    #[error(transparent)]
    TooDeeplyNested(#[from] nesting::TooDeeplyNested),
    #[error("front matter: {0}")]
    FrontMatter(String),
    #[error("front matter is not closed: no closing `{0}` line")]
    UnclosedFrontMatter(&'static str),
    #[error(
        "invalid id {0:?}: must be `/`-separated names, without `.`, `..`, empty names, backslashes or control characters"
    )]
    InvalidId(String),
}

/// Who may read an article. Internal articles are only served to agent keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    #[default]
    Public,
    Internal,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Public => "public",
            Audience::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Article {
    pub id: String,
    /// Path relative to the articles folder, `/`-separated.
    pub path: String,
    pub title: String,
    pub summary: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub products: Vec<String>,
    /// Plans the article applies to; empty means every plan. The bot never
    /// answers with an article meant for another plan.
    #[serde(default)]
    pub plans: Vec<String>,
    pub audience: Audience,
    /// The access field's value when it was neither public nor internal (the
    /// article is then internal); reported so the team can fix or map it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unrecognized_audience: Option<String>,
    /// Jekyll `permalink` / Docusaurus `slug`, for links from other articles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permalink: Option<String>,
    /// Links to other articles in [`Article::html`], resolved when served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<ArticleLink>,
    pub locale: String,
    pub updated: Option<String>,
    /// The Markdown body as written (front matter removed).
    pub markdown: String,
    /// Sanitized HTML, safe to embed in a page.
    pub html: String,
    pub sections: Vec<Section>,
    /// blake3 of the file's bytes, folded with what its includes held; the
    /// index stores it to skip unchanged files.
    pub content_hash: String,
    /// Files read for DocFX includes, relative to the articles folder: when
    /// one changes, the article is parsed again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<String>,
}

impl Article {
    /// All section text, for the article-level body field.
    pub fn body_text(&self) -> String {
        let mut text = String::new();
        for section in &self.sections {
            if section.anchor.is_some() {
                text.push_str(&section.heading);
                text.push('\n');
            }
            text.push_str(&section.text);
            text.push('\n');
        }
        text
    }

    pub fn headings(&self) -> impl Iterator<Item = &str> {
        self.sections
            .iter()
            .filter(|s| s.anchor.is_some())
            .map(|s| s.heading.as_str())
    }
}

pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The id a file gets when its front matter has none: its path relative to the
/// articles folder, without its extension.
pub fn default_id(relative_path: &str) -> String {
    strip_article_extension(relative_path)
        .unwrap_or(relative_path)
        .to_string()
}

/// Reads and parses one file. `relative_path` is `/`-separated; includes
/// are read from the articles folder, `path` without `relative_path`.
pub fn load(
    path: &Path,
    relative_path: &str,
    max_bytes: u64,
    rules: &ArticleRules,
) -> Result<Article, ArticleError> {
    load_checked(path, relative_path, max_bytes, rules).map(|checked| checked.article)
}

/// A parsed article and what `rapport check` should say about it although
/// it was accepted (for example: shown flattened).
#[derive(Debug)]
pub struct Checked {
    pub article: Article,
    pub notes: Vec<String>,
}

/// [`load`], keeping the notes.
pub fn load_checked(
    path: &Path,
    relative_path: &str,
    max_bytes: u64,
    rules: &ArticleRules,
) -> Result<Checked, ArticleError> {
    let bytes = read_bounded(path, max_bytes)?;
    match articles_folder(path, relative_path) {
        Some(root) => parse_including(
            &bytes,
            relative_path,
            rules,
            &FolderIncludes::new(root, max_bytes),
        ),
        None => parse_checked(&bytes, relative_path, rules),
    }
}

/// The articles folder: `path` without the `relative_path` it ends with.
fn articles_folder<'a>(path: &'a Path, relative_path: &str) -> Option<&'a Path> {
    let depth = relative_path.split('/').count();
    let root = path.ancestors().nth(depth)?;
    (root.join(relative_path) == path).then_some(root)
}

/// Reads a file that may be at most `max_bytes` long, without reading more
/// than that when the file is already too large.
pub fn read_bounded(path: &Path, max_bytes: u64) -> Result<Vec<u8>, ArticleError> {
    let size = std::fs::metadata(path)?.len();
    if size > max_bytes {
        return Err(ArticleError::TooLarge {
            size,
            limit: max_bytes,
        });
    }
    let bytes = std::fs::read(path)?;
    // The file may have grown between stat and read.
    if bytes.len() as u64 > max_bytes {
        return Err(ArticleError::TooLarge {
            size: bytes.len() as u64,
            limit: max_bytes,
        });
    }
    Ok(bytes)
}

/// Parses an article from its bytes with the default [`ArticleRules`].
pub fn parse(bytes: &[u8], relative_path: &str) -> Result<Article, ArticleError> {
    parse_with(bytes, relative_path, &ArticleRules::default())
}

/// Parses an article from its bytes.
pub fn parse_with(
    bytes: &[u8],
    relative_path: &str,
    rules: &ArticleRules,
) -> Result<Article, ArticleError> {
    parse_checked(bytes, relative_path, rules).map(|checked| checked.article)
}

/// Parses an article from its bytes, with notes for `rapport check`. DocFX
/// includes are left out (with a note): there is no folder to read them from.
pub fn parse_checked(
    bytes: &[u8],
    relative_path: &str,
    rules: &ArticleRules,
) -> Result<Checked, ArticleError> {
    parse_including(bytes, relative_path, rules, &NoIncludes)
}

/// Parses an article from its bytes, its DocFX includes read by `includes`.
pub fn parse_including(
    bytes: &[u8],
    relative_path: &str,
    rules: &ArticleRules,
    includes: &dyn IncludeResolver,
) -> Result<Checked, ArticleError> {
    if bytes.is_empty() {
        return Err(ArticleError::Empty);
    }
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(ArticleError::Binary(offset));
    }
    let source =
        std::str::from_utf8(bytes).map_err(|e| ArticleError::InvalidUtf8(e.valid_up_to()))?;
    let (meta, body) = front_matter::split(source)?;

    let id = match meta.id {
        Some(id) => id.trim_matches('/').to_string(),
        None => default_id(relative_path),
    };
    if !is_valid_id(&id) {
        return Err(ArticleError::InvalidId(id));
    }
    let access = rules.access(&meta.raw);

    let expanded = includes::expand(body, relative_path, access.audience, rules, includes);
    let rendered = markdown::render(&expanded.text, meta.title.as_deref(), relative_path)?;
    let mut notes: Vec<String> = rendered
        .flattened_depth
        .map(|depth| {
            format!(
                "nested {depth} levels deep; levels beyond {} are shown flattened",
                nesting::MAX_NESTING
            )
        })
        .into_iter()
        .collect();
    notes.extend(expanded.notes.iter().cloned());
    let title = meta
        .title
        .or(rendered.first_h1.filter(|h1| !h1.trim().is_empty()))
        .or(meta.nav_label)
        .unwrap_or_else(|| file_stem(relative_path));
    let category = meta
        .category
        .or_else(|| rules.folder_category(relative_path));
    let mut sections = rendered.sections;
    if let Some(intro) = sections.first_mut().filter(|s| s.anchor.is_none()) {
        intro.heading.clone_from(&title);
    }

    let article = Article {
        id,
        path: relative_path.to_string(),
        title,
        summary: meta.summary.unwrap_or_default(),
        category,
        tags: meta.tags,
        products: meta.products,
        plans: meta.plans,
        audience: access.audience,
        unrecognized_audience: access.unrecognized,
        permalink: meta.permalink,
        links: rendered.links,
        locale: meta.locale.unwrap_or_else(|| "en".to_string()),
        updated: meta.updated,
        markdown: body.to_string(),
        html: rendered.html,
        sections,
        content_hash: expanded.content_hash(&content_hash(bytes)),
        includes: expanded.includes,
    };
    Ok(Checked { article, notes })
}

fn file_stem(relative_path: &str) -> String {
    let name = relative_path.rsplit('/').next().unwrap_or(relative_path);
    strip_article_extension(name).unwrap_or(name).to_string()
}

/// Ids appear in URLs (`/articles/{id}`, percent-encoded), so any text is
/// fine except what could climb out of the articles folder or isn't printable.
fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 512
        && id.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && !segment.chars().any(|c| c.is_control() || c == '\\')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_path_and_first_heading() {
        let article = parse(b"# Reset your password\n\nSteps.", "account/reset.md").unwrap();
        assert_eq!(article.id, "account/reset");
        assert_eq!(article.title, "Reset your password");
        assert_eq!(article.audience, Audience::Public);
        assert_eq!(article.locale, "en");

        let article = parse(b"No heading here.", "faq/plain-file.md").unwrap();
        assert_eq!(article.title, "plain-file");
        assert_eq!(article.sections[0].heading, "plain-file");
    }

    #[test]
    fn front_matter_fields_are_used() {
        let source = b"---\nid: billing/refunds\ntitle: Refunds\nsummary: How refunds work\ncategory: Billing\ntags: [refund, money]\nproducts: [web]\naudience: internal\nlocale: fr\nupdated: 2026-10-01\n---\nBody";
        let article = parse(source, "x.md").unwrap();
        assert_eq!(article.id, "billing/refunds");
        assert_eq!(article.category.as_deref(), Some("Billing"));
        assert_eq!(article.audience, Audience::Internal);
        assert_eq!(article.locale, "fr");
        assert_eq!(article.updated.as_deref(), Some("2026-10-01"));
        assert_eq!(article.sections[0].heading, "Refunds");
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(matches!(
            parse(b"\xff\xfe bad", "a.md"),
            Err(ArticleError::InvalidUtf8(0))
        ));
        assert!(matches!(
            parse(b"---\nid: ../../etc/passwd\n---\n", "a.md"),
            Err(ArticleError::InvalidId(_))
        ));
        assert!(matches!(
            parse(b"---\nid: a//b\n---\n", "a.md"),
            Err(ArticleError::InvalidId(_))
        ));
        let odd = parse(b"Body", "excel/can't-use-(x).md").unwrap();
        assert_eq!(odd.id, "excel/can't-use-(x)");
        let docfx = parse(b"---\naudience: ITPro\n---\n", "a.md").unwrap();
        assert_eq!(
            docfx.audience,
            Audience::Internal,
            "unknown values fail closed"
        );
        assert_eq!(docfx.unrecognized_audience.as_deref(), Some("ITPro"));
    }

    #[test]
    fn binary_empty_and_pathologically_nested_files_are_refused() {
        let binary = parse(b"# Title\n\0\0\0", "a.md").unwrap_err();
        assert!(matches!(binary, ArticleError::Binary(8)), "{binary}");
        assert!(binary.to_string().contains("NUL byte at offset 8"));
        assert!(matches!(
            parse(&[0; 64], "a.md"),
            Err(ArticleError::Binary(0))
        ));
        assert!(matches!(parse(b"", "a.md"), Err(ArticleError::Empty)));
        assert!(parse(b"\n", "a.md").is_ok(), "a blank line is text");
        for (shape, body) in [
            ("quotes", ">".repeat(50_000)),
            ("lists", "- ".repeat(30_000)),
            ("emphasis", "*".repeat(2_000) + "a" + &"*".repeat(2_000)),
            ("html", "<div>".repeat(24_000)),
        ] {
            let error = parse(body.as_bytes(), "a.md").unwrap_err();
            assert!(
                matches!(error, ArticleError::TooDeeplyNested(_))
                    && error.to_string().starts_with("too deeply nested: "),
                "{shape}: {error}"
            );
        }
    }

    #[test]
    fn deep_but_bounded_nesting_is_flattened_with_a_note() {
        let body = format!("{}deep text\n\nafter", "> ".repeat(100));
        let checked = parse_checked(body.as_bytes(), "a.md", &ArticleRules::default()).unwrap();
        assert_eq!(
            checked.notes,
            ["nested 100 levels deep; levels beyond 32 are shown flattened"]
        );
        let html = &checked.article.html;
        assert_eq!(
            html.matches("<blockquote>").count(),
            nesting::MAX_NESTING,
            "{html}"
        );
        assert!(
            html.contains("deep text") && html.contains("after"),
            "{html}"
        );
        assert!(checked.article.body_text().contains("deep text"));

        let items: String = (0..60)
            .map(|i| format!("{}- item{i}\n", "  ".repeat(i)))
            .collect();
        let checked = parse_checked(items.as_bytes(), "a.md", &ArticleRules::default()).unwrap();
        assert_eq!(checked.notes.len(), 1);
        let html = &checked.article.html;
        assert!(
            html.matches("<li>").count() <= nesting::MAX_NESTING,
            "{html}"
        );
        assert!(html.contains("item59"), "{html}");

        let plain = parse_checked(b"> one\n>> two", "a.md", &ArticleRules::default()).unwrap();
        assert!(plain.notes.is_empty());
    }

    #[test]
    fn other_generators_files_and_fallbacks() {
        let mdx = parse(
            b"---\nsidebar_label: Goals\n---\nimport X from 'y';\n\nSet goals.",
            "docs/goals.mdx",
        )
        .unwrap();
        assert_eq!(mdx.id, "docs/goals");
        assert_eq!(mdx.title, "Goals", "nav label when nothing better");
        assert_eq!(
            mdx.category.as_deref(),
            Some("Docs"),
            "the folder, readable"
        );
        let titled = parse(
            b"---\ntitle: Set up goals\nsidebar_label: Goals\n---\n# Heading",
            "goals.markdown",
        )
        .unwrap();
        assert_eq!(titled.title, "Set up goals", "a real title wins");
        assert_eq!(titled.id, "goals");
        assert_eq!(titled.category, None, "no folder, no category");
        assert!(!is_article_file(".md"));
        assert!(is_article_file("a.markdown"));
        assert!(!is_article_file("a.txt"));
    }

    #[test]
    fn links_to_other_articles_are_recorded_with_rapport_urls() {
        let article = parse(
            b"See [fix](../Outlook/fix%20it.md#step-2), [goals](goals), [jekyll]({{site.baseurl}}/article/reset-password/), [hugo]({{< ref \"billing/refunds.md\" >}}), [web](https://example.com/a.md), [img](pic.png).",
            "Exchange/mail/start.md",
        )
        .unwrap();
        let targets: Vec<_> = article.links.iter().map(|l| l.target.clone()).collect();
        assert_eq!(
            targets,
            [
                LinkTarget::Path("Exchange/Outlook/fix it".into()),
                LinkTarget::Path("Exchange/mail/goals".into()),
                LinkTarget::Site("article/reset-password".into()),
                LinkTarget::Path("Exchange/mail/billing/refunds".into()),
            ]
        );
        assert!(
            article
                .html
                .contains(r#"href="/articles/Exchange/Outlook/fix%20it#step-2""#),
            "{}",
            article.html
        );
        assert!(article.html.contains(r#"href="https://example.com/a.md""#));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Markdown-ish text: headings, front matter fences, HTML, templates.
    fn markdownish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("---\n".to_string()),
            Just("+++\n".to_string()),
            Just("# ".to_string()),
            Just("## ".to_string()),
            Just("\n".to_string()),
            Just("title: x\n".to_string()),
            Just("<script>alert(1)</script>".to_string()),
            Just("{% raw %}{{ x }}".to_string()),
            Just("> [!NOTE]\n".to_string()),
            Just("> [!div class=\"nextstepaction\"]\n".to_string()),
            Just("[!INCLUDE [x](../x.md)]".to_string()),
            Just("[!VIDEO https://x.org/v]".to_string()),
            Just(":::tip Title\n".to_string()),
            Just(":::image alt-text=\"a\":::".to_string()),
            Just(":::\n".to_string()),
            Just("| a | b |\n|:--|--:|\n".to_string()),
            Just("```\n".to_string()),
            Just("import X from 'y'\n".to_string()),
            "[a-zA-Z0-9 ,.!?éü#*_\\-\\[\\]()<>:\"']{0,20}",
            any::<String>(),
        ];
        prop::collection::vec(piece, 0..30).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn parsing_never_panics_and_keeps_its_guarantees(text in markdownish()) {
            if let Ok(article) = parse(text.as_bytes(), "fuzz/case.md") {
                let anchors: Vec<_> = article.sections.iter().filter_map(|s| s.anchor.clone()).collect();
                let unique: std::collections::HashSet<_> = anchors.iter().collect();
                prop_assert_eq!(anchors.len(), unique.len(), "anchors are unique");
                prop_assert!(!article.html.to_lowercase().contains("<script"));
                // Outside code and raw HTML (which may hold anything as
                // text), no DocFX marker is shown as written.
                if !text.contains('<') {
                    let code = regex::Regex::new(r"(?s)<pre>.*?</pre>|<code>.*?</code>").unwrap();
                    let prose = code.replace_all(&article.html, "");
                    for marker in ["nextstepaction", "[!NOTE]", "[!TIP]", "[!div", "[!VIDEO", "[!INCLUDE"] {
                        prop_assert!(!prose.contains(marker), "{} in {}", marker, prose);
                    }
                }
                prop_assert!(!article.title.is_empty());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
            let _ = parse(&bytes, "fuzz/bytes.md");
        }
    }
}
