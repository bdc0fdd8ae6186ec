//! The semantic speed budget under load: what turning on the sentence model
//! costs a running server, measured end to end over real HTTP.
//!
//! ```sh
//! rapport model fetch                      # models/all-MiniLM-L6-v2
//! cargo run --release --features tools --example semantic_load
//! cargo run --release --features tools --example semantic_load -- --seconds 8 --rounds 3
//! ```
//!
//! Arguments: `[--seconds N] [--rounds N]`: the length of one timed round
//! (default 8 s) and the rounds per server and workload (default 3).
//!
//! Two real servers ([`Application`]) run in-process on port 0 over the
//! bundled `articles/`, each with its own temp index and data folder: A
//! lexical (`ModelChoice::Off`), B with `models/all-MiniLM-L6-v2`. Both run
//! through the whole measurement, so a busy machine slows them alike.
//!
//! - **Start-up.** B's cold start (empty index folder): from
//!   `Application::build` to `GET /ready` 200 (the index is built) and to
//!   `"semantic": {"state": "ready"}` in `/api/v1/status` (every section
//!   embedded). Then B is stopped and a new B started on the *same* index
//!   folder: the warm restart, with the vectors cached in `<index>/vectors/`.
//!   That second B is the one measured below. A's start-up is shown too.
//! - **Keyword search.** `GET /api/v1/search?q=…` with ~40 short queries of
//!   a help portal for an invoicing app, cycled; closed loop with 32 clients
//!   (tokio tasks sharing one reqwest client), each sending its next request
//!   as soon as the last response is read. A 2 s warm-up per server, then
//!   timed rounds alternating A, B, A, B, … Budget: B's median requests/s
//!   ≥ 85 % of A's.
//! - **Bot answers.** `POST /api/v1/answer` with ~30 customer questions in
//!   natural language, cycled as a real bot's repeat, 8 clients, same
//!   alternation. Budget: B's p99 ≤ 50 ms (pooled over its rounds).
//!
//! A latency is wall-clock time from sending a request to having read the
//! whole body. Requests/s is the round's completed requests over its wall
//! time (requests in flight at the end are let finish and counted). Every
//! response must be 200; anything else is an error (and still timed). The
//! server's own `took_ms` and the share of answers (rather than hand-offs)
//! are read from the body without parsing the JSON. B keeps a cache of
//! recent query vectors, so after the warm-up every query here is cached:
//! the warm-up rows show the first-seen (uncached) cost. The clients and both
//! servers share one multi-threaded tokio runtime in this process, and the
//! machine's cores; rate limiting is off, analytics on (as deployed).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rapport::Application;
use rapport::config::{ModelChoice, Settings};
use reqwest::{Client, RequestBuilder, StatusCode, Url};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: semantic_load [--seconds N] [--rounds N] [--unique]";
const AGENT_KEY: &str = "load-key";
const MODEL_DIR: &str = "models/all-MiniLM-L6-v2";
const SEARCH_CLIENTS: usize = 32;
const ANSWER_CLIENTS: usize = 8;
const WARM_UP: Duration = Duration::from_secs(2);
const READY_DEADLINE: Duration = Duration::from_secs(600);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// B's search throughput must be at least this share of A's.
const THROUGHPUT_BUDGET: f64 = 0.85;
/// B's answer p99 must be at most this, in milliseconds.
const ANSWER_P99_BUDGET_MS: f64 = 50.0;

/// What people type into a help portal's search box.
const KEYWORD_QUERIES: &[&str] = &[
    "reset password",
    "refund",
    "invoice template",
    "late fees",
    "bank feed",
    "2fa",
    "export data",
    "recurring invoice",
    "stripe",
    "paypal",
    "vat",
    "sales tax",
    "receipt scanning",
    "mobile app",
    "cancel subscription",
    "change plan",
    "billing",
    "duplicate charge",
    "payout",
    "invite accountant",
    "team members",
    "change email",
    "delete account",
    "import customers",
    "csv import",
    "invoice pdf",
    "payment reminder",
    "overdue invoices",
    "credit note",
    "estimates",
    "quotes",
    "expenses",
    "mileage",
    "reports",
    "profit and loss",
    "currency",
    "logo",
    "two factor",
    "login problem",
    "api key",
];

