//! Runs every workload on every backend and prints the report.

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
    /// Issue 11's throughput target applies (`file://` and `redis://`, the backends it named).
    issue_targets: bool,
}

/// The server backends measured beside `file://` and `redis://`, by the scheme of their entry
/// in `TOOZ_TEST_URLS` (the same URL serves Python tooz).
const OTHER_SERVERS: [&str; 5] = [
    "memcached://",
    "postgresql://",
    "mysql://",
    "etcd3+http://",
    "zookeeper://",
];

/// One side's figures on one backend; `Err` says why a workload has none.
#[derive(Debug)]
struct Measured {
    ping_pong: Result<HandOffs, String>,
    storm: Result<Storm, String>,
}

#[derive(Debug, Default)]
struct Report {
    targets: Vec<(Verdict, String)>,
    /// A workload could not be run (not merely a missed target).
    broken: bool,
}

pub(super) fn run() -> ExitCode {
    let dir = std::env::temp_dir().join(format!("tooz-bench-contention-{}", std::process::id()));
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

    // `TOOZ_CONTENTION_BACKEND=file` (or `redis`, `mysql`, ...) measures that backend alone.
    let only = std::env::var("TOOZ_CONTENTION_BACKEND").ok();
    let wanted = |label: &str| only.as_deref().is_none_or(|o| label.starts_with(o));
    if wanted("file") {
        let file = Backend {
            label: "file://",
            url: format!("file://{}", dir.join("tooz").display()),
            redis: None,
            issue_targets: true,
        };
        bench_backend(&file, &ours, python.as_ref(), &dir, &mut report);
        println!();
    }
    if wanted("redis") {
        match redis_backend() {
            Ok(redis) => {
                bench_backend(&redis, &ours, python.as_ref(), &dir, &mut report);
                clean_namespace(&redis);
            }
            Err(e) => println!("redis://: not measured ({e})"),
        }
        println!();
    }
    let test_urls = std::env::var("TOOZ_TEST_URLS").unwrap_or_default();
    for scheme in OTHER_SERVERS.into_iter().filter(|s| wanted(s)) {
        match test_urls.split_whitespace().find(|u| u.starts_with(scheme)) {
            Some(url) => {
                let server = Backend {
                    label: scheme,
                    url: url.to_owned(),
                    redis: None,
                    issue_targets: false,
                };
                bench_backend(&server, &ours, python.as_ref(), &dir, &mut report);
            }
            None => println!("{scheme}: not measured (no {scheme} URL in TOOZ_TEST_URLS)"),
        }
        println!();
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!(
        "issue 11 targets (this run; `info`: shown, not judged, on a backend the issue set no"
    );
    println!("target for; no lost update is judged everywhere):");
    for (verdict, line) in &report.targets {
        println!("{} {line}", verdict.word());
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
        issue_targets: true,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Miss,
    /// Shown, not judged: a backend the issue set no target for.
    Info,
}

impl Verdict {
    fn judged(pass: bool) -> Self {
        if pass { Self::Pass } else { Self::Miss }
    }

    fn word(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Miss => "MISS",
            Self::Info => "info",
        }
    }
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
    // Unique to this run: servers keep what earlier runs left (fencing counters, lock nodes).
    let lock = format!(
        "contention-{}-{}-{}",
        mode.arg(),
        side.name(),
        std::process::id()
    );
    let counter = dir
        .join("counters")
        .join(format!("{}-{}", side.name(), mode.arg()));
    std::fs::write(&counter, "0").map_err(|e| format!("{}: {e}", counter.display()))?;
    let workers = mode.workers();
    let commands = (0..workers)
        .map(|i| {
            let mut command = side.command(mode);
            command.env(URL_ENV, &backend.url);
            command
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
        // Secrets masked (a password, secret query options): `TOOZ_TEST_URLS` may carry them.
        tooz::options::redact_str(&backend.url),
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
    let pp = |m: &Measured, f: fn(&HandOffs) -> Option<f64>| m.ping_pong.as_ref().ok().and_then(f);
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
            label: "storm: hold median ms",
            ours: st(ours, |s| s.hold_median_ms),
            python: st(python, |s| s.hold_median_ms),
            format: |v| format!("{v:.3}"),
            better: Better::Neither,
            server_only: false,
        },
        Row {
            label: "storm: release to next grant median ms",
            ours: st(ours, |s| s.gap_median_ms),
            python: st(python, |s| s.gap_median_ms),
            format: |v| format!("{v:.3}"),
            better: Better::Lower,
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

/// Adds the issue's targets for this backend to the report: judged on the backends the issue
/// named, shown on the others (their hand-off is bounded by the server's durable write, an
/// fsync on etcd and ZooKeeper, and PostgreSQL's and memcached's waiters poll); correctness
/// is judged everywhere.
fn check_targets(backend: &Backend, ours: &Measured, python: &Measured, report: &mut Report) {
    let label = backend.label;
    let mut check = |verdict: Verdict, what: String| {
        report
            .targets
            .push((verdict, format!("{label:<13} {what}")))
    };
    let target = |pass: bool| {
        if backend.issue_targets {
            Verdict::judged(pass)
        } else {
            Verdict::Info
        }
    };
    if backend.issue_targets {
        match (&ours.storm, &python.storm) {
            (Ok(o), Ok(p)) => {
                let ratio = o.per_second / p.per_second;
                check(
                    Verdict::judged(ratio >= 2.0),
                    format!("storm: grants/s >= 2x Python's ({ratio:.2}x)"),
                );
            }
            _ => check(
                Verdict::Miss,
                "storm: grants/s >= 2x Python's (not measured)".into(),
            ),
        }
    }
    match &ours.storm {
        Ok(o) => {
            if backend.redis.is_some() {
                let attempts = o.attempts_per_grant.unwrap_or(f64::INFINITY);
                check(
                    Verdict::judged(attempts <= 1.5),
                    format!("storm: acquire attempts per grant <= 1.5 ({attempts:.2})"),
                );
            }
            let spread = o.spread();
            check(
                target(spread <= 2.0),
                format!("storm: per-process max/min grants <= 2 ({spread:.2})"),
            );
            check(
                Verdict::judged(o.lost_updates == 0 && o.overlaps == 0),
                format!(
                    "storm: no lost update, no overlapping grant ({} lost, {} overlapping)",
                    o.lost_updates, o.overlaps
                ),
            );
        }
        Err(_) => check(Verdict::Miss, "storm: not measured".into()),
    }
    match &ours.ping_pong {
        Ok(h) => {
            check(
                target(h.share >= 0.9),
                format!(
                    "ping-pong: hand-offs >= 90% of grants ({:.1}%)",
                    h.share * 100.0
                ),
            );
            let median = h.median_ms.unwrap_or(f64::INFINITY);
            check(
                target(median <= 1.0),
                format!(
                    "ping-pong: median wake-up <= 1 ms ({median:.3} ms over {} hand-offs)",
                    h.count
                ),
            );
        }
        Err(_) => check(Verdict::Miss, "ping-pong: not measured".into()),
    }
}
