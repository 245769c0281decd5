//! `scripts/bench contention`: several processes on one lock, ours against Python tooz 9.1.0's,
//! side by side in one run, on `file://` (a temporary directory) and `redis://` (the server in
//! `TOOZ_TEST_URLS`, else 127.0.0.1:6379, with a fresh `namespace` per run) — issue 11.
//!
//! Workloads, each [`RUN`] long, run by separate worker processes: ours are this binary run
//! again with `TOOZ_CONTENTION_WORKER=MODE`, Python's are `tooz_bench.py contention-worker MODE`
//! under the interpreter in `TOOZ_PYTHON`. The two sides use different lock names.
//! * ping-pong: 2 workers loop acquire, hold [`HOLD`], release, on one lock.
//! * storm: 8 workers loop acquire, read-modify-write a shared counter file (read the integer,
//!   write it plus one: only the lock keeps it right), release, on one lock.
//!
//! Worker protocol (the same on both sides): connect, take and give back one warm-up grant,
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

/// Our worker: this binary run again with `TOOZ_CONTENTION_WORKER=MODE` (Python's is
/// `tooz_bench.py contention-worker`, the same protocol).
mod worker {
    use super::*;

    use tooz::{Coordinator, Lock};

    /// Arguments after the program (and, for Python, the mode): URL LOCK MEMBER COUNTER HOLD_MS.
    struct Args {
        url: String,
        lock: String,
        member: String,
        counter: PathBuf,
        hold: Duration,
    }

    impl Args {
        fn from_env() -> Result<Self, String> {
            let args: Vec<String> = std::env::args().skip(1).collect();
            let [url, lock, member, counter, hold_ms] = args.as_slice() else {
                return Err(format!(
                    "expected URL LOCK MEMBER COUNTER HOLD_MS, got {args:?}"
                ));
            };
            let hold_ms: u64 = hold_ms
                .parse()
                .map_err(|e| format!("HOLD_MS {hold_ms:?}: {e}"))?;
            Ok(Self {
                url: url.clone(),
                lock: lock.clone(),
                member: member.clone(),
                counter: counter.into(),
                hold: Duration::from_millis(hold_ms),
            })
        }
    }

    pub(super) fn run(mode: &str) -> Result<(), String> {
        let mode = Mode::parse(mode)?;
        let args = Args::from_env()?;
        // Multi-threaded, so the coordinator's background tasks (heartbeats) keep running
        // while the main thread blocks on stdin between phases.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let coord = runtime
            .block_on(Coordinator::connect(&args.url, args.member.as_str()))
            .map_err(|e| format!("connect to {}: {e}", args.url))?;
        let lock = coord.lock(args.lock.as_str());
        // The first grant loads scripts and opens files: not part of the measurement.
        runtime
            .block_on(async { lock.acquire().await?.release().await })
            .map_err(|e| format!("warm-up grant: {e}"))?;
        say("ready")?;
        let (start, end) = read_go()?;
        let grants = runtime.block_on(grant_loop(&lock, mode, &args, start, end))?;
        report(&grants)?;
        // Stay connected until the parent has read the server's counters.
        std::io::copy(&mut std::io::stdin(), &mut std::io::sink())
            .map_err(|e| format!("stdin: {e}"))?;
        runtime
            .block_on(coord.stop())
            .map_err(|e| format!("stop: {e}"))
    }

