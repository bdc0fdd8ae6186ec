//! Latency of the three HTTP channels, measured end to end over real HTTP.
//!
//! ```sh
//! cargo run --release --features tools --example channels
//! cargo run --release --features tools --example channels -- ../shared/corpus/officedocs-support --requests 300
//! ```
//!
//! Arguments: `[ARTICLES_DIR] [--requests N]`; the articles folder defaults to
//! the bundled `articles/`, `N` to 300.
//!
//! The real server ([`Application`]) is started in-process on port 0, over
//! the articles folder as it is (nothing is copied; the index goes to a temp
//! folder and is built from scratch), and `GET /ready` is polled until 200.
//! Then, one request at a time on one keep-alive connection, each endpoint
//! gets 20 warm-up requests followed by `N` timed ones:
//! - `GET /health`: the floor (routing, HTTP/1.1 round trip on loopback,
//!   a tiny JSON body), no search work at all;
//! - `GET /api/v1/search?q=…` (portal), anonymous;
//! - `POST /api/v1/answer` with `{"question": …}` (chatbot), anonymous;
//! - `POST /api/v1/answer` again, in bot sessions of five questions each with
//!   a `customer_id` (the hand-off timeline is kept), then
//!   `GET /api/v1/sessions/{id}` on those sessions (agent key);
//! - `POST /api/v1/suggest` (agent assist) with an agent key and a five-turn
//!   transcript (greeting, chatter, two customer questions, one agent turn).
//!
//! The questions rotate through ~20 realistic ones: Tallybook (invoicing app)
//! questions for the bundled articles, Outlook/Teams/SharePoint/Exchange
//! troubleshooting when the folder's name contains "officedocs".
//!
//! A latency is wall-clock time from sending the request to having read the
//! whole response body (client-side JSON parsing is not included). Every
//! response must be 200; anything else is counted as an error (and still
//! timed). Requests/s is `N` over the wall time of the timed loop, so with
//! one request in flight it is about `1000 / mean latency in ms`: a
//! sequential figure, not the server's throughput under concurrency. The
//! server's own `took_ms` (handler start to response built, without HTTP and
//! JSON serialization) is reported as a median for the channels that return
//! it, and so is the share of responses that found something (search hits,
//! an answer rather than a hand-off, suggestions). The client and the
//! server share one multi-threaded tokio runtime in this process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rapport::Application;
use rapport::config::Settings;
use reqwest::{Client, RequestBuilder, StatusCode, Url};
use serde_json::{Value, json};
use tokio::sync::oneshot;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: channels [ARTICLES_DIR] [--requests N]";
const WARM_UP: usize = 20;
const AGENT_KEY: &str = "bench-key";
const READY_DEADLINE: Duration = Duration::from_secs(600);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

const TALLYBOOK_QUESTIONS: &[&str] = &[
    "how do I reset my password",
    "I was charged twice this month",
    "how do I connect stripe",
    "set up a recurring invoice every month",
    "can I scan receipts offline on my phone",
    "my customer didn't get the invoice email",
    "how to cancel my subscription",
    "the invoice pdf won't download",
    "add a late fee to overdue invoices",
    "bank feed stopped updating",
    "turn on two factor authentication",
    "I lost my phone and can't log in",
    "how do I invite my accountant to my account",
    "when will my payout arrive",
    "change the email I use to sign in",
    "how do I add VAT to my invoices",
    "import customers from a spreadsheet",
    "the mobile app keeps crashing",
    "how do I get a refund",
    "export all my data",
];

const OFFICEDOCS_QUESTIONS: &[&str] = &[
    "Outlook keeps asking for my password",
    "Outlook crashes when I open it",
    "emails stuck in the outbox",
    "shared mailbox not showing up in Outlook",
    "Teams meeting recording not available",
    "can't sign in to Teams error code",
    "Teams notifications not working on mac",
    "external users can't join Teams meeting",
    "SharePoint site access denied",
    "OneDrive files not syncing",
    "how to restore deleted files in SharePoint",
    "SharePoint list view threshold exceeded",
    "Exchange Online mailbox migration failed",
    "autodiscover not working in hybrid deployment",
    "mail flow rule not applying to messages",
    "calendar sharing not working between organizations",
    "out of office replies not sent",
    "mailbox full cannot receive email",
    "free busy information not available",
    "Office activation failed unlicensed product",
];

struct Options {
    articles_dir: PathBuf,
    requests: usize,
}

impl Options {
    fn from_args() -> Result<Options, BoxError> {
        let mut articles_dir = None;
        let mut requests = 300;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--requests" => {
                    requests = args.next().ok_or("--requests needs a number")?.parse()?;
                }
                "-h" | "--help" => return Err(USAGE.into()),
                _ if articles_dir.is_none() && !arg.starts_with("--") => {
                    articles_dir = Some(PathBuf::from(arg));
                }
                _ => return Err(format!("unexpected argument {arg:?}\n{USAGE}").into()),
            }
        }
        if requests == 0 {
            return Err("--requests must be at least 1".into());
        }
        Ok(Options {
            articles_dir: articles_dir
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("articles")),
            requests,
        })
    }
}