/// What customers ask a support bot, in their own words.
const CUSTOMER_QUESTIONS: &[&str] = &[
    "I was charged twice this month",
    "how do I get my money back",
    "my phone got stolen and I can't log in",
    "I forgot my password and the reset email never comes",
    "how do I send the same invoice every month automatically",
    "my client says they never got my invoice",
    "can I charge extra when people pay late",
    "my bank transactions stopped showing up",
    "how do I stop paying for this",
    "I want to move to a cheaper plan",
    "can my accountant see my books without my password",
    "when does the money from stripe land in my account",
    "how do I put my company logo on invoices",
    "the pdf of my invoice is blank",
    "I need to add VAT for my European customers",
    "can I take a picture of a receipt with my phone",
    "the app crashes every time I open it",
    "how do I get all my data out before I leave",
    "I want to bring my customer list over from excel",
    "how can I turn on the extra login code thing",
    "I changed my email address, how do I update it",
    "can I bill in euros and dollars",
    "how do I give a customer a partial refund",
    "is there a way to send a quote before the invoice",
    "where do I see how much profit I made this year",
    "someone on my team needs access",
    "I want to close my account for good",
    "how do I connect paypal so clients can pay online",
    "the payment reminder emails are not going out",
    "I got an email about a payment I don't recognize",
];

struct Options {
    seconds: u64,
    rounds: usize,
    /// Every search a question never seen before (a number appended), so
    /// each one costs B a BERT pass: the worst case for the query cache.
    unique: bool,
}

impl Options {
    fn from_args() -> Result<Options, BoxError> {
        let mut seconds = 8;
        let mut rounds = 3;
        let mut unique = false;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--seconds" => seconds = args.next().ok_or("--seconds needs a number")?.parse()?,
                "--rounds" => rounds = args.next().ok_or("--rounds needs a number")?.parse()?,
                "--unique" => unique = true,
                "-h" | "--help" => return Err(USAGE.into()),
                _ => return Err(format!("unexpected argument {arg:?}\n{USAGE}").into()),
            }
        }
        if seconds == 0 || rounds == 0 {
            return Err(format!("--seconds and --rounds must be at least 1\n{USAGE}").into());
        }
        Ok(Options {
            seconds,
            rounds,
            unique,
        })
    }
}

/// A server running in this process.
struct Server {
    name: &'static str,
    base: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), rapport::AppError>>,
    /// `Application::build` called → `/ready` 200.
    to_ready: Duration,
    /// `Application::build` called → semantic `"ready"` (with a model).
    to_semantic: Option<Duration>,
    /// `/api/v1/status` (agent view) once ready.
    status: Value,
}

impl Server {
    async fn start(
        name: &'static str,
        client: &Client,
        articles: &Path,
        folder: &Path,
        model: ModelChoice,
    ) -> Result<Server, BoxError> {
        let semantic = model != ModelChoice::Off;
        let settings = Settings {
            addr: "127.0.0.1:0".parse()?,
            agent_keys: vec![AGENT_KEY.into()],
            // Measure the engine, not the per-client limiter.
            rate_limit_per_second: 0,
            model,
            ..Settings::with_folders(
                articles.to_path_buf(),
                folder.join("index"),
                folder.join("data"),
            )
        };
        let started = Instant::now();
        let app = Application::build(settings)
            .await
            .map_err(|e| format!("server {name} failed to start: {e}"))?;
        let base = format!("http://{}", app.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));

