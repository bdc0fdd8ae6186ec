//! Protection at the edge: rate limits, body limits, CORS, security headers,
//! and no executable markup from any endpoint.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{AGENT_KEY, Options, article, encode, spawn_app, spawn_app_with};

#[tokio::test]
async fn clients_over_their_rate_get_429_with_retry_after() {
    let app = spawn_app_with(
        &[("a.md", &article("Refunds", "", "Refund text."))],
        Options {
            rate_limit: (1, 5),
            ..Options::default()
        },
    )
    .await;
    let mut limited = None;
    for _ in 0..20 {
        let response = app
            .client
            .get(format!("{}/api/v1/search?q=refund", app.base))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("the 20th request within a second is over a burst of 5");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another client (an agent key) has its own bucket; probes are never limited.
    let (status, _) = app.get_as_agent("/api/v1/search?q=refund").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_bodies_are_413_and_headers_are_set() {
    let app = spawn_app_with(
        &[("a.md", &article("Refunds", "", "Refund text."))],
        Options {
            cors_origins: vec!["https://help.example.com".into()],
            ..Options::default()
        },
    )
    .await;
    let huge = "x".repeat(200 * 1024);
    let (status, body) = app
        .post("/api/v1/answer", None, &json!({"question": huge}))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");

    let response = app
        .client
        .get(format!("{}/api/v1/search?q=refund", app.base))
        .header("origin", "https://help.example.com")
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["referrer-policy"],
        "strict-origin-when-cross-origin"
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://help.example.com"
    );

    let response = app
        .client
        .get(format!("{}/api/v1/search?q=refund", app.base))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// Payloads a writer (or an attacker with write access to a synced folder)
/// could put in an article.
const XSS: &[&str] = &[
    "<script>alert('xss')</script>",
    "<img src=x onerror=alert('xss')>",
    "<svg onload=alert('xss')><script>alert(1)</script></svg>",
    "[click](javascript:alert('xss'))",
    "<a href=\"javascript:alert('xss')\">link</a>",
    "<iframe src=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\"></iframe>",
    "![x](data:text/html,<script>alert(1)</script>)",
    "<div style=\"background:url(javascript:alert(1))\">styled</div>",
];

#[tokio::test]
async fn no_endpoint_returns_executable_markup() {
    let body: String = XSS
        .iter()
        .map(|p| format!("Exploit zebra {p}\n\n"))
        .collect();
    let title = "Zebra <script>alert('title')</script> guide";
    let source = format!(
        "---\ntitle: \"{title}\"\nsummary: \"<img src=x onerror=alert(1)> zebra\"\ntags: [\"<b>zebra</b>\"]\n---\n## Zebra <script>alert('heading')</script>\n\n{body}"
    );
    let app = spawn_app(&[("x.md", &source)]).await;

    let search = app.search("zebra exploit").await;
    let hit = &search["hits"][0];
    // Titles and summaries are JSON text (the client escapes them); the
    // snippet is HTML, so it must be escaped here.
    let snippet = hit["snippet"].as_str().unwrap();
    assert!(
        snippet.contains("&lt;img src=x onerror"),
        "escaped, not dropped: {snippet}"
    );
    assert!(
        !snippet
            .replace("<mark>", "")
            .replace("</mark>", "")
            .contains('<'),
        "{snippet}"
    );

    let (_, autocomplete) = app
        .get(&format!("/api/v1/autocomplete?q={}", encode("zebra")))
        .await;
    let highlighted = autocomplete["suggestions"][0]["highlighted"]
        .as_str()
        .unwrap();
    assert!(highlighted.contains("&lt;script&gt;"), "{highlighted}");
    assert!(
        !highlighted
            .replace("<mark>", "")
            .replace("</mark>", "")
            .contains('<'),
        "{highlighted}"
    );

    let (_, article) = app.get("/api/v1/articles/x").await;
    let html = article["html"].as_str().unwrap().to_lowercase();
    // Escaped text (`&lt;img onerror…&gt;`) is harmless; look inside real tags.
    let tags = regex::Regex::new(r"<[^>]*>").unwrap();
    let attribute_handler = regex::Regex::new(r"\son[a-z]+\s*=").unwrap();
    for tag in tags.find_iter(&html).map(|m| m.as_str()) {
        for forbidden in [
            "<script",
            "<iframe",
            "<svg",
            "<object",
            "<embed",
            "javascript:",
            "data:",
            "style=",
        ] {
            assert!(!tag.contains(forbidden), "{forbidden} in tag {tag}");
        }
        assert!(
            !attribute_handler.is_match(tag),
            "event handler in tag {tag}"
        );
    }
    assert!(
        html.contains(">click</a>"),
        "link text kept, href dropped: {html}"
    );

    let answer = app.answer("zebra exploit").await;
    let text = answer["answer"]["text"].as_str().unwrap();
    assert!(!text.contains("<script"), "answers are plain text: {text}");
    let (_, suggest) = app
        .post(
            "/api/v1/suggest",
            Some(AGENT_KEY),
            &json!({"transcript": [{"role": "customer", "text": "zebra exploit"}]}),
        )
        .await;
    let snippet = suggest["suggestions"][0]["snippet"].as_str().unwrap();
    assert!(
        !snippet
            .replace("<mark>", "")
            .replace("</mark>", "")
            .contains('<'),
        "{snippet}"
    );
}
