//! Categories from folders, as a reader would name them.
//!
//! A category that comes from a folder gets the folder's title: the one the
//! help center's generator gives it (Docusaurus `_category_.json`, Hugo
//! `_index.md`, DocFX `toc.yml`), else the folder name made readable
//! (`mail-flow` → `Mail flow`). The title *is* the category value, as a
//! `category:` written in front matter is, so filters, facets and the
//! portal's category pages need nothing else.
//!
//! When every article sits under one folder (`docs/`), that folder says
//! nothing: categories start below it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::rules::{CATEGORY_SEPARATOR, CategoryFromFolder};

/// Bumped whenever the way titles are derived changes, so an index built by
/// an older rapport is re-parsed (it is part of the rules' fingerprint).
pub const CATEGORY_TITLES_VERSION: u32 = 1;

/// What a help center's folders say about categories. Found in the folder by
/// [`FolderLayout::scan`]; never configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderLayout {
    /// The folders every article sits under (`docs`, `content/en`), left out
    /// of folder categories.
    pub common_root: Option<String>,
    /// Folder (relative path) → title from the generator's metadata.
    pub titles: BTreeMap<String, String>,
}

/// Something `rapport check` should mention about a metadata file that
/// could not be used: (relative path, why).
pub type LayoutNote = (String, String);

impl FolderLayout {
    /// The layout for these article paths (relative, `/`-separated) and
    /// metadata files ((relative, absolute), see
    /// [`super::selection::is_category_metadata`]). Metadata that can't be
    /// read is left out, with a note.
    pub fn scan<'a>(
        articles: impl IntoIterator<Item = &'a str>,
        metadata: &[(String, PathBuf)],
        max_bytes: u64,
    ) -> (FolderLayout, Vec<LayoutNote>) {
        let mut folders_in_use = BTreeSet::new();
        let mut common: Option<Vec<&str>> = None;
        for path in articles {
            let mut segments: Vec<&str> = path.split('/').collect();
            segments.pop();
            let mut folder = String::new();
            for segment in &segments {
                if !folder.is_empty() {
                    folder.push('/');
                }
                folder.push_str(segment);
                folders_in_use.insert(folder.clone());
            }
            common = Some(match common {
                None => segments,
                Some(mut shared) => {
                    let same = shared
                        .iter()
                        .zip(&segments)
                        .take_while(|(a, b)| a == b)
                        .count();
                    shared.truncate(same);
                    shared
                }
            });
        }
        let common_root = common
            .filter(|shared| !shared.is_empty())
            .map(|shared| shared.join("/"));

        let mut notes = Vec::new();
        // Lower rank wins: the folder's own metadata over a parent's toc.
        let mut found: BTreeMap<String, (u8, String)> = BTreeMap::new();
        let mut offer = |folder: String, rank: u8, title: String| {
            let Some(title) = clean_title(&title) else {
                return;
            };
            if !folders_in_use.contains(&folder) {
                return;
            }
            match found.get(&folder) {
                Some((held, _)) if *held <= rank => {}
                _ => {
                    found.insert(folder, (rank, title));
                }
            }
        };
        for (relative, absolute) in metadata {
            let (folder, name) = match relative.rsplit_once('/') {
                Some((folder, name)) => (folder.to_string(), name),
                None => (String::new(), relative.as_str()),
            };
            let text = match read_text(absolute, max_bytes) {
                Ok(text) => text,
                Err(reason) => {
                    notes.push((
                        relative.clone(),
                        format!("not used for category titles: {reason}"),
                    ));
                    continue;
                }
            };
            let lower = name.to_ascii_lowercase();
            // (folder named, rank, title)
            let offers: Result<Vec<(String, u8, String)>, String> =
                if lower.starts_with("_category_.") {
                    docusaurus_label(&text, lower.ends_with(".json"))
                        .map(|label| label.map(|l| (folder.clone(), 0, l)).into_iter().collect())
                } else if lower.starts_with("_index.") {
                    hugo_title(&text)
                        .map(|title| title.map(|t| (folder.clone(), 1, t)).into_iter().collect())
                } else {
                    toc_folder_names(&text, &folder).map(|entries| {
                        entries
                            .into_iter()
                            .map(|(named, title)| (named, 2, title))
                            .collect()
                    })
                };
            match offers {
                Ok(offers) => {
                    for (named, rank, title) in offers {
                        offer(named, rank, title);
                    }
                }
                Err(reason) => notes.push((
                    relative.clone(),
                    format!("not used for category titles: {reason}"),
                )),
            }
        }
        let titles = found
            .into_iter()
            .map(|(folder, (_, title))| (folder, title))
            .collect();
        (
            FolderLayout {
                common_root,
                titles,
            },
            notes,
        )
    }

    /// The category a file at `relative_path` gets from its folders.
    pub fn category(&self, mode: CategoryFromFolder, relative_path: &str) -> Option<String> {
        let mut folders: Vec<&str> = relative_path.split('/').collect();
        folders.pop(); // the file name
        let skip = match &self.common_root {
            Some(root) if is_under(relative_path, root) => root.split('/').count(),
            _ => 0,
        };
        let titled = |depth: usize| {
            let path = folders[..=depth].join("/");
            self.titles
                .get(&path)
                .cloned()
                .unwrap_or_else(|| readable_folder_name(folders[depth]))
        };
        match mode {
            CategoryFromFolder::Off => None,
            CategoryFromFolder::FirstFolder => (folders.len() > skip).then(|| titled(skip)),
            CategoryFromFolder::FolderPath => (folders.len() > skip).then(|| {
                (skip..folders.len())
                    .map(titled)
                    .collect::<Vec<_>>()
                    .join(CATEGORY_SEPARATOR)
            }),
        }
    }

    /// Stable text for the rules' fingerprint.
    pub fn fingerprint_text(&self) -> String {
        let mut text = format!(
            "titles_v{CATEGORY_TITLES_VERSION}\nroot={}\n",
            self.common_root.as_deref().unwrap_or("")
        );
        for (folder, title) in &self.titles {
            text.push_str(&format!("{folder}={title}\n"));
        }
        text
    }
}

