//! DocFX includes: `[!INCLUDE [title](path)]` is replaced by the file it
//! names before the Markdown is parsed, as DocFX does when it builds the site.
//!
//! The path is relative to the including file. Included files may include
//! others ([`MAX_INCLUDE_DEPTH`] levels), cycles are cut, the included file's
//! own front matter is dropped. What an include may read is the security
//! boundary: only files inside the articles folder (checked on the real path,
//! symlinks resolved), each at most as large as an article, and never an
//! internal file into a public article. An include that can't be read is left
//! out with a note; the article itself is still indexed.
//!
//! Reading goes through [`IncludeResolver`], so parsing stays testable
//! without a folder: [`NoIncludes`] resolves nothing, [`FolderIncludes`]
//! reads the articles folder.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::directives::{Fences, container_prefix, continuation_prefix};
use super::markdown::normalize_path;
use super::{ArticleError, ArticleRules, Audience, front_matter};

/// Includes inside included files are followed this many levels deep.
pub const MAX_INCLUDE_DEPTH: usize = 5;
/// Each include costs at least this much of the budget, so a file of
/// thousands of includes of an empty file can't multiply the work.
const MIN_INCLUDE_COST: usize = 64;
/// Distinct notes kept per article; the rest are counted.
const MAX_NOTES: usize = 20;

/// `[!INCLUDE [title](path)]`, with or without a space before `[title]`.
static INCLUDE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\[!INCLUDE\s*\[[^\]]*\]\(\s*([^)]*?)\s*\)\]").expect("static regex is valid")
});

/// Why an included file was left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncludeError {
    #[error("not found")]
    Missing,
    #[error("outside the articles folder (refused)")]
    Outside,
    #[error("is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("not a text file")]
    NotText,
    #[error("cannot read: {0}")]
    Unreadable(String),
    /// Parsed from bytes alone ([`NoIncludes`]): there is no folder to read.
    #[error("not resolved (parsed without its articles folder)")]
    NoFolder,
}

/// Reads included files.
pub trait IncludeResolver {
    /// The text of the file at `path`: relative to the articles folder,
    /// `/`-separated, without `.` or `..` (already checked not to climb out).
    fn read(&self, path: &str) -> Result<String, IncludeError>;

    /// Bytes of included text one article may take in, all includes together.
    fn budget(&self) -> usize;
}

/// Resolves nothing: every include is left out. For parsing bytes alone.
pub struct NoIncludes;

impl IncludeResolver for NoIncludes {
    fn read(&self, _path: &str) -> Result<String, IncludeError> {
        Err(IncludeError::NoFolder)
    }

    fn budget(&self) -> usize {
        0
    }
}

/// Reads includes from the articles folder.
#[derive(Debug, Clone)]
pub struct FolderIncludes {
    /// The articles folder, canonical, so a resolved path can be compared with it.
    root: PathBuf,
    max_bytes: u64,
}

impl FolderIncludes {
    /// Includes from `root`, each at most `max_bytes` (the article limit);
    /// all of one article's includes together at most as much again.
    pub fn new(root: &Path, max_bytes: u64) -> FolderIncludes {
        FolderIncludes {
            root: std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()),
            max_bytes,
        }
    }
}

impl IncludeResolver for FolderIncludes {
    fn read(&self, path: &str) -> Result<String, IncludeError> {
        // `path` has no `..` and no leading `/`, so the joined path is under
        // the root as written; a symlink on the way may still lead out.
        let real = match std::fs::canonicalize(self.root.join(path)) {
            Ok(real) => real,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(IncludeError::Missing);
            }
            Err(error) => return Err(IncludeError::Unreadable(error.to_string())),
        };
        if !real.starts_with(&self.root) {
            return Err(IncludeError::Outside);
        }
        if !real.is_file() {
            return Err(IncludeError::Missing);
        }
        let bytes = super::read_bounded(&real, self.max_bytes).map_err(|error| match error {
            ArticleError::TooLarge { size, limit } => IncludeError::TooLarge { size, limit },
            ArticleError::Io(error) if error.kind() == std::io::ErrorKind::NotFound => {
                IncludeError::Missing
            }
            other => IncludeError::Unreadable(other.to_string()),
        })?;
        if bytes.contains(&0) {
            return Err(IncludeError::NotText);
        }
        String::from_utf8(bytes).map_err(|_| IncludeError::NotText)
    }

    fn budget(&self) -> usize {
        usize::try_from(self.max_bytes).unwrap_or(usize::MAX)
    }
}

