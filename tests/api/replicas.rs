//! Replicas sharing one real PostgreSQL (a throwaway cluster from the
//! distribution's package, see `tests/support/pg.rs`), each over its own
//! copy of the bundled articles, as behind a load balancer: a session
//! moving between them, one hand-off queue with one claim winner, reports
//! counting both, each webhook event delivered once, a replica killed
//! under load, and the database stopped under load.
//!
//! Without PostgreSQL installed these tests skip with one line (outside CI).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::handoffs::{Receiver, receiver, webhook};
use crate::helpers::{
    ADMIN_KEY, AGENT_KEY, DEADLINE, EventReader, Options, TestApp, rapport_command,
    spawn_bundled_with,
};
use crate::pg;

/// Answers "how do I export my data to CSV?" in the bundled help center.
const EXPORT: &str = "account/export-data";

async fn replica(url: &str, options: Options) -> TestApp {
    spawn_bundled_with(Options {
        database_url: Some(url.to_string()),
        ..options
    })
    .await
}

/// Two replicas on a fresh database of the shared cluster.
async fn pair(name: &str, options: impl Fn() -> Options) -> Option<(TestApp, TestApp)> {
    let url = pg::shared()?.create_database(name);
    Some((
        replica(&url, options()).await,
        replica(&url, options()).await,
    ))
}

