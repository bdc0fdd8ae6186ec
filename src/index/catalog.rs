//! What the index holds for each file, kept where a start can read it fast.
//!
//! The writer needs, for every indexed file, its id, content hash, audience,
//! includes and the `stat` it was read with. These used to come from the doc
//! store, which meant decompressing and parsing every stored article (at
//! 100k articles: all 370 MB of the store, about 4 s of a 7.9 s start, and
//! that much memory-mapped into the process). Each article document now also
//! carries them as one small JSON record in a bytes fast field
//! ([`Fields::catalog`](super::Fields)): committed atomically with the
//! document, so the catalog can never disagree with the index, and read
//! column by column without touching the doc store.

use std::collections::HashMap;
use std::fs::Metadata;
use std::time::{SystemTime, UNIX_EPOCH};

use tantivy::collector::DocSetCollector;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, Searcher, TantivyDocument, TantivyError, Term};

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

/// What the index holds for one file.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub id: String,
    /// Empty when the file must be parsed again (the rules changed).
    pub content_hash: String,
    pub audience: Audience,
    /// The access value that made the article internal by default.
    pub unrecognized_audience: Option<String>,
    pub sections: usize,
    /// The files its DocFX includes read: a change to one re-parses it.
    pub includes: Vec<String>,
    /// Size and mtime of the file when the indexed content was read; `None`
    /// for a symlink (its own stat says nothing about the target).
    pub stat: Option<FileStat>,
}

