//! DocFX and GitHub markup adopted as it is: includes read from the folder
//! (and kept inside it), callouts, tables, and DocFX markers that never show
//! raw, on the portal page, in the API, in snippets and answers.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{AGENT_KEY, TestApp, hit_ids, spawn_app, total, write_file};

/// Included by the article; its own front matter is dropped, and it
/// includes another file relative to itself.
const REGISTRY_ALERT: &str = "---\nms.topic: include\nms.author: someone\n---\n> [!IMPORTANT]\n> Back up the wombatregistry before you edit it.\n\n[!INCLUDE [contact](nested/contact.md)]\n";
const CONTACT: &str = "Call the koalaline for help.\n";
/// Internal: a public article must never take its words.
const INTERNAL_FRAGMENT: &str = "---\naudience: internal\n---\nThe platypuscode is 4321.\n";

const ARTICLE: &str = "---\ntitle: Fix mail flow\n---\nMail flow stops after a move.\n\n[!INCLUDE [registry](../includes/registry-alert.md)]\n\n[!INCLUDE [gone](../includes/gone.md)]\n\n[!INCLUDE [secret](../../../../../../etc/passwd)]\n\n[!INCLUDE [internal](../includes/internal-only.md)]\n\n## Steps\n\n> [!NOTE]\n> Wait for echidnasync replication.\n\n> [!div class=\"nextstepaction\"]\n> [Run the numbatcheck diagnostics](https://aka.ms/numbat)\n\n> [!VIDEO https://www.microsoft.com/videoplayer/embed/abc]\n\n:::zone pivot=\"outlook\"\nIn Outlook, open the dingoview.\n:::zone-end\n\n## Limits\n\n| Setting | Value |\n|:--|--:|\n| Quolltimeout | 30 seconds |\n| Retries | 5 |\n";

fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("docs/fix-mail.md", ARTICLE),
        ("includes/registry-alert.md", REGISTRY_ALERT),
        ("includes/nested/contact.md", CONTACT),
        ("includes/internal-only.md", INTERNAL_FRAGMENT),
    ]
}

/// Raw markup that must never reach a reader, a snippet or the index.
const MARKERS: [&str; 8] = [
    "[!",
    ":::",
    "nextstepaction",
    "INCLUDE",
    "pivot",
    "zone-end",
    "<iframe",
    "ms.author",
];

async fn portal_page(app: &TestApp, path: &str) -> String {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("page request");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.expect("page body")
}

