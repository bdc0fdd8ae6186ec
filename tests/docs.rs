//! The doc check: no command in `README.md`, `BENCHMARKS.md` or `docs/*.md`
//! goes stale.
//!
//! Every fenced `sh`, `bash` or `console` block is split into commands (a
//! small shell tokenizer: quotes, `\` continuations, comments, `$VARIABLE`s
//! from [`KNOWN_VARIABLES`]), and each command is checked by what it runs:
//!
//! - `rapport …` and `cargo run --release -- …`: parsed by the real binary
//!   (the same arguments plus `--help`), and the read-only subcommands
//!   ([`RUN_FOR_REAL`]) are also run for real over a copy of the bundled
//!   `articles/`, with path arguments pointed into that copy;
//! - `curl …`: sent to the real server over the bundled articles, and must
//!   succeed (2xx);
//! - `cargo run --example NAME -- …`, `cargo test --test NAME`,
//!   `cargo bench --bench NAME`, `scripts/…`: the target exists and knows
//!   every `--flag` the doc passes;
//! - anything else must be in [`ALLOWED`], with the reason it can't be checked.
//!
//! Beyond the blocks: every `GET /path` or `/api/…` path named in the text is
//! a route, every `RAPPORT_…` variable is read somewhere, every config file
//! shown (`# rapport.toml`) loads, the golden-query example (`jsonl`) runs
//! through `rapport eval`, every relative link and `#anchor` resolves, and
//! the tables in `docs/configuration.md` list exactly the subcommands, flags
//! and config keys the binary has.
//!
//! To see it fail, add `rapport frobnicate` or `curl http://127.0.0.1:8080/api/v1/nope`
//! to a block in any doc.

#[path = "api/helpers.rs"]
mod helpers;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Instant;

use helpers::{ADMIN_KEY, AGENT_KEY, DEADLINE, TestApp};
use regex::Regex;
use serde_json::Value;

/// Commands the check can't run here, each with the reason.
const ALLOWED: &[(&str, &str)] = &[
    (
        "apt-get",
        "installs system packages: needs root and the network",
    ),
    ("export", "sets a variable in the reader's shell"),
    (
        "ln",
        "changes the reader's articles folder (tests/watch.rs covers symlinks)",
    ),
    ("git", "fetches public data over the network"),
    // The client generators: tests/api/contract.rs runs the same tools.
    ("pipx", "fetches a client generator from PyPI"),
    (
        "pip",
        "installs the generated client into the reader's Python",
    ),
    ("npx", "fetches a type generator from npm"),
    ("npm", "installs a package into the reader's project"),
];

/// Shell variables the docs may use, and what the check substitutes: the
/// keys the test server is configured with.
const KNOWN_VARIABLES: &[(&str, &str)] = &[("AGENT_KEY", AGENT_KEY), ("ADMIN_KEY", ADMIN_KEY)];

/// Subcommands that only read (or write into the check's own copy), so they
/// are run for real, not only parsed.
const RUN_FOR_REAL: &[&str] = &["check", "search", "hash-key", "eval", "report", "index"];

/// `rapport` flags that take a value (a doc line that puts one before its
/// subcommand fails when it runs, as the binary refuses it).
const GLOBAL_FLAGS_WITH_VALUE: &[&str] = &[
    "--config",
    "--articles",
    "--index",
    "--handoff",
    "--data-dir",
    "--audience-field",
];

/// The origin the docs' `curl` lines use; the check swaps in the test server's.
const DOC_ORIGIN: &str = "http://127.0.0.1:8080";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------
// Reading the docs

struct Doc {
    /// Relative to the repository, e.g. `docs/api.md`.
    name: String,
    text: String,
}

fn docs() -> Vec<Doc> {
    let mut names = vec!["README.md".to_string(), "BENCHMARKS.md".to_string()];
    let mut in_docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().to_string_lossy().into_owned();
            name.ends_with(".md").then(|| format!("docs/{name}"))
        })
        .collect();
    in_docs.sort();
    names.extend(in_docs);
    names
        .into_iter()
        .map(|name| Doc {
            text: std::fs::read_to_string(root().join(&name)).expect("doc is readable"),
            name,
        })
        .collect()
}

struct Block {
    doc: String,
    /// 1-based line of the first line inside the fence.
    line: usize,
    lang: String,
    text: String,
}

