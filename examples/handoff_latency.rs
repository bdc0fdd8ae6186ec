//! How fast a hand-off reaches people: the request, the agents' live stream
//! and the team's webhook, measured end to end over real HTTP.
//!
//! ```sh
//! cargo run --release --features tools --example handoff_latency
//! cargo run --release --features tools --example handoff_latency -- --handoffs 500 --burst 32
//! ```
//!
//! The real server ([`Application`]) runs in-process on port 0 over the
//! bundled `articles/`, with analytics on (SQLite, WAL, in a temp folder) and
//! its webhook pointed at a receiver on another port of this process that
//! answers 204 and notes when each delivery arrived. An agent is connected
//! to `GET /api/v1/handoffs/events` the whole time.
//!
//! Sequential phase: for each of `N` sessions, one `/answer` (so the session
//! exists), then `POST /api/v1/sessions/{id}/handoff` timed from sending to
//! the `201`; the moment the `handoff.created` event reaches the agent's
//! stream and the moment the webhook receives it are both measured from
//! that same send. Then each hand-off is claimed (timed) and closed.
//!
//! Burst phase: `B` customers ask for a person at once (`B` requests in
//! flight) and the time until the last webhook delivery is the outbox's
//! drain time for a burst. Medians and percentiles are nearest-rank.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use rapport::Application;
use rapport::config::Settings;
use reqwest::Client;
use serde_json::{Value, json};
use tokio::sync::oneshot;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const AGENT_KEY: &str = "bench-agent";
const USAGE: &str = "usage: handoff_latency [--handoffs N] [--burst B]";

/// When each delivery id arrived at the receiver, and with which handoff id.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn report(name: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    println!(
        "{name:<44} median {:>7.2} ms   p90 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms   (n = {})",
        percentile(&values, 0.5),
        percentile(&values, 0.9),
        percentile(&values, 0.99),
        values[values.len() - 1],
        values.len()
    );
}

async fn receiver(arrivals: Arrivals) -> Result<String, BoxError> {
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |_headers: HeaderMap, body: Bytes| {
            let arrivals = arrivals.clone();
            async move {
                let at = Instant::now();
                if let Ok(event) = serde_json::from_slice::<Value>(&body)
                    && let Some(id) = event["handoff"]["handoff_id"].as_str()
                    && event["event"] == "handoff.created"
                {
                    arrivals
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id.to_string(), at);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(url)
}

/// Reads the agents' stream, noting when each created event arrived.
async fn follow_stream(client: Client, base: String, seen: Arrivals) -> Result<(), BoxError> {
    let mut response = client
        .get(format!("{base}/api/v1/handoffs/events"))
        .bearer_auth(AGENT_KEY)
        .send()
        .await?;
    let mut buffer = String::new();
    while let Some(chunk) = response.chunk().await? {
        let at = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if !block.contains("event: handoff.created") {
                continue;
            }
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: "))
                && let Ok(event) = serde_json::from_str::<Value>(data)
                && let Some(id) = event["handoff"]["handoff_id"].as_str()
            {
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.to_string(), at);
            }
        }
    }
    Ok(())
}

async fn ask_for_person(client: &Client, base: &str, session: &str) -> Result<String, BoxError> {
    let response = client
        .post(format!("{base}/api/v1/sessions/{session}/handoff"))
        .json(&json!({"contact": {"name": "Bench", "email": "bench@example.com"}}))
        .send()
        .await?;
    if response.status() != 201 {
        return Err(format!("hand-off for {session}: {}", response.status()).into());
    }
    let body: Value = response.json().await?;
    Ok(body["handoff_id"].as_str().unwrap_or_default().to_string())
}