/// One endpoint's timed requests.
struct Run {
    name: &'static str,
    /// Milliseconds, one per completed request (errors included).
    latencies: Vec<f64>,
    /// The server's `took_ms`, when the response carries one.
    server_took: Vec<f64>,
    /// 200 responses that found something: `hits` or `suggestions` not
    /// empty, or an `answer` (not a hand-off); `None` for `/health`.
    found: Option<usize>,
    errors: usize,
    first_error: Option<String>,
    wall: Duration,
}

impl Run {
    fn requests_per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }
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

/// Sends `warm_up` untimed then `n` timed requests, one at a time.
async fn measure(
    name: &'static str,
    warm_up: usize,
    n: usize,
    make: impl Fn(usize) -> RequestBuilder,
) -> Run {
    let mut run = Run {
        name,
        latencies: Vec::with_capacity(n),
        server_took: Vec::with_capacity(n),
        found: None,
        errors: 0,
        first_error: None,
        wall: Duration::ZERO,
    };
    for i in 0..warm_up {
        if let Ok(response) = make(i).send().await {
            let _ = response.bytes().await;
        }
    }
    let started = Instant::now();
    for i in 0..n {
        let request = make(warm_up + i);
        let sent = Instant::now();
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status();
                response.bytes().await.map(|body| (status, body))
            }
            Err(error) => Err(error),
        };
        let latency = sent.elapsed();
        match outcome {
            Ok((status, body)) => {
                run.latencies.push(latency.as_secs_f64() * 1e3);
                if status != StatusCode::OK {
                    run.errors += 1;
                    run.first_error.get_or_insert_with(|| {
                        format!("{status}: {}", String::from_utf8_lossy(&body))
                    });
                    continue;
                }
                let Ok(json) = serde_json::from_slice::<Value>(&body) else {
                    continue;
                };
                if let Some(took) = json.get("took_ms").and_then(Value::as_f64) {
                    run.server_took.push(took);
                }
                if let Some(found) = found_something(&json) {
                    *run.found.get_or_insert(0) += usize::from(found);
                }
            }
            Err(error) => {
                run.errors += 1;
                run.first_error.get_or_insert_with(|| error.to_string());
            }
        }
    }
    run.wall = started.elapsed();
    run
}

/// Whether a channel's response holds a result; `None` if it is no channel's.
fn found_something(json: &Value) -> Option<bool> {
    if let Some(list) = json.get("hits").or_else(|| json.get("suggestions")) {
        return Some(list.as_array().is_some_and(|list| !list.is_empty()));
    }
    json.get("answer").map(|answer| !answer.is_null())
}

fn transcript(question: &str, follow_up: &str) -> Value {
    json!({
        "transcript": [
            {"role": "agent", "text": "Hi, how can I help you today?"},
            {"role": "customer", "text": "hello"},
            {"role": "customer", "text": question},
            {"role": "agent", "text": "Let me check that for you."},
            {"role": "customer", "text": follow_up},
        ],
        "limit": 5,
    })
}

