//! The bundled help center (`articles/`) is valid and answers typical
//! customer questions; this guards the sample a newcomer sees first.

use std::path::Path;

use crate::helpers::{AGENT_KEY, hit_ids, spawn_app, write_file};

fn copy_tree(from: &Path, to: &Path, root: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            copy_tree(&path, to, root);
        } else {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            write_file(to, &relative, &std::fs::read(&path).unwrap());
        }
    }
}

#[tokio::test]
async fn bundled_help_center_indexes_cleanly_and_answers_questions() {
    let app = spawn_app(&[]).await;
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("articles");
    copy_tree(&bundled, app.articles.path(), &bundled);
    let status = app
        .wait_for("/api/v1/status", Some(AGENT_KEY), |_, body| {
            body["articles"].as_u64() >= Some(40)
        })
        .await;
    // Let the last batch land, then require a clean bill of health.
    let status = app
        .wait_for("/api/v1/status", Some(AGENT_KEY), |_, body| {
            body["articles"] == status["articles"]
                && body["skipped"].as_array().is_some_and(|s| s.is_empty())
        })
        .await;
    assert!(status["internal_articles"].as_u64() >= Some(5), "{status}");

    let cases = [
        ("I was charged twice", "billing/charged-twice"),
        ("can't log in", "account/cant-sign-in"),
        ("forgot my pasword", "account/reset-password"),
        ("money back", "billing/refunds"),
    ];
    for (question, expected) in cases {
        let body = app.search(question).await;
        let ids = hit_ids(&body);
        assert!(
            ids.iter().take(3).any(|id| id == expected),
            "{question:?}: {ids:?}"
        );
    }
    let body = app.search("where do I find my recovery codes").await;
    assert_eq!(
        body["hits"][0]["id"], "account/lost-phone-recovery-codes",
        "{body}"
    );
    assert_eq!(
        body["hits"][0]["section"]["anchor"], "where-to-find-your-recovery-codes",
        "{body}"
    );
}
