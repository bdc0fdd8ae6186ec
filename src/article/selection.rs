//! Which files in the articles folder are articles. One rule for the
//! indexer's start-up reconcile, the watcher's run-time changes, `rapport
//! check` and the measurement programs, so they can never disagree.
//!
//! A help center kept in a repository holds Markdown that nobody should find
//! in the portal: the repository's own README and licence, DocFX include
//! fragments, drafts. Those are skipped by default ([`SkipReason`]), and the
//! config's `exclude` and `include` (gitignore syntax) adjust the defaults.

use std::path::{Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::is_article_file;

/// Why a Markdown file is not an article. Shown by `rapport check`, one line
/// per file, so the wording says what the file is, not what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// README, LICENSE, CONTRIBUTING… at the top of the folder: the
    /// repository's files, not the help center's.
    RepositoryFile,
    /// Under `includes/`, `_includes/` or `partials/`: a fragment that other
    /// articles pull in (DocFX `[!INCLUDE]`, Jekyll `{% include %}`).
    IncludeFragment,
    /// A file or folder named `_…`: drafts, partials, generator metadata
    /// (Hugo's `_index.md` is a section page; its title names the category).
    Underscore,
    /// Matched a config `exclude` pattern (as written).
    Excluded(String),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::RepositoryFile => f.write_str("repository file"),
            SkipReason::IncludeFragment => f.write_str("include fragment"),
            SkipReason::Underscore => f.write_str("name starts with '_'"),
            SkipReason::Excluded(pattern) => write!(f, "excluded by config pattern {pattern:?}"),
        }
    }
}

/// A pattern that isn't valid gitignore syntax.
#[derive(Debug, thiserror::Error)]
#[error("{pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

/// Names (without extension, any case) of repository files that are never
/// articles when they sit at the top of the articles folder. `SUPPORT` is
/// left out on purpose: in a help center it may well be an article.
const REPOSITORY_FILES: &[&str] = &[
    "readme",
    "license",
    "licence",
    "license-code",
    "copying",
    "notice",
    "security",
    "contributing",
    "code_of_conduct",
    "code-of-conduct",
    "changelog",
    "changes",
    "history",
    "authors",
    "contributors",
    "maintainers",
    "governance",
    "thirdpartynotices",
    "third-party-notices",
    "pull_request_template",
    "issue_template",
];

/// Folders whose Markdown is pulled into other pages, at any depth.
const FRAGMENT_FOLDERS: &[&str] = &["includes", "_includes", "partials"];

/// How a list of patterns decided a path.
enum PatternMatch {
    /// This pattern (as written) matched.
    Matched(String),
    /// A `!pattern` matched last: the list says no.
    Negated,
}

/// The config's patterns, compiled once.
#[derive(Debug, Clone)]
struct Patterns {
    /// As written, for the fingerprint and for messages.
    written: Vec<String>,
    matcher: Gitignore,
}

impl Patterns {
    fn new(written: &[String]) -> Result<Patterns, PatternError> {
        // Relative paths are matched, so the root only has to be one that
        // strips nothing.
        let mut builder = GitignoreBuilder::new(".");
        // A typo such as `[abc` is an error at start, not a literal.
        builder.allow_unclosed_class(false);
        for pattern in written {
            builder
                .add_line(None, pattern)
                .map_err(|error| PatternError {
                    pattern: pattern.clone(),
                    reason: error.to_string(),
                })?;
        }
        let matcher = builder.build().map_err(|error| PatternError {
            pattern: written.join(", "),
            reason: error.to_string(),
        })?;
        Ok(Patterns {
            written: written.to_vec(),
            matcher,
        })
    }

    /// Whether a pattern matches `relative` (a file) or one of its folders;
    /// the last matching line decides, as in a `.gitignore`.
    fn decide(&self, relative: &str) -> Option<PatternMatch> {
        let path = Path::new(relative);
        if path.has_root() {
            // Never the case for paths under the articles folder; the
            // matcher would panic on one.
            return None;
        }
        match self.matcher.matched_path_or_any_parents(path, false) {
            Match::None => None,
            Match::Ignore(glob) => Some(PatternMatch::Matched(glob.original().to_string())),
            Match::Whitelist(_) => Some(PatternMatch::Negated),
        }
    }
}