fn is_under(path: &str, folder: &str) -> bool {
    path.strip_prefix(folder)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// A folder name as a reader would write it: `mail-flow` and `mail_flow` →
/// `Mail flow`, `proxy` → `Proxy`. A name someone already wrote for people
/// (with spaces, or capitals and no `-`/`_`: `Mail flow`, `ExchangeOnline`,
/// `iOS`) is kept as written.
pub fn readable_folder_name(name: &str) -> String {
    let separated = name.contains(['-', '_']);
    if name.contains(' ') || (!separated && name.chars().any(char::is_uppercase)) {
        return name.to_string();
    }
    let words: Vec<&str> = name
        .split(['-', '_'])
        .filter(|word| !word.is_empty())
        .collect();
    if words.is_empty() {
        return name.to_string();
    }
    let mut out = words.join(" ");
    // Capitalize only a first word written all in lower case (`iOS-app`
    // stays `iOS app`).
    if words[0].chars().all(|c| !c.is_uppercase())
        && let Some(first) = out.chars().next()
    {
        let upper: String = first.to_uppercase().collect();
        out.replace_range(..first.len_utf8(), &upper);
    }
    out
}

/// A title fit to be a category: one line, trimmed, without the separator
/// that would split it into levels (then the folder name is used instead).
fn clean_title(title: &str) -> Option<String> {
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    (!title.is_empty() && title.len() <= 200 && !title.contains(CATEGORY_SEPARATOR))
        .then_some(title)
}

fn read_text(path: &Path, max_bytes: u64) -> Result<String, String> {
    let bytes = super::read_bounded(path, max_bytes).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| format!("not valid UTF-8 ({e})"))
}