fn fenced_blocks(doc: &Doc) -> Vec<Block> {
    let mut blocks = Vec::new();
    // (first line, info string, fence indent, text so far)
    let mut open: Option<(usize, String, usize, String)> = None;
    for (i, line) in doc.text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let indent = line.len() - trimmed.len();
                    open = Some((i + 2, info.trim().to_string(), indent, String::new()));
                }
            }
            Some((start, lang, indent, text)) => {
                if trimmed.starts_with("```") {
                    blocks.push(Block {
                        doc: doc.name.clone(),
                        line: *start,
                        lang: std::mem::take(lang),
                        text: std::mem::take(text),
                    });
                    open = None;
                } else {
                    // A block inside a list item is indented like the item.
                    let strip = line.len() - line.trim_start_matches(' ').len();
                    text.push_str(&line[strip.min(*indent)..]);
                    text.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "{}: a code fence is never closed", doc.name);
    blocks
}

/// The doc's text without fenced blocks and inline code, for links.
fn prose(doc: &Doc) -> String {
    let mut out = String::new();
    let mut in_fence = false;
    for line in doc.text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            out.push('\n');
            continue;
        }
        if !in_fence {
            out.push_str(line);
        }
        out.push('\n');
    }
    Regex::new(r"`[^`\n]*`")
        .expect("valid regex")
        .replace_all(&out, "")
        .into_owned()
}

// ---------------------------------------------------------------------------
// Splitting blocks into commands

#[derive(Debug, Clone)]
struct Command {
    at: String,
    env: Vec<(String, String)>,
    words: Vec<String>,
}

/// Shell words of `script`, one `Vec` per command, with the line each starts on.
/// Supports what the docs need (quotes, `\` escapes and continuations,
/// comments, `$NAME`) and refuses the rest, so nothing is checked half-parsed.
fn split_commands(script: &str, first_line: usize) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut line = first_line;
    let mut start_line = first_line;
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    let variable = |chars: &[char], i: &mut usize, out: &mut String| -> Result<(), String> {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_ascii_alphanumeric() || chars[*i] == '_') {
            *i += 1;
        }
        let name: String = chars[start..*i].iter().collect();
        match KNOWN_VARIABLES.iter().find(|(known, _)| *known == name) {
            Some((_, value)) => {
                out.push_str(value);
                Ok(())
            }
            None => Err(format!(
                "unknown shell variable ${name} (add it to KNOWN_VARIABLES)"
            )),
        }
    };
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\n' => {
                line += 1;
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                if !words.is_empty() {
                    commands.push((start_line, std::mem::take(&mut words)));
                }
                start_line = line;
            }
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\\' => match chars.get(i) {
                Some('\n') => {
                    i += 1;
                    line += 1;
                }
                Some(&next) => {
                    word.push(next);
                    in_word = true;
                    i += 1;
                }
                None => return Err("a trailing backslash".into()),
            },
            '\'' => {
                in_word = true;
                loop {
                    match chars.get(i) {
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&inner) => {
                            if inner == '\n' {
                                line += 1;
                            }
                            word.push(inner);
                            i += 1;
                        }
                        None => return Err("an unclosed single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.get(i) {
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\' | '$')) => {
                            word.push(chars[i + 1]);
                            i += 2;
                        }
                        Some('$') => {
                            i += 1;
                            variable(&chars, &mut i, &mut word)?;
                        }
                        Some('`') => return Err("command substitution".into()),
                        Some(&inner) => {
                            if inner == '\n' {
                                line += 1;
                            }
                            word.push(inner);
                            i += 1;
                        }
                        None => return Err("an unclosed double quote".into()),
                    }
                }
            }
            '$' => {
                in_word = true;
                variable(&chars, &mut i, &mut word)?;
            }
            '|' | ';' | '&' | '>' | '<' | '`' | '(' | ')' => {
                return Err(format!(
                    "shell syntax {c:?} (pipes, redirections, lists and subshells are not checked; write one command per line)"
                ));
            }
            other => {
                word.push(other);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if !words.is_empty() {
        commands.push((start_line, words));
    }
    Ok(commands)
}

