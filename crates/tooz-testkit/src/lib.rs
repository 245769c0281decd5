//! The tooz conformance suite as a kit: every scenario the built-in backends pass, written
//! once against the public [`tooz::Coordinator`] API, run against any backend — one of the
//! URL table's or a driver of your own behind [`tooz::OpenBackend`].
//!
//! Each target is probed once (one member connects and reports [`tooz::Supported`]); each
//! scenario then runs as one test, or is listed as *ignored* when the target does not offer
//! what it needs (groups, elections, shared locks, lease-bound locks). Nothing is left out
//! silently, and no hand-kept list says which backend runs what. A target that cannot be
//! reached at all is one failed test, never a skip.
//!
//! Use it from a test binary with `harness = false` (it brings its own runner, so the usual
//! `cargo test -- FILTER`, `--ignored`, `--list` all work):
//!
//! ```toml
//! [[test]]
//! name = "conformance"
//! harness = false
//! ```
//!
//! ```no_run
//! // tests/conformance.rs
//! use std::sync::Arc;
//! use tooz::drivers::memory::{MemoryBackend, MemoryOptions};
//! use tooz_testkit::Target;
//!
//! fn main() -> std::process::ExitCode {
//!     // A driver outside the URL table: `open` is called once per member.
//!     let open: tooz::OpenBackend = Arc::new(|member| {
//!         let options = MemoryOptions::from_url(&"memory://kit-example?timeout=1".parse().unwrap())?;
//!         Ok(Box::new(MemoryBackend::new(options, member.clone())))
//!     });
//!     tooz_testkit::run(vec![
//!         Target::custom("mine", open),
//!         Target::url("memory", "memory://kit-example-2?timeout=1"),
//!     ])
//! }
//! ```
//!
//! Give each target a short session timeout (`timeout=1` above): the expiry scenarios wait
//! for sessions to run out. Scenarios use names of their own (random suffixes), so targets
//! may share a server, and a run may share it with other runs.
//!
//! [`trials`] returns the tests without running them, to mix with tests of your own:
//!
//! ```
//! use tooz_testkit::Target;
//!
//! let trials = tooz_testkit::trials(vec![Target::url("memory", "memory://kit-doc?timeout=1")]);
//! assert!(trials.iter().any(|t| t.name() == "conformance::memory::locks::acquire_and_release"));
//! // memory:// offers everything but held locks, so only that kind of case is ignored.
//! assert!(trials.iter().any(|t| t.has_ignored_flag()));
//! ```

mod cases;
mod harness;

use std::process::ExitCode;

use libtest_mimic::{Arguments, Trial};

use harness::{Harness, Source};

/// One backend to run the suite against.
#[derive(Clone)]
pub struct Target {
    name: String,
    source: Source,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may carry a password.
        f.debug_struct("Target")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// A backend from the URL table (the name prefixes every test of this target).
    pub fn url(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            source: Source::Url(url.into()),
        }
    }

    /// A backend of your own: `open` is called once per member the scenarios connect. The
    /// scenarios that edit a URL (an unknown option) are listed as ignored.
    pub fn custom(name: impl Into<String>, open: tooz::OpenBackend) -> Self {
        Self {
            name: name.into(),
            source: Source::Custom(open),
        }
    }

    /// One target per URL in the environment variable `var` (space-separated, as tooz's
    /// `TOOZ_TEST_URLS`), each named by its scheme; none if the variable is unset.
    pub fn from_env(var: &str) -> Vec<Self> {
        std::env::var(var)
            .map(|urls| {
                urls.split_whitespace()
                    .map(|url| Self::url(url.split("://").next().unwrap_or(url), url))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The suite's tests for `targets`, named `conformance::TARGET::AREA::SCENARIO`: each target
/// is probed now (a target that cannot be reached becomes one failing test), and each
/// scenario is one test, flagged ignored where the target lacks what it needs.
pub fn trials(targets: impl IntoIterator<Item = Target>) -> Vec<Trial> {
    let mut trials = Vec::new();
    for target in targets {
        let harness = match Harness::probe(target.name.clone(), target.source) {
            Ok(harness) => harness,
            Err(reason) => {
                let name = format!("conformance::{}::connect", target.name);
                trials.push(Trial::test(name, move || Err(reason.into())));
                continue;
            }
        };
        for case in cases::ALL {
            let name = format!(
                "conformance::{}::{}::{}",
                harness.name, case.area, case.name
            );
            let supported = case.needs.met_by(&harness);
            let (h, run) = (harness.clone(), case.run);
            trials.push(Trial::test(name, move || h.run(run)).with_ignored_flag(!supported));
        }
    }
    trials
}

/// Runs the suite for `targets` with the command line's test arguments (filters, `--list`,
/// `--ignored`, `--test-threads`) and returns the exit code to end the test binary with.
pub fn run(targets: impl IntoIterator<Item = Target>) -> ExitCode {
    let args = Arguments::from_args();
    libtest_mimic::run(&args, trials(targets)).exit_code()
}
