//! Hand-offs to people over real HTTP: a conversation through the queue to
//! a rating, claims racing, the live stream, webhook delivery with retries
//! to a receiver running in the test, and every caller and body checked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use hmac::{KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_KEY, AGENT_KEY, DEADLINE, EventReader, Options, TestApp, article, spawn_app_with,
};

const SECRET: &str = "whsec-test-secret";

fn articles() -> Vec<(&'static str, String)> {
    vec![
        (
            "billing/refunds.md",
            article(
                "Refunds",
                "",
                "## Asking for a refund\n\nOpen Billing, choose the charge and press Refund. Refunds reach your card in 5 days.",
            ),
        ),
        (
            "account/password.md",
            article(
                "Reset your password",
                "",
                "## Reset\n\nChoose Forgot password on the sign-in page and follow the e-mail.",
            ),
        ),
    ]
}

async fn start(options: Options) -> TestApp {
    let files = articles();
    let borrowed: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    spawn_app_with(&borrowed, options).await
}

async fn ask(app: &TestApp, session: &str, question: &str) -> Value {
    let (status, body) = app
        .post(
            "/api/v1/answer",
            None,
            &json!({"question": question, "session_id": session}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn request_handoff(app: &TestApp, session: &str, body: &Value) -> (StatusCode, Value) {
    app.post(&format!("/api/v1/sessions/{session}/handoff"), None, body)
        .await
}

#[tokio::test]
async fn a_conversation_goes_from_the_bot_through_the_queue_to_a_rating() {
    let app = start(Options {
        labels: (Some("Dana".into()), None),
        ..Options::default()
    })
    .await;
    let answer = ask(&app, "chat-1", "how do I get a refund for my order?").await;
    let query_id = answer["query_id"].clone();
    let (status, _) = app
        .post(
            "/api/v1/feedback",
            None,
            &json!({"query_id": query_id, "article_id": "billing/refunds", "event": "not_helpful"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let (status, created) = request_handoff(
        &app,
        "chat-1",
        &json!({"contact": {"name": "Ada", "email": "ada@example.com"}, "message": "charged twice"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "waiting");
    assert_eq!(created["position"], 1);
    assert!(
        created["expected_wait_seconds"].is_null(),
        "nothing measured yet: {created}"
    );
    let id = created["handoff_id"].as_str().unwrap().to_string();

    // Asking again while it is open: the same hand-off.
    let (status, again) = request_handoff(&app, "chat-1", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["handoff_id"], id.as_str());

    // The agents' queue: the brief, the questions, what was shown and the verdict.
    let (status, queue) = app.get_as_agent("/api/v1/handoffs?status=waiting").await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    let waiting = queue["handoffs"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{queue}");
    let entry = &waiting[0];
    assert_eq!(entry["handoff_id"], id.as_str());
    assert_eq!(entry["session_id"], "chat-1");
    assert_eq!(entry["contact"]["email"], "ada@example.com");
    assert_eq!(entry["message"], "charged twice");
    assert_eq!(entry["position"], 1);
    assert!(
        entry["brief"].as_str().unwrap().contains("Refunds"),
        "{entry}"
    );
    assert_eq!(entry["questions"][0], "how do I get a refund for my order?");
    assert_eq!(entry["shown"][0]["article_id"], "billing/refunds");
    assert_eq!(entry["shown"][0]["feedback"], "not_helpful");
    assert!(!entry["reasons"].as_array().unwrap().is_empty(), "{entry}");

    // Claimed: named by the key's label; the customer sees it.
    let (status, claimed) = app
        .post(
            &format!("/api/v1/handoffs/{id}/claim"),
            Some(AGENT_KEY),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["claimed_by"], "Dana");
    let (_, mine) = app.get("/api/v1/sessions/chat-1/handoff").await;
    assert_eq!(mine["status"], "claimed", "{mine}");
    assert_eq!(mine["agent"], "Dana");
    assert!(mine["position"].is_null());

    let (status, closed) = app
        .post(
            &format!("/api/v1/handoffs/{id}/close"),
            Some(AGENT_KEY),
            &json!({"resolution": "solved", "note": "refunded the second charge"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["resolution"], "solved");
    let (_, mine) = app.get("/api/v1/sessions/chat-1/handoff").await;
    assert_eq!(
        (mine["status"].as_str(), mine["resolution"].as_str()),
        (Some("closed"), Some("solved"))
    );

    // The rating; a later one replaces it.
    let (status, rated) = app
        // 4.0 is the integer 4 to JSON Schema, so to the API too.
        .post(
            "/api/v1/sessions/chat-1/rating",
            None,
            &json!({"score": 4.0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rated}");
    assert_eq!(rated["replaced"], false);
    let (_, rated) = app
        .post(
            "/api/v1/sessions/chat-1/rating",
            None,
            &json!({"score": 5, "comment": "Dana was quick; call me on 555 123 4567"}),
        )
        .await;
    assert_eq!(rated["replaced"], true);
    assert!(
        !rated["comment"].as_str().unwrap().contains("4567"),
        "redacted: {rated}"
    );

    // A second, self-served session: asked once, no hand-off.
    ask(&app, "chat-2", "how do I reset my password").await;

    // The next customer is told how long agents take (measured: one claim).
    ask(&app, "chat-3", "refund please").await;
    let (_, next) = request_handoff(&app, "chat-3", &json!({})).await;
    assert!(next["expected_wait_seconds"].is_u64(), "{next}");
    assert_eq!(next["position"], 1);

    let (status, summary) = app
        .get_with_key("/api/v1/analytics/summary", Some(ADMIN_KEY))
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["csat"]["count"], 1, "{summary}");
    assert_eq!(summary["csat"]["mean"], 5.0);
    assert_eq!(summary["csat"]["satisfied_rate"], 1.0);
    assert_eq!(summary["handoffs"]["created"], 2, "{summary}");
    assert_eq!(summary["handoffs"]["claimed"], 1);
    assert_eq!(summary["handoffs"]["closed"]["solved"], 1);
    assert_eq!(summary["handoff_wait_seconds"]["count"], 1);
    assert!(summary["handoff_wait_seconds"]["median"].is_number());
    assert_eq!(summary["sessions"], 3);
    let rate = summary["self_service_rate"].as_f64().unwrap();
    assert!((rate - 1.0 / 3.0).abs() < 1e-9, "{summary}");
}

#[tokio::test]
async fn two_agents_claiming_at_once_exactly_one_wins() {
    let app = start(Options {
        labels: (Some("Dana".into()), Some("Sam".into())),
        ..Options::default()
    })
    .await;
    for round in 0..8 {
        let session = format!("race-{round}");
        ask(&app, &session, "refund").await;
        let (_, created) = request_handoff(&app, &session, &json!({})).await;
        let path = format!(
            "/api/v1/handoffs/{}/claim",
            created["handoff_id"].as_str().unwrap()
        );
        let empty = json!({});
        let (a, b) = tokio::join!(
            app.post(&path, Some(AGENT_KEY), &empty),
            app.post(&path, Some(ADMIN_KEY), &empty)
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "{a:?} {b:?}"
        );
        let (winner, loser) = if a.0 == StatusCode::OK {
            (a.1, b.1)
        } else {
            (b.1, a.1)
        };
        let holder = winner["claimed_by"].as_str().unwrap();
        assert_eq!(loser["error"]["code"], "conflict");
        let message = loser["error"]["message"].as_str().unwrap();
        assert!(message.contains(holder), "names who holds it: {message}");
    }
}

#[tokio::test]
async fn bad_requests_and_callers_get_clear_errors() {
    let app = start(Options::default()).await;
    ask(&app, "known", "refund").await;
    let cases = [
        (
            "/api/v1/sessions/unknown/handoff",
            json!({}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/sessions/known/handoff",
            json!({"contact": {"email": "not an address"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/sessions/known/handoff",
            json!({"contact": {"phone": "555"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/sessions/known/handoff",
            json!({"message": "x".repeat(3000)}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/sessions/known/rating",
            json!({"score": 6}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/sessions/known/rating",
            json!({"score": 0}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/sessions/known/rating",
            json!({"score": "5"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/sessions/unknown/rating",
            json!({"score": 5}),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (path, body, expected) in cases {
        let (status, response) = app.post(path, None, &body).await;
        assert_eq!(status, expected, "{path} {body}: {response}");
        assert!(response["error"]["message"].is_string(), "{response}");
    }
    // Nothing was created by the refused requests.
    let (_, queue) = app.get_as_agent("/api/v1/handoffs").await;
    assert_eq!(queue["handoffs"], json!([]));
    // A body that is not JSON.
    let response = app
        .client
        .post(format!("{}/api/v1/sessions/known/handoff", app.base))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_body");

    // `null` is no body: a hand-off without details.
    let (status, created) = request_handoff(&app, "known", &Value::Null).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["handoff_id"].as_str().unwrap();
    // Agents' endpoints: anonymous → 401.
    for path in [
        "/api/v1/handoffs".to_string(),
        format!("/api/v1/handoffs/{id}"),
        "/api/v1/handoffs/events".to_string(),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
    }
    for path in [
        format!("/api/v1/handoffs/{id}/claim"),
        format!("/api/v1/handoffs/{id}/close"),
    ] {
        let (status, body) = app.post(&path, None, &json!({"resolution": "spam"})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
    }
    let (status, _) = app.get_as_agent("/api/v1/handoffs/deliveries").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app.get_as_agent("/api/v1/handoffs?status=lost").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
    let (status, _) = app.get_as_agent("/api/v1/handoffs/h_nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .post(
            &format!("/api/v1/handoffs/{id}/close"),
            Some(AGENT_KEY),
            &json!({"resolution": "fixed"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_body"))
    );
    // Closed twice: the second is a conflict. Claiming a closed one too.
    let close = json!({"resolution": "spam"});
    let (status, _) = app
        .post(
            &format!("/api/v1/handoffs/{id}/close"),
            Some(AGENT_KEY),
            &close,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(
            &format!("/api/v1/handoffs/{id}/close"),
            Some(AGENT_KEY),
            &close,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = app
        .post(
            &format!("/api/v1/handoffs/{id}/claim"),
            Some(AGENT_KEY),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Never claimed, closed: abandoned.
    let (_, summary) = app
        .get_with_key("/api/v1/analytics/summary", Some(ADMIN_KEY))
        .await;
    assert_eq!(summary["handoffs"]["abandoned"], 1, "{summary}");
}

#[tokio::test]
async fn agents_see_the_queue_change_live() {
    let app = start(Options::default()).await;
    let response = app
        .client
        .get(format!("{}/api/v1/handoffs/events", app.base))
        .bearer_auth(AGENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut events = EventReader::new(response);
    ask(&app, "live-1", "refund").await;
    let (_, created) = request_handoff(&app, "live-1", &json!({"contact": {"name": "Ada"}})).await;
    let id = created["handoff_id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/handoffs/{id}/claim"),
        Some(AGENT_KEY),
        &json!({}),
    )
    .await;
    app.post(
        &format!("/api/v1/handoffs/{id}/close"),
        Some(AGENT_KEY),
        &json!({"resolution": "solved"}),
    )
    .await;
    let mut ids = Vec::new();
    for expected in ["handoff.created", "handoff.claimed", "handoff.closed"] {
        let (event, delivery, data) = events.next().await;
        assert_eq!(event, expected, "{data}");
        assert_eq!(data["event"], expected);
        assert_eq!(data["handoff"]["handoff_id"], id);
        assert_eq!(data["handoff"]["contact"]["name"], "Ada");
        assert!(data["occurred_at"].is_string());
        ids.push(delivery);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "one id per event: {ids:?}");
}

/// What the test's webhook receiver saw: headers and raw body per attempt.
#[derive(Default)]
pub(crate) struct Receiver {
    pub(crate) attempts: Mutex<Vec<(HeaderMap, Bytes, u16)>>,
    /// Attempts to refuse with 503 before accepting.
    pub(crate) fail_first: AtomicUsize,
}

/// A webhook receiver on a free port; returns its URL.
pub(crate) async fn receiver(state: Arc<Receiver>) -> String {
    async fn receive(
        axum::extract::State(state): axum::extract::State<Arc<Receiver>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> AxumStatus {
        let failing = state
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let status = if failing {
            AxumStatus::SERVICE_UNAVAILABLE
        } else {
            AxumStatus::OK
        };
        state
            .attempts
            .lock()
            .unwrap()
            .push((headers, body, status.as_u16()));
        status
    }
    let router = axum::Router::new()
        .route("/hooks/rapport", axum::routing::post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/rapport", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}

fn verify(headers: &HeaderMap, body: &[u8]) {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        headers["x-rapport-signature"].to_str().unwrap(),
        format!("sha256={expected}")
    );
}

pub(crate) fn webhook(url: String) -> rapport::handoff::outbox::Webhook {
    rapport::handoff::outbox::Webhook {
        url,
        secret: Some(SECRET.into()),
        retry_initial: Duration::from_millis(100),
    }
}

#[tokio::test]
async fn webhook_events_are_retried_until_accepted_with_one_delivery_id_and_a_valid_signature() {
    let state = Arc::new(Receiver {
        fail_first: AtomicUsize::new(2),
        ..Receiver::default()
    });
    let url = receiver(state.clone()).await;
    let app = start(Options {
        webhook: Some(webhook(url)),
        ..Options::default()
    })
    .await;
    ask(&app, "hook-1", "refund please").await;
    let (status, created) = request_handoff(
        &app,
        "hook-1",
        &json!({"contact": {"name": "Ada", "email": "ada@example.com"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let deadline = Instant::now() + DEADLINE;
    while state.attempts.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "three attempts within the deadline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let a (wrong) fourth attempt show up if there were one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attempts = state.attempts.lock().unwrap().clone();
    let statuses: Vec<u16> = attempts.iter().map(|a| a.2).collect();
    assert_eq!(
        statuses,
        [503, 503, 200],
        "accepted once, after two failures"
    );
    let ids: Vec<&str> = attempts
        .iter()
        .map(|(h, _, _)| h["x-rapport-delivery"].to_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one delivery id: {ids:?}"
    );
    for (headers, body, _) in &attempts {
        verify(headers, body);
        assert_eq!(headers["x-rapport-event"], "handoff.created");
        assert_eq!(body, &attempts[0].1, "the same bytes on every attempt");
    }
    let event: Value = serde_json::from_slice(&attempts[2].1).unwrap();
    assert_eq!(event["event"], "handoff.created");
    assert_eq!(event["handoff"]["handoff_id"], created["handoff_id"]);
    assert_eq!(event["handoff"]["contact"]["email"], "ada@example.com");
    assert_eq!(event["handoff"]["questions"][0], "refund please");
    assert!(event["handoff"]["brief"].as_str().unwrap().len() > 10);
    assert!(!event["handoff"]["reasons"].as_array().unwrap().is_empty());

    // The admins' view of it, and the metrics.
    let (status, deliveries) = app
        .get_with_key("/api/v1/handoffs/deliveries", Some(ADMIN_KEY))
        .await;
    assert_eq!(status, StatusCode::OK, "{deliveries}");
    assert_eq!(
        (
            deliveries["delivered"].as_u64(),
            deliveries["retried"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let codes: Vec<u64> = deliveries["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [200, 503, 503], "most recent first");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "rapport_handoff_outbox_events{state=\"delivered\"} 1",
        "rapport_handoff_outbox_events{state=\"pending\"} 0",
        "rapport_handoff_webhook_retries 2",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_receiver_refusing_an_event_marks_it_dead_and_later_events_still_flow() {
    // 400 is not worth retrying: the receiver will refuse the same body again.
    async fn refuse() -> AxumStatus {
        AxumStatus::BAD_REQUEST
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            axum::Router::new().route("/", axum::routing::post(refuse)),
        )
        .await;
    });
    let app = start(Options {
        webhook: Some(webhook(url)),
        ..Options::default()
    })
    .await;
    for session in ["dead-1", "dead-2"] {
        ask(&app, session, "refund").await;
        request_handoff(&app, session, &json!({})).await;
    }
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, deliveries) = app
            .get_with_key("/api/v1/handoffs/deliveries", Some(ADMIN_KEY))
            .await;
        if deliveries["dead"] == 2 {
            assert_eq!(deliveries["pending"], 0);
            assert_eq!(deliveries["attempts"][0]["status_code"], 400);
            assert_eq!(deliveries["attempts"][0]["outcome"], "dead");
            break;
        }
        assert!(Instant::now() < deadline, "{deliveries}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_open_event_stream_ends_at_shutdown_instead_of_holding_it() {
    let mut app = start(Options::default()).await;
    let mut response = app
        .client
        .get(format!("{}/api/v1/handoffs/events", app.base))
        .bearer_auth(AGENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let started = Instant::now();
    app.stop().await;
    // The grace period for requests in flight is the request timeout plus
    // 5 s (15 s here); the stream must not use it.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?} with a stream open",
        started.elapsed()
    );
    let ended = tokio::time::timeout(DEADLINE, async {
        while let Ok(Some(_)) = response.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ended");
}

#[tokio::test]
async fn asking_for_a_person_has_its_own_tighter_rate_limit() {
    let app = start(Options {
        rate_limit: (1000, 1000),
        ..Options::default()
    })
    .await;
    for i in 0..6 {
        ask(&app, &format!("flood-{i}"), "refund").await;
    }
    for i in 0..5 {
        let (status, body) = request_handoff(&app, &format!("flood-{i}"), &json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{i}: {body}");
    }
    let response = app
        .client
        .post(format!("{}/api/v1/sessions/flood-5/handoff", app.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Searching is not held back by it.
    let (status, _) = app.get("/api/v1/search?q=refund").await;
    assert_eq!(status, StatusCode::OK);
}