        loop {
            if let Ok(response) = client.get(format!("{base}/ready")).send().await
                && response.status() == StatusCode::OK
            {
                break;
            }
            if started.elapsed() > READY_DEADLINE {
                return Err(format!("server {name}: not ready after {READY_DEADLINE:?}").into());
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        let to_ready = started.elapsed();

        let mut to_semantic = None;
        let status = loop {
            let status = status(client, &base).await?;
            if !semantic {
                break status;
            }
            match status["semantic"]["state"].as_str() {
                Some("ready") => {
                    to_semantic = Some(started.elapsed());
                    break status;
                }
                Some("error") => {
                    return Err(format!(
                        "server {name}: the model could not be used: {}",
                        status["semantic"]["error"]
                    )
                    .into());
                }
                Some("off") => {
                    return Err(format!(
                        "server {name}: semantic retrieval is off; is the model at {MODEL_DIR}? \
                         (`rapport model fetch`)"
                    )
                    .into());
                }
                _ => {}
            }
            if started.elapsed() > READY_DEADLINE {
                return Err(format!(
                    "server {name}: semantic not ready after {READY_DEADLINE:?}: {}",
                    status["semantic"]
                )
                .into());
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        };
        Ok(Server {
            name,
            base,
            stop,
            task,
            to_ready,
            to_semantic,
            status,
        })
    }

    /// Stops serving and waits for the final commit.
    async fn stop(self) -> Result<(), BoxError> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| format!("server {}: task failed: {e}", self.name))?
            .map_err(|e| format!("server {}: {e}", self.name))?;
        Ok(())
    }
}

async fn status(client: &Client, base: &str) -> Result<Value, BoxError> {
    let response = client
        .get(format!("{base}/api/v1/status"))
        .bearer_auth(AGENT_KEY)
        .send()
        .await?;
    if response.status() != StatusCode::OK {
        return Err(format!("/api/v1/status answered {}", response.status()).into());
    }
    Ok(response.json().await?)
}

/// One workload against one server: the requests it cycles through.
struct Workload {
    kind: Kind,
    next: AtomicUsize,
    unique: bool,
}

enum Kind {
    Search(Vec<Url>),
    Answer { url: Url, bodies: Vec<Vec<u8>> },
}

impl Workload {
    fn search(base: &str, unique: bool) -> Result<Workload, BoxError> {
        let urls = KEYWORD_QUERIES
            .iter()
            .map(|query| {
                let mut url = Url::parse(&format!("{base}/api/v1/search"))?;
                url.query_pairs_mut().append_pair("q", query);
                Ok(url)
            })
            .collect::<Result<_, BoxError>>()?;
        Ok(Workload {
            kind: Kind::Search(urls),
            next: AtomicUsize::new(0),
            unique,
        })
    }

    fn answer(base: &str) -> Result<Workload, BoxError> {
        let bodies = CUSTOMER_QUESTIONS
            .iter()
            .map(|question| serde_json::to_vec(&json!({ "question": question })))
            .collect::<Result<_, _>>()?;
        Ok(Workload {
            kind: Kind::Answer {
                url: Url::parse(&format!("{base}/api/v1/answer"))?,
                bodies,
            },
            next: AtomicUsize::new(0),
            unique: false,
        })
    }

    fn request(&self, client: &Client) -> RequestBuilder {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match &self.kind {
            Kind::Search(urls) if self.unique => {
                let mut url = urls[i % urls.len()].clone();
                let query = url
                    .query_pairs()
                    .find(|(k, _)| k == "q")
                    .map(|(_, v)| format!("{v} {i}"))
                    .unwrap_or_default();
                url.query_pairs_mut().clear().append_pair("q", &query);
                client.get(url)
            }
            Kind::Search(urls) => client.get(urls[i % urls.len()].clone()),
            Kind::Answer { url, bodies } => client
                .post(url.clone())
                .header("content-type", "application/json")
                .body(bodies[i % bodies.len()].clone()),
        }
    }
}

/// One closed-loop round against one server.
#[derive(Default)]
struct Round {
    /// Milliseconds, one per completed request (errors included).
    latencies: Vec<f64>,
    /// The server's `took_ms`, from 200 responses.
    took: Vec<f64>,
    /// 200 responses with an `answer` (not a hand-off).
    answered: usize,
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    wall: Duration,
}

