//! `POST /api/v1/messages` over real HTTP on the bundled help center: raw
//! e-mails from `tests/fixtures/mail/`, JSON messages, follow-ups in a
//! thread, one customer across chat and e-mail, the hand-off queue.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_KEY, AGENT_KEY, Options, TestApp, reasons, spawn_bundled, spawn_bundled_with,
};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail")
}

async fn post_raw(app: &TestApp, query: &str, raw: Vec<u8>) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/api/v1/messages{query}", app.base))
        .bearer_auth(AGENT_KEY)
        .header("content-type", "message/rfc822")
        .body(raw)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

async fn message(app: &TestApp, body: Value) -> Value {
    let (status, reply) = app.post("/api/v1/messages", Some(AGENT_KEY), &body).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    reply
}

fn answer_ids(reply: &Value) -> Vec<String> {
    reply["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["article_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_long_email_whose_quoted_thread_is_about_billing_is_answered_for_its_new_question() {
    let app = spawn_bundled().await;
    let (status, reply) = post_raw(&app, "", fixture("04_gmail_thread_other_topic.eml")).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let ids = answer_ids(&reply);
    assert!(
        [
            "account/two-step-verification",
            "account/lost-phone-recovery-codes"
        ]
        .contains(&ids[0].as_str()),
        "the two-factor question, not the quoted invoice: {reply}"
    );
    assert!(!ids.iter().any(|id| id.starts_with("billing/")), "{reply}");
    let cleaned = &reply["cleaned"];
    assert!(
        cleaned["removed"]
            .as_array()
            .unwrap()
            .contains(&json!("quote")),
        "{reply}"
    );
    let question = cleaned["question_text"].as_str().unwrap();
    assert!(
        question.contains("move two-factor to my new phone"),
        "{question}"
    );
    assert!(!question.contains("refunded"), "{question}");
    // Threaded by the first References id; the customer is the sender.
    assert_eq!(reply["thread_id"], "ticket-4471-1@rapport-support.com");
    assert_eq!(reply["channel"], "email");
    let draft = reply["suggested_reply"]["text"].as_str().unwrap();
    assert!(draft.starts_with("Hi Priya,"), "{draft}");
    // The draft quotes only article text and links the sections.
    assert!(draft.contains(reply["answers"][0]["text"].as_str().unwrap()));
    assert!(draft.contains(reply["answers"][0]["url"].as_str().unwrap()));
    assert_eq!(
        reply["auto_reply_ok"], false,
        "auto-replies are off by default"
    );
}

#[tokio::test]
async fn every_fixture_is_answered_or_refused_with_a_clear_reason() {
    let app = spawn_bundled().await;
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(fixtures().join("expected.toml")).unwrap())
            .unwrap();
    let messages = manifest["message"].as_array().unwrap();
    assert!(messages.len() >= 20);
    for expected in messages {
        let file = expected["file"].as_str().unwrap();
        let mut raw = fixture(file);
        if let Some(size) = expected
            .get("inflate_to_bytes")
            .and_then(|v| v.as_integer())
        {
            let line =
                "Q29udGFjdCBJRCxOYW1lLEVtYWlsLFBob25lLENvbXBhbnksQ291bnRyeQ0KMSxBbm5hLGFubmFA\r\n";
            let attachment = line.repeat(size as usize / line.len() + 1);
            raw = String::from_utf8(raw)
                .unwrap()
                .replace("@ATTACHMENT@", attachment.trim_end())
                .into_bytes();
            assert!(raw.len() > 2_000_000);
        }
        let (status, reply) = post_raw(&app, "?thread_id=fixture-threads", raw).await;
        match expected.get("error_contains").and_then(|v| v.as_str()) {
            Some(needle) => {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{file}: {reply}");
                assert_eq!(reply["error"]["code"], "invalid_message", "{file}: {reply}");
                let said = reply["error"]["message"].as_str().unwrap();
                assert!(said.contains(needle), "{file}: {said}");
            }
            None => {
                assert_eq!(status, StatusCode::OK, "{file}: {reply}");
                if let Some(question) = expected.get("question").and_then(|v| v.as_str()) {
                    assert_eq!(
                        reply["cleaned"]["question_text"].as_str().unwrap(),
                        question.trim(),
                        "{file}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn bad_messages_get_clear_errors() {
    let app = spawn_bundled().await;
    let good = json!({"channel": "email", "thread_id": "t-1", "text": "How do I export my data?"});
    let (status, body) = app.post("/api/v1/messages", None, &good).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let cases = [
        (
            json!({"channel": "email", "thread_id": " ", "text": "export"}),
            "missing_thread",
        ),
        (
            json!({"channel": "fax", "thread_id": "t", "text": "export"}),
            "invalid_body",
        ),
        (
            json!({"channel": "email", "thread_id": "t", "text": "x", "cc": "y"}),
            "invalid_body",
        ),
        (
            json!({"channel": "form", "thread_id": "t", "text": "hi", "received_at": "yesterday"}),
            "invalid_body",
        ),
        // Validated as a hand-off's contact is.
        (
            json!({"channel": "email", "thread_id": "t", "text": "export", "customer_email": "not an address"}),
            "invalid_body",
        ),
        (
            json!({"channel": "email", "thread_id": "t", "text": "export", "customer_name": "n".repeat(201)}),
            "invalid_body",
        ),
        (
            json!({"channel": "email", "thread_id": "t".repeat(257), "text": "export"}),
            "invalid_body",
        ),
    ];
    for (body, code) in cases {
        let (status, reply) = app.post("/api/v1/messages", Some(AGENT_KEY), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        assert_eq!(reply["error"]["code"], code, "{body}: {reply}");
    }
    // Nothing of the customer's own (only a quote): not refused, not lost;
    // a person takes it.
    let quoted = message(
        &app,
        json!({"channel": "email", "thread_id": "t-quote", "customer_email": "q@example.com",
               "text": "> only a quote\n> of an old mail"}),
    )
    .await;
    assert_eq!(quoted["cleaned"]["question_text"], "", "{quoted}");
    assert_eq!(quoted["answers"], json!([]), "{quoted}");
    assert_eq!(reasons(&quoted), vec!["no_match".to_string()], "{quoted}");
    assert!(quoted["handoff"]["handoff_id"].is_string(), "{quoted}");
    assert_eq!(quoted["suggested_reply"], Value::Null, "{quoted}");
    let response = app
        .client
        .post(format!("{}/api/v1/messages", app.base))
        .bearer_auth(AGENT_KEY)
        .header("content-type", "text/plain")
        .body("How do I export?")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    // A raw message without any id to thread by, and none given.
    let raw =
        b"From: a@example.com\r\nSubject: Export\r\n\r\nHow do I export my data?\r\n".to_vec();
    let (status, reply) = post_raw(&app, "", raw.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["error"]["code"], "missing_thread");
    let (status, reply) = post_raw(&app, "?thread_id=t-raw", raw).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(answer_ids(&reply)[0], "account/export-data", "{reply}");
}

#[tokio::test]
async fn a_reply_saying_it_did_not_work_gets_something_else_or_a_person() {
    let app = spawn_bundled().await;
    let first = message(
        &app,
        json!({"channel": "email", "thread_id": "ticket-9", "customer_id": "sam@example.com",
               "subject": "Export", "text": "Hello,\n\nHow do I download a copy of all my data?\n\nThanks,\nSam"}),
    )
    .await;
    assert_eq!(answer_ids(&first)[0], "account/export-data", "{first}");
    assert_eq!(first["handoff"]["recommended"], false, "{first}");
    let follow = message(
        &app,
        json!({"channel": "email", "thread_id": "ticket-9", "customer_id": "sam@example.com",
               "subject": "Re: Export",
               "text": "That didn't work, the download link never arrives.\n\nOn Tue, Sam wrote:\n> How do I download a copy of all my data?"}),
    )
    .await;
    assert_eq!(
        follow["follow_up"]["not_helpful"],
        json!(["account/export-data"]),
        "{follow}"
    );
    assert!(
        !answer_ids(&follow).contains(&"account/export-data".to_string()),
        "never re-offered: {follow}"
    );
    let why = reasons(&follow);
    assert!(
        !follow["answers"].as_array().unwrap().is_empty()
            || why.contains(&"already_tried".to_string()),
        "{follow}"
    );
    // Tone reads the customer's words only: the quoted question is not
    // counted as asked again.
    assert!(!why.contains(&"repeated_question".to_string()), "{follow}");
    // The agent sees the thread as one session, the vote included.
    let (status, session) = app.get_as_agent("/api/v1/sessions/ticket-9").await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(
        session["questions"].as_array().unwrap().len(),
        2,
        "{session}"
    );
    assert_eq!(session["questions"][0]["channel"], "email");
    assert!(
        session["brief"].as_str().unwrap().contains("not helpful"),
        "{session}"
    );
}

#[tokio::test]
async fn a_chat_yesterday_and_an_email_today_are_one_customer() {
    let clock = rapport::analytics::Clock::default();
    let app = spawn_bundled_with(Options {
        clock: clock.clone(),
        ..Options::default()
    })
    .await;
    let chat = app
        .ask("chat-77", "dana@example.com", "how do I export my data")
        .await;
    assert_eq!(chat["answer"]["article_id"], "account/export-data");
    let (status, _) = app
        .post(
            "/api/v1/feedback",
            None,
            &json!({"query_id": chat["query_id"], "article_id": "account/export-data", "event": "not_helpful"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    clock.advance(Duration::from_secs(26 * 3600));

    let mail = message(
        &app,
        json!({"channel": "email", "thread_id": "mail-5", "customer_id": "dana@example.com",
               "customer_name": "Dana Kim", "subject": "Exporting my data",
               "text": "How do I export my data? I need a copy of everything."}),
    )
    .await;
    // Yesterday's "not helpful" holds across channels, and the same topic
    // again is a repeated question: a person takes over.
    assert!(
        !answer_ids(&mail).contains(&"account/export-data".to_string()),
        "{mail}"
    );
    assert!(
        reasons(&mail).contains(&"repeated_question".to_string()),
        "{mail}"
    );
    let handoff_id = mail["handoff"]["handoff_id"]
        .as_str()
        .expect("queued")
        .to_string();

    let (status, session) = app.get_as_agent("/api/v1/sessions/mail-5").await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let earlier = &session["earlier_contacts"][0];
    assert_eq!(earlier["channel"], "answer", "{session}");
    let summary = earlier["summary"].as_str().unwrap();
    assert!(summary.starts_with("chat, yesterday: "), "{summary}");
    assert!(summary.contains("not helpful"), "{summary}");
    assert!(
        session["brief"]
            .as_str()
            .unwrap()
            .contains("Earlier contacts: chat, yesterday"),
        "{session}"
    );
    // The agent's queue carries the same, with who to write back to.
    let (status, queued) = app
        .get_as_agent(&format!("/api/v1/handoffs/{handoff_id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{queued}");
    assert_eq!(queued["contact"]["name"], "Dana Kim", "{queued}");
    assert_eq!(
        queued["earlier_contacts"][0]["channel"], "answer",
        "{queued}"
    );

    // Another customer's thread knows nothing of Dana.
    let other = message(
        &app,
        json!({"channel": "email", "thread_id": "mail-6", "customer_id": "lee@example.com",
               "subject": "Exporting my data", "text": "How do I export my data?"}),
    )
    .await;
    assert_eq!(answer_ids(&other)[0], "account/export-data", "{other}");
    let (_, session) = app.get_as_agent("/api/v1/sessions/mail-6").await;
    assert_eq!(session["earlier_contacts"], json!([]), "{session}");

    // Erasure takes the chat and the e-mail thread; a later message from
    // Dana starts with no history.
    let (status, erased) = app
        .delete("/api/v1/customers/dana@example.com", Some(ADMIN_KEY))
        .await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["removed"]["sessions"], 2, "{erased}");
    assert_eq!(erased["removed"]["handoffs"], 1, "{erased}");
    for gone in ["chat-77", "mail-5"] {
        let (status, _) = app.get_as_agent(&format!("/api/v1/sessions/{gone}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    }
    let again = message(
        &app,
        json!({"channel": "email", "thread_id": "mail-7", "customer_id": "dana@example.com",
               "subject": "Exporting my data", "text": "How do I export my data?"}),
    )
    .await;
    assert_eq!(answer_ids(&again)[0], "account/export-data", "{again}");
    assert_eq!(again["handoff"]["recommended"], false, "{again}");
    let (_, session) = app.get_as_agent("/api/v1/sessions/mail-7").await;
    assert_eq!(session["earlier_contacts"], json!([]), "{session}");
    assert!(
        !session["brief"].as_str().unwrap().contains("Earlier"),
        "{session}"
    );
}

#[tokio::test]
async fn auto_replies_go_out_only_when_allowed_confident_and_calm() {
    let mut channels = rapport::config::ChannelSettings {
        public_url: Some("https://help.example.com".into()),
        ..Default::default()
    };
    channels.email.auto_reply = true;
    channels.email.auto_reply_min_confidence = 0.5;
    let app = spawn_bundled_with(Options {
        channels,
        ..Options::default()
    })
    .await;
    let calm = message(
        &app,
        json!({"channel": "email", "thread_id": "a-1", "subject": "Reset password",
               "text": "How do I reset my password?"}),
    )
    .await;
    assert_eq!(calm["auto_reply_ok"], true, "{calm}");
    let url = calm["answers"][0]["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://help.example.com/articles/"),
        "{url}"
    );
    // The same question with a person asked for: never automatic.
    let person = message(
        &app,
        json!({"channel": "email", "thread_id": "a-2", "subject": "Reset password",
               "text": "How do I reset my password? I want to talk to a human."}),
    )
    .await;
    assert_eq!(person["auto_reply_ok"], false, "{person}");
    assert!(reasons(&person).contains(&"human_request".to_string()));
    // Forms are not allowed to auto-reply here.
    let form = message(
        &app,
        json!({"channel": "form", "thread_id": "a-3", "text": "How do I reset my password?"}),
    )
    .await;
    assert_eq!(form["auto_reply_ok"], false, "{form}");
}

#[tokio::test]
async fn replies_to_customers_never_carry_internal_articles() {
    let app = spawn_bundled().await;
    // Internal agent playbooks match this well, but the reply may go out.
    let reply = message(
        &app,
        json!({"channel": "email", "thread_id": "i-1",
               "text": "What is your internal refund policy for agents and goodwill credits?"}),
    )
    .await;
    for id in answer_ids(&reply) {
        assert!(!id.starts_with("agents/"), "{reply}");
    }
    let draft = reply["suggested_reply"].to_string();
    assert!(!draft.contains("agents/"), "{draft}");
}

#[tokio::test]
async fn earlier_contacts_are_found_after_a_restart() {
    let app = spawn_bundled().await;
    app.ask("chat-r", "kim@example.com", "how do I export my data")
        .await;
    // The chat is now only on disk: the e-mail must find it there.
    let app = app.restart().await;
    message(
        &app,
        json!({"channel": "email", "thread_id": "mail-r", "customer_id": "kim@example.com",
               "subject": "Invoices", "text": "Where do I download my invoices?"}),
    )
    .await;
    let (status, session) = app.get_as_agent("/api/v1/sessions/mail-r").await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(
        session["earlier_contacts"].as_array().unwrap().len(),
        1,
        "{session}"
    );
    assert_eq!(
        session["earlier_contacts"][0]["channel"], "answer",
        "{session}"
    );
}
