//! Exports a folder of articles as JSON lines, parsed by rapport's own
//! article parser, so the benchmark harness (`scripts/bench/run`) feeds every
//! peer engine exactly the text rapport indexes: same ids, titles, summaries,
//! tags, headings and body (front matter, templates and directives removed).
//!
//! ```sh
//! cargo run --release --features tools --example bench_export -- ARTICLES_DIR > articles.jsonl
//! ```
//!
//! One line per article: `{"id", "title", "summary", "tags", "headings", "body"}`.
//! Files rapport would skip (bad front matter, duplicate id, too large) are
//! skipped here too, with a line on stderr; internal articles are left out, as
//! an anonymous portal caller never sees them.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use rapport::article::Audience;
use rapport::article::Selection;
use rapport::config::DEFAULT_MAX_ARTICLE_BYTES;
use rapport::index::writer::article_files;

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: bench_export ARTICLES_DIR")?,
    );
    let dir = std::fs::canonicalize(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut seen = HashSet::new();
    let (mut written, mut skipped) = (0usize, 0usize);
    for (relative, path) in article_files(&dir, &dir, &Selection::default()) {
        let article = match rapport::article::load(
            &path,
            &relative,
            DEFAULT_MAX_ARTICLE_BYTES,
            &rapport::article::ArticleRules::from_env(),
        ) {
            Ok(article) => article,
            Err(error) => {
                eprintln!("skipped {relative}: {error}");
                skipped += 1;
                continue;
            }
        };
        if article.audience == Audience::Internal || !seen.insert(article.id.clone()) {
            skipped += 1;
            continue;
        }
        let line = serde_json::json!({
            "id": article.id,
            "title": article.title,
            "summary": article.summary,
            "tags": article.tags,
            "headings": article.headings().collect::<Vec<_>>().join("\n"),
            "body": article.body_text(),
        });
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush()?;
    eprintln!("exported {written} articles, skipped {skipped}");
    Ok(())
}
