//! A bad file is skipped with its reason, listed in the status, and never
//! takes other articles down.

use crate::helpers::{Options, article, spawn_app_with, total};

#[tokio::test]
async fn bad_files_are_skipped_and_reported() {
    let big = article("Huge", "", &"lorem ipsum ".repeat(1000));
    let app = spawn_app_with(
        &[
            (
                "good.md",
                &article("Good article about invoices", "", "Invoices."),
            ),
            ("broken-yaml.md", "---\ntitle: [unclosed\n---\nInvoices.\n"),
            ("unclosed.md", "---\ntitle: x\nInvoices without end.\n"),
            ("huge.md", &big),
            (
                "first.md",
                &article("First invoices", "id: shared\n", "Invoices one."),
            ),
            (
                "second.md",
                &article("Second invoices", "id: shared\n", "Invoices two."),
            ),
            ("notes.txt", "not markdown, ignored"),
        ],
        Options {
            max_article_bytes: 4096,
            ..Options::default()
        },
    )
    .await;
    app.write_bytes("latin1.md", b"---\ntitle: caf\xe9\n---\nbody");
    let body = app
        .wait_for(
            "/api/v1/status",
            Some(crate::helpers::ADMIN_KEY),
            |_, body| body["skipped"].as_array().is_some_and(|s| s.len() == 5),
        )
        .await;
    let reason = |path: &str| -> String {
        body["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["path"] == path)
            .map(|s| s["reason"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{path} not in {body}"))
    };
    assert!(reason("broken-yaml.md").contains("invalid YAML"));
    assert!(reason("unclosed.md").contains("not closed"));
    assert!(reason("huge.md").contains("over the 4096-byte limit"));
    assert!(reason("second.md").contains("duplicate id \"shared\" (already used by first.md)"));
    assert!(reason("latin1.md").contains("not valid UTF-8"));
    assert_eq!(body["articles"], 2, "{body}");

    let results = app.search("invoices").await;
    assert_eq!(total(&results), 2, "{results}");

    // Deleting the owner of the id lets the duplicate in.
    app.remove("first.md");
    app.wait_for_search("second invoices", |b| {
        b["hits"][0]["id"] == "shared" && b["hits"][0]["title"] == "Second invoices"
    })
    .await;
}
