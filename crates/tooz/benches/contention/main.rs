//! `scripts/bench contention`: several processes on one lock, ours against Python tooz 9.1.0's,
//! side by side in one run — issue 11. On `file://` (a temporary directory), `redis://` (the
//! server in `TOOZ_TEST_URLS`, else 127.0.0.1:6379, with a fresh `namespace` per run), and on
//! every other server of `TOOZ_TEST_URLS` (memcached, PostgreSQL, MySQL, etcd, ZooKeeper), whose
//! URL serves both sides. The targets are judged on `file://` and `redis://`, the
//! backends it named; the others' figures are shown. `TOOZ_CONTENTION_BACKEND=mysql` (a scheme's
//! start) measures one backend alone.
//!
//! Workloads, each [`RUN`] long, run by separate worker processes: ours are this binary run
//! again with `TOOZ_CONTENTION_WORKER=MODE`, Python's are `tooz_bench.py contention-worker MODE`
//! under the interpreter in `TOOZ_PYTHON`. The two sides use different lock names.
//! * ping-pong: 2 workers loop acquire, hold [`HOLD`], release, on one lock.
//! * storm: 8 workers loop acquire, read-modify-write a shared counter file (read the integer,
//!   write it plus one: only the lock keeps it right), release, on one lock.
//!
//! Our workers run the loop as a task on a two-thread tokio runtime, not in `block_on` on the
//! main thread, where every reply read by a runtime thread would have to wake the main one.
//!
//! Worker protocol (the same on both sides): arguments LOCK MEMBER COUNTER HOLD_MS and the URL
//! in `TOOZ_CONTENTION_URL`; connect, take and give back one warm-up grant,
//! print `ready`; read `go START END` (CLOCK_MONOTONIC nanoseconds) on stdin; wait for START,
//! loop until END; print one JSON line per grant, `{"pid", "acquired", "released"}` (when
//! `acquire` returned, when `release` was called, on CLOCK_MONOTONIC, which every process on
//! the machine shares), then `done`; stop the coordinator at EOF on stdin.
//!
//! How each figure is measured. The parent merges the workers' grants and sorts them by acquire
//! time; rates count the grants acquired inside the window [START, END) given to all workers.
//! * hand-off: a grant whose holder differs from the previous grant's. Hand-offs per second over
//!   the window; their share of the window's grant-to-grant transitions (grants − 1); wake-up
//!   latency: a hand-off's acquire time minus the previous grant's release call (so it includes
//!   the release's own round trip), median and p99.
//! * grants per second: grants in the window / [`RUN`]; per-process min and max: each worker's
//!   grants in the window.
//! * lost updates: every grant logged (the last ones may end past END) minus the counter's
//!   final value.
//! * hold and release-to-next-grant medians: where a grant's time goes. With a fair lock
//!   every grant is a hand-off between processes, so grants per second are at most
//!   1 / (hold + hand-off); the hold is the counter's rewrite (on ext4, replacing a file's
//!   contents through truncation starts its write-back at close, which is most of it).
//! * acquire attempts per grant (Redis only): deltas of the server's `INFO commandstats` from
//!   "all workers ready" to "all workers done" (warm-up and stop are outside), divided by every
//!   grant logged. Python tooz locks with redis-py, one `SET NX PX` per attempt and no other SET
//!   (its heartbeat uses PSETEX, its release and extend are scripts): attempts = Δ `set`. Ours
//!   makes every acquire attempt and every release one Lua script call (`EVALSHA`, or `EVAL`
//!   after a cache miss): attempts = Δ (`evalsha` + `eval`) − grants (one release each); a
//!   heartbeat inside the window (every 10 s per worker by default) counts as an attempt, a
//!   small overcount. The counters are server-wide: another client busy on the server during
//!   the run inflates them. Beside it, "server commands per grant" (every command the server ran,
//!   scripts' inner commands included) does not depend on which commands either side chose,
//!   and a line under the table lists each side's busiest commands per grant.
//!   On `file://` there is no server to ask: n/a.
//! * overlapping grants (acquired before the previous grant's release was even called) would
//!   mean two holders at once; any is printed as a warning.
//!
//! The targets of issue 11 close the report as PASS/MISS lines; a MISS is a finding, not a
//! failure (exit 0). The exit status is 1 only if a workload could not be run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};

/// How long each workload runs; 4 runs per backend (2 workloads × 2 sides) keep the whole
/// bench near a minute.
const RUN: Duration = Duration::from_secs(5);
/// How long a ping-pong worker holds the lock.
const HOLD: Duration = Duration::from_millis(5);
const PING_PONG_WORKERS: usize = 2;
const STORM_WORKERS: usize = 8;
/// Set (to the mode) in the environment of this binary when it runs as a worker.
const WORKER_ENV: &str = "TOOZ_CONTENTION_WORKER";
/// The backend's URL, in every worker's environment (argv is visible to every local user).
const URL_ENV: &str = "TOOZ_CONTENTION_URL";
const PYTHON_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/tooz_bench.py");
/// Python workers on 2 busy cores take seconds to import tooz; a worker silent this long hangs.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// After END, a waiter may still get one grant; this long without `done` means a stuck lock.
const DONE_WITHIN: Duration = Duration::from_secs(30);
const EXIT_WITHIN: Duration = Duration::from_secs(15);
/// Time for the parent to send `go` to every worker before START.
const GO_LEAD: Duration = Duration::from_millis(50);

fn main() -> ExitCode {
    if let Ok(mode) = std::env::var(WORKER_ENV) {
        return match worker::run(&mode) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("contention worker ({mode}): {e}");
                ExitCode::FAILURE
            }
        };
    }
    parent::run()
}

/// CLOCK_MONOTONIC in nanoseconds: the clock Python's `time.monotonic_ns()` reads too, so the
/// times of all workers compare.
fn monotonic_ns() -> u64 {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always readable");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    PingPong,
    Storm,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Self::PingPong => "pingpong",
            Self::Storm => "storm",
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "pingpong" => Ok(Self::PingPong),
            "storm" => Ok(Self::Storm),
            other => Err(format!("unknown mode {other:?} (pingpong or storm)")),
        }
    }

    fn workers(self) -> usize {
        match self {
            Self::PingPong => PING_PONG_WORKERS,
            Self::Storm => STORM_WORKERS,
        }
    }
}

mod figures;
mod fleet;
mod parent;
mod worker;
