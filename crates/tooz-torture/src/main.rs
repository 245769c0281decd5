//! `tooz-torture [--long] [--check NAME]... [--fuzz-summary FILE] [BACKEND...]`: the torture and fault suite of
//! issue 17, run by `scripts/torture` (which builds it, starts the servers and runs the fuzzing
//! first). Real processes (this binary run again as workers), real servers, the fault proxy of
//! the partition tests, libfaketime for clock jumps. It prints one row of figures per backend
//! and ends with one pass/fail line; the exit status is 1 on any violation.
//!
//! Backends: `memory` and `file` always, and one per URL in `TOOZ_TEST_URLS` (as printed by
//! `scripts/backends env`); naming a backend that is not there is an error, not a skip.
//! Each runs with a two-second session timeout, whatever its URL says.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use nix::time::{ClockId, clock_gettime};

mod checks;
#[path = "../../tooz/tests/support/fault_proxy.rs"]
mod fault_proxy;
mod fleet;
mod store;
mod table;
mod target;
mod worker;

use checks::{Row, Scale};

/// CLOCK_MONOTONIC in nanoseconds: every process on the host reads the same clock, so times
/// logged by different workers compare.
pub(crate) fn monotonic_ns() -> u64 {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always readable");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

struct Options {
    scale: Scale,
    backends: Vec<String>,
    /// `--check NAME`: only these checks (all when empty).
    checks: Vec<String>,
    fuzz_summary: Option<PathBuf>,
}

const CHECKS: &[&str] = &[
    "exclusion",
    "crash",
    "pause",
    "faults",
    "clock",
    "members",
    "soak",
];

impl Options {
    fn runs(&self, check: &str) -> bool {
        self.checks.is_empty() || self.checks.iter().any(|c| c == check)
    }
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        scale: Scale::short(),
        backends: Vec::new(),
        checks: Vec::new(),
        fuzz_summary: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--long" => options.scale = Scale::long(),
            "--check" => {
                let check = args.next().ok_or("--check needs a NAME")?;
                if !CHECKS.contains(&check.as_str()) {
                    return Err(format!(
                        "unknown check {check:?} (one of {})",
                        CHECKS.join(", ")
                    ));
                }
                options.checks.push(check.clone());
            }
            "--fuzz-summary" => {
                let file = args.next().ok_or("--fuzz-summary needs a FILE")?;
                options.fuzz_summary = Some(file.into());
            }
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            backend => options.backends.push(backend.to_owned()),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let Some(args) = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string().ok())
        .collect::<Option<Vec<String>>>()
    else {
        eprintln!("tooz-torture: an argument is not UTF-8");
        return ExitCode::from(2);
    };
    if args.first().map(String::as_str) == Some("worker") {
        return worker::main(&args[1..]);
    }
    let options = match parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!(
                "tooz-torture: {e}\nusage: tooz-torture [--long] [--check NAME]... [--fuzz-summary FILE] [BACKEND...]"
            );
            return ExitCode::from(2);
        }
    };
    // A panic in this process (a library task of an observer included) is counted too.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        fleet::PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        default_hook(info);
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(options)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tooz-torture: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<bool, String> {
    // Read first: a bad path must not cost a whole run's table.
    let fuzz = match &options.fuzz_summary {
        Some(file) => Some(table::Fuzz::read(file)?),
        None => None,
    };
    let scratch = std::env::temp_dir().join(format!("tooz-torture-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let mut targets = target::all(&scratch)?;
    if !options.backends.is_empty() {
        for wanted in &options.backends {
            if !targets.iter().any(|t| &t.name == wanted) {
                let known: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
                return Err(format!(
                    "backend {wanted:?} is not available (have: {}; servers come from TOOZ_TEST_URLS)",
                    known.join(", ")
                ));
            }
        }
        targets.retain(|t| options.backends.contains(&t.name));
    }
    let store = store::FencedStore::start().await?;
    let mut rows = Vec::new();
    for target in &targets {
        let began = Instant::now();
        eprintln!("tooz-torture: {} ...", target.name);
        let mut row = Row::default();
        let panics_before = fleet::PANICS.load(std::sync::atomic::Ordering::Relaxed);
        let scale = &options.scale;
        if options.runs("exclusion") {
            checks::exclusion::run(target, scale, &scratch, &mut row).await;
        }
        if options.runs("crash") {
            checks::crash::run(target, scale, &store, &mut row).await;
        }
        if options.runs("pause") {
            checks::pause::run(target, scale, &store, &mut row).await;
        }
        if options.runs("faults") {
            checks::partition::run(target, &store, &mut row).await;
        }
        if options.runs("clock") {
            checks::clock::run(target, &store, &scratch, &mut row).await;
        }
        if options.runs("members") {
            checks::load::run(target, scale, &mut row).await;
        }
        let panics = fleet::PANICS.load(std::sync::atomic::Ordering::Relaxed) - panics_before;
        row.require(panics == 0, || format!("{panics} panics (see stderr)"));
        row.cell("time", format!("{:.0}s", began.elapsed().as_secs_f64()));
        eprintln!(
            "tooz-torture: {} done in {:.0}s, {} violations",
            target.name,
            began.elapsed().as_secs_f64(),
            row.violations.len()
        );
        rows.push((target.name.clone(), row));
    }
    if options.runs("soak") {
        eprintln!(
            "tooz-torture: soaking every backend at once for {:?} ...",
            options.scale.soak
        );
        let soaks: Vec<_> = targets
            .iter()
            .map(|t| tokio::spawn(checks::load::soak_row(t.clone(), options.scale)))
            .collect();
        for (soak, (_, row)) in soaks.into_iter().zip(rows.iter_mut()) {
            match soak.await {
                Ok(soaked) => {
                    row.cells.extend(soaked.cells);
                    row.violations.extend(soaked.violations);
                }
                Err(e) => row.broken("soak", format!("soak task: {e}")),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(table::print(&options.scale, &rows, fuzz.as_ref()))
}