impl CatalogEntry {
    pub fn of(article: &Article, stat: Option<FileStat>) -> Self {
        CatalogEntry {
            id: article.id.clone(),
            content_hash: article.content_hash.clone(),
            audience: article.audience,
            unrecognized_audience: article.unrecognized_audience.clone(),
            sections: article.sections.len(),
            includes: article.includes.clone(),
            stat,
        }
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
/// with a NUL (no path holds one) so records sort and share prefixes by path.
/// `[version] path\0 id hash audience:u8 sections:u32 [stat] [unrecognized]
/// includes:u16 (string…)`, where `[x]` is a `0` byte, or `1` and x; a hash of
/// 64 lowercase hex digits is packed to 32 bytes (tag 1), any other is a
/// string (tag 0); a stat is size:u64 mtime_ns:i64 seen_ns:i64.
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
    match packed_hex(&entry.content_hash) {
        Some(packed) => {
            out.push(1);
            out.extend_from_slice(&packed);
        }
        None => {
            out.push(0);
            string(&mut out, &entry.content_hash)?;
        }
    }
    out.push(match entry.audience {
        Audience::Public => 0,
        Audience::Internal => 1,
    });
    out.extend_from_slice(&u32::try_from(entry.sections).ok()?.to_le_bytes());
    match entry.stat {
        Some(stat) => {
            out.push(1);
            out.extend_from_slice(&stat.size.to_le_bytes());
            out.extend_from_slice(&stat.mtime_ns.to_le_bytes());
            out.extend_from_slice(&stat.seen_ns.to_le_bytes());
        }
        None => out.push(0),
    }
    match &entry.unrecognized_audience {
        Some(value) => {
            out.push(1);
            string(&mut out, value)?;
        }
        None => out.push(0),
    }
    out.extend_from_slice(&u16::try_from(entry.includes.len()).ok()?.to_le_bytes());
    for include in &entry.includes {
        string(&mut out, include)?;
    }
    (out.len() < MAX_RECORD_BYTES).then_some(out)
}

/// The entry in a record from [`encode`]; `None` if it is not one.
fn decode(bytes: &[u8]) -> Option<(String, CatalogEntry)> {
    let mut record = Reader(bytes);
    if record.byte()? != RECORD_V1 {
        return None;
    }
    let path_len = record.0.iter().position(|&b| b == 0)?;
    let path = String::from_utf8(record.take(path_len)?.to_vec()).ok()?;
    record.take(1)?;
    let id = record.string()?;
    let content_hash = match record.byte()? {
        1 => unpacked_hex(record.take(32)?),
        0 => record.string()?,
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
        1 => Some(record.string()?),
        _ => return None,
    };
    let count = u16::from_le_bytes(record.array()?);
    let includes = (0..count)
        .map(|_| record.string())
        .collect::<Option<Vec<String>>>()?;
    if !record.0.is_empty() {
        return None;
    }
    Some((
        path,
        CatalogEntry {
            id,
            content_hash,
            audience,
            unrecognized_audience,
            sections,
            includes,
            stat,
        },
    ))
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

    fn string(&mut self) -> Option<String> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

/// The 32 bytes written as `hex` (64 lowercase hex digits, as blake3 prints).
fn packed_hex(hex: &str) -> Option<[u8; 32]> {
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
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn unpacked_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

/// Every article document's entry in `searcher`, by path. Reads the catalog
/// column; only an article without a usable record (too long to store) is
/// read from the doc store, and then without its stat, so its file is
/// hashed once more.
pub fn load(
    searcher: &Searcher,
    fields: &Fields,
) -> Result<HashMap<String, CatalogEntry>, IndexError> {
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
        let reader = searcher.segment_reader(segment_ord as u32);
        let Some(column) = reader.fast_fields().bytes(CATALOG)? else {
            unrecorded.extend(
                docs.iter()
                    .map(|&doc| DocAddress::new(segment_ord as u32, doc)),
            );
            continue;
        };
        // (term ordinal, doc), in ordinal order: the dictionary is then
        // read front to back, each block decoded once.
        let mut ords: Vec<(u64, u32)> = Vec::with_capacity(docs.len());
        for doc in docs {
            match column.term_ords(doc).next() {
                Some(ord) => ords.push((ord, doc)),
                None => unrecorded.push(DocAddress::new(segment_ord as u32, doc)),
            }
        }
        ords.sort_unstable();
        let sorted: Vec<u64> = ords.iter().map(|(ord, _)| *ord).collect();
        let mut docs_in_order = ords.iter().map(|(_, doc)| *doc);
        column
            .dictionary()
            .sorted_ords_to_term_cb(&sorted, |bytes| {
                let doc = docs_in_order.next();
                match decode(bytes) {
                    Some((path, entry)) => {
                        catalog.insert(path, entry);
                    }
                    None => {
                        unrecorded.extend(doc.map(|doc| DocAddress::new(segment_ord as u32, doc)))
                    }
                }
            })
            .map_err(TantivyError::from)?;
    }
    for address in unrecorded {
        let (path, entry) = from_doc_store(searcher, fields, address)?;
        catalog.insert(path, entry);
    }
    Ok(catalog)
}

/// The slow way: the entry from the stored document (no stat).
fn from_doc_store(
    searcher: &Searcher,
    fields: &Fields,
    address: DocAddress,
) -> Result<(String, CatalogEntry), IndexError> {
    let doc: TantivyDocument = searcher.doc(address)?;
    let text = |field| {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let stored: Option<Article> = serde_json::from_str(&text(fields.stored_article)).ok();
    let entry = CatalogEntry {
        id: text(fields.id),
        content_hash: text(fields.content_hash),
        audience: stored.as_ref().map(|a| a.audience).unwrap_or_default(),
        unrecognized_audience: stored
            .as_ref()
            .and_then(|a| a.unrecognized_audience.clone()),
        sections: stored.as_ref().map_or(0, |a| a.sections.len()),
        includes: stored.map(|a| a.includes).unwrap_or_default(),
        stat: None,
    };
    Ok((text(fields.path), entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> CatalogEntry {
        CatalogEntry {
            id: "billing/refunds".into(),
            content_hash: "ab".repeat(32),
            audience: Audience::Internal,
            unrecognized_audience: Some("ITPro".into()),
            sections: 3,
            includes: vec!["includes/a.md".into()],
            stat: Some(FileStat {
                size: 812,
                mtime_ns: 1_700_000_000_123_456_789,
                seen_ns: 1_700_000_100_000_000_000,
            }),
        }
    }

    #[test]
    fn a_record_round_trips() {
        let bytes = encode("billing/refunds.md", &entry()).unwrap();
        assert!(
            bytes[1..].starts_with(b"billing/refunds.md\0"),
            "sorts by path"
        );
        let typical = CatalogEntry {
            id: "gen/081623".into(),
            unrecognized_audience: None,
            includes: Vec::new(),
            ..entry()
        };
        let size = encode("part081/a081623.md", &typical).unwrap().len();
        assert_eq!(size, 98, "JSON took 230");
        assert_eq!(
            decode(&bytes),
            Some(("billing/refunds.md".to_string(), entry()))
        );
        let bare = CatalogEntry {
            unrecognized_audience: None,
            includes: Vec::new(),
            stat: None,
            ..entry()
        };
        let bytes = encode("a.md", &bare).unwrap();
        assert_eq!(decode(&bytes), Some(("a.md".to_string(), bare.clone())));
        // A hash that isn't 64 hex digits is kept as written.
        let odd = CatalogEntry {
            content_hash: "ABC".into(),
            ..bare
        };
        assert_eq!(
            decode(&encode("a.md", &odd).unwrap()),
            Some(("a.md".to_string(), odd))
        );
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
        let long = CatalogEntry {
            includes: vec!["x".repeat(1000); 70],
            ..entry()
        };
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
        let entry = CatalogEntry::of(&recorded, entry().stat);
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
    }

    #[test]
    fn times_before_the_epoch_are_negative() {
        let before = UNIX_EPOCH - std::time::Duration::from_secs(2);
        assert_eq!(unix_ns(before), -2_000_000_000);
        assert_eq!(unix_ns(UNIX_EPOCH + std::time::Duration::from_nanos(5)), 5);
    }
}
