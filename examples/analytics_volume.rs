//! Analytics storage cost: records N query events (plus one feedback event
//! per ten queries) through the real writer and reports the write rate and
//! the database size, scaled to one million events.
//!
//! ```sh
//! cargo run --release --features tools --example analytics_volume -- [--events 1000000]
//! ```

use std::time::{Duration, Instant};

use rapport::analytics::redact::normalize_query;
use rapport::analytics::{Analytics, Channel, FeedbackEvent, FeedbackKind, QueryEvent, now_ms};

const QUESTIONS: &[&str] = &[
    "how do I reset my password",
    "charged twice this month",
    "export invoices to csv",
    "connect stripe account",
    "recurring invoice not sent",
    "where are my recovery codes",
    "change the email on my account",
    "receipt scanning offline",
    "add a team member",
    "vat number on invoices",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut events: u64 = 1_000_000;
    while let Some(arg) = args.next() {
        if arg == "--events" {
            events = args.next().ok_or("--events needs a number")?.parse()?;
        }
    }
    let dir = tempfile::tempdir()?;
    let store = std::sync::Arc::new(rapport::store::sqlite::SqliteStore::open(dir.path())?);
    let analytics = Analytics::open(dir.path(), Duration::from_secs(90 * 24 * 3600), store)?;
    let started = Instant::now();
    let mut feedback = 0;
    for i in 0..events {
        let question = QUESTIONS[(i % QUESTIONS.len() as u64) as usize];
        let query_id = format!("{:032x}", u128::from(i) * 0x9E37_79B9_7F4A_7C15);
        analytics.record_query(QueryEvent {
            query_id: query_id.clone(),
            at_ms: now_ms(),
            channel: if i % 4 == 0 {
                Channel::Answer
            } else {
                Channel::Search
            },
            query: normalize_query(&format!("{question} {}", i % 97)),
            filters: serde_json::json!({"category": null, "context": {"product": "web"}}),
            result_count: i % 11,
            top_ids: (0..5)
                .map(|k| format!("category/article-{}", (i + k) % 60))
                .collect(),
            confidence: (i % 4 == 0).then_some(0.73),
            handoff_reasons: if i % 8 == 0 {
                vec!["low_confidence".into()]
            } else {
                Vec::new()
            },
            latency_ms: 1.7,
            session_hash: Some(analytics.hash_session(&format!("session-{}", i / 5))),
            burst_key: None,
            auto_reply: false,
        });
        if i % 10 == 0 {
            feedback += 1;
            analytics.record_feedback(FeedbackEvent {
                query_id,
                article_id: format!("category/article-{}", i % 60),
                event: FeedbackKind::Click,
                comment: None,
                at_ms: now_ms(),
            });
        }
        if i % 5_000 == 4_999 {
            analytics.flush(); // keep the queue from overflowing: measure storage, not drops
        }
    }
    analytics.flush();
    let elapsed = started.elapsed().as_secs_f64();
    let size: u64 = std::fs::read_dir(dir.path())?
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("analytics.sqlite")
        })
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let total = events + feedback;
    println!(
        "{events} query events + {feedback} feedback events in {elapsed:.1} s ({:.0} events/s)",
        total as f64 / elapsed
    );
    println!("dropped: {}", analytics.dropped());
    println!(
        "database: {:.1} MiB, {:.1} MiB per million events ({:.0} bytes/event)",
        size as f64 / (1 << 20) as f64,
        size as f64 / (1 << 20) as f64 / (total as f64 / 1e6),
        size as f64 / total as f64
    );
    Ok(())
}
