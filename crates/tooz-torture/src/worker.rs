//! The worker side: `tooz-torture worker ROLE ARGS...`. Every role prints JSON lines (`ev` names
//! the event; times are CLOCK_MONOTONIC nanoseconds, comparable across processes) and ends when
//! its stdin closes, stopping its coordinator first. A failure is one `{"ev":"error"}` line and
//! exit status 1, never a panic.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tooz::{Capabilities, Coordinator, Error, Lock};

use crate::monotonic_ns;
use crate::store::StoreClient;

/// How often a holder runs its "command" (a write to the fenced store) and looks at `is_held`.
const COMMAND_EVERY: Duration = Duration::from_millis(10);

pub(crate) fn main(args: &[String]) -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("tokio runtime: {e}")),
    };
    // A panic anywhere (a library task included) is one JSON line the parent counts.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        emit(&json!({"ev": "panic", "message": info.to_string()}));
        default_hook(info);
    }));
    let Ok(url) = std::env::var(crate::fleet::URL_ENV) else {
        return fail(&format!("no {} in the environment", crate::fleet::URL_ENV));
    };
    // ROLE URL ARGS..., as the roles below read them.
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.insert(args.len().min(1), url.as_str());
    let outcome = runtime.block_on(async {
        match args.as_slice() {
            ["exclusion", url, lock, counter, grants] => {
                exclusion(url, lock, Path::new(counter), Budget::parse(grants)?).await
            }
            ["hold", url, lock, store] => hold(url, lock, number(store)?).await,
            ["member", url, group, id] => member(url, group, id).await,
            ["leader", url, group, id] => leader(url, group, id).await,
            ["members", url, group, prefix, count] => {
                members(url, group, prefix, number(count)?).await
            }
            ["soak", url, name] => soak(url, name).await,
            [role, _url, rest @ ..] => Err(format!("unknown worker role {role:?} {rest:?}")),
            _ => Err("no worker role".into()),
        }
    });
    // Background tasks (a heartbeat stuck on a dead server) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    emit(&json!({"ev": "error", "message": message}));
    ExitCode::FAILURE
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

pub(crate) fn emit(line: &Value) {
    let mut out = std::io::stdout().lock();
    // The parent reading our stdout is gone: nothing is left to tell.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn failed_to(what: &str) -> impl FnOnce(Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Lines from the parent; `None` at EOF.
struct Commands(tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>);

impl Commands {
    fn new() -> Self {
        Self(tokio::io::BufReader::new(tokio::io::stdin()).lines())
    }

    async fn next(&mut self) -> Option<String> {
        self.0.next_line().await.ok().flatten()
    }
}

async fn connect(url: &str, member: &str) -> Result<Coordinator, String> {
    Coordinator::connect(url, member)
        .await
        .map_err(|e| format!("connect as {member}: {e}"))
}

fn member_id(role: &str) -> String {
    format!("torture-{role}-{}", std::process::id())
}

/// Waits for `go`, takes grants until the budget is spent, each around a read-modify-write of
/// `counter` that only the lock keeps right, and logs each grant's start, end and token.
async fn exclusion(url: &str, lock: &str, counter: &Path, budget: Budget) -> Result<(), String> {
    let coord = connect(url, &member_id("exclusion")).await?;
    let lock = coord.lock(lock);
    let mut commands = Commands::new();
    emit(&json!({"ev": "ready"}));
    if commands.next().await.as_deref() != Some("go") {
        return Err("expected `go`".into());
    }
    for grant in grant_loop(&lock, counter, budget).await? {
        emit(&json!({"ev": "grant", "start": grant.start, "end": grant.end, "token": grant.token}));
    }
    emit(&json!({"ev": "done"}));
    finish(commands, coord).await
}

/// How many grants an exclusion worker takes: a count, or as many as fit in a time (`60s`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Budget {
    Grants(usize),
    For(Duration),
}

