//! `/openapi.json` documents every route, and real responses match it.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, AGENT_KEY, spawn_bundled};

/// Shallow check: every key the server sent is declared, and every required
/// property is present (nested `$ref`s are checked one level down).
fn check(doc: &Value, schema_name: &str, value: &Value, path: &str) {
    let schema = &doc["components"]["schemas"][schema_name];
    assert!(schema.is_object(), "{path}: no schema {schema_name}");
    let properties = schema["properties"].as_object().unwrap();
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{path}: not an object: {value}"));
    for key in object.keys() {
        assert!(
            properties.contains_key(key),
            "{path}: {key} is not in the {schema_name} schema"
        );
    }
    for required in schema["required"].as_array().into_iter().flatten() {
        let required = required.as_str().unwrap();
        assert!(
            object.contains_key(required),
            "{path}: {required} missing from {value}"
        );
    }
    for (key, property) in properties {
        let reference = property["$ref"]
            .as_str()
            .or_else(|| property["items"]["$ref"].as_str())
            .or_else(|| property["oneOf"][0]["$ref"].as_str());
        let (Some(reference), Some(child)) = (reference, object.get(key)) else {
            continue;
        };
        let name = reference.rsplit('/').next().unwrap();
        let target = &doc["components"]["schemas"][name];
        if target["type"] != "object" {
            continue;
        }
        match child {
            Value::Array(items) => items.iter().for_each(|item| check(doc, name, item, path)),
            Value::Object(_) => check(doc, name, child, path),
            _ => {}
        }
    }
}