    fn say(line: &str) -> Result<(), String> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))
    }

    /// Reads `go START END`.
    fn read_go() -> Result<(u64, u64), String> {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("stdin: {e}"))?;
        let parsed = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["go", start, end] => start.parse().ok().zip(end.parse().ok()),
            _ => None,
        };
        parsed.ok_or_else(|| format!("expected `go START END` on stdin, got {line:?}"))
    }

    /// (acquired, released) of every grant from START until END.
    async fn grant_loop(
        lock: &Lock,
        mode: Mode,
        args: &Args,
        start: u64,
        end: u64,
    ) -> Result<Vec<(u64, u64)>, String> {
        tokio::time::sleep(Duration::from_nanos(start.saturating_sub(monotonic_ns()))).await;
        let mut grants = Vec::with_capacity(4096);
        while monotonic_ns() < end {
            let guard = lock.acquire().await.map_err(|e| format!("acquire: {e}"))?;
            let acquired = monotonic_ns();
            match mode {
                Mode::PingPong => tokio::time::sleep(args.hold).await,
                // Blocking file I/O on the runtime: a few microseconds, and it is the point of
                // the workload that nothing else happens while the lock is held.
                Mode::Storm => bump(&args.counter)?,
            }
            let released = monotonic_ns();
            guard.release().await.map_err(|e| format!("release: {e}"))?;
            grants.push((acquired, released));
        }
        Ok(grants)
    }

    /// The non-atomic read-modify-write the lock must protect.
    fn bump(path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("read counter {}: {e}", path.display()))?;
        let count: u64 = text.trim().parse().map_err(|e| {
            format!(
                "counter {} holds {text:?} ({e}): written by two holders at once?",
                path.display()
            )
        })?;
        std::fs::write(path, (count + 1).to_string())
            .map_err(|e| format!("write counter {}: {e}", path.display()))
    }

    fn report(grants: &[(u64, u64)]) -> Result<(), String> {
        let pid = std::process::id();
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for (acquired, released) in grants {
            writeln!(
                out,
                r#"{{"pid":{pid},"acquired":{acquired},"released":{released}}}"#
            )
            .map_err(|e| format!("stdout: {e}"))?;
        }
        writeln!(out, "done")
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))
    }
}

/// Worker processes of one workload, driven through the protocol.
mod fleet {
    use super::*;

    /// One grant as a worker logged it; `worker` is the index of the process that logged it.
    #[derive(Clone, Copy, Debug)]
    pub(super) struct Grant {
        pub(super) worker: usize,
        pub(super) acquired: u64,
        pub(super) released: u64,
    }

    #[derive(serde::Deserialize)]
    struct Record {
        #[allow(
            dead_code,
            reason = "logged for people reading the lines; `worker` is used"
        )]
        pid: u32,
        acquired: u64,
        released: u64,
    }

    /// A line from a worker's stdout, or `None` at its EOF.
    type Line = (usize, Option<String>);

    #[derive(Debug)]
    pub(super) struct Fleet {
        children: Vec<Child>,
        stdins: Vec<Option<ChildStdin>>,
        lines: Receiver<Line>,
        stderr: Vec<Option<JoinHandle<String>>>,
    }

    impl Fleet {
        pub(super) fn spawn(commands: Vec<Command>) -> Result<Self, String> {
            let (tx, lines) = mpsc::channel();
            let mut fleet = Self {
                children: Vec::new(),
                stdins: Vec::new(),
                lines,
                stderr: Vec::new(),
            };
            for (index, mut command) in commands.into_iter().enumerate() {
                let mut child = command
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| format!("start worker {command:?}: {e}"))?;
                fleet.stdins.push(child.stdin.take());
                let stdout = child.stdout.take().expect("stdout was piped");
                let stderr = child.stderr.take().expect("stderr was piped");
                fleet.children.push(child);
                let tx = tx.clone();
                // Threads, so a worker that hangs or floods one pipe never blocks the others.
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                        let _ = tx.send((index, Some(line)));
                    }
                    let _ = tx.send((index, None));
                });
                fleet.stderr.push(Some(std::thread::spawn(move || {
                    let mut text = String::new();
                    let _ = BufReader::new(stderr).read_to_string(&mut text);
                    text
                })));
            }
            Ok(fleet)
        }

        /// Waits until every worker has printed `word`, collecting the grants printed before it.
        pub(super) fn until_all(
            &mut self,
            word: &str,
            within: Duration,
        ) -> Result<Vec<Grant>, String> {
            let deadline = Instant::now() + within;
            let mut said = vec![false; self.children.len()];
            let mut grants = Vec::new();
            while said.contains(&false) {
                let left = deadline.saturating_duration_since(Instant::now());
                let (worker, line) = match self.lines.recv_timeout(left) {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Timeout) => {
                        return Err(self.failure(&format!("no `{word}` within {within:?}")));
                    }
                    // Every reader has ended, each after its `None`, which already returned.
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(self.failure("every worker's stdout closed"));
                    }
                };
                match line {
                    Some(line) if line == word => said[worker] = true,
                    Some(line) => grants.push(parse(worker, &line)?),
                    None => {
                        return Err(self.failure(&format!("worker {worker} ended before `{word}`")));
                    }
                }
            }
            Ok(grants)
        }

        pub(super) fn go(&mut self, start: u64, end: u64) -> Result<(), String> {
            for (worker, stdin) in self.stdins.iter_mut().enumerate() {
                let sent = stdin
                    .as_mut()
                    .map(|s| writeln!(s, "go {start} {end}").and_then(|()| s.flush()));
                if let Some(Err(e)) = sent {
                    return Err(self.failure(&format!("send go to worker {worker}: {e}")));
                }
            }
            Ok(())
        }

        /// Closes the workers' stdin (they stop their coordinators) and waits for them to exit.
        pub(super) fn finish(mut self) -> Result<(), String> {
            self.stdins.clear();
            let deadline = Instant::now() + EXIT_WITHIN;
            for worker in 0..self.children.len() {
                loop {
                    match self.children[worker].try_wait() {
                        Ok(Some(status)) if status.success() => break,
                        Ok(Some(status)) => {
                            return Err(self.failure(&format!("worker {worker} {status}")));
                        }
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Ok(None) => {
                            return Err(self.failure(&format!(
                                "worker {worker} still running {EXIT_WITHIN:?} after EOF"
                            )));
                        }
                        Err(e) => return Err(self.failure(&format!("wait: {e}"))),
                    }
                }
            }
            Ok(())
        }

        /// Ends every worker and says why, with the tail of each one's stderr.
        fn failure(&mut self, why: &str) -> String {
            self.kill();
            let mut message = why.to_owned();
            for (worker, handle) in self.stderr.iter_mut().enumerate() {
                let text = handle
                    .take()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                for line in &lines[lines.len().saturating_sub(10)..] {
                    message.push_str(&format!("\n  worker {worker}: {line}"));
                }
            }
            message
        }

        fn kill(&mut self) {
            self.stdins.clear();
            for child in &mut self.children {
                if matches!(child.try_wait(), Ok(None)) {
                    let _ = child.kill();
                }
                let _ = child.wait();
            }
        }
    }

    impl Drop for Fleet {
        /// No worker outlives its workload, whatever went wrong.
        fn drop(&mut self) {
            self.kill();
        }
    }

    fn parse(worker: usize, line: &str) -> Result<Grant, String> {
        let record: Record = serde_json::from_str(line)
            .map_err(|e| format!("worker {worker} printed {line:?}, not a grant: {e}"))?;
        Ok(Grant {
            worker,
            acquired: record.acquired,
            released: record.released,
        })
    }
}

