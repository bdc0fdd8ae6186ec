//! Article parsing: one Markdown file with front matter → an [`Article`] with
//! metadata, flat [`Section`]s of plain text and sanitized HTML.
//!
//! Parsing is pure (bytes in, article out) so the indexer, `rapport check` and
//! the tests all share exactly the same rules.

mod front_matter;
mod markdown;
mod slug;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use markdown::{Section, sanitize_html};
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
    /// `internal` and its common spellings hide an article from the public.
    /// Any other value is public: other generators use `audience` for their own
    /// purposes (DocFX writes `audience: itpro`), and those help centers must
    /// index as they are.
    pub fn from_front_matter(value: Option<&str>) -> Audience {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("internal" | "agent" | "agents" | "staff" | "private" | "employees") => {
                Audience::Internal
            }
            _ => Audience::Public,
        }
    }

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
    pub locale: String,
    pub updated: Option<String>,
    /// The Markdown body as written (front matter removed).
    pub markdown: String,
    /// Sanitized HTML, safe to embed in a page.
    pub html: String,
    pub sections: Vec<Section>,
    /// blake3 of the file's bytes; the index stores it to skip unchanged files.
    pub content_hash: String,
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
/// articles folder, without `.md`.
pub fn default_id(relative_path: &str) -> String {
    relative_path
        .strip_suffix(".md")
        .unwrap_or(relative_path)
        .to_string()
}

/// Reads and parses one file. `relative_path` is `/`-separated.
pub fn load(path: &Path, relative_path: &str, max_bytes: u64) -> Result<Article, ArticleError> {
    parse(&read_bounded(path, max_bytes)?, relative_path)
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

/// Parses an article from its bytes.
pub fn parse(bytes: &[u8], relative_path: &str) -> Result<Article, ArticleError> {
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
    let audience = Audience::from_front_matter(meta.audience.as_deref());

    let rendered = markdown::render(body, meta.title.as_deref());
    let title = meta
        .title
        .or(rendered.first_h1.filter(|h1| !h1.trim().is_empty()))
        .unwrap_or_else(|| file_stem(relative_path));
    let mut sections = rendered.sections;
    if let Some(intro) = sections.first_mut().filter(|s| s.anchor.is_none()) {
        intro.heading.clone_from(&title);
    }

    Ok(Article {
        id,
        path: relative_path.to_string(),
        title,
        summary: meta.summary.unwrap_or_default(),
        category: meta.category,
        tags: meta.tags,
        products: meta.products,
        plans: meta.plans,
        audience,
        locale: meta.locale.unwrap_or_else(|| "en".to_string()),
        updated: meta.updated,
        markdown: body.to_string(),
        html: rendered.html,
        sections,
        content_hash: content_hash(bytes),
    })
}

fn file_stem(relative_path: &str) -> String {
    let name = relative_path.rsplit('/').next().unwrap_or(relative_path);
    name.strip_suffix(".md").unwrap_or(name).to_string()
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
        let docfx = parse(b"---\naudience: itpro\n---\n", "a.md").unwrap();
        assert_eq!(docfx.audience, Audience::Public);
        let staff = parse(b"---\naudience: Agents\n---\n", "a.md").unwrap();
        assert_eq!(staff.audience, Audience::Internal);
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
                prop_assert!(!article.title.is_empty());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
            let _ = parse(&bytes, "fuzz/bytes.md");
        }
    }
}
