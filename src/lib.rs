//! rapport: a knowledge-base search server for customer support.
//!
//! # Layout
//! The modules follow the data flow, from Markdown files to HTTP answers:
//! - [`article`]: one file → an [`article::Article`] (front matter, flat
//!   sections of plain text, sanitized HTML, links to other articles). Pure
//!   functions; [`article::ArticleRules`] adapts them to a help center's
//!   conventions (the access field, categories from folders).
//! - [`index`]: the tantivy schema and analyzers, and the single
//!   [`index::writer::Indexer`] that keeps the index equal to the folder
//!   (reconcile by stat, then content hash; batches, one commit per batch).
//! - [`search`]: query building (field weights, typos, prefixes, synonyms,
//!   proximity), the one ranking core with context and feedback boosts,
//!   best-section selection, snippets, facets, bot answers with calibrated
//!   confidence, transcripts for agent suggestions.
//! - [`channels`]: channels that are not chat (e-mail first): parse the raw
//!   message and clean off quoted threads, signatures, disclaimers and
//!   greetings so the customer's question reaches the ranking core alone.
//! - [`handoff`]: when the bot should step aside (tone lexicon, sensitive
//!   topics, human requests, repeated questions, articles that already
//!   failed), configured by `config/handoff.toml`; the session timeline and
//!   the brief an agent reads when taking over.
//! - [`http`]: the axum routes, one file per channel (search, answer, suggest,
//!   articles, sessions, analytics, status), and the one mapping from errors
//!   to JSON;
//!   [`http::portal`] serves the help portal's and agent panel's HTML pages
//!   and their embedded assets.
//!
//! At the edges: [`watch`] (file events → indexer), [`auth`] (API keys →
//! roles and visibility), [`analytics`] (SQLite events and reports),
//! [`store`] (everything learned from people: analytics, session timelines,
//! hand-offs, their webhook outbox, ratings, dashboard sign-ins; one storage
//! trait, SQLite by default, PostgreSQL shared by replicas, versioned
//! migrations for both), [`handoff::queue`] and [`handoff::outbox`] (the
//! agents' queue and webhook delivery),
//! [`metrics`] (Prometheus), [`eval`] (golden-set evaluation),
//! [`config`] (flags > env > file > defaults), [`cli`] (the `rapport`
//! command: its flags and subcommands; `main.rs` only calls it).
//!
//! With the `semantic` cargo feature (on by default), [`semantic`] holds the
//! local sentence-embedding model (loading, embedding, `rapport model
//! fetch`) and the section vectors the ranking core fuses with the lexical
//! side.

pub mod analytics;
pub mod article;
pub mod auth;
pub mod channels;
pub mod cli;
pub mod config;
pub mod eval;
pub mod handoff;
pub mod http;
pub mod index;
pub mod metrics;
pub mod outbound;
pub mod search;
pub mod semantic;
pub mod store;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::net::TcpListener;