/// Which Markdown files are articles: the built-in skips ([`SkipReason`]),
/// plus the config's `exclude` patterns, minus its `include` patterns.
/// `exclude` wins over `include`, which wins over the built-in skips.
#[derive(Debug, Clone)]
pub struct Selection {
    include: Patterns,
    exclude: Patterns,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            include: Patterns {
                written: Vec::new(),
                matcher: Gitignore::empty(),
            },
            exclude: Patterns {
                written: Vec::new(),
                matcher: Gitignore::empty(),
            },
        }
    }
}

/// Two selections are equal when their patterns are written the same.
impl PartialEq for Selection {
    fn eq(&self, other: &Self) -> bool {
        self.include.written == other.include.written
            && self.exclude.written == other.exclude.written
    }
}

impl Eq for Selection {}

impl Selection {
    /// The built-in skips adjusted by gitignore-style patterns, matched
    /// against paths relative to the articles folder (`/` anchors a pattern
    /// there, `dir/` matches a folder and everything in it, `!` re-admits).
    pub fn new(include: &[String], exclude: &[String]) -> Result<Selection, PatternError> {
        Ok(Selection {
            include: Patterns::new(include)?,
            exclude: Patterns::new(exclude)?,
        })
    }

    pub fn include_patterns(&self) -> &[String] {
        &self.include.written
    }

    pub fn exclude_patterns(&self) -> &[String] {
        &self.exclude.written
    }

    /// Why the Markdown file at `relative` (`/`-separated, under the articles
    /// folder) is not an article; `None` when it is one.
    pub fn skip_reason(&self, relative: &str) -> Option<SkipReason> {
        if let Some(PatternMatch::Matched(pattern)) = self.exclude.decide(relative) {
            return Some(SkipReason::Excluded(pattern));
        }
        if let Some(PatternMatch::Matched(_)) = self.include.decide(relative) {
            return None;
        }
        default_skip_reason(relative)
    }

    /// Whether the Markdown file at `relative` is an article.
    pub fn admits(&self, relative: &str) -> bool {
        self.skip_reason(relative).is_none()
    }
}

/// The built-in skips, without any config.
fn default_skip_reason(relative: &str) -> Option<SkipReason> {
    let segments: Vec<&str> = relative.split('/').collect();
    let (name, folders) = segments.split_last()?;
    if folders.is_empty() {
        let stem = super::strip_article_extension(name).unwrap_or(name);
        if REPOSITORY_FILES
            .iter()
            .any(|known| stem.eq_ignore_ascii_case(known))
        {
            return Some(SkipReason::RepositoryFile);
        }
    }
    if folders.iter().any(|folder| {
        FRAGMENT_FOLDERS
            .iter()
            .any(|fragments| folder.eq_ignore_ascii_case(fragments))
    }) {
        return Some(SkipReason::IncludeFragment);
    }
    if segments.iter().any(|segment| segment.starts_with('_')) {
        return Some(SkipReason::Underscore);
    }
    None
}

/// Editor temp files and hidden files (and folders: `.git`) are never looked
/// at, not even listed as skipped.
pub fn is_ignored_name(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name == "4913"
}

/// Files a generator keeps beside articles to describe a folder: Docusaurus
/// `_category_.json`/`.yml`, Hugo `_index.md`, DocFX `toc.yml`. They give
/// categories their titles (see [`super::categories`]).
pub fn is_category_metadata(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "_category_.json"
            | "_category_.yml"
            | "_category_.yaml"
            | "_index.md"
            | "_index.markdown"
            | "toc.yml"
            | "toc.yaml"
    )
}