impl Round {
    fn requests_per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    fn merge(&mut self, other: Round) {
        self.latencies.extend(other.latencies);
        self.took.extend(other.took);
        self.answered += other.answered;
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// `clients` tasks, each sending its next request as soon as it has read
/// the last response, until `duration` has passed.
async fn run_round(
    client: &Client,
    workload: &Arc<Workload>,
    clients: usize,
    duration: Duration,
) -> Round {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<JoinHandle<Round>> = (0..clients)
        .map(|_| {
            let client = client.clone();
            let workload = workload.clone();
            tokio::spawn(async move {
                let mut round = Round::default();
                while Instant::now() < deadline {
                    let request = workload.request(&client);
                    let sent = Instant::now();
                    let outcome = match request.send().await {
                        Ok(response) => {
                            let status = response.status();
                            response.bytes().await.map(|body| (status, body))
                        }
                        Err(error) => Err(error),
                    };
                    round.latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                    match outcome {
                        Ok((StatusCode::OK, body)) => {
                            round.ok += 1;
                            if let Some(took) = number_after(&body, b"\"took_ms\":") {
                                round.took.push(took);
                            }
                            if find(&body, b"\"answer\":{").is_some() {
                                round.answered += 1;
                            }
                        }
                        Ok((status, body)) => {
                            round.errors += 1;
                            round.first_error.get_or_insert_with(|| {
                                format!("{status}: {}", String::from_utf8_lossy(&body))
                            });
                        }
                        Err(error) => {
                            round.errors += 1;
                            round.first_error.get_or_insert_with(|| error.to_string());
                        }
                    }
                }
                round
            })
        })
        .collect();
    let mut total = Round::default();
    for task in tasks {
        match task.await {
            Ok(round) => total.merge(round),
            Err(error) => {
                total.errors += 1;
                total
                    .first_error
                    .get_or_insert_with(|| format!("client task failed: {error}"));
            }
        }
    }
    total.wall = started.elapsed();
    total
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The JSON number right after `key` (e.g. `"took_ms":`), without parsing
/// the whole body.
fn number_after(body: &[u8], key: &[u8]) -> Option<f64> {
    let start = find(body, key)? + key.len();
    let rest = &body[start..];
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_digit() || b"+-.eE".contains(b)))
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut samples = samples.to_vec();
    samples.sort_by(f64::total_cmp);
    samples
}

fn median(values: &[f64]) -> f64 {
    let values = sorted(values);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// One row of a results table.
struct Row {
    label: String,
    server: &'static str,
    round: Round,
}

/// A workload's warm-up and alternating rounds on both servers.
async fn measure(
    client: &Client,
    servers: [(&'static str, Arc<Workload>); 2],
    clients: usize,
    options: &Options,
    what: &str,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for (server, workload) in &servers {
        let round = run_round(client, workload, clients, WARM_UP).await;
        eprintln!(
            "{what} warm-up {server}: {:.0} req/s",
            round.requests_per_second()
        );
        rows.push(Row {
            label: "warm-up".into(),
            server,
            round,
        });
    }
    let duration = Duration::from_secs(options.seconds);
    for n in 1..=options.rounds {
        for (server, workload) in &servers {
            let round = run_round(client, workload, clients, duration).await;
            eprintln!(
                "{what} round {n} {server}: {:.0} req/s, p99 {:.2} ms",
                round.requests_per_second(),
                percentile(&sorted(&round.latencies), 99.0)
            );
            rows.push(Row {
                label: n.to_string(),
                server,
                round,
            });
        }
    }
    rows
}

fn fmt_ms(value: f64) -> String {
    format!("{value:.2}")
}

/// The table of one workload: warm-up and timed rounds, then per server the
/// median requests/s and the latencies pooled over its timed rounds.
fn table(rows: &[Row], answers: bool, out: &mut String) -> Result<(), std::fmt::Error> {
    let extra = if answers { " answered |" } else { "" };
    writeln!(
        out,
        "| round | server | requests | errors | req/s | p50 ms | p99 ms | max ms | server took_ms p50 / p99 |{extra}"
    )?;
    writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|{}",
        if answers { "---:|" } else { "" }
    )?;
    let line = |out: &mut String, label: &str, server: &str, round: &Round, rps: String| {
        let latencies = sorted(&round.latencies);
        let took = sorted(&round.took);
        let answered = if answers {
            format!(
                " {:.0}% |",
                100.0 * round.answered as f64 / round.ok.max(1) as f64
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "| {label} | {server} | {} | {} | {rps} | {} | {} | {} | {} / {} |{answered}",
            round.latencies.len(),
            round.errors,
            fmt_ms(percentile(&latencies, 50.0)),
            fmt_ms(percentile(&latencies, 99.0)),
            fmt_ms(latencies.last().copied().unwrap_or(f64::NAN)),
            fmt_ms(percentile(&took, 50.0)),
            fmt_ms(percentile(&took, 99.0)),
        )
    };
    for row in rows {
        line(
            out,
            &row.label,
            row.server,
            &row.round,
            format!("{:.0}", row.round.requests_per_second()),
        )?;
    }
    for server in ["A", "B"] {
        let (pooled, rps) = pooled(rows, server);
        line(
            out,
            "**timed, pooled**",
            server,
            &pooled,
            format!("{:.0} (median)", median(&rps)),
        )?;
    }
    Ok(())
}

/// A server's timed rounds pooled into one, and each round's requests/s.
fn pooled(rows: &[Row], server: &str) -> (Round, Vec<f64>) {
    let mut pooled = Round::default();
    let mut rps = Vec::new();
    for row in rows
        .iter()
        .filter(|row| row.server == server && row.label != "warm-up")
    {
        rps.push(row.round.requests_per_second());
        pooled.merge(Round {
            latencies: row.round.latencies.clone(),
            took: row.round.took.clone(),
            answered: row.round.answered,
            ok: row.round.ok,
            errors: row.round.errors,
            first_error: row.round.first_error.clone(),
            wall: row.round.wall,
        });
    }
    (pooled, rps)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".into())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**MISSED**" }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let options = Options::from_args()?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let articles = root.join("articles");
    let model_dir = root.join(MODEL_DIR);
    if !model_dir.join("config.json").exists() {
        return Err(format!(
            "no model at {}: run `rapport model fetch` first",
            model_dir.display()
        )
        .into());
    }
    let temp = tempfile::Builder::new()
        .prefix("load-semantic-")
        .tempdir()
        .map_err(|e| format!("cannot create a temp folder: {e}"))?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load_before = load_average();
    let client = Client::builder().no_proxy().build()?;

    // Start-up: B cold, then B again on the same index folder (vectors cached).
    eprintln!("starting B cold (empty index folder)…");
    let model = ModelChoice::Dir(model_dir.clone());
    let b_folder = temp.path().join("b");
    let cold = Server::start("B", &client, &articles, &b_folder, model.clone()).await?;
    let (cold_ready, cold_semantic) = (cold.to_ready, cold.to_semantic);
    let cold_semantic_status = cold.status["semantic"].clone();
    cold.stop().await?;
    let vectors_dir = b_folder.join("index").join("vectors");
    if !vectors_dir.is_dir() {
        eprintln!(
            "note: no {} after the cold run; the warm restart re-embeds",
            vectors_dir.display()
        );
    }
    eprintln!("restarting B on the same index folder…");
    let b = Server::start("B", &client, &articles, &b_folder, model).await?;
    eprintln!("starting A (lexical)…");
    let a = Server::start(
        "A",
        &client,
        &articles,
        &temp.path().join("a"),
        ModelChoice::Off,
    )
    .await?;
    let semantic = &b.status["semantic"];
    if semantic["embedded"] != semantic["total"] {
        return Err(format!("B is ready but not every section is embedded: {semantic}").into());
    }

    let search = measure(
        &client,
        [
            ("A", Arc::new(Workload::search(&a.base, options.unique)?)),
            ("B", Arc::new(Workload::search(&b.base, options.unique)?)),
        ],
        SEARCH_CLIENTS,
        &options,
        "search",
    )
    .await;
    let answer = measure(
        &client,
        [
            ("A", Arc::new(Workload::answer(&a.base)?)),
            ("B", Arc::new(Workload::answer(&b.base)?)),
        ],
        ANSWER_CLIENTS,
        &options,
        "answer",
    )
    .await;
    let load_after = load_average();

    // The report.
    let mut out = String::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    writeln!(
        out,
        "command: `cargo run --release --features tools --example semantic_load{}`",
        if args.is_empty() {
            String::new()
        } else {
            format!(" -- {}", args.join(" "))
        }
    )?;
    writeln!(
        out,
        "machine: {cores} cores; load average {load_before} before, {load_after} after"
    )?;
    writeln!(
        out,
        "corpus: bundled articles/ ({} articles, {} sections); model {}",
        b.status["articles"], b.status["sections"], semantic["model"]
    )?;
    writeln!(
        out,
        "rounds: {} × {} s per server and workload, alternating A, B; {} s warm-up each",
        options.rounds,
        options.seconds,
        WARM_UP.as_secs()
    )?;
    writeln!(out)?;
    writeln!(out, "### Start-up")?;
    writeln!(out)?;
    writeln!(
        out,
        "| server | build → /ready 200 | build → semantic ready | embedded / total |"
    )?;
    writeln!(out, "|---|---:|---:|---:|")?;
    let secs =
        |d: Option<Duration>| d.map_or("–".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    writeln!(
        out,
        "| B cold (empty index folder) | {} | {} | {} / {} |",
        secs(Some(cold_ready)),
        secs(cold_semantic),
        cold_semantic_status["embedded"],
        cold_semantic_status["total"]
    )?;
    writeln!(
        out,
        "| B warm restart (vectors cached) | {} | {} | {} / {} |",
        secs(Some(b.to_ready)),
        secs(b.to_semantic),
        semantic["embedded"],
        semantic["total"]
    )?;
    writeln!(
        out,
        "| A lexical (empty index folder) | {} | – | – |",
        secs(Some(a.to_ready))
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "### Keyword search: GET /api/v1/search, {SEARCH_CLIENTS} clients, {} queries",
        KEYWORD_QUERIES.len()
    )?;
    writeln!(out)?;
    table(&search, false, &mut out)?;
    let (_, a_rps) = pooled(&search, "A");
    let (_, b_rps) = pooled(&search, "B");
    let ratio = median(&b_rps) / median(&a_rps);
    let pairs: Vec<String> = a_rps
        .iter()
        .zip(&b_rps)
        .map(|(a, b)| format!("{:.2}", b / a))
        .collect();
    writeln!(out)?;
    writeln!(
        out,
        "B/A requests/s (medians): **{ratio:.2}** (per round pair: {}); budget ≥ {THROUGHPUT_BUDGET:.2}: {}",
        pairs.join(", "),
        verdict(ratio >= THROUGHPUT_BUDGET)
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "### Bot answers: POST /api/v1/answer, {ANSWER_CLIENTS} clients, {} questions",
        CUSTOMER_QUESTIONS.len()
    )?;
    writeln!(out)?;
    table(&answer, true, &mut out)?;
    let (b_answers, _) = pooled(&answer, "B");
    let b_p99 = percentile(&sorted(&b_answers.latencies), 99.0);
    writeln!(out)?;
    writeln!(
        out,
        "B answer p99 (pooled over timed rounds): **{b_p99:.2} ms**; budget ≤ {ANSWER_P99_BUDGET_MS:.0} ms: {}",
        verdict(b_p99 <= ANSWER_P99_BUDGET_MS)
    )?;
    println!("{out}");

    a.stop().await?;
    b.stop().await?;

    let failed: Vec<&Row> = search
        .iter()
        .chain(&answer)
        .filter(|row| row.round.errors > 0)
        .collect();
    if !failed.is_empty() {
        for row in &failed {
            eprintln!(
                "server {} round {}: {} errors, first: {}",
                row.server,
                row.label,
                row.round.errors,
                row.round.first_error.as_deref().unwrap_or("?")
            );
        }
        return Err("some requests did not answer 200".into());
    }
    Ok(())
}
