//! The support lead's dashboard over real traffic: figures that agree with
//! the JSON reports, and a real browser signing in and reading every page
//! in light and dark mode at desktop and phone widths, with no CSP
//! violation on the way.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use super::browser::Browser;
use super::helpers::{ADMIN_KEY, AGENT_KEY, TestApp, encode, spawn_bundled};

async fn search(app: &TestApp, q: &str, session: &str) -> Value {
    let (status, body) = app
        .get(&format!(
            "/api/v1/search?q={}&session_id={session}",
            encode(q)
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Customers on the bundled help center: searches that find an article and
/// are clicked, searches that find nothing (one of them typed three ways),
/// bot questions voted not helpful and handed off to a person, claimed and
/// closed by an agent, and a rating.
async fn traffic(app: &TestApp) {
    for (n, q) in ["refund", "export invoices", "change plan", "refund"]
        .iter()
        .enumerate()
    {
        let body = search(app, q, &format!("found-{n}")).await;
        let id = body["hits"][0]["id"].as_str().expect("a hit").to_string();
        let query_id = body["query_id"].as_str().expect("query id").to_string();
        let (status, _) = app
            .post(
                "/api/v1/feedback",
                None,
                &json!({"query_id": query_id, "article_id": id, "event": "click"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    for (n, q) in [
        "kubernetes helm",
        "kubernetse helm",
        "Kubernetes Helm?",
        "quantum teleportation",
    ]
    .iter()
    .enumerate()
    {
        let body = search(app, q, &format!("missing-{n}")).await;
        assert_eq!(body["total"], 0, "{q} should find nothing: {body}");
    }
    for n in 0..3 {
        let session = format!("chat-{n}");
        let (status, answered) = app
            .post(
                "/api/v1/answer",
                None,
                &json!({"question": "why was my card declined twice", "session_id": session}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answered}");
        if let Some(article) = answered["answer"]["article_id"].as_str() {
            let (status, _) = app
                .post(
                    "/api/v1/feedback",
                    None,
                    &json!({"query_id": answered["query_id"], "article_id": article, "event": "not_helpful"}),
                )
                .await;
            assert_eq!(status, StatusCode::ACCEPTED);
        }
        let (status, made) = app
            .post(
                &format!("/api/v1/sessions/{session}/handoff"),
                None,
                &json!({"message": "still declined"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        if n < 2 {
            let id = made["handoff_id"].as_str().expect("handoff id");
            let (status, _) = app
                .post(
                    &format!("/api/v1/handoffs/{id}/claim"),
                    Some(AGENT_KEY),
                    &json!({}),
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            let (status, _) = app
                .post(
                    &format!("/api/v1/handoffs/{id}/close"),
                    Some(AGENT_KEY),
                    &json!({"resolution": "solved"}),
                )
                .await;
            assert_eq!(status, StatusCode::OK);
        }
        let (status, _) = app
            .post(
                &format!("/api/v1/sessions/{session}/rating"),
                None,
                &json!({"score": 2 + n}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// Signs in with the admin key over plain HTTP; the session cookie.
async fn sign_in(app: &TestApp) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = client
        .post(format!("{}/admin/login", app.base))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!("key={}", encode(ADMIN_KEY)))
        .send()
        .await
        .expect("sign-in");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/admin");
    let cookie = response.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii cookie");
    cookie.split(';').next().expect("name=value").to_string()
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("page");
    let status = response.status();
    let kind = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, kind, response.text().await.expect("body"))
}

/// The overview's CSV row for a figure: (this period, previous period).
fn figure(csv: &str, name: &str) -> (String, String) {
    let row = csv
        .lines()
        .find(|l| l.starts_with(&format!("{name},")))
        .unwrap_or_else(|| panic!("no {name} row in\n{csv}"));
    let cells: Vec<&str> = row.split(',').collect();
    (cells[1].to_string(), cells[2].to_string())
}

#[tokio::test]
async fn the_dashboard_shows_what_the_reports_say() {
    let app = spawn_bundled().await;
    traffic(&app).await;
    let cookie = sign_in(&app).await;

    // The overview's figures are the JSON summary's for the same 30 days.
    let (status, kind, csv) = page(&app, &cookie, "/admin?days=30&format=csv").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind, "text/csv; charset=utf-8");
    let (status, summary) = app
        .get_with_key("/api/v1/analytics/summary", Some(ADMIN_KEY))
        .await;
    assert_eq!(status, StatusCode::OK);
    let as_cell = |v: &Value| match v {
        Value::Null => String::new(),
        v => format!("{}", v.as_f64().expect("a number")),
    };
    for (name, json) in [
        ("searches", &summary["searches"]),
        ("sessions", &summary["sessions"]),
        ("self_service_rate", &summary["self_service_rate"]),
        ("handoffs", &summary["handoffs"]["created"]),
        ("csat_satisfied_rate", &summary["csat"]["satisfied_rate"]),
        ("zero_result_rate", &summary["zero_result_rate"]),
        ("answer_rate", &summary["bot_answer_rate"]),
        (
            "median_wait_seconds",
            &summary["handoff_wait_seconds"]["median"],
        ),
    ] {
        assert_eq!(figure(&csv, name).0, as_cell(json), "{name}");
    }
    assert_eq!(figure(&csv, "handoffs").0, "3");
    assert_eq!(figure(&csv, "searches").0, "8");
    assert_eq!(
        figure(&csv, "searches").1,
        "0",
        "nothing happened the month before"
    );

    // The typo'd and the clean wording are one gap, with both wordings.
    let (status, _, html) = page(&app, &cookie, "/admin/gaps?days=7").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("kubernetes helm"), "{html}");
    assert!(
        html.contains("kubernetse helm"),
        "the typo is an example wording"
    );
    let (_, _, gaps) = page(&app, &cookie, "/admin/gaps?days=7&format=csv").await;
    let kubernetes: Vec<&str> = gaps
        .lines()
        .filter(|l| l.to_lowercase().contains("kubernetes"))
        .collect();
    assert_eq!(kubernetes.len(), 1, "one group for three wordings:\n{gaps}");
    let cells: Vec<&str> = kubernetes[0].split(',').collect();
    assert_eq!(
        (cells[1], cells[2]),
        ("3", "3"),
        "three times, three without a result: {}",
        kubernetes[0]
    );

    // Hand-offs: three today, two solved, one still waiting.
    let (_, _, handoffs) = page(&app, &cookie, "/admin/handoffs?format=csv").await;
    assert!(handoffs.contains("outcome,solved,2"), "{handoffs}");
    assert!(handoffs.contains("outcome,waiting,1"), "{handoffs}");

    // The API takes the dashboard session in place of the admin key.
    let (status, kind, api_gaps) =
        page(&app, &cookie, "/api/v1/analytics/gaps?days=7&format=csv").await;
    assert_eq!(status, StatusCode::OK, "{api_gaps}");
    assert_eq!(kind, "text/csv; charset=utf-8");
    assert_eq!(api_gaps, gaps, "the page's CSV is the API's");
    let (status, _, _) = page(&app, "rapport_admin=forged", "/api/v1/analytics/gaps").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Without the cookie: the sign-in form, none of the figures.
    let (status, _, html) = page(&app, "rapport_admin=forged", "/admin/gaps").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("name=\"key\""));
    assert!(!html.contains("kubernetes"));
    let (_, kind, _) = page(&app, "rapport_admin=forged", "/admin?format=csv").await;
    assert!(!kind.starts_with("text/csv"), "no CSV without a session");
}

async fn csp_reports(browser: &Browser, app: &TestApp) -> Value {
    browser
        .goto(&format!("{}/admin/csp-reports", app.base))
        .await;
    browser
        .js("return JSON.parse(document.body.innerText)")
        .await
}

#[tokio::test]
async fn a_lead_signs_in_and_reads_every_page_in_a_browser() {
    let app = spawn_bundled().await;
    traffic(&app).await;
    for (width, height, dark, name) in [
        (1280, 900, false, "desktop"),
        (1280, 900, true, "desktop-dark"),
        (390, 844, false, "phone"),
        (390, 844, true, "phone-dark"),
    ] {
        let Some(browser) = Browser::start_with(width, height, dark).await else {
            return;
        };
        assert_eq!(
            browser
                .js("return matchMedia('(prefers-color-scheme: dark)').matches")
                .await,
            dark
        );
        browser.goto(&format!("{}/admin", app.base)).await;
        browser.type_into("input[name=key]", ADMIN_KEY).await;
        browser.click("form.signin button[type=submit]").await;
        browser
            .until(
                "the overview",
                "return document.querySelector('div.cards .card h2')?.textContent",
            )
            .await;
        for (path, page) in [
            ("/admin", "overview"),
            ("/admin/gaps", "gaps"),
            ("/admin/articles", "articles"),
            ("/admin/handoffs", "handoffs"),
        ] {
            browser.goto(&format!("{}{path}?days=7", app.base)).await;
            let heading = browser
                .until(
                    "the page",
                    "return document.querySelector('main h1')?.textContent",
                )
                .await;
            assert!(heading.as_str().is_some_and(|h| !h.is_empty()));
            // What the CSP forbids is also absent from the markup.
            let inline = browser
                .js("return document.querySelectorAll('[style], script:not([src])').length")
                .await;
            assert_eq!(inline, 0, "{path}: inline styles or scripts");
            // Every chart can be read without seeing it.
            let unlabelled = browser
                .js("return [...document.querySelectorAll('svg')].filter(s => !s.getAttribute('aria-label')).length")
                .await;
            assert_eq!(unlabelled, 0, "{path}: a chart without a label");
            browser
                .screenshot(&format!("dashboard-{page}-{name}"))
                .await;
        }
        // Reports are sent asynchronously: give them a moment, then read
        // them as a page (the dashboard's CSP allows no fetch()).
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let reports = csp_reports(&browser, &app).await;
        assert_eq!(reports["count"], 0, "CSP violations: {reports}");
        if name == "phone-dark" {
            // The control, last: a real violation is reported, so the zeros
            // above meant none.
            browser.goto(&format!("{}/admin", app.base)).await;
            browser
                .js("document.body.setAttribute('style', 'color: red'); return true")
                .await;
            let deadline = std::time::Instant::now() + super::helpers::DEADLINE;
            while csp_reports(&browser, &app).await["count"] == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the violation was never reported"
                );
                browser.goto(&format!("{}/admin", app.base)).await;
                browser
                    .js("document.body.setAttribute('style', 'color: red'); return true")
                    .await;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
        browser.close().await;
    }
}
