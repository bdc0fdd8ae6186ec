//! A real headless Chromium driven over WebDriver (chromedriver on a free
//! port, a fresh profile per test).
//!
//! Missing browser packages: in CI (`CI` set) a test failure with a clear
//! message; on a developer's machine one line saying the browser tests were
//! skipped and how to run them, so `cargo test` passes on a fresh machine
//! with only Rust installed.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;

use super::helpers::DEADLINE;

/// The flags the portal's browser tests must use (see the issue).
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
];

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

fn find_program(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(path) = std::env::var(env) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    candidates.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The packages, and how to point the tests at other binaries.
const INSTALL: &str = "apt-get install -y chromium chromium-driver, or set \
                       RAPPORT_CHROMIUM / RAPPORT_CHROMEDRIVER to their paths";

/// `None` (after one line on the terminal) when the browser is missing
/// outside CI; a panic in CI, where nothing may skip.
fn missing(what: &str) -> Option<PathBuf> {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{what} not found, and CI is set: the portal's browser tests must run ({INSTALL})");
    }
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        // Straight to stderr: libtest captures `eprintln!` of passing tests.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the portal's browser tests: {what} not found ({INSTALL}; CI=1 makes this a failure)"
        );
    });
    None
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a `width`×`height`
    /// window; `None` when they are not installed and this is not CI.
    pub async fn start(width: u32, height: u32) -> Option<Browser> {
        Browser::start_with(width, height, false).await
    }

    /// [`Browser::start`] with the page preferring a dark colour scheme
    /// when `dark` (what `prefers-color-scheme: dark` matches).
    pub async fn start_with(width: u32, height: u32, dark: bool) -> Option<Browser> {
        let chromium = find_program("RAPPORT_CHROMIUM", &["chromium", "chromium-browser"])
            .or_else(|| missing("chromium"))?;
        let chromedriver = find_program("RAPPORT_CHROMEDRIVER", &["chromedriver"])
            .or_else(|| missing("chromedriver"))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so the browser it starts can be ended with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let profile = tempfile::tempdir().expect("temp dir");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={width},{height}"));
        if dark {
            // Blink's PreferredColorScheme: 0 is dark.
            args.push("--blink-settings=preferredColorScheme=0".into());
            args.push("--force-dark-mode".into());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium, "args": args}),
        );
        let webdriver = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let mut driver = driver;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&webdriver)
                .await
            {
                Ok(client) => break client,
                Err(error) => {
                    if started.elapsed() > Duration::from_secs(30) {
                        let _ = driver.kill();
                        panic!("chromedriver/chromium did not start a session: {error}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        Some(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("page loads");
    }

    /// Runs `script` (a function body) and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` until it returns something truthy; panics with the
    /// last value (and the page's text) at the deadline.
    pub async fn until(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.js(script).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(_) => true,
            };
            if truthy {
                return value;
            }
            if started.elapsed() > DEADLINE {
                let text = self.js("return document.body.innerText").await;
                panic!("timed out waiting for {what}: last {value}\npage text:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Sends `keys` to whatever has the focus, as a keyboard user would
    /// (WebDriver codes: "\u{E004}" Tab, "\u{E008}\u{E004}" Shift+Tab,
    /// "\u{E00C}" Escape, "\u{E007}" Enter).
    pub async fn press(&self, keys: &str) {
        self.client
            .active_element()
            .await
            .expect("a focused element")
            .send_keys(keys)
            .await
            .unwrap_or_else(|e| panic!("pressing {keys:?}: {e}"));
    }

    /// Saves a PNG of the page into `$RAPPORT_SCREENSHOTS/{name}.png` when
    /// that variable is set (how the README's screenshots are made).
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("RAPPORT_SCREENSHOTS") else {
            return;
        };
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // Drop ends chromedriver and anything left in its process group.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Also after a failed test: end chromedriver and the Chromium it
        // started (same process group), not just chromedriver.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
