//! The dashboard's sign-in (issue 18): admin keys only, a strict session
//! cookie, sessions that end on the server, CSRF-checked forms, a strict
//! CSP on every page, and CSP reports.

use std::time::Duration;

use regex::Regex;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, AGENT_KEY, Options, TestApp, article, encode, spawn_app_with};

/// What a page must never contain: the nav only a signed-in admin sees.
const NAV: &str = r#"aria-label="Dashboard""#;
const SIGN_IN_FORM: &str = r#"action="/admin/login""#;

async fn app_with(options: Options) -> TestApp {
    spawn_app_with(
        &[(
            "refunds.md",
            &article("Refund policy", "", "How refunds work."),
        )],
        options,
    )
    .await
}

async fn app() -> TestApp {
    app_with(Options::default()).await
}

/// A browser that doesn't follow redirects, so the 303 can be checked.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    async fn from(response: reqwest::Response) -> Answer {
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// `rapport_admin=<id>`, as a browser would send it back.
    fn session_cookie(&self) -> String {
        let set = self.header(SET_COOKIE.as_str());
        let pair = set.split(';').next().unwrap_or("");
        assert!(
            pair.starts_with("rapport_admin=") && pair.len() == "rapport_admin=".len() + 64,
            "no session cookie in {set:?}"
        );
        pair.to_string()
    }

    fn csrf(&self) -> String {
        let token = Regex::new(r#"name="csrf" value="([0-9a-f]{64})""#).unwrap();
        token
            .captures(&self.body)
            .unwrap_or_else(|| panic!("no CSRF field in {}", self.body))[1]
            .to_string()
    }
}

async fn post_form(
    app: &TestApp,
    path: &str,
    form: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = browser()
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Answer::from(request.send().await.expect("request")).await
}

async fn sign_in(app: &TestApp, key: &str, headers: &[(&str, &str)]) -> Answer {
    post_form(
        app,
        "/admin/login",
        &format!("key={}", encode(key)),
        None,
        headers,
    )
    .await
}

async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> Answer {
    let mut request = browser().get(format!("{}{path}", app.base));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    Answer::from(request.send().await.expect("request")).await
}

fn mentions(answer: &Answer, secret: &str) -> bool {
    answer.body.contains(secret)
        || answer
            .headers
            .values()
            .any(|v| String::from_utf8_lossy(v.as_bytes()).contains(secret))
}

