//! How a help center's own conventions map onto rapport's fields: which
//! files are articles, which front-matter field decides who may read an
//! article, and where a category comes from when the front matter has none.
//!
//! These rules change what an article *means*, so the indexer re-parses every
//! file when they change (see [`ArticleRules::fingerprint`]).

use serde_json::Value;

use super::Audience;
use super::categories::FolderLayout;
use super::selection::Selection;

/// The access field used when none is configured.
pub const DEFAULT_AUDIENCE_FIELD: &str = "audience";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleRules {
    /// Front-matter field holding who may read the article. A dotted name
    /// (`ms.audience`) matches a literal dotted key first, then nested tables.
    pub audience_field: String,
    /// Extra values (besides `public`) meaning "anyone may read this".
    pub public_values: Vec<String>,
    /// Extra values (besides `internal`) meaning "agents only".
    pub internal_values: Vec<String>,
    pub category_from_folder: CategoryFromFolder,
    /// Which Markdown files are articles (config `include` / `exclude`).
    pub selection: Selection,
    /// What the folder says about categories (a shared top folder, titles
    /// from generator metadata). Not configured: the indexer and `rapport
    /// check` fill it in with [`FolderLayout::scan`] before parsing.
    pub folders: FolderLayout,
}

/// Where an article's category comes from when its front matter has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoryFromFolder {
    /// No category.
    Off,
    /// The first folder under the articles root (`Exchange/…/x.md` →
    /// `Exchange`), or under the folder every article shares (`docs/`), by
    /// its title (see [`super::categories`]).
    #[default]
    FirstFolder,
    /// Every folder below that, as a `/`-separated hierarchy of titles
    /// (`Exchange/Mail flow`); filtering by a parent includes its children.
    FolderPath,
}

impl CategoryFromFolder {
    pub fn parse(value: &str) -> Option<CategoryFromFolder> {
        match value.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "off" | "none" => Some(CategoryFromFolder::Off),
            "first_folder" => Some(CategoryFromFolder::FirstFolder),
            "folder_path" => Some(CategoryFromFolder::FolderPath),
            _ => None,
        }
    }
}

/// Separates levels of a hierarchical category.
pub const CATEGORY_SEPARATOR: &str = "/";

/// A category and its ancestors (`A/B/C` → `A`, `A/B`, `A/B/C`), so a filter
/// on a parent matches its children.
pub fn category_ancestors(category: &str) -> impl Iterator<Item = &str> {
    category
        .match_indices(CATEGORY_SEPARATOR)
        .map(|(at, _)| &category[..at])
        .chain(std::iter::once(category))
}

impl Default for ArticleRules {
    fn default() -> Self {
        ArticleRules {
            audience_field: DEFAULT_AUDIENCE_FIELD.to_string(),
            public_values: Vec::new(),
            internal_values: Vec::new(),
            category_from_folder: CategoryFromFolder::default(),
            selection: Selection::default(),
            folders: FolderLayout::default(),
        }
    }
}

/// The access decision for one article, with the value that forced it when
/// that value wasn't one rapport knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDecision {
    pub audience: Audience,
    /// Set when the field held a value that is neither public nor internal:
    /// the article is then internal (fail closed) and the value is reported.
    pub unrecognized: Option<String>,
}

impl ArticleRules {
    /// The default rules with the access field from `RAPPORT_AUDIENCE_FIELD`,
    /// for measurement programs that take no config file: DocFX corpora use
    /// `audience` for the reader's role, so they are measured with another
    /// field (e.g. `RAPPORT_AUDIENCE_FIELD=none`: nothing has it, all public).
    pub fn from_env() -> ArticleRules {
        match std::env::var("RAPPORT_AUDIENCE_FIELD") {
            Ok(field) if !field.trim().is_empty() => ArticleRules {
                audience_field: field.trim().to_string(),
                ..ArticleRules::default()
            },
            _ => ArticleRules::default(),
        }
    }

    /// The category a file at `relative_path` gets from its folders.
    pub fn folder_category(&self, relative_path: &str) -> Option<String> {
        self.folders
            .category(self.category_from_folder, relative_path)
    }

    /// Decides who may read an article from its raw front matter. Only
    /// `public`, `internal` and the configured extra values count; a missing
    /// field means public; anything else is internal, never guessed public.
    pub fn access(&self, front_matter: &serde_json::Map<String, Value>) -> AccessDecision {
        let value = lookup(front_matter, &self.audience_field);
        let text = match value {
            None | Some(Value::Null) => {
                return AccessDecision {
                    audience: Audience::Public,
                    unrecognized: None,
                };
            }
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => other.to_string(),
        };
        let normalized = text.to_lowercase();
        let matches =
            |values: &[String]| values.iter().any(|v| v.trim().to_lowercase() == normalized);
        if normalized == "public" || matches(&self.public_values) {
            AccessDecision {
                audience: Audience::Public,
                unrecognized: None,
            }
        } else if normalized == "internal" || matches(&self.internal_values) {
            AccessDecision {
                audience: Audience::Internal,
                unrecognized: None,
            }
        } else {
            AccessDecision {
                audience: Audience::Internal,
                unrecognized: Some(text),
            }
        }
    }

