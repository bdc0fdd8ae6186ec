//! Typed, layered configuration: flags > `RAPPORT_…` env vars > config file >
//! defaults. The defaults serve the bundled `articles/` folder, so `rapport
//! serve` needs no configuration at all.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::article::{ArticleRules, CategoryFromFolder, Selection};

pub const DEFAULT_CONFIG_FILE: &str = "rapport.toml";
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_ARTICLE_BYTES: u64 = 2 * 1024 * 1024;
pub const DEFAULT_DEBOUNCE_MS: u64 = 50;
pub const DEFAULT_SESSION_RETENTION_DAYS: u64 = 7;
pub const DEFAULT_CUSTOMER_NOT_HELPFUL_DAYS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid value for {name}: {value:?} ({reason})")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub articles_dir: PathBuf,
    pub index_dir: PathBuf,
    pub addr: SocketAddr,
    pub max_article_bytes: u64,
    /// Bearer keys that may see internal articles.
    pub agent_keys: Vec<String>,
    /// How long the watcher waits for a burst of file events to settle.
    pub debounce: Duration,
    /// Hand-off rules and tone lexicon; `None` = the built-in defaults.
    pub handoff_file: Option<PathBuf>,
    /// Bearer keys for analytics and operations (they may do what agents do).
    pub admin_keys: Vec<String>,
    /// Where the analytics database lives.
    pub data_dir: PathBuf,
    /// Record analytics at all.
    pub analytics: bool,
    pub retention_days: u64,
    /// How long session timelines are kept (hand-off to agents).
    pub session_retention_days: u64,
    /// How long a customer's "not helpful" keeps an article out of their answers.
    pub customer_not_helpful_days: u64,
    /// The time session timelines are stamped and pruned with (tests move it).
    pub clock: crate::analytics::Clock,
    /// Let helpful/unhelpful feedback nudge ranking (bounded).
    pub feedback_ranking: bool,
    /// Articles whose `updated` date is older than this are flagged for review.
    pub review_after_days: u64,
    /// Sustained requests per second per client (0 turns rate limiting off).
    pub rate_limit_per_second: u32,
    /// Requests a client may send at once before the rate applies.
    pub rate_limit_burst: u32,
    /// Believe `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    /// A request's headers must arrive within this time (slow clients).
    pub header_read_timeout: Duration,
    /// Keep-alive connections with nothing in flight are closed after this.
    pub idle_timeout: Duration,
    /// HTTP connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Origins allowed to call the API from a browser (CORS); empty = none.
    pub cors_origins: Vec<String>,
    /// Scan the folder this often instead of relying on OS events (network mounts).
    pub poll_interval: Option<Duration>,
    /// Full reconcile this often, as a safety net for missed events (0 = never).
    pub reconcile_interval: Duration,
    /// The access field and category rules for this help center's conventions.
    pub article_rules: ArticleRules,
    /// The help portal's look: product name, accent colour, where "contact
    /// support" leads.
    pub portal: PortalSettings,
    /// The sentence-embedding model (`--model`, `RAPPORT_MODEL`, `[semantic] model`).
    pub model: ModelChoice,
    /// Names agents see each other by (who claimed a hand-off), per key in
    /// `agent_keys` / `admin_keys` order; `None`: "agent 1", "admin 1", ….
    pub agent_labels: Vec<Option<String>>,
    pub admin_labels: Vec<Option<String>>,
    /// Where hand-off events are POSTed (`[handoff] webhook_url`); `None`: nowhere.
    pub webhook: Option<crate::handoff::outbox::Webhook>,
    /// A hand-off waiting this long without a claim counts as abandoned.
    pub handoff_abandon_after: Duration,
    /// Inbound message channels (`[channels.email]`, `.form`, `.social`).
    pub channels: ChannelSettings,
    /// Where state lives: `None` → SQLite in `data_dir`; a `postgres://`
    /// URL → PostgreSQL shared by every replica (`--database-url`,
    /// `RAPPORT_DATABASE_URL`, `[storage] database_url`).
    pub database_url: Option<String>,
    /// Analytics and feedback events held in memory while the database is
    /// unreachable (`[storage] buffer_events`); beyond it the oldest are
    /// dropped and counted.
    pub buffer_events: usize,
}

/// Events buffered while the database is down, by default: a few minutes
/// of a busy help center's traffic, a few tens of MiB at most.
pub const DEFAULT_BUFFER_EVENTS: usize = 100_000;

