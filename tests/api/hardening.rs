//! Regression tests for the holes an attack on a running server found
//! (issue 21): what anonymous callers learn from diagnostics, rate-limit
//! buckets, slow and idle connections, and the bodies of low-level errors.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ADMIN_KEY, AGENT_KEY, Options, TestApp, article, spawn_app, spawn_app_with};

/// Sends `request` as raw bytes and reads until the server closes the
/// connection or `wait` passes; returns what came back and when the
/// connection closed (`None`: still open).
async fn raw(base: &str, request: &[u8], wait: Duration) -> (String, Option<Duration>) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match tokio::time::timeout_at((started + wait).into(), stream.read(&mut buf)).await {
            Err(_) => break None,
            Ok(Ok(0)) | Ok(Err(_)) => break Some(started.elapsed()),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    };
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

/// The status code and JSON body of a raw HTTP/1.1 response.
fn parse_response(text: &str) -> (u16, Value) {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    (status, body)
}

/// A server over one public article, with `options`.
async fn one_article(options: Options) -> TestApp {
    spawn_app_with(
        &[("a.md", &article("Refunds", "", "Refund text."))],
        options,
    )
    .await
}

#[tokio::test]
async fn anonymous_status_names_no_file_and_quotes_no_text() {
    let secret = "Quarterly retention playbook";
    let app = spawn_app(&[
        ("public.md", &article("Refunds", "", "Refund text.")),
        (
            "internal/ok.md",
            &article("Escalations", "audience: internal\n", "Agents only."),
        ),
        (
            "internal/broken.md",
            &format!("---\naudience: internal\ntitle: {secret}\nsummary: [unclosed\n---\nBody.\n"),
        ),
    ])
    .await;
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/passwd", app.path("passwd.md")).unwrap();
    let admin = app
        .wait_for("/api/v1/status", Some(ADMIN_KEY), |_, body| {
            body["skipped"].as_array().is_some_and(|s| s.len() >= 2)
        })
        .await;
    let detail = admin.to_string();
    assert!(detail.contains("internal/broken.md"), "{detail}");
    assert_eq!(admin["internal_articles"], 1, "{admin}");
    let (_, agent) = app.get_as_agent("/api/v1/status").await;
    assert!(agent.to_string().contains("internal/broken.md"), "{agent}");

    let (status, anonymous) = app.get("/api/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    let text = anonymous.to_string();
    for leak in [
        "broken",
        "Quarterly",
        "unclosed",
        "/etc/passwd",
        "passwd",
        "internal_articles",
        "skipped\":[",
        "unrecognized_audience",
    ] {
        assert!(!text.contains(leak), "{leak:?} in {text}");
    }
    assert_eq!(
        anonymous["articles"], 1,
        "public articles only: {anonymous}"
    );
    assert_eq!(anonymous["skipped_files"], 2, "{anonymous}");
    assert_eq!(anonymous["ready"], true);

    // Metrics count every article, internal ones too: admin key only.
    let (status, body) = app.get("/metrics").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = app.get_as_agent("/metrics").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // A key we don't know is refused, not downgraded to the anonymous view.
    let (status, body) = app.get_with_key("/api/v1/status", Some("not-a-key")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn random_authorization_headers_share_the_callers_bucket() {
    let app = one_article(Options {
        rate_limit: (1, 5),
        ..Options::default()
    })
    .await;
    // The portal never looks at the header; the API rejects unknown keys.
    // Either way, the caller's address is the one bucket both paths share.
    let mut allowed = 0;
    for i in 0..40 {
        let path = ["/", "/api/v1/search?q=refund"][i % 2];
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .header("authorization", format!("Bearer random-{i}"))
            .send()
            .await
            .unwrap();
        if response.status() != StatusCode::TOO_MANY_REQUESTS {
            allowed += 1;
        }
    }
    assert!(allowed <= 8, "{allowed} of 40 allowed over a burst of 5");
    // A valid key written with other spacing is the same key, one bucket.
    let mut allowed = 0;
    for i in 0..30 {
        let spaces = " ".repeat(i % 4);
        let response = app
            .client
            .get(format!("{}/api/v1/search?q=refund", app.base))
            .header(
                "authorization",
                format!("Bearer {spaces}{AGENT_KEY}{spaces}"),
            )
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            allowed += 1;
        }
    }
    assert!(
        (5..=8).contains(&allowed),
        "{allowed} of 30 allowed for one key"
    );
}

#[tokio::test]
async fn half_sent_requests_and_idle_connections_are_closed() {
    let app = one_article(Options {
        connections: (Duration::from_secs(1), Duration::from_secs(2), 768),
        ..Options::default()
    })
    .await;
    // Headers that never finish.
    let (_, closed) = raw(
        &app.base,
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        Duration::from_secs(10),
    )
    .await;
    let closed = closed.expect("a half-sent request is closed");
    assert!(
        closed < Duration::from_millis(2500),
        "closed after {closed:?}"
    );

    // A finished request, then silence on a keep-alive connection.
    let (response, closed) = raw(
        &app.base,
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let closed = closed.expect("an idle connection is closed");
    assert!(
        closed >= Duration::from_millis(1500) && closed < Duration::from_secs(5),
        "idle for {closed:?}"
    );

    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rapport_http_open_connections"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"rapport_http_connections_closed_total{reason="header_timeout"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"rapport_http_connections_closed_total{reason="idle"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn connections_over_the_cap_wait_for_a_free_slot() {
    let mut app = one_article(Options {
        connections: (Duration::from_secs(30), Duration::from_secs(30), 2),
        ..Options::default()
    })
    .await;
    // The test's pooled client connection would hold a slot: drop it, and
    // wait until only the asking connection is open.
    app.client = reqwest::Client::new();
    let addr = app.base.trim_start_matches("http://").to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (metrics, _) = raw(
            &app.base,
            format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\nConnection: close\r\n\r\n").as_bytes(),
            Duration::from_secs(5),
        )
        .await;
        if metrics.contains("rapport_http_open_connections 1\n") {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("served within the cap")
            .unwrap();
        assert!(n > 0);
        held.push(stream);
    }
    // With both slots held, a new connection gets no answer until one frees.
    let third = tokio::spawn({
        let addr = addr.clone();
        async move {
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let started = Instant::now();
            let mut out = Vec::new();
            let _ = stream.read_to_end(&mut out).await;
            (
                started.elapsed(),
                String::from_utf8_lossy(&out).into_owned(),
            )
        }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !third.is_finished(),
        "the third connection was served at once"
    );
    held.clear(); // closing both frees their slots
    let (waited, response) = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(waited >= Duration::from_millis(700), "{waited:?}");
}

#[tokio::test]
async fn a_body_that_never_arrives_is_408_with_the_json_error() {
    let app = one_article(Options {
        request_timeout: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let (response, _) = raw(
        &app.base,
        b"POST /api/v1/answer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"question\":",
        Duration::from_secs(5),
    )
    .await;
    let (status, body) = parse_response(&response);
    assert_eq!(status, 408, "{response}");
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
}

#[tokio::test]
async fn errors_below_the_handlers_carry_the_json_error_body() {
    let app = one_article(Options::default()).await;
    let long_uri = format!(
        "GET /api/v1/search?q={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let many_headers = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..150)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let cases: [(&[u8], u16, &str); 4] = [
        (long_uri.as_bytes(), 414, "uri_too_long"),
        (many_headers.as_bytes(), 431, "headers_too_large"),
        (
            b"GET /api/v1/se\0arch HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "bad_request",
        ),
        (
            b"POST /api/v1/answer HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            400,
            "bad_request",
        ),
    ];
    for (request, expected, code) in cases {
        let (response, _) = raw(&app.base, request, Duration::from_secs(5)).await;
        let (status, body) = parse_response(&response);
        assert_eq!(status, expected, "{response}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn odd_ids_and_methods_get_the_documented_error_shapes() {
    let app = one_article(Options::default()).await;
    // Overlong UTF-8 for `.` and `/`: not an id, so the portal's not-found page.
    for path in ["/articles/%c0%ae%c0%ae/etc/passwd", "/categories/%c0%af"] {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            body.contains("<html") || body.contains("<!DOCTYPE"),
            "{path}: {body}"
        );
    }
    // Probes answer a wrong method in the API's JSON error shape too.
    for path in ["/health", "/ready", "/metrics", "/openapi.json"] {
        let (status, body) = app.post(path, None, &serde_json::json!({})).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}: {body}");
        assert_eq!(
            body["error"]["code"], "method_not_allowed",
            "{path}: {body}"
        );
    }
}
