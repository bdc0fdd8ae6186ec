//! The bot and agent channels over the bundled help center: answers point to
//! the right section, hand-off rules fire with their reasons, suggestions
//! ignore chatter, context boosts, one ranking core across channels.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{AGENT_KEY, article, reasons, spawn_app, spawn_bundled};

#[tokio::test]
async fn bot_answers_with_the_right_section_and_hands_off_when_it_should() {
    let app = spawn_bundled().await;

    let body = app.answer("where do I find my recovery codes?").await;
    let answer = &body["answer"];
    assert_eq!(
        answer["article_id"], "account/lost-phone-recovery-codes",
        "{body}"
    );
    assert_eq!(
        answer["section"]["anchor"], "where-to-find-your-recovery-codes",
        "{body}"
    );
    assert_eq!(
        answer["url"],
        "/articles/account/lost-phone-recovery-codes#where-to-find-your-recovery-codes"
    );
    let text = answer["text"].as_str().unwrap();
    assert!(!text.is_empty() && text.chars().count() <= 600, "{text}");
    assert!(text.to_lowercase().contains("recovery code"), "{text}");
    assert_eq!(body["handoff"]["recommended"], false, "{body}");
    assert!(body["confidence"].as_f64().unwrap() >= 0.7, "{body}");
    assert!(body["query_id"].is_string());

    let body = app.answer("I want to talk to a real person").await;
    assert!(reasons(&body).contains(&"human_request".into()), "{body}");
    assert_eq!(body["handoff"]["recommended"], true);

    let body = app
        .answer("THIS IS RIDICULOUS!!! third time I ask why my invoice PDF is blank")
        .await;
    assert!(reasons(&body).contains(&"frustration".into()), "{body}");
    assert!(
        body["tone"]["frustration"].as_f64().unwrap() >= 0.5,
        "{body}"
    );
    let cues = body["tone"]["cues"].to_string();
    assert!(
        cues.contains("ALL CAPS") && cues.contains("third time"),
        "{cues}"
    );
    // Even when handing off, the best answer goes along for the agent.
    assert_eq!(
        body["answer"]["article_id"], "troubleshooting/pdf-not-generating",
        "{body}"
    );

    let body = app
        .answer("someone hacked my account and changed my email")
        .await;
    assert!(reasons(&body).contains(&"sensitive_topic".into()), "{body}");
    assert_eq!(body["handoff"]["topics"][0], "account_compromise", "{body}");

    let body = app.answer("what's the weather in Paris?").await;
    assert_eq!(body["handoff"]["recommended"], true, "{body}");
    let why = reasons(&body);
    assert!(
        why.contains(&"no_match".into()) || why.contains(&"low_confidence".into()),
        "{body}"
    );

    // The same session asking the same thing again: the last answer didn't help.
    let ask = |question: &str| json!({"question": question, "session_id": "chat-42"});
    let (_, first) = app
        .post("/api/v1/answer", None, &ask("how do I connect stripe"))
        .await;
    assert!(
        !reasons(&first).contains(&"repeated_question".into()),
        "{first}"
    );
    let (_, again) = app
        .post("/api/v1/answer", None, &ask("connect stripe how?"))
        .await;
    assert!(
        reasons(&again).contains(&"repeated_question".into()),
        "{again}"
    );
}