/// Every command in the docs' `sh`, `bash` and `console` blocks (for
/// `console`, the `$ ` lines only; the rest is output).
fn doc_commands() -> Vec<Command> {
    let assignment = Regex::new(r"^[A-Z_][A-Z0-9_]*=").expect("valid regex");
    let mut commands = Vec::new();
    let mut errors = Vec::new();
    for doc in docs() {
        for block in fenced_blocks(&doc) {
            let scripts: Vec<(usize, String)> = match block.lang.as_str() {
                "sh" | "bash" => vec![(block.line, block.text.clone())],
                "console" => block
                    .text
                    .lines()
                    .enumerate()
                    .filter_map(|(i, l)| {
                        l.strip_prefix("$ ")
                            .map(|c| (block.line + i, format!("{c}\n")))
                    })
                    .collect(),
                _ => continue,
            };
            for (line, script) in scripts {
                match split_commands(&script, line) {
                    Ok(split) => {
                        for (line, mut words) in split {
                            let mut env = Vec::new();
                            while words.first().is_some_and(|w| assignment.is_match(w)) {
                                let word = words.remove(0);
                                let (name, value) = word.split_once('=').expect("matched NAME=");
                                env.push((name.to_string(), value.to_string()));
                            }
                            commands.push(Command {
                                at: format!("{}:{line}", block.doc),
                                env,
                                words,
                            });
                        }
                    }
                    Err(error) => errors.push(format!("{}:{line}: {error}", block.doc)),
                }
            }
        }
    }
    assert!(
        errors.is_empty(),
        "doc commands that can't be read:\n{}",
        errors.join("\n")
    );
    commands
}

enum Kind {
    Rapport(Vec<String>),
    Curl(Vec<String>),
    Example { name: String, args: Vec<String> },
    Cargo(Vec<String>),
    Script { path: String, args: Vec<String> },
    Allowed,
}

fn classify(command: &Command) -> Result<Kind, String> {
    let words = &command.words;
    let program = words.first().map(String::as_str).unwrap_or("");
    let rest = words[1..].to_vec();
    if program == "rapport" {
        return Ok(Kind::Rapport(rest));
    }
    if program == "curl" {
        return Ok(Kind::Curl(rest));
    }
    if program == "cargo" && rest.first().map(String::as_str) == Some("run") {
        let (cargo_args, program_args) = match rest.iter().position(|w| w == "--") {
            Some(at) => (rest[1..at].to_vec(), rest[at + 1..].to_vec()),
            None => (rest[1..].to_vec(), Vec::new()),
        };
        let mut example = None;
        let mut i = 0;
        while i < cargo_args.len() {
            match cargo_args[i].as_str() {
                "--release" => {}
                // The measuring examples need the `tools` feature (Cargo.toml).
                "--features" if cargo_args.get(i + 1).map(String::as_str) == Some("tools") => {
                    i += 1;
                }
                "--example" => {
                    example = cargo_args.get(i + 1).cloned();
                    i += 1;
                }
                other => return Err(format!("`cargo run {other}` is not checked")),
            }
            i += 1;
        }
        return Ok(match example {
            Some(name) => Kind::Example {
                name,
                args: program_args,
            },
            None => Kind::Rapport(program_args),
        });
    }
    if program == "cargo" {
        return Ok(Kind::Cargo(rest));
    }
    if program.starts_with("scripts/") || program.starts_with(".ci/") {
        return Ok(Kind::Script {
            path: program.to_string(),
            args: rest,
        });
    }
    if ALLOWED.iter().any(|(allowed, _)| *allowed == program) {
        return Ok(Kind::Allowed);
    }
    Err(format!(
        "`{program}` is neither checked nor in ALLOWED (add a check, or an entry with the reason)"
    ))
}

// ---------------------------------------------------------------------------
// rapport commands

/// A scratch folder laid out like a checkout: `articles/` (a copy of the
/// bundled help center), `index/`, a golden file and an empty config file.
struct Workspace {
    dir: tempfile::TempDir,
    /// The analytics folder `rapport report` reads.
    data_dir: PathBuf,
}

impl Workspace {
    /// `data_dir`: a running server's analytics folder, or `None` for one
    /// inside the workspace.
    fn new(data_dir: Option<PathBuf>) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = data_dir.unwrap_or_else(|| dir.path().join("data"));
        copy_dir(&root().join("articles"), &dir.path().join("articles"));
        let golden: Vec<String> = docs()
            .iter()
            .flat_map(fenced_blocks)
            .filter(|b| b.lang == "jsonl")
            .map(|b| b.text)
            .collect();
        assert!(
            !golden.is_empty(),
            "the docs show no golden-query example (a ```jsonl block) for `rapport eval`"
        );
        std::fs::write(dir.path().join("golden.jsonl"), golden.concat()).expect("write golden");
        std::fs::write(dir.path().join("empty.toml"), "").expect("write config");
        Workspace { dir, data_dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn run(&self, args: &[String], env: &[(String, String)]) -> std::process::Output {
        let mut process = Process::new(env!("CARGO_BIN_EXE_rapport"));
        for (name, _) in std::env::vars() {
            if name.starts_with("RAPPORT_") {
                process.env_remove(name);
            }
        }
        process
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .output()
            .expect("the rapport binary runs")
    }

    /// `args` with every path the doc names pointed into the workspace: the
    /// reader's folders don't exist here, and the check must not touch ours.
    fn localize(&self, args: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            let replacement = match arg.as_str() {
                "--articles" => Some(self.path("articles")),
                "--index" => Some(self.path("index")),
                "--data-dir" => Some(self.data_dir.clone()),
                "--queries" => Some(self.path("golden.jsonl")),
                "--config" => Some(self.path("empty.toml")),
                "--handoff" => Some(root().join("config/handoff.toml")),
                _ => None,
            };
            out.push(arg.clone());
            if let Some(path) = replacement {
                out.push(path.to_string_lossy().into_owned());
                i += 1; // skip the doc's value
            }
            i += 1;
        }
        out
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let path = entry.expect("dir entry").path();
        let target = to.join(path.file_name().expect("a file name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy file");
        }
    }
}

