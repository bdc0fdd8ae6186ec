//! The command line: `check`, `index`, `search`, and the writer lock.

use crate::helpers::{ADMIN_KEY, article, spawn_app, write_file};

use crate::helpers::rapport_command as rapport;

#[test]
fn check_lists_bad_files_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "ok.md", article("Fine", "", "Body").as_bytes());
    let out = rapport()
        .arg("check")
        .arg("--articles")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    write_file(dir.path(), "sub/bad.md", b"---\ntags: {a: 1}\n---\n");
    let out = rapport()
        .arg("check")
        .arg("--articles")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sub/bad.md: front matter: tags"),
        "{stdout}"
    );
}

#[test]
fn check_warns_once_per_unknown_access_value_and_the_flag_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c"] {
        let front_matter = "audience: ITPro\nvisibility: public\n";
        let text = article(name, front_matter, "Body");
        write_file(dir.path(), &format!("{name}.mdx"), text.as_bytes());
    }
    let out = rapport()
        .env_remove("RAPPORT_AUDIENCE_FIELD")
        .arg("check")
        .arg("--articles")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "a warning, not a problem: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("warning:").count(), 1, "{stdout}");
    assert!(
        stdout.contains("3 article(s) have `audience: ITPro`"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 articles checked"));

    let out = rapport()
        .arg("check")
        .arg("--articles")
        .arg(dir.path())
        .arg("--audience-field")
        .arg("visibility")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("warning"), "{stdout}");
}

#[test]
fn index_then_search_from_the_terminal() {
    let articles = tempfile::tempdir().unwrap();
    let index = tempfile::tempdir().unwrap();
    write_file(
        articles.path(),
        "pw.md",
        article("Reset your password", "", "Use the link.").as_bytes(),
    );
    let out = rapport()
        .args(["index", "--articles"])
        .arg(articles.path())
        .arg("--index")
        .arg(index.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 articles"),
        "{out:?}"
    );

    let out = rapport()
        .args(["search", "pasword", "--index"])
        .arg(index.path())
        .arg("--articles")
        .arg(articles.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Reset your password"),
        "{out:?}"
    );
}

#[tokio::test]
async fn index_command_refuses_while_a_server_holds_the_index() {
    let app = spawn_app(&[("a.md", &article("A", "", "B"))]).await;
    let out = rapport()
        .args(["index", "--articles"])
        .arg(app.articles.path())
        .arg("--index")
        .arg(app.index.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("locked by another writer"), "{stderr}");
}

#[tokio::test]
async fn report_prints_analytics_for_a_terminal() {
    let mut app = spawn_app(&[("a.md", &article("Refund policy", "", "Refunds."))]).await;
    app.search("refund").await;
    app.search("wombat").await;
    app.stop().await; // the final flush writes the events
    let out = rapport()
        .args(["report", "--since", "1d"])
        .arg("--data-dir")
        .arg(app.index.path().join("data"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("  searches "), "{stdout}");
    assert!(stdout.contains("wombat"), "{stdout}");

    let out = rapport()
        .args(["report", "--since", "soon"])
        .arg("--data-dir")
        .arg(app.index.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since \"soon\""));
}

// Two workers: the CLI blocks one while the server answers its --url calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_json_equals_the_apis_overview() {
    let app = spawn_app(&[("a.md", &article("Refund policy", "", "Refunds."))]).await;
    app.search("refund").await;
    app.search("wombat").await;
    app.search("wombatt").await;
    let (_, overview) = app
        .get_with_key("/api/v1/analytics/overview?days=7", Some(ADMIN_KEY))
        .await;
    let (_, gaps) = app
        .get_with_key("/api/v1/analytics/gaps?days=7&limit=10", Some(ADMIN_KEY))
        .await;
    let run = |extra: &[&str]| {
        let out = rapport()
            .args(["report", "--since", "7d", "--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let data_dir = app.index.path().join("data");
    let local = run(&["--data-dir", data_dir.to_str().unwrap()]);
    assert_eq!(local["overview"], overview);
    assert_eq!(local["gaps"], gaps);
    assert_eq!(local["gaps"][0]["count"], 2, "wombat and its typo: {gaps}");
    let remote = run(&["--url", &app.base, "--key", ADMIN_KEY]);
    assert_eq!(remote["overview"]["current"], overview["current"]);
    assert_eq!(remote["gaps"], gaps);

    let out = rapport()
        .args([
            "report",
            "--format",
            "csv",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("figure,current,previous,"), "{csv}");
    assert!(csv.contains("\nquery,count,no_results,"), "{csv}");
}

/// `rapport <command> --help` for every command, against the snapshots in
/// `tests/snapshots/cli/`: each command shows only its own flags, each with
/// a description. `RAPPORT_UPDATE_SNAPSHOTS=1` rewrites them after a
/// deliberate change (then read the diff).
#[test]
fn each_command_shows_only_its_own_flags() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/cli");
    let update = std::env::var_os("RAPPORT_UPDATE_SNAPSHOTS").is_some();
    let mut failures = Vec::new();
    for command in [
        None,
        Some("serve"),
        Some("index"),
        Some("search"),
        Some("check"),
        Some("report"),
        Some("hash-key"),
        Some("eval"),
        Some("db migrate"),
        Some("db status"),
        Some("db copy"),
    ] {
        let mut process = rapport();
        process
            .env("NO_COLOR", "1")
            .args(command.iter().flat_map(|c| c.split(' ')))
            .arg("--help");
        let out = process.output().unwrap();
        assert!(out.status.success(), "{command:?}: {out:?}");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(!help.contains('\x1b'), "colour in piped help: {help}");
        let file = dir.join(format!(
            "{}.txt",
            command.map_or("rapport".to_string(), |c| c.replace(' ', "-"))
        ));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, &help).unwrap();
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(help.as_str()) {
            failures.push(format!(
                "{} differs from `rapport {} --help`:\n{help}",
                file.display(),
                command.unwrap_or("")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(RAPPORT_UPDATE_SNAPSHOTS=1 rewrites the snapshots)",
        failures.join("\n")
    );
}

#[test]
fn serve_port_points_at_addr() {
    let out = rapport()
        .args(["serve", "--port", "9000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--addr 127.0.0.1:9000"), "{stderr}");
}

#[test]
fn search_output_has_no_colour_codes_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        &dir.path().join("articles"),
        "reset.md",
        article("Reset your password", "", "Click reset password.").as_bytes(),
    );
    let folders = |command: &str| {
        let mut process = rapport();
        process
            .arg(command)
            .arg("--articles")
            .arg(dir.path().join("articles"))
            .arg("--index")
            .arg(dir.path().join("index"))
            .env_remove("NO_COLOR");
        process
    };
    assert!(folders("index").output().unwrap().status.success());
    let out = folders("search").arg("password").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Reset your password"), "{stdout}");
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
}