async fn vote(app: &TestApp, query_id: &Value, article: &str, event: &str) {
    let (status, body) = app
        .post(
            "/api/v1/feedback",
            None,
            &json!({"query_id": query_id, "article_id": article, "event": event}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// Polls `check` until it holds (or the deadline passes, which fails).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> Option<Value>) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_session_started_on_one_replica_continues_on_the_other() {
    let Some((a, b)) = pair("session_moves", Options::default).await else {
        return;
    };
    let (session, customer) = ("chat-moves", "customer-moves");
    let first = a
        .ask(session, customer, "how do I export my data to CSV?")
        .await;
    assert_eq!(first["answer"]["article_id"], EXPORT, "{first}");
    assert_eq!(first["session_memory"], "available", "{first}");
    vote(&a, &first["query_id"], EXPORT, "not_helpful").await;

    // The next turn reaches B: it knows what failed on A.
    let second = b
        .ask(session, customer, "exporting my data to a CSV file")
        .await;
    assert_eq!(second["session_memory"], "available", "{second}");
    assert_ne!(second["answer"]["article_id"], EXPORT, "{second}");
    for alternative in second["alternatives"].as_array().unwrap() {
        assert_ne!(alternative["article_id"], EXPORT, "{second}");
    }

    // And B's agent sees the whole timeline, both replicas' turns.
    let (status, view) = b.get_as_agent(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["questions"].as_array().unwrap().len(), 2, "{view}");
    assert_eq!(view["feedback"][0]["article_id"], EXPORT, "{view}");
    assert_eq!(view["feedback"][0]["event"], "not_helpful", "{view}");

    // The customer's vote follows them to a new session, on either replica.
    let later = a
        .ask("chat-moves-2", customer, "how do I export my data to CSV?")
        .await;
    assert_ne!(later["answer"]["article_id"], EXPORT, "{later}");
}

#[tokio::test]
async fn a_handoff_made_on_one_replica_is_in_the_others_queue_and_one_claim_wins() {
    let Some((a, b)) = pair("one_queue", Options::default).await else {
        return;
    };
    // An agent watching B's live stream.
    let response = b
        .client
        .get(format!("{}/api/v1/handoffs/events", b.base))
        .bearer_auth(AGENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut events = EventReader::new(response);

    a.ask(
        "chat-queue",
        "customer-queue",
        "how do I cancel my subscription?",
    )
    .await;
    let (status, created) = a
        .post(
            "/api/v1/sessions/chat-queue/handoff",
            None,
            &json!({"contact": {"name": "Ada"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["handoff_id"].as_str().unwrap().to_string();

    // B's agent hears of it (PostgreSQL NOTIFY), with the brief.
    let (event, _, data) = events.next().await;
    assert_eq!(event, "handoff.created", "{data}");
    assert_eq!(data["handoff"]["handoff_id"], id.as_str());
    assert_eq!(data["handoff"]["contact"]["name"], "Ada");
    assert!(
        data["handoff"]["brief"]
            .as_str()
            .unwrap()
            .contains("cancel"),
        "{data}"
    );
    // And B lists it.
    let (_, queue) = b.get_as_agent("/api/v1/handoffs?status=waiting").await;
    let listed: Vec<&str> = queue["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["handoff_id"].as_str())
        .collect();
    assert_eq!(listed, vec![id.as_str()], "{queue}");

    // Two agents claim at once, one on each replica: exactly one wins.
    let claim = |app: &TestApp| {
        let url = format!("{}/api/v1/handoffs/{id}/claim", app.base);
        let client = app.client.clone();
        async move {
            client
                .post(url)
                .bearer_auth(AGENT_KEY)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let (on_a, on_b) = tokio::join!(claim(&a), claim(&b));
    let mut statuses = [on_a, on_b];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    let (event, _, data) = events.next().await;
    assert_eq!(event, "handoff.claimed", "{data}");
}

#[tokio::test]
async fn analytics_from_both_replicas_are_counted_once() {
    let Some((a, b)) = pair("one_report", Options::default).await else {
        return;
    };
    for query in ["refund", "password reset", "invoice"] {
        a.search(query).await;
    }
    for query in ["export data", "two factor"] {
        b.search(query).await;
    }
    for app in [&a, &b] {
        eventually("both replicas' searches in the report", async || {
            let (_, summary) = app
                .get_with_key("/api/v1/analytics/summary", Some(ADMIN_KEY))
                .await;
            (summary["searches"] == 5).then_some(summary)
        })
        .await;
    }
    // Nothing is counted twice later either.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, summary) = b
        .get_with_key("/api/v1/analytics/summary", Some(ADMIN_KEY))
        .await;
    assert_eq!(summary["searches"], 5, "{summary}");
}

#[tokio::test]
async fn each_webhook_event_is_delivered_once_with_both_replicas_delivering() {
    let received = Arc::new(Receiver::default());
    let url = receiver(received.clone()).await;
    let Some((a, b)) = pair("one_delivery", || Options {
        webhook: Some(webhook(url.clone())),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let mut ids = Vec::new();
    for (n, (asked, claimed)) in [(&a, &b), (&b, &a), (&a, &a), (&b, &b)].iter().enumerate() {
        let session = format!("chat-hook-{n}");
        asked.ask(&session, "customer-hook", "refund").await;
        let (status, created) = asked
            .post(
                &format!("/api/v1/sessions/{session}/handoff"),
                None,
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["handoff_id"].as_str().unwrap().to_string();
        let (status, body) = claimed
            .post(
                &format!("/api/v1/handoffs/{id}/claim"),
                Some(AGENT_KEY),
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(id);
    }
    // Eight events (created and claimed, four times).
    eventually("every event delivered", async || {
        (received.attempts.lock().unwrap().len() >= 8).then_some(Value::Null)
    })
    .await;
    // Both workers poll the outbox every second: give a duplicate time to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let attempts = received.attempts.lock().unwrap();
    let mut deliveries: HashMap<String, usize> = HashMap::new();
    for (headers, _, status) in attempts.iter() {
        assert_eq!(*status, 200);
        *deliveries
            .entry(headers["x-rapport-delivery"].to_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(deliveries.len(), 8, "{deliveries:?}");
    assert!(
        deliveries.values().all(|n| *n == 1),
        "each delivered once: {deliveries:?}"
    );
}

/// A `rapport serve` process: a replica that can be killed for real.
struct Process {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn serve(url: &str) -> Process {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rapport.toml");
    std::fs::write(
        &config,
        format!("agent_keys = [\"{AGENT_KEY}\"]\nadmin_keys = [\"{ADMIN_KEY}\"]\nrate_limit_per_second = 0\n"),
    )
    .unwrap();
    let port = free_port();
    let child = rapport_command()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--articles")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/articles"))
        .arg("--index")
        .arg(dir.path().join("index"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--model")
        .arg("off")
        .arg("--database-url")
        .arg(url)
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("rapport starts");
    let process = Process {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client
            .get(format!("{}/ready", process.base))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK);
        if ready {
            return process;
        }
        assert!(Instant::now() < deadline, "replica never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn killing_one_replica_under_load_loses_nothing_the_other_can_answer() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    let url = cluster.create_database("kill_nine");
    let mut a = serve(&url).await;
    let b = serve(&url).await;
    let bases = [a.base.clone(), b.base.clone()];
    let client = reqwest::Client::new();

    // A session starts on A and fails once there.
    let first: Value = client
        .post(format!("{}/api/v1/answer", bases[0]))
        .json(&json!({"question": "how do I export my data to CSV?", "session_id": "chat-kill", "customer_id": "customer-kill"}))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(first["answer"]["article_id"], EXPORT, "{first}");
    let status = client
        .post(format!("{}/api/v1/feedback", bases[0]))
        .json(&json!({"query_id": first["query_id"], "article_id": EXPORT, "event": "not_helpful"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::ACCEPTED);

    // Load on both, as a load balancer spreads it: a request A cannot take
    // (connection refused once it is dead) goes to B, as HAProxy's
    // `option redispatch` does.
    let load = {
        let client = client.clone();
        let bases = bases.clone();
        tokio::spawn(async move {
            let (mut answered, mut redispatched, mut failed) = (0u32, 0u32, Vec::new());
            let started = Instant::now();
            let mut n = 0usize;
            while started.elapsed() < Duration::from_secs(3) {
                n += 1;
                let path = if n.is_multiple_of(2) {
                    "/api/v1/search?q=refund".to_string()
                } else {
                    "/api/v1/search?q=reset%20password".to_string()
                };
                let first = &bases[n % 2];
                let mut response = client.get(format!("{first}{path}")).send().await;
                if response.is_err() {
                    redispatched += 1;
                    response = client.get(format!("{}{path}", bases[1])).send().await;
                }
                match response {
                    Ok(r) if r.status().is_success() => answered += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (answered, redispatched, failed)
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.child.kill().expect("kill -9"); // SIGKILL: no graceful shutdown
    a.child.wait().unwrap();
    let (answered, redispatched, failed) = load.await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(answered > 50, "{answered}");
    assert!(redispatched > 0, "A was killed mid-load");

    // The session goes on at B, remembering what failed on A.
    let next: Value = client
        .post(format!("{}/api/v1/answer", bases[1]))
        .json(&json!({"question": "export my data as CSV", "session_id": "chat-kill", "customer_id": "customer-kill"}))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(next["session_memory"], "available", "{next}");
    assert_ne!(next["answer"]["article_id"], EXPORT, "{next}");
}

#[tokio::test]
async fn with_the_database_stopped_search_goes_on_events_wait_and_handoffs_say_retry() {
    let Some(cluster) = pg::Cluster::start() else {
        return;
    };
    let url = cluster.create_database("outage");
    let app = replica(&url, Options::default()).await;
    let session = "chat-outage";
    let first = app
        .ask(
            session,
            "customer-outage",
            "how do I export my data to CSV?",
        )
        .await;
    assert_eq!(first["answer"]["article_id"], EXPORT, "{first}");
    vote(&app, &first["query_id"], EXPORT, "not_helpful").await;
    app.search("refund").await;
    let searches_before = eventually("the first search stored", async || {
        let (_, summary) = app
            .get_with_key("/api/v1/analytics/summary", Some(ADMIN_KEY))
            .await;
        (summary["searches"] == 1).then_some(summary)
    })
    .await["searches"]
        .as_u64()
        .unwrap();

    cluster.stop();
    // Searches and answers go on, from the index.
    let mut searched = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let (status, body) = app.get("/api/v1/search?q=password").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        searched += 1;
    }
    // Autocomplete, the agent's suggestions and the portal too.
    let (status, body) = app.get("/api/v1/autocomplete?q=passw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/suggest",
            Some(AGENT_KEY),
            &json!({"transcript": [{"role": "customer", "text": "how do I export my data?"}],
                    "session_id": session, "customer_id": "customer-outage"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let portal = app
        .client
        .get(format!("{}/search?q=password", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(portal.status(), StatusCode::OK);
    let during = app
        .ask(session, "customer-outage", "exporting data to CSV")
        .await;
    assert_eq!(during["session_memory"], "unavailable", "{during}");
    // Conservative: what this replica saw fail is still left out.
    assert_ne!(during["answer"]["article_id"], EXPORT, "{during}");

    // Asking for a person cannot be stored: 503, retry later.
    let response = app
        .client
        .post(format!("{}/api/v1/sessions/{session}/handoff", app.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "database_unavailable", "{body}");

    let (_, status) = app.get_as_agent("/api/v1/status").await;
    assert_eq!(status["database"]["backend"], "postgres", "{status}");
    assert_eq!(status["database"]["state"], "down", "{status}");
    assert!(
        status["database"]["buffered_events"].as_u64().unwrap() > 0,
        "{status}"
    );
    let (ready, _) = app.get("/ready").await;
    assert_eq!(ready, StatusCode::OK, "ready while the database is down");

    cluster.start_again();
    let status = eventually("the database back and the buffer drained", async || {
        let (_, status) = app.get_as_agent("/api/v1/status").await;
        (status["database"]["state"] == "up" && status["database"]["buffered_events"] == 0)
            .then_some(status)
    })
    .await;
    assert!(
        status["database"]["reconnects"].as_u64().unwrap() >= 1,
        "{status}"
    );
    // What was searched during the outage landed.
    eventually("the outage's searches in the report", async || {
        let (_, summary) = app
            .get_with_key("/api/v1/analytics/summary", Some(ADMIN_KEY))
            .await;
        // And the autocomplete and the portal's search.
        (summary["searches"].as_u64() == Some(searches_before + searched + 2)).then_some(summary)
    })
    .await;
    let (status, created) = app
        .post(
            &format!("/api/v1/sessions/{session}/handoff"),
            None,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

#[tokio::test]
async fn migrations_run_once_and_a_newer_schema_is_refused() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    let url = cluster.create_database("migrations");
    let run = |args: &[&str]| {
        let output = rapport_command()
            .arg("db")
            .args(args)
            .arg("--database-url")
            .arg(&url)
            .output()
            .expect("rapport runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    };
    let (ok, out, _) = run(&["status"]);
    assert!(ok && out.contains("version 0 of"), "{out}");
    let (ok, out, _) = run(&["migrate"]);
    assert!(ok && out.contains("applied migrations 1, 2"), "{out}");
    let (ok, out, _) = run(&["migrate"]);
    assert!(
        ok && out.contains("nothing to apply") && out.contains("up to date"),
        "{out}"
    );

    // A newer rapport migrated this database: this one must not use it.
    let database = url.rsplit('/').next().unwrap();
    cluster.execute(
        database,
        "INSERT INTO rapport_migrations (version, name, applied_ms) VALUES (999, 'from the future', 0)",
    );
    let (ok, out, err) = run(&["status"]);
    assert!(!ok, "{out}");
    assert!(out.contains("NEWER"), "{out}");
    assert!(err.contains("version 999"), "{err}");
    let refused = rapport::store::postgres::PgStore::open(&url).unwrap_err();
    assert!(refused.to_string().contains("upgrade rapport"), "{refused}");
}

#[tokio::test]
async fn a_single_servers_sqlite_moves_to_postgresql_and_its_sessions_go_on() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    // A single server on SQLite, with a session, a hand-off and searches.
    let mut single = spawn_bundled_with(Options::default()).await;
    let first = single
        .ask(
            "chat-moving",
            "customer-moving",
            "how do I export my data to CSV?",
        )
        .await;
    assert_eq!(first["answer"]["article_id"], EXPORT, "{first}");
    vote(&single, &first["query_id"], EXPORT, "not_helpful").await;
    single
        .ask("chat-waiting", "customer-waiting", "refund")
        .await;
    let (status, waiting) = single
        .post("/api/v1/sessions/chat-waiting/handoff", None, &json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{waiting}");
    for query in ["password", "invoice", "two factor"] {
        single.search(query).await;
    }
    single.stop().await;
    let data_dir = single.index.path().join("data");

    let url = cluster.create_database("moving");
    let copy = || {
        rapport_command()
            .args(["db", "copy", "--data-dir"])
            .arg(&data_dir)
            .arg("--database-url")
            .arg(&url)
            .output()
            .expect("rapport runs")
    };
    let output = copy();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.contains("session salt       copied"), "{out}");
    assert!(out.contains("handoffs"), "{out}");

    // A replica on the copy: the session goes on, what failed stays out.
    let replica = replica(&url, Options::default()).await;
    let next = replica
        .ask(
            "chat-moving",
            "customer-moving",
            "exporting my data to a CSV file",
        )
        .await;
    assert_ne!(next["answer"]["article_id"], EXPORT, "{next}");
    let (_, queue) = replica
        .get_as_agent("/api/v1/handoffs?status=waiting")
        .await;
    assert_eq!(
        queue["handoffs"][0]["handoff_id"], waiting["handoff_id"],
        "{queue}"
    );
    let (_, summary) = replica
        .get_with_key("/api/v1/analytics/summary", Some(ADMIN_KEY))
        .await;
    assert_eq!(summary["searches"], 3, "{summary}");

    // Copying into a database that holds rows is refused.
    let again = copy();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[tokio::test]
async fn a_dashboard_sign_in_on_one_replica_works_on_the_other_and_signing_out_ends_it_on_both() {
    let Some((a, b)) = pair("sign_in", Options::default).await else {
        return;
    };
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = browser
        .post(format!("{}/admin/login", a.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={ADMIN_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = |app: &TestApp| {
        let request = browser
            .get(format!("{}/admin", app.base))
            .header("cookie", cookie.clone());
        async move { request.send().await.unwrap() }
    };
    // B never saw the sign-in: the session is in the shared store.
    let on_b = page(&b).await;
    assert_eq!(on_b.status(), StatusCode::OK);
    let html = on_b.text().await.unwrap();
    assert!(!html.contains(SIGN_IN_FORM), "signed in on B: {html}");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the sign-out form's token")
        .to_string();
    // Signing out on B ends it on A too.
    let signed_out = browser
        .post(format!("{}/admin/logout", b.base))
        .header("cookie", cookie.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    let on_a = page(&a).await.text().await.unwrap();
    assert!(on_a.contains(SIGN_IN_FORM), "signed out on A too: {on_a}");
}

/// The dashboard's sign-in form: what a browser without a session gets.
const SIGN_IN_FORM: &str = r#"action="/admin/login""#;