fn subcommand(args: &[String]) -> Option<&str> {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if GLOBAL_FLAGS_WITH_VALUE.contains(&arg) {
            i += 2;
        } else if arg.starts_with('-') {
            i += 1;
        } else {
            return Some(arg);
        }
    }
    None
}

fn describe(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_in_the_docs_parse_and_run() {
    // A real server gives `rapport report` an analytics database to read.
    let app = helpers::spawn_bundled().await;
    let _ = app.search("charged twice").await;
    let workspace = Workspace::new(Some(app.index.path().join("data")));
    let setup = workspace.run(&["index".to_string()], &[]);
    assert!(
        setup.status.success(),
        "rapport index: {}",
        describe(&setup)
    );

    let mut failures = Vec::new();
    let mut checked = 0;
    for command in doc_commands() {
        let kind = match classify(&command) {
            Ok(kind) => kind,
            Err(error) => {
                failures.push(format!("{}: {error}", command.at));
                continue;
            }
        };
        checked += 1;
        let result = match kind {
            Kind::Rapport(args) => check_rapport(&workspace, &command, &args),
            Kind::Example { name, args } => check_example(&name, &args),
            Kind::Cargo(args) => check_cargo(&args),
            Kind::Script { path, args } => check_script(&path, &args),
            Kind::Curl(_) | Kind::Allowed => Ok(()),
        };
        if let Err(error) = result {
            failures.push(format!(
                "{}: `{}`: {error}",
                command.at,
                command.words.join(" ")
            ));
        }
    }
    assert!(
        checked > 20,
        "only {checked} commands found: is the parser broken?"
    );
    assert!(
        failures.is_empty(),
        "stale commands in the docs:\n\n{}",
        failures.join("\n\n")
    );
}

fn check_rapport(workspace: &Workspace, command: &Command, args: &[String]) -> Result<(), String> {
    // 1. The real parser knows the subcommand, every flag and every value.
    let mut with_help = args.to_vec();
    with_help.push("--help".to_string());
    let parsed = workspace.run(&with_help, &command.env);
    if !parsed.status.success() {
        return Err(format!(
            "the command line refuses it: {}",
            describe(&parsed)
        ));
    }
    // 2. Read-only subcommands run for real, over the workspace.
    match subcommand(args) {
        Some(name) if RUN_FOR_REAL.contains(&name) => {
            let mut env = command.env.clone();
            env.push((
                "RAPPORT_DATA_DIR".to_string(),
                workspace.data_dir.to_string_lossy().into_owned(),
            ));
            let output = workspace.run(&workspace.localize(args), &env);
            if output.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "it fails when run over the bundled articles: {}",
                    describe(&output)
                ))
            }
        }
        Some(_) => Ok(()),
        None => Err("no subcommand".to_string()),
    }
}

/// `--flag`s the doc passes (placeholders like `[ARTICLES_DIR]` are fine).
fn flags(args: &[String]) -> impl Iterator<Item = &str> {
    args.iter()
        .map(String::as_str)
        .filter(|a| a.starts_with("--"))
        .map(|a| a.split('=').next().unwrap_or(a))
}

fn check_example(name: &str, args: &[String]) -> Result<(), String> {
    let path = root().join("examples").join(format!("{name}.rs"));
    let source = std::fs::read_to_string(&path)
        .map_err(|_| format!("there is no example {name} (examples/{name}.rs)"))?;
    for flag in flags(args) {
        if !source.contains(&format!("\"{flag}\"")) {
            return Err(format!("examples/{name}.rs doesn't read {flag}"));
        }
    }
    Ok(())
}