/// The page headers every dashboard page carries, and no inline code.
fn assert_strict_page(answer: &Answer) {
    let csp = answer.header("content-security-policy");
    for part in [
        "default-src 'none'",
        "style-src 'self'",
        "script-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "report-uri /admin/csp-report",
    ] {
        assert!(csp.contains(part), "CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(answer.header("cache-control"), "no-store");
    assert_eq!(answer.header("x-content-type-options"), "nosniff");
    assert_eq!(answer.header("referrer-policy"), "no-referrer");
    assert!(
        answer.header("content-type").starts_with("text/html"),
        "{}",
        answer.header("content-type")
    );
    let scripts = Regex::new(r"(?i)<script\b[^>]*>").unwrap();
    for tag in scripts.find_iter(&answer.body) {
        assert!(tag.as_str().contains(" src="), "inline script: {tag:?}");
    }
    assert!(!answer.body.contains("style="), "a style attribute");
    assert!(
        !answer.body.to_lowercase().contains("<style"),
        "a style element"
    );
}

#[tokio::test]
async fn signing_in_with_the_admin_key_sets_a_strict_session_cookie() {
    let app = app().await;
    let signed = sign_in(&app, ADMIN_KEY, &[]).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(signed.header(LOCATION.as_str()), "/admin");
    let set = signed.header(SET_COOKIE.as_str()).to_string();
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin",
        "Max-Age=43200",
    ] {
        assert!(set.contains(part), "{set} lacks {part}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    assert!(!mentions(&signed, ADMIN_KEY), "the key came back");
    let cookie = signed.session_cookie();

    let page = get(&app, "/admin", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(NAV), "{}", page.body);
    for link in [
        r#"href="/admin""#,
        r#"href="/admin/gaps""#,
        r#"href="/admin/articles""#,
        r#"href="/admin/handoffs""#,
        r#"href="/admin?days=7""#,
    ] {
        assert!(page.body.contains(link), "no {link}");
    }
    assert!(page.body.contains("Signed in"));
    assert!(!page.body.contains(SIGN_IN_FORM));
    assert!(!mentions(&page, ADMIN_KEY));
    // A page renews the cookie: the session lasts 12 hours from its last use.
    assert!(
        page.header(SET_COOKIE.as_str())
            .starts_with(&format!("{cookie};")),
        "{}",
        page.header(SET_COOKIE.as_str())
    );
    assert!(
        get(&app, "/admin?days=90", Some(&cookie))
            .await
            .body
            .contains(r#"href="/admin?days=90" aria-current="true""#)
    );

    // A proxy's word is not taken unless the server trusts it.
    let untrusted = sign_in(&app, ADMIN_KEY, &[("x-forwarded-proto", "https")]).await;
    assert!(!untrusted.header(SET_COOKIE.as_str()).contains("Secure"));
}

#[tokio::test]
async fn the_cookie_is_secure_behind_a_trusted_https_proxy() {
    let app = app_with(Options {
        trust_forwarded_for: true,
        ..Options::default()
    })
    .await;
    let signed = sign_in(&app, ADMIN_KEY, &[("x-forwarded-proto", "https")]).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    let set = signed.header(SET_COOKIE.as_str());
    assert!(set.contains("; Secure"), "{set}");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    let plain = sign_in(&app, ADMIN_KEY, &[("x-forwarded-proto", "http")]).await;
    assert!(!plain.header(SET_COOKIE.as_str()).contains("Secure"));
}

#[tokio::test]
async fn agent_keys_and_wrong_keys_get_the_same_refusal() {
    let app = app().await;
    let agent = sign_in(&app, AGENT_KEY, &[]).await;
    let wrong = sign_in(&app, "not-a-key-at-all", &[]).await;
    let empty = sign_in(&app, "", &[]).await;
    assert_eq!(agent.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status, agent.status);
    assert_eq!(empty.status, agent.status);
    assert_eq!(agent.body, wrong.body, "which keys exist must not show");
    assert_eq!(agent.body, empty.body);
    assert!(agent.body.contains("That key is not an admin key."));
    assert!(agent.body.contains(SIGN_IN_FORM));
    for refused in [&agent, &wrong] {
        assert!(refused.headers.get(SET_COOKIE).is_none());
        assert_strict_page(refused);
    }
    assert!(!mentions(&agent, AGENT_KEY), "the key came back");
    assert!(!mentions(&wrong, "not-a-key-at-all"));
}

#[tokio::test]
async fn repeated_sign_ins_are_rate_limited_per_client() {
    let app = app_with(Options {
        trust_forwarded_for: true,
        ..Options::default()
    })
    .await;
    let from = |address: &'static str| [("x-forwarded-for", address)];
    for _ in 0..5 {
        let refused = sign_in(&app, "guess", &from("203.0.113.7")).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }
    let limited = sign_in(&app, "guess", &from("203.0.113.7")).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.header("retry-after").parse().expect("Retry-After");
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(limited.body.contains(SIGN_IN_FORM));
    assert_strict_page(&limited);
    // Even the right key waits: guessing must not go on.
    let right = sign_in(&app, ADMIN_KEY, &from("203.0.113.7")).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(right.headers.get(SET_COOKIE).is_none());
    // Another client is not affected.
    let other = sign_in(&app, ADMIN_KEY, &from("198.51.100.2")).await;
    assert_eq!(other.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn without_a_live_session_the_dashboard_is_the_sign_in_form() {
    let clock = rapport::analytics::Clock::default();
    let app = app_with(Options {
        clock: clock.clone(),
        ..Options::default()
    })
    .await;
    let anonymous = get(&app, "/admin", None).await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert!(anonymous.body.contains(SIGN_IN_FORM));
    assert!(anonymous.body.contains(r#"type="password" name="key""#));
    assert!(!anonymous.body.contains(NAV));
    assert!(!anonymous.body.contains("Signed in as"));
    assert!(!anonymous.body.contains("name=\"csrf\""));
    assert!(anonymous.headers.get(SET_COOKIE).is_none());

    let forged = format!("rapport_admin={}", "ab".repeat(32));
    let page = get(&app, "/admin", Some(&forged)).await;
    assert!(page.body.contains(SIGN_IN_FORM) && !page.body.contains(NAV));

    // 12 hours idle ends a session on the server.
    let cookie = sign_in(&app, ADMIN_KEY, &[]).await.session_cookie();
    clock.advance(Duration::from_secs(11 * 3600));
    assert!(get(&app, "/admin", Some(&cookie)).await.body.contains(NAV));
    clock.advance(Duration::from_secs(11 * 3600));
    assert!(
        get(&app, "/admin", Some(&cookie)).await.body.contains(NAV),
        "used 11 hours ago: still signed in"
    );
    clock.advance(Duration::from_secs(12 * 3600 + 1));
    let expired = get(&app, "/admin", Some(&cookie)).await;
    assert!(expired.body.contains(SIGN_IN_FORM) && !expired.body.contains(NAV));
    assert!(expired.headers.get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn signing_out_needs_the_token_and_ends_the_session_on_the_server() {
    let app = app().await;
    let cookie = sign_in(&app, ADMIN_KEY, &[]).await.session_cookie();
    let page = get(&app, "/admin", Some(&cookie)).await;
    let csrf = page.csrf();
    assert!(page.body.contains(r#"action="/admin/logout""#));

    for form in [
        String::new(),
        format!("csrf={}", "0".repeat(64)),
        "csrf=".into(),
    ] {
        let refused = post_form(&app, "/admin/logout", &form, Some(&cookie), &[]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "form {form:?}");
        assert_strict_page(&refused);
        assert!(
            get(&app, "/admin", Some(&cookie)).await.body.contains(NAV),
            "a refused sign-out leaves the session"
        );
    }
    // Another session's token is not this one's.
    let other = sign_in(&app, ADMIN_KEY, &[]).await.session_cookie();
    let other_csrf = get(&app, "/admin", Some(&other)).await.csrf();
    assert_ne!(other_csrf, csrf);
    let crossed = post_form(
        &app,
        "/admin/logout",
        &format!("csrf={other_csrf}"),
        Some(&cookie),
        &[],
    )
    .await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN);

    let out = post_form(
        &app,
        "/admin/logout",
        &format!("csrf={csrf}"),
        Some(&cookie),
        &[],
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.header(LOCATION.as_str()), "/admin");
    assert!(out.header(SET_COOKIE.as_str()).contains("Max-Age=0"));
    // The old cookie, replayed, opens nothing.
    let after = get(&app, "/admin", Some(&cookie)).await;
    assert!(after.body.contains(SIGN_IN_FORM) && !after.body.contains(NAV));
    let reports = get(&app, "/admin/csp-reports", Some(&cookie)).await;
    assert_eq!(reports.status, StatusCode::UNAUTHORIZED);
    // The other session goes on.
    assert!(get(&app, "/admin", Some(&other)).await.body.contains(NAV));
}

#[tokio::test]
async fn every_dashboard_page_has_a_strict_csp_and_no_inline_code() {
    let app = app().await;
    let anonymous = get(&app, "/admin", None).await;
    assert_strict_page(&anonymous);
    let cookie = sign_in(&app, ADMIN_KEY, &[]).await.session_cookie();
    let page = get(&app, "/admin?days=7", Some(&cookie)).await;
    assert_strict_page(&page);
    let forbidden = post_form(&app, "/admin/logout", "", Some(&cookie), &[]).await;
    assert_strict_page(&forbidden);

    // The stylesheet the pages name is served, cacheable, from here.
    let href =
        Regex::new(r#"<link rel="stylesheet" href="(/admin/assets/admin\.css\?v=[0-9a-f]+)""#)
            .unwrap();
    let css_path = href.captures(&page.body).expect("stylesheet link")[1].to_string();
    let css = get(&app, &css_path, None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
    assert!(css.header("cache-control").contains("max-age="));
    assert!(css.body.contains("prefers-color-scheme:dark"));
    assert!(css.body.contains(".chart .bar"));
}

#[tokio::test]
async fn csp_reports_are_accepted_and_listed_for_signed_in_admins() {
    let app = app().await;
    let client = browser();
    let report = |content_type: &'static str, body: Value| {
        client
            .post(format!("{}/admin/csp-report", app.base))
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
    };
    let one = json!({"csp-report": {
        "document-uri": "http://localhost/admin",
        "violated-directive": "script-src-elem",
        "blocked-uri": "inline"
    }});
    assert_eq!(
        report("application/csp-report", one)
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let batch = json!([
        {"type": "csp-violation", "body": {"blockedURL": "https://cdn.example/x.js"}},
        {"type": "csp-violation", "body": {"blockedURL": "inline"}}
    ]);
    assert_eq!(
        report("application/reports+json", batch)
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        report("text/plain", json!({})).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let huge = json!({"csp-report": {"x": "a".repeat(64 * 1024)}});
    assert_eq!(
        report("application/csp-report", huge)
            .await
            .unwrap()
            .status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let anonymous = get(&app, "/admin/csp-reports", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let agent = client
        .get(format!("{}/admin/csp-reports", app.base))
        .bearer_auth(AGENT_KEY)
        .send()
        .await
        .unwrap();
    assert_ne!(agent.status(), StatusCode::OK);

    let cookie = sign_in(&app, ADMIN_KEY, &[]).await.session_cookie();
    let listed = get(&app, "/admin/csp-reports", Some(&cookie)).await;
    assert_eq!(listed.status, StatusCode::OK);
    let listed: Value = serde_json::from_str(&listed.body).unwrap();
    assert_eq!(listed["count"], 3, "{listed}");
    assert_eq!(listed["reports"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        listed["reports"][0]["csp-report"]["violated-directive"],
        "script-src-elem"
    );
    assert_eq!(
        listed["reports"][1]["body"]["blockedURL"],
        "https://cdn.example/x.js"
    );
}