/// What the logs and counters say about one run.
mod figures {
    use super::fleet::Grant;

    /// Everything one workload run produced.
    #[derive(Debug)]
    pub(super) struct Run {
        /// Every grant logged, sorted by acquire time.
        pub(super) grants: Vec<Grant>,
        pub(super) workers: usize,
        pub(super) start: u64,
        pub(super) end: u64,
        /// The storm's counter file at the end.
        pub(super) counter: u64,
        /// Acquire attempts and server commands counted by Redis during the run.
        pub(super) server: Option<ServerCounts>,
    }

    #[derive(Clone, Debug)]
    pub(super) struct ServerCounts {
        pub(super) attempts: u64,
        pub(super) commands: u64,
        /// The commands the server ran most, with their calls.
        pub(super) busiest: Vec<(String, u64)>,
    }

    impl Run {
        fn in_window(&self) -> Vec<Grant> {
            self.grants
                .iter()
                .copied()
                .filter(|g| (self.start..self.end).contains(&g.acquired))
                .collect()
        }

        fn seconds(&self) -> f64 {
            (self.end - self.start) as f64 / 1e9
        }

        /// Grants acquired before the previous grant's release was called: two holders.
        fn overlaps(&self) -> usize {
            self.grants
                .windows(2)
                .filter(|w| w[1].acquired < w[0].released)
                .count()
        }
    }

    #[derive(Debug)]
    pub(super) struct HandOffs {
        pub(super) count: usize,
        pub(super) per_second: f64,
        pub(super) share: f64,
        pub(super) median_ms: Option<f64>,
        pub(super) p99_ms: Option<f64>,
        pub(super) overlaps: usize,
    }

