//! What the index holds for each file, kept where a start can read it fast.
//!
//! The writer needs, for every indexed file, its id, content hash, audience,
//! includes and the `stat` it was read with. These used to come from the doc
//! store, which meant decompressing and parsing every stored article (at
//! 100k articles: all 370 MB of the store, about 4 s of a 7.9 s start, and
//! that much memory-mapped into the process). Each article document now also
//! carries them as one small record in a bytes fast field
//! ([`Fields::catalog`](super::Fields)): committed atomically with the
//! document, so the catalog can never disagree with the index, and read
//! column by column without touching the doc store.
//!
//! The catalog stays in memory for the server's life, one entry per article,
//! so entries are kept small: shared path and id strings, the hash as bytes,
//! and what few articles have (includes, an unknown access value) boxed.

use std::collections::HashMap;
use std::fs::Metadata;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tantivy::collector::DocSetCollector;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, DocId, Searcher, SegmentReader, TantivyDocument, TantivyError, Term};

use super::IndexError;
use super::schema::{CATALOG, Fields, KIND_ARTICLE};
use crate::article::{Article, Audience};

/// How long after its last write a file's `stat` is trusted to describe its
/// content. A write in the same timestamp tick as the stat taken before
/// reading leaves size and mtime as they were; ticks are a few ms on Linux
/// filesystems, but 1 s on ext3 and HFS+ and 2 s on FAT.
pub const SETTLE_NS: i64 = 2_000_000_000;

/// Fast-field values are truncated past this many bytes (tantivy's hash map
/// keeps the length in a `u16`); a longer record is not stored, and that
/// article is read from the doc store instead.
const MAX_RECORD_BYTES: usize = u16::MAX as usize;

/// What the index holds for one file (its path is the catalog's key).
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// Shared with the writer's id → path map.
    pub id: Arc<str>,
    /// `None` when the file must be parsed again (the rules changed).
    pub content_hash: Option<ContentHash>,
    /// Size and mtime of the file when the indexed content was read; `None`
    /// for a symlink (its own stat says nothing about the target).
    pub stat: Option<FileStat>,
    pub sections: u32,
    pub audience: Audience,
    rare: Option<Box<Rare>>,
}

/// What few articles have.
#[derive(Debug, Clone, PartialEq, Default)]
struct Rare {
    unrecognized_audience: Option<String>,
    includes: Vec<String>,
}

impl CatalogEntry {
    pub fn of(article: &Article, stat: Option<FileStat>) -> Self {
        Self::new(
            article.id.as_str().into(),
            ContentHash::parse(&article.content_hash),
            stat,
            article.sections.len(),
            article.audience,
            article.unrecognized_audience.clone(),
            article.includes.clone(),
        )
    }

    fn new(
        id: Arc<str>,
        content_hash: Option<ContentHash>,
        stat: Option<FileStat>,
        sections: usize,
        audience: Audience,
        unrecognized_audience: Option<String>,
        includes: Vec<String>,
    ) -> Self {
        let rare = (unrecognized_audience.is_some() || !includes.is_empty()).then(|| {
            Box::new(Rare {
                unrecognized_audience,
                includes,
            })
        });
        CatalogEntry {
            id,
            content_hash,
            stat,
            sections: u32::try_from(sections).unwrap_or(u32::MAX),
            audience,
            rare,
        }
    }

    /// The access value that made the article internal by default.
    pub fn unrecognized_audience(&self) -> Option<&str> {
        self.rare.as_ref()?.unrecognized_audience.as_deref()
    }

    /// The files its DocFX includes read: a change to one re-parses it.
    pub fn includes(&self) -> &[String] {
        self.rare.as_ref().map_or(&[], |rare| &rare.includes)
    }
}

/// A content hash (blake3, which [`crate::article`] writes as 64 hex
/// digits), kept as its 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// `None` unless `hex` is 64 lowercase hex digits.
    pub fn parse(hex: &str) -> Option<ContentHash> {
        fn digit(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            }
        }
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(ContentHash(bytes))
    }

    /// Whether `hex` is this hash written out.
    pub fn is(&self, hex: &str) -> bool {
        ContentHash::parse(hex) == Some(*self)
    }
}