/// Every entry under a folder, sorted by what the indexer does with it.
/// Paths are (relative to the articles folder, `/`-separated; as found).
#[derive(Debug, Default)]
pub struct Survey {
    /// Article files the selection admits, sorted so duplicate ids resolve
    /// the same way on every start (the first path wins). Symlinked files
    /// are included; the indexer checks where they lead.
    pub articles: Vec<(String, PathBuf)>,
    /// Markdown files that are not articles, with why.
    pub skipped: Vec<(String, PathBuf, SkipReason)>,
    /// FIFOs, sockets and devices: never read (a FIFO would block the reader).
    pub not_regular: Vec<(String, PathBuf, &'static str)>,
    /// Category metadata files ([`is_category_metadata`]), sorted.
    pub metadata: Vec<(String, PathBuf)>,
    /// Files that are not Markdown (images, YAML, `LICENSE`): counted only.
    pub other_files: usize,
    /// Parts of the folder that could not be read.
    pub errors: Vec<String>,
}

/// Walks `root` (`articles_dir` or a folder inside it) without following
/// folder links and without entering hidden folders, and sorts what it finds.
pub fn survey(articles_dir: &Path, root: &Path, selection: &Selection) -> Survey {
    let mut survey = Survey::default();
    let walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|entry| {
            entry.depth() == 0 || !is_ignored_name(&entry.file_name().to_string_lossy())
        });
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(%error, "cannot read part of the articles folder");
                survey.errors.push(error.to_string());
                continue;
            }
        };
        let file_type = entry.file_type();
        if file_type.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        let Some(relative) = relative_path(articles_dir, entry.path()) else {
            // Ids and URLs are text: such a file can't be served.
            if is_article_file(&name) {
                survey.errors.push(format!(
                    "{}: name is not valid UTF-8 (not read)",
                    entry.path().display()
                ));
            } else {
                survey.other_files += 1;
            }
            continue;
        };
        if !file_type.is_file() && !file_type.is_symlink() {
            survey
                .not_regular
                .push((relative, entry.into_path(), special_kind(file_type)));
            continue;
        }
        if is_category_metadata(&name) {
            survey
                .metadata
                .push((relative.clone(), entry.path().to_path_buf()));
        }
        if !is_article_file(&name) {
            survey.other_files += 1;
            continue;
        }
        match selection.skip_reason(&relative) {
            None => survey.articles.push((relative, entry.into_path())),
            Some(reason) => survey.skipped.push((relative, entry.into_path(), reason)),
        }
    }
    survey.articles.sort();
    survey.skipped.sort_by(|a, b| a.0.cmp(&b.0));
    survey.not_regular.sort_by(|a, b| a.0.cmp(&b.0));
    survey.metadata.sort();
    survey
}

/// `absolute` relative to `articles_dir`, `/`-separated (`None` outside it or
/// when not UTF-8).
pub fn relative_path(articles_dir: &Path, absolute: &Path) -> Option<String> {
    let relative = absolute.strip_prefix(articles_dir).ok()?;
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    Some(parts?.join("/"))
}

/// Every article file under `root` (see [`Survey::articles`]).
pub fn article_files(
    articles_dir: &Path,
    root: &Path,
    selection: &Selection,
) -> Vec<(String, PathBuf)> {
    survey(articles_dir, root, selection).articles
}

