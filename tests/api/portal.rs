//! The help portal and the agent panel: server-rendered pages over real
//! HTTP, then end-to-end in a real headless Chromium.

use reqwest::StatusCode;
use serde_json::Value;

use super::browser::Browser;
use super::helpers::{
    ADMIN_KEY, AGENT_KEY, Options, article, spawn_app, spawn_app_with, spawn_bundled,
    spawn_bundled_with,
};
use rapport::config::PortalSettings;

fn tallybook() -> Options {
    Options {
        portal: PortalSettings {
            name: "Tallybook Help".into(),
            accent: "#0f766e".into(),
            support_url: Some("mailto:support@tallybook.example".into()),
        },
        ..Options::default()
    }
}

async fn page(base: &str, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let response = reqwest::get(format!("{base}{path}"))
        .await
        .expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

#[tokio::test]
async fn pages_are_server_rendered_with_their_own_csp_and_the_api_is_unchanged() {
    let app = spawn_app_with(
        &[
            (
                "billing/refunds.md",
                &article(
                    "Get a refund",
                    "category: Billing & plans\ntags: [refund]\nupdated: 2026-01-02\n",
                    "Refunds take five days.\n\n## Ask for a refund\n\nOpen Billing.\n\n## When refunds are refused\n\nAfter 30 days.",
                ),
            ),
            (
                "agents/policy.md",
                &article("Refund policy (internal)", "audience: internal\ncategory: Billing & plans\n", "Goodwill refunds up to 50."),
            ),
        ],
        tallybook(),
    )
    .await;
    let (status, headers, home) = page(&app.base, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(home.contains("Tallybook Help") && home.contains("/categories/Billing%20%26%20plans"));
    assert!(
        home.contains("1 article"),
        "internal articles are not counted: {home}"
    );
    assert!(!home.contains("Refund policy (internal)"));

    let (status, _, results) = page(&app.base, "/search?q=refund").await;
    assert_eq!(status, StatusCode::OK);
    assert!(results.contains("/articles/billing/refunds"), "{results}");
    assert!(!results.contains("internal"), "{results}");
    // A hit links to the section that matched.
    let (_, _, results) = page(&app.base, "/search?q=refused").await;
    assert!(results.contains("/articles/billing/refunds#"), "{results}");
    let (_, _, none) = page(&app.base, "/search?q=zebra+xylophone").await;
    assert!(none.contains("No articles match") && none.contains("Still need help?"));
    assert!(none.contains("mailto:support@tallybook.example"));

    let (status, _, doc) = page(&app.base, "/articles/billing/refunds").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc.contains("On this page") && doc.contains("href=\"#ask-for-a-refund\""));
    assert!(doc.contains("<h2 id=\"ask-for-a-refund\">"));
    let (status, _, missing) = page(&app.base, "/articles/agents/policy").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "internal articles are not public pages"
    );
    assert!(!missing.contains("Goodwill"));
    assert_eq!(
        page(&app.base, "/categories/Billing%20%26%20plans").await.0,
        StatusCode::OK
    );
    assert_eq!(
        page(&app.base, "/categories/Nope").await.0,
        StatusCode::NOT_FOUND
    );

    let (status, headers, agent) = page(&app.base, "/agent").await;
    assert_eq!(status, StatusCode::OK);
    assert!(agent.contains("Agent key") && !agent.contains("Goodwill"));
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'self'")
    );

    // The JSON API keeps its paths, shapes and its deny-everything CSP.
    let (status, headers, json) = page(&app.base, "/api/v1/articles/billing/refunds").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["title"], "Get a refund");
    let (status, _, json) = page(&app.base, "/api/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(json.contains("\"error\""));
}

