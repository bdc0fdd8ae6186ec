//! The tantivy index: schema and analyzers ([`schema`]), the mapping from
//! articles to documents ([`documents`]), the single writer that keeps the
//! index equal to the articles folder ([`writer`]), what it keeps per file
//! ([`catalog`]), and the directory the index is read from ([`directory`]).
//!
//! Only the [`writer::Indexer`] ever writes. Readers reload after each of its
//! commits, so a search sees either the old or the new version of an article,
//! never half of it.

pub mod catalog;
pub mod directory;
pub mod documents;
pub mod schema;
pub mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tantivy::{Index, IndexReader, IndexSettings, ReloadPolicy, TantivyError};

use self::directory::IndexDirectory;

pub use schema::Fields;

const VERSION_FILE: &str = "rapport-schema-version";

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index error: {0}")]
    Tantivy(#[from] TantivyError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the index at {0} is locked by another writer (is `rapport serve` running on it?); stop it first, the server keeps the index up to date by itself"
    )]
    Locked(PathBuf),
    #[error("no index at {0}: run `rapport index` first (or `rapport serve`, which builds it)")]
    Missing(PathBuf),
}

/// An opened index plus the reader every search goes through.
pub struct KnowledgeIndex {
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    pub dir: PathBuf,
}

impl KnowledgeIndex {
    /// Opens the index in `dir`, creating it (and the folder) if needed. An index
    /// written with another schema version is deleted and recreated empty; the
    /// indexer's reconcile then rebuilds it from the folder.
    pub fn open_or_create(dir: &Path) -> Result<Self, IndexError> {
        let io_err = |source| IndexError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let (schema, fields) = schema::build_schema();
        let version_path = dir.join(VERSION_FILE);
        let on_disk_version = std::fs::read_to_string(&version_path).ok();
        let has_index = dir.join("meta.json").exists();
        let expected = schema::SCHEMA_VERSION.to_string();
        if has_index && on_disk_version.as_deref().map(str::trim) != Some(expected.as_str()) {
            tracing::info!(
                index = %dir.display(),
                found = on_disk_version.as_deref().unwrap_or("none"),
                expected,
                "index schema changed; rebuilding from the articles folder"
            );
            clear_index_files(dir).map_err(io_err)?;
        }
        if dir.join("meta.json").exists() {
            match open_in(dir)
                .map_err(IndexError::from)
                .and_then(|index| Self::from_index(index, fields.clone(), dir))
            {
                Ok(opened) => return Ok(opened),
                // The articles are the source of truth: a broken index is rebuilt.
                Err(error) => {
                    tracing::warn!(
                        index = %dir.display(),
                        %error,
                        "the index is unreadable; rebuilding it from the articles folder"
                    );
                    clear_index_files(dir).map_err(io_err)?;
                }
            }
        }
        let index = Index::create(
            IndexDirectory::open(dir).map_err(TantivyError::from)?,
            schema,
            IndexSettings::default(),
        )?;
        std::fs::write(&version_path, &expected).map_err(io_err)?;
        Self::from_index(index, fields, dir)
    }

    /// Opens an existing index read-only (for `rapport search`).
    pub fn open_existing(dir: &Path) -> Result<Self, IndexError> {
        if !dir.join("meta.json").exists() {
            return Err(IndexError::Missing(dir.to_path_buf()));
        }
        let (_, fields) = schema::build_schema();
        let index = open_in(dir)?;
        Self::from_index(index, fields, dir)
    }

    fn from_index(index: Index, fields: Fields, dir: &Path) -> Result<Self, IndexError> {
        schema::register_analyzers(index.tokenizers());
        schema::register_analyzers(index.fast_field_tokenizer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(KnowledgeIndex {
            index,
            reader,
            fields,
            dir: dir.to_path_buf(),
        })
    }
}

fn open_in(dir: &Path) -> Result<Index, TantivyError> {
    Index::open(IndexDirectory::open(dir)?)
}

/// Removes tantivy's files (and ours) but nothing else a user may keep there.
fn clear_index_files(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_index_file = name == "meta.json"
            || name == ".managed.json"
            || name == VERSION_FILE
            || name.ends_with(".lock")
            || [
                ".idx",
                ".pos",
                ".term",
                ".store",
                ".fast",
                ".fieldnorm",
                ".del",
            ]
            .iter()
            .any(|ext| name.ends_with(ext));
        if is_index_file && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// A file that is not (or not in its current version) in the index.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
    /// True when an older, valid version of the file is still served.
    pub serving_last_good_version: bool,
    /// For a duplicate id: (the id, the path that holds it).
    #[serde(skip)]
    #[schema(ignore)]
    pub duplicate_of: Option<(String, String)>,
}

/// What the indexer publishes for `/api/v1/status` and `/ready`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IndexStatus {
    pub ready: bool,
    pub articles: usize,
    pub internal_articles: usize,
    pub sections: usize,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_commit: Option<time::OffsetDateTime>,
    pub commits: u64,
    /// Why the index can't take changes right now (disk full, read-only,
    /// folder gone); searches keep using the last good commit.
    pub degraded: Option<String>,
    /// Batches of watcher hints processed (whether or not they changed anything).
    pub batches: u64,
    /// Files not indexed (in their current version), by path.
    #[serde(serialize_with = "serialize_values")]
    pub skipped: BTreeMap<String, SkippedFile>,
    /// Access values that are neither public nor internal; their articles
    /// are served to agents only until the value is fixed or mapped.
    pub unrecognized_audience: Vec<UnrecognizedAudience>,
}

