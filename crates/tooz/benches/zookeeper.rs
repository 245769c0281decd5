//! `scripts/bench zookeeper`: the ZooKeeper backend against Python tooz 9.1.0's kazoo driver
//! and against the raw floor (the requests of kazoo's lock recipe, issued straight through one
//! zookeeper-client `Client` with no library: `create` of an ephemeral sequential contender
//! `/tooz/locks/<name>/<32 hex>__lock__<sequence>` holding the member id, `get_children` of the
//! lock's node, the check that ours comes first, `delete` of the contender), on one server, in
//! one run. The server comes from `TOOZ_ZOOKEEPER_URL`, else the `zookeeper://` entry of
//! `TOOZ_TEST_URLS` (scripts/bench starts one), else 127.0.0.1:2181; only its host and port
//! are kept (no credentials, chroot or options).
//!
//! Workloads:
//! * lock pairs: acquire+release pairs per second of one lock, one coordinator, one task. The
//!   floor two ways: pipelined (the create and the listing sent back to back, then awaited
//!   together: ZooKeeper answers a session's requests in order, so the listing includes the
//!   new node; then the delete: two round trips, as our driver does it), and sequential (each
//!   request awaited before the next: three round trips, for information). Ours and the two
//!   floors run in [`ROUNDS`] alternating rounds, so that the machine's drift falls on all
//!   alike; the table gives each side's median round.
//! * 64 tasks: 64 concurrent tasks on one coordinator, each taking a lock of its own in a loop
//!   (floor: 64 tasks on one client, each with a clone of it, pipelined), alternating rounds
//!   likewise.
//! * hand-off: a second coordinator blocked in `acquire()` of a lock the first holds (its
//!   contender queued, watching the holder's node); the wake-up latency is the time from the
//!   holder's release call to the waiter's `acquire()` returning (so it includes the release's
//!   own round trip), median and p99 of [`HANDOFFS`].
//! * `members()` of a 1,000-member group: 1,000 member nodes (ephemeral, empty msgpack
//!   capabilities, as a join writes them) created with the raw client, then ours and Python's
//!   read them, median of [`MEMBER_CALLS`] calls (Python's `get_members_with_capabilities`
//!   reads each member's node in turn, so it is timed over fewer calls: the count is printed).
//!
//! Checked against the targets: lock pairs at least 3x Python's and 0.8x the pipelined floor,
//! and a hand-off median of at most 10 ms; the sequential floor, the 64 tasks and `members()`
//! are printed for information.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tooz::{Coordinator, Lock};
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, Error as ZkError};

/// Alternating rounds of ours and the floors.
const ROUNDS: usize = 5;
/// How long each round runs.
const ROUND: Duration = Duration::from_secs(2);
/// The concurrent tasks of the second workload.
const TASKS: usize = 64;
/// Hand-offs measured, after [`HANDOFF_WARMUP`] that are not.
const HANDOFFS: usize = 200;
/// The first hand-offs set up the waiter's lock node and watches.
const HANDOFF_WARMUP: usize = 5;
/// The members of the group whose listing is timed.
const MEMBERS: usize = 1000;
/// Timed `members()` calls (the median is reported).
const MEMBER_CALLS: usize = 20;
/// tooz's namespace node: groups are `/tooz/<group>`, members under them.
const BASE: &str = "/tooz";
/// tooz's lock nodes: `/tooz/locks/<name>`, contenders under them.
const LOCKS: &str = "/tooz/locks";
/// kazoo's contender marker: a contender is `<prefix>__lock__<10-digit sequence>`.
const CONTENDER_MARK: &str = "__lock__";
/// Python's lock (benches/python/tooz_bench.py): its node is removed at the end.
const PYTHON_LOCK: &str = "bench-lock-python";
/// The session timeout asked for, ours (`?timeout=60`) and the raw client's: longer than any
/// pause between our manual heartbeats (scripts/backends allows up to 60 s).
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// Creates or deletes sent back to back before their answers are awaited.
const BATCH: usize = 250;
/// Empty capabilities: a msgpack empty map.
const NO_CAPABILITIES: &[u8] = b"\x80";
/// A lock contender: ephemeral sequential, open to all (tooz's ACL without a user).
const CONTENDER: CreateOptions<'static> =
    CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