/// Below this confidence a message's reply always goes through an agent.
pub const DEFAULT_AUTO_REPLY_MIN_CONFIDENCE: f32 = 0.85;

/// What a team allows per message channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelSetting {
    /// Replies may go out without an agent (`auto_reply_ok`); off by default.
    pub auto_reply: bool,
    /// The confidence an auto-reply needs (besides no hand-off cue).
    pub auto_reply_min_confidence: f32,
}

impl Default for ChannelSetting {
    fn default() -> Self {
        ChannelSetting {
            auto_reply: false,
            auto_reply_min_confidence: DEFAULT_AUTO_REPLY_MIN_CONFIDENCE,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelSettings {
    /// Where the help portal is reachable (`https://help.example.com`):
    /// links in replies to messages are made absolute with it
    /// (`[channels] public_url`, `RAPPORT_PUBLIC_URL`). Without it they
    /// stay relative (`/articles/…`).
    pub public_url: Option<String>,
    pub email: ChannelSetting,
    pub form: ChannelSetting,
    pub social: ChannelSetting,
}

pub const DEFAULT_ABANDON_AFTER_MINUTES: u64 = 30;

pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Below the usual 1,024 open-file limit, leaving room for the index's files.
pub const DEFAULT_MAX_CONNECTIONS: usize = 768;

pub const DEFAULT_PORTAL_NAME: &str = "Help Center";
pub const DEFAULT_PORTAL_ACCENT: &str = "#2563eb";

#[derive(Debug, Clone, PartialEq)]
pub struct PortalSettings {
    /// Shown in the header and page titles.
    pub name: String,
    /// `#rgb` or `#rrggbb` only, so it can go into CSS unescaped.
    pub accent: String,
    /// A URL (`https:`, `http:` or `mailto:`) for "Contact support"; `None`
    /// shows the prompt without a link.
    pub support_url: Option<String>,
}

impl Default for PortalSettings {
    fn default() -> Self {
        PortalSettings {
            name: DEFAULT_PORTAL_NAME.to_string(),
            accent: DEFAULT_PORTAL_ACCENT.to_string(),
            support_url: None,
        }
    }
}

/// Accepts `#rgb` and `#rrggbb` colours.
pub fn valid_colour(value: &str) -> bool {
    value
        .strip_prefix('#')
        .is_some_and(|hex| matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

fn portal_settings(
    env: &impl Fn(&str) -> Option<String>,
    file: &FileConfig,
) -> Result<PortalSettings, ConfigError> {
    let name = env("RAPPORT_PORTAL_NAME")
        .or_else(|| file.portal_name.clone())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_PORTAL_NAME.to_string());
    let accent = env("RAPPORT_PORTAL_ACCENT")
        .or_else(|| file.portal_accent.clone())
        .unwrap_or_else(|| DEFAULT_PORTAL_ACCENT.to_string());
    let accent = accent.trim().to_ascii_lowercase();
    if !valid_colour(&accent) {
        return Err(ConfigError::Invalid {
            name: "portal_accent",
            value: accent,
            reason: "expected a #rgb or #rrggbb colour".into(),
        });
    }
    let support_url = env("RAPPORT_PORTAL_SUPPORT_URL")
        .or_else(|| file.portal_support_url.clone())
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    if let Some(url) = &support_url
        && !["https://", "http://", "mailto:"]
            .iter()
            .any(|scheme| url.to_ascii_lowercase().starts_with(scheme))
    {
        return Err(ConfigError::Invalid {
            name: "portal_support_url",
            value: url.clone(),
            reason: "expected an https:, http: or mailto: URL".into(),
        });
    }
    Ok(PortalSettings {
        name,
        accent,
        support_url,
    })
}

/// What flags and their env vars provide (clap merges those two).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub articles: Option<PathBuf>,
    pub index: Option<PathBuf>,
    pub addr: Option<String>,
    pub handoff: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    /// `--database-url` / `RAPPORT_DATABASE_URL`.
    pub database_url: Option<String>,
    pub poll_interval: Option<u64>,
    pub audience_field: Option<String>,
    /// `--model` / `RAPPORT_MODEL`: a model folder, or `off`.
    pub model: Option<String>,
}

/// Which sentence-embedding model semantic retrieval uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ModelChoice {
    /// Lexical only (tests, benchmarks; `--model off`).
    #[default]
    Off,
    /// `models/all-MiniLM-L6-v2` if it exists, else off (what `serve` does
    /// when nothing is configured, so a fetched model is simply picked up).
    Default,
    /// This folder; failing to load it is reported, and rapport serves lexically.
    Dir(PathBuf),
}

impl ModelChoice {
    fn parse(text: &str) -> ModelChoice {
        match text.trim() {
            "off" | "none" => ModelChoice::Off,
            "" | "default" => ModelChoice::Default,
            dir => ModelChoice::Dir(PathBuf::from(dir)),
        }
    }
}

/// `[semantic]` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelsFileConfig {
    public_url: Option<String>,
    email: Option<ChannelFileConfig>,
    form: Option<ChannelFileConfig>,
    social: Option<ChannelFileConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelFileConfig {
    auto_reply: Option<bool>,
    auto_reply_min_confidence: Option<f32>,
}

impl ChannelFileConfig {
    fn setting(table: Option<&Self>, name: &'static str) -> Result<ChannelSetting, ConfigError> {
        let defaults = ChannelSetting::default();
        let Some(table) = table else {
            return Ok(defaults);
        };
        let confidence = table
            .auto_reply_min_confidence
            .unwrap_or(defaults.auto_reply_min_confidence);
        if !(0.0..=1.0).contains(&confidence) {
            return Err(ConfigError::Invalid {
                name,
                value: confidence.to_string(),
                reason: "a confidence between 0 and 1".into(),
            });
        }
        Ok(ChannelSetting {
            auto_reply: table.auto_reply.unwrap_or(defaults.auto_reply),
            auto_reply_min_confidence: confidence,
        })
    }
}

/// `[storage]` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageFileConfig {
    database_url: Option<String>,
    buffer_events: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SemanticFileConfig {
    model: Option<String>,
}

/// `[handoff]` in the config file (`handoff = "file.toml"` is the older
/// spelling of `[handoff] rules = "file.toml"`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HandoffFileConfig {
    rules: Option<PathBuf>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    webhook_retry_initial_ms: Option<u64>,
    abandon_after_minutes: Option<u64>,
}

/// An API key in the config file: the key, or `{ key = "…", label = "Dana" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum KeyEntry {
    Key(String),
    Labelled { key: String, label: String },
}

