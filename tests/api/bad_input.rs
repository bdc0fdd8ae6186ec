//! Any input string is accepted; bad parameters get JSON 4xx errors, never a 500.

use reqwest::StatusCode;

use crate::helpers::{article, encode, spawn_app};

#[tokio::test]
async fn hostile_queries_never_fail() {
    let app = spawn_app(&[("a.md", &article("Password reset", "", "Reset it."))]).await;
    let long = "password reset ".repeat(700);
    let queries = [
        "\"unbalanced",
        "title:password",
        "AND (",
        "OR OR NOT",
        "https://example.com/a?b=c&d=e#f",
        "😀🔥 émoji ñ",
        "*?~^2 [a TO b] {x}",
        "\\ / \" ' ` < > & ;",
        "<script>alert(1)</script>",
        "a",
        "-",
        long.as_str(),
    ];
    for query in queries {
        let (status, body) = app
            .get(&format!("/api/v1/search?q={}", encode(query)))
            .await;
        assert_eq!(status, StatusCode::OK, "{query:?}: {body}");
        assert!(body["hits"].is_array(), "{body}");
        let (status, body) = app
            .get(&format!("/api/v1/autocomplete?q={}", encode(query)))
            .await;
        assert_eq!(status, StatusCode::OK, "{query:?}: {body}");
    }
    let body = app.search("<script>alert(1)</script> password").await;
    let snippet = body["hits"][0]["snippet"].as_str().unwrap();
    assert!(!snippet.contains("<script"), "{snippet}");
}

#[tokio::test]
async fn bad_parameters_get_json_errors() {
    let app = spawn_app(&[("a.md", &article("Password reset", "", "Reset it."))]).await;
    for path in [
        "/api/v1/search",
        "/api/v1/search?q=",
        "/api/v1/search?q=%20%20",
        "/api/v1/autocomplete?q=",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["error"]["code"], "missing_query", "{path}: {body}");
    }
    for path in [
        "/api/v1/search?q=x&limit=abc",
        "/api/v1/search?q=x&offset=-1",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["error"]["code"], "invalid_query", "{path}: {body}");
    }
    let (status, body) = app.get("/api/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");

    let response = app
        .client
        .post(format!("{}/api/v1/search?q=x", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn limit_is_capped() {
    let files: Vec<(String, String)> = (0..60)
        .map(|i| {
            (
                format!("a{i}.md"),
                article(&format!("Invoice guide {i}"), "", "Invoices."),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let app = spawn_app(&refs).await;
    let (status, body) = app.get("/api/v1/search?q=invoice&limit=1000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 60);
    assert_eq!(body["hits"].as_array().unwrap().len(), 50);
}

/// Property: for any string (control characters, RTL text, emoji, very long
/// input), every endpoint answers 2xx or 4xx with a JSON body, never 5xx.
#[tokio::test]
async fn any_string_on_any_endpoint_gets_2xx_or_4xx_json() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    let app = spawn_app(&[
        (
            "a.md",
            &article("Password reset", "category: Account\n", "Reset it."),
        ),
        (
            "b.md",
            &article("Refunds", "audience: internal\n", "Internal."),
        ),
    ])
    .await;
    let strategy = proptest::prop_oneof![
        proptest::string::string_regex(
            "[\\x00-\\x1f\\u{202e}\\u{200f}א-ת🙂🔥a-z \"'<>&%#?/\\\\]{0,40}"
        )
        .unwrap(),
        proptest::collection::vec(proptest::char::any(), 0..200)
            .prop_map(|c| c.into_iter().collect::<String>()),
        (1usize..100_000).prop_map(|n| "é".repeat(n / 2)),
    ];
    let mut runner = TestRunner::deterministic();
    let key = crate::helpers::AGENT_KEY;
    for case in 0..150 {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        // URLs have a length limit of their own (in the client); bodies don't.
        let q = encode(&text.chars().take(2000).collect::<String>());
        let shown: String = text.chars().take(80).collect();
        let requests = [
            app.client.get(format!(
                "{}/api/v1/search?q={q}&category={q}&limit=7",
                app.base
            )),
            app.client
                .get(format!("{}/api/v1/autocomplete?q={q}", app.base)),
            app.client
                .get(format!("{}/api/v1/articles?category={q}&tag={q}", app.base)),
            app.client.get(format!("{}/api/v1/articles/{q}", app.base)),
            app.client
                .post(format!("{}/api/v1/answer", app.base))
                .json(&serde_json::json!({"question": text, "session_id": text})),
            app.client
                .post(format!("{}/api/v1/suggest", app.base))
                .bearer_auth(key)
                .json(&serde_json::json!({"transcript": [{"role": "customer", "text": text}]})),
            app.client
                .post(format!("{}/api/v1/feedback", app.base))
                .json(&serde_json::json!({"query_id": text, "article_id": text, "event": "click"})),
        ];
        for request in requests {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(
                status.is_success() || status.is_client_error(),
                "case {case} {shown:?}: {status} {body}"
            );
            assert!(
                serde_json::from_str::<serde_json::Value>(&body).is_ok(),
                "case {case} {shown:?}: not JSON: {body}"
            );
        }
    }
}
