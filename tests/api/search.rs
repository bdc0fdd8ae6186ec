//! Ranking, typo tolerance, prefixes, synonyms, highlighting, filters, facets.

use crate::helpers::{TestApp, article, hit_ids, spawn_app, total};

async fn ranking_app() -> TestApp {
    spawn_app(&[
        (
            "account/export-data.md",
            &article(
                "Export your data",
                "category: Account\ntags: [data, export]\n",
                "## Download a copy\n\nGo to Settings and choose Export to download a ZIP file of everything.",
            ),
        ),
        (
            "services/expert-help.md",
            &article(
                "Book a session with a bookkeeping professional",
                "category: Services\ntags: [advice]\n",
                "Our expert team reviews your books. An expert replies within a day.",
            ),
        ),
        (
            "billing/refund-policy.md",
            &article(
                "Refund policy",
                "category: Billing\ntags: [refund, money]\n",
                "## How long it takes\n\nMost requests are answered within two days.",
            ),
        ),
        (
            "billing/annual-plans.md",
            &article(
                "Annual plans",
                "category: Billing\ntags: [plans]\n",
                &format!(
                    "{}\n\nIf you change your mind in the first 14 days, ask for a refund.",
                    "Annual plans are billed once a year and renew automatically. ".repeat(8)
                ),
            ),
        ),
        (
            "billing/duplicate-payment.md",
            &article(
                "Duplicate payments",
                "category: Billing\ntags: [payments]\n",
                "## If a card payment went through two times\n\nWe reverse the duplicate payment within five days.",
            ),
        ),
        (
            "bookkeeping/reconcile.md",
            &article(
                "Reconcile bank transactions",
                "category: Bookkeeping\ntags: [bank]\n",
                "Match each bank line with an invoice or an expense.",
            ),
        ),
        (
            "account/reset-password.md",
            &article(
                "Reset your password",
                "category: Account\ntags: [password, login]\n",
                "## Forgot your password\n\nSelect Forgot password on the sign-in page.\n\n## If you lost your phone\n\nUse one of your recovery codes to finish signing in, then set up your new phone.",
            ),
        ),
        (
            "synonyms.toml",
            "groups = [[\"sign in\", \"log in\"]]\n[mappings]\n\"charged twice\" = [\"duplicate payment\"]\n",
        ),
    ])
    .await
}

#[tokio::test]
async fn search_ranking_behaviours() {
    let app = ranking_app().await;

    // Exact match outranks a typo match ("expert" is one edit from "export").
    let body = app.search("export").await;
    let ids = hit_ids(&body);
    assert_eq!(ids[0], "account/export-data", "{body}");

    // A typo still finds the article, and the typo-matched word is highlighted.
    let body = app.search("exprot data").await;
    assert_eq!(hit_ids(&body)[0], "account/export-data", "{body}");
    let snippet = body["hits"][0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("<mark>Export</mark>"), "{snippet}");
    let body = app.search("pasword").await;
    assert_eq!(hit_ids(&body)[0], "account/reset-password", "{body}");

    // Title beats body.
    let body = app.search("refund").await;
    assert_eq!(
        hit_ids(&body),
        vec!["billing/refund-policy", "billing/annual-plans"],
        "{body}"
    );

    // Synonyms: the customer's words find the article's words.
    let body = app.search("charged twice").await;
    assert_eq!(hit_ids(&body)[0], "billing/duplicate-payment", "{body}");
    let snippet = body["hits"][0]["snippet"].as_str().unwrap();
    assert!(
        snippet.contains("<mark>duplicate</mark> <mark>payment</mark>"),
        "{snippet}"
    );

    // Search as you type: the last word is a prefix.
    let body = app.search("reconc").await;
    assert_eq!(hit_ids(&body)[0], "bookkeeping/reconcile", "{body}");

    // The best section is deep-linked.
    let body = app.search("lost phone").await;
    let hit = &body["hits"][0];
    assert_eq!(hit["id"], "account/reset-password");
    assert_eq!(hit["section"]["anchor"], "if-you-lost-your-phone");
    assert_eq!(
        hit["url"],
        "/articles/account/reset-password#if-you-lost-your-phone"
    );
    assert!(
        hit["snippet"]
            .as_str()
            .unwrap()
            .contains("<mark>phone</mark>"),
        "{hit}"
    );
}