/// The body with its includes in place.
#[derive(Debug, Default)]
pub struct Expanded {
    pub text: String,
    /// Every file read for an include, first read first (missing ones too:
    /// creating one must re-parse the article), relative to the articles folder.
    pub includes: Vec<String>,
    /// What was left out and why, for `rapport check`.
    pub notes: Vec<String>,
    /// A digest of what each of `includes` held, in the same order.
    digests: Vec<String>,
}

impl Expanded {
    /// The article's content hash: its own bytes' hash, and when it has
    /// includes, what they held. Equal hashes mean an equal article.
    pub fn content_hash(&self, file_hash: &str) -> String {
        fold_hash(file_hash, self.includes.iter().zip(&self.digests))
    }
}

/// The content hash of an article whose bytes hash to `file_hash` and which
/// included `includes` when it was parsed, from what those files hold now:
/// equal to the stored hash exactly when parsing again would change nothing.
pub fn current_hash(
    file_hash: &str,
    includes: &[String],
    resolver: &dyn IncludeResolver,
) -> String {
    let digests: Vec<String> = includes
        .iter()
        .map(|path| digest(&resolver.read(path)))
        .collect();
    fold_hash(file_hash, includes.iter().zip(&digests))
}

fn fold_hash<'a>(
    file_hash: &str,
    includes: impl Iterator<Item = (&'a String, &'a String)>,
) -> String {
    let mut hasher: Option<blake3::Hasher> = None;
    for (path, digest) in includes {
        let hasher = hasher.get_or_insert_with(|| {
            let mut hasher = blake3::Hasher::new();
            hasher.update(b"rapport includes 1\0");
            hasher.update(file_hash.as_bytes());
            hasher
        });
        for part in [path.as_str(), "\0", digest.as_str(), "\n"] {
            hasher.update(part.as_bytes());
        }
    }
    match hasher {
        Some(hasher) => hasher.finalize().to_hex().to_string(),
        None => file_hash.to_string(),
    }
}

/// What a read produced, for the content hash: its text's hash or why it failed.
fn digest(read: &Result<String, IncludeError>) -> String {
    match read {
        Ok(text) => blake3::hash(text.as_bytes()).to_hex().to_string(),
        Err(error) => format!("error: {error}"),
    }
}

/// Replaces the includes in `body` (of the file at `article_path`, whose
/// readers are `audience`) with the files they name.
pub fn expand(
    body: &str,
    article_path: &str,
    audience: Audience,
    rules: &ArticleRules,
    resolver: &dyn IncludeResolver,
) -> Expanded {
    if !has_include(body) {
        return Expanded {
            text: body.to_string(),
            ..Expanded::default()
        };
    }
    let mut expander = Expander {
        resolver,
        rules,
        audience,
        reads: HashMap::new(),
        budget_left: resolver.budget(),
        stack: vec![article_path.to_string()],
        includes: Vec::new(),
        notes: Vec::new(),
        seen_notes: HashSet::new(),
        notes_left_out: 0,
    };
    let mut text = String::with_capacity(body.len());
    expander.expand_into(body, article_path, &mut text);
    if expander.notes_left_out > 0 {
        expander.notes.push(format!(
            "{} more include notes not shown",
            expander.notes_left_out
        ));
    }
    let digests = expander
        .includes
        .iter()
        .map(|path| expander.reads.get(path).map(digest).unwrap_or_default())
        .collect();
    Expanded {
        text,
        includes: expander.includes,
        notes: expander.notes,
        digests,
    }
}

/// A cheap test before the regex: most files have no include.
fn has_include(text: &str) -> bool {
    text.contains("[!") && INCLUDE.is_match(text)
}