async fn wait_until_ready(client: &Client, base: &str) -> Result<Duration, BoxError> {
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(format!("{base}/ready")).send().await
            && response.status() == StatusCode::OK
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() > READY_DEADLINE {
            return Err(format!("server not ready after {READY_DEADLINE:?}").into());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn print_table(runs: &[Run]) {
    println!(
        "| endpoint | requests | errors | p50 ms | p90 ms | p99 ms | max ms | req/s | server took_ms p50 | found |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        let latencies = sorted(&run.latencies);
        let took = if run.server_took.is_empty() {
            "–".to_string()
        } else {
            format!("{:.2}", percentile(&sorted(&run.server_took), 50.0))
        };
        let found = run.found.map_or("–".to_string(), |found| {
            format!("{:.0}%", 100.0 * found as f64 / run.latencies.len() as f64)
        });
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {} |",
            run.name,
            run.latencies.len(),
            run.errors,
            percentile(&latencies, 50.0),
            percentile(&latencies, 90.0),
            percentile(&latencies, 99.0),
            latencies.last().copied().unwrap_or(f64::NAN),
            run.requests_per_second(),
            took,
            found,
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let options = Options::from_args()?;
    let folder_name = std::fs::canonicalize(&options.articles_dir)
        .unwrap_or_else(|_| options.articles_dir.clone())
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let questions = if folder_name.contains("officedocs") {
        OFFICEDOCS_QUESTIONS
    } else {
        TALLYBOOK_QUESTIONS
    };

    let index_dir = tempfile::tempdir()?;
    let app = Application::build(Settings {
        addr: "127.0.0.1:0".parse()?,
        max_article_bytes: 2 << 20,
        agent_keys: vec![AGENT_KEY.into()],
        debounce: Duration::from_millis(50),
        analytics: std::env::var("RAPPORT_ANALYTICS").map_or(true, |v| v != "off"),
        // Measure the engine, not the per-client limiter.
        rate_limit_per_second: 0,
        article_rules: rapport::article::ArticleRules::from_env(),
        ..Settings::with_folders(
            options.articles_dir.clone(),
            index_dir.path().to_path_buf(),
            index_dir.path().join("data"),
        )
    })
    .await?;
    let base = format!("http://{}", app.local_addr());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stop_rx.await;
    }));

    let client = Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .build()?;
    let ready_after = wait_until_ready(&client, &base).await?;
    let status: Value = client
        .get(format!("{base}/api/v1/status"))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "articles: {} ({} articles, {} sections; index built and ready in {:.1} s)",
        options.articles_dir.display(),
        status["articles"],
        status["sections"],
        ready_after.as_secs_f64(),
    );
    println!(
        "{} questions, {WARM_UP} warm-up + {} timed requests per endpoint, one at a time, keep-alive; {} CPUs",
        questions.len(),
        options.requests,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );

    let search_urls: Vec<Url> = questions
        .iter()
        .map(|question| {
            let mut url = Url::parse(&format!("{base}/api/v1/search"))?;
            url.query_pairs_mut().append_pair("q", question);
            Ok(url)
        })
        .collect::<Result<_, BoxError>>()?;
    let answer_bodies: Vec<Vec<u8>> = questions
        .iter()
        .map(|question| serde_json::to_vec(&json!({ "question": question })))
        .collect::<Result<_, _>>()?;
    let suggest_bodies: Vec<Vec<u8>> = (0..questions.len())
        .map(|i| {
            let follow_up = questions[(i + 7) % questions.len()];
            serde_json::to_vec(&transcript(questions[i], follow_up))
        })
        .collect::<Result<_, _>>()?;
    let health_url = Url::parse(&format!("{base}/health"))?;
    let answer_url = Url::parse(&format!("{base}/api/v1/answer"))?;
    let suggest_url = Url::parse(&format!("{base}/api/v1/suggest"))?;
    let n = options.requests;
    let count = questions.len();

    let mut runs = Vec::new();
    runs.push(
        measure("GET /health (baseline)", WARM_UP, n, |_| {
            client.get(health_url.clone())
        })
        .await,
    );
    runs.push(
        measure("GET /api/v1/search", WARM_UP, n, |i| {
            client.get(search_urls[i % count].clone())
        })
        .await,
    );
    runs.push(
        measure("POST /api/v1/answer", WARM_UP, n, |i| {
            client
                .post(answer_url.clone())
                .header("content-type", "application/json")
                .body(answer_bodies[i % count].clone())
        })
        .await,
    );
    // The same questions in bot sessions of five questions each (with a
    // customer id): the cost of keeping the hand-off timeline.
    let session_bodies: Vec<Vec<u8>> = (0..(n + WARM_UP))
        .map(|i| {
            serde_json::to_vec(&json!({
                "question": questions[i % count],
                "session_id": format!("bench-{}", i / 5),
                "customer_id": format!("customer-{}", i / 10),
            }))
        })
        .collect::<Result<_, _>>()?;
    runs.push(
        measure("POST /api/v1/answer (session)", WARM_UP, n, |i| {
            client
                .post(answer_url.clone())
                .header("content-type", "application/json")
                .body(session_bodies[i % session_bodies.len()].clone())
        })
        .await,
    );
    let session_urls: Vec<Url> = (0..(n + WARM_UP).div_ceil(5))
        .map(|i| Url::parse(&format!("{base}/api/v1/sessions/bench-{i}")))
        .collect::<Result<_, _>>()?;
    runs.push(
        measure("GET /api/v1/sessions/{id}", WARM_UP, n, |i| {
            client
                .get(session_urls[i % session_urls.len()].clone())
                .header("authorization", format!("Bearer {AGENT_KEY}"))
        })
        .await,
    );
    runs.push(
        measure("POST /api/v1/suggest", WARM_UP, n, |i| {
            client
                .post(suggest_url.clone())
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {AGENT_KEY}"))
                .body(suggest_bodies[i % count].clone())
        })
        .await,
    );

    println!();
    print_table(&runs);

    let _ = stop_tx.send(());
    server.await??;

    let errors: usize = runs.iter().map(|run| run.errors).sum();
    if errors > 0 {
        for run in runs.iter().filter(|run| run.errors > 0) {
            eprintln!(
                "{}: {} errors, first: {}",
                run.name,
                run.errors,
                run.first_error.as_deref().unwrap_or("?")
            );
        }
        return Err(format!("{errors} requests did not answer 200").into());
    }
    Ok(())
}
