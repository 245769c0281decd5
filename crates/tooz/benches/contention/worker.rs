//! Our worker: this binary run again with `TOOZ_CONTENTION_WORKER=MODE` (Python's is
//! `tooz_bench.py contention-worker`, the same protocol).

use super::*;

use tooz::{Coordinator, Lock};

/// Arguments after the program (and, for Python, the mode): LOCK MEMBER COUNTER HOLD_MS; the
/// URL comes in [`URL_ENV`], out of sight of `ps` (it may carry a password).
struct Args {
    url: String,
    lock: String,
    member: String,
    counter: PathBuf,
    hold: Duration,
}

impl Args {
    fn from_env() -> Result<Self, String> {
        let url = std::env::var(URL_ENV).map_err(|e| format!("{URL_ENV}: {e}"))?;
        let args: Vec<String> = std::env::args().skip(1).collect();
        let [lock, member, counter, hold_ms] = args.as_slice() else {
            return Err(format!(
                "expected LOCK MEMBER COUNTER HOLD_MS, got {args:?}"
            ));
        };
        let hold_ms: u64 = hold_ms
            .parse()
            .map_err(|e| format!("HOLD_MS {hold_ms:?}: {e}"))?;
        Ok(Self {
            url,
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
        .map_err(|e| format!("connect: {e}"))?;
    let lock = coord.lock(args.lock.as_str());
    // The first grant loads scripts and opens files: not part of the measurement.
    runtime
        .block_on(async { lock.acquire().await?.release().await })
        .map_err(|e| format!("warm-up grant: {e}"))?;
    say("ready")?;
    let (start, end) = read_go()?;
    // On a worker thread, as a task: `block_on` would run the loop on this thread, so every
    // reply read by a worker would have to wake this one (a futex wake per round trip).
    let (hold, counter) = (args.hold, args.counter);
    let grants = runtime
        .block_on(async move {
            tokio::spawn(async move { grant_loop(&lock, mode, hold, &counter, start, end).await })
                .await
        })
        .map_err(|e| format!("grant loop: {e}"))??;
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
    hold: Duration,
    counter: &Path,
    start: u64,
    end: u64,
) -> Result<Vec<(u64, u64)>, String> {
    tokio::time::sleep(Duration::from_nanos(start.saturating_sub(monotonic_ns()))).await;
    let mut grants = Vec::with_capacity(4096);
    while monotonic_ns() < end {
        let guard = lock.acquire().await.map_err(|e| format!("acquire: {e}"))?;
        let acquired = monotonic_ns();
        match mode {
            Mode::PingPong => tokio::time::sleep(hold).await,
            // Blocking file I/O on the runtime: a few microseconds, and it is the point of
            // the workload that nothing else happens while the lock is held.
            Mode::Storm => bump(counter)?,
        }
        let released = monotonic_ns();
        // Whether the loss signal had fired says whose the error is (a loss reported, or a
        // release the backend did not confirm).
        let held = guard.is_held();
        guard
            .release()
            .await
            .map_err(|e| format!("release: {e} (is_held() said {held} just before)"))?;
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
