//! Where the index lives: tantivy's [`MmapDirectory`], except that the doc
//! store is read with `pread` rather than through the mapping.
//!
//! A search reads one compressed block (about 16 KB) of the doc store per
//! hit, at random places in a file of hundreds of MB. Through a mapping, the
//! kernel maps the pages around each fault too (64 KB here), and all of them
//! count as the process's resident memory: at 100k articles the store took
//! 150–170 MB of RSS after the benchmark's 16 s of searches. Read with
//! `pread`, a block costs one system call and a copy; the file's pages stay
//! in the page cache, which the kernel frees under pressure either way, but
//! are no longer rapport's resident memory. Postings, term dictionaries and
//! columns stay mapped: they are read in place, often and in long runs.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::HasLen;
use tantivy::directory::error::{
    DeleteError, LockError, OpenDirectoryError, OpenReadError, OpenWriteError,
};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, OwnedBytes, WatchCallback,
    WatchHandle, WritePtr,
};

/// Reads at least this long go through the mapping: only a merge reads that
/// much of a store (the whole of it, to stack it into the merged segment),
/// and copying hundreds of MB to the heap for that would cost more than it
/// saves.
const MAP_FROM: usize = 1 << 20;

/// [`MmapDirectory`] with doc store files read by `pread` (see the module).
#[derive(Clone, Debug)]
pub struct IndexDirectory {
    mapped: MmapDirectory,
    root: PathBuf,
}

impl IndexDirectory {
    pub fn open(dir: &Path) -> Result<IndexDirectory, OpenDirectoryError> {
        Ok(IndexDirectory {
            mapped: MmapDirectory::open(dir)?,
            root: dir.to_path_buf(),
        })
    }
}

fn is_doc_store(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "store")
}

impl Directory for IndexDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        let mapped = self.mapped.get_file_handle(path)?;
        if !cfg!(unix) || !is_doc_store(path) || mapped.len() == 0 {
            return Ok(mapped);
        }
        // Opened while the file exists: a merge may delete it later, and the
        // open file keeps its data readable (as the mapping does).
        let file = File::open(self.root.join(path))
            .map_err(|error| OpenReadError::wrap_io_error(error, path.to_path_buf()))?;
        Ok(Arc::new(ReadStore { file, mapped }))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.mapped.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.mapped.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.mapped.open_write(path)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.mapped.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.mapped.atomic_write(path, data)
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.mapped.sync_directory()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.mapped.acquire_lock(lock)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.mapped.watch(watch_callback)
    }
}

/// A doc store file: blocks by `pread`, long reads from the mapping.
#[derive(Debug)]
struct ReadStore {
    file: File,
    /// The same file mapped (nothing is resident until read through it).
    mapped: Arc<dyn FileHandle>,
}

impl HasLen for ReadStore {
    fn len(&self) -> usize {
        self.mapped.len()
    }
}

impl FileHandle for ReadStore {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        if range.len() >= MAP_FROM {
            return self.mapped.read_bytes(range);
        }
        read_at(&self.file, range)
    }
}

#[cfg(unix)]
fn read_at(file: &File, range: Range<usize>) -> io::Result<OwnedBytes> {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0; range.len()];
    file.read_exact_at(&mut bytes, range.start as u64)?;
    Ok(OwnedBytes::new(bytes))
}

#[cfg(not(unix))]
fn read_at(_: &File, _: Range<usize>) -> io::Result<OwnedBytes> {
    unreachable!("doc stores are read by pread only on unix")
}

#[cfg(test)]
mod tests {
    use tantivy::schema::{STORED, Schema, TEXT, Value};
    use tantivy::{Index, IndexSettings, TantivyDocument, doc};

    use super::*;

    #[test]
    fn stored_documents_read_the_same_through_pread() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = Schema::builder();
        let text = builder.add_text_field("text", TEXT | STORED);
        let index = Index::create(
            IndexDirectory::open(dir.path()).unwrap(),
            builder.build(),
            IndexSettings::default(),
        )
        .unwrap();
        let mut writer: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
        for i in 0..2000 {
            writer
                .add_document(doc!(text => format!("document {i} {}", "word ".repeat(i % 50))))
                .unwrap();
        }
        writer.commit().unwrap();
        // A merge reads whole stores (through the mapping, past MAP_FROM).
        let segments = index.searchable_segment_ids().unwrap();
        if segments.len() > 1 {
            writer.merge(&segments).wait().unwrap();
        }
        drop(writer);

        let reopened = Index::open(IndexDirectory::open(dir.path()).unwrap()).unwrap();
        let searcher = reopened.reader().unwrap().searcher();
        assert_eq!(searcher.num_docs(), 2000);
        let mut seen = 0;
        for segment_ord in 0..searcher.segment_readers().len() as u32 {
            let reader = searcher.segment_reader(segment_ord);
            for doc_id in 0..reader.max_doc() {
                let doc: TantivyDocument = searcher
                    .doc(tantivy::DocAddress::new(segment_ord, doc_id))
                    .unwrap();
                let stored = doc.get_first(text).and_then(|v| v.as_str()).unwrap();
                assert!(stored.starts_with("document "), "{stored}");
                seen += 1;
            }
        }
        assert_eq!(seen, 2000);
    }

    #[test]
    fn a_doc_store_is_a_store_file() {
        assert!(is_doc_store(Path::new("0123abcd.store")));
        assert!(!is_doc_store(Path::new("0123abcd.idx")));
        assert!(!is_doc_store(Path::new("meta.json")));
    }
}