async fn article(app: &TestApp) -> Value {
    let (status, body) = app.get_as_agent("/api/v1/articles/docs/fix-mail").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The article as the API shows it: its HTML and section headings.
fn shown_text(article: &Value) -> String {
    let mut text = article["html"].as_str().unwrap_or_default().to_string();
    for section in article["sections"].as_array().into_iter().flatten() {
        text.push('\n');
        text.push_str(section["heading"].as_str().unwrap_or_default());
    }
    text
}

#[tokio::test]
async fn includes_callouts_tables_and_markers_render_as_a_reader_expects() {
    let app = spawn_app(&files()).await;

    // The portal page: callout boxes, a real table, the include's words.
    let page = portal_page(&app, "/articles/docs/fix-mail").await;
    for shown in [
        "<div class=\"callout callout-important\" role=\"note\">",
        "<p class=\"callout-title\">Important</p>",
        "<div class=\"callout callout-note\" role=\"note\">",
        "<table>",
        "<th class=\"align-left\">Setting</th>",
        "<td class=\"align-right\">30 seconds</td>",
        "wombatregistry",
        "koalaline",
        ">Run the numbatcheck diagnostics</a>",
        "href=\"https://www.microsoft.com/videoplayer/embed/abc\"",
        "In Outlook, open the dingoview.",
    ] {
        assert!(
            page.contains(shown),
            "{shown} missing from the page:\n{page}"
        );
    }
    for hidden in MARKERS
        .iter()
        .chain(&["platypuscode", "root:", "style=\"text-align"])
    {
        assert!(!page.contains(hidden), "{hidden} on the page:\n{page}");
    }

    // The API: the include's words are in the HTML, markers nowhere.
    let body = article(&app).await;
    let text = shown_text(&body);
    assert!(
        text.contains("Back up the wombatregistry before you edit it."),
        "{text}"
    );
    assert!(text.contains("Call the koalaline for help."), "{text}");
    for hidden in MARKERS.iter().chain(&["platypuscode", "root:"]) {
        assert!(!text.contains(hidden), "{hidden} in the API text: {text}");
    }

    // Search: included words find the article, markers find nothing.
    for word in [
        "wombatregistry",
        "koalaline",
        "echidnasync",
        "numbatcheck",
        "dingoview",
    ] {
        let body = app.search(word).await;
        assert_eq!(hit_ids(&body), ["docs/fix-mail"], "{word}: {body}");
        let snippet = body["hits"][0]["snippet"].as_str().unwrap_or_default();
        for hidden in MARKERS {
            assert!(
                !snippet.contains(hidden),
                "{hidden} in the snippet: {snippet}"
            );
        }
    }
    let body = app.search("quolltimeout").await;
    let snippet = body["hits"][0]["snippet"].as_str().unwrap_or_default();
    assert!(
        snippet.contains("<mark>Quolltimeout</mark> — 30 seconds · Retries — 5"),
        "cells and rows stay apart: {snippet}"
    );
    for marker in [
        "nextstepaction",
        "INCLUDE",
        "pivot",
        "platypuscode",
        "passwd",
        "topic",
    ] {
        for key in [None, Some(AGENT_KEY)] {
            let (_, body) = app
                .get_with_key(&crate::helpers::search_path(marker), key)
                .await;
            assert_eq!(total(&body), 0, "{marker} is markup, not text: {body}");
        }
    }

    // The bot's answers read as text: callouts without markers, a table
    // a row a line.
    let body = app.answer("how do I back up the wombatregistry").await;
    let answer = body["answer"]["text"].as_str().unwrap_or_default();
    assert!(answer.contains("wombatregistry"), "{body}");
    for hidden in MARKERS {
        assert!(!answer.contains(hidden), "{hidden} in the answer: {answer}");
    }
    let body = app.answer("what is the quolltimeout setting").await;
    let answer = body["answer"]["text"].as_str().unwrap_or_default();
    assert!(
        answer.contains("Quolltimeout — 30 seconds\nRetries — 5"),
        "{body}"
    );
}

#[tokio::test]
async fn editing_an_included_file_updates_the_articles_that_include_it() {
    let app = spawn_app(&files()).await;
    assert_eq!(total(&app.search("koalaline").await), 1);

    // An edit to a nested include reaches the article through two files.
    app.write(
        "includes/nested/contact.md",
        "Call the wallabyline for help.\n",
    );
    app.wait_for_search("wallabyline", |body| total(body) == 1)
        .await;
    assert_eq!(total(&app.search("koalaline").await), 0);

    // A missing include that appears is taken in; one that goes is left out.
    app.write("includes/gone.md", "Bilbyfix restores mail flow.\n");
    let body = app
        .wait_for_search("bilbyfix", |body| total(body) == 1)
        .await;
    assert_eq!(hit_ids(&body), ["docs/fix-mail"], "{body}");
    app.remove("includes/registry-alert.md");
    app.wait_for_search("wombatregistry", |body| total(body) == 0)
        .await;
    let (_, status) = app.get_as_agent("/api/v1/status").await;
    assert_eq!(
        status["articles"], 1,
        "fragments are not articles: {status}"
    );
}

#[tokio::test]
async fn a_restart_after_editing_only_an_included_file_serves_the_new_text() {
    let mut app = spawn_app(&files()).await;
    assert_eq!(total(&app.search("koalaline").await), 1);
    app.stop().await;
    write_file(
        app.articles.path(),
        "includes/nested/contact.md",
        b"Call the quokkaline for help.\n",
    );
    let app = app.restart().await;
    assert_eq!(total(&app.search("quokkaline").await), 1);
    assert_eq!(total(&app.search("koalaline").await), 0);
}

#[test]
fn check_notes_includes_that_are_missing_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files() {
        write_file(dir.path(), path, content.as_bytes());
    }
    let out = crate::helpers::rapport_command()
        .arg("check")
        .arg("--articles")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "notes are no problems: {out:?}");
    for note in [
        "fix-mail.md: note: include includes/gone.md: not found",
        "fix-mail.md: note: include ../../../../../../etc/passwd: outside the articles folder (refused)",
        "fix-mail.md: note: include includes/internal-only.md: internal, and this article is public (left out)",
    ] {
        assert!(stdout.contains(note), "{note} missing from:\n{stdout}");
    }
    assert!(!stdout.contains("root:"), "{stdout}");
}
