//! Soak test: the real `rapport serve` process under concurrent `/search`,
//! `/autocomplete` and `/answer` load while this process creates, edits and
//! deletes articles. Reports requests, errors (no 5xx allowed), p50/p99 per
//! endpoint, server RSS at start and end, and checks that no update was lost:
//! after the run the index must match the folder exactly.
//!
//! ```sh
//! cargo build --release
//! cargo run --release --features tools --example soak -- ../shared/corpus/officedocs-support --seconds 60 --edits 500
//! cargo run --release --features tools --example soak -- articles --seconds 10 --edits 100   # quick
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rapport::article::Selection;
use rapport::index::writer::article_files;
use rapport::search::synonyms::SYNONYMS_FILE;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Anonymous status counts public articles only; the soak compares the whole
/// folder (internal articles included) with the index, so it asks as admin.
const ADMIN_KEY: &str = "soak-admin";

const QUERIES: &[&str] = &[
    "reset password",
    "outlook crashes when opening",
    "sync error",
    "cannot sign in",
    "charged twice",
    "teams meeting audio",
    "export to csv",
    "shared mailbox permissions",
    "recurring invoice",
    "two step verification",
    "onedrive not syncing",
    "license activation",
];

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let (mut corpus, mut seconds, mut edits, mut clients) =
        (PathBuf::from("articles"), 60.0, 500usize, 16usize);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().ok_or("--seconds S")?.parse()?,
            "--edits" => edits = args.next().ok_or("--edits N")?.parse()?,
            "--clients" => clients = args.next().ok_or("--clients N")?.parse()?,
            _ => corpus = PathBuf::from(arg),
        }
    }
    let work = tempfile::tempdir()?;
    let articles = work.path().join("articles");
    copy_markdown(&corpus, &articles)?;
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(&articles, work.path(), port)?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client
        .get(format!("{base}/ready"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        if started.elapsed() > Duration::from_secs(120) {
            return Err("server never became ready".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_start = rss_kib(server.id());
    println!(
        "ready in {:.1} s; server RSS {} MiB",
        started.elapsed().as_secs_f64(),
        rss_start / 1024
    );

    let duration = Duration::from_secs_f64(seconds);
    let latencies: Arc<Mutex<BTreeMap<&'static str, Vec<f64>>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let load_start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, base, latencies, failures) = (
            client.clone(),
            base.clone(),
            latencies.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while load_start.elapsed() < duration {
                let query = QUERIES[i % QUERIES.len()];
                let (endpoint, request) = match i % 3 {
                    0 => (
                        "search",
                        client.get(format!(
                            "{base}/api/v1/search?q={}",
                            query.replace(' ', "+")
                        )),
                    ),
                    1 => (
                        "autocomplete",
                        client.get(format!(
                            "{base}/api/v1/autocomplete?q={}",
                            &query[..query.len().min(4)]
                        )),
                    ),
                    _ => (
                        "answer",
                        client
                            .post(format!("{base}/api/v1/answer"))
                            .json(&serde_json::json!({"question": query})),
                    ),
                };
                i += 1;
                let sent = Instant::now();
                match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let _ = response.bytes().await;
                        let ms = sent.elapsed().as_secs_f64() * 1e3;
                        latencies
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(endpoint)
                            .or_default()
                            .push(ms);
                        if !status.is_success() {
                            failures
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(format!("{endpoint}: {status}"));
                        }
                    }
                    Err(error) => failures
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(format!("{endpoint}: {error}")),
                }
            }
        }));
    }

    // RSS over time, to see whether memory levels off.
    let pid = server.id();
    let samples = tokio::spawn(async move {
        let mut samples = Vec::new();
        while load_start.elapsed() < duration {
            tokio::time::sleep(duration.div_f64(6.0)).await;
            samples.push(rss_kib(pid) / 1024);
        }
        samples
    });

    // Meanwhile: creates, edits and deletes, spread over the run.
    let mut expected: BTreeMap<String, Option<u64>> = BTreeMap::new(); // id → version (None = deleted)
    let pause = duration.div_f64(edits.max(1) as f64);
    for n in 0..edits as u64 {
        let slot = n % 97;
        let id = format!("soak/article-{slot}");
        let path = articles.join(format!("{id}.md"));
        let exists = matches!(expected.get(&id), Some(Some(_)));
        if exists && n % 5 == 4 {
            std::fs::remove_file(&path)?;
            expected.insert(id, None);
        } else {
            std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
            std::fs::write(
                &path,
                format!(
                    "---\ntitle: Soak article {slot}\n---\nVersion {n} of soak article {slot}.\n"
                ),
            )?;
            expected.insert(id, Some(n));
        }
        tokio::time::sleep(pause).await;
    }
    for task in tasks {
        let _ = task.await;
    }
    let rss_end = rss_kib(server.id());
    let rss_samples = samples.await.unwrap_or_default();

    // No lost updates: wait for the last batch, then compare.
    let files = count_markdown(&articles);
    let settle = Instant::now();
    loop {
        let status: serde_json::Value = client
            .get(format!("{base}/api/v1/status"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await?
            .json()
            .await?;
        if status["articles"].as_u64() == Some(files as u64)
            || settle.elapsed() > Duration::from_secs(30)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut lost = Vec::new();
    for (id, version) in &expected {
        let response = client
            .get(format!("{base}/api/v1/articles/{id}"))
            .send()
            .await?;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let ok = match version {
            Some(v) => {
                status == 200
                    && body["markdown"]
                        .as_str()
                        .is_some_and(|m| m.contains(&format!("Version {v} of")))
            }
            None => status == 404,
        };
        if !ok {
            lost.push(format!("{id}: expected {version:?}, got {status}"));
        }
    }
    let status: serde_json::Value = client
        .get(format!("{base}/api/v1/status"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await?
        .json()
        .await?;
    let _ = server.kill();
    let _ = server.wait();

    let latencies = latencies.lock().unwrap_or_else(|e| e.into_inner());
    let failures = failures.lock().unwrap_or_else(|e| e.into_inner());
    let total: usize = latencies.values().map(Vec::len).sum();
    let server_errors = failures.iter().filter(|f| f.contains(": 5")).count();
    println!("\n{clients} clients for {seconds} s while {edits} creates/edits/deletes ran");
    println!("| endpoint | requests | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    for (endpoint, values) in latencies.iter() {
        let mut v = values.clone();
        v.sort_by(f64::total_cmp);
        let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "| {endpoint} | {} | {:.2} | {:.2} | {:.2} |",
            v.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    println!(
        "total requests: {total} ({:.0} req/s); non-2xx: {}; 5xx: {server_errors}",
        total as f64 / seconds,
        failures.len()
    );
    println!(
        "server RSS: {} MiB at start, {} MiB at end; during the run: {:?} MiB",
        rss_start / 1024,
        rss_end / 1024,
        rss_samples
    );
    println!(
        "index vs folder: {} files, {} indexed, {} checked ids, {} lost updates",
        files,
        status["articles"],
        expected.len(),
        lost.len()
    );
    for line in lost.iter().take(10) {
        println!("  lost: {line}");
    }
    if server_errors > 0 || !lost.is_empty() || status["articles"].as_u64() != Some(files as u64) {
        return Err("soak test failed".into());
    }
    Ok(())
}

fn start_server(articles: &Path, work: &Path, port: u16) -> Result<Child, BoxError> {
    // `scripts/trust.sh` passes the binary it built; else the default target dir.
    let binary = std::env::var_os("RAPPORT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/rapport"));
    Ok(Command::new(binary)
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--articles",
        ])
        .arg(articles)
        .arg("--index")
        .arg(work.join("index"))
        .arg("--data-dir")
        .arg(work.join("data"))
        .env("RAPPORT_RATE_LIMIT", "0")
        .env("RAPPORT_ADMIN_KEYS", ADMIN_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The articles (the indexer's own file rule) and the synonyms file.
fn copy_markdown(from: &Path, to: &Path) -> Result<(), BoxError> {
    let synonyms = from.join(SYNONYMS_FILE);
    let files = article_files(from, from, &Selection::default())
        .into_iter()
        .chain(
            synonyms
                .is_file()
                .then(|| (SYNONYMS_FILE.to_string(), synonyms)),
        );
    for (relative, path) in files {
        let target = to.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&path, target)?;
    }
    Ok(())
}

fn count_markdown(dir: &Path) -> usize {
    article_files(dir, dir, &Selection::default()).len()
}
