//! A help center adopted as its repository holds it: the repository's own
//! files, include fragments and drafts are not articles; every article under
//! one `docs/` folder; category titles from Docusaurus, Hugo and DocFX
//! metadata, else readable folder names. Over real HTTP, then `rapport check`.

use std::collections::BTreeMap;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::rapport_command as rapport;
use crate::helpers::{ADMIN_KEY, Options, TestApp, article, spawn_app, spawn_app_with, write_file};

fn repository() -> Vec<(&'static str, String)> {
    let page = |title: &str, body: &str| article(title, "", body);
    vec![
        ("README.md", "# How to contribute to these docs\n".to_string()),
        ("LICENSE.md", "# MIT License\n".to_string()),
        ("includes/x.md", "Fragment text pulled into pages.\n".to_string()),
        ("_draft.md", page("Unfinished draft", "Draft text.")),
        ("docs/overview.md", page("Overview", "What the product does.")),
        (
            "docs/getting-started/install.md",
            page("Install", "Install the app."),
        ),
        (
            "docs/getting-started/_category_.json",
            r#"{"label": "First steps", "position": 1}"#.to_string(),
        ),
        ("docs/mail_flow/rules.md", page("Rules", "Route mail.")),
        (
            "docs/billing/_index.md",
            "+++\ntitle = \"Plans & billing\"\n+++\nEverything about paying.\n".to_string(),
        ),
        ("docs/billing/refunds.md", page("Refunds", "Money back.")),
        (
            "docs/toc.yml",
            "- name: Docs\n  href: overview.md\n  items:\n  - name: Admin center\n    href: admin/\n".to_string(),
        ),
        ("docs/admin/users.md", page("Users", "Add users.")),
        ("docs/Exchange Online/mailbox.md", page("Mailbox", "Mailboxes.")),
        ("docs/includes/note.md", "A note fragment.\n".to_string()),
    ]
}

async fn spawn_repository(options: Options) -> TestApp {
    let files = repository();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    spawn_app_with(&refs, options).await
}

/// Article id → category, as an agent lists them.
async fn categories(app: &TestApp) -> BTreeMap<String, Value> {
    let (status, body) = app.get_as_agent("/api/v1/articles?limit=100").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["articles"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap_or_default().to_string(),
                a["category"].clone(),
            )
        })
        .collect()
}

fn expected_categories() -> BTreeMap<String, Value> {
    [
        ("docs/overview", Value::Null),
        ("docs/getting-started/install", "First steps".into()),
        ("docs/mail_flow/rules", "Mail flow".into()),
        ("docs/billing/refunds", "Plans & billing".into()),
        ("docs/admin/users", "Admin center".into()),
        ("docs/Exchange Online/mailbox", "Exchange Online".into()),
    ]
    .into_iter()
    .map(|(id, category)| (id.to_string(), category))
    .collect()
}

#[tokio::test]
async fn only_articles_are_indexed_and_categories_start_below_the_shared_folder() {
    let app = spawn_repository(Options::default()).await;
    assert_eq!(categories(&app).await, expected_categories());
    let (_, status) = app.get_with_key("/api/v1/status", Some(ADMIN_KEY)).await;
    assert_eq!(status["articles"], 6, "{status}");
    assert_eq!(
        status["skipped"],
        Value::Array(vec![]),
        "not bad files: {status}"
    );
    for id in [
        "README",
        "LICENSE",
        "includes/x",
        "_draft",
        "docs/billing/_index",
    ] {
        let (code, body) = app.get_as_agent(&format!("/api/v1/articles/{id}")).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{id}: {body}");
    }
    assert_eq!(crate::helpers::total(&app.search("fragment").await), 0);

    // The title is the category: filters, facets and portal pages use it.
    let (_, body) = app.get("/api/v1/articles?category=first%20steps").await;
    assert_eq!(body["total"], 1, "{body}");
    let body = app.search("mail").await;
    assert_eq!(body["facets"]["category"]["Mail flow"], 1, "{body}");
    let response = reqwest::get(format!("{}/categories/Plans%20%26%20billing", app.base))
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.expect("page");
    assert!(
        page.contains("Plans &amp; billing") && page.contains("Refunds"),
        "{page}"
    );
}

#[tokio::test]
async fn files_created_at_run_time_follow_the_same_rule() {
    let app = spawn_repository(Options::default()).await;
    app.write("includes/new.md", "# New fragment\n\nZanzibarword.\n");
    app.write("docs/_wip.md", "# Work in progress\n\nZanzibarword.\n");
    app.write("docs/billing/new/part.md", "# Later\n\nZanzibarword.\n");
    app.write("docs/billing/zanzibar.md", "# Zanzibar\n\nZanzibarword.\n");
    // The last file written is in: the batch that had the others is done.
    let body = app
        .wait_for_search("zanzibarword", |body| crate::helpers::total(body) >= 2)
        .await;
    let mut ids = crate::helpers::hit_ids(&body);
    ids.sort();
    assert_eq!(
        ids,
        ["docs/billing/new/part", "docs/billing/zanzibar"],
        "{body}"
    );

    // A category title added while running applies to the folder's articles.
    app.write(
        "docs/mail_flow/_category_.json",
        r#"{"label": "Mail routing"}"#,
    );
    app.wait_for(
        "/api/v1/articles?category=Mail%20routing",
        None,
        |_, body| body["total"] == 1,
    )
    .await;

    // A second top folder: `docs/` no longer holds every article, so it is
    // a category again, for all 8 articles in it, without a restart.
    app.write("faq/question.md", "# Question\n\nAnswer.\n");
    app.wait_for("/api/v1/articles?category=Docs", None, |_, body| {
        body["total"] == 8
    })
    .await;
    let now = categories(&app).await;
    assert_eq!(now["faq/question"], "Faq", "{now:?}");
}