    pub(super) fn hand_offs(run: &Run) -> HandOffs {
        let grants = run.in_window();
        let mut wake_ms: Vec<f64> = grants
            .windows(2)
            .filter(|w| w[0].worker != w[1].worker)
            .map(|w| (w[1].acquired as f64 - w[0].released as f64) / 1e6)
            .collect();
        wake_ms.sort_by(f64::total_cmp);
        let transitions = grants.len().saturating_sub(1);
        HandOffs {
            count: wake_ms.len(),
            per_second: wake_ms.len() as f64 / run.seconds(),
            share: wake_ms.len() as f64 / transitions.max(1) as f64,
            median_ms: percentile(&wake_ms, 0.5),
            p99_ms: percentile(&wake_ms, 0.99),
            overlaps: run.overlaps(),
        }
    }

    /// Nearest-rank percentile of sorted values.
    fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted.get(rank - 1).copied()
    }

    #[derive(Debug)]
    pub(super) struct Storm {
        pub(super) per_second: f64,
        pub(super) min: usize,
        pub(super) max: usize,
        pub(super) lost_updates: i64,
        pub(super) attempts_per_grant: Option<f64>,
        pub(super) commands_per_grant: Option<f64>,
        pub(super) busiest_per_grant: Vec<(String, f64)>,
        pub(super) overlaps: usize,
    }

    impl Storm {
        /// Per-process max/min grants; infinite if a process got none.
        pub(super) fn spread(&self) -> f64 {
            self.max as f64 / self.min as f64
        }
    }

    pub(super) fn storm(run: &Run) -> Storm {
        let grants = run.in_window();
        let mut per_worker = vec![0usize; run.workers];
        for g in &grants {
            per_worker[g.worker] += 1;
        }
        let all = run.grants.len() as f64;
        Storm {
            per_second: grants.len() as f64 / run.seconds(),
            min: per_worker.iter().copied().min().unwrap_or(0),
            max: per_worker.iter().copied().max().unwrap_or(0),
            lost_updates: run.grants.len() as i64 - run.counter as i64,
            attempts_per_grant: run.server.as_ref().map(|s| s.attempts as f64 / all),
            commands_per_grant: run.server.as_ref().map(|s| s.commands as f64 / all),
            busiest_per_grant: run
                .server
                .iter()
                .flat_map(|s| &s.busiest)
                .map(|(name, calls)| (name.clone(), *calls as f64 / all))
                .collect(),
            overlaps: run.overlaps(),
        }
    }
}

/// Runs every workload on every backend and prints the report.
mod parent {
    use super::figures::{self, HandOffs, Run, ServerCounts, Storm};
    use super::fleet::Fleet;
    use super::*;

    /// Who runs the workers.
    #[derive(Debug)]
    enum Side {
        /// This binary, run again as a worker.
        Ours(PathBuf),
        /// `tooz_bench.py contention-worker` under this interpreter.
        Python(String),
    }

    impl Side {
        fn name(&self) -> &'static str {
            match self {
                Self::Ours(_) => "rust",
                Self::Python(_) => "python",
            }
        }

        fn command(&self, mode: Mode) -> Command {
            match self {
                Self::Ours(exe) => {
                    let mut command = Command::new(exe);
                    command.env(WORKER_ENV, mode.arg());
                    command
                }
                Self::Python(python) => {
                    let mut command = Command::new(python);
                    command
                        .arg(PYTHON_SCRIPT)
                        .arg("contention-worker")
                        .arg(mode.arg());
                    command
                }
            }
        }