/// A file's size and modification time, and when they were looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    /// Nanoseconds since the Unix epoch (negative before it).
    pub mtime_ns: i64,
    /// When this stat was taken, in the same unit.
    pub seen_ns: i64,
}

impl FileStat {
    /// The stat of `meta`, looked at `seen`. `None` when the platform gives
    /// no modification time.
    pub fn of(meta: &Metadata, seen: SystemTime) -> Option<FileStat> {
        Some(FileStat {
            size: meta.len(),
            mtime_ns: unix_ns(meta.modified().ok()?),
            seen_ns: unix_ns(seen),
        })
    }

    /// Whether a file that stats as `current` still holds the content that
    /// was read when `self` was taken: same size and mtime, and `self` was
    /// taken long enough after the last write ([`SETTLE_NS`]) that any later
    /// write must have moved the mtime. A write that keeps both size and
    /// mtime (`touch -d`, `cp -p`, `rsync -t` of another version) is not
    /// seen: the periodic full reconcile, which hashes, catches it.
    /// `verified_ns`: when a full reconcile last confirmed every file's
    /// content, which settles stats taken too soon after a write.
    pub fn vouches_for(&self, current: &FileStat, verified_ns: Option<i64>) -> bool {
        self.size == current.size && self.mtime_ns == current.mtime_ns && self.settled(verified_ns)
    }

    /// Whether no write after this stat can have kept its mtime.
    pub fn settled(&self, verified_ns: Option<i64>) -> bool {
        let settled_at = self.mtime_ns.saturating_add(SETTLE_NS);
        settled_at < self.seen_ns || verified_ns.is_some_and(|verified| settled_at < verified)
    }
}

/// `time` as nanoseconds since the Unix epoch, saturating (i64 spans the
/// years 1678 to 2262).
pub fn unix_ns(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |ns| -ns),
    }
}

/// Version of the record layout, its first byte.
const RECORD_V1: u8 = 1;

/// The record to store with `path`'s article document; `None` when it is too
/// long for a fast field (the catalog then reads the doc store for it).
///
/// A compact binary layout rather than JSON: a start decodes 100k of them,
/// and the column's dictionary is read block by block (each block
/// decompressed anew), so size is time. Integers are little-endian; strings
/// are a `u16` length and UTF-8, except the path, which comes first and ends
/// with a NUL (no path holds one) so records sort and share prefixes by path:
/// `[version] path\0 id [hash:32] audience:u8 sections:u32 [stat]
/// [unrecognized] includes:u16 (string…)`, where `[x]` is a `0` byte, or `1`
/// and x; a stat is size:u64 mtime_ns:i64 seen_ns:i64.
pub fn encode(path: &str, entry: &CatalogEntry) -> Option<Vec<u8>> {
    fn string(out: &mut Vec<u8>, text: &str) -> Option<()> {
        out.extend_from_slice(&u16::try_from(text.len()).ok()?.to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        Some(())
    }
    if path.contains('\0') {
        return None;
    }
    let mut out = Vec::with_capacity(96 + path.len() + entry.id.len());
    out.push(RECORD_V1);
    out.extend_from_slice(path.as_bytes());
    out.push(0);
    string(&mut out, &entry.id)?;
    match entry.content_hash {
        Some(ContentHash(bytes)) => {
            out.push(1);
            out.extend_from_slice(&bytes);
        }
        None => out.push(0),
    }
    out.push(match entry.audience {
        Audience::Public => 0,
        Audience::Internal => 1,
    });
    out.extend_from_slice(&entry.sections.to_le_bytes());
    match entry.stat {
        Some(stat) => {
            out.push(1);
            out.extend_from_slice(&stat.size.to_le_bytes());
            out.extend_from_slice(&stat.mtime_ns.to_le_bytes());
            out.extend_from_slice(&stat.seen_ns.to_le_bytes());
        }
        None => out.push(0),
    }
    match entry.unrecognized_audience() {
        Some(value) => {
            out.push(1);
            string(&mut out, value)?;
        }
        None => out.push(0),
    }
    let includes = entry.includes();
    out.extend_from_slice(&u16::try_from(includes.len()).ok()?.to_le_bytes());
    for include in includes {
        string(&mut out, include)?;
    }
    (out.len() < MAX_RECORD_BYTES).then_some(out)
}

/// The entry in a record from [`encode`]; `None` if it is not one.
fn decode(bytes: &[u8]) -> Option<(Arc<str>, CatalogEntry)> {
    let mut record = Reader(bytes);
    if record.byte()? != RECORD_V1 {
        return None;
    }
    let path_len = record.0.iter().position(|&b| b == 0)?;
    let path: Arc<str> = std::str::from_utf8(record.take(path_len)?).ok()?.into();
    record.take(1)?;
    let id: Arc<str> = record.str()?.into();
    let content_hash = match record.byte()? {
        0 => None,
        1 => Some(ContentHash(record.array()?)),
        _ => return None,
    };
    let audience = match record.byte()? {
        0 => Audience::Public,
        1 => Audience::Internal,
        _ => return None,
    };
    let sections = u32::from_le_bytes(record.array()?) as usize;
    let stat = match record.byte()? {
        0 => None,
        1 => Some(FileStat {
            size: u64::from_le_bytes(record.array()?),
            mtime_ns: i64::from_le_bytes(record.array()?),
            seen_ns: i64::from_le_bytes(record.array()?),
        }),
        _ => return None,
    };
    let unrecognized_audience = match record.byte()? {
        0 => None,
        1 => Some(record.str()?.to_string()),
        _ => return None,
    };
    let count = u16::from_le_bytes(record.array()?);
    let includes = (0..count)
        .map(|_| record.str().map(str::to_string))
        .collect::<Option<Vec<String>>>()?;
    if !record.0.is_empty() {
        return None;
    }
    let entry = CatalogEntry::new(
        id,
        content_hash,
        stat,
        sections,
        audience,
        unrecognized_audience,
        includes,
    );
    Some((path, entry))
}

/// The unread rest of a record.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }
}