/// A member node, as a join makes it.
const MEMBER: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
/// A lock's node (and its parents).
const DIRECTORY: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());

/// The server's `HOST:PORT`.
fn server() -> String {
    let url = std::env::var("TOOZ_ZOOKEEPER_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::env::var("TOOZ_TEST_URLS")
                .unwrap_or_default()
                .split_whitespace()
                .find(|u| u.starts_with("zookeeper://"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "zookeeper://127.0.0.1:2181?timeout=5".to_owned());
    let url = url::Url::parse(&url).expect("a zookeeper:// URL");
    format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(2181)
    )
}

/// The first contender among `children` (the holder), by kazoo's order: the least sequence,
/// compared as text.
fn first_contender(children: &[String]) -> Option<&str> {
    children
        .iter()
        .filter_map(|c| c.rsplit_once(CONTENDER_MARK).map(|(_, s)| (s, c.as_str())))
        .min_by(|a, b| a.0.cmp(b.0))
        .map(|(_, c)| c)
}

/// The floor of one lock: its node, the contender path prefix (an owner of 32 hex digits, as
/// the driver's), the member id the contender holds, a client handle of its own (a clone: one
/// session for all), and whether the create and the listing are pipelined.
struct Floor {
    client: Client,
    /// `/tooz/locks/<name>`.
    dir: String,
    /// `<32 hex>__lock__`.
    prefix: String,
    /// `<dir>/<prefix>`, the path the sequential node is created at.
    path: String,
    data: Vec<u8>,
    pipelined: bool,
}

impl Floor {
    /// The floor of lock `name` (its node made now, outside the measurement).
    async fn new(client: &Client, name: &str, index: usize, pipelined: bool) -> Self {
        let dir = format!("{LOCKS}/{name}");
        client.mkdir(&dir, &DIRECTORY).await.unwrap();
        let owner = (u128::from(std::process::id()) << 64) | index as u128;
        let prefix = format!("{owner:032x}{CONTENDER_MARK}");
        Self {
            client: client.clone(),
            path: format!("{dir}/{prefix}"),
            dir,
            prefix,
            data: b"bench".to_vec(),
            pipelined,
        }
    }

    /// One acquire+release pair: the contender created, the contenders listed, ours checked
    /// to come first (the lock is free), the contender deleted.
    async fn pair(&self) {
        let (created, listed) = if self.pipelined {
            // Both requests leave at the method calls, in this order.
            let created = self.client.create(&self.path, &self.data, &CONTENDER);
            let listed = self.client.get_children(&self.dir);
            tokio::join!(created, listed)
        } else {
            let created = self.client.create(&self.path, &self.data, &CONTENDER).await;
            let listed = self.client.get_children(&self.dir).await;
            (created, listed)
        };
        let (_, sequence) = created.unwrap();
        let node = format!("{}{sequence}", self.prefix);
        let (children, _) = listed.unwrap();
        assert_eq!(
            first_contender(&children),
            Some(node.as_str()),
            "the floor's lock is free"
        );
        self.client
            .delete(&format!("{}/{node}", self.dir), None)
            .await
            .unwrap();
    }
}

/// One pair of ours (the lock comes back for the next).
async fn ours_pair(lock: Lock) -> Lock {
    lock.acquire().await.unwrap().release().await.unwrap();
    lock
}

/// One pair of the floor's.
async fn floor_pair(floor: Floor) -> Floor {
    floor.pair().await;
    floor
}

/// Pairs per second over [`ROUND`] of one task per worker, each running `pair` back to back on
/// its worker; the workers come back.
async fn concurrent_round<W, F, Fut>(workers: Vec<W>, pair: F) -> (Vec<W>, f64)
where
    W: Send + 'static,
    F: Fn(W) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = W> + Send + 'static,
{
    let pair = Arc::new(pair);
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + ROUND;
    let mut handles = Vec::with_capacity(workers.len());
    for mut worker in workers {
        let (pair, count) = (Arc::clone(&pair), Arc::clone(&count));
        handles.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                worker = pair(worker).await;
                count.fetch_add(1, Ordering::Relaxed);
            }
            worker
        }));
    }
    let mut workers = Vec::with_capacity(handles.len());
    for handle in handles {
        workers.push(handle.await.unwrap());
    }
    let rate = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    (workers, rate)
}

