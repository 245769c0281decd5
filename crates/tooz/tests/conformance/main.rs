//! The conformance suite: every scenario, written once against the public API, run for every
//! backend. `memory://` always runs (plus a lock-only variant of it, to prove that what a
//! backend lacks answers `Unsupported`, and one whose calls take a simulated round trip, so
//! that callers can give up mid-flight); more backends come from `TOOZ_TEST_URLS`
//! (space-separated URLs, as in tooz). A scenario a backend cannot support is listed as
//! *ignored*, never left out. Filter as with any test: `cargo test --test conformance -- memory::locks`.

#![allow(unreachable_pub)] // a test binary: `pub` only shares items between its modules

mod cases;
mod harness;

use std::process::ExitCode;

use harness::{Harness, Needs};
use libtest_mimic::{Arguments, Trial};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let file_dir = std::env::temp_dir().join(format!("tooz-conformance-{}", std::process::id()));
    let mut harnesses = vec![
        Harness::memory("memory", ""),
        Harness::memory(
            "memory-locks-only",
            "&groups=false&elections=false&shared_locks=false",
        ),
        // Every call takes a simulated round trip, so a caller can give up mid-flight (the
        // cancellation cases) as it can on a network backend.
        Harness::memory("memory-latency", "&latency=2ms"),
        Harness::file(&file_dir),
    ];
    match std::env::var("TOOZ_TEST_URLS") {
        Ok(urls) => harnesses.extend(urls.split_whitespace().map(Harness::url)),
        Err(_) => {
            eprintln!("conformance: TOOZ_TEST_URLS is not set; running memory:// and file:// only")
        }
    }
    let mut trials = Vec::new();
    for harness in harnesses {
        let harness = match harness {
            Ok(h) => h,
            Err(e) => {
                // A backend named in TOOZ_TEST_URLS that cannot even be reached is a failure,
                // not a skip.
                let name = format!("conformance::{}::connect", e.0);
                let reason = e.1;
                trials.push(Trial::test(name, move || Err(reason.into())));
                continue;
            }
        };
        for case in cases::ALL {
            let supported = match case.needs {
                Needs::Nothing => true,
                Needs::Groups => harness.supported.groups,
                Needs::Elections => harness.supported.elections,
                Needs::SharedLocks => harness.supported.shared_locks,
                Needs::LeaseBoundLocks => harness.supported.lease_bound_locks,
                Needs::HeldLocks => !harness.supported.lease_bound_locks,
                Needs::LeaseBoundElections => {
                    harness.supported.elections && harness.supported.lease_bound_locks
                }
                Needs::MissingFeature => {
                    let s = harness.supported;
                    !(s.groups && s.elections && s.shared_locks)
                }
            };
            let name = format!(
                "conformance::{}::{}::{}",
                harness.name, case.area, case.name
            );
            let h = harness.clone();
            let run = case.run;
            trials.push(Trial::test(name, move || h.run(run)).with_ignored_flag(!supported));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    let _ = std::fs::remove_dir_all(&file_dir);
    conclusion.exit_code()
}