/// HTML + CSS + JS of the home page, as a browser fetches them.
#[tokio::test]
async fn the_first_page_weighs_under_50_kb() {
    let app = spawn_bundled_with(tallybook()).await;
    let (_, _, home) = page(&app.base, "/").await;
    let assets = regex::Regex::new(r#"(?:href|src)="(/assets/[^"]+|/widget\.js[^"]*)""#).unwrap();
    let mut urls: Vec<String> = assets
        .captures_iter(&home)
        .map(|asset| asset[1].replace("&amp;", "&"))
        .collect();
    let css = regex::Regex::new(r#"/widget\.css\?v=[0-9a-f]+"#).unwrap();
    let mut total = home.len();
    let mut found = 0;
    while let Some(url) = urls.pop() {
        let (status, headers, body) = page(&app.base, &url).await;
        // The chat widget's script adds its stylesheet.
        if url.starts_with("/widget.js") {
            urls.extend(css.find(&body).map(|m| m.as_str().to_string()));
        }
        assert_eq!(status, StatusCode::OK, "{url}");
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age")
        );
        total += body.len();
        found += 1;
    }
    assert_eq!(found, 4, "a stylesheet and a script, and the chat widget's");
    println!("first page: {total} bytes (HTML {} bytes)", home.len());
    assert!(total < 50 * 1024, "first page is {total} bytes");
}

#[tokio::test]
async fn search_as_you_type_filter_open_vote_and_narrow_screens() {
    // A default `serve`'s settings: the screenshots show what a newcomer sees.
    let app = spawn_bundled().await;
    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    browser.goto(&format!("{}/", app.base)).await;
    browser
        .until(
            "the categories",
            "return document.querySelectorAll('#categories a.card').length",
        )
        .await;
    browser.screenshot("portal-home").await;

    // `/` focuses the search box, and typing shows results without a page load.
    browser.type_into("body", "/").await;
    assert_eq!(browser.js("return document.activeElement.id").await, "q");
    browser.js("window.__samePage = true").await;
    browser.type_into("#q", "charged").await;
    browser
        .until(
            "results for “charged”",
            "return document.querySelector('#results .count')?.textContent.includes('“charged”')",
        )
        .await;
    browser.type_into("#q", " twice").await;
    let first = browser
        .until(
            "results for “charged twice”",
            "const c = document.querySelector('#results .count'); \
             return c && c.textContent.includes('“charged twice”') && document.querySelector('#results a.hit').getAttribute('href')",
        )
        .await;
    assert!(
        first
            .as_str()
            .unwrap()
            .starts_with("/articles/billing/charged-twice"),
        "{first}"
    );
    assert_eq!(
        browser.js("return window.__samePage === true").await,
        true,
        "no page load"
    );
    assert!(
        browser
            .js("return location.search")
            .await
            .as_str()
            .unwrap()
            .contains("q=charged%20twice")
    );
    assert!(
        browser
            .js("return !!document.querySelector('#results .snippet mark')")
            .await
            .as_bool()
            .unwrap()
    );
    browser.screenshot("portal-results").await;

    // Filter by a category: every hit is then in it, and the count matches the API.
    browser
        .click("#results a.facet[data-value='Payments & payouts']")
        .await;
    browser
        .until("the filter applied", "return document.querySelector('#results a.facet.on')?.dataset.value === 'Payments & payouts'")
        .await;
    let crumbs = browser
        .js("return [...document.querySelectorAll('#results .crumb')].map(c => c.textContent)")
        .await;
    let crumbs = crumbs.as_array().unwrap();
    assert!(!crumbs.is_empty());
    assert!(
        crumbs
            .iter()
            .all(|c| c.as_str().unwrap().starts_with("Payments & payouts ›")),
        "{crumbs:?}"
    );
    let api = app.search("charged twice").await;
    let expected = api["facets"]["category"]["Payments & payouts"]
        .as_u64()
        .unwrap();
    let shown = browser
        .js("return document.querySelector('#results .count').textContent")
        .await;
    assert!(
        shown
            .as_str()
            .unwrap()
            .starts_with(&format!("{expected} result")),
        "{shown}"
    );
    browser.click("#results a.facet.clear").await;
    browser
        .until(
            "the filter cleared",
            "return !document.querySelector('#results a.facet.on')",
        )
        .await;

    // Arrow down to the first result, Enter opens it.
    browser.type_into("#q", "\u{E015}").await; // ArrowDown
    let focused = browser
        .js("return document.activeElement.getAttribute('href')")
        .await;
    assert_eq!(focused, first);
    browser.type_into("#results a.hit", "\u{E007}").await; // Enter
    browser
        .until("the article", "return location.pathname === '/articles/billing/charged-twice' && document.querySelector('article h1')?.textContent")
        .await;
    let toc = browser
        .js("return document.querySelectorAll('.toc a').length")
        .await;
    assert!(toc.as_u64().unwrap() >= 2, "table of contents: {toc}");
    let crumbs = browser
        .js("return document.querySelector('.crumbs').textContent")
        .await;
    assert!(
        crumbs.as_str().unwrap().contains("Billing & plans"),
        "{crumbs}"
    );
    assert!(
        browser
            .js("return document.querySelectorAll('.side .links a').length")
            .await
            .as_u64()
            .unwrap()
            >= 1,
        "related articles"
    );
    browser
        .until(
            "the vote widget",
            "return document.getElementById('vote').checkVisibility()",
        )
        .await;
    assert_eq!(
        browser
            .js("return document.getElementById('vote-comment').checkVisibility()")
            .await,
        false
    );
    browser.js("window.scrollTo(0, 0)").await;
    browser.screenshot("portal-article").await;

    // Vote helpful: it is recorded, with the click, against this article.
    browser.click("button[data-vote='helpful']").await;
    browser
        .until(
            "thanks",
            "return document.getElementById('vote-thanks').textContent.includes('Thanks')",
        )
        .await;
    let report = app
        .wait_for(
            "/api/v1/analytics/articles",
            Some(ADMIN_KEY),
            |status, body| {
                status == StatusCode::OK
                    && body.as_array().into_iter().flatten().any(|a| {
                        a["id"] == "billing/charged-twice" && a["helpful"] == 1 && a["clicks"] == 1
                    })
            },
        )
        .await;
    assert!(report.is_array());

    // "No" asks for a comment, then records the vote (from a server-rendered results page).
    browser
        .goto(&format!("{}/search?q=cancel+subscription", app.base))
        .await;
    let cancelled = browser
        .js("const a = document.querySelector('#results a.hit'); a.click(); return a.dataset.id")
        .await;
    let cancelled = cancelled.as_str().unwrap().to_string();
    browser
        .until(
            "the vote widget",
            "return document.getElementById('vote')?.checkVisibility()",
        )
        .await;
    browser.click("button[data-vote='not_helpful']").await;
    browser
        .until(
            "the comment box",
            "return document.getElementById('vote-comment').checkVisibility()",
        )
        .await;
    browser
        .type_into("#comment", "I wanted to pause, not cancel")
        .await;
    browser.click("#vote-comment button").await;
    browser
        .until(
            "thanks",
            "return document.getElementById('vote-thanks').textContent.includes('Thanks')",
        )
        .await;
    app.wait_for(
        "/api/v1/analytics/articles",
        Some(ADMIN_KEY),
        |status, body| {
            status == StatusCode::OK
                && body.as_array().into_iter().flatten().any(|a| {
                    a["id"] == cancelled.as_str() && a["not_helpful"] == 1 && a["clicks"] == 1
                })
        },
    )
    .await;

    // 320 px wide: nothing scrolls sideways.
    browser
        .client
        .set_window_size(320, 800)
        .await
        .expect("resize");
    for path in [
        "/",
        "/search?q=charged+twice",
        "/articles/billing/charged-twice",
        "/agent",
    ] {
        browser.goto(&format!("{}{path}", app.base)).await;
        let width = browser
            .js("return [window.innerWidth, document.documentElement.scrollWidth]")
            .await;
        let (inner, scroll) = (width[0].as_u64().unwrap(), width[1].as_u64().unwrap());
        assert!(inner <= 330, "the window was not narrowed: {width}");
        assert!(
            scroll <= inner,
            "{path} scrolls sideways at {inner} px: {scroll}"
        );
        if path == "/search?q=charged+twice" {
            browser.screenshot("portal-320").await;
        }
    }
    browser.close().await;
}

#[tokio::test]
async fn an_article_with_xss_payloads_never_runs_script() {
    let payloads = article(
        "Payment <img src=x onerror=\"window.__xss='title'\"> help",
        "category: \"<b onmouseover=window.__xss='category'>Billing</b>\"\n\
         tags: [\"<svg onload=window.__xss='tag'>\"]\n\
         summary: \"<script>window.__xss='summary'</script>\"\n",
        "Payment intro <script>window.__xss='body'</script>\n\n\
         <img src=x onerror=\"window.__xss='img'\">\n\n\
         [pay now](javascript:window.__xss='link')\n\n\
         ## <img src=y onerror=\"window.__xss='heading'\"> Payment steps\n\n\
         <iframe src=\"javascript:window.top.__xss='iframe'\"></iframe>\n\n\
         <a href=\"data:text/html,<script>alert(1)</script>\">data payment</a>\n",
    );
    let app = spawn_app(&[("pay/xss.md", &payloads)]).await;
    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    let clean = "return window.__xss === undefined && \
                 !document.querySelector('[onerror],[onload],[onmouseover],script:not([src]),iframe,a[href^=\"javascript:\"],a[href^=\"data:\"]')";
    for path in [
        "/articles/pay/xss",
        "/search?q=payment",
        "/",
        "/categories/%3Cb%20onmouseover%3Dwindow.__xss%3D%27category%27%3EBilling%3C%2Fb%3E",
    ] {
        browser.goto(&format!("{}{path}", app.base)).await;
        // Give handlers (onerror fires after the image fails) a moment.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(browser.js(clean).await, true, "{path}");
    }
    // The title is shown as text, not markup.
    browser
        .goto(&format!("{}/articles/pay/xss", app.base))
        .await;
    let title = browser
        .js("return document.querySelector('article h1').textContent")
        .await;
    assert!(title.as_str().unwrap().contains("<img src=x"), "{title}");
    // Results rendered by the script (live search) are safe too.
    browser.goto(&format!("{}/", app.base)).await;
    browser.type_into("#q", "payment").await;
    browser
        .until(
            "live results",
            "return document.querySelectorAll('#results a.hit').length",
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(browser.js(clean).await, true, "live results");
    browser.close().await;
}

#[tokio::test]
async fn the_agent_panel_shows_internal_suggestions_only_with_a_key() {
    let app = spawn_bundled().await;
    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    browser.goto(&format!("{}/agent", app.base)).await;
    let state = "return [document.getElementById('key-form').checkVisibility(), document.getElementById('panel').checkVisibility(), document.querySelectorAll('#suggestions li').length]";
    assert_eq!(browser.js(state).await, serde_json::json!([true, false, 0]));

    // A wrong key is refused and forgotten.
    browser.type_into("#key", "not-a-key").await;
    browser.click("#key-form button").await;
    browser
        .until(
            "the refusal",
            "return document.getElementById('key-error').textContent.includes('not accepted')",
        )
        .await;
    assert_eq!(browser.js(state).await, serde_json::json!([true, false, 0]));
    assert_eq!(
        browser
            .js("return sessionStorage.getItem('rapport.agentKey')")
            .await,
        Value::Null
    );

    browser.type_into("#key", AGENT_KEY).await;
    browser.click("#key-form button").await;
    browser
        .until(
            "the panel",
            "return document.getElementById('panel').checkVisibility()",
        )
        .await;
    browser
        .type_into(
            "#transcript",
            "Customer: hi, I was charged twice for my subscription\nAgent: Sorry to hear that, let me check\nCustomer: I want a refund or I'll open a chargeback with my bank",
        )
        .await;
    let internal = browser
        .until("an internal suggestion", "return [...document.querySelectorAll('#suggestions li.is-internal')].map(li => li.dataset.id)")
        .await;
    assert!(!internal.as_array().unwrap().is_empty());
    let badge = browser.js("return document.querySelector('#suggestions li.is-internal .pill.internal').textContent").await;
    assert_eq!(badge, "Internal");
    let signals = browser
        .js("return document.getElementById('signals').textContent")
        .await;
    assert!(signals.as_str().unwrap().contains("Hand-off"), "{signals}");
    browser.screenshot("agent-panel").await;

    // One click copies the section and records that it was used in a reply.
    let copied = internal[0].as_str().unwrap().to_string();
    // Watch what reaches the (real) clipboard; reading it back needs a permission headless Chromium denies.
    browser
        .js(
            "const write = navigator.clipboard.writeText.bind(navigator.clipboard); \
             navigator.clipboard.writeText = t => { window.__copied = t; return write(t); }",
        )
        .await;
    browser
        .click("#suggestions li.is-internal button.copy")
        .await;
    browser
        .until("the copy", "return document.querySelector('#suggestions li.is-internal button.copy').textContent.startsWith('Copied')")
        .await;
    let copied_text = browser.js("return window.__copied").await;
    let copied_text = copied_text.as_str().unwrap();
    let heading = browser
        .js("return document.querySelector('#suggestions li.is-internal .hint').textContent")
        .await;
    assert!(
        copied_text.starts_with(heading.as_str().unwrap()),
        "{copied_text}"
    );
    // The whole section: its subsections, up to the next heading of its level.
    let href = browser
        .js("return document.querySelector('#suggestions li.is-internal a').getAttribute('href')")
        .await;
    let anchor = href
        .as_str()
        .unwrap()
        .split_once('#')
        .map(|(_, a)| a.to_string());
    let (_, article) = app
        .get_as_agent(&format!("/api/v1/articles/{copied}"))
        .await;
    let sections = article["sections"].as_array().unwrap();
    let start = sections
        .iter()
        .position(|s| s["anchor"].as_str() == anchor.as_deref())
        .unwrap_or(0);
    let level = sections[start]["level"].as_u64().unwrap();
    for (i, section) in sections.iter().enumerate().skip(start + 1) {
        let heading = section["heading"].as_str().unwrap();
        let inside = sections[start + 1..=i]
            .iter()
            .all(|s| s["level"].as_u64().unwrap() > level);
        assert_eq!(
            copied_text.contains(heading),
            inside,
            "{heading:?} in {copied_text:?}"
        );
    }
    app.wait_for(
        "/api/v1/analytics/articles",
        Some(ADMIN_KEY),
        |status, body| {
            status == StatusCode::OK
                && body
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|a| a["id"] == copied.as_str() && a["used_in_reply"] == 1)
        },
    )
    .await;

    // The key is kept for the tab: a reload goes straight to the panel.
    browser.goto(&format!("{}/agent", app.base)).await;
    browser.until("the panel again", "return document.getElementById('panel').checkVisibility() && !document.getElementById('key-form').checkVisibility()").await;
    browser.click("#forget").await;
    assert_eq!(browser.js(state).await, serde_json::json!([true, false, 0]));
    browser.close().await;
}

#[tokio::test]
async fn the_agent_panel_shows_the_bot_sessions_brief_and_what_already_failed() {
    let app = spawn_bundled_with(tallybook()).await;
    // The bot answered, and the customer said it didn't help.
    let question = serde_json::json!({"question": "how do I export my data to CSV?", "session_id": "chat-panel"});
    let (status, answer) = app.post("/api/v1/answer", None, &question).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let failed = answer["answer"]["article_id"]
        .as_str()
        .expect("a confident first answer")
        .to_string();
    let vote = serde_json::json!({"query_id": answer["query_id"], "article_id": failed, "event": "not_helpful"});
    let (status, body) = app.post("/api/v1/feedback", None, &vote).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    browser
        .goto(&format!("{}/agent?session=chat-panel", app.base))
        .await;
    browser.type_into("#key", AGENT_KEY).await;
    browser.click("#key-form button").await;
    let brief = browser
        .until(
            "the brief",
            "const b = document.getElementById('brief'); return b.checkVisibility() && document.getElementById('brief-text').textContent",
        )
        .await;
    let brief = brief.as_str().unwrap();
    assert!(brief.contains("not helpful"), "{brief}");
    browser
        .type_into(
            "#transcript",
            "Customer: I still can't export my data to a spreadsheet",
        )
        .await;
    let marked = browser
        .until(
            "the failed article marked",
            &format!(
                "const li = document.querySelector('#suggestions li[data-id=\"{failed}\"]'); return li && li.textContent.includes('Customer: not helpful') && li.textContent.includes('Shown to customer')"
            ),
        )
        .await;
    assert_eq!(marked, Value::Bool(true));
    browser.screenshot("agent-panel-session").await;

    // An unknown session says so instead of showing nothing.
    browser.js("const s = document.getElementById('session'); s.value = 'no-such-chat'; s.dispatchEvent(new Event('input'));").await;
    browser
        .until(
            "the unknown-session note",
            "return document.getElementById('brief-text').textContent.includes('No bot session')",
        )
        .await;
    browser.close().await;
}