fn split_entries(entries: Option<Vec<KeyEntry>>) -> (Option<Vec<String>>, Vec<Option<String>>) {
    let Some(entries) = entries else {
        return (None, Vec::new());
    };
    let (keys, labels) = entries
        .into_iter()
        .map(|entry| match entry {
            KeyEntry::Key(key) => (key, None),
            KeyEntry::Labelled { key, label } => {
                let label = label.trim().to_string();
                (key, (!label.is_empty()).then_some(label))
            }
        })
        .unzip();
    (Some(keys), labels)
}

/// The config file (`rapport.toml`); every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    articles: Option<PathBuf>,
    index: Option<PathBuf>,
    addr: Option<String>,
    max_article_bytes: Option<u64>,
    agent_keys: Option<Vec<KeyEntry>>,
    debounce_ms: Option<u64>,
    /// A path (the rules file) or the `[handoff]` table.
    handoff: Option<toml::Value>,
    admin_keys: Option<Vec<KeyEntry>>,
    data_dir: Option<PathBuf>,
    analytics: Option<bool>,
    retention_days: Option<u64>,
    session_retention_days: Option<u64>,
    customer_not_helpful_days: Option<u64>,
    feedback_ranking: Option<bool>,
    review_after_days: Option<u64>,
    rate_limit_per_second: Option<u32>,
    rate_limit_burst: Option<u32>,
    trust_forwarded_for: Option<bool>,
    request_timeout_secs: Option<u64>,
    max_body_bytes: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    cors_origins: Option<Vec<String>>,
    poll_interval_secs: Option<u64>,
    reconcile_interval_secs: Option<u64>,
    audience_field: Option<String>,
    public_values: Option<Vec<String>>,
    internal_values: Option<Vec<String>>,
    category_from_folder: Option<String>,
    include: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
    portal_name: Option<String>,
    portal_accent: Option<String>,
    portal_support_url: Option<String>,
    semantic: Option<SemanticFileConfig>,
    channels: Option<ChannelsFileConfig>,
    storage: Option<StorageFileConfig>,
}

