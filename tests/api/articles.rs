//! Article fetch and listing.

use reqwest::StatusCode;

use crate::helpers::{article, spawn_app};

#[tokio::test]
async fn article_fetch_returns_metadata_sections_and_sanitized_html() {
    let app = spawn_app(&[(
        "guides/getting-started.md",
        "---\nid: start\ntitle: Getting <b>started</b>\nsummary: First steps\ncategory: Guides\ntags: [intro]\nproducts: [web]\nupdated: 2026-10-01\n---\nWelcome.\n\n## Create an account\n\nSign up.\n\n## Create an account\n\n<script>alert(1)</script><img src=x onerror=alert(2)>\n\nA [link](javascript:alert(3)) and <a href=\"javascript:alert(4)\">another</a>.\n",
    )])
    .await;
    let (status, body) = app.get("/api/v1/articles/start").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["title"], "Getting <b>started</b>");
    assert_eq!(body["category"], "Guides");
    assert_eq!(body["products"][0], "web");
    assert_eq!(body["updated"], "2026-10-01");
    let anchors: Vec<_> = body["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["anchor"].clone())
        .collect();
    assert_eq!(
        anchors,
        vec![
            serde_json::Value::Null,
            "create-an-account".into(),
            "create-an-account-1".into()
        ]
    );
    assert_eq!(
        body["sections"][2]["url"],
        "/articles/start#create-an-account-1"
    );
    let html = body["html"].as_str().unwrap();
    assert!(html.contains(r#"<h2 id="create-an-account-1">"#), "{html}");
    assert!(html.contains(">link</a>"), "{html}");
    for forbidden in ["<script", "onerror", "href=\"javascript"] {
        assert!(!html.contains(forbidden), "{forbidden} in {html}");
    }
    assert!(
        body["markdown"]
            .as_str()
            .unwrap()
            .contains("## Create an account")
    );

    let (status, body) = app.get("/api/v1/articles/nope/missing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn article_list_is_sorted_by_title_and_filtered() {
    let app = spawn_app(&[
        ("b.md", &article("Banana", "category: Fruit\n", "Yellow.")),
        ("a.md", &article("apple", "category: Fruit\n", "Red.")),
        (
            "c.md",
            &article("Carrot", "category: Vegetable\n", "Orange."),
        ),
    ])
    .await;
    let (status, body) = app.get("/api/v1/articles?category=fruit").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 2);
    let titles: Vec<_> = body["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].clone())
        .collect();
    assert_eq!(titles, vec!["apple", "Banana"]);
    let (_, body) = app.get("/api/v1/articles?limit=1&offset=2").await;
    assert_eq!(body["total"], 3);
    assert_eq!(body["articles"][0]["title"], "Carrot");
    assert_eq!(body["articles"][0]["url"], "/articles/c");
}