fn check_cargo(args: &[String]) -> Result<(), String> {
    let subcommand = args.first().map(String::as_str).unwrap_or("");
    if !["test", "bench", "build", "fmt", "clippy"].contains(&subcommand) {
        return Err(format!("`cargo {subcommand}` is not checked"));
    }
    let mut i = 1;
    while i < args.len() {
        if args[i] == "--features" {
            // The measuring examples and benches need the `tools` feature.
            if args.get(i + 1).map(String::as_str) != Some("tools") {
                return Err("the only feature the docs may name is `tools`".into());
            }
            i += 2;
            continue;
        }
        let (kind, folder) = match args[i].as_str() {
            "--test" => ("test", "tests"),
            "--bench" => ("bench", "benches"),
            "--example" => ("example", "examples"),
            _ => {
                i += 1;
                continue;
            }
        };
        let name = args
            .get(i + 1)
            .ok_or_else(|| format!("--{kind} without a name"))?;
        let file = root().join(folder).join(format!("{name}.rs"));
        let main = root().join(folder).join(name).join("main.rs");
        if !file.exists() && !main.exists() {
            return Err(format!("there is no {kind} target {name}"));
        }
        // A test filter like `portal::` names a module of that target.
        if kind == "test"
            && let Some(filter) = args.get(i + 2).and_then(|f| f.strip_suffix("::"))
            && !root()
                .join(folder)
                .join(name)
                .join(format!("{filter}.rs"))
                .exists()
        {
            return Err(format!("test target {name} has no module {filter}"));
        }
        i += 2;
    }
    Ok(())
}

fn check_script(path: &str, args: &[String]) -> Result<(), String> {
    let file = root().join(path);
    let text = std::fs::read_to_string(&file).map_err(|_| format!("there is no {path}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        if mode & 0o111 == 0 {
            return Err(format!("{path} is not executable"));
        }
    }
    for flag in flags(args) {
        if !text.contains(flag) {
            return Err(format!("{path} doesn't know {flag}"));
        }
    }
    Ok(())
}