impl Settings {
    /// Defaults for everything but the folders (tests, benchmarks, embedding).
    pub fn with_folders(articles_dir: PathBuf, index_dir: PathBuf, data_dir: PathBuf) -> Settings {
        Settings {
            articles_dir,
            index_dir,
            addr: DEFAULT_ADDR.parse().expect("the default address is valid"),
            max_article_bytes: DEFAULT_MAX_ARTICLE_BYTES,
            agent_keys: Vec::new(),
            debounce: Duration::from_millis(DEFAULT_DEBOUNCE_MS),
            handoff_file: None,
            admin_keys: Vec::new(),
            data_dir,
            analytics: true,
            retention_days: 90,
            session_retention_days: DEFAULT_SESSION_RETENTION_DAYS,
            customer_not_helpful_days: DEFAULT_CUSTOMER_NOT_HELPFUL_DAYS,
            clock: crate::analytics::Clock::default(),
            feedback_ranking: true,
            review_after_days: 365,
            rate_limit_per_second: 50,
            rate_limit_burst: 100,
            trust_forwarded_for: false,
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            cors_origins: Vec::new(),
            poll_interval: None,
            reconcile_interval: Duration::from_secs(600),
            article_rules: ArticleRules::default(),
            portal: PortalSettings::default(),
            model: ModelChoice::Off,
            agent_labels: Vec::new(),
            admin_labels: Vec::new(),
            webhook: None,
            handoff_abandon_after: Duration::from_secs(DEFAULT_ABANDON_AFTER_MINUTES * 60),
            channels: ChannelSettings::default(),
            database_url: None,
            buffer_events: DEFAULT_BUFFER_EVENTS,
        }
    }

    /// Resolves settings from flags/env (`overrides`), the environment for
    /// settings without flags, the config file and the defaults.
    pub fn load(overrides: Overrides) -> Result<Settings, ConfigError> {
        Self::load_with_env(overrides, |name| std::env::var(name).ok())
    }