#[tokio::test]
async fn internal_articles_never_reach_the_bot_without_a_key() {
    let app = spawn_bundled().await;
    for question in [
        "Ledger Console refund approval limits for tier 1 agents",
        "goodwill credit amounts for agents",
    ] {
        let body = app.answer(question).await;
        let id = body["answer"]["article_id"].as_str().unwrap_or("");
        assert!(!id.starts_with("agents/"), "{question}: {body}");
        for alternative in body["alternatives"].as_array().unwrap() {
            assert!(
                !alternative["article_id"]
                    .as_str()
                    .unwrap()
                    .starts_with("agents/"),
                "{body}"
            );
        }
    }
    let (status, body) = app
        .post(
            "/api/v1/answer",
            Some(AGENT_KEY),
            &json!({"question": "goodwill credit amounts for agents"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["answer"]["article_id"], "agents/goodwill-credits",
        "{body}"
    );
}

#[tokio::test]
async fn agent_suggestions_follow_the_customer_not_the_chatter() {
    let app = spawn_bundled().await;
    let transcript = json!({"transcript": [
        {"role": "agent", "text": "Hi, thanks for contacting Tallybook! How can I help you today?"},
        {"role": "customer", "text": "hi there, thanks. I bought a new iPhone last week"},
        {"role": "agent", "text": "Great, I'd be happy to help. Could you please confirm your email?"},
        {"role": "customer", "text": "sure. the receipts I scan never upload, they stay stuck offline"}
    ]});
    let (status, body) = app.post("/api/v1/suggest", None, &transcript).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "agent key required: {body}"
    );

    let (status, body) = app
        .post("/api/v1/suggest", Some(AGENT_KEY), &transcript)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let top = body["suggestions"][0]["id"].as_str().unwrap();
    assert!(
        top == "mobile/offline-mode" || top == "mobile/scan-receipts",
        "{body}"
    );
    let matched = body["suggestions"][0]["matched_terms"].to_string();
    assert!(
        !matched.contains("thanks") && !matched.contains("hi"),
        "{matched}"
    );

    // Internal articles are suggested to agents, marked as such.
    let refund = json!({"transcript": [
        {"role": "customer", "text": "I want a refund for my annual plan, I forgot to cancel"},
        {"role": "agent", "text": "Let me check that for you."}
    ], "limit": 5});
    let (_, body) = app.post("/api/v1/suggest", Some(AGENT_KEY), &refund).await;
    let internal: Vec<&Value> = body["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["audience"] == "internal")
        .collect();
    assert!(!internal.is_empty(), "{body}");

    // Already shared articles are excluded.
    let first = body["suggestions"][0]["id"].clone();
    let mut refund = refund;
    refund["exclude"] = json!([first.clone()]);
    let (_, body) = app.post("/api/v1/suggest", Some(AGENT_KEY), &refund).await;
    assert!(
        body["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["id"] != first),
        "{body}"
    );

    let (status, body) = app
        .post(
            "/api/v1/suggest",
            Some(AGENT_KEY),
            &json!({"transcript": []}),
        )
        .await;
    // The chat just started: nothing to suggest yet, and that is not an error.
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["suggestions"], json!([]), "{body}");
}

#[tokio::test]
async fn one_ranking_core_gives_the_same_top_article_on_every_channel() {
    let app = spawn_bundled().await;
    for question in [
        "reset password",
        "recurring invoices",
        "connect stripe account",
        "charged twice",
    ] {
        let search = app.search(question).await;
        let answer = app.answer(question).await;
        let (_, suggest) = app
            .post(
                "/api/v1/suggest",
                Some(AGENT_KEY),
                &json!({"transcript": [{"role": "customer", "text": question}]}),
            )
            .await;
        let top = &search["hits"][0]["id"];
        assert_eq!(&answer["answer"]["article_id"], top, "{question}");
        assert_eq!(&suggest["suggestions"][0]["id"], top, "{question}");
    }
}

#[tokio::test]
async fn context_boosts_matching_articles_and_plans_restrict_answers() {
    let body = "## Turn on sync\n\nOpen Settings and turn on background sync for your invoices.";
    let app = spawn_app(&[
        (
            "ios-sync.md",
            &article("Background sync", "products: [ios]\n", body),
        ),
        (
            "android-sync.md",
            &article("Background sync", "products: [android]\n", body),
        ),
        (
            "sso.md",
            &article(
                "Single sign-on with SAML",
                "plans: [business]\n",
                "Set up SAML single sign-on for your team.",
            ),
        ),
    ])
    .await;
    for product in ["ios", "android"] {
        let (_, body) = app
            .post(
                "/api/v1/answer",
                None,
                &json!({"question": "background sync", "context": {"product": product}}),
            )
            .await;
        assert_eq!(
            body["answer"]["article_id"],
            format!("{product}-sync"),
            "{body}"
        );
        let (_, search) = app
            .get(&format!(
                "/api/v1/search?q=background%20sync&context_product={product}"
            ))
            .await;
        assert_eq!(
            search["hits"][0]["id"],
            format!("{product}-sync"),
            "{search}"
        );
        assert_eq!(search["total"], 2, "boost, not filter: {search}");
    }

    let sso = |plan: &str| json!({"question": "saml single sign-on", "context": {"plan": plan}});
    let (_, body) = app.post("/api/v1/answer", None, &sso("free")).await;
    assert_ne!(
        body["answer"]["article_id"], "sso",
        "not for this plan: {body}"
    );
    let (_, body) = app.post("/api/v1/answer", None, &sso("Business")).await;
    assert_eq!(body["answer"]["article_id"], "sso", "{body}");
}

#[tokio::test]
async fn bad_bot_requests_get_json_errors() {
    let app = spawn_app(&[("a.md", &article("A", "", "B"))]).await;
    let (status, body) = app
        .post("/api/v1/answer", None, &json!({"question": "  "}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "missing_question");
    let (status, body) = app.post("/api/v1/answer", None, &json!({"q": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_body");
    let response = app
        .client
        .post(format!("{}/api/v1/answer", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