struct Expander<'a> {
    resolver: &'a dyn IncludeResolver,
    rules: &'a ArticleRules,
    audience: Audience,
    /// Each file is read once per article, however often it is included.
    reads: HashMap<String, Result<String, IncludeError>>,
    budget_left: usize,
    /// The files being expanded, the article first: a file already on the
    /// stack is a cycle.
    stack: Vec<String>,
    includes: Vec<String>,
    notes: Vec<String>,
    seen_notes: HashSet<String>,
    notes_left_out: usize,
}

impl Expander<'_> {
    /// Appends `text` (of the file at `file`) to `out` with its includes in
    /// place. Block includes (alone on their line, maybe in a quote or list
    /// item) take the line's container prefix on every line; inline ones
    /// become one line.
    fn expand_into(&mut self, text: &str, file: &str, out: &mut String) {
        let mut fences = Fences::default();
        for line in text.split_inclusive('\n') {
            if fences.is_code(line) || !has_include(line) {
                out.push_str(line);
                continue;
            }
            let body = line.trim_end_matches(['\n', '\r']);
            let prefix_len = container_prefix(body);
            let (prefix, rest) = body.split_at(prefix_len);
            let block = INCLUDE
                .find(rest)
                .filter(|m| m.start() == 0 && rest[m.end()..].trim().is_empty());
            if let Some(block) = block {
                let target = INCLUDE
                    .captures(block.as_str())
                    .and_then(|c| c.get(1))
                    .map_or("", |m| m.as_str());
                if let Some(fragment) = self.fragment(file, target) {
                    let continuation = continuation_prefix(prefix);
                    for (index, fragment_line) in fragment.lines().enumerate() {
                        out.push_str(if index == 0 { prefix } else { &continuation });
                        out.push_str(fragment_line);
                        out.push('\n');
                    }
                }
                continue;
            }
            let mut replaced = String::with_capacity(line.len());
            let mut cursor = 0;
            for captures in INCLUDE.captures_iter(line) {
                let (Some(whole), Some(target)) = (captures.get(0), captures.get(1)) else {
                    continue;
                };
                replaced.push_str(&line[cursor..whole.start()]);
                if let Some(fragment) = self.fragment(file, target.as_str()) {
                    let inline: Vec<&str> = fragment.split_whitespace().collect();
                    replaced.push_str(&inline.join(" "));
                }
                cursor = whole.end();
            }
            replaced.push_str(&line[cursor..]);
            out.push_str(&replaced);
        }
    }

    /// The text of the file `target` names (relative to the file `from`),
    /// its own includes in place, or `None` with a note.
    fn fragment(&mut self, from: &str, target: &str) -> Option<String> {
        let shown = target.trim_matches(['<', '>']);
        let Some(path) = include_path(from, shown) else {
            self.note(format!(
                "include {shown}: outside the articles folder (refused)"
            ));
            return None;
        };
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            self.note(format!(
                "include {path}: includes nest more than {MAX_INCLUDE_DEPTH} levels deep (left out)"
            ));
            return None;
        }
        if self.stack.contains(&path) {
            let cycle = self.stack.join(" → ");
            self.note(format!(
                "include {path}: includes itself ({cycle} → {path}); left out"
            ));
            return None;
        }
        if !self.reads.contains_key(&path) {
            let read = self.resolver.read(&path);
            self.includes.push(path.clone());
            self.reads.insert(path.clone(), read);
        }
        let source = match self.reads.get(&path) {
            Some(Ok(source)) => source.clone(),
            Some(Err(error)) => {
                let note = format!("include {path}: {error}");
                self.note(note);
                return None;
            }
            None => return None,
        };
        let body = match front_matter::split_raw(&source) {
            Ok((fields, body)) => {
                if self.audience == Audience::Public
                    && self.rules.access(&fields).audience != Audience::Public
                {
                    self.note(format!(
                        "include {path}: internal, and this article is public (left out)"
                    ));
                    return None;
                }
                body
            }
            // Who may read it is unknown: only an internal article takes it.
            Err(error) if self.audience == Audience::Public => {
                self.note(format!(
                    "include {path}: {error}; a public article can't include it (left out)"
                ));
                return None;
            }
            Err(_) => front_matter::skip(&source),
        };
        let cost = body.len().max(MIN_INCLUDE_COST);
        if cost > self.budget_left {
            self.note(format!(
                "include {path}: includes add more than {} bytes to this article (left out)",
                self.resolver.budget()
            ));
            return None;
        }
        self.budget_left -= cost;
        let mut text = String::with_capacity(body.len());
        self.stack.push(path.clone());
        self.expand_into(body, &path, &mut text);
        self.stack.pop();
        Some(text)
    }

    fn note(&mut self, note: String) {
        if self.seen_notes.contains(&note) {
            return;
        }
        if self.notes.len() >= MAX_NOTES {
            self.notes_left_out += 1;
            return;
        }
        self.seen_notes.insert(note.clone());
        self.notes.push(note);
    }
}