/// Docusaurus `_category_.json` (or `.yml`): its `label`.
fn docusaurus_label(text: &str, json: bool) -> Result<Option<String>, String> {
    let value: Value = if json {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())?
    };
    Ok(value
        .get("label")
        .and_then(Value::as_str)
        .map(str::to_string))
}

/// Hugo `_index.md`: the section's `title` from its front matter.
fn hugo_title(text: &str) -> Result<Option<String>, String> {
    let (front_matter, _) = super::front_matter::split(text).map_err(|e| e.to_string())?;
    Ok(front_matter.title)
}

/// DocFX `toc.yml` in `toc_folder`: (folder, name) for each entry whose
/// `href` points at a folder (`mail-flow/`) or at the folder's own toc
/// (`mail-flow/toc.yml`).
fn toc_folder_names(text: &str, toc_folder: &str) -> Result<Vec<(String, String)>, String> {
    let value: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    let mut pending = vec![&value];
    while let Some(node) = pending.pop() {
        match node {
            Value::Array(entries) => pending.extend(entries.iter().rev()),
            Value::Object(entry) => {
                if let (Some(name), Some(href)) = (
                    entry.get("name").and_then(Value::as_str),
                    entry.get("href").and_then(Value::as_str),
                ) && let Some(folder) = toc_href_folder(toc_folder, href)
                {
                    found.push((folder, name.to_string()));
                }
                if let Some(items) = entry.get("items") {
                    pending.push(items);
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// The folder (relative to the articles folder) a toc `href` names, if it
/// names one inside it.
fn toc_href_folder(toc_folder: &str, href: &str) -> Option<String> {
    let href = href.split(['?', '#']).next()?.trim();
    if href.is_empty() || href.starts_with('/') || href.starts_with('~') || href.contains(':') {
        return None;
    }
    let target = if href.ends_with('/') {
        href.trim_end_matches('/')
    } else {
        let (folder, file) = href.rsplit_once('/')?;
        let file = file.to_ascii_lowercase();
        if !matches!(file.as_str(), "toc.yml" | "toc.yaml" | "toc.md") {
            return None;
        }
        folder
    };
    let mut parts: Vec<&str> = toc_folder.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            name => parts.push(name),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_become_readable_unless_already_written_for_people() {
        for (name, readable) in [
            ("mail-flow", "Mail flow"),
            ("mail_flow", "Mail flow"),
            ("getting-started", "Getting started"),
            ("proxy", "Proxy"),
            ("Exchange", "Exchange"),
            ("Mail flow", "Mail flow"),
            ("ExchangeOnline", "ExchangeOnline"),
            ("iOS", "iOS"),
            ("iOS-app", "iOS app"),
            ("Viva-suite-administration", "Viva suite administration"),
            ("--", "--"),
            ("élan-vital", "Élan vital"),
        ] {
            assert_eq!(readable_folder_name(name), readable, "{name}");
        }
    }

    fn layout(paths: &[&str], titles: &[(&str, &str)]) -> FolderLayout {
        let (mut layout, notes) = FolderLayout::scan(paths.iter().copied(), &[], 1 << 20);
        assert!(notes.is_empty());
        for (folder, title) in titles {
            layout.titles.insert(folder.to_string(), title.to_string());
        }
        layout
    }

    #[test]
    fn a_folder_every_article_shares_is_left_out() {
        let docs = layout(
            &[
                "docs/mail-flow/rules/a.md",
                "docs/mail-flow/b.md",
                "docs/top.md",
            ],
            &[("docs/mail-flow/rules", "Transport rules")],
        );
        assert_eq!(docs.common_root.as_deref(), Some("docs"));
        let first = CategoryFromFolder::FirstFolder;
        let path = CategoryFromFolder::FolderPath;
        assert_eq!(
            docs.category(first, "docs/mail-flow/rules/a.md").as_deref(),
            Some("Mail flow")
        );
        assert_eq!(
            docs.category(path, "docs/mail-flow/rules/a.md").as_deref(),
            Some("Mail flow/Transport rules")
        );
        assert_eq!(docs.category(first, "docs/top.md"), None);
        assert_eq!(
            docs.category(CategoryFromFolder::Off, "docs/mail-flow/b.md"),
            None
        );

        let deep = layout(&["content/en/a/x.md", "content/en/b/y.md"], &[]);
        assert_eq!(deep.common_root.as_deref(), Some("content/en"));
        let spread = layout(&["Exchange/Mail flow/x.md", "Outlook/y.md"], &[]);
        assert_eq!(spread.common_root, None);
        assert_eq!(
            spread.category(first, "Exchange/Mail flow/x.md").as_deref(),
            Some("Exchange")
        );
        assert_eq!(
            spread.category(path, "Exchange/Mail flow/x.md").as_deref(),
            Some("Exchange/Mail flow")
        );
        let top = layout(&["a.md", "docs/b.md"], &[]);
        assert_eq!(
            top.common_root, None,
            "an article at the top shares nothing"
        );
    }

    #[test]
    fn generator_metadata_names_folders() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, text).unwrap();
            (path.to_string(), full)
        };
        let metadata = vec![
            write(
                "docs/setup/_category_.json",
                r#"{"label": "Setting up", "position": 2}"#,
            ),
            write(
                "docs/setup/_index.md",
                "---\ntitle: Loses to the label\n---\n",
            ),
            write(
                "docs/billing/_index.md",
                "+++\ntitle = \"Plans & billing\"\n+++\n",
            ),
            write(
                "docs/toc.yml",
                "- name: Docs\n  href: index.md\n  items:\n  - name: Mail flow\n    href: mail-flow/\n  - name: Admin center\n    href: ./admin/toc.yml\n  - name: Elsewhere\n    href: ../../outside/\n  - name: A page\n    href: setup/a.md\n",
            ),
            write("docs/broken/_category_.json", "{label"),
            write("docs/slash/_category_.yml", "label: Sign-in / MFA\n"),
        ];
        let articles = [
            "docs/setup/a.md",
            "docs/billing/b.md",
            "docs/mail-flow/c.md",
            "docs/admin/d.md",
            "docs/broken/e.md",
            "docs/slash/f.md",
        ];
        let (layout, notes) = FolderLayout::scan(articles, &metadata, 1 << 20);
        let titles: Vec<(&str, &str)> = layout
            .titles
            .iter()
            .map(|(f, t)| (f.as_str(), t.as_str()))
            .collect();
        assert_eq!(
            titles,
            [
                ("docs/admin", "Admin center"),
                ("docs/billing", "Plans & billing"),
                ("docs/mail-flow", "Mail flow"),
                ("docs/setup", "Setting up"),
            ]
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].0.ends_with("broken/_category_.json"), "{notes:?}");
        let first = CategoryFromFolder::FirstFolder;
        assert_eq!(
            layout.category(first, "docs/slash/f.md").as_deref(),
            Some("Slash"),
            "a title with the separator falls back to the folder name"
        );
        assert_eq!(
            layout.category(first, "docs/broken/e.md").as_deref(),
            Some("Broken")
        );
    }

    #[test]
    fn toc_hrefs_name_folders_only_inside_the_articles_folder() {
        assert_eq!(toc_href_folder("a", "b/").as_deref(), Some("a/b"));
        assert_eq!(toc_href_folder("a", "./b/TOC.yml").as_deref(), Some("a/b"));
        assert_eq!(toc_href_folder("a/b", "../c/").as_deref(), Some("a/c"));
        assert_eq!(toc_href_folder("", "../c/"), None);
        assert_eq!(toc_href_folder("a", "b/page.md"), None);
        assert_eq!(toc_href_folder("a", "/exchange/"), None);
        assert_eq!(toc_href_folder("a", "https://x.test/b/"), None);
    }
}