/// [`ROUNDS`] rounds of ours and of each floor in turn: each side's rates, in order (the
/// floors' in the order given). Manual heartbeats (as in the other benches): one after each
/// of our rounds keeps the session ours.
async fn alternate(
    coord: &Coordinator,
    mut ours: Vec<Lock>,
    mut floors: Vec<Vec<Floor>>,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut ours_rates = Vec::with_capacity(ROUNDS);
    let mut floor_rates: Vec<Vec<f64>> = floors.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        let (back, rate) = concurrent_round(ours, ours_pair).await;
        ours = back;
        ours_rates.push(rate);
        coord.heartbeat().await.unwrap();
        for (side, rates) in floors.iter_mut().zip(floor_rates.iter_mut()) {
            let (back, rate) = concurrent_round(std::mem::take(side), floor_pair).await;
            *side = back;
            rates.push(rate);
        }
    }
    (ours_rates, floor_rates)
}

/// Hand-offs of one lock from `holder` to a waiter of `waiter` blocked in `acquire()`: the
/// wake-up latencies (the waiter's grant minus the holder's release call), sorted. The release
/// comes `settle` after the waiter began (its contender queued behind the holder's and its
/// watch on it set by then; a release before that would still be seen, only later).
async fn handoffs(
    holder: &Coordinator,
    waiter: &Coordinator,
    name: &str,
    settle: Duration,
) -> Vec<Duration> {
    let held_lock = holder.lock(name);
    let waiting_lock = waiter.lock(name);
    let mut latencies = Vec::with_capacity(HANDOFFS);
    for i in 0..HANDOFF_WARMUP + HANDOFFS {
        let held = held_lock.acquire().await.unwrap();
        let lock = waiting_lock.clone();
        let waiting = tokio::spawn(async move {
            let guard = lock.acquire().await.unwrap();
            let granted = Instant::now();
            guard.release().await.unwrap();
            granted
        });
        tokio::time::sleep(settle).await;
        let released = Instant::now();
        held.release().await.unwrap();
        let granted = waiting.await.unwrap();
        if i >= HANDOFF_WARMUP {
            latencies.push(granted.saturating_duration_since(released));
        }
    }
    latencies.sort();
    latencies
}

/// Creates `count` member nodes under `group_dir` (ephemeral on `client`'s session, empty
/// capabilities), [`BATCH`] sent at a time before their answers are awaited: their paths.
async fn populate(client: &Client, group_dir: &str, count: usize) -> Vec<String> {
    let paths: Vec<String> = (0..count)
        .map(|i| format!("{group_dir}/member-{i}"))
        .collect();
    for batch in paths.chunks(BATCH) {
        let created: Vec<_> = batch
            .iter()
            .map(|path| client.create(path, NO_CAPABILITIES, &MEMBER))
            .collect();
        for result in created {
            result.await.unwrap();
        }
    }
    paths
}

/// Deletes the nodes at `paths` ([`BATCH`] sent at a time), those already gone included:
/// how many are left (each said on stderr).
async fn delete_all(client: &Client, paths: &[String]) -> usize {
    let mut left = 0;
    for batch in paths.chunks(BATCH) {
        let deleted: Vec<_> = batch.iter().map(|path| client.delete(path, None)).collect();
        for (path, result) in batch.iter().zip(deleted) {
            match result.await {
                Ok(()) | Err(ZkError::NoNode) => {}
                Err(e) => {
                    eprintln!("could not delete {path}: {e}");
                    left += 1;
                }
            }
        }
    }
    left
}

