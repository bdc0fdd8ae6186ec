//! Hostile or half-written files: deeply nested Markdown, binary content,
//! files caught while empty. Each is refused (or flattened) with its reason,
//! and never holds up other articles.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{
    ADMIN_KEY, DEADLINE, TestApp, article, hit_ids, spawn_app, total, write_file,
};

/// The admin status's entry for `path` among the skipped files.
fn skipped<'a>(status: &'a Value, path: &str) -> Option<&'a Value> {
    status["skipped"]
        .as_array()?
        .iter()
        .find(|s| s["path"] == path)
}

/// Waits until the admin status lists `path` with a reason containing `reason`.
async fn wait_until_skipped(app: &TestApp, path: &str, reason: &str) -> Value {
    let status = app
        .wait_for("/api/v1/status", Some(ADMIN_KEY), |_, body| {
            skipped(body, path)
                .and_then(|s| s["reason"].as_str())
                .is_some_and(|r| r.contains(reason))
        })
        .await;
    skipped(&status, path).cloned().unwrap_or(Value::Null)
}

/// 120 KB shapes that took the old indexer from seconds to minutes each.
/// Each starts deep, so a read caught mid-write is refused too.
fn deeply_nested_bodies() -> Vec<String> {
    vec![
        "> ".repeat(60_000),
        format!("{} deep\n{}", ">".repeat(50_000), "lazy\n".repeat(14_000)),
        "- ".repeat(60_000),
        "<div>".repeat(24_000),
        ">".repeat(50_000),
    ]
}

#[tokio::test]
async fn a_deeply_nested_file_being_written_does_not_hold_up_other_edits() {
    let app = spawn_app(&[
        ("other.md", &article("Other article", "", "About otters.")),
        ("deep.md", &article("Deep", "", "Nested normally.")),
    ])
    .await;
    let deep = app.path("deep.md");
    // Rewritten again and again while the other article is edited.
    let writer = std::thread::spawn(move || {
        for round in 0..3 {
            for body in deeply_nested_bodies() {
                std::fs::write(&deep, format!("{body}\n\nround {round}")).expect("write deep.md");
                std::thread::sleep(Duration::from_millis(40));
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;

    app.write(
        "other.md",
        &article("Other article", "", "Now about beavers."),
    );
    let edited = Instant::now();
    app.wait_for_search("beavers", |b| hit_ids(b) == vec!["other"])
        .await;
    let took = edited.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the edit took {took:?} to become searchable"
    );

    tokio::task::spawn_blocking(move || writer.join().expect("writer thread"))
        .await
        .expect("joined");
    // The last version written opens 50,000 levels on its first line.
    let entry = wait_until_skipped(
        &app,
        "deep.md",
        "too deeply nested: line 1 opens 50000 levels",
    )
    .await;
    // The last good version stays; none of the nested text got in.
    assert_eq!(entry["serving_last_good_version"], true, "{entry}");
    assert_eq!(hit_ids(&app.search("nested normally").await), vec!["deep"]);
    assert_eq!(total(&app.search("round").await), 0);
    let (_, status) = app.get_with_key("/api/v1/status", Some(ADMIN_KEY)).await;
    assert_eq!(status["articles"], 2, "{status}");
}

#[tokio::test]
async fn binary_files_are_refused_with_the_offset_of_their_first_nul() {
    let app = spawn_app(&[("good.md", &article("Good", "", "Text."))]).await;
    app.write_bytes("zeros.md", &[0u8; 4096]);
    app.write_bytes("image.md", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    wait_until_skipped(
        &app,
        "zeros.md",
        "binary content, not text (NUL byte at offset 0)",
    )
    .await;
    wait_until_skipped(
        &app,
        "image.md",
        "binary content, not text (NUL byte at offset 8)",
    )
    .await;
    let (_, status) = app.get_with_key("/api/v1/status", Some(ADMIN_KEY)).await;
    assert_eq!(status["articles"], 1, "{status}");
    let (code, _) = app.get("/api/v1/articles/zeros").await;
    assert_eq!(code, reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_file_caught_empty_keeps_its_last_good_version_until_written() {
    let app = spawn_app(&[(
        "guide.md",
        &article("Wombat guide", "", "All about wombats."),
    )])
    .await;
    // Truncated, as an editor or a copy does before writing.
    std::fs::File::create(app.path("guide.md")).expect("truncate");
    let entry = wait_until_skipped(&app, "guide.md", "empty file").await;
    assert_eq!(entry["serving_last_good_version"], true, "{entry}");
    assert_eq!(hit_ids(&app.search("wombats").await), vec!["guide"]);
    let (code, body) = app.get("/api/v1/articles/guide").await;
    assert_eq!(code, reqwest::StatusCode::OK);
    assert!(body.to_string().contains("wombats"), "{body}");

    app.write(
        "guide.md",
        &article("Quokka guide", "", "All about quokkas."),
    );
    app.wait_for_search("quokkas", |b| hit_ids(b) == vec!["guide"])
        .await;
    app.wait_for("/api/v1/status", Some(ADMIN_KEY), |_, body| {
        skipped(body, "guide.md").is_none()
    })
    .await;
    assert_eq!(total(&app.search("wombats").await), 0);

    // A new file that is still empty is not an article at all.
    app.write("new.md", "");
    let entry = wait_until_skipped(&app, "new.md", "empty file").await;
    assert_eq!(entry["serving_last_good_version"], false, "{entry}");
    let (_, status) = app.get_with_key("/api/v1/status", Some(ADMIN_KEY)).await;
    assert_eq!(status["articles"], 1, "{status}");
}

#[test]
fn check_notes_flattened_files_and_refuses_hostile_ones() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "ok.md", article("Fine", "", "Body").as_bytes());
    let flattened = article("Quoted", "", &format!("{}deep", "> ".repeat(40)));
    write_file(dir.path(), "flat.md", flattened.as_bytes());
    write_file(dir.path(), "deep.md", ">".repeat(50_000).as_bytes());
    write_file(dir.path(), "zeros.md", &[0u8; 16]);
    write_file(dir.path(), "empty.md", b"");
    #[cfg(unix)]
    std::os::unix::fs::symlink(".", dir.path().join("loop")).unwrap();

    let started = Instant::now();
    let out = crate::helpers::rapport_command()
        .arg("check")
        .arg("--articles")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(started.elapsed() < DEADLINE);
    assert!(!out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "flat.md: note: nested 40 levels deep; levels beyond 32 are shown flattened",
        "deep.md: too deeply nested: line 1 opens 50000 levels",
        "zeros.md: binary content, not text (NUL byte at offset 0)",
        "empty.md: empty file",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in {stdout}");
    }
    assert!(
        !stdout.contains("loop/"),
        "folder links are not followed: {stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("2 articles checked, 3 problems"),
        "{stderr}"
    );
}