#[tokio::test]
async fn include_and_exclude_override_the_defaults_and_a_restart_applies_them() {
    let files = [
        ("README.md", "# Read me first\n\nStart here."),
        ("_drafts/coming-soon.md", "# Coming soon\n\nSoon."),
        ("_drafts/secret.md", "# Secret\n\nHidden."),
        ("guides/setup.md", "# Setup\n\nSet up."),
        ("guides/archive/old.md", "# Old\n\nOld setup."),
        ("faq/question.md", "# Question\n\nAnswer."),
    ];
    let app = spawn_app(&files).await;
    let ids = |map: BTreeMap<String, Value>| map.into_keys().collect::<Vec<_>>();
    assert_eq!(
        ids(categories(&app).await),
        ["faq/question", "guides/archive/old", "guides/setup"]
    );

    let selection = rapport::article::Selection::new(
        &["_drafts/**".into(), "/README.md".into()],
        &["archive/".into(), "_drafts/secret.md".into()],
    )
    .expect("valid patterns");
    let options = || Options {
        article_rules: rapport::article::ArticleRules {
            selection: selection.clone(),
            ..Default::default()
        },
        ..Options::default()
    };
    let app = app.restart_with(options()).await;
    let now = categories(&app).await;
    assert_eq!(
        ids(now.clone()),
        [
            "README",
            "_drafts/coming-soon",
            "faq/question",
            "guides/setup"
        ],
        "re-admitted, excluded, and exclude wins over include"
    );
    assert_eq!(now["_drafts/coming-soon"], "Drafts", "{now:?}");

    // Back to the defaults: what the patterns let in leaves again.
    let app = app.restart_with(Options::default()).await;
    assert_eq!(
        ids(categories(&app).await),
        ["faq/question", "guides/archive/old", "guides/setup"]
    );
}

#[test]
fn check_names_every_skipped_file_with_its_reason_and_counts_everything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = std::fs::canonicalize(dir.path()).expect("canonical");
    for (path, text) in repository() {
        write_file(&root, path, text.as_bytes());
    }
    // Most articles closed by a role field, as in DocFX.
    for path in [
        "docs/admin/users.md",
        "docs/billing/refunds.md",
        "docs/mail_flow/rules.md",
    ] {
        let text = article("Closed", "audience: ITPro\n", "Role-specific.");
        write_file(&root, path, text.as_bytes());
    }
    write_file(&root, "docs/archive/old.md", b"# Old\n\nOld.");
    let status = Command::new("mkfifo")
        .arg(root.join("docs/pipe.md"))
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    let config = tempfile::tempdir().expect("temp dir");
    let config_file = config.path().join("rapport.toml");
    std::fs::write(&config_file, "exclude = [\"docs/archive/\"]\n").expect("config");

    let out = rapport()
        .current_dir(config.path())
        .arg("check")
        .arg("--articles")
        .arg(&root)
        .arg("--config")
        .arg(&config_file)
        .output()
        .expect("rapport runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "a FIFO is named, not a problem: {stdout}\n{stderr}"
    );
    let shown = |relative: &str| root.join(relative).display().to_string();
    for (path, reason) in [
        ("README.md", "repository file"),
        ("LICENSE.md", "repository file"),
        ("includes/x.md", "include fragment"),
        ("docs/includes/note.md", "include fragment"),
        ("_draft.md", "name starts with '_'"),
        ("docs/billing/_index.md", "name starts with '_'"),
        (
            "docs/archive/old.md",
            "excluded by config pattern \"docs/archive/\"",
        ),
    ] {
        let line = format!("{}: skipped ({reason})\n", shown(path));
        assert!(stdout.contains(&line), "{line:?} in\n{stdout}");
    }
    assert_eq!(stdout.matches(": skipped (").count(), 7, "{stdout}");
    let fifo = format!("{}: not a regular file (FIFO)", shown("docs/pipe.md"));
    assert!(stdout.contains(&fifo), "{fifo:?} in\n{stdout}");

    // 6 articles; 7 skipped; the FIFO; `_category_.json` and `toc.yml`.
    assert!(
        stderr.contains("6 articles checked, 0 problems, 1 warnings\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("16 files looked at: 6 articles, 7 skipped, 0 broken, 1 not regular files, 2 not Markdown\n"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("5 categories, 1 articles without one; folder categories start below docs/"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Admin center (1)") && stderr.contains("First steps (1)"),
        "{stderr}"
    );
    // The loud line: most articles closed, with the setting that changes it.
    let loud = stderr
        .lines()
        .find(|l| l.starts_with("warning: 3 of 6 articles"))
        .map(str::to_string);
    assert_eq!(loud, None, "half is not most: {stderr}");
    write_file(
        &root,
        "docs/overview.md",
        article("Overview", "audience: Admin\n", "Closed too.").as_bytes(),
    );
    let out = rapport()
        .current_dir(config.path())
        .args(["check", "--articles"])
        .arg(&root)
        .arg("--config")
        .arg(&config_file)
        .output()
        .expect("rapport runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let loud: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("are served to agents only"))
        .collect();
    assert_eq!(loud.len(), 1, "{stderr}");
    assert!(
        loud[0].starts_with("warning: 4 of 6 articles (66%) are served to agents only: 4 of them have a value of `audience` that is neither public nor internal (\"ITPro\" 3, \"Admin\" 1)"),
        "{stderr}"
    );
    assert!(loud[0].contains("RAPPORT_AUDIENCE_FIELD"), "{stderr}");
}
