//! What recording analytics costs `/search`: two real servers over the same
//! articles, one with analytics on and one off, loaded alternately (ABAB…)
//! by concurrent keep-alive clients in the same run; reports throughput per
//! round, medians and the ratio.
//!
//! ```sh
//! cargo run --release --features tools --example analytics_overhead -- [ARTICLES_DIR] [--rounds 6] [--seconds 3] [--clients 8]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rapport::Application;
use rapport::config::Settings;

const QUERIES: &[&str] = &[
    "reset password",
    "charged twice",
    "export invoices csv",
    "connect stripe",
    "recurring invoice",
    "recovery codes",
    "change email",
    "scan receipts offline",
    "team member permissions",
    "vat invoices",
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut articles = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("articles");
    let (mut rounds, mut seconds, mut clients) = (6, 3.0, 8);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => rounds = args.next().ok_or("--rounds N")?.parse()?,
            "--seconds" => seconds = args.next().ok_or("--seconds S")?.parse()?,
            "--clients" => clients = args.next().ok_or("--clients N")?.parse()?,
            _ => articles = PathBuf::from(arg),
        }
    }
    let mut bases = Vec::new();
    let mut keep = Vec::new();
    for analytics in [true, false] {
        let dir = tempfile::tempdir()?;
        let settings = Settings {
            addr: "127.0.0.1:0".parse()?,
            analytics,
            // Measure the engine, not the per-client limiter.
            rate_limit_per_second: 0,
            article_rules: rapport::article::ArticleRules::from_env(),
            ..Settings::with_folders(
                articles.clone(),
                dir.path().join("index"),
                dir.path().join("data"),
            )
        };
        let app = Application::build(settings).await?;
        let base = format!("http://{}", app.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        while client
            .get(format!("{base}/ready"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .ok()
            != Some(200)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bases.push(base);
        keep.push((dir, stop));
    }
    println!(
        "{clients} concurrent clients, {rounds} rounds of {seconds} s per server, alternating"
    );
    let mut with = Vec::new();
    let mut without = Vec::new();
    for round in 0..rounds * 2 {
        let (label, base) = if round % 2 == 0 {
            ("on ", &bases[0])
        } else {
            ("off", &bases[1])
        };
        let rate = load(base, clients, Duration::from_secs_f64(seconds)).await;
        println!(
            "  round {:>2} analytics {label}: {rate:.0} req/s",
            round / 2 + 1
        );
        if round % 2 == 0 {
            with.push(rate)
        } else {
            without.push(rate)
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (on, off) = (median(&mut with), median(&mut without));
    println!(
        "median: analytics on {on:.0} req/s, off {off:.0} req/s, ratio {:.3}",
        on / off
    );
    Ok(())
}

async fn load(base: &str, clients: usize, duration: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = reqwest::Client::new();
        let base = base.to_string();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while started.elapsed() < duration {
                let q = QUERIES[i % QUERIES.len()];
                i += 1;
                if let Ok(response) = client
                    .get(format!("{base}/api/v1/search?q={}", q.replace(' ', "+")))
                    .send()
                    .await
                    && response.bytes().await.is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