        /// Acquire attempts from the deltas of the server's command counters (see the module
        /// docs): Python's are its `SET NX PX` calls, ours the script calls that were not
        /// releases.
        fn attempts(&self, delta: &HashMap<String, u64>, grants: u64) -> u64 {
            let calls = |name: &str| delta.get(name).copied().unwrap_or(0);
            match self {
                Self::Python(_) => calls("set"),
                Self::Ours(_) => (calls("evalsha") + calls("eval")).saturating_sub(grants),
            }
        }
    }

    #[derive(Debug)]
    struct Backend {
        label: &'static str,
        url: String,
        /// The server, to read its command counters (Redis only).
        redis: Option<redis::Client>,
    }

    /// One side's figures on one backend; `Err` says why a workload has none.
    #[derive(Debug)]
    struct Measured {
        ping_pong: Result<HandOffs, String>,
        storm: Result<Storm, String>,
    }

    #[derive(Debug, Default)]
    struct Report {
        targets: Vec<(bool, String)>,
        /// A workload could not be run (not merely a missed target).
        broken: bool,
    }

    pub(super) fn run() -> ExitCode {
        let dir =
            std::env::temp_dir().join(format!("tooz-bench-contention-{}", std::process::id()));
        let ours = match std::env::current_exe() {
            Ok(exe) => Side::Ours(exe),
            Err(e) => {
                eprintln!("cannot find this bench's own executable to run workers: {e}");
                return ExitCode::FAILURE;
            }
        };
        let python = std::env::var("TOOZ_PYTHON").ok().map(Side::Python);
        let mut report = Report::default();
        if let Err(e) = std::fs::create_dir_all(dir.join("counters")) {
            eprintln!("cannot create {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }

        let file = Backend {
            label: "file://",
            url: format!("file://{}", dir.join("tooz").display()),
            redis: None,
        };
        bench_backend(&file, &ours, python.as_ref(), &dir, &mut report);
        println!();
        match redis_backend() {
            Ok(redis) => {
                bench_backend(&redis, &ours, python.as_ref(), &dir, &mut report);
                clean_namespace(&redis);
            }
            Err(e) => println!("redis://: not measured ({e})"),
        }
        let _ = std::fs::remove_dir_all(&dir);

        println!();
        println!("issue 11 targets (this run):");
        for (pass, line) in &report.targets {
            println!("{} {line}", if *pass { "PASS" } else { "MISS" });
        }
        if report.broken {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }

    /// The Redis server of `TOOZ_TEST_URLS` (as `scripts/bench redis`), else the local default,
    /// with a namespace no earlier run used.
    fn redis_backend() -> Result<Backend, String> {
        let server = std::env::var("TOOZ_TEST_URLS")
            .unwrap_or_default()
            .split_whitespace()
            .find(|u| u.starts_with("redis://"))
            .and_then(|u| u.split('?').next())
            .unwrap_or("redis://127.0.0.1:6379")
            .to_owned();
        let client = redis::Client::open(server.as_str()).map_err(|e| format!("{server}: {e}"))?;
        let mut conn = client
            .get_connection()
            .map_err(|e| format!("no server at {server}: {e}"))?;
        redis::cmd("PING")
            .query::<String>(&mut conn)
            .map_err(|e| format!("{server}: {e}"))?;
        let namespace = format!("tooz-contention-{}-{}", std::process::id(), monotonic_ns());
        Ok(Backend {
            label: "redis://",
            url: format!("{server}?namespace={namespace}"),
            redis: Some(client),
        })
    }

    /// Deletes what the run left under its namespace (member keys, fencing counters).
    fn clean_namespace(backend: &Backend) {
        let (Some(client), Some((_, namespace))) =
            (&backend.redis, backend.url.split_once("namespace="))
        else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let mut cursor = 0u64;
        loop {
            let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{namespace}*"))
                .arg("COUNT")
                .arg(1000)
                .query(&mut conn)
            else {
                return;
            };
            if !keys.is_empty() {
                let _: redis::RedisResult<u64> = redis::cmd("DEL").arg(&keys).query(&mut conn);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }

    fn bench_backend(
        backend: &Backend,
        ours: &Side,
        python: Option<&Side>,
        dir: &Path,
        report: &mut Report,
    ) {
        let ours_figures = measure(backend, ours, dir, report);
        let python_figures = match python {
            Some(python) => measure(backend, python, dir, report),
            None => {
                let why = "python tooz not measured (set TOOZ_PYTHON; scripts/bench does)";
                Measured {
                    ping_pong: Err(why.into()),
                    storm: Err(why.into()),
                }
            }
        };
        print_block(backend, &ours_figures, &python_figures);
        check_targets(backend, &ours_figures, &python_figures, report);
    }

    fn measure(backend: &Backend, side: &Side, dir: &Path, report: &mut Report) -> Measured {
        let mut run = |mode| {
            let result = run_workload(backend, side, mode, dir);
            if let Err(e) = &result {
                report.broken = true;
                eprintln!("{} {} {}: {e}", backend.label, side.name(), mode.arg());
            }
            result
        };
        Measured {
            ping_pong: run(Mode::PingPong).map(|r| figures::hand_offs(&r)),
            storm: run(Mode::Storm).map(|r| figures::storm(&r)),
        }
    }

    /// Starts the workers of one workload, lets them loop for [`RUN`] and collects their logs
    /// and the server's counters.
    fn run_workload(backend: &Backend, side: &Side, mode: Mode, dir: &Path) -> Result<Run, String> {
        let lock = format!("contention-{}-{}", mode.arg(), side.name());
        let counter = dir
            .join("counters")
            .join(format!("{}-{}", side.name(), mode.arg()));
        std::fs::write(&counter, "0").map_err(|e| format!("{}: {e}", counter.display()))?;
        let workers = mode.workers();
        let commands = (0..workers)
            .map(|i| {
                let mut command = side.command(mode);
                command
                    .arg(&backend.url)
                    .arg(&lock)
                    .arg(format!("{lock}-{i}"))
                    .arg(&counter)
                    .arg(HOLD.as_millis().to_string());
                command
            })
            .collect();
        let mut fleet = Fleet::spawn(commands)?;
        fleet.until_all("ready", READY_WITHIN)?;
        let mut server = ServerCounter::open(backend)?;
        let before = server.read()?;
        let start = monotonic_ns() + GO_LEAD.as_nanos() as u64;
        let end = start + RUN.as_nanos() as u64;
        fleet.go(start, end)?;
        let mut grants = fleet.until_all("done", RUN + GO_LEAD + DONE_WITHIN)?;
        let after = server.read()?;
        fleet.finish()?;
        grants.sort_by_key(|g| g.acquired);
        let server = before.zip(after).map(|(before, after)| {
            let delta = delta(&before, &after);
            ServerCounts {
                attempts: side.attempts(&delta, grants.len() as u64),
                commands: delta.values().sum(),
                busiest: busiest(delta),
            }
        });
        let text =
            std::fs::read_to_string(&counter).map_err(|e| format!("{}: {e}", counter.display()))?;
        let counter = text
            .trim()
            .parse()
            .map_err(|e| format!("counter {} holds {text:?}: {e}", counter.display()))?;
        Ok(Run {
            grants,
            workers,
            start,
            end,
            counter,
            server,
        })
    }

    /// The server's per-command call counts, on Redis; nothing on other backends.
    struct ServerCounter(Option<redis::Connection>);

    impl ServerCounter {
        fn open(backend: &Backend) -> Result<Self, String> {
            backend
                .redis
                .as_ref()
                .map(|client| client.get_connection())
                .transpose()
                .map(Self)
                .map_err(|e| format!("redis: {e}"))
        }

        /// Calls per command (`set`, `evalsha`, ...) so far, our own INFO calls left out.
        fn read(&mut self) -> Result<Option<HashMap<String, u64>>, String> {
            let Some(conn) = &mut self.0 else {
                return Ok(None);
            };
            let info: String = redis::cmd("INFO")
                .arg("commandstats")
                .query(conn)
                .map_err(|e| format!("INFO commandstats: {e}"))?;
            Ok(Some(
                info.lines()
                    .filter_map(|l| l.strip_prefix("cmdstat_")?.split_once(":calls="))
                    .filter(|(name, _)| *name != "info")
                    .filter_map(|(name, rest)| {
                        Some((name.to_owned(), rest.split(',').next()?.parse().ok()?))
                    })
                    .collect(),
            ))
        }
    }

    fn delta(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> HashMap<String, u64> {
        after
            .iter()
            .map(|(name, calls)| {
                let was = before.get(name).copied().unwrap_or(0);
                (name.clone(), calls.saturating_sub(was))
            })
            .collect()
    }

    /// The six commands with the most calls, most first.
    fn busiest(delta: HashMap<String, u64>) -> Vec<(String, u64)> {
        let mut calls: Vec<(String, u64)> = delta.into_iter().filter(|(_, c)| *c > 0).collect();
        calls.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        calls.truncate(6);
        calls
    }

    /// A row: the label, our value, Python's, and how many times better ours is.
    struct Row {
        label: &'static str,
        ours: Option<f64>,
        python: Option<f64>,
        format: fn(f64) -> String,
        better: Better,
        /// Counted by the server: "n/a" where there is none to ask (`file://`).
        server_only: bool,
    }

    #[derive(Clone, Copy)]
    enum Better {
        Higher,
        Lower,
        /// No ratio: the figure is not a score (a count, a must-be-zero).
        Neither,
    }

    fn print_block(backend: &Backend, ours: &Measured, python: &Measured) {
        println!(
            "contention on {} ({}, {} cores), ours vs Python tooz 9.1.0, one run",
            backend.url,
            std::env::consts::ARCH,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!(
            "ping-pong: {PING_PONG_WORKERS} processes, {HOLD:?} holds; storm: {STORM_WORKERS} \
             processes, counter read-modify-write; {RUN:?} each"
        );
        println!(
            "{:<42} {:>10} {:>10} {:>7}",
            "workload", "ours", "python", "ratio"
        );
        let pp =
            |m: &Measured, f: fn(&HandOffs) -> Option<f64>| m.ping_pong.as_ref().ok().and_then(f);
        let st = |m: &Measured, f: fn(&Storm) -> Option<f64>| m.storm.as_ref().ok().and_then(f);
        let rows = [
            Row {
                label: "ping-pong: hand-offs (wake-ups measured)",
                ours: pp(ours, |h| Some(h.count as f64)),
                python: pp(python, |h| Some(h.count as f64)),
                format: |v| format!("{v:.0}"),
                better: Better::Neither,
                server_only: false,
            },
            Row {
                label: "ping-pong: hand-offs/s",
                ours: pp(ours, |h| Some(h.per_second)),
                python: pp(python, |h| Some(h.per_second)),
                format: |v| format!("{v:.1}"),
                better: Better::Higher,
                server_only: false,
            },
            Row {
                label: "ping-pong: hand-offs, share of grants",
                ours: pp(ours, |h| Some(h.share)),
                python: pp(python, |h| Some(h.share)),
                format: |v| format!("{:.1}%", v * 100.0),
                better: Better::Higher,
                server_only: false,
            },
            Row {
                label: "ping-pong: wake-up median ms",
                ours: pp(ours, |h| h.median_ms),
                python: pp(python, |h| h.median_ms),
                format: |v| format!("{v:.3}"),
                better: Better::Lower,
                server_only: false,
            },
            Row {
                label: "ping-pong: wake-up p99 ms",
                ours: pp(ours, |h| h.p99_ms),
                python: pp(python, |h| h.p99_ms),
                format: |v| format!("{v:.3}"),
                better: Better::Lower,
                server_only: false,
            },
            Row {
                label: "storm: grants/s",
                ours: st(ours, |s| Some(s.per_second)),
                python: st(python, |s| Some(s.per_second)),
                format: |v| format!("{v:.0}"),
                better: Better::Higher,
                server_only: false,
            },
            Row {
                label: "storm: per-process min grants",
                ours: st(ours, |s| Some(s.min as f64)),
                python: st(python, |s| Some(s.min as f64)),
                format: |v| format!("{v:.0}"),
                better: Better::Neither,
                server_only: false,
            },
            Row {
                label: "storm: per-process max grants",
                ours: st(ours, |s| Some(s.max as f64)),
                python: st(python, |s| Some(s.max as f64)),
                format: |v| format!("{v:.0}"),
                better: Better::Neither,
                server_only: false,
            },
            Row {
                label: "storm: per-process max/min",
                ours: st(ours, |s| Some(s.spread())),
                python: st(python, |s| Some(s.spread())),
                format: |v| format!("{v:.2}"),
                better: Better::Lower,
                server_only: false,
            },
            Row {
                label: "storm: lost updates",
                ours: st(ours, |s| Some(s.lost_updates as f64)),
                python: st(python, |s| Some(s.lost_updates as f64)),
                format: |v| format!("{v:.0}"),
                better: Better::Neither,
                server_only: false,
            },
            Row {
                label: "storm: acquire attempts per grant",
                ours: st(ours, |s| s.attempts_per_grant),
                python: st(python, |s| s.attempts_per_grant),
                format: |v| format!("{v:.2}"),
                better: Better::Lower,
                server_only: true,
            },
            Row {
                label: "storm: server commands per grant (all)",
                ours: st(ours, |s| s.commands_per_grant),
                python: st(python, |s| s.commands_per_grant),
                format: |v| format!("{v:.2}"),
                better: Better::Lower,
                server_only: true,
            },
        ];
        for row in &rows {
            print_row(backend, row);
        }
        for (side, m) in [("ours", ours), ("python", python)] {
            print_busiest(side, m);
        }
        for (side, m) in [("ours", ours), ("python", python)] {
            print_troubles(side, m);
        }
    }

    fn print_row(backend: &Backend, row: &Row) {
        let show = |v: Option<f64>| match v {
            Some(v) => (row.format)(v),
            None if row.server_only && backend.redis.is_none() => "n/a".to_owned(),
            None => "-".to_owned(),
        };
        let ratio = match (row.ours, row.python, row.better) {
            (Some(o), Some(p), Better::Higher) => format!("{:.1}x", o / p),
            (Some(o), Some(p), Better::Lower) => format!("{:.1}x", p / o),
            _ => "-".to_owned(),
        };
        println!(
            "{:<42} {:>10} {:>10} {:>7}",
            row.label,
            show(row.ours),
            show(row.python),
            ratio
        );
    }

    /// What the server ran per storm grant, busiest first: where the attempts went.
    fn print_busiest(side: &str, m: &Measured) {
        let Ok(storm) = &m.storm else { return };
        if storm.busiest_per_grant.is_empty() {
            return;
        }
        let calls: Vec<String> = storm
            .busiest_per_grant
            .iter()
            .map(|(name, per_grant)| format!("{name} {per_grant:.2}"))
            .collect();
        println!("{side} storm, server calls per grant: {}", calls.join(", "));
    }

    /// Says why a side has no figures, and warns of overlapping grants.
    fn print_troubles(side: &str, m: &Measured) {
        let workloads = [
            ("ping-pong", m.ping_pong.as_ref().map(|h| h.overlaps)),
            ("storm", m.storm.as_ref().map(|s| s.overlaps)),
        ];
        for (workload, result) in workloads {
            match result {
                Ok(0) => {}
                Ok(overlaps) => println!(
                    "WARNING {side} {workload}: {overlaps} grant(s) acquired before the previous \
                     holder called release: two holders at once"
                ),
                Err(why) => println!("{side} {workload}: {}", why.lines().next().unwrap_or("")),
            }
        }
    }

    /// Adds the issue's targets for this backend to the report.
    fn check_targets(backend: &Backend, ours: &Measured, python: &Measured, report: &mut Report) {
        let label = backend.label;
        let mut check =
            |pass: bool, what: String| report.targets.push((pass, format!("{label:<9} {what}")));
        match (&ours.storm, &python.storm) {
            (Ok(o), Ok(p)) => {
                let ratio = o.per_second / p.per_second;
                check(
                    ratio >= 2.0,
                    format!("storm: grants/s >= 2x Python's ({ratio:.2}x)"),
                );
            }
            _ => check(
                false,
                "storm: grants/s >= 2x Python's (not measured)".into(),
            ),
        }
        match &ours.storm {
            Ok(o) => {
                if backend.redis.is_some() {
                    let attempts = o.attempts_per_grant.unwrap_or(f64::INFINITY);
                    check(
                        attempts <= 1.5,
                        format!("storm: acquire attempts per grant <= 1.5 ({attempts:.2})"),
                    );
                }
                let spread = o.spread();
                check(
                    spread <= 2.0,
                    format!("storm: per-process max/min grants <= 2 ({spread:.2})"),
                );
                check(
                    o.lost_updates == 0 && o.overlaps == 0,
                    format!(
                        "storm: no lost update, no overlapping grant ({} lost, {} overlapping)",
                        o.lost_updates, o.overlaps
                    ),
                );
            }
            Err(_) => check(false, "storm: not measured".into()),
        }
        match &ours.ping_pong {
            Ok(h) => {
                check(
                    h.share >= 0.9,
                    format!(
                        "ping-pong: hand-offs >= 90% of grants ({:.1}%)",
                        h.share * 100.0
                    ),
                );
                let median = h.median_ms.unwrap_or(f64::INFINITY);
                check(
                    median <= 1.0,
                    format!(
                        "ping-pong: median wake-up <= 1 ms ({median:.3} ms over {} hand-offs)",
                        h.count
                    ),
                );
            }
            Err(_) => check(false, "ping-pong: not measured".into()),
        }
    }
}