impl Budget {
    pub(crate) fn arg(self) -> String {
        match self {
            Self::Grants(n) => n.to_string(),
            Self::For(d) => format!("{}s", d.as_secs()),
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        match text.strip_suffix('s') {
            Some(secs) => Ok(Self::For(Duration::from_secs(number(secs)?))),
            None => Ok(Self::Grants(number(text)?)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) token: u64,
}

pub(crate) async fn grant_loop(
    lock: &Lock,
    counter: &Path,
    budget: Budget,
) -> Result<Vec<Grant>, String> {
    let mut grants = Vec::new();
    let until = match budget {
        Budget::For(d) => monotonic_ns() + d.as_nanos() as u64,
        Budget::Grants(_) => u64::MAX,
    };
    while match budget {
        Budget::Grants(n) => grants.len() < n,
        Budget::For(_) => monotonic_ns() < until,
    } {
        let guard = lock.acquire().await.map_err(failed_to("acquire"))?;
        let start = monotonic_ns();
        bump(counter)?;
        let end = monotonic_ns();
        grants.push(Grant {
            start,
            end,
            token: guard.token().get(),
        });
        guard.release().await.map_err(failed_to("release"))?;
    }
    Ok(grants)
}

/// The read-modify-write: read the integer, yield (so another holder, if there were one, would
/// interleave), write it plus one.
fn bump(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read counter: {e}"))?;
    let count: u64 = text
        .trim()
        .parse()
        .map_err(|e| format!("counter holds {text:?} ({e}): two writers at once?"))?;
    std::thread::yield_now();
    std::fs::write(path, (count + 1).to_string()).map_err(|e| format!("write counter: {e}"))
}

/// Takes the lock and runs a "command" while it is held: every [`COMMAND_EVERY`], a write to
/// the fenced store under the grant's token. Reports the loss signal and the first moment
/// `is_held` was false. Commands on stdin: `release`; after the loss, `probe` (one write under
/// the stale token, which a fenced store must refuse once a newer holder has written); `wall`
/// (this process's wall clock, to prove a faked jump took effect).
async fn hold(url: &str, lock: &str, store: u16) -> Result<(), String> {
    let coord = connect(url, &member_id("hold")).await?;
    let mut store = StoreClient::connect(store).await?;
    let guard = coord
        .lock(lock)
        .acquire()
        .await
        .map_err(failed_to("acquire"))?;
    let token = guard.token().get();
    emit(&json!({
        "ev": "held",
        "token": token,
        "at": monotonic_ns(),
        "ttl_ms": coord.membership_timeout().as_millis() as u64,
        "lease_bound": coord.supported().lease_bound_locks,
        "wall": wall_clock(),
    }));
    let lost = guard.lost();
    tokio::spawn(async move {
        lost.await;
        emit(&json!({"ev": "lost_signal", "at": monotonic_ns()}));
    });
    let mut commands = Commands::new();
    let mut ticker = tokio::time::interval(COMMAND_EVERY);
    // The last time `is_held()` said yes: a rival granted after it was granted in time.
    let mut last_held = monotonic_ns();
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let now = monotonic_ns();
                if !guard.is_held() {
                    emit(&json!({"ev": "not_held", "at": now, "last_held": last_held}));
                    break;
                }
                last_held = now;
                store.write(lock, token).await?;
            }
            command = commands.next() => match command.as_deref() {
                Some("release") => {
                    let outcome = guard.release().await;
                    emit(&json!({"ev": "released", "ok": outcome.is_ok(), "wall": wall_clock()}));
                    return finish(commands, coord).await;
                }
                Some("wall") => emit(&json!({"ev": "wall", "wall": wall_clock()})),
                Some(other) => return Err(format!("unknown command {other:?}")),
                None => return coord.stop().await.map_err(failed_to("stop")),
            },
        }
    }
    // As an application would (and `tooz lock` does): a lost lock's guard is dropped at once,
    // which hands back whatever the server may still hold for it.
    drop(guard);
    while let Some(command) = commands.next().await {
        if command == "probe" {
            let accepted = store.write(lock, token).await?;
            emit(&json!({"ev": "stale_write", "accepted": accepted}));
        }
    }
    coord.stop().await.map_err(failed_to("stop"))
}

/// Waits for stdin to close, then stops the coordinator.
async fn finish(mut commands: Commands, coord: Coordinator) -> Result<(), String> {
    while commands.next().await.is_some() {}
    coord.stop().await.map_err(failed_to("stop"))
}

