//! The chat widget other sites embed (`/widget.js`, `/widget.css`) and the
//! agents' hand-off queue: caching and CSP over HTTP, then a customer and an
//! agent, each in a real headless Chromium, from question to rating.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;

use super::browser::Browser;
use super::helpers::{AGENT_KEY, article, spawn_app, spawn_bundled};

async fn fetch(
    base: &str,
    path: &str,
    if_none_match: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(etag) = if_none_match {
        request = request.header("if-none-match", etag);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

const LONG: &str = "public, max-age=31536000, immutable";

/// `path` (a bare widget asset URL) with `version`: cached for good; bare or
/// with another version: briefly, since other sites link the bare URL.
async fn check_caching(base: &str, path: &str, version: &str, content_type: &str) -> String {
    let (status, headers, body) = fetch(base, &format!("{path}?v={version}"), None).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    assert!(
        header(&headers, "content-type").starts_with(content_type),
        "{headers:?}"
    );
    assert_eq!(
        header(&headers, "cache-control"),
        LONG,
        "{path}?v={version}"
    );
    for url in [path.to_string(), format!("{path}?v=0123456789")] {
        let (status, headers, bare) = fetch(base, &url, None).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert_eq!(bare, body, "{url} serves the current version");
        let cache = header(&headers, "cache-control");
        assert!(
            !cache.contains("immutable") && cache.contains("max-age=300"),
            "{url}: {cache}"
        );
        // Revalidating after the five minutes costs no body.
        let etag = header(&headers, "etag").to_string();
        assert!(etag.contains(version), "{url}: {etag}");
        let (status, _, empty) = fetch(base, &url, Some(&etag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{url}");
        assert!(empty.is_empty());
    }
    body
}

#[tokio::test]
async fn the_widget_is_cacheable_and_on_every_portal_page_under_the_strict_csp() {
    let app = spawn_app(&[(
        "billing/refunds.md",
        &article(
            "Get a refund",
            "category: Billing\n",
            "Refunds take five days.",
        ),
    )])
    .await;
    let (_, _, home) = fetch(&app.base, "/", None).await;
    let embed = regex::Regex::new(r#"<script src="/widget\.js\?v=([0-9a-f]{10})" defer>"#).unwrap();
    let js_version = embed
        .captures(&home)
        .expect("the home page embeds the widget")[1]
        .to_string();

    let js = check_caching(&app.base, "/widget.js", &js_version, "text/javascript").await;
    // The script names its stylesheet by content hash too.
    let css_version = regex::Regex::new(r#"/widget\.css\?v=([0-9a-f]{10})""#)
        .unwrap()
        .captures(&js)
        .expect("widget.js links its stylesheet")[1]
        .to_string();
    let css = check_caching(&app.base, "/widget.css", &css_version, "text/css").await;
    assert!(css.starts_with(".rapport-widget{--rw-accent:var(--rapport-accent,#2563eb)}"));

    // It runs under a CSP without 'unsafe-inline': no inline styles, no
    // markup from strings, nothing fetched but its own stylesheet and API.
    for banned in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        ".style",
        "\"style\"",
        "eval(",
        "document.write",
    ] {
        assert!(!js.contains(banned), "widget.js uses {banned}");
    }
    for banned in ["@import", "url("] {
        assert!(!css.contains(banned), "widget.css uses {banned}");
    }
    println!(
        "widget.js: {} bytes, widget.css: {} bytes",
        js.len(),
        css.len()
    );
    assert!(js.len() < 14 * 1024, "widget.js grew to {} bytes", js.len());

    for path in [
        "/",
        "/search?q=refund",
        "/search",
        "/articles/billing/refunds",
        "/categories/Billing",
        "/articles/nope",
    ] {
        let (_, headers, html) = fetch(&app.base, path, None).await;
        assert!(
            html.contains(&format!("<script src=\"/widget.js?v={js_version}\" defer>")),
            "{path} embeds the widget"
        );
        // The portal's own "contact support" prompt stays.
        assert!(html.contains("Can't find an answer?"), "{path}");
        let csp = header(&headers, "content-security-policy");
        for directive in [
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "default-src 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-"), "{path}: {csp}");
    }
    let (_, _, agent) = fetch(&app.base, "/agent", None).await;
    assert!(
        !agent.contains("widget.js"),
        "the agent panel has no customer widget"
    );
    assert!(agent.contains("Waiting customers"));
}

/// The open panel at 375×740 fits the screen, Tab and Shift+Tab stay in it,
/// and Escape closes it and gives the focus back to the launcher.
#[tokio::test]
async fn the_widget_fits_a_phone_and_works_from_the_keyboard() {
    let app = spawn_bundled().await;
    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    browser
        .client
        .set_window_size(375, 740)
        .await
        .expect("resize");
    browser
        .goto(&format!("{}/articles/billing/charged-twice", app.base))
        .await;
    browser
        .until(
            "the launcher, styled",
            "return document.querySelector('.rapport-launcher')?.checkVisibility()",
        )
        .await;
    let launcher = "const b = document.querySelector('.rapport-launcher'); \
                    return [b.getAttribute('aria-expanded'), b.getAttribute('aria-controls'), document.activeElement === b]";
    browser
        .js("document.querySelector('.rapport-launcher').focus()")
        .await;
    assert_eq!(
        browser.js(launcher).await,
        json!(["false", "rapport-panel", true])
    );

    browser.press("\u{E007}").await; // Enter
    let dialog = browser
        .js("const p = document.getElementById('rapport-panel'); \
             return [p.checkVisibility(), p.getAttribute('role'), p.getAttribute('aria-modal'), \
                     document.getElementById(p.getAttribute('aria-labelledby')).textContent, \
                     document.querySelector('.rapport-log').getAttribute('aria-live'), document.activeElement.id]")
        .await;
    assert_eq!(
        dialog,
        json!([
            true,
            "dialog",
            "true",
            "How can we help?",
            "polite",
            "rapport-q"
        ])
    );
    // Full screen: inside the viewport (a page scrollbar may take its width).
    let fits = browser
        .until(
            "the panel to fill the phone's screen",
            "const r = document.getElementById('rapport-panel').getBoundingClientRect(), \
                   w = document.documentElement.clientWidth; \
             return r.left === 0 && r.top === 0 && Math.abs(r.right - w) < 1 && Math.abs(r.bottom - innerHeight) < 1 \
                    && document.documentElement.scrollWidth <= innerWidth && [r.width, r.height, innerWidth]",
        )
        .await;
    assert!(
        fits[2].as_f64().unwrap() <= 380.0,
        "the window was not narrowed: {fits}"
    );

    browser.press("I was charged twice\u{E007}").await;
    browser
        .until(
            "an answer with its vote",
            "return document.querySelector('.rapport-bot button[data-vote=\"not_helpful\"]')",
        )
        .await;
    let link = browser
        .js("const a = document.querySelector('.rapport-bot a.rapport-link'); return [a.protocol, a.pathname, a.target]")
        .await;
    assert_eq!(link[0], "http:");
    assert!(
        link[1].as_str().unwrap().starts_with("/articles/billing/"),
        "{link}"
    );
    assert_eq!(
        browser
            .js("return document.querySelector('.rapport-human').checkVisibility()")
            .await,
        true,
        "“Talk to a person” once there is an answer"
    );
    browser.screenshot("widget-phone").await;

    // Tab cycles through the panel: close, the answer's link and votes,
    // "Talk to a person", the question box, Send, then close again.
    let focused = "const a = document.activeElement; \
                   return [document.getElementById('rapport-panel').contains(a), a.className || a.id]";
    let mut seen = Vec::new();
    for _ in 0..14 {
        browser.press("\u{E004}").await;
        let at = browser.js(focused).await;
        assert_eq!(at[0], true, "Tab left the panel after {seen:?}");
        seen.push(at[1].as_str().unwrap_or_default().to_string());
    }
    let cycle = seen.iter().filter(|c| c.contains("rapport-close")).count();
    assert!(cycle >= 2, "Tab did not come round: {seen:?}");
    assert!(seen.iter().any(|c| c.contains("rapport-human")), "{seen:?}");
    // Shift+Tab from the first control goes to the last.
    browser
        .js("document.querySelector('.rapport-close').focus()")
        .await;
    browser.press("\u{E008}\u{E004}").await;
    assert_eq!(
        browser
            .js("return document.activeElement.textContent")
            .await,
        "Send"
    );

    browser.press("\u{E00C}").await; // Escape
    assert_eq!(
        browser
            .js("return document.getElementById('rapport-panel').checkVisibility()")
            .await,
        false
    );
    assert_eq!(
        browser.js(launcher).await,
        json!(["false", "rapport-panel", true])
    );
    browser.close().await;
}

/// Records what the server answered the widget's rating with.
const WATCH_RATING: &str = "window.__rating = null; const f = window.fetch; \
    window.fetch = (u, i) => f(u, i).then(r => { \
      if (String(u).endsWith('/rating')) r.clone().json().then(j => { window.__rating = [r.status, j]; }); \
      return r; })";

/// Issue 16 end to end: ask, "not helpful", "Talk to a person", the agent
/// sees the customer arrive live, claims, closes; the customer sees each
/// step and rates. Needs the hand-off API (docs/api.md).
#[tokio::test]
async fn a_customer_hands_off_and_an_agent_claims_closes_and_is_rated() {
    let app = spawn_bundled().await;
    let Some(customer) = Browser::start(1280, 900).await else {
        return;
    };
    let Some(agent) = Browser::start(1280, 1000).await else {
        return;
    };

    // The agent is signed in and listening before the customer asks.
    agent.goto(&format!("{}/agent", app.base)).await;
    agent.type_into("#key", AGENT_KEY).await;
    agent.click("#key-form button").await;
    agent
        .until(
            "the live queue",
            "return document.getElementById('queue').checkVisibility() \
                    && document.getElementById('queue-live').textContent === 'Live' \
                    && document.getElementById('waiting-empty').checkVisibility()",
        )
        .await;

    customer.goto(&format!("{}/", app.base)).await;
    customer
        .until(
            "the launcher",
            "return document.querySelector('.rapport-launcher')?.checkVisibility()",
        )
        .await;
    customer.click(".rapport-launcher").await;
    customer
        .type_into("#rapport-q", "how do I export my data to CSV?\u{E007}")
        .await;
    customer
        .until(
            "the answer",
            "return document.querySelector('.rapport-bot button[data-vote=\"not_helpful\"]')",
        )
        .await;
    customer
        .click(".rapport-bot button[data-vote='not_helpful']")
        .await;
    customer
        .until(
            "“Talk to a person” focused",
            "return document.activeElement.classList.contains('rapport-human')",
        )
        .await;
    let session = customer
        .js("return sessionStorage.getItem('rapport.session')")
        .await;
    let session = session.as_str().expect("a session id").to_string();
    assert!(session.len() >= 32, "an unguessable session id: {session}");

    customer.click(".rapport-human").await;
    customer.type_into("#rapport-name", "Ada Lovelace").await;
    // A mistyped address is caught before it is sent.
    customer
        .type_into("#rapport-email", "ada.example.com")
        .await;
    customer
        .click("#rapport-contact button[type='submit']")
        .await;
    customer
        .until(
            "the e-mail error",
            "return document.getElementById('rapport-email').getAttribute('aria-invalid') === 'true' \
                    && document.getElementById('rapport-contact-error').textContent",
        )
        .await;
    customer
        .js("document.getElementById('rapport-email').value = ''")
        .await;
    customer
        .type_into("#rapport-email", "ada@example.com")
        .await;
    customer
        .click("#rapport-contact button[type='submit']")
        .await;
    let waiting = customer
        .until(
            "where the customer stands",
            "return [...document.querySelectorAll('.rapport-note')].map(n => n.textContent) \
                    .find(t => t.startsWith('An agent will be with you'))",
        )
        .await;
    assert!(waiting.as_str().unwrap().contains("number 1"), "{waiting}");

    // It reaches the agent's queue without a reload: the event stream.
    let item = agent
        .until(
            "the customer in the queue",
            "const li = document.querySelector('#queue-waiting li.handoff'); return li && li.textContent",
        )
        .await;
    let item = item.as_str().unwrap();
    for expected in [
        "Ada Lovelace",
        "ada@example.com",
        "export my data to CSV",
        "#1 · waiting",
    ] {
        assert!(item.contains(expected), "{expected:?} in {item:?}");
    }
    agent.screenshot("agent-queue").await;

    agent.click("#queue-waiting li.handoff button.claim").await;
    agent
        .until(
            "the claim, and the session in the panel",
            &format!(
                "return document.querySelector('#queue-claimed li.handoff') \
                        && document.getElementById('session').value === '{session}' \
                        && document.getElementById('brief').checkVisibility()"
            ),
        )
        .await;
    let picked = customer
        .until(
            "the customer told of the claim",
            "return [...document.querySelectorAll('.rapport-note')].map(n => n.textContent) \
                    .find(t => t.endsWith('has picked up your request.'))",
        )
        .await;
    assert!(!picked.as_str().unwrap().is_empty());
    customer.screenshot("widget-desktop").await;

    let handoff = agent
        .js("return document.querySelector('#queue-claimed li.handoff').dataset.id")
        .await;
    let handoff = handoff.as_str().expect("the claimed hand-off").to_string();

    agent
        .js("document.querySelector('#queue-claimed select').value = 'solved'")
        .await;
    agent
        .type_into("#queue-claimed textarea", "Sent the export steps by e-mail")
        .await;
    agent.click("#queue-claimed .close-form button").await;
    agent
        .until(
            "the hand-off gone from the queue",
            "return !document.querySelector('#queue li.handoff') && document.getElementById('claimed-empty').checkVisibility()",
        )
        .await;
    let (_, closed) = app
        .get_as_agent(&format!("/api/v1/handoffs/{handoff}"))
        .await;
    assert_eq!(closed["status"], "closed", "{closed}");
    assert_eq!(closed["resolution"], "solved");
    assert_eq!(closed["note"], "Sent the export steps by e-mail");

    // The customer is asked for a rating once it is closed.
    customer
        .until(
            "the rating form",
            "return document.getElementById('rapport-rate')?.checkVisibility()",
        )
        .await;
    customer.js(WATCH_RATING).await;
    customer.click("label[for='rapport-star-5']").await;
    customer
        .type_into("#rapport-comment", "Quick and kind, thank you")
        .await;
    customer.click("#rapport-rate button[type='submit']").await;
    customer
        .until(
            "thanks",
            "return document.querySelector('.rapport-log').textContent.includes('Thank you for your feedback')",
        )
        .await;
    let rating = customer.js("return window.__rating").await;
    assert_eq!(rating[0], 200, "{rating}");
    assert_eq!(rating[1]["session_id"], session.as_str());
    assert_eq!(rating[1]["score"], 5);
    assert_eq!(rating[1]["comment"], "Quick and kind, thank you");
    assert!(rating[1]["rated_at"].is_string(), "{rating}");
    // The vote before the hand-off was recorded too.
    let (status, brief) = app
        .get_as_agent(&format!("/api/v1/sessions/{session}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{brief}");
    assert!(
        brief["brief"]
            .as_str()
            .unwrap_or_default()
            .contains("not helpful"),
        "{brief}"
    );
    customer.close().await;
    agent.close().await;
}

/// What the widget shows comes from the server and the customer: it is
/// shown as text, and only http(s) links are followed.
#[tokio::test]
async fn the_widget_shows_answers_as_text() {
    let app = spawn_app(&[(
        "pay/xss.md",
        &article(
            "Payment <img src=x onerror=\"window.__xss='title'\"> help",
            "",
            "Payments <img src=x onerror=\"window.__xss='body'\"> are taken monthly on the first day.\n\n\
             [pay now](javascript:window.__xss='link')",
        ),
    )])
    .await;
    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    browser.goto(&format!("{}/", app.base)).await;
    browser
        .until(
            "the launcher",
            "return document.querySelector('.rapport-launcher')?.checkVisibility()",
        )
        .await;
    browser.click(".rapport-launcher").await;
    browser
        .type_into(
            "#rapport-q",
            "when are payments taken <img src=x onerror=\"window.__xss='question'\">\u{E007}",
        )
        .await;
    let shown = browser
        .until(
            "the answer",
            "const a = document.querySelector('.rapport-bot a.rapport-link'); return a && [a.textContent, a.protocol]",
        )
        .await;
    assert_eq!(shown[1], "http:");
    assert!(shown[0].as_str().unwrap().contains("<img src=x"), "{shown}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let clean = browser
        .js("return window.__xss === undefined && !document.querySelector('.rapport-widget img, .rapport-widget [onerror], .rapport-widget a[href^=\"javascript:\"]') \
             && document.querySelector('.rapport-me').textContent.includes('<img src=x')")
        .await;
    assert_eq!(clean, true);
    browser.close().await;
}
