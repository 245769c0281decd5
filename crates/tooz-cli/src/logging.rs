//! Where the library's `tracing` events go: stderr, as compact text or JSON lines, warnings
//! and worse unless `-v`/`-q` or `RUST_LOG` say otherwise.
//!
//! The command's own output on stderr (its one-line error, its status lines) is not logged:
//! it is printed as it always was, in either format, so exit codes and error lines do not
//! depend on the log settings.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use crate::cli::LogFormat;

/// The level the flags ask for: warnings by default, `-q` errors only, `-v` info, `-vv`
/// debug, `-vvv` (or more) trace. A `-v` outweighs `-q` here; `-q` still silences the
/// status lines.
fn level(verbose: u8, quiet: bool) -> LevelFilter {
    match (verbose, quiet) {
        (0, true) => LevelFilter::ERROR,
        (0, false) => LevelFilter::WARN,
        (1, _) => LevelFilter::INFO,
        (2, _) => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Colours only for a person: stderr is a terminal and `NO_COLOR` is not set.
fn colours() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the process's subscriber. `RUST_LOG`, when set and not empty, replaces the level
/// the flags give; when it cannot be parsed, the flags' level is used and one warning says so
/// (shown unless that level hides warnings, as `-q` does).
pub(crate) fn init(verbose: u8, quiet: bool, format: LogFormat) {
    let level = level(verbose, quiet);
    let from_flags = || EnvFilter::default().add_directive(level.into());
    let (filter, rejected) = match std::env::var_os(EnvFilter::DEFAULT_ENV) {
        Some(spec) if !spec.is_empty() => match EnvFilter::try_from_default_env() {
            Ok(filter) => (filter, None),
            Err(e) => (from_flags(), Some((spec, e))),
        },
        _ => (from_flags(), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .compact()
            .without_time()
            .with_target(true)
            .with_level(true)
            .with_ansi(colours())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .try_init(),
    };
    // Only fails if a subscriber is already installed, which nothing else here does.
    if installed.is_err() {
        return;
    }
    if let Some((spec, e)) = rejected {
        tracing::warn!(
            rust_log = %spec.to_string_lossy(),
            error = %e,
            "ignoring RUST_LOG, which is not a valid filter; logging at level {level} as the flags say"
        );
    }
}