/// Joins a group and stays a member: when the membership is lost, joins again at once (as an
/// application would), reporting each loss and each join.
async fn member(url: &str, group: &str, member: &str) -> Result<(), String> {
    let coord = connect(url, member).await?;
    let mut commands = Commands::new();
    loop {
        let joined = loop {
            match coord.join_group_create(group, Capabilities::none()).await {
                Ok(membership) => break membership,
                // The backend unreachable, or our old entry not yet expired: try again.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        emit(&json!({"ev": "joined", "at": monotonic_ns()}));
        tokio::select! {
            () = joined.lost() => emit(&json!({"ev": "member_lost", "at": monotonic_ns()})),
            command = commands.next() => {
                if command.is_none() {
                    return coord.stop().await.map_err(failed_to("stop"));
                }
            }
        }
    }
}

/// Campaigns until elected, reports it, and stays leader until stdin closes.
async fn leader(url: &str, group: &str, member: &str) -> Result<(), String> {
    let coord = connect(url, member).await?;
    match coord.create_group(group).await {
        Ok(()) | Err(Error::GroupAlreadyExist { .. }) => {}
        Err(e) => return Err(format!("create group: {e}")),
    }
    let leadership = coord.campaign(group).await.map_err(failed_to("campaign"))?;
    emit(&json!({"ev": "leader", "at": monotonic_ns(), "token": leadership.token().get()}));
    finish(Commands::new(), coord).await
}

/// `count` members of one group from this one process, each its own coordinator.
async fn members(url: &str, group: &str, prefix: &str, count: usize) -> Result<(), String> {
    let mut coordinators = Vec::with_capacity(count);
    let mut memberships = Vec::with_capacity(count);
    for i in 0..count {
        let coord = connect(url, &format!("{prefix}-{i}")).await?;
        let membership = coord
            .join_group_create(group, Capabilities::none())
            .await
            .map_err(failed_to("join"))?;
        memberships.push(membership);
        coordinators.push(coord);
    }
    emit(&json!({"ev": "ready"}));
    let mut commands = Commands::new();
    while commands.next().await.is_some() {}
    drop(memberships);
    for coord in coordinators {
        coord.stop().await.map_err(failed_to("stop"))?;
    }
    Ok(())
}

/// Round after round of what a long-lived service does (a lock, a join and a leave, a listing)
/// until stdin closes; each round is reported so the parent can sample memory and descriptors
/// while it runs. A round that fails (a request past its timeout on a busy server) is counted
/// and the next one begins, as a service would carry on: the soak looks for leaks, not for
/// availability.
async fn soak(url: &str, name: &str) -> Result<(), String> {
    let coord = connect(url, &member_id("soak")).await?;
    let lock = coord.lock(name);
    let supported = coord.supported();
    let mut commands = Commands::new();
    let (mut rounds, mut failed): (u64, u64) = (0, 0);
    let mut first_error = None;
    emit(&json!({"ev": "ready"}));
    // Progress on a timer, not per round: a round stuck for good must show as no progress.
    let mut report = tokio::time::interval(Duration::from_secs(1));
    loop {
        let round = async {
            lock.acquire().await?.release().await?;
            if supported.groups {
                let membership = coord.join_group_create(name, Capabilities::none()).await?;
                coord.members(name).await?;
                membership.leave().await?;
            }
            Ok::<(), Error>(())
        };
        tokio::pin!(round);
        let finished = loop {
            tokio::select! {
                outcome = &mut round => break Some(outcome),
                _ = report.tick() => {
                    emit(&json!({"ev": "rounds", "rounds": rounds, "failed": failed, "first_error": first_error}));
                }
                command = commands.next() => {
                    if command.is_none() {
                        break None;
                    }
                }
            }
        };
        match finished {
            None => break,
            Some(Ok(())) => rounds += 1,
            Some(Err(e)) => {
                rounds += 1;
                failed += 1;
                first_error.get_or_insert_with(|| e.to_string());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // A session lost to a busy server ends the soak's coordinator with an error: what the soak
    // measures (memory, descriptors) was sampled already.
    let _ = coord.stop().await;
    Ok(())
}

/// Seconds since the epoch as this process sees them: under libfaketime, the jumped clock.
fn wall_clock() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => since.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    }
}