#[tokio::test]
async fn filters_and_facets() {
    let app = ranking_app().await;
    let body = app.search("payment refund password").await;
    assert_eq!(body["facets"]["category"]["Billing"], 3, "{body}");
    assert_eq!(body["facets"]["category"]["Account"], 1, "{body}");
    assert_eq!(body["facets"]["tags"]["refund"], 1, "{body}");

    let (_, body) = app
        .get("/api/v1/search?q=payment%20refund%20password&category=billing")
        .await;
    assert_eq!(total(&body), 3, "{body}");
    assert!(
        body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["category"] == "Billing")
    );

    let (_, body) = app.get("/api/v1/search?q=payment%20refund&tag=Money").await;
    assert_eq!(hit_ids(&body), vec!["billing/refund-policy"], "{body}");

    let (_, body) = app.get("/api/v1/search?q=refund&locale=fr").await;
    assert_eq!(total(&body), 0, "{body}");

    // Pagination.
    let (_, page) = app
        .get("/api/v1/search?q=payment%20refund%20password&limit=2&offset=2")
        .await;
    assert_eq!(page["hits"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(total(&page), 4, "{page}");
    // Well under the counting bound: the total is exact.
    assert_eq!(page["total_relation"], "eq", "{page}");
}

/// Autocomplete answers are cached; the cache must never outlive the index
/// or the synonyms it answered from.
#[tokio::test]
async fn cached_suggestions_follow_edits_and_synonyms() {
    let app = ranking_app().await;
    let suggested = |body: &serde_json::Value| {
        body["suggestions"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|h| h["title"].as_str())
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    for _ in 0..2 {
        let (status, body) = app.get("/api/v1/autocomplete?q=quagga").await;
        assert!(status.is_success());
        assert!(suggested(&body).is_empty(), "{body}");
        let (_, body) = app.get("/api/v1/autocomplete?q=zebr").await;
        assert!(suggested(&body).is_empty(), "{body}");
    }
    // A new article: the answers cached for the old index are not served.
    app.write(
        "zebra.md",
        &article("Zebra crossings", "", "Stripes on the road."),
    );
    app.wait_for("/api/v1/autocomplete?q=zebr", None, |status, body| {
        status.is_success() && suggested(body) == ["Zebra crossings"]
    })
    .await;
    let (_, body) = app.get("/api/v1/autocomplete?q=quagga").await;
    assert!(suggested(&body).is_empty(), "{body}");
    // New synonyms, same index: the cached "quagga" answer is not served.
    app.write(
        "synonyms.toml",
        "groups = [[\"sign in\", \"log in\"], [\"quagga\", \"zebra\"]]\n[mappings]\n\"charged twice\" = [\"duplicate payment\"]\n",
    );
    app.wait_for("/api/v1/autocomplete?q=quagga", None, |status, body| {
        status.is_success() && suggested(body) == ["Zebra crossings"]
    })
    .await;
}

#[tokio::test]
async fn autocomplete_suggests_titles_by_prefix_and_typo() {
    let app = ranking_app().await;
    let (status, body) = app.get("/api/v1/autocomplete?q=rec").await;
    assert!(status.is_success());
    assert_eq!(
        body["suggestions"][0]["id"], "bookkeeping/reconcile",
        "{body}"
    );
    assert_eq!(
        body["suggestions"][0]["highlighted"],
        "<mark>Reconcile</mark> bank transactions"
    );
    let (_, body) = app.get("/api/v1/autocomplete?q=refnd%20pol").await;
    assert_eq!(
        body["suggestions"][0]["id"], "billing/refund-policy",
        "{body}"
    );
    let (_, body) = app.get("/api/v1/autocomplete?q=r&limit=2").await;
    assert!(body["suggestions"].as_array().unwrap().len() <= 2, "{body}");
}