/// Every article document's entry in `searcher`, by path. Reads the catalog
/// column; only an article without a usable record (too long to store) is
/// read from the doc store, and then without its stat, so its file is
/// hashed once more.
pub fn load(
    searcher: &Searcher,
    fields: &Fields,
) -> Result<HashMap<Arc<str>, CatalogEntry>, IndexError> {
    let query = TermQuery::new(
        Term::from_field_text(fields.kind, KIND_ARTICLE),
        IndexRecordOption::Basic,
    );
    let mut by_segment: Vec<Vec<u32>> = vec![Vec::new(); searcher.segment_readers().len()];
    let articles = searcher.search(&query, &DocSetCollector)?;
    let mut catalog = HashMap::with_capacity(articles.len());
    for address in articles {
        by_segment[address.segment_ord as usize].push(address.doc_id);
    }
    let mut unrecorded: Vec<DocAddress> = Vec::new();
    for (segment_ord, docs) in by_segment.into_iter().enumerate() {
        let segment_ord = segment_ord as u32;
        let reader = searcher.segment_reader(segment_ord);
        let missing = match read_column(reader, &docs) {
            Ok((entries, missing)) => {
                catalog.extend(entries);
                missing
            }
            // Slower, but the index still opens.
            Err(error) => {
                tracing::warn!(%error, "the catalog column is unreadable; reading the stored articles");
                docs
            }
        };
        unrecorded.extend(
            missing
                .into_iter()
                .map(|doc| DocAddress::new(segment_ord, doc)),
        );
    }
    for address in unrecorded {
        let (path, entry) = from_doc_store(searcher, fields, address)?;
        catalog.insert(path, entry);
    }
    Ok(catalog)
}

/// A catalog entry with its path.
type PathEntry = (Arc<str>, CatalogEntry);

