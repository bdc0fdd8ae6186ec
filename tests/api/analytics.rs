//! Analytics: real traffic and feedback in, exact report numbers out; admin
//! only; redaction; typing bursts; survives a restart.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, AGENT_KEY, TestApp, article, encode, spawn_app};

async fn traffic_app() -> TestApp {
    spawn_app(&[
        (
            "refunds.md",
            &article("Refund policy", "tags: [refund]\n", "How refunds work."),
        ),
        (
            "annual.md",
            &article("Annual plans", "", "Ask for a refund within 14 days."),
        ),
        (
            "invoices.md",
            &article("Create an invoice", "", "Invoices and quotes."),
        ),
    ])
    .await
}

async fn feedback(
    app: &TestApp,
    query_id: &Value,
    article_id: &str,
    event: &str,
) -> (StatusCode, Value) {
    app.post(
        "/api/v1/feedback",
        None,
        &json!({"query_id": query_id, "article_id": article_id, "event": event}),
    )
    .await
}

#[tokio::test]
async fn reports_count_traffic_and_feedback_exactly() {
    let mut app = traffic_app().await;
    let first = app.search("refund").await; // 2 results
    assert_eq!(first["hits"][1]["id"], "annual");
    let _second = app.search("invoice").await; // 1 result
    let empty = app.search("kangaroo").await; // 0 results
    assert_eq!(empty["total"], 0);
    app.search("my email is jane.doe@example.com and card 4111 1111 1111 1111")
        .await;

    let (status, _) = feedback(&app, &first["query_id"], "annual", "click").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    feedback(&app, &first["query_id"], "annual", "helpful").await;
    // Identical feedback again is idempotent.
    feedback(&app, &first["query_id"], "annual", "helpful").await;
    feedback(&app, &first["query_id"], "refunds", "not_helpful").await;

    let answered = app.answer("refund policy").await;
    feedback(&app, &answered["query_id"], "refunds", "resolved").await;
    let human = app.answer("I want to talk to a real person").await;
    assert_eq!(human["handoff"]["recommended"], true);

    let (status, body) = feedback(&app, &json!("no-such-query"), "refunds", "click").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = feedback(&app, &first["query_id"], "no/such/article", "click").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = feedback(&app, &first["query_id"], "refunds", "love_it").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Admin only.
    let (status, _) = app.get("/api/v1/analytics/summary").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .get_with_key("/api/v1/analytics/summary", Some(AGENT_KEY))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, summary) = app
        .get_with_key("/api/v1/analytics/summary", Some(ADMIN_KEY))
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["queries"], 6, "{summary}");
    assert_eq!(summary["searches"], 4, "{summary}");
    assert_eq!(
        summary["zero_result_rate"], 0.5,
        "kangaroo and the redacted one: {summary}"
    );
    assert_eq!(summary["click_through_rate"], 0.25, "{summary}");
    assert_eq!(summary["mean_click_position"], 2.0, "{summary}");
    assert_eq!(
        summary["helpful_rate"], 0.5,
        "one helpful (deduplicated), one not: {summary}"
    );
    assert_eq!(summary["bot_questions"], 2, "{summary}");
    assert_eq!(summary["handoff_rate"], 0.5, "{summary}");
    assert_eq!(summary["handoff_reasons"]["human_request"], 1, "{summary}");
    assert_eq!(summary["resolution_rate"], 0.5, "{summary}");
    assert_eq!(summary["per_day"][0]["queries"], 6, "{summary}");

    let (_, gaps) = app
        .get_with_key("/api/v1/analytics/queries?kind=no_results", Some(ADMIN_KEY))
        .await;
    let gap_queries: Vec<&str> = gaps["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["query"].as_str().unwrap())
        .collect();
    assert!(gap_queries.contains(&"kangaroo"), "{gaps}");
    let redacted = gap_queries
        .iter()
        .find(|q| q.contains("email"))
        .expect("redacted query stored");
    assert_eq!(*redacted, "my email is [email] and card [card]");
    let (_, handoffs) = app
        .get_with_key("/api/v1/analytics/queries?kind=handoff", Some(ADMIN_KEY))
        .await;
    assert_eq!(
        handoffs["queries"][0]["query"], "i want to talk to a real person",
        "{handoffs}"
    );

    let (_, articles) = app
        .get_with_key("/api/v1/analytics/articles", Some(ADMIN_KEY))
        .await;
    let annual = articles
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "annual")
        .unwrap();
    assert_eq!(annual["clicks"], 1, "{annual}");
    assert_eq!(annual["helpful"], 1, "{annual}");
    assert_eq!(
        annual["impressions"], 2,
        "the search and the answer's alternatives: {annual}"
    );

    // A restart keeps everything (real SQLite file).
    app.stop().await;
    let app = app.restart().await;
    let (_, summary) = app
        .get_with_key("/api/v1/analytics/summary", Some(ADMIN_KEY))
        .await;
    assert_eq!(summary["queries"], 6, "{summary}");
    let (_, summary) = app
        .get_with_key("/api/v1/analytics/summary?channel=answer", Some(ADMIN_KEY))
        .await;
    assert_eq!(summary["queries"], 2, "{summary}");
    let (status, _) = app
        .get_with_key("/api/v1/analytics/summary?from=yesterday", Some(ADMIN_KEY))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn only_the_last_query_of_a_typing_burst_is_recorded() {
    let app = traffic_app().await;
    for prefix in ["r", "re", "ref", "refu", "refund"] {
        let (status, body) = app
            .get(&format!(
                "/api/v1/autocomplete?q={}&session_id=tab-1",
                encode(prefix)
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["query_id"].is_string());
    }
    let (_, top) = app
        .get_with_key(
            "/api/v1/analytics/queries?kind=top&channel=autocomplete",
            Some(ADMIN_KEY),
        )
        .await;
    assert_eq!(
        top["queries"],
        json!([{"query": "refund", "count": 1}]),
        "{top}"
    );
}

#[tokio::test]
async fn feedback_nudges_ties_but_never_beats_a_strong_text_match() {
    let body = "## Export\n\nExport your invoices as a CSV file from the Invoices page.";
    let app = spawn_app(&[
        ("export-a.md", &article("Export invoices", "", body)),
        ("export-b.md", &article("Export invoices", "", body)),
        (
            "reset.md",
            &article(
                "Reset your password",
                "",
                "Use the reset link to choose a new password.",
            ),
        ),
        (
            "popular.md",
            &article(
                "Invoice templates",
                "",
                "Pick a template. Your password is never shown on invoices.",
            ),
        ),
    ])
    .await;
    let before = app.search("export invoices").await;
    let (first, second) = (
        before["hits"][0]["id"].clone(),
        before["hits"][1]["id"].clone(),
    );
    // Many customers found the second one helpful; and the popular article too.
    for i in 0..25 {
        let body = app.search(&format!("export invoices {i}")).await;
        let (status, _) =
            feedback(&app, &body["query_id"], second.as_str().unwrap(), "helpful").await;
        assert_eq!(status, StatusCode::ACCEPTED);
        feedback(&app, &body["query_id"], "popular", "helpful").await;
        feedback(&app, &body["query_id"], "popular", "resolved").await;
    }
    // The tie flips once the boosts are refreshed…
    app.wait_for_search("export invoices", |b| b["hits"][0]["id"] == second)
        .await;
    assert_eq!(app.search("export invoices").await["hits"][1]["id"], first);
    // …but the popular article never overtakes a strong text match.
    let body = app.search("reset password").await;
    assert_eq!(body["hits"][0]["id"], "reset", "{body}");
}

#[tokio::test]
async fn metrics_are_exposed_for_prometheus() {
    let app = traffic_app().await;
    app.search("refund").await;
    app.search("kangaroo").await;
    app.answer("I want to talk to a real person").await;
    let response = app
        .client
        .get(format!("{}/metrics", app.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for expected in [
        "rapport_http_requests_total{endpoint=\"/api/v1/search\",status=\"200\"} 2",
        "rapport_zero_result_searches_total 1",
        "rapport_handoffs_total{reason=\"human_request\"} 1",
        "rapport_index_articles 3",
        "rapport_http_request_duration_seconds_count{endpoint=\"/api/v1/answer\"} 1",
        "rapport_analytics_dropped_events 0",
        "rapport_index_commit_duration_seconds_count",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

/// A CSV download as (status, content type, disposition, body).
async fn csv(app: &TestApp, path: &str) -> (StatusCode, String, String, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    (
        response.status(),
        content_type,
        disposition,
        response.text().await.unwrap(),
    )
}

#[tokio::test]
async fn reports_download_as_csv_with_formulas_defused() {
    let app = traffic_app().await;
    app.search("=HYPERLINK(\"x\")").await;
    app.search("@cmd").await;
    app.search("refund").await;
    let (status, content_type, disposition, body) = csv(
        &app,
        "/api/v1/analytics/queries?from=2020-01-01&to=2099-12-31&format=csv",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert_eq!(
        disposition,
        "attachment; filename=\"rapport-queries-2020-01-01-2099-12-31.csv\""
    );
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "query,count", "{body}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("\"'=") || l.starts_with("'=")),
        "{body}"
    );
    assert!(lines.contains(&"'@cmd,1"), "{body}");
    assert!(lines.contains(&"refund,1"), "{body}");
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with('=') || l.starts_with('@')),
        "{body}"
    );

    for report in [
        "summary",
        "articles",
        "overview",
        "gaps",
        "handoffs",
        "articles/needing-work",
    ] {
        let (status, content_type, _, body) =
            csv(&app, &format!("/api/v1/analytics/{report}?format=csv")).await;
        assert_eq!(status, StatusCode::OK, "{report}: {body}");
        assert_eq!(content_type, "text/csv; charset=utf-8", "{report}");
        assert!(
            body.lines().count() >= 2,
            "{report}: a header and rows: {body}"
        );
        let (status, error) = app
            .get_with_key(
                &format!("/api/v1/analytics/{report}?format=xml"),
                Some(ADMIN_KEY),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{report}");
        assert_eq!(error["error"]["code"], "invalid_query", "{report}: {error}");
        let (status, _) = app
            .get_with_key(
                &format!("/api/v1/analytics/{report}?format=csv"),
                Some(AGENT_KEY),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{report}");
    }
    let (_, _, _, summary) = csv(&app, "/api/v1/analytics/summary?format=csv").await;
    assert!(
        summary.starts_with("figure,value\nqueries,3\nsearches,3\n"),
        "{summary}"
    );
}

#[tokio::test]
async fn the_overview_is_the_summary_and_gaps_fold_typos() {
    let app = traffic_app().await;
    for query in [
        "reset password",
        "reset password",
        "reset pasword",
        "refund",
    ] {
        app.search(query).await;
    }
    let today = time::OffsetDateTime::now_utc().date();
    let dates = format!("from={}&to={}", today.previous_day().unwrap(), today);
    for range in [dates.as_str(), "days=7", "days=30&channel=search"] {
        let (status, overview) = app
            .get_with_key(
                &format!("/api/v1/analytics/overview?{range}"),
                Some(ADMIN_KEY),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{overview}");
        let (_, summary) = app
            .get_with_key(
                &format!("/api/v1/analytics/summary?{range}"),
                Some(ADMIN_KEY),
            )
            .await;
        assert_eq!(overview["current"], summary, "{range}");
        assert_eq!(overview["current"]["searches"], 4, "{range}");
        let days = overview["days"].as_array().unwrap();
        let searches: u64 = days.iter().map(|d| d["searches"].as_u64().unwrap()).sum();
        assert_eq!(searches, 4, "{range}: {overview}");
    }
    // `from` and `days` both bound the start: the later one wins.
    let (status, both) = app
        .get_with_key(
            "/api/v1/analytics/overview?days=7&from=2026-01-01",
            Some(ADMIN_KEY),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, week) = app
        .get_with_key("/api/v1/analytics/overview?days=7", Some(ADMIN_KEY))
        .await;
    assert_eq!(both["current"], week["current"]);
    assert_eq!(
        both["days"].as_array().map(Vec::len),
        week["days"].as_array().map(Vec::len)
    );
    let (status, _) = app
        .get_with_key("/api/v1/analytics/overview?days=0", Some(ADMIN_KEY))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, gaps) = app
        .get_with_key("/api/v1/analytics/gaps?days=7", Some(ADMIN_KEY))
        .await;
    assert_eq!(status, StatusCode::OK, "{gaps}");
    assert_eq!(gaps[0]["query"], "reset password", "{gaps}");
    assert_eq!(gaps[0]["count"], 3, "{gaps}");
    assert_eq!(gaps[0]["no_results"], 3, "{gaps}");
    assert_eq!(
        gaps[0]["examples"],
        json!([["reset password", 2], ["reset pasword", 1]]),
        "{gaps}"
    );
    let (_, handoffs) = app
        .get_with_key("/api/v1/analytics/handoffs?days=7", Some(ADMIN_KEY))
        .await;
    assert_eq!(handoffs["total"], 0, "{handoffs}");
    assert_eq!(
        handoffs["by_hour"].as_array().unwrap().len(),
        24,
        "{handoffs}"
    );
    let (_, work) = app
        .get_with_key(
            "/api/v1/analytics/articles/needing-work?days=7",
            Some(ADMIN_KEY),
        )
        .await;
    let invoices = work
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "invoices")
        .unwrap_or_else(|| panic!("{work}"));
    assert_eq!(invoices["path"], "invoices.md", "{invoices}");
    assert_eq!(invoices["reasons"], json!(["never_shown"]), "{invoices}");
}

/// Chat questions (one answered, one handed off) and a hand-off claimed 90
/// seconds after it was asked for: the summary's `channels.chat`, in JSON
/// and CSV, and a channel filter that leaves chat out.
#[tokio::test]
async fn the_summary_has_figures_per_channel() {
    let clock = rapport::analytics::Clock::default();
    let app = crate::helpers::spawn_bundled_with(crate::helpers::Options {
        clock: clock.clone(),
        ..crate::helpers::Options::default()
    })
    .await;
    let ask = async |question: &str| {
        app.post(
            "/api/v1/answer",
            None,
            &json!({"question": question, "session_id": "chat-7"}),
        )
        .await
    };
    let mut answered = 0;
    for question in [
        "how do I export my data to CSV?",
        "I want to talk to a human agent now",
    ] {
        let (status, body) = ask(question).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["handoff"]["recommended"] == false && body["answer"].is_object() {
            answered += 1;
        }
    }
    assert_eq!(answered, 1, "one answered, one handed off");
    let (status, created) = app
        .post("/api/v1/sessions/chat-7/handoff", None, &json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    clock.advance(std::time::Duration::from_secs(90));
    let id = created["handoff_id"].as_str().unwrap();
    let (status, claimed) = app
        .post(
            &format!("/api/v1/handoffs/{id}/claim"),
            Some(AGENT_KEY),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["channel"], "chat", "{claimed}");

    let (status, summary) = app
        .get_with_key("/api/v1/analytics/summary", Some(ADMIN_KEY))
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    let channels = summary["channels"].as_object().unwrap();
    assert_eq!(channels.keys().collect::<Vec<_>>(), ["chat"], "{summary}");
    let chat = &summary["channels"]["chat"];
    assert_eq!(chat["messages"], 2, "{chat}");
    assert_eq!(chat["answered"], answered, "{chat}");
    assert_eq!(chat["auto_replied"], 0, "{chat}");
    assert_eq!(chat["handed_off"], 1, "{chat}");
    let first_response = chat["first_response_seconds"]["median"].as_f64().unwrap();
    assert!((90.0..95.0).contains(&first_response), "{chat}");
    assert_eq!(
        chat["first_response_seconds"]["p90"],
        chat["first_response_seconds"]["median"]
    );
    assert!(chat["resolution_seconds"]["median"].is_null(), "{chat}");

    let response = app
        .client
        .get(format!("{}/api/v1/analytics/summary?format=csv", app.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let csv = response.text().await.unwrap();
    for row in [
        "channels.chat.messages,2",
        "channels.chat.handed_off,1",
        "channels.chat.resolution_seconds.median,\n",
    ] {
        assert!(csv.contains(row), "{row:?} missing from\n{csv}");
    }

    let (_, email_only) = app
        .get_with_key("/api/v1/analytics/summary?channel=email", Some(ADMIN_KEY))
        .await;
    assert_eq!(email_only["channels"], json!({}), "{email_only}");
}