async fn wait_for(arrivals: &Arrivals, id: &str) -> Result<Instant, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(at) = arrivals.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            return Ok(*at);
        }
        if Instant::now() > deadline {
            return Err(format!("{id} never arrived").into());
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut handoffs = 200usize;
    let mut burst = 32usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || -> Result<usize, BoxError> {
            Ok(args.next().ok_or(USAGE)?.parse().map_err(|_| USAGE)?)
        };
        match arg.as_str() {
            "--handoffs" => handoffs = number()?.max(1),
            "--burst" => burst = number()?.max(1),
            _ => return Err(USAGE.into()),
        }
    }

    let delivered: Arrivals = Arrivals::default();
    let streamed: Arrivals = Arrivals::default();
    let url = receiver(delivered.clone()).await?;
    let folder = tempfile::tempdir()?;
    let app = Application::build(Settings {
        addr: "127.0.0.1:0".parse()?,
        agent_keys: vec![AGENT_KEY.into()],
        rate_limit_per_second: 0,
        webhook: Some(rapport::handoff::outbox::Webhook {
            url,
            secret: Some("bench-secret".into()),
            retry_initial: rapport::handoff::outbox::DEFAULT_RETRY_INITIAL,
        }),
        ..Settings::with_folders(
            std::path::PathBuf::from("articles"),
            folder.path().join("index"),
            folder.path().join("data"),
        )
    })
    .await?;
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = Client::builder().no_proxy().build()?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while client
        .get(format!("{base}/ready"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        if Instant::now() > deadline {
            return Err("the server never became ready".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::spawn(follow_stream(
        client.clone(),
        base.clone(),
        streamed.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(
        "{handoffs} hand-offs one at a time, then a burst of {burst}; bundled articles, SQLite in a temp folder; {} CPUs",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let (mut request, mut stream, mut webhook, mut claim) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..handoffs {
        let session = format!("bench-{i}");
        client
            .post(format!("{base}/api/v1/answer"))
            .json(
                &json!({"question": "I was charged twice, I want a refund", "session_id": session}),
            )
            .send()
            .await?
            .error_for_status()?;
        let sent = Instant::now();
        let id = ask_for_person(&client, &base, &session).await?;
        request.push(sent.elapsed().as_secs_f64() * 1e3);
        stream.push(
            wait_for(&streamed, &id)
                .await?
                .duration_since(sent)
                .as_secs_f64()
                * 1e3,
        );
        webhook.push(
            wait_for(&delivered, &id)
                .await?
                .duration_since(sent)
                .as_secs_f64()
                * 1e3,
        );
        let started = Instant::now();
        let claimed = client
            .post(format!("{base}/api/v1/handoffs/{id}/claim"))
            .bearer_auth(AGENT_KEY)
            .send()
            .await?;
        claim.push(started.elapsed().as_secs_f64() * 1e3);
        if claimed.status() != 200 {
            return Err(format!("claim {id}: {}", claimed.status()).into());
        }
        client
            .post(format!("{base}/api/v1/handoffs/{id}/close"))
            .bearer_auth(AGENT_KEY)
            .json(&json!({"resolution": "solved"}))
            .send()
            .await?
            .error_for_status()?;
    }
    report("POST …/handoff → 201", request);
    report("POST …/handoff sent → agent's stream event", stream);
    report("POST …/handoff sent → webhook received", webhook);
    report("POST …/claim → 200", claim);

    for i in 0..burst {
        client
            .post(format!("{base}/api/v1/answer"))
            .json(&json!({"question": "refund please", "session_id": format!("burst-{i}")}))
            .send()
            .await?
            .error_for_status()?;
    }
    let sessions: Vec<String> = (0..burst).map(|i| format!("burst-{i}")).collect();
    let started = Instant::now();
    let ids = futures_util::future::try_join_all(
        sessions.iter().map(|s| ask_for_person(&client, &base, s)),
    )
    .await?;
    let all_created = started.elapsed();
    let mut last = started;
    for id in &ids {
        last = last.max(wait_for(&delivered, id).await?);
    }
    println!(
        "burst of {burst}: all 201 after {:.1} ms, all delivered after {:.1} ms",
        all_created.as_secs_f64() * 1e3,
        last.duration_since(started).as_secs_f64() * 1e3
    );
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}