    /// Changes whenever a rule changes what parsing produces; the indexer
    /// stores it with each commit and re-parses every file on a mismatch.
    pub fn fingerprint(&self) -> String {
        let normalize = |values: &[String]| {
            let mut values: Vec<String> = values.iter().map(|v| v.trim().to_lowercase()).collect();
            values.sort();
            values.join(",")
        };
        // Patterns keep their order: in gitignore syntax a later `!` line
        // undoes an earlier one.
        let text = format!(
            "audience_field={}\npublic={}\ninternal={}\ncategory={:?}\ninclude={:?}\nexclude={:?}\n{}",
            self.audience_field,
            normalize(&self.public_values),
            normalize(&self.internal_values),
            self.category_from_folder,
            self.selection.include_patterns(),
            self.selection.exclude_patterns(),
            self.folders.fingerprint_text(),
        );
        blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
    }
}

/// A literal key first (DocFX writes `ms.topic` as one key), then a path
/// through nested tables (`rapport.audience` in a `[rapport]` TOML table).
fn lookup<'a>(map: &'a serde_json::Map<String, Value>, field: &str) -> Option<&'a Value> {
    if let Some(value) = map.get(field) {
        return Some(value);
    }
    let mut parts = field.split('.');
    let mut current = map.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn front_matter(yaml: &str) -> serde_json::Map<String, Value> {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn only_public_and_internal_count_and_anything_else_fails_closed() {
        let rules = ArticleRules::default();
        let decide = |yaml: &str| rules.access(&front_matter(yaml));
        assert_eq!(decide("title: x").audience, Audience::Public);
        assert_eq!(decide("audience: Public").audience, Audience::Public);
        assert_eq!(decide("audience: internal").audience, Audience::Internal);
        let itpro = decide("audience: ITPro");
        assert_eq!(itpro.audience, Audience::Internal);
        assert_eq!(itpro.unrecognized.as_deref(), Some("ITPro"));
        let list = decide("audience: [public]");
        assert_eq!(
            list.audience,
            Audience::Internal,
            "a list is not a value we know"
        );
        assert!(list.unrecognized.is_some());
    }

    #[test]
    fn the_field_is_configurable_and_values_can_be_mapped() {
        let rules = ArticleRules {
            audience_field: "visibility".into(),
            public_values: vec!["Everyone".into()],
            internal_values: vec!["staff".into()],
            ..ArticleRules::default()
        };
        let decide = |yaml: &str| rules.access(&front_matter(yaml)).audience;
        assert_eq!(decide("audience: ITPro"), Audience::Public, "not our field");
        assert_eq!(decide("visibility: everyone"), Audience::Public);
        assert_eq!(decide("visibility: Staff"), Audience::Internal);
        let nested = ArticleRules {
            audience_field: "rapport.access".into(),
            ..ArticleRules::default()
        };
        let decision = nested.access(&front_matter("rapport:\n  access: internal"));
        assert_eq!(decision.audience, Audience::Internal);
        let dotted = ArticleRules {
            audience_field: "ms.audience".into(),
            ..ArticleRules::default()
        };
        let decision = dotted.access(&front_matter("ms.audience: internal"));
        assert_eq!(decision.audience, Audience::Internal);
    }

    #[test]
    fn fingerprint_changes_with_the_rules_but_not_with_value_order_or_case() {
        let a = ArticleRules {
            internal_values: vec!["Staff".into(), "ops".into()],
            ..ArticleRules::default()
        };
        let b = ArticleRules {
            internal_values: vec!["OPS".into(), "staff".into()],
            ..ArticleRules::default()
        };
        assert_eq!(a.fingerprint(), b.fingerprint());
        let c = ArticleRules {
            category_from_folder: CategoryFromFolder::Off,
            ..a.clone()
        };
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn fingerprint_changes_with_the_selection_and_the_folder_layout() {
        let base = ArticleRules::default();
        let excluding = ArticleRules {
            selection: Selection::new(&[], &["archive/".to_string()]).unwrap(),
            ..ArticleRules::default()
        };
        assert_ne!(base.fingerprint(), excluding.fingerprint());
        let mut titled = ArticleRules::default();
        titled
            .folders
            .titles
            .insert("docs/a".into(), "Alpha".into());
        assert_ne!(base.fingerprint(), titled.fingerprint());
    }

    #[test]
    fn categories_from_folders() {
        let rules = |mode| ArticleRules {
            category_from_folder: mode,
            ..ArticleRules::default()
        };
        let path = "Exchange/Mail flow/fix.md";
        assert_eq!(rules(CategoryFromFolder::Off).folder_category(path), None);
        assert_eq!(
            rules(CategoryFromFolder::FirstFolder)
                .folder_category(path)
                .as_deref(),
            Some("Exchange")
        );
        assert_eq!(
            rules(CategoryFromFolder::FolderPath)
                .folder_category(path)
                .as_deref(),
            Some("Exchange/Mail flow")
        );
        assert_eq!(
            rules(CategoryFromFolder::FirstFolder).folder_category("top.md"),
            None
        );
        let ancestors: Vec<&str> = category_ancestors("A/B/C").collect();
        assert_eq!(ancestors, ["A", "A/B", "A/B/C"]);
    }
}
