//! Help centers adopted as they are: DocFX, Docusaurus, Jekyll and Hugo
//! quirks, and an access field that never guesses. The fixtures are written
//! for these tests, each showing one generator's habits.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, hit_ids, spawn_app, spawn_app_with, total};

/// DocFX: dotted keys, a block list whose item parses as a mapping, `ms.date`,
/// image blocks, callouts, include markers, no category, a file name with
/// spaces and a curly apostrophe, and `audience: ITPro`.
const DOCFX: &str = "---\ntitle: Can't send mail after a mailbox move\nms.author: someone\nms.topic: troubleshooting\nms.date: 03/31/2022\naudience: ITPro\nms.custom:\n  - sap:Mail flow\n  - Activation\\Errors\\0x8004FC12: 0x\nsearch.appverid:\n  - MET150\n---\n# Can't send mail\n\n:::image type=\"content\" source=\"media/rules.png\" alt-text=\"Screenshot of the quokkaflow rules page\":::\n\n> [!NOTE]\n> Wait for replication before you retry.\n\n[!INCLUDE [third-party](../../includes/disclaimer.md)]\n\nRun the move request again.\n";

/// Docusaurus: MDX imports, JSX components with expressions, `sidebar_label`,
/// a `.mdx` file and a site-root link.
const DOCUSAURUS_GOALS: &str = "---\nsidebar_label: Goals\n---\nimport CtaBox from '../src/CtaBox';\nimport useBaseUrl from '@docusaurus/useBaseUrl';\n\nTrack conversions with goals. See [custom events](/custom-events#setup).\n\n<CtaBox title=\"Try it\" src={useBaseUrl('/img/goals.png')} />\n\n<details>\n<summary>Why narwhalgoal?</summary>\nBecause narwhalgoal explains itself.\n</details>\n";
const DOCUSAURUS_EVENTS: &str =
    "---\ntitle: Custom events\n---\n## Setup\n\nSend events from your site.\n";

/// Jekyll: `layout`, a category list, permalinks, Liquid links and callouts.
const JEKYLL_START: &str = "---\nlayout: page\ntitle: Getting started\ncategories: [basics]\ndate: 2021-01-02 10:00:00 +0000\nlast_modified_at: 2023-05-06T07:08:09Z\n---\nFirst [reset your password]({{site.baseurl}}/article/reset-password/).\n\n{% callout info %}\nCalloutword stays readable.\n{% endcallout %}\n";
const JEKYLL_RESET: &str = "---\nlayout: page\ntitle: Reset your password\npermalink: /article/reset-password/\ncategories: [basics]\n---\nClick Forgot password.\n";

/// Hugo: TOML front matter, shortcodes, `ref` links, `lastmod`.
const HUGO: &str = "+++\ntitle = \"Refund rules\"\nlastmod = 2024-02-03\ndraft = false\n[params]\nweight = 3\n+++\n{{< note >}}\nShortcodeword is kept.\n{{< /note >}}\n\nSee [getting started]({{< ref \"jekyll/start.md\" >}}).\n";

fn generator_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Exchange/Mail flow/Can’t send mail.md", DOCFX),
        ("docs/goals.mdx", DOCUSAURUS_GOALS),
        ("docs/custom-events.markdown", DOCUSAURUS_EVENTS),
        ("jekyll/start.md", JEKYLL_START),
        ("jekyll/reset-password.md", JEKYLL_RESET),
        ("hugo/refunds.md", HUGO),
    ]
}

fn with_rules(article_rules: rapport::article::ArticleRules) -> Options {
    Options {
        article_rules,
        ..Options::default()
    }
}

async fn article_json(app: &crate::helpers::TestApp, id: &str) -> Value {
    let path = format!(
        "/api/v1/articles/{}",
        crate::helpers::encode(id).replace("%2F", "/")
    );
    let (status, body) = app.get_as_agent(&path).await;
    assert_eq!(status, StatusCode::OK, "{id}: {body}");
    body
}