#[tokio::test]
async fn openapi_documents_every_route_and_matches_real_responses() {
    let app = spawn_bundled().await;
    let (status, doc) = app.get("/openapi.json").await;
    assert!(status.is_success());
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["openapi"], "3.1.0");

    // Every route the router serves (src/http/mod.rs; the portal's HTML
    // pages live elsewhere) is documented, and nothing else is.
    let router = include_str!("../../src/http/mod.rs");
    let routed: std::collections::BTreeSet<String> = regex::Regex::new(r#"\.route\(\s*"([^"]+)""#)
        .unwrap()
        .captures_iter(router)
        .map(|c| c[1].replace("{*", "{"))
        .collect();
    let documented: std::collections::BTreeSet<String> =
        doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(routed, documented, "routes and documented paths differ");

    // Every response is described; every error has the one error shape.
    let mut keyed = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            assert!(operation["tags"][0].is_string(), "{at}: no audience tag");
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{at} {status}: no description"
                );
                if !status.starts_with('2') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{at} {status}: not the error shape"
                    );
                }
            }
            // A key is required exactly where the handler refuses anonymous callers.
            if operation["security"].as_array().is_some_and(|s| {
                !s.iter()
                    .any(|r| r.as_object().is_some_and(|r| r.is_empty()))
            }) {
                keyed.push(path.clone());
            }
        }
    }
    keyed.sort();
    assert_eq!(
        keyed,
        [
            "/api/v1/analytics/articles",
            "/api/v1/analytics/articles/needing-work",
            "/api/v1/analytics/gaps",
            "/api/v1/analytics/handoffs",
            "/api/v1/analytics/overview",
            "/api/v1/analytics/queries",
            "/api/v1/analytics/summary",
            "/api/v1/customers/{customer_id}",
            "/api/v1/handoffs",
            "/api/v1/handoffs/deliveries",
            "/api/v1/handoffs/events",
            "/api/v1/handoffs/{handoff_id}",
            "/api/v1/handoffs/{handoff_id}/claim",
            "/api/v1/handoffs/{handoff_id}/close",
            "/api/v1/messages",
            "/api/v1/sessions/{session_id}",
            "/api/v1/suggest",
            "/metrics",
        ]
    );
    for (path, key) in [
        ("/api/v1/analytics/summary", None),
        ("/api/v1/sessions/x", None),
        ("/api/v1/handoffs", None),
        ("/api/v1/handoffs/events", None),
        ("/api/v1/handoffs/h_1", None),
        ("/api/v1/handoffs/deliveries", Some(AGENT_KEY)),
        ("/metrics", None),
        ("/api/v1/analytics/summary", Some(AGENT_KEY)),
    ] {
        let (status, _) = app.get_with_key(path, key).await;
        assert!(
            status == 401 || status == 403,
            "{path} with {key:?} is documented as keyed but answered {status}"
        );
    }
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for code in [
        "missing_query",
        "unauthorized",
        "rate_limited",
        "headers_too_large",
        "timeout",
    ] {
        assert!(codes.contains(&code), "{code} is not in ErrorCode");
    }

    let search = app.search("reset password").await;
    check(&doc, "SearchResponse", &search, "search");
    let (_, autocomplete) = app.get("/api/v1/autocomplete?q=rese").await;
    check(&doc, "AutocompleteResponse", &autocomplete, "autocomplete");
    let (_, article) = app.get("/api/v1/articles/account/reset-password").await;
    check(&doc, "ArticleView", &article, "article");
    let (_, list) = app.get("/api/v1/articles?limit=3").await;
    check(&doc, "ListResponse", &list, "list");
    let answer = app.answer("I was charged twice").await;
    check(&doc, "AnswerResponse", &answer, "answer");
    let (_, suggest) = app
        .post(
            "/api/v1/suggest",
            Some(AGENT_KEY),
            &json!({"transcript": [{"role": "customer", "text": "refund"}]}),
        )
        .await;
    check(&doc, "SuggestResponse", &suggest, "suggest");
    let (_, asked) = app
        .post(
            "/api/v1/answer",
            None,
            &json!({"question": "I was charged twice", "session_id": "doc-1", "customer_id": "c-1"}),
        )
        .await;
    check(&doc, "AnswerResponse", &asked, "answer in a session");
    let (_, searched) = app
        .get("/api/v1/search?q=refund&session_id=doc-1&customer_id=c-1")
        .await;
    check(&doc, "SearchResponse", &searched, "search in a session");
    let (_, session) = app.get_as_agent("/api/v1/sessions/doc-1").await;
    check(&doc, "SessionView", &session, "session");
    let (_, suggest) = app
        .post(
            "/api/v1/suggest",
            Some(AGENT_KEY),
            &json!({"transcript": [], "session_id": "doc-1", "customer_id": "c-1"}),
        )
        .await;
    assert!(
        !suggest["suggestions"].as_array().unwrap().is_empty(),
        "{suggest}"
    );
    check(&doc, "SuggestResponse", &suggest, "suggest in a session");
    // The hand-off path, through the queue to a rating and the summary.
    let (_, requested) = app
        .post(
            "/api/v1/sessions/doc-1/handoff",
            None,
            &json!({"contact": {"name": "Ada", "email": "ada@example.com"}}),
        )
        .await;
    check(&doc, "CustomerHandoff", &requested, "hand-off request");
    let id = requested["handoff_id"].as_str().unwrap();
    let (_, queue) = app.get_as_agent("/api/v1/handoffs?status=waiting").await;
    check(&doc, "HandoffList", &queue, "queue");
    let (_, claimed) = app
        .post(
            &format!("/api/v1/handoffs/{id}/claim"),
            Some(AGENT_KEY),
            &json!({}),
        )
        .await;
    check(&doc, "HandoffView", &claimed, "claim");
    let (_, closed) = app
        .post(
            &format!("/api/v1/handoffs/{id}/close"),
            Some(AGENT_KEY),
            &json!({"resolution": "solved"}),
        )
        .await;
    check(&doc, "HandoffView", &closed, "close");
    let (_, status) = app.get("/api/v1/sessions/doc-1/handoff").await;
    check(&doc, "CustomerHandoff", &status, "hand-off status");
    let (_, rating) = app
        .post("/api/v1/sessions/doc-1/rating", None, &json!({"score": 5}))
        .await;
    check(&doc, "RatingView", &rating, "rating");
    let (_, deliveries) = app
        .get_with_key("/api/v1/handoffs/deliveries", Some(ADMIN_KEY))
        .await;
    check(&doc, "DeliveriesView", &deliveries, "deliveries");
    let (_, summary) = app
        .get_with_key("/api/v1/analytics/summary", Some(ADMIN_KEY))
        .await;
    check(&doc, "Summary", &summary, "summary");
    let (_, error) = app.get("/api/v1/search?q=").await;
    check(&doc, "ErrorBody", &error, "error");
}