#[cfg(unix)]
fn special_kind(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: std::fs::FileType) -> &'static str {
    "special file"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn repository_files_are_skipped_only_at_the_top_and_in_any_case() {
        let selection = Selection::default();
        for path in [
            "README.md",
            "readme.markdown",
            "LICENSE.md",
            "SECURITY.md",
            "CONTRIBUTING.md",
            "CODE_OF_CONDUCT.md",
            "Changelog.mdx",
            "ThirdPartyNotices.md",
        ] {
            assert_eq!(
                selection.skip_reason(path),
                Some(SkipReason::RepositoryFile),
                "{path}"
            );
        }
        for path in [
            "docs/README.md",
            "support.md",
            "readme-first.md",
            "license/terms.md",
        ] {
            assert_eq!(selection.skip_reason(path), None, "{path}");
        }
    }

    #[test]
    fn include_fragments_and_underscore_names_are_skipped_at_any_depth() {
        let selection = Selection::default();
        let reason = |path| selection.skip_reason(path);
        assert_eq!(reason("includes/x.md"), Some(SkipReason::IncludeFragment));
        assert_eq!(
            reason("Exchange/Includes/note.md"),
            Some(SkipReason::IncludeFragment)
        );
        assert_eq!(reason("_includes/x.md"), Some(SkipReason::IncludeFragment));
        assert_eq!(
            reason("a/partials/b/c.md"),
            Some(SkipReason::IncludeFragment)
        );
        assert_eq!(reason("_draft.md"), Some(SkipReason::Underscore));
        assert_eq!(reason("docs/_index.md"), Some(SkipReason::Underscore));
        assert_eq!(reason("_drafts/a/b.md"), Some(SkipReason::Underscore));
        assert_eq!(reason("docs/includes.md"), None, "a file, not a folder");
        assert_eq!(reason("docs/my_notes.md"), None);
        assert_eq!(SkipReason::Underscore.to_string(), "name starts with '_'");
    }

    #[test]
    fn include_readmits_exclude_adds_and_exclude_wins() {
        let selection = Selection::new(
            &patterns(&["_drafts/**", "/README.md", "includes/keep.md"]),
            &patterns(&[
                "archive/",
                "*.old.md",
                "!archive/still-current.md",
                "_drafts/secret.md",
            ]),
        )
        .unwrap();
        let reason = |path| selection.skip_reason(path);
        assert_eq!(reason("_drafts/new.md"), None);
        assert_eq!(reason("README.md"), None);
        assert_eq!(reason("includes/keep.md"), None);
        assert_eq!(
            reason("includes/other.md"),
            Some(SkipReason::IncludeFragment)
        );
        assert_eq!(reason("_other/new.md"), Some(SkipReason::Underscore));
        assert_eq!(
            reason("docs/archive/2019/a.md"),
            Some(SkipReason::Excluded("archive/".into()))
        );
        assert_eq!(
            reason("a/b.old.md"),
            Some(SkipReason::Excluded("*.old.md".into()))
        );
        assert_eq!(reason("archive/still-current.md"), None, "a `!` re-admits");
        assert_eq!(
            reason("_drafts/secret.md"),
            Some(SkipReason::Excluded("_drafts/secret.md".into())),
            "exclude wins over include"
        );
        assert_eq!(
            reason("a/b.old.md").unwrap().to_string(),
            "excluded by config pattern \"*.old.md\""
        );
    }

    #[test]
    fn anchored_patterns_match_from_the_top_only() {
        let selection = Selection::new(&[], &patterns(&["/guides/"])).unwrap();
        assert!(!selection.admits("guides/a.md"));
        assert!(selection.admits("docs/guides/a.md"));
    }

    #[test]
    fn bad_patterns_are_errors_and_equality_is_by_pattern() {
        let error = Selection::new(&[], &patterns(&["a/[b"])).unwrap_err();
        assert!(error.to_string().contains("a/[b"), "{error}");
        let a = Selection::new(&patterns(&["x"]), &[]).unwrap();
        assert_eq!(a, Selection::new(&patterns(&["x"]), &[]).unwrap());
        assert_ne!(a, Selection::default());
    }

    #[test]
    fn editor_temp_files_are_ignored() {
        for name in [".hidden.md", "a.md~", ".a.md.swp", "4913", "x.tmp"] {
            assert!(is_ignored_name(name), "{name}");
        }
        assert!(!is_ignored_name("reset-password.md"));
    }

    #[test]
    fn the_survey_sorts_every_file_into_one_place() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        for (path, text) in [
            ("README.md", "# Repo"),
            ("docs/a.md", "# A"),
            ("docs/_category_.json", "{}"),
            ("docs/img.png", "png"),
            ("includes/x.md", "fragment"),
            (".git/config", "hidden"),
            ("docs/a.md~", "editor backup"),
        ] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let survey = survey(&root, &root, &Selection::default());
        let articles: Vec<&str> = survey.articles.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(articles, ["docs/a.md"]);
        let skipped: Vec<(&str, &SkipReason)> = survey
            .skipped
            .iter()
            .map(|(r, _, why)| (r.as_str(), why))
            .collect();
        assert_eq!(
            skipped.len(),
            2,
            "README and the fragment, not hidden files: {skipped:?}"
        );
        assert_eq!(survey.metadata.len(), 1);
        assert_eq!(survey.other_files, 2, "the picture and the metadata");
    }
}
