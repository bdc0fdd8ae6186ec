//! Internal articles are invisible without an agent key, on every endpoint.

use reqwest::StatusCode;

use crate::helpers::{article, spawn_app, total};

#[tokio::test]
async fn internal_articles_are_invisible_to_the_public_on_every_endpoint() {
    let app = spawn_app(&[
        (
            "public/refunds.md",
            &article(
                "Refunds for customers",
                "category: Billing\ntags: [refund]\n",
                "Ask us for a refund.",
            ),
        ),
        (
            "agents/refund-playbook.md",
            &article(
                "Refund playbook zebracorn",
                "category: Agent playbooks\ntags: [refund, internal-only]\naudience: internal\n",
                "Agents may refund up to 75 dollars. zebracorn.",
            ),
        ),
    ])
    .await;

    // Anonymous: nothing about the internal article leaks.
    let body = app.search("refund").await;
    assert_eq!(total(&body), 1, "{body}");
    assert!(
        body["facets"]["category"].get("Agent playbooks").is_none(),
        "{body}"
    );
    assert!(
        body["facets"]["tags"].get("internal-only").is_none(),
        "{body}"
    );
    assert_eq!(total(&app.search("zebracorn").await), 0);
    let (_, body) = app.get("/api/v1/autocomplete?q=zebrac").await;
    assert_eq!(body["suggestions"].as_array().unwrap().len(), 0, "{body}");
    let (_, body) = app.get("/api/v1/autocomplete?q=refund").await;
    assert_eq!(body["suggestions"].as_array().unwrap().len(), 1, "{body}");
    let (status, body) = app.get("/api/v1/articles/agents/refund-playbook").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "404, not 403: existence is not leaked: {body}"
    );
    let (_, body) = app.get("/api/v1/articles").await;
    assert_eq!(body["total"], 1, "{body}");
    let (_, body) = app.get("/api/v1/articles?category=agent%20playbooks").await;
    assert_eq!(body["total"], 0, "{body}");

    // Agent key: everything.
    let (_, body) = app.get_as_agent("/api/v1/search?q=refund").await;
    assert_eq!(total(&body), 2, "{body}");
    assert_eq!(body["facets"]["category"]["Agent playbooks"], 1, "{body}");
    let (_, body) = app.get_as_agent("/api/v1/autocomplete?q=zebrac").await;
    assert_eq!(
        body["suggestions"][0]["id"], "agents/refund-playbook",
        "{body}"
    );
    let (status, body) = app
        .get_as_agent("/api/v1/articles/agents/refund-playbook")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["audience"], "internal");
    let (_, body) = app.get_as_agent("/api/v1/articles").await;
    assert_eq!(body["total"], 2, "{body}");

    // A wrong key is refused rather than silently treated as anonymous.
    let (status, body) = app
        .get_with_key("/api/v1/search?q=refund", Some("wrong"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
}
