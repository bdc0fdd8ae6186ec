//! What the bot says (`answer.text`): tables as rows, introductions that go
//! on with the steps after them, and never an empty text.

use crate::helpers::{article, spawn_app, spawn_bundled};

const PAYOUTS: &str = "## Payout statuses\n\nEach payout in the Payments tab shows one of these statuses.\n\n| Status | Meaning |\n|---|---|\n| Pending | Stripe is preparing the payout |\n| Paid | The money is on its way to your bank |\n\n## What to do when a payout failed\n\nCheck your bank details.\n\n| Problem | Cause | Next step |\n|---|---|---|\n| Wombat error | The account number is wrong | Update it under Settings |\n";

const TWO_STEP: &str = "## Turn on two-step verification\n\n### With an authenticator app\n\n1. Open Settings > Security.\n2. Scan the code with your quokka authenticator.\n\n### With text messages\n\n1. Open Settings > Security.\n2. Enter your phone number.\n";

const EXPORT: &str = "## Export your invoices to a spreadsheet\n\nTo do this:\n\n## Steps\n\n1. Go to Invoices and select Export.\n2. Choose CSV and select Download.\n";

fn answer_text(body: &serde_json::Value) -> &str {
    body["answer"]["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn answers_read_tables_as_rows_and_go_on_past_introductions() {
    let app = spawn_app(&[
        ("payouts.md", &article("Payouts", "", PAYOUTS)),
        (
            "two-step.md",
            &article("Two-step verification", "", TWO_STEP),
        ),
        ("export.md", &article("Export invoices", "", EXPORT)),
    ])
    .await;

    let body = app.answer("what does a pending payout status mean").await;
    assert_eq!(
        body["answer"]["section"]["anchor"], "payout-statuses",
        "{body}"
    );
    let text = answer_text(&body);
    assert!(
        text.contains(
            "Pending — Stripe is preparing the payout\nPaid — The money is on its way to your bank"
        ),
        "{body}"
    );
    let body = app.answer("payout failed with a wombat error").await;
    assert!(
        answer_text(&body).contains(
            "Wombat error — Cause: The account number is wrong; Next step: Update it under Settings"
        ),
        "{body}"
    );
    // Search snippets read the same rows.
    let body = app.search("stripe preparing payout").await;
    let snippet = body["hits"][0]["snippet"].as_str().unwrap_or_default();
    assert!(snippet.contains(" — "), "{body}");
    assert!(!snippet.contains(" | "), "{body}");

    // A heading with only sub-sections under it says their steps.
    let body = app.answer("turn on two-step verification").await;
    assert_eq!(body["answer"]["article_id"], "two-step", "{body}");
    let text = answer_text(&body);
    assert!(
        text.contains("With an authenticator app:\nOpen Settings > Security.\nScan the code"),
        "{body}"
    );
    assert!(text.contains("With text messages:"), "{body}");

    // "To do this:" goes on with the steps in the next section.
    let body = app.answer("export invoices to a spreadsheet").await;
    assert_eq!(
        body["answer"]["section"]["anchor"], "export-your-invoices-to-a-spreadsheet",
        "{body}"
    );
    assert_eq!(
        answer_text(&body),
        "To do this:\nGo to Invoices and select Export.\nChoose CSV and select Download.",
        "{body}"
    );
}

#[tokio::test]
async fn an_answer_never_has_empty_text() {
    let app = spawn_app(&[
        (
            "two-step.md",
            &article("Two-step verification", "", TWO_STEP),
        ),
        ("export.md", &article("Export invoices", "", EXPORT)),
        (
            "stub.md",
            &article(
                "Numbat integration",
                "summary: Connect Numbat to send invoices from it.\n",
                "## Numbat integration setup\n\n## Numbat troubleshooting\n",
            ),
        ),
        (
            "bare.md",
            &article("Platypus reports", "", "## Platypus reports overview\n"),
        ),
    ])
    .await;
    for question in [
        "numbat integration setup",
        "numbat troubleshooting",
        "platypus reports overview",
        "two-step verification with text messages",
        "export steps",
    ] {
        let body = app.answer(question).await;
        assert!(body["answer"].is_object(), "{question}: {body}");
        assert!(!answer_text(&body).trim().is_empty(), "{question}: {body}");
    }
    let body = app.answer("numbat troubleshooting").await;
    assert_eq!(
        answer_text(&body),
        "Connect Numbat to send invoices from it.",
        "{body}"
    );
    let body = app.answer("platypus reports overview").await;
    assert_eq!(answer_text(&body), "Platypus reports", "{body}");

    // The bundled help center: every answer given has something to say.
    let bundled = spawn_bundled().await;
    for question in [
        "how do I reset my password",
        "what can each role do",
        "refund a payment",
        "connect stripe",
        "change plan",
        "invoice pdf is blank",
        "delete my account",
        "set up sso",
    ] {
        let body = bundled.answer(question).await;
        if body["answer"].is_object() {
            let text = answer_text(&body);
            assert!(!text.trim().is_empty(), "{question}: {body}");
            assert!(text.chars().count() <= 601, "{question}: {body}");
        }
    }
}