    pub fn load_with_env(
        overrides: Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut file = match &overrides.config {
            Some(path) => read_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        let portal = portal_settings(&env, &file)?;
        let addr_text = overrides
            .addr
            .or(file.addr)
            .unwrap_or_else(|| DEFAULT_ADDR.to_string());
        let addr =
            addr_text
                .parse()
                .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                    name: "addr",
                    value: addr_text.clone(),
                    reason: e.to_string(),
                })?;
        let max_article_bytes = match env("RAPPORT_MAX_ARTICLE_BYTES") {
            Some(v) => parse_number("RAPPORT_MAX_ARTICLE_BYTES", &v)?,
            None => file.max_article_bytes.unwrap_or(DEFAULT_MAX_ARTICLE_BYTES),
        };
        let debounce_ms = match env("RAPPORT_DEBOUNCE_MS") {
            Some(v) => parse_number("RAPPORT_DEBOUNCE_MS", &v)?,
            None => file.debounce_ms.unwrap_or(DEFAULT_DEBOUNCE_MS),
        };
        let (file_agent_keys, agent_labels) = split_entries(file.agent_keys.take());
        let (file_admin_keys, admin_labels) = split_entries(file.admin_keys.take());
        // Keys from the environment replace the file's, labels and all.
        let from_env = |name: &str, labels: Vec<Option<String>>| match env(name) {
            Some(_) => Vec::new(),
            None => labels,
        };
        let agent_labels = from_env("RAPPORT_AGENT_KEYS", agent_labels);
        let admin_labels = from_env("RAPPORT_ADMIN_KEYS", admin_labels);
        let agent_keys = list_setting(env("RAPPORT_AGENT_KEYS"), file_agent_keys);
        let admin_keys = list_setting(env("RAPPORT_ADMIN_KEYS"), file_admin_keys);
        let handoff = handoff_settings(&env, file.handoff.take())?;
        let flag = |name: &'static str, value: Option<String>, default: bool| match value {
            None => Ok(default),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "on" | "yes" => Ok(true),
                "0" | "false" | "off" | "no" => Ok(false),
                _ => Err(ConfigError::Invalid {
                    name,
                    value: v,
                    reason: "expected on or off".into(),
                }),
            },
        };
        let analytics = flag(
            "RAPPORT_ANALYTICS",
            env("RAPPORT_ANALYTICS"),
            file.analytics.unwrap_or(true),
        )?;
        let feedback_ranking = flag(
            "RAPPORT_FEEDBACK_RANKING",
            env("RAPPORT_FEEDBACK_RANKING"),
            file.feedback_ranking.unwrap_or(true),
        )?;
        let category_text = env("RAPPORT_CATEGORY_FROM_FOLDER").or(file.category_from_folder);
        let category_from_folder = match category_text {
            None => CategoryFromFolder::default(),
            Some(text) => CategoryFromFolder::parse(&text).ok_or(ConfigError::Invalid {
                name: "category_from_folder",
                value: text,
                reason: "expected off, first_folder or folder_path".into(),
            })?,
        };
        let audience_field = overrides
            .audience_field
            .or(file.audience_field)
            .unwrap_or_else(|| crate::article::rules::DEFAULT_AUDIENCE_FIELD.to_string());
        if audience_field.trim().is_empty() {
            return Err(ConfigError::Invalid {
                name: "audience_field",
                value: audience_field,
                reason: "must name a front-matter field".into(),
            });
        }
        let include = list_setting(env("RAPPORT_INCLUDE"), file.include);
        let exclude = list_setting(env("RAPPORT_EXCLUDE"), file.exclude);
        let selection = Selection::new(&include, &exclude).map_err(|error| {
            let name = if include.contains(&error.pattern) {
                "include"
            } else {
                "exclude"
            };
            ConfigError::Invalid {
                name,
                value: error.pattern,
                reason: error.reason,
            }
        })?;
        let article_rules = ArticleRules {
            audience_field: audience_field.trim().to_string(),
            public_values: file.public_values.unwrap_or_default(),
            internal_values: file.internal_values.unwrap_or_default(),
            category_from_folder,
            selection,
            folders: Default::default(),
        };
        let retention_days = match env("RAPPORT_RETENTION_DAYS") {
            Some(v) => parse_number("RAPPORT_RETENTION_DAYS", &v)?,
            None => file.retention_days.unwrap_or(90),
        };
        let session_retention_days = match env("RAPPORT_SESSION_RETENTION_DAYS") {
            Some(v) => parse_number("RAPPORT_SESSION_RETENTION_DAYS", &v)?,
            None => file
                .session_retention_days
                .unwrap_or(DEFAULT_SESSION_RETENTION_DAYS),
        };
        let customer_not_helpful_days = match env("RAPPORT_CUSTOMER_NOT_HELPFUL_DAYS") {
            Some(v) => parse_number("RAPPORT_CUSTOMER_NOT_HELPFUL_DAYS", &v)?,
            None => file
                .customer_not_helpful_days
                .unwrap_or(DEFAULT_CUSTOMER_NOT_HELPFUL_DAYS),
        };
        let model = overrides
            .model
            .or_else(|| file.semantic.as_ref().and_then(|s| s.model.clone()))
            .map_or(ModelChoice::Default, |text| ModelChoice::parse(&text));
        let channels = file.channels.as_ref();
        let public_url = env("RAPPORT_PUBLIC_URL")
            .or_else(|| channels.and_then(|c| c.public_url.clone()))
            .map(|url| url.trim().trim_end_matches('/').to_string())
            .filter(|url| !url.is_empty());
        if let Some(url) = &public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ConfigError::Invalid {
                name: "channels.public_url",
                value: url.clone(),
                reason: "an http:// or https:// address".into(),
            });
        }
        let channels = ChannelSettings {
            public_url,
            email: ChannelFileConfig::setting(
                channels.and_then(|c| c.email.as_ref()),
                "channels.email.auto_reply_min_confidence",
            )?,
            form: ChannelFileConfig::setting(
                channels.and_then(|c| c.form.as_ref()),
                "channels.form.auto_reply_min_confidence",
            )?,
            social: ChannelFileConfig::setting(
                channels.and_then(|c| c.social.as_ref()),
                "channels.social.auto_reply_min_confidence",
            )?,
        };
        let storage = file.storage.as_ref();
        let database_url = overrides
            .database_url
            .clone()
            .or_else(|| storage.and_then(|s| s.database_url.clone()))
            .map(|url| url.trim().to_string())
            .filter(|url| !url.is_empty());
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                name: "storage.database_url",
                value: redact_password(url),
                reason: "a postgres:// URL (leave it out for SQLite in the data folder)".into(),
            });
        }
        let buffer_events = storage
            .and_then(|s| s.buffer_events)
            .unwrap_or(DEFAULT_BUFFER_EVENTS);
        Ok(Settings {
            database_url,
            buffer_events,
            channels,
            model,
            portal,
            agent_labels,
            admin_labels,
            webhook: handoff.webhook,
            handoff_abandon_after: handoff.abandon_after,
            session_retention_days,
            customer_not_helpful_days,
            clock: crate::analytics::Clock::default(),
            admin_keys,
            data_dir: overrides
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("data")),
            analytics,
            retention_days,
            feedback_ranking,
            review_after_days: file.review_after_days.unwrap_or(365),
            rate_limit_per_second: match env("RAPPORT_RATE_LIMIT") {
                Some(v) => parse_number("RAPPORT_RATE_LIMIT", &v)? as u32,
                None => file.rate_limit_per_second.unwrap_or(50),
            },
            rate_limit_burst: file.rate_limit_burst.unwrap_or(100),
            trust_forwarded_for: flag(
                "RAPPORT_TRUST_FORWARDED_FOR",
                env("RAPPORT_TRUST_FORWARDED_FOR"),
                file.trust_forwarded_for.unwrap_or(false),
            )?,
            request_timeout: Duration::from_secs(file.request_timeout_secs.unwrap_or(10)),
            max_body_bytes: file.max_body_bytes.unwrap_or(64 * 1024),
            header_read_timeout: Duration::from_secs(
                file.header_read_timeout_secs
                    .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT_SECS)
                    .max(1),
            ),
            idle_timeout: Duration::from_secs(
                file.idle_timeout_secs
                    .unwrap_or(DEFAULT_IDLE_TIMEOUT_SECS)
                    .max(1),
            ),
            max_connections: match env("RAPPORT_MAX_CONNECTIONS") {
                Some(v) => parse_number("RAPPORT_MAX_CONNECTIONS", &v)? as usize,
                None => file.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            }
            .max(1),
            poll_interval: match overrides.poll_interval.or(file.poll_interval_secs) {
                Some(0) | None => None,
                Some(secs) => Some(Duration::from_secs(secs)),
            },
            reconcile_interval: Duration::from_secs(file.reconcile_interval_secs.unwrap_or(600)),
            cors_origins: list_setting(env("RAPPORT_CORS_ORIGINS"), file.cors_origins),
            articles_dir: overrides
                .articles
                .or(file.articles)
                .unwrap_or_else(|| PathBuf::from("articles")),
            index_dir: overrides
                .index
                .or(file.index)
                .unwrap_or_else(|| PathBuf::from("index")),
            addr,
            max_article_bytes,
            agent_keys,
            debounce: Duration::from_millis(debounce_ms),
            handoff_file: overrides.handoff.or(handoff.rules),
            article_rules,
        })
    }
}

