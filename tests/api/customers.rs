//! Erasing a customer over real HTTP: a chat with a vote, a hand-off and a
//! rating is gone after `DELETE /api/v1/customers/{id}`, everywhere an agent
//! or the bot could see it, and another customer's is not.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, AGENT_KEY, TestApp, article, spawn_app};

async fn start() -> TestApp {
    spawn_app(&[
        (
            "billing/refunds.md",
            &article(
                "Refunds",
                "",
                "## Asking for a refund\n\nOpen Billing, choose the charge and press Refund. Refunds reach your card in 5 days.",
            ),
        ),
        (
            "account/password.md",
            &article(
                "Reset your password",
                "",
                "## Reset\n\nChoose Forgot password on the sign-in page and follow the e-mail.",
            ),
        ),
    ])
    .await
}

const REFUND: &str = "how do I get a refund for my order?";

/// A whole conversation: question, `not_helpful` vote, hand-off, rating.
async fn converse(app: &TestApp, session: &str, customer: &str) -> String {
    let answer = app.ask(session, customer, REFUND).await;
    assert_eq!(
        answer["answer"]["article_id"], "billing/refunds",
        "{answer}"
    );
    let (status, _) = app
        .post(
            "/api/v1/feedback",
            None,
            &json!({"query_id": answer["query_id"], "article_id": "billing/refunds", "event": "not_helpful"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, handoff) = app
        .post(
            &format!("/api/v1/sessions/{session}/handoff"),
            None,
            &json!({"contact": {"email": "ada@example.com"}, "message": "charged twice"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{handoff}");
    let (status, rated) = app
        .post(
            &format!("/api/v1/sessions/{session}/rating"),
            None,
            &json!({"score": 2, "comment": "slow"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rated}");
    handoff["handoff_id"].as_str().unwrap().to_string()
}

async fn queue(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get_as_agent("/api/v1/handoffs").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["handoffs"].as_array().unwrap().clone()
}

#[tokio::test]
async fn erasing_a_customer_removes_their_sessions_handoffs_and_votes_only() {
    let app = start().await;
    let ada_handoff = converse(&app, "chat-ada", "cust-ada").await;
    let bob_handoff = converse(&app, "chat-bob", "cust-bob").await;

    // Before: the hand-off shows where Ada asked, and her vote follows her
    // into a new session.
    let before = queue(&app).await;
    let ada = before
        .iter()
        .find(|h| h["handoff_id"] == ada_handoff.as_str())
        .unwrap();
    assert_eq!(ada["channel"], "chat", "{ada}");
    let excluded = app.ask("chat-ada-2", "cust-ada", REFUND).await;
    assert_ne!(
        excluded["answer"]["article_id"], "billing/refunds",
        "{excluded}"
    );

    // Only an admin key erases.
    let (status, body) = app.delete("/api/v1/customers/cust-ada", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = app
        .delete("/api/v1/customers/cust-ada", Some(AGENT_KEY))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = app.delete("/api/v1/customers/%20", Some(ADMIN_KEY)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must not be blank"),
        "{body}"
    );

    let (status, erased) = app
        .delete("/api/v1/customers/cust-ada", Some(ADMIN_KEY))
        .await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["customer_id"], "cust-ada");
    let removed = &erased["removed"];
    // Two sessions: the conversation and the later question.
    assert_eq!(removed["sessions"], 2, "{erased}");
    assert_eq!(removed["queries"], 2, "{erased}");
    assert_eq!(removed["feedback"], 1, "{erased}");
    assert_eq!(removed["votes"], 1, "{erased}");
    assert_eq!(removed["handoffs"], 1, "{erased}");
    assert_eq!(removed["ratings"], 1, "{erased}");
    assert!(removed["session_events"].as_u64().unwrap() >= 3, "{erased}");
    // No webhook configured: nothing in the outbox.
    assert_eq!(removed["outbox_events"], 0, "{erased}");

    // Gone for agents and for the bot.
    let (status, _) = app.get_as_agent("/api/v1/sessions/chat-ada").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get_as_agent("/api/v1/sessions/chat-ada-2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get_as_agent(&format!("/api/v1/handoffs/{ada_handoff}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let after: Vec<String> = queue(&app)
        .await
        .iter()
        .map(|h| h["handoff_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(after, [bob_handoff]);
    let again = app.ask("chat-ada-3", "cust-ada", REFUND).await;
    assert_eq!(again["answer"]["article_id"], "billing/refunds", "{again}");

    // Bob is untouched: his session, his hand-off, his vote.
    let (status, bob) = app.get_as_agent("/api/v1/sessions/chat-bob").await;
    assert_eq!(status, StatusCode::OK, "{bob}");
    assert_eq!(bob["questions"][0]["text"], REFUND, "{bob}");
    let bob_again = app.ask("chat-bob-2", "cust-bob", REFUND).await;
    assert_ne!(bob_again["answer"]["article_id"], "billing/refunds");

    // Erasing again: nothing left, still 200. (Ada's newest question,
    // asked after the erasure, is a new session and is erased this time.)
    let (status, erased) = app
        .delete("/api/v1/customers/cust-ada", Some(ADMIN_KEY))
        .await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["removed"]["sessions"], 1, "{erased}");
    assert_eq!(erased["removed"]["handoffs"], 0, "{erased}");
    let (status, erased) = app
        .delete("/api/v1/customers/cust-ada", Some(ADMIN_KEY))
        .await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    for (name, count) in erased["removed"].as_object().unwrap() {
        assert_eq!(count, 0, "{name}: {erased}");
    }
    // A customer never seen: zero counts too.
    let (status, erased) = app
        .delete("/api/v1/customers/nobody", Some(ADMIN_KEY))
        .await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["removed"]["sessions"], 0);
}
