//! The section chosen for an answer does what the customer asked: not the
//! "turn off" steps for "turn on", not "remove" for "connect".

use serde_json::json;

use crate::helpers::{article, spawn_app, spawn_bundled};

#[tokio::test]
async fn the_answer_section_does_the_asked_action() {
    let app = spawn_bundled().await;
    let (_, answer) = app
        .post(
            "/api/v1/answer",
            None,
            &json!({"question": "how do I turn on two-step verification"}),
        )
        .await;
    let heading = answer["answer"]["section"]["heading"]
        .as_str()
        .unwrap_or_default();
    assert!(
        !heading.to_lowercase().contains("turn off"),
        "asked to turn it on, answered with {heading:?}: {answer}"
    );
}

#[tokio::test]
async fn an_answer_that_does_the_opposite_is_not_given_with_confidence() {
    let app = spawn_app(&[
        (
            "integrations/slack.md",
            &article(
                "Slack integration",
                "tags: [slack, integration]\n",
                "## Remove the Slack integration\n\nOpen Settings, then Integrations, and choose Remove next to the Slack integration. Your Slack workspace stops receiving notifications from the integration.\n",
            ),
        ),
        (
            "billing/invoices.md",
            &article("Download invoices", "", "Every invoice is under Billing, History."),
        ),
        (
            "account/password.md",
            &article("Reset your password", "", "Choose Forgot password on the sign-in page."),
        ),
    ])
    .await;
    let (_, answer) = app
        .post(
            "/api/v1/answer",
            None,
            &json!({"question": "how do I connect the Slack integration"}),
        )
        .await;
    let confidence = answer["confidence"].as_f64().unwrap();
    assert!(confidence <= 0.5, "{answer}");
    assert_eq!(answer["handoff"]["recommended"], true, "{answer}");
    let (_, right) = app
        .post(
            "/api/v1/answer",
            None,
            &json!({"question": "how do I remove the Slack integration"}),
        )
        .await;
    assert!(
        right["confidence"].as_f64().unwrap() > confidence,
        "{right}"
    );
}