/// The entries recorded for `docs` in one segment's catalog column, and the
/// docs without a usable record.
fn read_column(
    reader: &SegmentReader,
    docs: &[DocId],
) -> Result<(Vec<PathEntry>, Vec<DocId>), TantivyError> {
    let Some(column) = reader.fast_fields().bytes(CATALOG)? else {
        return Ok((Vec::new(), docs.to_vec()));
    };
    let mut missing = Vec::new();
    // (term ordinal, doc), in ordinal order: the dictionary is then read
    // front to back, each block decoded once.
    let mut ords: Vec<(u64, DocId)> = Vec::with_capacity(docs.len());
    for &doc in docs {
        match column.term_ords(doc).next() {
            Some(ord) => ords.push((ord, doc)),
            None => missing.push(doc),
        }
    }
    ords.sort_unstable();
    let sorted: Vec<u64> = ords.iter().map(|(ord, _)| *ord).collect();
    let mut docs_in_order = ords.iter().map(|(_, doc)| *doc);
    let mut entries = Vec::with_capacity(sorted.len());
    column
        .dictionary()
        .sorted_ords_to_term_cb(&sorted, |bytes| {
            let doc = docs_in_order.next();
            match decode(bytes) {
                Some(entry) => entries.push(entry),
                None => missing.extend(doc),
            }
        })?;
    Ok((entries, missing))
}