/// A database URL fit for an error message: the password replaced.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                url.to_string()
            }
        }
        None => url.to_string(),
    }
}

struct HandoffSettings {
    rules: Option<PathBuf>,
    webhook: Option<crate::handoff::outbox::Webhook>,
    abandon_after: Duration,
}

fn handoff_settings(
    env: &impl Fn(&str) -> Option<String>,
    value: Option<toml::Value>,
) -> Result<HandoffSettings, ConfigError> {
    let file = match value {
        None => HandoffFileConfig::default(),
        Some(toml::Value::String(path)) => HandoffFileConfig {
            rules: Some(PathBuf::from(path)),
            ..HandoffFileConfig::default()
        },
        Some(table @ toml::Value::Table(_)) => {
            let text = table.to_string();
            HandoffFileConfig::deserialize(table).map_err(|e| ConfigError::Invalid {
                name: "handoff",
                value: text,
                reason: e.to_string(),
            })?
        }
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: "handoff",
                value: other.to_string(),
                reason: "expected the rules file's path or a [handoff] table".into(),
            });
        }
    };
    let url = env("RAPPORT_HANDOFF_WEBHOOK_URL")
        .or(file.webhook_url)
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    let secret = env("RAPPORT_HANDOFF_WEBHOOK_SECRET")
        .or(file.webhook_secret)
        .filter(|s| !s.is_empty());
    let webhook = match url {
        None => None,
        Some(url) => {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok || url.parse::<axum::http::Uri>().is_err() {
                return Err(ConfigError::Invalid {
                    name: "handoff.webhook_url",
                    value: url,
                    reason: "expected an http:// or https:// URL".into(),
                });
            }
            Some(crate::handoff::outbox::Webhook {
                url,
                secret,
                retry_initial: file
                    .webhook_retry_initial_ms
                    .map_or(crate::handoff::outbox::DEFAULT_RETRY_INITIAL, |ms| {
                        Duration::from_millis(ms.max(1))
                    }),
            })
        }
    };
    Ok(HandoffSettings {
        rules: file.rules,
        webhook,
        abandon_after: Duration::from_secs(
            file.abandon_after_minutes
                .unwrap_or(DEFAULT_ABANDON_AFTER_MINUTES)
                * 60,
        ),
    })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

