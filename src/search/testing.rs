//! An in-memory index the search tests write to directly, commit by commit,
//! so they choose how documents fall into segments.

use std::sync::Arc;

use tantivy::indexer::NoMergePolicy;
use tantivy::{Index, IndexWriter, ReloadPolicy, Searcher, Term};

use crate::index::documents::article_documents;
use crate::index::{KnowledgeIndex, schema};

pub struct TestIndex {
    pub kb: Arc<KnowledgeIndex>,
    writer: IndexWriter,
}

impl TestIndex {
    pub fn new() -> TestIndex {
        let (schema, fields) = schema::build_schema();
        let index = Index::create_in_ram(schema);
        schema::register_analyzers(index.tokenizers());
        schema::register_analyzers(index.fast_field_tokenizer());
        let writer: IndexWriter = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        // Segments stay as committed: tests decide what shares a segment.
        writer.set_merge_policy(Box::new(NoMergePolicy));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .expect("reader");
        TestIndex {
            kb: Arc::new(KnowledgeIndex {
                index,
                reader,
                fields,
                dir: std::path::PathBuf::new(),
            }),
            writer,
        }
    }

    /// Adds the article at `path` (its documents), uncommitted. `body` may
    /// hold `## ` headings, which start sections.
    pub fn add(&mut self, path: &str, audience: &str, title: &str, body: &str) {
        let source = format!("---\ntitle: {title}\naudience: {audience}\n---\n{body}\n");
        let article = crate::article::parse(source.as_bytes(), path).expect("article parses");
        for doc in article_documents(&self.kb.fields, &article) {
            self.writer.add_document(doc).expect("add");
        }
    }

    /// Adds the article at `path` from its whole source (front matter
    /// included), uncommitted.
    pub fn add_source(&mut self, path: &str, source: &str) {
        let article = crate::article::parse(source.as_bytes(), path).expect("article parses");
        for doc in article_documents(&self.kb.fields, &article) {
            self.writer.add_document(doc).expect("add");
        }
    }

    /// Deletes every document of the article at `path`, uncommitted.
    pub fn delete(&mut self, path: &str) {
        self.writer
            .delete_term(Term::from_field_text(self.kb.fields.path, path));
    }

    /// Commits (one new segment for what was added) and reloads the reader.
    pub fn commit(&mut self) {
        self.writer.commit().expect("commit");
        self.kb.reader.reload().expect("reload");
    }

    pub fn searcher(&self) -> Searcher {
        self.kb.reader.searcher()
    }
}

/// A small help center: (path, title, body) of each article.
pub const REFUNDS: (&str, &str, &str) = (
    "billing/refunds.md",
    "Refunds for customers",
    "Ask us for a refund within thirty days.\n\n## Partial refunds\n\nPartial refunds are possible for annual plans.",
);
pub const INVOICES: (&str, &str, &str) = (
    "billing/invoices.md",
    "Download invoices",
    "Invoices are on the billing page.\n\n## Passwords\n\nReset your password to see invoices.",
);
pub const PASSWORD: (&str, &str, &str) = (
    "account/password.md",
    "Reset your password",
    "Use the reset link.\n\n## Lost phone\n\nRecovery codes help when your phone is lost.",
);
/// Internal articles using the public articles' words, in titles and
/// bodies, and words of their own ("pass", "invoicing", "refundable").
pub const PLAYBOOK: (&str, &str, &str) = (
    "agents/refund-playbook.md",
    "Refund playbook for invoices",
    "Agents may refund invoices up to 75 dollars. Pass the password check.\n\n## Escalation\n\nRefunds above the limit go to billing.",
);
pub const PHONES: (&str, &str, &str) = (
    "agents/phones.md",
    "Lost phone passcode",
    "Passcode resets for lost phones: invoicing stays refundable.",
);
/// Plain words, a word only internal articles hold as typed ("pass"), a
/// prefix ("invoic") and a typo ("pasword").
pub const QUERIES: &[&str] = &[
    "refund",
    "refunds for invoices",
    "pass",
    "invoic",
    "pasword reset",
    "lost phone",
    "billing",
];

pub fn add(index: &mut TestIndex, (path, title, body): (&str, &str, &str), audience: &str) {
    index.add(path, audience, title, body);
}

/// The public articles in two segments, one article deleted and re-added
/// (deleted documents still count in tantivy's statistics); with
/// `internal`, internal articles in the first segment (mixed) and in a
/// third of their own. The first segment keeps a live public article, so
/// that its deleted documents linger with or without internal ones (tantivy
/// drops a segment whose every document is deleted).
pub fn help_center(internal: bool) -> TestIndex {
    let mut index = TestIndex::new();
    add(&mut index, REFUNDS, "public");
    add(&mut index, PASSWORD, "public");
    if internal {
        add(&mut index, PLAYBOOK, "internal");
    }
    index.commit();
    index.delete(REFUNDS.0);
    add(&mut index, REFUNDS, "public");
    add(&mut index, INVOICES, "public");
    index.commit();
    if internal {
        add(&mut index, PHONES, "internal");
        index.commit();
    }
    index
}
