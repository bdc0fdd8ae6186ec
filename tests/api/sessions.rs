//! The hand-off over real HTTP: a whole bot conversation, the customer's "not
//! helpful", the question again in other words and in capitals, then the
//! agent fetching the session and asking for suggestions; retention; access.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, AGENT_KEY, Options, TestApp, reasons, spawn_bundled_with};

const FAILED: &str = "account/export-data";
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The bot never offers the failed article again: not as the answer, not
/// as an alternative; it answers something else or hands off saying why.
fn assert_moves_on(body: &Value) {
    assert_ne!(body["answer"]["article_id"], FAILED, "{body}");
    for alternative in body["alternatives"].as_array().unwrap() {
        assert_ne!(alternative["article_id"], FAILED, "{body}");
    }
    let why = reasons(body);
    let handed_off = ["already_tried", "repeated_question", "frustration"]
        .iter()
        .any(|r| why.contains(&r.to_string()));
    assert!(
        body["answer"].is_object() || handed_off,
        "a different article or a hand-off: {body}"
    );
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

#[tokio::test]
async fn a_whole_conversation_is_handed_over_without_repeating_what_failed() {
    let clock = rapport::analytics::Clock::default();
    let app = spawn_bundled_with(Options {
        clock: clock.clone(),
        ..Options::default()
    })
    .await;
    let (session, customer) = ("chat-77", "customer-5");

    // 1. The bot answers confidently.
    let first = app
        .ask(session, customer, "how do I export my data to CSV?")
        .await;
    assert_eq!(first["answer"]["article_id"], FAILED, "{first}");
    assert_eq!(first["handoff"]["recommended"], false, "{first}");

    // 2. The customer says it didn't help, and asks again straight away in
    //    other words: the vote counts immediately.
    vote(&app, &first["query_id"], FAILED, "not_helpful").await;
    let again = app
        .ask(
            session,
            customer,
            "exporting my data to a CSV file, my email is jane@example.com",
        )
        .await;
    assert_moves_on(&again);

    // 3. And in capitals.
    let shouted = app
        .ask(session, customer, "HOW DO I EXPORT MY DATA!!")
        .await;
    assert_moves_on(&shouted);
    assert_eq!(shouted["handoff"]["recommended"], true, "{shouted}");

    // 4. The agent picks up: anonymous callers are refused, unknown ids are 404.
    let path = format!("/api/v1/sessions/{session}");
    let (status, body) = app.get(&path).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = app.get_with_key(&path, Some("wrong-key")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = app.get_as_agent("/api/v1/sessions/never-seen").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, view) = app.get_with_key(&path, Some(ADMIN_KEY)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let (status, view) = app.get_as_agent(&path).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["session_id"], session);

    // Every question, redacted like analytics.
    let questions: Vec<&str> = view["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        questions,
        vec![
            "how do I export my data to CSV?",
            "exporting my data to a CSV file, my email is [email]",
            "HOW DO I EXPORT MY DATA!!",
        ],
        "{view}"
    );
    assert!(!view.to_string().contains("jane@"), "{view}");
    assert!(!view.to_string().contains(customer), "{view}");
    // Every article shown, with its confidence and the customer's verdict.
    let shown = view["shown"].as_array().unwrap();
    let failed = shown
        .iter()
        .find(|s| s["article_id"] == FAILED)
        .unwrap_or_else(|| panic!("{view}"));
    assert_eq!(failed["feedback"], "not_helpful", "{view}");
    assert!(failed["best_confidence"].as_f64().unwrap() >= 0.7, "{view}");
    assert_eq!(view["questions"][0]["shown"][0]["article_id"], FAILED);
    // The feedback, and every hand-off reason the bot gave.
    assert_eq!(view["feedback"][0]["event"], "not_helpful", "{view}");
    assert_eq!(view["feedback"][0]["article_id"], FAILED, "{view}");
    let all_reasons: Vec<Value> = view["handoff_reasons"].as_array().unwrap().clone();
    for reason in reasons(&again).iter().chain(&reasons(&shouted)) {
        assert!(all_reasons.contains(&json!(reason)), "{reason}: {view}");
    }
    assert_eq!(
        view["tone_trend"]["frustration"].as_array().unwrap().len(),
        3
    );
    assert_eq!(view["tone_trend"]["direction"], "rising", "{view}");
    assert_eq!(view["timeline"].as_array().unwrap().len(), 4, "{view}");
    let brief = view["brief"].as_str().unwrap();
    assert!(
        brief.starts_with("Asked 3 times about \"export data")
            && brief.contains("Export your data (not helpful)")
            && brief.contains("Frustration rising")
            && brief.contains("Handed off:"),
        "{brief}"
    );

    // 5. Suggestions for the agent: the bot's questions are context (the live
    //    transcript alone says nothing), the failed article is marked and
    //    ranked below untried ones.
    let (status, suggest) = app
        .post(
            "/api/v1/suggest",
            Some(AGENT_KEY),
            &json!({"transcript": [{"role": "customer", "text": "still stuck with that"}],
                    "session_id": session, "limit": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{suggest}");
    let suggestions = suggest["suggestions"].as_array().unwrap();
    let position = suggestions
        .iter()
        .position(|s| s["id"] == FAILED)
        .unwrap_or_else(|| panic!("the session's topic drives suggestions: {suggest}"));
    assert_eq!(suggestions[position]["shown_to_customer"], true);
    assert_eq!(suggestions[position]["customer_feedback"], "not_helpful");
    assert!(
        suggestions[position..]
            .iter()
            .all(|s| s["customer_feedback"] == "not_helpful"),
        "failed articles rank last: {suggest}"
    );
    assert!(position > 0, "{suggest}");
    for other in &suggestions[..position] {
        assert_ne!(other["customer_feedback"], "not_helpful", "{suggest}");
    }
    // Without a session, nothing is marked.
    let (_, plain) = app
        .post(
            "/api/v1/suggest",
            Some(AGENT_KEY),
            &json!({"transcript": [{"role": "customer", "text": "export my data to CSV"}]}),
        )
        .await;
    assert_eq!(plain["suggestions"][0]["id"], FAILED, "{plain}");
    assert_eq!(plain["suggestions"][0]["shown_to_customer"], false);
    assert_eq!(plain["suggestions"][0]["customer_feedback"], Value::Null);

    // 6. The same customer in a new chat: their "not helpful" still holds;
    //    another customer gets the article.
    let next_week = app
        .ask("chat-78", customer, "how do I export my data to CSV?")
        .await;
    assert_moves_on(&next_week);
    let stranger = app
        .ask("chat-79", "customer-6", "how do I export my data to CSV?")
        .await;
    assert_eq!(stranger["answer"]["article_id"], FAILED, "{stranger}");

    // 7. Retention: after 7 days the session is gone (404), in memory and in
    //    SQLite; the customer's vote lasts 30 days.
    clock.advance(8 * DAY);
    let (status, body) = app.get_as_agent(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let later = app
        .ask("chat-80", customer, "how do I export my data to CSV?")
        .await;
    assert_ne!(later["answer"]["article_id"], FAILED, "{later}");
    clock.advance(23 * DAY);
    let much_later = app
        .ask("chat-81", customer, "how do I export my data to CSV?")
        .await;
    assert_eq!(much_later["answer"]["article_id"], FAILED, "{much_later}");

    let database = app.index.path().join("data").join("analytics.sqlite");
    let mut app = app;
    app.stop().await; // flushes the writer
    let connection = rusqlite::Connection::open(&database).unwrap();
    let count = |table: &str| -> i64 {
        connection
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .unwrap()
    };
    // Only the question asked after the last move of the clock remains; the
    // customer's vote is past its 30 days.
    assert_eq!(
        count("session_events"),
        1,
        "old sessions pruned from SQLite"
    );
    assert_eq!(count("customer_votes"), 0, "old votes pruned from SQLite");
}

#[tokio::test]
async fn with_analytics_off_sessions_are_kept_in_memory() {
    let app = spawn_bundled_with(Options {
        analytics: false,
        ..Options::default()
    })
    .await;
    let first = app
        .ask("mem-1", "c", "how do I export my data to CSV?")
        .await;
    assert_eq!(first["answer"]["article_id"], FAILED, "{first}");
    vote(&app, &first["query_id"], FAILED, "not_helpful").await;
    let again = app.ask("mem-1", "c", "export my data as CSV").await;
    assert_moves_on(&again);
    let (status, view) = app.get_as_agent("/api/v1/sessions/mem-1").await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["questions"].as_array().unwrap().len(), 2, "{view}");
    assert_eq!(view["feedback"][0]["event"], "not_helpful", "{view}");
    // Feedback on a query outside any session still needs analytics.
    let lone = app.answer("how do I export my data to CSV?").await;
    let (status, body) = app
        .post(
            "/api/v1/feedback",
            None,
            &json!({"query_id": lone["query_id"], "article_id": FAILED, "event": "helpful"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "analytics_disabled");
}