/// The slow way: the entry from the stored document (no stat).
fn from_doc_store(
    searcher: &Searcher,
    fields: &Fields,
    address: DocAddress,
) -> Result<(Arc<str>, CatalogEntry), IndexError> {
    let doc: TantivyDocument = searcher.doc(address)?;
    let text = |field| {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
    };
    let stored: Option<Article> = serde_json::from_str(text(fields.stored_article)).ok();
    let entry = CatalogEntry::new(
        text(fields.id).into(),
        ContentHash::parse(text(fields.content_hash)),
        None,
        stored.as_ref().map_or(0, |a| a.sections.len()),
        stored.as_ref().map(|a| a.audience).unwrap_or_default(),
        stored
            .as_ref()
            .and_then(|a| a.unrecognized_audience.clone()),
        stored.map(|a| a.includes).unwrap_or_default(),
    );
    Ok((text(fields.path).into(), entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: FileStat = FileStat {
        size: 812,
        mtime_ns: 1_700_000_000_123_456_789,
        seen_ns: 1_700_000_100_000_000_000,
    };

    /// An entry with everything a record can hold.
    fn entry() -> CatalogEntry {
        CatalogEntry::new(
            "billing/refunds".into(),
            ContentHash::parse(&"ab".repeat(32)),
            Some(STAT),
            3,
            Audience::Internal,
            Some("ITPro".into()),
            vec!["includes/a.md".into()],
        )
    }

    fn plain(id: &str, stat: Option<FileStat>) -> CatalogEntry {
        CatalogEntry::new(
            id.into(),
            ContentHash::parse(&"0f".repeat(32)),
            stat,
            6,
            Audience::Public,
            None,
            Vec::new(),
        )
    }

    fn decoded(bytes: &[u8]) -> Option<(String, CatalogEntry)> {
        decode(bytes).map(|(path, entry)| (path.to_string(), entry))
    }

    #[test]
    fn a_record_round_trips() {
        let bytes = encode("billing/refunds.md", &entry()).unwrap();
        assert!(
            bytes[1..].starts_with(b"billing/refunds.md\0"),
            "sorts by path"
        );
        assert_eq!(
            decoded(&bytes),
            Some(("billing/refunds.md".to_string(), entry()))
        );
        assert_eq!(entry().includes(), ["includes/a.md"]);
        assert_eq!(entry().unrecognized_audience(), Some("ITPro"));

        let typical = plain("gen/081623", Some(STAT));
        let bytes = encode("part081/a081623.md", &typical).unwrap();
        assert_eq!(bytes.len(), 98, "as JSON: 230");
        assert_eq!(
            decoded(&bytes),
            Some(("part081/a081623.md".to_string(), typical))
        );
        let bare = CatalogEntry {
            content_hash: None,
            ..plain("a", None)
        };
        assert_eq!(
            decoded(&encode("a.md", &bare).unwrap()),
            Some(("a.md".to_string(), bare))
        );
    }

    #[test]
    fn a_content_hash_is_its_hex_digits() {
        let hex = crate::article::content_hash(b"text");
        let hash = ContentHash::parse(&hex).unwrap();
        assert!(hash.is(&hex));
        assert!(!hash.is(&crate::article::content_hash(b"other")));
        assert_eq!(ContentHash::parse(&hex.to_uppercase()), None);
        assert_eq!(ContentHash::parse("abc"), None);
    }

    #[test]
    fn a_damaged_record_is_not_decoded() {
        let bytes = encode("billing/refunds.md", &entry()).unwrap();
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
        let mut other_version = bytes;
        other_version[0] = 2;
        assert_eq!(decode(&other_version), None);
    }

    #[test]
    fn a_record_too_long_for_a_fast_field_is_not_stored() {
        let long = CatalogEntry::new(
            "a".into(),
            None,
            None,
            1,
            Audience::Public,
            None,
            vec!["x".repeat(1000); 70],
        );
        assert_eq!(encode("a.md", &long), None);
        assert_eq!(encode("a\0.md", &entry()), None);
    }

    #[test]
    fn a_stat_vouches_only_for_the_same_size_and_mtime_once_settled() {
        let second = 1_000_000_000;
        let taken = FileStat {
            size: 10,
            mtime_ns: 100 * second,
            seen_ns: 200 * second,
        };
        let now = FileStat {
            seen_ns: 300 * second,
            ..taken
        };
        assert!(taken.vouches_for(&now, None));
        assert!(!taken.vouches_for(&FileStat { size: 11, ..now }, None));
        assert!(!taken.vouches_for(
            &FileStat {
                mtime_ns: now.mtime_ns + 1,
                ..now
            },
            None
        ));

        // Read 50 ms after a write: a write in the same tick would go unseen.
        let racy = FileStat {
            seen_ns: taken.mtime_ns + 50_000_000,
            ..taken
        };
        assert!(!racy.vouches_for(&now, None));
        assert!(!racy.vouches_for(&now, Some(taken.mtime_ns + second)));
        assert!(
            racy.vouches_for(&now, Some(taken.mtime_ns + 3 * second)),
            "a later full reconcile confirmed the content"
        );
        // An mtime in the future never settles by itself.
        let future = FileStat {
            mtime_ns: 500 * second,
            ..taken
        };
        assert!(!future.vouches_for(
            &FileStat {
                mtime_ns: 500 * second,
                ..now
            },
            None
        ));
    }

    #[test]
    fn an_article_without_a_record_is_read_from_the_doc_store() {
        let dir = tempfile::tempdir().unwrap();
        let kb = super::super::KnowledgeIndex::open_or_create(dir.path()).unwrap();
        let mut writer: tantivy::IndexWriter = kb.index.writer(15_000_000).unwrap();
        let recorded = crate::article::parse(b"---\ntitle: A\n---\nText.\n", "a.md").unwrap();
        let bare = crate::article::parse(b"---\ntitle: B\n---\nMore.\n", "b.md").unwrap();
        let mut docs = super::super::documents::article_documents(&kb.fields, &recorded);
        let entry = CatalogEntry::of(&recorded, Some(STAT));
        docs[0].add_bytes(kb.fields.catalog, &encode("a.md", &entry).unwrap());
        docs.extend(super::super::documents::article_documents(
            &kb.fields, &bare,
        ));
        for doc in docs {
            writer.add_document(doc).unwrap();
        }
        writer.commit().unwrap();
        kb.reader.reload().unwrap();

        let catalog = load(&kb.reader.searcher(), &kb.fields).unwrap();
        assert_eq!(catalog.len(), 2);
        assert_eq!(catalog["a.md"], entry);
        assert_eq!(catalog["b.md"], CatalogEntry::of(&bare, None));
        assert!(catalog["b.md"].content_hash.is_some());
    }

    #[test]
    fn times_before_the_epoch_are_negative() {
        let before = UNIX_EPOCH - std::time::Duration::from_secs(2);
        assert_eq!(unix_ns(before), -2_000_000_000);
        assert_eq!(unix_ns(UNIX_EPOCH + std::time::Duration::from_nanos(5)), 5);
    }
}