/// One access value rapport does not know, reported once with its count.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct UnrecognizedAudience {
    pub field: String,
    pub value: String,
    /// Articles with this value, all treated as internal.
    pub articles: usize,
    pub fix: String,
}

impl UnrecognizedAudience {
    pub fn new(field: &str, value: &str, articles: usize) -> Self {
        UnrecognizedAudience {
            field: field.to_string(),
            value: value.to_string(),
            articles,
            fix: format!(
                "write `{field}: public` or `{field}: internal`; or, if `{field}` means something else in this help center, set `audience_field` (RAPPORT_AUDIENCE_FIELD, --audience-field) to the field that says who may read an article, or map the value with `public_values = [{value:?}]` / `internal_values = [{value:?}]` in rapport.toml"
            ),
        }
    }
}

/// The one line to print when more than half of the articles are closed to
/// customers (served to agents only): in an adopted help center that is
/// usually an access field that means something else there (DocFX's
/// `audience: ITPro` names the reader's role). `None` otherwise.
pub fn access_warning(
    articles: usize,
    not_public: usize,
    unrecognized: &[UnrecognizedAudience],
    field: &str,
) -> Option<String> {
    if articles == 0 || not_public * 2 <= articles {
        return None;
    }
    let percent = not_public * 100 / articles;
    let unknown: usize = unrecognized.iter().map(|u| u.articles).sum();
    let mut values: Vec<&UnrecognizedAudience> = unrecognized.iter().collect();
    values.sort_by(|a, b| b.articles.cmp(&a.articles).then(a.value.cmp(&b.value)));
    let mut listed: Vec<String> = values
        .iter()
        .take(3)
        .map(|u| format!("{:?} {}", u.value, u.articles))
        .collect();
    if values.len() > 3 {
        listed.push(format!("{} more", values.len() - 3));
    }
    let cause = if unknown > 0 {
        format!(
            "{unknown} of them have a value of `{field}` that is neither public nor internal ({}), ",
            listed.join(", ")
        )
    } else {
        format!("their `{field}` says internal, ")
    };
    Some(format!(
        "{not_public} of {articles} articles ({percent}%) are served to agents only: {cause}so customers and the portal see {} of them. If `{field}` does not say who may read an article in this help center, set `audience_field` (RAPPORT_AUDIENCE_FIELD, --audience-field) to the field that does (one no article has makes every article public), or map values with `public_values` / `internal_values` in rapport.toml",
        articles - not_public
    ))
}

fn serialize_values<S: serde::Serializer>(
    skipped: &BTreeMap<String, SkippedFile>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(skipped.values())
}

pub type SharedStatus = Arc<RwLock<IndexStatus>>;

#[cfg(test)]
mod tests {
    use tantivy::doc;

    use super::*;

    #[test]
    fn the_access_warning_speaks_only_when_most_articles_are_closed() {
        assert_eq!(
            access_warning(10, 5, &[], "audience"),
            None,
            "half is not most"
        );
        assert_eq!(access_warning(0, 0, &[], "audience"), None);
        let itpro = UnrecognizedAudience::new("audience", "ITPro", 2290);
        let admin = UnrecognizedAudience::new("audience", "Admin", 154);
        let line = access_warning(2461, 2446, &[admin, itpro], "audience").unwrap();
        assert!(
            line.starts_with("2446 of 2461 articles (99%) are served to agents only: 2444 of them have a value of `audience` that is neither public nor internal (\"ITPro\" 2290, \"Admin\" 154)"),
            "{line}"
        );
        assert!(line.contains("see 15 of them"), "{line}");
        assert!(line.contains("RAPPORT_AUDIENCE_FIELD"), "{line}");
        assert!(!line.contains('\n'), "one line: {line}");
        let internal = access_warning(3, 2, &[], "visibility").unwrap();
        assert!(
            internal.contains("their `visibility` says internal"),
            "{internal}"
        );
    }

    #[test]
    fn an_index_from_another_schema_version_is_rebuilt_empty() {
        let dir = tempfile::tempdir().unwrap();
        {
            let kb = KnowledgeIndex::open_or_create(dir.path()).unwrap();
            let mut writer: tantivy::IndexWriter = kb.index.writer(15_000_000).unwrap();
            writer.add_document(doc!(kb.fields.id => "x")).unwrap();
            writer.commit().unwrap();
        }
        let reopened = KnowledgeIndex::open_or_create(dir.path()).unwrap();
        assert_eq!(
            reopened.reader.searcher().num_docs(),
            1,
            "same version: kept"
        );
        drop(reopened);

        std::fs::write(dir.path().join(VERSION_FILE), "0").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let rebuilt = KnowledgeIndex::open_or_create(dir.path()).unwrap();
        assert_eq!(rebuilt.reader.searcher().num_docs(), 0);
        assert!(
            dir.path().join("notes.txt").exists(),
            "only index files are removed"
        );
        let version = std::fs::read_to_string(dir.path().join(VERSION_FILE)).unwrap();
        assert_eq!(version, schema::SCHEMA_VERSION.to_string());
    }
}
