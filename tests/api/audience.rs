//! Internal articles are invisible without an agent key, on every endpoint.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{AGENT_KEY, article, search_path, spawn_app, total};

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

/// The ranking side channel: BM25 counts how many documents hold a word, so
/// if internal articles counted, an anonymous caller could tell from a public
/// article's score whether internal articles use a word.
#[tokio::test]
async fn anonymous_scores_do_not_move_when_internal_articles_share_their_words() {
    let app = spawn_app(&[
        (
            "billing/refunds.md",
            &article(
                "Refunds for annual invoices",
                "category: Billing\ntags: [refund]\n",
                "Ask us for a refund of an annual invoice within thirty days.\n\n\
                 ## Partial refunds\n\nPartial refunds are possible for annual plans.",
            ),
        ),
        (
            "billing/invoices.md",
            &article(
                "Download invoices",
                "category: Billing\n",
                "Invoices are on the billing page. A refund shows on the next invoice.",
            ),
        ),
        (
            "account/password.md",
            &article(
                "Reset your password",
                "",
                "Use the reset link we e-mail you.",
            ),
        ),
    ])
    .await;
    // Whole words, a word being typed (prefix expansion) and a typo.
    let queries = [
        "refund",
        "annual invoices",
        "refunds for invoic",
        "anual refund",
    ];
    let anonymous = |body: &Value| (body["total"].clone(), body["hits"].clone());
    let mut before = Vec::new();
    let mut agent_before = Vec::new();
    for query in queries {
        let body = app.search(query).await;
        assert!(total(&body) > 0, "{query}: {body}");
        before.push(anonymous(&body));
        let (_, body) = app.get_as_agent(&search_path(query)).await;
        agent_before.push(public_scores(&body));
    }
    let confidence_before = app
        .answer("how do I get a refund for my annual invoice?")
        .await["confidence"]
        .clone();

    // Internal articles using the same words, in titles and bodies.
    for (path, title, body) in [
        (
            "agents/refund-playbook.md",
            "Refund playbook for annual invoices",
            "Refund annual invoices up to 75 dollars; larger refunds need a lead.\n\n\
             ## Invoices\n\nCheck the invoice and the refund history first.",
        ),
        (
            "agents/escalations.md",
            "Escalating refunds",
            "Annual refunds above the limit: invoice the difference, refund the rest.",
        ),
    ] {
        app.write(path, &article(title, "audience: internal\n", body));
    }
    app.wait_for(&search_path("refund"), Some(AGENT_KEY), |status, body| {
        status == StatusCode::OK && total(body) == 4
    })
    .await;

    for ((query, before), agent_before) in queries.iter().zip(&before).zip(&agent_before) {
        let body = app.search(query).await;
        assert_eq!(
            &anonymous(&body),
            before,
            "{query}: anonymous ranking moved"
        );
        let (_, body) = app.get_as_agent(&search_path(query)).await;
        assert_ne!(
            &public_scores(&body),
            agent_before,
            "{query}: agents' scores count internal articles, so they move"
        );
    }
    assert_eq!(
        app.answer("how do I get a refund for my annual invoice?")
            .await["confidence"],
        confidence_before,
        "anonymous answer confidence moved"
    );
}

/// (id, score) of the public articles among the hits.
fn public_scores(body: &Value) -> Vec<(String, f64)> {
    body["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|hit| hit["audience"] == "public")
        .filter_map(|hit| Some((hit["id"].as_str()?.to_string(), hit["score"].as_f64()?)))
        .collect()
}
