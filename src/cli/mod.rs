//! The `rapport` binary's command line: its shape ([`args`]) and what the
//! terminal gets.

pub mod args;
mod db;
mod report;
mod run;

pub use run::main;

use std::io::IsTerminal;

/// Colour only for a terminal, and never when `NO_COLOR` is set
/// (<https://no-color.org>): piped output and log files stay plain.
pub fn colours_on(stream: &impl IsTerminal) -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && stream.is_terminal()
}
