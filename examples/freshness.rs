//! Freshness and footprint on a real help center: full build time,
//! restart-to-ready, edit-to-searchable latency, memory and index size.
//!
//! ```sh
//! cargo run --release --features tools --example freshness -- ../shared/corpus/officedocs-support
//! cargo run --release --features tools --example freshness -- ../shared/corpus/officedocs-support --edits 200 --creates 10
//! ```
//!
//! The corpus's `.md` files are copied (same relative paths) into a temp
//! folder, then:
//! 1. **Full build**: [`Indexer::reconcile`] on a fresh index dir.
//! 2. **Restart-to-ready**: [`Application::build`] over the built index, served
//!    on port 0, polling `GET /ready` until 200; three fresh restarts, median.
//! 3. **Edit-to-searchable**: with the server running, `--edits` times (50 by
//!    default) a unique letters-only token is appended to a random article and
//!    `GET /api/v1/search?q=TOKEN` is polled every ~5 ms until that article is
//!    a hit. `--creates` new articles (5 by default) are created the same way,
//!    then deleted, polling until search no longer finds them and
//!    `GET /api/v1/articles/{id}` answers 404. Latencies run from just before
//!    the write to the first poll that sees the change, so they include the
//!    watcher's debounce (50 ms) and up to one poll interval.
//! 4. **Footprint**: this process's VmRSS/VmHWM (the server runs in-process),
//!    the index size on disk, and the CPU the idle server uses (3 s with no
//!    file changes, one second after it became ready).
//!
//! Set `RUST_LOG=rapport=info` to see the indexer's own batch timings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rapport::article::Selection;
use rapport::config::{DEFAULT_MAX_ARTICLE_BYTES, Settings};
use rapport::index::writer::{ChangeCounts, Indexer, article_files};
use rapport::index::{IndexStatus, KnowledgeIndex};
use rapport::{AppError, Application};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: freshness CORPUS_DIR [--edits N] [--creates N]";
const POLL_INTERVAL: Duration = Duration::from_millis(5);
const READY_DEADLINE: Duration = Duration::from_secs(120);
const CHANGE_DEADLINE: Duration = Duration::from_secs(10);
const RESTARTS: usize = 3;
const IDLE_WINDOW: Duration = Duration::from_secs(3);

struct Options {
    corpus: PathBuf,
    edits: usize,
    creates: usize,
}

impl Options {
    fn from_args() -> Result<Options, BoxError> {
        let mut corpus = None;
        let mut edits = 50;
        let mut creates = 5;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--edits" => edits = args.next().ok_or("--edits needs a number")?.parse()?,
                "--creates" => creates = args.next().ok_or("--creates needs a number")?.parse()?,
                "-h" | "--help" => return Err(USAGE.into()),
                _ if corpus.is_none() => corpus = Some(PathBuf::from(arg)),
                _ => return Err(format!("unexpected argument {arg:?}\n{USAGE}").into()),
            }
        }
        Ok(Options {
            corpus: corpus.ok_or(USAGE)?,
            edits,
            creates,
        })
    }
}

/// xorshift64*: enough randomness to pick files and make tokens, no crate.
struct Rng(u64);