/// Median of [`MEMBER_CALLS`] timed calls, in milliseconds.
async fn median_ms<F, Fut>(call: F) -> f64
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut times = Vec::with_capacity(MEMBER_CALLS);
    for _ in 0..MEMBER_CALLS {
        let start = Instant::now();
        call().await;
        times.push(ms(start.elapsed()));
    }
    median(&times)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Rates, rounded, in a line.
fn list(rates: &[f64]) -> String {
    rates
        .iter()
        .map(|r| format!("{r:.0}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let hosts = server();
    let server = format!("zookeeper://{hosts}");
    let pid = std::process::id();
    // Manual heartbeats (as in the other benches): one after each of our rounds and between
    // the phases keeps the session ours; its timeout (60 s) is far above any pause here.
    let url = format!("{server}?timeout={}", SESSION_TIMEOUT.as_secs());
    let coord = Coordinator::builder(&url, "bench")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    // The floor's client: a session of its own (the client pings it by itself).
    let client = Client::connector()
        .with_session_timeout(SESSION_TIMEOUT)
        .connect(&hosts)
        .await
        .expect("a ZooKeeper server");
    // Every lock node made here, removed at the end (kazoo's recipe leaves them behind).
    let mut lock_dirs: Vec<String> = Vec::new();

    // One coordinator, one lock, sequential pairs; ours and the two floors in alternating
    // rounds, after a warm-up of each (outside the measurement).
    let name = format!("bench-lock-rust-{pid}");
    lock_dirs.push(format!("{LOCKS}/{name}"));
    let lock = coord.lock(name);
    for _ in 0..100 {
        lock.acquire().await.unwrap().release().await.unwrap();
    }
    let pipelined = Floor::new(&client, &format!("bench-lock-floor-{pid}"), 0, true).await;
    let sequential = Floor::new(&client, &format!("bench-lock-floor-seq-{pid}"), 1, false).await;
    for floor in [&pipelined, &sequential] {
        lock_dirs.push(floor.dir.clone());
        for _ in 0..100 {
            floor.pair().await;
        }
    }
    let (ours, floor_sides) =
        alternate(&coord, vec![lock], vec![vec![pipelined], vec![sequential]]).await;
    let (floors, floors_seq) = (&floor_sides[0], &floor_sides[1]);
    let (ours_1, floor_1, floor_seq_1) = (median(&ours), median(floors), median(floors_seq));

    // 64 tasks on one coordinator, a lock each; the floor's 64 tasks on one client, pipelined.
    let mut locks = Vec::with_capacity(TASKS);
    let mut floors_64 = Vec::with_capacity(TASKS);
    for t in 0..TASKS {
        let name = format!("bench-64-rust-{pid}-{t}");
        lock_dirs.push(format!("{LOCKS}/{name}"));
        let lock = coord.lock(name);
        lock.acquire().await.unwrap().release().await.unwrap();
        locks.push(lock);
        let floor = Floor::new(&client, &format!("bench-64-floor-{pid}-{t}"), t + 2, true).await;
        lock_dirs.push(floor.dir.clone());
        floor.pair().await;
        floors_64.push(floor);
    }
    let (ours_64s, floor_64_sides) = alternate(&coord, locks, vec![floors_64]).await;
    let floor_64s = &floor_64_sides[0];
    let (ours_64, floor_64) = (median(&ours_64s), median(floor_64s));

    // Hand-offs to a second coordinator, its contender queued behind the holder's and
    // watching it. The release comes once the waiter has surely queued and set its watch:
    // 20 ms, or 4 of the floor's pairs (8 round trips) if that is longer.
    let waiter = Coordinator::builder(&url, "bench-waiter")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let settle = Duration::from_millis(20).max(Duration::from_secs_f64(4.0 / floor_1));
    let handoff = format!("bench-handoff-{pid}");
    lock_dirs.push(format!("{LOCKS}/{handoff}"));
    let latencies = handoffs(&coord, &waiter, &handoff, settle).await;
    coord.heartbeat().await.unwrap();
    waiter.stop().await.unwrap();
    let (handoff_median, handoff_p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));

    // A group of 1,000 members: its node made by ours, the member nodes created raw
    // (ephemeral on the raw client's session, each as a member's join makes it), then
    // listed by ours.
    let group = format!("bench-members-{pid}");
    coord.create_group(group.as_str()).await.unwrap();
    let populating = Instant::now();
    let member_paths = populate(&client, &format!("{BASE}/{group}"), MEMBERS).await;
    let populating = populating.elapsed();
    let seen = coord.members(group.as_str()).await.unwrap().len();
    assert_eq!(seen, MEMBERS, "every member is listed");
    let (reader, name) = (&coord, group.as_str());
    let members_ms = median_ms(move || async move {
        assert_eq!(reader.members(name).await.unwrap().len(), MEMBERS);
    })
    .await;
    let members_caps_ms = median_ms(move || async move {
        assert_eq!(
            reader.members_with_capabilities(name).await.unwrap().len(),
            MEMBERS
        );
    })
    .await;
    coord.heartbeat().await.unwrap();

    // Python last (kazoo's driver, on a session of its own).
    let (py_server, py_group) = (server.clone(), group.clone());
    let py = tokio::task::spawn_blocking(move || {
        common::python_figures(&["zookeeper", &py_server, &py_group])
    })
    .await
    .unwrap();
    coord.heartbeat().await.unwrap();
    let py_get = |workload: &str, field: &str| {
        py.as_ref()
            .and_then(|p| p.get(workload))
            .and_then(|w| w[field].as_f64())
    };
    if let Some(py_seen) = py_get("members_1000", "seen")
        && py_seen as usize != MEMBERS
    {
        println!("python saw {py_seen} members, not {MEMBERS}");
    }
    let py_pairs = py_get("lock_pairs", "per_second");

    println!("zookeeper backend on {server}, ours vs Python tooz 9.1.0 vs the raw floor, one run");
    println!(
        "{:<40} {:>11} {:>11} {:>11} {:>8} {:>9}",
        "workload", "ours", "python", "floor", "ours/py", "ours/floor"
    );
    println!(
        "{:<40} {:>11.0} {:>11} {:>11.0} {:>8} {:>9.2}",
        "lock pairs/s, 1 coordinator, 1 task",
        ours_1,
        py_pairs.map_or("-".into(), |p| format!("{p:.0}")),
        floor_1,
        py_pairs.map_or("-".into(), |p| format!("{:.1}x", ours_1 / p)),
        ours_1 / floor_1
    );
    println!(
        "{:<40} {:>11.0} {:>11} {:>11.0} {:>8} {:>9.2}",
        "  the same, sequential floor (info)",
        ours_1,
        "-",
        floor_seq_1,
        "-",
        ours_1 / floor_seq_1
    );
    println!(
        "{:<40} {:>11.0} {:>11} {:>11.0} {:>8} {:>9.2}",
        "lock pairs/s, 64 tasks, 64 locks",
        ours_64,
        "-",
        floor_64,
        "-",
        ours_64 / floor_64
    );
    for (what, value) in [
        ("hand-off: wake-up median ms", handoff_median),
        ("hand-off: wake-up p99 ms", handoff_p99),
    ] {
        println!(
            "{:<40} {:>11.3} {:>11} {:>11} {:>8} {:>9}",
            what,
            ms(value),
            "-",
            "-",
            "-",
            "-"
        );
    }
    for (what, ours_ms, py) in [
        (
            "members() ms, 1,000 members",
            members_ms,
            py_get("members_1000", "ms"),
        ),
        (
            "with capabilities ms, 1,000",
            members_caps_ms,
            py_get("members_caps_1000", "ms"),
        ),
    ] {
        println!(
            "{:<40} {:>11.3} {:>11} {:>11} {:>8} {:>9}",
            what,
            ours_ms,
            py.map_or("-".into(), |p| format!("{p:.3}")),
            "-",
            py.map_or("-".into(), |p| format!("{:.1}x", p / ours_ms)),
            "-"
        );
    }
    println!(
        "(lock pairs/s: medians of {ROUNDS} alternating {}s rounds; 1 task: ours {}; floor \
         pipelined {}; floor sequential {}; 64 tasks: ours {}; floor {})",
        ROUND.as_secs(),
        list(&ours),
        list(floors),
        list(floors_seq),
        list(&ours_64s),
        list(floor_64s)
    );
    println!(
        "(the floor: kazoo's lock recipe through one zookeeper-client Client: create of an \
         ephemeral sequential contender, get_children of the lock node, ours checked first, \
         delete; pipelined: the create and the listing sent back to back, 2 round trips a pair; \
         sequential: each awaited, 3 round trips; 64 tasks: pipelined, a clone of the client \
         each. Python: kazoo's Lock through tooz's driver)"
    );
    println!(
        "(hand-off: {HANDOFFS} hand-offs to a second coordinator blocked in acquire(), its \
         contender watching the holder's, released {:.1} ms after it began; from the holder's \
         release call to the waiter's grant)",
        ms(settle)
    );
    println!(
        "(members: medians of {MEMBER_CALLS} calls{}; ours' members() lists the group's node \
         only, with capabilities also reads the members' nodes in pipelined multi-reads; \
         1,000 member nodes created raw in {populating:.1?})",
        py_get("members_caps_1000", "calls").map_or(String::new(), |calls| format!(
            " (Python's with capabilities: {calls:.0}; it reads each member's node in turn)"
        ))
    );

    // The targets.
    match py_pairs {
        Some(p) => println!(
            "{}: lock pairs/s {ours_1:.0} = {:.1}x Python's {p:.0} (target >= 3x)",
            verdict(ours_1 >= 3.0 * p),
            ours_1 / p
        ),
        None => println!("MISS: lock pairs vs Python not measured (target >= 3x)"),
    }
    println!(
        "{}: lock pairs/s {ours_1:.0} = {:.2}x the pipelined floor's {floor_1:.0} (target >= 0.8x)",
        verdict(ours_1 >= 0.8 * floor_1),
        ours_1 / floor_1
    );
    println!(
        "info: lock pairs/s {ours_1:.0} = {:.2}x the sequential floor's {floor_seq_1:.0} \
         (3 round trips a pair)",
        ours_1 / floor_seq_1
    );
    println!(
        "{}: hand-off wake-up median {:.3} ms, p99 {:.3} ms (target: median <= 10 ms)",
        verdict(handoff_median <= Duration::from_millis(10)),
        ms(handoff_median),
        ms(handoff_p99)
    );
    println!(
        "info: lock pairs/s from 64 tasks {ours_64:.0} = {:.2}x the floor's {floor_64:.0} from \
         64 tasks",
        ours_64 / floor_64
    );
    println!(
        "info: members() of 1,000 median {members_ms:.3} ms{}; with capabilities {members_caps_ms:.3} ms{}",
        py_get("members_1000", "ms").map_or(String::new(), |p| format!(
            " (Python {p:.3} ms, {:.1}x)",
            p / members_ms
        )),
        py_get("members_caps_1000", "ms").map_or(String::new(), |p| format!(
            " (Python {p:.3} ms, {:.1}x)",
            p / members_caps_ms
        ))
    );
    if py.is_none() {
        println!("python tooz: not measured (set TOOZ_PYTHON; scripts/bench does)");
    }

    // The members' nodes, then the group, then us; then the lock nodes left behind (ours,
    // the floors', Python's: empty by now).
    let mut left = delete_all(&client, &member_paths).await;
    coord.delete_group(group.as_str()).await.unwrap();
    coord.stop().await.unwrap();
    lock_dirs.push(format!("{LOCKS}/{PYTHON_LOCK}"));
    left += delete_all(&client, &lock_dirs).await;
    if left > 0 {
        println!("({left} nodes could not be removed)");
    }
}