/// The file an include names, relative to the articles folder: relative to
/// the including file, or to the folder with `~/` or `/`. `None` when it
/// climbs out of the folder: such a path is never read.
fn include_path(from: &str, target: &str) -> Option<String> {
    let target = target.split_whitespace().next().unwrap_or_default();
    let target = target.split(['#', '?']).next().unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(target)
        .decode_utf8()
        .ok()?
        .replace('\\', "/");
    if decoded.contains('\0') || decoded.contains(':') {
        return None; // `C:/…`, `file:…`, `https:…`: not a file of the folder
    }
    let (folder, relative) = match decoded
        .strip_prefix("~/")
        .or_else(|| decoded.strip_prefix('/'))
    {
        Some(rooted) => ("", rooted),
        None => (
            from.rsplit_once('/').map_or("", |(folder, _)| folder),
            decoded.as_str(),
        ),
    };
    normalize_path(folder, relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files in memory, as the folder would hold them.
    struct Files(Vec<(&'static str, &'static str)>);

    impl IncludeResolver for Files {
        fn read(&self, path: &str) -> Result<String, IncludeError> {
            self.0
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, text)| text.to_string())
                .ok_or(IncludeError::Missing)
        }

        fn budget(&self) -> usize {
            10_000
        }
    }

    fn expand_public(body: &str, path: &str, files: &Files) -> Expanded {
        expand(
            body,
            path,
            Audience::Public,
            &ArticleRules::default(),
            files,
        )
    }

    #[test]
    fn block_includes_take_the_line_s_quote_or_list_prefix() {
        let files = Files(vec![(
            "includes/note.md",
            "---\nms.topic: include\n---\n> [!NOTE]\n> Back up first.\n",
        )]);
        let body = "Intro.\n\n[!INCLUDE [note](../includes/note.md)]\n\n1. Step\n\n   [!INCLUDE[note](../includes/note.md)]\n\n> [!INCLUDE [n](../includes/note.md)]\n";
        let expanded = expand_public(body, "docs/a.md", &files);
        assert_eq!(
            expanded.text,
            "Intro.\n\n> [!NOTE]\n> Back up first.\n\n1. Step\n\n   > [!NOTE]\n   > Back up first.\n\n> > [!NOTE]\n> > Back up first.\n"
        );
        assert_eq!(expanded.includes, ["includes/note.md"]);
        assert!(expanded.notes.is_empty(), "{:?}", expanded.notes);
        assert!(!expanded.text.contains("ms.topic"), "front matter dropped");
    }

    #[test]
    fn list_marker_prefixes_continue_as_spaces() {
        let files = Files(vec![("b.md", "one\ntwo\n")]);
        let expanded = expand_public("- [!INCLUDE [b](b.md)]\n", "a.md", &files);
        assert_eq!(expanded.text, "- one\n  two\n");
    }

    #[test]
    fn inline_includes_become_one_line() {
        let files = Files(vec![("inc/name.md", "Quokka\nMail  app\n")]);
        let expanded = expand_public("Open [!INCLUDE [n](inc/name.md)] now.\n", "a.md", &files);
        assert_eq!(expanded.text, "Open Quokka Mail app now.\n");
    }

    #[test]
    fn nested_includes_resolve_relative_to_their_own_file() {
        let files = Files(vec![
            (
                "inc/outer.md",
                "Outer.\n\n[!INCLUDE [i](deeper/inner.md)]\n",
            ),
            ("inc/deeper/inner.md", "Inner.\n"),
        ]);
        let expanded = expand_public("[!INCLUDE [o](inc/outer.md)]\n", "a.md", &files);
        assert_eq!(expanded.text, "Outer.\n\nInner.\n");
        assert_eq!(expanded.includes, ["inc/outer.md", "inc/deeper/inner.md"]);
    }

    #[test]
    fn missing_outside_cyclic_and_too_deep_includes_are_notes() {
        let files = Files(vec![
            ("loop/a.md", "A.\n[!INCLUDE [b](b.md)]\n"),
            ("loop/b.md", "B.\n[!INCLUDE [a](a.md)]\n"),
            ("d/1.md", "[!INCLUDE [x](2.md)]\n"),
            ("d/2.md", "[!INCLUDE [x](3.md)]\n"),
            ("d/3.md", "[!INCLUDE [x](4.md)]\n"),
            ("d/4.md", "[!INCLUDE [x](5.md)]\n"),
            ("d/5.md", "five\n[!INCLUDE [x](6.md)]\n"),
            ("d/6.md", "six\n"),
        ]);
        let body = "[!INCLUDE [m](gone.md)]\n[!INCLUDE [p](../../../etc/passwd)]\n[!INCLUDE [l](loop/a.md)]\n[!INCLUDE [d](d/1.md)]\nEnd.\n";
        let expanded = expand_public(body, "a.md", &files);
        assert_eq!(expanded.text, "A.\nB.\nfive\nEnd.\n");
        assert_eq!(
            expanded.notes,
            [
                "include gone.md: not found",
                "include ../../../etc/passwd: outside the articles folder (refused)",
                "include loop/a.md: includes itself (a.md → loop/a.md → loop/b.md → loop/a.md); left out",
                "include d/6.md: includes nest more than 5 levels deep (left out)",
            ]
        );
        assert!(
            !expanded.includes.iter().any(|p| p.contains("passwd")),
            "never read: {:?}",
            expanded.includes
        );
        assert!(expanded.includes.contains(&"gone.md".to_string()));
    }

    #[test]
    fn internal_files_never_go_into_public_articles() {
        let files = Files(vec![
            (
                "secret.md",
                "---\naudience: internal\n---\nThe vault code.\n",
            ),
            ("broken.md", "---\naudience: [\n---\nUnknown readers.\n"),
        ]);
        let body = "[!INCLUDE [s](secret.md)]\n[!INCLUDE [b](broken.md)]\n";
        let public = expand_public(body, "a.md", &files);
        assert_eq!(public.text, "");
        assert_eq!(public.notes.len(), 2, "{:?}", public.notes);
        assert!(public.notes[0].contains("internal"), "{:?}", public.notes);
        let internal = expand(
            body,
            "a.md",
            Audience::Internal,
            &ArticleRules::default(),
            &files,
        );
        assert_eq!(internal.text, "The vault code.\nUnknown readers.\n");
    }

    #[test]
    fn includes_in_code_stay_as_written() {
        let files = Files(vec![("b.md", "B\n")]);
        let body = "```md\n[!INCLUDE [b](b.md)]\n```\n";
        assert_eq!(expand_public(body, "a.md", &files).text, body);
    }

    #[test]
    fn the_budget_bounds_what_includes_add() {
        let files = Files(vec![("big.md", "x")]);
        let body = "[!INCLUDE [b](big.md)]\n".repeat(500);
        let expanded = expand_public(&body, "a.md", &files);
        assert_eq!(expanded.text.lines().count(), 10_000 / MIN_INCLUDE_COST);
        assert_eq!(expanded.notes.len(), 1, "{:?}", expanded.notes);
    }

    #[test]
    fn the_content_hash_changes_with_any_included_file() {
        let before = Files(vec![("b.md", "B\n")]);
        let after = Files(vec![("b.md", "B, edited\n")]);
        let expanded = expand_public(
            "[!INCLUDE [b](b.md)]\n[!INCLUDE [c](c.md)]\n",
            "a.md",
            &before,
        );
        let stored = expanded.content_hash("filehash");
        assert_ne!(stored, "filehash");
        assert_eq!(
            current_hash("filehash", &expanded.includes, &before),
            stored
        );
        assert_ne!(current_hash("filehash", &expanded.includes, &after), stored);
        let created = Files(vec![("b.md", "B\n"), ("c.md", "C\n")]);
        assert_ne!(
            current_hash("filehash", &expanded.includes, &created),
            stored
        );
        let plain = expand_public("No includes.\n", "a.md", &before);
        assert_eq!(plain.content_hash("filehash"), "filehash");
    }

    #[test]
    fn paths_are_relative_rooted_or_refused() {
        assert_eq!(
            include_path("a/b/c.md", "../x.md").as_deref(),
            Some("a/x.md")
        );
        assert_eq!(
            include_path("a/b/c.md", "~/inc/x.md").as_deref(),
            Some("inc/x.md")
        );
        assert_eq!(
            include_path("a/c.md", "/inc/x.md").as_deref(),
            Some("inc/x.md")
        );
        assert_eq!(
            include_path("a/c.md", "my%20file.md").as_deref(),
            Some("a/my file.md")
        );
        assert_eq!(include_path("a/c.md", "..\\x.md").as_deref(), Some("x.md"));
        for refused in [
            "../../x.md",
            "~/../x.md",
            "C:/x.md",
            "file:///etc/passwd",
            "..",
        ] {
            assert_eq!(include_path("a/c.md", refused), None, "{refused}");
        }
    }

    #[test]
    fn loading_a_file_reads_its_includes_from_the_articles_folder() {
        let root = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "includes/registry.md",
            "---\nms.topic: include\n---\n> [!IMPORTANT]\n> Back up the quokka registry.\n",
        );
        write(
            "docs/fix.md",
            "# Fix\n\n[!INCLUDE [r](../includes/registry.md)]\n\n[!INCLUDE [g](../includes/gone.md)]\n\n[!INCLUDE [p](../../../etc/passwd)]\n",
        );
        let path = root.path().join("docs/fix.md");
        let checked =
            super::super::load_checked(&path, "docs/fix.md", 1024, &ArticleRules::default())
                .unwrap();
        let article = &checked.article;
        assert!(
            article.html.contains("callout-important") && article.html.contains("quokka registry"),
            "{}",
            article.html
        );
        assert!(article.body_text().contains("Back up the quokka registry."));
        assert_eq!(
            article.includes,
            ["includes/registry.md", "includes/gone.md"]
        );
        assert_eq!(
            checked.notes,
            [
                "include includes/gone.md: not found",
                "include ../../../etc/passwd: outside the articles folder (refused)",
            ]
        );
        let bytes = std::fs::read(&path).unwrap();
        assert_ne!(article.content_hash, super::super::content_hash(&bytes));
        let without_folder =
            super::super::parse_checked(&bytes, "docs/fix.md", &ArticleRules::default()).unwrap();
        assert!(!without_folder.article.body_text().contains("quokka"));
        assert!(!without_folder.article.html.contains("INCLUDE"));
    }

    #[test]
    fn the_folder_resolver_stays_inside_the_folder() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.md"), "secret").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("inc")).unwrap();
        std::fs::write(root.path().join("inc/ok.md"), "ok").unwrap();
        std::fs::write(root.path().join("inc/big.md"), "x".repeat(100)).unwrap();
        std::fs::write(root.path().join("inc/bin.md"), b"a\0b").unwrap();
        let resolver = FolderIncludes::new(root.path(), 50);
        assert_eq!(resolver.read("inc/ok.md").as_deref(), Ok("ok"));
        assert_eq!(resolver.read("inc/none.md"), Err(IncludeError::Missing));
        assert_eq!(resolver.read("inc"), Err(IncludeError::Missing));
        assert!(matches!(
            resolver.read("inc/big.md"),
            Err(IncludeError::TooLarge {
                size: 100,
                limit: 50
            })
        ));
        assert_eq!(resolver.read("inc/bin.md"), Err(IncludeError::NotText));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(
                outside.path().join("secret.md"),
                root.path().join("inc/link.md"),
            )
            .unwrap();
            std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
            assert_eq!(resolver.read("inc/link.md"), Err(IncludeError::Outside));
            assert_eq!(resolver.read("out/secret.md"), Err(IncludeError::Outside));
        }
    }
}