impl Rng {
    fn seeded_from_clock() -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng(nanos | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// "zqx" + 8 lowercase letters: one token for every analyzer, and a word
    /// no real article contains.
    fn token(&mut self) -> String {
        let mut token = String::from("zqx");
        for _ in 0..8 {
            token.push((b'a' + self.below(26) as u8) as char);
        }
        token
    }
}

/// Latencies in milliseconds, summarized as p50/p95/max.
#[derive(Default)]
struct Latencies {
    samples: Vec<f64>,
    timeouts: usize,
}

impl Latencies {
    fn record(&mut self, latency: Option<Duration>) {
        match latency {
            Some(latency) => self.samples.push(latency.as_secs_f64() * 1e3),
            None => self.timeouts += 1,
        }
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = (p * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    fn summary(&self) -> String {
        let mut line = format!(
            "n={:<4} p50 {:>7.1} ms   p95 {:>7.1} ms   max {:>7.1} ms",
            self.samples.len(),
            self.percentile(0.5),
            self.percentile(0.95),
            self.percentile(1.0),
        );
        if self.timeouts > 0 {
            line.push_str(&format!(
                "   ({} not visible within {:?})",
                self.timeouts, CHANGE_DEADLINE
            ));
        }
        line
    }
}

/// An article of the copied corpus that the index holds.
struct Target {
    path: PathBuf,
    id: String,
}

/// A server running in this process, on its own tokio task.
struct RunningServer {
    base: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), AppError>>,
}

impl RunningServer {
    /// Builds and spawns the application; returns it with the time from
    /// `build()` to the first 200 from `/ready`.
    async fn start(
        settings: Settings,
        client: &reqwest::Client,
    ) -> Result<(RunningServer, Duration), BoxError> {
        let started = Instant::now();
        let app = Application::build(settings).await?;
        let base = format!("http://{}", app.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        poll_until(READY_DEADLINE, || async {
            let response = client.get(format!("{base}/ready")).send().await;
            matches!(response, Ok(r) if r.status() == reqwest::StatusCode::OK)
        })
        .await
        .ok_or("the server never became ready")?;
        let ready_after = started.elapsed();
        Ok((RunningServer { base, stop, task }, ready_after))
    }

    /// Graceful shutdown, including the indexer's final commit.
    async fn stop(self) -> Result<Duration, BoxError> {
        let started = Instant::now();
        let _ = self.stop.send(());
        self.task.await??;
        Ok(started.elapsed())
    }

    async fn search(&self, client: &reqwest::Client, text: &str) -> Result<Value, BoxError> {
        // Tokens are letters only, so the URL needs no encoding.
        let url = format!("{}/api/v1/search?q={text}&limit=10", self.base);
        let response = client.get(url).send().await?.error_for_status()?;
        Ok(response.json().await?)
    }

    async fn finds(&self, client: &reqwest::Client, text: &str, id: &str) -> bool {
        match self.search(client, text).await {
            Ok(results) => hit_ids(&results).any(|hit| hit == id),
            Err(error) => {
                eprintln!("search {text:?} failed: {error}");
                false
            }
        }
    }

    async fn status(&self, client: &reqwest::Client) -> Result<Value, BoxError> {
        let url = format!("{}/api/v1/status", self.base);
        Ok(client.get(url).send().await?.json().await?)
    }

    async fn article_is_gone(&self, client: &reqwest::Client, id: &str) -> bool {
        let url = format!("{}/api/v1/articles/{id}", self.base);
        matches!(client.get(url).send().await, Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND)
    }
}

fn hit_ids(results: &Value) -> impl Iterator<Item = &str> {
    results["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|hit| hit["id"].as_str())
}

/// Polls `check` every [`POLL_INTERVAL`] until it holds; the time it took, or
/// `None` past the deadline.
async fn poll_until<F, Fut>(deadline: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Quiet by default: the polls of `/ready` are logged as errors while the
    // index is being built.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let options = Options::from_args()?;
    let workspace = tempfile::tempdir()?;
    let articles_dir = workspace.path().join("articles");
    let index_dir = workspace.path().join("index");
    let mut rng = Rng::seeded_from_clock();

    let started = Instant::now();
    let (copied_files, copied_bytes) = copy_markdown(&options.corpus, &articles_dir)?;
    println!(
        "copied {copied_files} .md files ({:.1} MB) from {} in {:.2} s",
        copied_bytes as f64 / 1e6,
        options.corpus.display(),
        started.elapsed().as_secs_f64()
    );

    // 1. Full build on a fresh index dir.
    let build = {
        let articles_dir = articles_dir.clone();
        let index_dir = index_dir.clone();
        tokio::task::spawn_blocking(move || full_build(&articles_dir, &index_dir)).await??
    };
    let memory_after_build = Memory::now();
    let index_bytes_after_build = folder_bytes(&index_dir);
    println!(
        "full build: {} articles indexed, {} skipped, in {:.2} s",
        build.counts.added,
        build.counts.skipped,
        build.took.as_secs_f64()
    );

    // 2. Restart-to-ready; the last server stays up for the rest.
    let settings = Settings {
        addr: "127.0.0.1:0".parse()?,
        max_article_bytes: DEFAULT_MAX_ARTICLE_BYTES,
        debounce: Duration::from_millis(50),
        // Measure the engine, not the per-client limiter.
        rate_limit_per_second: 0,
        article_rules: rapport::article::ArticleRules::from_env(),
        ..Settings::with_folders(
            articles_dir.clone(),
            index_dir.clone(),
            index_dir.join("data"),
        )
    };
    let client = reqwest::Client::new();
    let mut restarts = Restarts::default();
    let mut server = None;
    for run in 1..=RESTARTS {
        // One writer per index: the previous server must be gone first.
        if let Some(previous) = server.take() {
            restarts
                .stop_ms
                .push(ms(RunningServer::stop(previous).await?));
        }
        let (running, ready) = RunningServer::start(settings.clone(), &client).await?;
        restarts
            .memory_at_first_ready
            .get_or_insert_with(Memory::now);
        println!("restart {run}: ready after {:.0} ms", ms(ready));
        restarts.ready_ms.push(ms(ready));
        server = Some(running);
    }
    let server = server.ok_or("no restarts")?;

    // 4a. Idle CPU: nothing changes in the folder, so nothing should run.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let commits_before = server.status(&client).await?["commits"].as_u64();
    let cpu_before = cpu_seconds();
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle_cpu = (cpu_seconds() - cpu_before) / IDLE_WINDOW.as_secs_f64();
    let commits_after = server.status(&client).await?["commits"].as_u64();

    // 3. Freshness of edits, creates and deletes.
    let status = server.status(&client).await?;
    let skipped_paths: Vec<&str> = status["skipped"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["path"].as_str())
        .collect();
    let targets = edit_targets(&articles_dir, &skipped_paths)?;
    if targets.is_empty() {
        return Err("no indexed article to edit".into());
    }
    let edits = measure_edits(&server, &client, &targets, options.edits, &mut rng).await?;
    let (creates, deletes) =
        measure_creates_and_deletes(&server, &client, &targets, options.creates, &mut rng).await?;

    // 4b. Footprint, with the server still up; the index after its final commit.
    let memory_at_end = Memory::now();
    let status = server.status(&client).await?;
    restarts.stop_ms.push(ms(server.stop().await?));
    let index_bytes_at_end = folder_bytes(&index_dir);

    let build_secs = build.took.as_secs_f64();
    restarts.ready_ms.sort_by(f64::total_cmp);
    restarts.stop_ms.sort_by(f64::total_cmp);
    println!();
    println!("## Freshness summary ({})", options.corpus.display());
    println!(
        "corpus:              {copied_files} .md files, {:.1} MB",
        copied_bytes as f64 / 1e6
    );
    println!(
        "full build:          {build_secs:.2} s, {:.0} articles/s ({} indexed, {} skipped)",
        build.counts.added as f64 / build_secs,
        build.counts.added,
        build.counts.skipped
    );
    println!(
        "restart-to-ready:    median {:.0} ms (runs: {})",
        median(&restarts.ready_ms),
        join_ms(&restarts.ready_ms)
    );
    println!(
        "graceful stop:       median {:.0} ms (runs: {})",
        median(&restarts.stop_ms),
        join_ms(&restarts.stop_ms)
    );
    println!("edit → searchable:   {}", edits.summary());
    println!("create → searchable: {}", creates.summary());
    println!("delete → gone:       {}", deletes.summary());
    println!("RSS after build:     {memory_after_build}");
    if let Some(memory) = &restarts.memory_at_first_ready {
        println!("RSS at first ready:  {memory}");
    }
    println!("RSS at end:          {memory_at_end}");
    println!(
        "index on disk:       {:.1} MiB after the full build, {:.1} MiB at the end",
        mib(index_bytes_after_build),
        mib(index_bytes_at_end)
    );
    println!(
        "idle server CPU:     {:.0}% of one core over {:?} with no file changes (commits {} → {})",
        idle_cpu * 100.0,
        IDLE_WINDOW,
        commits_before.unwrap_or_default(),
        commits_after.unwrap_or_default()
    );
    println!(
        "status at end:       {} articles, {} sections, {} commits since start, {} skipped",
        status["articles"],
        status["sections"],
        status["commits"],
        status["skipped"].as_array().map_or(0, Vec::len)
    );
    print_skipped(&build.skipped);
    Ok(())
}

/// Restart timings in milliseconds, and memory once the first server is up.
#[derive(Default)]
struct Restarts {
    ready_ms: Vec<f64>,
    stop_ms: Vec<f64>,
    memory_at_first_ready: Option<Memory>,
}

/// Appends a unique token to a random article, `count` times, one at a time.
async fn measure_edits(
    server: &RunningServer,
    client: &reqwest::Client,
    targets: &[Target],
    count: usize,
    rng: &mut Rng,
) -> Result<Latencies, BoxError> {
    let mut edits = Latencies::default();
    for _ in 0..count {
        let target = &targets[rng.below(targets.len())];
        let token = rng.token();
        let written = Instant::now();
        append(&target.path, &format!("\n\nFreshness probe {token}.\n"))?;
        let seen = poll_until(CHANGE_DEADLINE, || server.finds(client, &token, &target.id)).await;
        edits.record(seen.map(|_| written.elapsed()));
    }
    Ok(edits)
}

/// Creates `count` new articles next to random existing ones, each searchable
/// by its own token, then deletes them again.
async fn measure_creates_and_deletes(
    server: &RunningServer,
    client: &reqwest::Client,
    targets: &[Target],
    count: usize,
    rng: &mut Rng,
) -> Result<(Latencies, Latencies), BoxError> {
    let mut creates = Latencies::default();
    let mut created = Vec::new();
    for _ in 0..count {
        let token = rng.token();
        let id = format!("freshness-{token}");
        let folder = targets[rng.below(targets.len())]
            .path
            .parent()
            .ok_or("an article file has a parent folder")?;
        let path = folder.join(format!("{id}.md"));
        let text = format!(
            "---\nid: {id}\ntitle: Freshness probe {token}\n---\n\n# Freshness probe\n\nThe word {token} is only here.\n"
        );
        let written = Instant::now();
        std::fs::write(&path, text)?;
        let seen = poll_until(CHANGE_DEADLINE, || server.finds(client, &token, &id)).await;
        creates.record(seen.map(|_| written.elapsed()));
        created.push((path, id, token));
    }
    let mut deletes = Latencies::default();
    for (path, id, token) in &created {
        let removed = Instant::now();
        std::fs::remove_file(path)?;
        let gone = poll_until(CHANGE_DEADLINE, || async {
            !server.finds(client, token, id).await && server.article_is_gone(client, id).await
        })
        .await;
        deletes.record(gone.map(|_| removed.elapsed()));
    }
    Ok((creates, deletes))
}

/// Copies every article file under `from` to `to`, keeping relative paths.
fn copy_markdown(from: &Path, to: &Path) -> Result<(usize, u64), BoxError> {
    let mut files = 0;
    let mut bytes = 0;
    for (relative, path) in article_files(from, from, &Selection::default()) {
        let destination = to.join(relative);
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent)?;
        }
        bytes += std::fs::copy(&path, &destination)?;
        files += 1;
    }
    Ok((files, bytes))
}

/// What building the index from scratch did and took.
struct FullBuild {
    counts: ChangeCounts,
    /// The reconcile alone (not opening the index).
    took: Duration,
    /// (path, reason) of every file the indexer refused.
    skipped: Vec<(String, String)>,
}

/// Builds the index from scratch. Dropping the indexer at the end releases
/// the writer lock for the server.
fn full_build(articles_dir: &Path, index_dir: &Path) -> Result<FullBuild, BoxError> {
    let kb = Arc::new(KnowledgeIndex::open_or_create(index_dir)?);
    let status = Arc::new(RwLock::new(IndexStatus::default()));
    let mut indexer = Indexer::new(
        kb,
        articles_dir,
        DEFAULT_MAX_ARTICLE_BYTES,
        status.clone(),
        Arc::default(),
    )?
    .with_rules(rapport::article::ArticleRules::from_env());
    let started = Instant::now();
    let counts = indexer.reconcile(|_, _| {})?;
    let took = started.elapsed();
    drop(indexer);
    let skipped = status
        .read()
        .map_err(|_| "status lock poisoned")?
        .skipped
        .values()
        .map(|s| (s.path.clone(), s.reason.clone()))
        .collect();
    Ok(FullBuild {
        counts,
        took,
        skipped,
    })
}

/// Articles that parse and aren't skipped by the server, with their ids.
fn edit_targets(articles_dir: &Path, skipped: &[&str]) -> Result<Vec<Target>, BoxError> {
    let mut targets = Vec::new();
    for (relative, path) in article_files(articles_dir, articles_dir, &Selection::default()) {
        if skipped.contains(&relative.as_str()) {
            continue;
        }
        if let Ok(article) = rapport::article::parse(&std::fs::read(&path)?, &relative) {
            targets.push(Target {
                path,
                id: article.id,
            });
        }
    }
    Ok(targets)
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
    file.write_all(text.as_bytes())
}

fn print_skipped(skipped: &[(String, String)]) {
    if skipped.is_empty() {
        return;
    }
    let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (path, reason) in skipped {
        by_reason.entry(reason).or_default().push(path);
    }
    println!("skipped files:");
    for (reason, paths) in by_reason {
        println!("  {} × {reason}", paths.len());
        for path in paths.iter().take(5) {
            println!("      {path}");
        }
        if paths.len() > 5 {
            println!("      … and {} more", paths.len() - 5);
        }
    }
}

/// This process's memory from `/proc/self/status`, in KiB (NaN where
/// unavailable). File-backed RSS is mostly the index's memory-mapped files.
struct Memory {
    rss: f64,
    peak: f64,
    anonymous: f64,
    file: f64,
}

impl Memory {
    fn now() -> Memory {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .unwrap_or(f64::NAN)
        };
        Memory {
            rss: kib("VmRSS:"),
            peak: kib("VmHWM:"),
            anonymous: kib("RssAnon:"),
            file: kib("RssFile:"),
        }
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |kib: f64| kib / 1024.0;
        write!(
            f,
            "{:.1} MiB (anon {:.1}, file {:.1}; peak so far {:.1} MiB)",
            mib(self.rss),
            mib(self.anonymous),
            mib(self.file),
            mib(self.peak)
        )
    }
}

/// CPU time (user + system) this process has used so far, in seconds.
fn cpu_seconds() -> f64 {
    // Linux reports these in USER_HZ ticks, 100 per second on every
    // mainstream architecture.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesized command name start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    ticks / TICKS_PER_SECOND
}

fn folder_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.metadata().ok())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len())
        .sum()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn median(sorted: &[f64]) -> f64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn join_ms(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}