/// Every config file the docs show (a ```toml block starting with
/// `# rapport.toml`) is accepted by the real loader, which refuses unknown keys.
#[test]
fn config_files_in_the_docs_load() {
    let workspace = Workspace::new(None);
    let mut failures = Vec::new();
    let mut seen = 0;
    for doc in docs() {
        for block in fenced_blocks(&doc) {
            if block.lang != "toml" || !block.text.starts_with("# rapport.toml") {
                continue;
            }
            seen += 1;
            let file = workspace.path(&format!("doc-{seen}.toml"));
            std::fs::write(&file, &block.text).expect("write config");
            let args: Vec<String> = [
                "check",
                "--config",
                &file.to_string_lossy(),
                "--articles",
                &workspace.path("articles").to_string_lossy(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let output = workspace.run(&args, &[]);
            if !output.status.success() {
                failures.push(format!(
                    "{}:{}: {}",
                    block.doc,
                    block.line,
                    describe(&output)
                ));
            }
        }
    }
    assert!(seen > 0, "no `# rapport.toml` block found in the docs");
    assert!(
        failures.is_empty(),
        "config files in the docs that rapport refuses:\n\n{}",
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// curl commands and endpoints

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

fn parse_curl(args: &[String]) -> Result<Request, String> {
    let mut method = None;
    let mut headers = Vec::new();
    let mut body = None;
    let mut url = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let value = || {
            args.get(i + 1)
                .cloned()
                .ok_or_else(|| format!("{arg} without a value"))
        };
        match arg {
            "-X" | "--request" => method = Some(value()?),
            "-H" | "--header" => {
                let header = value()?;
                let (name, content) = header
                    .split_once(':')
                    .ok_or_else(|| format!("header without a colon: {header}"))?;
                headers.push((name.trim().to_string(), content.trim().to_string()));
            }
            "-d" | "--data" | "--data-raw" => body = Some(value()?),
            // `@file`, relative to the repository (the docs' fixtures).
            "--data-binary" => {
                let data = value()?;
                body = Some(match data.strip_prefix('@') {
                    Some(file) => std::fs::read_to_string(
                        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file),
                    )
                    .map_err(|e| format!("{file}: {e}"))?,
                    None => data,
                });
            }
            "-s" | "-i" | "-v" | "-sS" | "-N" | "--silent" | "--include" | "--no-buffer" => {
                i += 1;
                continue;
            }
            other if other.starts_with("http") => {
                url = Some(other.to_string());
                i += 1;
                continue;
            }
            other => return Err(format!("curl flag {other} is not understood by the check")),
        }
        i += 2;
    }
    let url = url.ok_or("no URL")?;
    let path = url
        .strip_prefix(DOC_ORIGIN)
        .ok_or_else(|| format!("the URL doesn't start with {DOC_ORIGIN}"))?
        .to_string();
    let method = method.unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.into());
    Ok(Request {
        method,
        path,
        headers,
        body,
    })
}

impl TestApp {
    async fn send(&self, request: &Request) -> (u16, String) {
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("a method");
        let mut builder = self
            .client
            .request(method, format!("{}{}", self.base, request.path));
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = builder.send().await.expect("request is sent");
        let status = response.status().as_u16();
        // The agents' live queue never ends: its status is the answer.
        let streaming = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if streaming {
            return (status, String::new());
        }
        (status, response.text().await.unwrap_or_default())
    }
}

/// Stands in for what a reader's earlier steps would have produced: a
/// `query_id` written as `…` becomes the last one a doc command got, and a
/// session the docs read has had a question asked in it.
async fn prepare(
    app: &TestApp,
    request: &mut Request,
    last_query_id: &Option<String>,
    last_handoff_id: &Option<String>,
) {
    // A hand-off id written as `h_…` is the last one a doc command got.
    if request.path.contains("h_…")
        && let Some(id) = last_handoff_id
    {
        request.path = request.path.replace("h_…", id);
    }
    if let Some(body) = &request.body
        && let Ok(mut json) = serde_json::from_str::<Value>(body)
        && json["query_id"].as_str().is_some_and(|id| id.contains('…'))
        && let Some(id) = last_query_id
    {
        json["query_id"] = Value::String(id.clone());
        request.body = Some(json.to_string());
    }
    if let Some(session) = request.path.strip_prefix("/api/v1/sessions/") {
        let session = session.split('/').next().unwrap_or_default();
        let (status, _) = app
            .post(
                "/api/v1/answer",
                None,
                &serde_json::json!({"question": "how do I export my data?", "session_id": session}),
            )
            .await;
        assert_eq!(status, 200, "setting up session {session}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_commands_in_the_docs_succeed() {
    let app = helpers::spawn_bundled().await;
    let mut failures = Vec::new();
    let mut last_query_id: Option<String> = None;
    let mut last_handoff_id: Option<String> = None;
    let mut sent = 0;
    for command in doc_commands() {
        let Ok(Kind::Curl(args)) = classify(&command) else {
            continue;
        };
        let mut request = match parse_curl(&args) {
            Ok(request) => request,
            Err(error) => {
                failures.push(format!("{}: {error}", command.at));
                continue;
            }
        };
        prepare(&app, &mut request, &last_query_id, &last_handoff_id).await;
        sent += 1;
        // Feedback needs its query recorded, which the analytics writer does
        // a moment later: poll, but fail with the last answer.
        let started = Instant::now();
        let (status, body) = loop {
            let (status, body) = app.send(&request).await;
            if (200..300).contains(&status) || started.elapsed() > DEADLINE / 3 {
                break (status, body);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        if !(200..300).contains(&status) {
            failures.push(format!(
                "{}: {} {} → {status}: {body}",
                command.at, request.method, request.path
            ));
            continue;
        }
        if let Ok(json) = serde_json::from_str::<Value>(&body)
            && let Some(id) = json["query_id"].as_str()
        {
            last_query_id = Some(id.to_string());
        }
        if let Ok(json) = serde_json::from_str::<Value>(&body)
            && let Some(id) = json["handoff_id"].as_str()
        {
            last_handoff_id = Some(id.to_string());
        }
    }
    assert!(
        sent >= 10,
        "only {sent} curl commands found: is the parser broken?"
    );
    assert!(
        failures.is_empty(),
        "curl commands in the docs that fail against the real server:\n{}",
        failures.join("\n")
    );
}

/// Every endpoint the prose names (`GET /api/v1/…`, or a bare `/api/v1/…`
/// path in backticks) is a route of the server: it doesn't get the router's
/// own "no such endpoint" 404, nor a 405 for the method named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_named_in_the_docs_exist() {
    let app = helpers::spawn_bundled().await;
    let probe = |method: &str, path: &str| Request {
        method: method.to_string(),
        path: path.to_string(),
        headers: vec![("Authorization".into(), format!("Bearer {ADMIN_KEY}"))],
        body: (method == "POST").then(|| "{}".to_string()),
    };
    let (_, missing) = app
        .send(&probe("GET", "/no/such/endpoint/docs-check"))
        .await;
    let mention = Regex::new(
        r"`(?:(GET|POST|PUT|PATCH|DELETE) )?(/(?:api/v1/[^`\s?#]*|health|ready|metrics|openapi\.json))[^`]*`",
    )
    .expect("valid regex");
    let placeholder = Regex::new(r"\{[^}/]*\}").expect("valid regex");
    let mut mentions = BTreeSet::new();
    for doc in docs() {
        for (i, line) in doc.text.lines().enumerate() {
            for found in mention.captures_iter(line) {
                let method = found.get(1).map(|m| m.as_str().to_string());
                let path = placeholder.replace_all(&found[2], "x").into_owned();
                mentions.insert((path, method, format!("{}:{}", doc.name, i + 1)));
            }
        }
    }
    let mut failures = Vec::new();
    let mut seen = HashSet::new();
    for (path, method, at) in mentions {
        if !seen.insert((path.clone(), method.clone())) {
            continue;
        }
        let (status, body) = app
            .send(&probe(method.as_deref().unwrap_or("GET"), &path))
            .await;
        let no_route = status == 404 && body == missing;
        let wrong_method = method.is_some() && status == 405;
        if no_route || wrong_method {
            failures.push(format!(
                "{at}: {} {path} → {status}",
                method.as_deref().unwrap_or("(any)")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "endpoints named in the docs that the server doesn't have:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Names and links

fn source_text() -> String {
    let mut text = String::new();
    for folder in ["src", "tests", "examples", "benches", "scripts", ".ci"] {
        collect_text(&root().join(folder), &mut text);
    }
    text
}

fn collect_text(dir: &Path, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_text(&path, out);
        } else if path.file_name().is_some_and(|n| n != "docs.rs")
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            out.push_str(&text);
            out.push('\n');
        }
    }
}

/// Every `RAPPORT_…` variable the docs name is read somewhere (the server,
/// the tests, the examples or the scripts), so a renamed one can't linger.
#[test]
fn environment_variables_in_the_docs_exist() {
    let sources = source_text();
    let name = Regex::new(r"RAPPORT_[A-Z0-9_]+").expect("valid regex");
    let mut failures = BTreeSet::new();
    for doc in docs() {
        for (i, line) in doc.text.lines().enumerate() {
            for found in name.find_iter(line) {
                let var = found.as_str();
                if !sources.contains(&format!("\"{var}\"")) && !sources.contains(&format!("{var}="))
                {
                    failures.insert(format!("{}:{}: {var}", doc.name, i + 1));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "variables the docs name that nothing reads:\n{}",
        failures.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// GitHub's anchors for the doc's headings; repeats get `-1`, `-2`.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let link = Regex::new(r"\[([^\]]*)\]\([^)]*\)").expect("valid regex");
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    let mut in_fence = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || !line.starts_with('#') {
            continue;
        }
        let text = line.trim_start_matches('#');
        if !text.starts_with(' ') {
            continue;
        }
        // The same slugs rapport gives article headings (GitHub's rule).
        let slug = rapport::article::slugify(&link.replace_all(text.trim(), "$1"));
        let n = counts.entry(slug.clone()).or_default();
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

#[test]
fn links_in_the_docs_resolve() {
    let link = Regex::new(r#"\]\(([^)\s]+)\)|src="([^"]+)""#).expect("valid regex");
    let mut failures = Vec::new();
    for doc in docs() {
        let dir = root().join(&doc.name);
        let dir = dir.parent().expect("a folder");
        for found in link.captures_iter(&prose(&doc)) {
            let target = found.get(1).or(found.get(2)).expect("a group").as_str();
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target, None),
            };
            let file = if path.is_empty() {
                root().join(&doc.name)
            } else {
                dir.join(path)
            };
            if !file.exists() {
                failures.push(format!("{}: {target}: no such file", doc.name));
                continue;
            }
            if let Some(anchor) = anchor {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                let known = anchors(&text);
                if !known.contains(anchor) {
                    let mut message =
                        format!("{}: {target}: no such heading; there are:", doc.name);
                    for a in known {
                        let _ = write!(message, " #{a}");
                    }
                    failures.push(message);
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "broken links in the docs:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// The reference tables in docs/configuration.md

fn configuration_doc() -> String {
    std::fs::read_to_string(root().join("docs/configuration.md")).expect("docs/configuration.md")
}

/// The `--flags` a help text lists (without `--help` and `--version`).
fn help_flags(help: &str) -> BTreeSet<String> {
    let flag = Regex::new(r"(?m)^\s+(?:-\w, )?(--[a-z][a-z-]*)").expect("valid regex");
    flag.captures_iter(help)
        .map(|c| c[1].to_string())
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

/// The flag table and the command-line block name every subcommand and
/// every flag the binary has, and nothing it doesn't.
#[test]
fn the_command_line_reference_matches_the_binary() {
    let workspace = Workspace::new(None);
    let help = |args: &[&str]| -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let output = workspace.run(&args, &[]);
        assert!(output.status.success(), "{args:?}: {}", describe(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // Subcommands, with a group's own (`db migrate`) in its place.
    let commands_of = |help_text: &str| -> Vec<String> {
        help_text
            .split("Commands:")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .map(|section| {
                section
                    .lines()
                    .filter_map(|l| l.split_whitespace().next())
                    .filter(|name| *name != "help")
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let top = help(&["--help"]);
    let mut subcommands: Vec<String> = Vec::new();
    let top_level = commands_of(&top);
    assert!(!top_level.is_empty(), "`rapport --help` lists its commands");
    for name in top_level {
        let nested = commands_of(&help(&[&name, "--help"]));
        if nested.is_empty() {
            subcommands.push(name);
        } else {
            subcommands.extend(nested.into_iter().map(|sub| format!("{name} {sub}")));
        }
    }
    let help_of = |scope: &str| -> String {
        let mut args: Vec<&str> = scope.split(' ').collect();
        args.push("--help");
        help(&args)
    };
    let doc = configuration_doc();
    // `| `--flag ARG` | `serve` `index` | meaning |`: one row per flag, naming
    // every subcommand that takes it.
    let row = Regex::new(r"(?m)^\| `(--[a-z][a-z-]*)[^`]*` \| ((?:`[a-z][a-z -]*` ?)+) \|")
        .expect("valid regex");
    let scope_name = Regex::new(r"`([a-z][a-z -]*)`").expect("valid regex");
    let mut documented: Vec<(String, String)> = Vec::new();
    for found in row.captures_iter(&doc) {
        for scope in scope_name.captures_iter(&found[2]) {
            documented.push((found[1].to_string(), scope[1].to_string()));
        }
    }
    let mut failures = Vec::new();
    for (flag, scope) in &documented {
        let known = if subcommands.contains(scope) {
            help_flags(&help_of(scope))
        } else {
            failures.push(format!(
                "the flag table names a subcommand `{scope}` the binary doesn't have"
            ));
            continue;
        };
        if !known.contains(flag) {
            failures.push(format!("the flag table lists {flag} for {scope}, which `rapport {scope} --help` doesn't have"));
        }
    }
    for name in &subcommands {
        if !doc.contains(&format!("rapport {name}")) {
            failures.push(format!(
                "docs/configuration.md never shows `rapport {name}`"
            ));
        }
        for flag in help_flags(&help_of(name)) {
            let listed = documented
                .iter()
                .any(|(f, scope)| *f == flag && scope == name);
            if !listed {
                failures.push(format!(
                    "`rapport {name}` has {flag}, which the flag table doesn't list"
                ));
            }
        }
    }
    assert!(
        !documented.is_empty(),
        "no flag table found in docs/configuration.md"
    );
    assert!(
        failures.is_empty(),
        "docs/configuration.md and the command line disagree:\n{}",
        failures.join("\n")
    );
}

/// The settings table lists exactly the keys the config file accepts, as the
/// real loader reports them when it refuses an unknown one.
#[test]
fn the_settings_table_lists_every_config_key() {
    let workspace = Workspace::new(None);
    let file = workspace.path("unknown-key.toml");
    std::fs::write(&file, "docs_check_unknown_key = 1\n").expect("write config");
    let args: Vec<String> = ["check", "--config", &file.to_string_lossy()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let output = workspace.run(&args, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = stderr.split("expected one of").nth(1).unwrap_or_else(|| {
        panic!(
            "the loader should list the keys it accepts: {}",
            describe(&output)
        )
    });
    let key = Regex::new(r"`([a-z_]+)`").expect("valid regex");
    let accepted: BTreeSet<String> = key
        .captures_iter(expected.lines().next().unwrap_or(""))
        .map(|c| c[1].to_string())
        .collect();
    // `key`, `key` (list), or `table` (table: its keys).
    let row =
        Regex::new(r"(?m)^\| `([a-z_]+)`(?: \((?:list|table[^)]*)\))? \|").expect("valid regex");
    let documented: BTreeSet<String> = row
        .captures_iter(&section(&configuration_doc(), "## Settings"))
        .map(|c| c[1].to_string())
        .collect();
    let undocumented: Vec<_> = accepted.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/configuration.md's settings table: missing {undocumented:?}; not config keys {unknown:?}"
    );
}

/// The text of `heading`'s section, up to the next heading of its level.
fn section(markdown: &str, heading: &str) -> String {
    let start = markdown
        .find(&format!("{heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading:?}"));
    let body = &markdown[start + heading.len()..];
    let level = format!("\n{} ", heading.split(' ').next().unwrap_or("##"));
    body[..body.find(&level).unwrap_or(body.len())].to_string()
}