fn parse_number(name: &'static str, value: &str) -> Result<u64, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|e: std::num::ParseIntError| ConfigError::Invalid {
            name,
            value: value.to_string(),
            reason: e.to_string(),
        })
}

/// A list setting: the env var (comma-separated) replaces the file's list.
fn list_setting(from_env: Option<String>, from_file: Option<Vec<String>>) -> Vec<String> {
    match from_env {
        Some(value) => split_keys(&value),
        None => from_file.unwrap_or_default(),
    }
}

fn split_keys(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("rapport.toml");
        std::fs::write(
            &config,
            "articles = \"from-file\"\nindex = \"idx-file\"\nagent_keys = [\"file-key\"]\nmax_article_bytes = 10\n",
        )
        .unwrap();
        let overrides = Overrides {
            config: Some(config),
            articles: Some(PathBuf::from("from-flag")),
            ..Overrides::default()
        };
        let env = |name: &str| (name == "RAPPORT_AGENT_KEYS").then(|| "a, b,".to_string());
        let settings = Settings::load_with_env(overrides, env).unwrap();
        assert_eq!(settings.articles_dir, PathBuf::from("from-flag"));
        assert_eq!(settings.index_dir, PathBuf::from("idx-file"));
        assert_eq!(settings.agent_keys, vec!["a", "b"]);
        assert_eq!(settings.max_article_bytes, 10);
        assert_eq!(settings.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(settings.session_retention_days, 7);
        assert_eq!(settings.customer_not_helpful_days, 30);
    }

    #[test]
    fn the_model_comes_from_the_flag_or_the_file_and_defaults_to_the_fetched_one() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("rapport.toml");
        std::fs::write(&config, "[semantic]\nmodel = \"/srv/models/mini\"\n").unwrap();
        let from_file = Overrides {
            config: Some(config.clone()),
            ..Overrides::default()
        };
        let settings = Settings::load_with_env(from_file.clone(), |_| None).unwrap();
        assert_eq!(settings.model, ModelChoice::Dir("/srv/models/mini".into()));
        let off = Overrides {
            model: Some("off".into()),
            ..from_file
        };
        assert_eq!(
            Settings::load_with_env(off, |_| None).unwrap().model,
            ModelChoice::Off
        );
        let nothing = Overrides {
            config: Some(dir.path().join("none.toml")),
            ..Overrides::default()
        };
        std::fs::write(dir.path().join("none.toml"), "").unwrap();
        assert_eq!(
            Settings::load_with_env(nothing, |_| None).unwrap().model,
            ModelChoice::Default
        );
        std::fs::write(&config, "[semantic]\nmodle = \"x\"\n").unwrap();
        let typo = Overrides {
            config: Some(config),
            ..Overrides::default()
        };
        assert!(Settings::load_with_env(typo, |_| None).is_err());
    }

    #[test]
    fn session_retention_and_customer_window_come_from_file_or_env() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("rapport.toml");
        std::fs::write(
            &config,
            "session_retention_days = 2\ncustomer_not_helpful_days = 10\n",
        )
        .unwrap();
        let overrides = Overrides {
            config: Some(config),
            ..Overrides::default()
        };
        let settings = Settings::load_with_env(overrides.clone(), |_| None).unwrap();
        assert_eq!(settings.session_retention_days, 2);
        assert_eq!(settings.customer_not_helpful_days, 10);
        let env = |name: &str| (name == "RAPPORT_SESSION_RETENTION_DAYS").then(|| "1".to_string());
        let settings = Settings::load_with_env(overrides, env).unwrap();
        assert_eq!(settings.session_retention_days, 1);
        assert_eq!(settings.customer_not_helpful_days, 10);
    }

    #[test]
    fn article_rules_come_from_file_flag_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("rapport.toml");
        std::fs::write(
            &config,
            "audience_field = \"visibility\"\npublic_values = [\"everyone\"]\ninternal_values = [\"staff\"]\ncategory_from_folder = \"folder_path\"\n",
        )
        .unwrap();
        let overrides = Overrides {
            config: Some(config.clone()),
            ..Overrides::default()
        };
        let rules = Settings::load_with_env(overrides, |_| None)
            .unwrap()
            .article_rules;
        assert_eq!(rules.audience_field, "visibility");
        assert_eq!(rules.public_values, ["everyone"]);
        assert_eq!(rules.internal_values, ["staff"]);
        assert_eq!(rules.category_from_folder, CategoryFromFolder::FolderPath);

        let overrides = Overrides {
            config: Some(config),
            audience_field: Some("access".into()),
            ..Overrides::default()
        };
        let env = |name: &str| (name == "RAPPORT_CATEGORY_FROM_FOLDER").then(|| "off".to_string());
        let rules = Settings::load_with_env(overrides, env)
            .unwrap()
            .article_rules;
        assert_eq!(rules.audience_field, "access");
        assert_eq!(rules.category_from_folder, CategoryFromFolder::Off);

        let env =
            |name: &str| (name == "RAPPORT_CATEGORY_FROM_FOLDER").then(|| "sideways".to_string());
        let err = Settings::load_with_env(Overrides::default(), env).unwrap_err();
        assert!(err.to_string().contains("folder_path"), "{err}");
    }

    #[test]
    fn include_and_exclude_come_from_file_or_env_and_bad_patterns_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("rapport.toml");
        std::fs::write(
            &config,
            "include = [\"_drafts/**\"]\nexclude = [\"archive/\", \"*.old.md\"]\n",
        )
        .unwrap();
        let overrides = Overrides {
            config: Some(config),
            ..Overrides::default()
        };
        let rules = Settings::load_with_env(overrides.clone(), |_| None)
            .unwrap()
            .article_rules;
        assert_eq!(rules.selection.include_patterns(), ["_drafts/**"]);
        assert_eq!(rules.selection.exclude_patterns(), ["archive/", "*.old.md"]);
        assert!(rules.selection.admits("_drafts/a.md"));
        assert!(!rules.selection.admits("docs/archive/a.md"));

        let env = |name: &str| (name == "RAPPORT_EXCLUDE").then(|| "drafts/, old/".to_string());
        let rules = Settings::load_with_env(overrides, env)
            .unwrap()
            .article_rules;
        assert_eq!(rules.selection.exclude_patterns(), ["drafts/", "old/"]);
        assert_eq!(rules.selection.include_patterns(), ["_drafts/**"]);

        let env = |name: &str| (name == "RAPPORT_INCLUDE").then(|| "a/[b".to_string());
        let err = Settings::load_with_env(Overrides::default(), env).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid value for include: \"a/[b\""),
            "{err}"
        );
    }

    #[test]
    fn unknown_config_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bad.toml");
        std::fs::write(&config, "artciles = \"typo\"\n").unwrap();
        let overrides = Overrides {
            config: Some(config),
            ..Overrides::default()
        };
        let err = Settings::load_with_env(overrides, |_| None).unwrap_err();
        assert!(err.to_string().contains("artciles"), "{err}");

        let overrides = Overrides {
            addr: Some("not an addr".into()),
            ..Overrides::default()
        };
        assert!(Settings::load_with_env(overrides, |_| None).is_err());
    }

    #[test]
    fn portal_theme_from_env_is_validated() {
        let env = |name: &str| match name {
            "RAPPORT_PORTAL_NAME" => Some("Tallybook Help".to_string()),
            "RAPPORT_PORTAL_ACCENT" => Some("#0F766E".to_string()),
            _ => None,
        };
        let settings = Settings::load_with_env(Overrides::default(), env).unwrap();
        assert_eq!(settings.portal.name, "Tallybook Help");
        assert_eq!(settings.portal.accent, "#0f766e");
        assert_eq!(settings.portal.support_url, None);
        for (name, bad) in [
            ("RAPPORT_PORTAL_ACCENT", "red;}body{display:none"),
            ("RAPPORT_PORTAL_ACCENT", "#12345"),
            ("RAPPORT_PORTAL_SUPPORT_URL", "javascript:alert(1)"),
        ] {
            let env = |n: &str| (n == name).then(|| bad.to_string());
            assert!(
                Settings::load_with_env(Overrides::default(), env).is_err(),
                "{name}={bad} must be refused"
            );
        }
    }
}