use crate::analytics::{Analytics, AnalyticsError};
use crate::auth::ApiKeys;
use crate::config::Settings;
use crate::handoff::HandoffRules;
use crate::handoff::config::{HandoffConfig, HandoffConfigError};
use crate::handoff::timeline::SessionLog;
use crate::http::{AppState, protect};
use crate::index::writer::{IndexCommand, Indexer, Scan};
use crate::index::{IndexError, IndexStatus, KnowledgeIndex, SharedStatus};
use crate::metrics::Metrics;
use crate::search::SearchEngine;
use crate::search::synonyms::SynonymsHandle;
use crate::watch::{FolderWatcher, WatchError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("articles folder {path}: {source}")]
    ArticlesFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error(transparent)]
    Handoff(#[from] HandoffConfigError),
    #[error(transparent)]
    Analytics(#[from] AnalyticsError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot start the webhook worker: {0}")]
    Webhooks(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// The whole server, built from settings: index, indexer thread, watcher and
/// HTTP listener. Tests build it on port 0 and talk to it over real HTTP.
pub struct Application {
    listener: TcpListener,
    limits: http::server::ConnectionLimits,
    state: AppState,
    commands: Sender<IndexCommand>,
    indexer: std::thread::JoinHandle<()>,
    watcher: FolderWatcher,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, AppError> {
        // Start-up stages are logged at debug level with the time since here.
        let started = std::time::Instant::now();
        let stage = move |name: &str| {
            tracing::debug!(
                at_ms = started.elapsed().as_secs_f64() * 1e3,
                "start-up: {name}"
            );
        };
        let articles_dir = std::fs::canonicalize(&settings.articles_dir).map_err(|source| {
            AppError::ArticlesFolder {
                path: settings.articles_dir.clone(),
                source,
            }
        })?;
        let handoff_config = match &settings.handoff_file {
            Some(path) => HandoffConfig::load(path)?,
            None => HandoffConfig::defaults(),
        };
        let store = crate::store::open(&settings.data_dir, settings.database_url.as_deref())?;
        let analytics = if settings.analytics {
            Some(Arc::new(Analytics::open_buffering(
                &settings.data_dir,
                std::time::Duration::from_secs(settings.retention_days * 24 * 3600),
                store.clone(),
                settings.buffer_events,
            )?))
        } else {
            None
        };
        let day = std::time::Duration::from_secs(24 * 3600);
        let (retention, customer_window) = (
            day * settings.session_retention_days as u32,
            day * settings.customer_not_helpful_days as u32,
        );
        let sessions = if store.is_shared() {
            SessionLog::open_shared(
                analytics.clone(),
                store.clone(),
                retention,
                customer_window,
                settings.clock.clone(),
            )?
        } else {
            SessionLog::open(
                analytics.clone(),
                retention,
                customer_window,
                settings.clock.clone(),
            )?
        };
        stage("data stores open");
        let kb = Arc::new(KnowledgeIndex::open_or_create(&settings.index_dir)?);
        stage("index open");
        let status: SharedStatus = Arc::new(RwLock::new(IndexStatus::default()));
        let synonyms: SynonymsHandle = Arc::default();
        let metrics = Arc::new(Metrics::default());
        // Watch before the first reconcile so nothing changed during it is
        // missed. Setting up the watch walks the whole folder (notify stats
        // every entry) and loading the catalog reads the index: neither
        // needs the other, so they overlap.
        let (commands, receiver) = channel();
        let (indexer, watcher) = std::thread::scope(|scope| {
            let watching = scope.spawn(|| {
                watch::watch_folder(
                    &articles_dir,
                    settings.debounce,
                    settings.poll_interval,
                    commands.clone(),
                    metrics.clone(),
                )
            });
            let indexer = Indexer::new(
                kb.clone(),
                &articles_dir,
                settings.max_article_bytes,
                status.clone(),
                synonyms.clone(),
            );
            stage("catalog loaded");
            let watcher = watching
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (indexer, watcher)
        });
        let indexer = indexer?
            .with_rules(settings.article_rules.clone())
            .with_metrics(metrics.clone());
        let watcher = watcher?;
        stage("folder watched");
        if !settings.reconcile_interval.is_zero() {
            // Safety net: events can be lost (overflows, network mounts), and
            // a write can keep size and mtime; this one reads every file.
            let interval = settings.reconcile_interval;
            let reconcile = commands.clone();
            let _ = std::thread::Builder::new()
                .name("rapport-reconcile".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(interval);
                        if reconcile
                            .send(IndexCommand::Reconcile(Scan::Content))
                            .is_err()
                        {
                            break;
                        }
                    }
                });
        }
        let semantic = Arc::new(crate::semantic::Semantic::default());
        let engine = Arc::new(
            SearchEngine::new(kb.clone(), synonyms.clone()).with_semantic(semantic.clone()),
        );
        let indexer_status = status.clone();
        let warm_engine = engine.clone();
        let indexer = std::thread::Builder::new()
            .name("rapport-indexer".into())
            .spawn(move || {
                let mut indexer = indexer;
                let started = std::time::Instant::now();
                // Files that stat as they were indexed are not read: what
                // makes a restart over an unchanged folder fast.
                // Decode what the first searches need (columns, statistics,
                // dictionaries) while the folder is compared: the segments
                // of an unchanged folder are the ones reconcile leaves, and
                // anything it adds is small and decoded on first use.
                let warming = std::thread::spawn(move || {
                    let started = std::time::Instant::now();
                    warm_engine.warm().map(|()| started.elapsed())
                });
                match indexer.reconcile_by(Scan::Stat, |_, _| {}) {
                    Ok(counts) => tracing::info!(
                        added = counts.added,
                        updated = counts.updated,
                        deleted = counts.deleted,
                        unchanged = counts.unchanged,
                        skipped = counts.skipped,
                        read = counts.read,
                        took_ms = started.elapsed().as_secs_f64() * 1e3,
                        "index reconciled with the articles folder"
                    ),
                    Err(error) => tracing::error!(%error, "initial reconcile failed"),
                }
                // Searches must not wait for what the warm-up decodes.
                match warming.join() {
                    Ok(Ok(took)) => {
                        tracing::info!(took_ms = took.as_secs_f64() * 1e3, "searcher warmed")
                    }
                    Ok(Err(error)) => tracing::warn!(%error, "cannot warm the searcher"),
                    Err(_) => tracing::warn!("the searcher's warm-up panicked"),
                }
                indexer_status
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .ready = true;
                stage("ready");
                indexer.run(receiver);
            })
            .map_err(|source| AppError::ArticlesFolder {
                path: articles_dir.clone(),
                source,
            })?;

        let listener = TcpListener::bind(settings.addr)
            .await
            .map_err(|source| AppError::Bind {
                addr: settings.addr,
                source,
            })?;
        #[cfg(feature = "semantic")]
        {
            let ready = status.clone();
            crate::semantic::runtime::start(
                &settings.model,
                settings.index_dir.clone(),
                &engine,
                semantic,
                move || ready.read().unwrap_or_else(PoisonError::into_inner).ready,
            );
        }
        #[cfg(not(feature = "semantic"))]
        if settings.model != crate::config::ModelChoice::Off {
            tracing::info!("semantic: off — this rapport was built without the `semantic` feature");
        }
        if settings.feedback_ranking
            && let Some(analytics) = &analytics
        {
            Analytics::keep_ranking_boosts(analytics, engine.feedback_boosts());
        }
        let outbox = match &settings.webhook {
            Some(webhook) => {
                if webhook.secret.is_none() {
                    tracing::warn!(
                        "handoff.webhook_url is set without handoff.webhook_secret: events are sent unsigned"
                    );
                }
                Some(
                    handoff::outbox::Outbox::start(
                        store.clone(),
                        webhook.clone(),
                        settings.clock.clone(),
                        metrics.clone(),
                    )
                    .map_err(AppError::Webhooks)?,
                )
            }
            None => None,
        };
        let queue = Arc::new(handoff::queue::HandoffQueue::new(
            store,
            sessions.clone(),
            settings.clock.clone(),
            outbox,
            settings.handoff_abandon_after,
        ));
        handoff::queue::HandoffQueue::listen_to_replicas(&queue)?;
        handoff::queue::HandoffQueue::keep_forgetting(
            Arc::downgrade(&queue),
            settings.clock.clone(),
            day * settings.session_retention_days as u32,
        );
        let admin = Arc::new(http::admin::AdminState::new(
            settings.clock.clone(),
            queue.store().clone(),
            settings.trust_forwarded_for,
        ));
        let state = AppState::new(http::Shared {
            queue,
            admin,
            engine,
            status,
            keys: Arc::new(
                ApiKeys::new(settings.agent_keys.clone())
                    .with_admin_keys(settings.admin_keys.clone())
                    .with_labels(settings.agent_labels.clone(), settings.admin_labels.clone()),
            ),
            handoff: Arc::new(HandoffRules::new(handoff_config)),
            analytics,
            sessions,
            review_after_days: settings.review_after_days,
            metrics,
            rate_limits: protect::RateLimits::new(
                settings.rate_limit_per_second,
                settings.rate_limit_burst,
                settings.trust_forwarded_for,
            )
            .map(Arc::new),
            request_timeout: settings.request_timeout,
            max_body_bytes: settings.max_body_bytes,
            channels: settings.channels.clone(),
            cors_origins: settings.cors_origins.clone(),
            portal: Arc::new(http::portal::Portal::new(
                settings.portal.clone(),
                &settings.cors_origins,
            )),
        });
        let limits = http::server::ConnectionLimits {
            header_read_timeout: settings.header_read_timeout,
            idle_timeout: settings.idle_timeout,
            max_connections: settings.max_connections,
            shutdown_grace: settings.request_timeout + std::time::Duration::from_secs(5),
        };
        Ok(Application {
            listener,
            limits,
            state,
            commands,
            indexer,
            watcher,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has a local address")
    }

    /// Serves until `shutdown` resolves, then stops watching, lets the indexer
    /// make its final commit and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let Application {
            listener,
            limits,
            state,
            commands,
            indexer,
            watcher,
        } = self;
        let analytics = state.analytics.clone();
        let metrics = state.metrics.clone();
        let queue = state.queue.clone();
        let shutdown = async move {
            shutdown.await;
            // Open event streams would otherwise hold the graceful shutdown
            // for its whole grace period.
            queue.close_streams();
        };
        let router = http::router(state);
        let served = http::server::serve(listener, router, limits, metrics, shutdown).await;
        drop(watcher);
        if let Some(analytics) = analytics {
            // Everything recorded reaches the database before we return.
            let _ = tokio::task::spawn_blocking(move || analytics.flush()).await;
        }
        let (done, finished) = channel();
        if commands.send(IndexCommand::Shutdown(done)).is_ok() {
            let _ = tokio::task::spawn_blocking(move || finished.recv()).await;
        }
        let _ = tokio::task::spawn_blocking(move || indexer.join()).await;
        served.map_err(AppError::Serve)
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests and committing");
}