#[tokio::test]
async fn every_generator_indexes_completely_with_its_words_and_without_its_markup() {
    let files = generator_files();
    let app = spawn_app(&files).await;
    let (_, status) = app.get_as_agent("/api/v1/status").await;
    assert_eq!(status["articles"], files.len(), "{status}");
    assert_eq!(status["skipped"], json!([]), "{status}");

    // DocFX: alt text and callout text are searchable, markup is not.
    let (_, body) = app.get_as_agent("/api/v1/search?q=quokkaflow").await;
    assert_eq!(
        hit_ids(&body),
        ["Exchange/Mail flow/Can’t send mail"],
        "{body}"
    );
    let docfx = article_json(&app, "Exchange/Mail flow/Can’t send mail").await;
    assert_eq!(docfx["category"], "Exchange", "first folder: {docfx}");
    assert_eq!(docfx["updated"], "2022-03-31", "{docfx}");
    let (_, body) = app.get_as_agent("/api/v1/search?q=replication").await;
    assert_eq!(total(&body), 1, "callout text is kept: {body}");
    for markup in ["INCLUDE", "alt-text", "image", "MET150"] {
        let (_, body) = app
            .get_as_agent(&format!("/api/v1/search?q={markup}"))
            .await;
        assert_eq!(total(&body), 0, "{markup} is markup, not text: {body}");
    }

    // Docusaurus: JSX text kept, imports and expressions dropped, nav label
    // as title only when there is no real one, `.mdx` and `.markdown` indexed.
    let goals = article_json(&app, "docs/goals").await;
    assert_eq!(goals["title"], "Goals", "{goals}");
    let (_, body) = app.get("/api/v1/search?q=narwhalgoal").await;
    assert_eq!(hit_ids(&body), ["docs/goals"], "{body}");
    for markup in ["useBaseUrl", "CtaBox", "docusaurus"] {
        let (_, body) = app.get(&format!("/api/v1/search?q={markup}")).await;
        assert_eq!(total(&body), 0, "{markup}: {body}");
    }
    assert!(
        goals["html"]
            .as_str()
            .unwrap()
            .contains(r#"href="/articles/docs/custom-events#setup""#),
        "site-root link resolves to the article: {goals}"
    );

    // Jekyll: Liquid links resolve through the permalink; callouts keep text.
    let start = article_json(&app, "jekyll/start").await;
    assert_eq!(start["category"], "basics", "{start}");
    assert_eq!(start["updated"], "2023-05-06", "{start}");
    assert!(
        start["html"]
            .as_str()
            .unwrap()
            .contains(r#"href="/articles/jekyll/reset-password""#),
        "{start}"
    );
    assert_eq!(total(&app.search("calloutword").await), 1);
    assert_eq!(total(&app.search("endcallout").await), 0);

    // Hugo: TOML, shortcodes stripped with their text kept, `ref` links.
    let hugo = article_json(&app, "hugo/refunds").await;
    assert_eq!(hugo["updated"], "2024-02-03", "{hugo}");
    assert!(
        hugo["html"]
            .as_str()
            .unwrap()
            .contains(r#"href="/articles/jekyll/start""#),
        "{hugo}"
    );
    assert_eq!(total(&app.search("shortcodeword").await), 1);

    // A category filter on the folder fallback works like a written one.
    let (_, body) = app.get_as_agent("/api/v1/articles?category=Exchange").await;
    assert_eq!(body["total"], 1, "{body}");
}

#[tokio::test]
async fn a_link_to_an_article_added_later_resolves_without_touching_the_linking_article() {
    let app = spawn_app(&[("a.md", "---\ntitle: A\n---\nSee [b](sub/b.md#part).\n")]).await;
    let html = |body: &Value| body["html"].as_str().unwrap_or_default().to_string();
    let before = article_json(&app, "a").await;
    assert!(
        html(&before).contains(r#"href="/articles/sub/b#part""#),
        "{before}"
    );
    app.write(
        "sub/b.md",
        "---\nid: billing/b-renamed\ntitle: B\n---\n## Part\n",
    );
    app.wait_for("/api/v1/articles/billing/b-renamed", None, |s, _| {
        s == StatusCode::OK
    })
    .await;
    let after = article_json(&app, "a").await;
    assert!(
        html(&after).contains(r#"href="/articles/billing/b-renamed#part""#),
        "follows the target's own id: {after}"
    );
}

#[tokio::test]
async fn an_unknown_access_value_is_never_served_anonymously_on_any_endpoint() {
    let app = spawn_app(&[
        (
            "Exchange/itpro.md",
            "---\ntitle: Quokkaflow mailbox repair\naudience: ITPro\ntags: [quokkatag]\n---\nRepair the quokkaflow mailbox with the repair tool.\n",
        ),
        (
            "Exchange/public.md",
            "---\ntitle: Mailbox basics\naudience: public\n---\nA mailbox holds your mail.\n",
        ),
    ])
    .await;
    let id = "Exchange/itpro";
    let leaks = |body: &Value| {
        let text = body.to_string();
        text.contains(id) || text.to_lowercase().contains("quokka")
    };

    for path in [
        "/api/v1/search?q=quokkaflow",
        "/api/v1/search?q=mailbox",
        "/api/v1/search?q=mailbox&tag=quokkatag",
        "/api/v1/autocomplete?q=quokka",
        "/api/v1/articles",
        "/api/v1/articles?category=Exchange",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(!leaks(&body), "{path} leaks the ITPro article: {body}");
    }
    let (status, body) = app.get(&format!("/api/v1/articles/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/answer",
            None,
            &json!({"question": "how do I repair the quokkaflow mailbox"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!leaks(&body), "/answer leaks the ITPro article: {body}");
    let (status, _) = app
        .post(
            "/api/v1/suggest",
            None,
            &json!({"transcript": "customer: quokkaflow mailbox broken"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "suggest needs a key");

    // Agents still find it, and the status says why it is internal.
    let (_, body) = app.get_as_agent("/api/v1/search?q=quokkaflow").await;
    assert_eq!(hit_ids(&body), [id], "{body}");
    let (_, status) = app.get_as_agent("/api/v1/status").await;
    let reported = &status["unrecognized_audience"];
    assert_eq!(reported[0]["field"], "audience", "{status}");
    assert_eq!(reported[0]["value"], "ITPro", "{status}");
    assert_eq!(reported[0]["articles"], 1, "{status}");
    assert!(
        reported[0]["fix"]
            .as_str()
            .unwrap()
            .contains("audience_field"),
        "{status}"
    );
}

#[tokio::test]
async fn changing_the_access_rules_reparses_unchanged_files_on_restart() {
    let files = [(
        "guides/setup.md",
        "---\ntitle: Setup zebrafinch\naudience: ITPro\nvisibility: public\n---\nSet up zebrafinch.\n",
    )];
    let app = spawn_app(&files).await;
    assert_eq!(total(&app.search("zebrafinch").await), 0, "ITPro is closed");

    // This help center's `audience` means the reader's role: point rapport at
    // the field that says who may read an article.
    let rules = rapport::article::ArticleRules {
        audience_field: "visibility".into(),
        ..Default::default()
    };
    let app = app.restart_with(with_rules(rules)).await;
    assert_eq!(total(&app.search("zebrafinch").await), 1, "now public");
    let (_, status) = app.get_as_agent("/api/v1/status").await;
    assert_eq!(status["unrecognized_audience"], json!([]), "{status}");

    // The same rules again: nothing to re-parse, so nothing to commit.
    let rules = rapport::article::ArticleRules {
        audience_field: "visibility".into(),
        ..Default::default()
    };
    let app = app.restart_with(with_rules(rules)).await;
    let (_, status) = app.get_as_agent("/api/v1/status").await;
    assert_eq!(
        status["commits"], 0,
        "unchanged rules re-parse nothing: {status}"
    );
    assert_eq!(total(&app.search("zebrafinch").await), 1);

    // Or keep the field and map the value.
    let rules = rapport::article::ArticleRules {
        public_values: vec!["itpro".into()],
        ..Default::default()
    };
    let app = app.restart_with(with_rules(rules)).await;
    assert_eq!(total(&app.search("zebrafinch").await), 1, "mapped public");

    // A field that no article has: everything is public.
    let rules = rapport::article::ArticleRules {
        audience_field: "no-such-field".into(),
        category_from_folder: rapport::article::CategoryFromFolder::Off,
        ..Default::default()
    };
    let app = app.restart_with(with_rules(rules)).await;
    let body = app.search("zebrafinch").await;
    assert_eq!(total(&body), 1, "{body}");
    assert_eq!(body["hits"][0]["category"], Value::Null, "{body}");
}

#[tokio::test]
async fn folder_path_categories_filter_by_parent() {
    let rules = rapport::article::ArticleRules {
        category_from_folder: rapport::article::CategoryFromFolder::FolderPath,
        ..Default::default()
    };
    let app = spawn_app_with(
        &[
            ("Exchange/Mail flow/a.md", "# Alpha mail\n\nText."),
            ("Exchange/Calendar/b.md", "# Beta calendar\n\nText."),
            ("Outlook/c.md", "# Gamma\n\nText."),
        ],
        with_rules(rules),
    )
    .await;
    let (_, body) = app.get("/api/v1/articles?category=Exchange").await;
    assert_eq!(body["total"], 2, "{body}");
    let (_, body) = app
        .get("/api/v1/articles?category=Exchange%2FMail%20flow")
        .await;
    assert_eq!(body["total"], 1, "{body}");
    let body = app.search("text").await;
    assert_eq!(body["facets"]["category"]["Exchange/Calendar"], 1, "{body}");
}
