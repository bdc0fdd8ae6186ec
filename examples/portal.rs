//! The help portal's weight and server render time, over real HTTP.
//!
//! ```sh
//! cargo run --release --features tools --example portal
//! cargo run --release --features tools --example portal -- ../shared/corpus/officedocs-support --requests 200
//! ```
//!
//! Arguments: `[ARTICLES_DIR] [--requests N]` (default: the bundled
//! `articles/`, N = 200). The real server is started in-process on port 0
//! over a fresh index in a temp folder; `/ready` is polled until 200.
//!
//! **Weight.** The first page is what a browser fetches for `/`: the HTML and
//! every `/assets/…` it links (one stylesheet, one script), as sent (no
//! compression; rapport does not compress).
//!
//! **Render time.** One request at a time on one keep-alive connection, 20
//! warm-up requests and then N timed ones per page: `/health` (the floor:
//! routing and an HTTP/1.1 round trip on loopback), `/` (categories with
//! counts, popular articles), `/search?q=…` (a full search rendered to HTML,
//! queries rotating through 20 realistic ones), the same searches from
//! `/api/v1/search?limit=20` (JSON, as a baseline for the HTML's cost) and
//! `/articles/{id}` (the article, its table of contents and a
//! related-articles search). A time is
//! from sending the request to having read the whole body. Every response
//! must be 200.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rapport::Application;
use rapport::config::Settings;
use reqwest::{Client, StatusCode};
use tokio::sync::oneshot;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The path of the i-th request to a page.
type PathFn = Box<dyn Fn(usize) -> String>;

const WARM_UP: usize = 20;
const QUERIES: &[&str] = &[
    "how do I reset my password",
    "charged twice",
    "connect stripe",
    "recurring invoice",
    "scan receipts offline",
    "customer didn't get the invoice email",
    "cancel subscription",
    "invoice pdf won't download",
    "late fee",
    "bank feed stopped updating",
    "two factor authentication",
    "lost my phone",
    "invite my accountant",
    "when will my payout arrive",
    "change email",
    "VAT",
    "import customers",
    "app keeps crashing",
    "refund",
    "export data",
];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn get(client: &Client, url: &str) -> Result<String, BoxError> {
    let response = client.get(url).send().await?;
    if response.status() != StatusCode::OK {
        return Err(format!("{url}: {}", response.status()).into());
    }
    Ok(response.text().await?)
}

async fn time_page(
    client: &Client,
    base: &str,
    requests: usize,
    path: impl Fn(usize) -> String,
) -> Result<Vec<f64>, BoxError> {
    for i in 0..WARM_UP {
        get(client, &format!("{base}{}", path(i))).await?;
    }
    let mut times = Vec::with_capacity(requests);
    for i in 0..requests {
        let url = format!("{base}{}", path(i));
        let started = Instant::now();
        get(client, &url).await?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    rapport::search::percent_encode_into(&mut out, text);
    out
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let mut articles = PathBuf::from("articles");
    let mut requests = 200;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--requests" => {
                requests = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("usage: portal [ARTICLES_DIR] [--requests N]")?
            }
            _ => articles = PathBuf::from(arg),
        }
    }
    let index_dir = tempfile::tempdir()?;
    let app = Application::build(Settings {
        addr: "127.0.0.1:0".parse()?,
        rate_limit_per_second: 0,
        article_rules: rapport::article::ArticleRules::from_env(),
        ..Settings::with_folders(
            articles.clone(),
            index_dir.path().to_path_buf(),
            index_dir.path().join("data"),
        )
    })
    .await?;
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .build()?;
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await
            && r.status() == StatusCode::OK
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err("server not ready".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The first `/` also counts the popular articles (then reused for a minute).
    let first = Instant::now();
    let home = get(&client, &format!("{base}/")).await?;
    let first_ms = first.elapsed().as_secs_f64() * 1e3;
    let assets = regex::Regex::new(r#"(?:href|src)="(/assets/[^"]+)""#)?;
    let mut weight = vec![("HTML /".to_string(), home.len())];
    for asset in assets.captures_iter(&home) {
        let body = get(&client, &format!("{base}{}", &asset[1])).await?;
        weight.push((
            asset[1].split('?').next().unwrap_or("").to_string(),
            body.len(),
        ));
    }
    let total: usize = weight.iter().map(|(_, n)| n).sum();
    println!("articles: {}", articles.display());
    println!("| first page | bytes |\n|---|---:|");
    for (name, bytes) in &weight {
        println!("| {name} | {bytes} |");
    }
    println!(
        "| **total** | **{total}** ({:.1} KB) |\n",
        total as f64 / 1024.0
    );

    // An article that exists, for the article page.
    let listing: serde_json::Value =
        serde_json::from_str(&get(&client, &format!("{base}/api/v1/articles?limit=1")).await?)?;
    let article_url = listing["articles"][0]["url"]
        .as_str()
        .ok_or("no articles")?
        .to_string();

    println!("first `/` (popular articles counted): {first_ms:.2} ms\n");
    println!("| page | requests | p50 ms | p90 ms | p99 ms |\n|---|---:|---:|---:|---:|");
    let pages: Vec<(&str, PathFn)> = vec![
        ("/health", Box::new(|_| "/health".to_string())),
        ("/", Box::new(|_| "/".to_string())),
        (
            "/search?q=…",
            Box::new(|i| format!("/search?q={}", encode(QUERIES[i % QUERIES.len()]))),
        ),
        // The same search as JSON, with the page's 20 hits: the HTML's cost.
        (
            "/api/v1/search?q=…&limit=20",
            Box::new(|i| {
                format!(
                    "/api/v1/search?limit=20&q={}",
                    encode(QUERIES[i % QUERIES.len()])
                )
            }),
        ),
        ("/articles/{id}", Box::new(move |_| article_url.clone())),
    ];
    for (name, path) in &pages {
        let times = time_page(&client, &base, requests, path).await?;
        println!(
            "| `{name}` | {requests} | {:.2} | {:.2} | {:.2} |",
            percentile(&times, 50.0),
            percentile(&times, 90.0),
            percentile(&times, 99.0)
        );
    }
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}
