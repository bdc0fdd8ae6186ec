//! Crash safety: SIGKILL the real `rapport serve` process at random moments
//! while it indexes a stream of creates, edits and deletes; after every
//! restart the index must match the folder exactly. And a hand-off's webhook
//! event survives a SIGKILL while its receiver is down.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const KILL_POINTS: usize = 20;
const FILES: usize = 24;

/// xorshift64*: reproducible from the printed seed, no dependency needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Server {
    child: Child,
    base: String,
}

fn start_server(articles: &Path, index: &Path) -> Server {
    start_server_with(articles, index, &[])
}

fn start_server_with(articles: &Path, index: &Path, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(["serve", "--addr", "127.0.0.1:0", "--articles"])
        .arg(articles)
        .arg("--index")
        .arg(index)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env("RAPPORT_DEBOUNCE_MS", "10")
        .env("RAPPORT_DATA_DIR", index.join("analytics"))
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("rapport starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let (found, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("serving on http://").nth(1)
                && let Some(sender) = found.take()
            {
                let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                let _ = sender.send(addr);
            }
        }
    });
    let addr = address
        .recv_timeout(Duration::from_secs(30))
        .expect("server logs its address");
    Server {
        child,
        base: format!("http://{addr}"),
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Option<(u16, Value)> {
    let response = client.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some((200, _)) = get(client, &format!("{base}/ready")).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("server at {base} never became ready");
}

fn body_of(id: &str, version: u64) -> String {
    format!(
        "---\ntitle: Article {id}\n---\nVersion {version} of {id}.\n\n## Details\n\nMore text {version}.\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_matches_folder_after_every_kill() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    eprintln!("crash test seed: {seed}");
    let mut rng = Rng(seed);
    let articles = tempfile::tempdir().unwrap();
    let index = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    // id → current version; absent = deleted.
    let mut folder: BTreeMap<String, u64> = BTreeMap::new();
    let mut version = 0;
    for i in 0..FILES / 2 {
        let id = format!("a{i}");
        version += 1;
        std::fs::write(
            articles.path().join(format!("{id}.md")),
            body_of(&id, version),
        )
        .unwrap();
        folder.insert(id, version);
    }

    for kill_point in 0..KILL_POINTS {
        let mut server = start_server(articles.path(), index.path());
        wait_ready(&client, &server.base).await;
        verify(&client, &server.base, &folder, seed, kill_point).await;

        // Mutate while the server indexes, and kill it at a random moment.
        let operations = 5 + rng.below(30);
        let kill_after = rng.below(operations);
        for op in 0..operations {
            if op == kill_after {
                server.child.kill().expect("SIGKILL");
            }
            let id = format!("a{}", rng.below(FILES as u64));
            let path = articles.path().join(format!("{id}.md"));
            if rng.below(4) == 0 && folder.contains_key(&id) {
                std::fs::remove_file(&path).unwrap();
                folder.remove(&id);
            } else {
                version += 1;
                std::fs::write(&path, body_of(&id, version)).unwrap();
                folder.insert(id, version);
            }
            tokio::time::sleep(Duration::from_micros(rng.below(4000))).await;
        }
        let _ = server.child.kill();
        let _ = server.child.wait();
    }
    let mut server = start_server(articles.path(), index.path());
    wait_ready(&client, &server.base).await;
    verify(&client, &server.base, &folder, seed, KILL_POINTS).await;
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// Right after `/ready`, the index must equal the folder: every file at its
/// current version, nothing deleted still served.
async fn verify(
    client: &reqwest::Client,
    base: &str,
    folder: &BTreeMap<String, u64>,
    seed: u64,
    kill_point: usize,
) {
    let context = format!("seed {seed}, after kill {kill_point}");
    let (_, listing) = get(client, &format!("{base}/api/v1/articles?limit=50"))
        .await
        .expect("listing");
    let listed: Vec<&str> = listing["articles"]
        .as_array()
        .expect("articles array")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    let expected: Vec<&str> = {
        let mut ids: Vec<&str> = folder.keys().map(String::as_str).collect();
        ids.sort_by_key(|id| format!("article {id}"));
        ids
    };
    let mut listed_sorted = listed.clone();
    listed_sorted.sort_by_key(|id| format!("article {id}"));
    assert_eq!(listed_sorted, expected, "{context}: listing {listing}");
    for (id, version) in folder {
        let (status, article) = get(client, &format!("{base}/api/v1/articles/{id}"))
            .await
            .expect("article");
        assert_eq!(status, 200, "{context}: {id}");
        let expected_text = format!("Version {version} of {id}.");
        assert!(
            article["markdown"]
                .as_str()
                .is_some_and(|m| m.contains(&expected_text)),
            "{context}: {id} should be at version {version}: {article}"
        );
    }
}

/// The hand-off is created (201), the server is killed at once while the
/// helpdesk is down; after a restart the event arrives, signed, exactly as
/// it was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_event_survives_sigkill_while_the_receiver_is_down() {
    use std::sync::{Arc, Mutex};
    let articles = tempfile::tempdir().unwrap();
    let index = tempfile::tempdir().unwrap();
    std::fs::write(
        articles.path().join("refunds.md"),
        "---\ntitle: Refunds\n---\nPress Refund on the charge.\n",
    )
    .unwrap();
    // A port nobody listens on yet: the receiver is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let env = [
        ("RAPPORT_HANDOFF_WEBHOOK_URL", url.as_str()),
        ("RAPPORT_HANDOFF_WEBHOOK_SECRET", "s3cret"),
    ];
    let client = reqwest::Client::new();
    let mut server = start_server_with(articles.path(), index.path(), &env);
    wait_ready(&client, &server.base).await;
    let answer = client
        .post(format!("{}/api/v1/answer", server.base))
        .json(&serde_json::json!({"question": "refund", "session_id": "crash-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let created = client
        .post(format!("{}/api/v1/sessions/crash-1/handoff", server.base))
        .json(&serde_json::json!({"contact": {"email": "ada@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    let created: Value = created.json().await.unwrap();

    // The helpdesk comes back; so does rapport.
    // (delivery id, signature, body) per request the helpdesk received.
    type Received = Vec<(String, String, Vec<u8>)>;
    let received: Arc<Mutex<Received>> = Arc::default();
    let sink = received.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    sink.lock().unwrap().push((
                        header("x-rapport-delivery"),
                        header("x-rapport-signature"),
                        body.to_vec(),
                    ));
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let mut server = start_server_with(articles.path(), index.path(), &env);
    wait_ready(&client, &server.base).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the event arrives after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = server.child.kill();
    let _ = server.child.wait();
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "delivered once");
    let (delivery, signature, body) = &received[0];
    assert!(!delivery.is_empty());
    assert_eq!(
        signature,
        &rapport::handoff::outbox::signature("s3cret", body)
    );
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["event"], "handoff.created");
    assert_eq!(event["handoff"]["handoff_id"], created["handoff_id"]);
    assert_eq!(event["handoff"]["contact"]["email"], "ada@example.com");
}
