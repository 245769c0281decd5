//! `scripts/bench etcd`: the etcd backend against Python tooz 9.1.0's etcd3gw driver and
//! against the raw floor (the two transactions a lock pair needs, sent through one
//! etcd-client `Client` with no library: the acquire, `when create_revision(key) == 0 then
//! put(key, owner, lease)`, whose header revision is the token, then the release, `when
//! value(key) == owner then delete(key)`), on one server, in one run. The server comes from
//! `TOOZ_ETCD_URL`, else the `etcd3+http://` entry of `TOOZ_TEST_URLS` (scripts/bench starts
//! one), else 127.0.0.1:2379; its options are dropped.
//!
//! Workloads:
//! * lock pairs: acquire+release pairs per second of one lock, one coordinator, one task
//!   (floor: one client, one lease granted beforehand). Ours and the floor run in [`ROUNDS`]
//!   alternating rounds, so that the machine's drift falls on both alike; the table gives each
//!   side's median round. Python's driver grants a lease of its own for every acquire (a lease
//!   grant, then the transaction, over etcd's JSON gateway).
//! * 64 tasks: 64 concurrent tasks on one coordinator, each taking a lock of its own in a loop
//!   (floor: 64 tasks on one client, each with a clone of it), alternating rounds likewise.
//! * hand-off: a second coordinator blocked in `acquire()` of a lock the first holds (woken by
//!   an etcd watch on the lock key); the wake-up latency is the time from the holder's release
//!   call to the waiter's `acquire()` returning (so it includes the release's own round trip),
//!   median and p99 of [`HANDOFFS`].
//! * `members()` of a 1,000-member group: 1,000 member keys (empty msgpack capabilities)
//!   written with the raw client under one lease of its own, then ours and Python's read them,
//!   median of [`MEMBER_CALLS`] calls.
//!
//! Checked against the targets: lock pairs at least 10x Python's and 0.8x the floor, 64 tasks
//! at least 0.6x the floor's 64 tasks, and a hand-off median of at most 10 ms.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, PutOptions, ResponseHeader, Txn, TxnOp,
};
use tooz::{Coordinator, Lock};

/// Alternating rounds of ours and the floor.
const ROUNDS: usize = 5;
/// How long each round runs.
const ROUND: Duration = Duration::from_secs(2);
/// The concurrent tasks of the second workload.
const TASKS: usize = 64;
/// Hand-offs measured, after [`HANDOFF_WARMUP`] that are not.
const HANDOFFS: usize = 200;
/// The first hand-offs start the waiter's watches.
const HANDOFF_WARMUP: usize = 5;
/// The members of the group whose listing is timed.
const MEMBERS: usize = 1000;
/// Timed `members()` calls (the median is reported).
const MEMBER_CALLS: usize = 20;
/// tooz's lock keys: `/tooz/locks<name>`.
const LOCKS: &[u8] = b"/tooz/locks";
/// tooz's group keys: `tooz/groups/<group>/`, members under it.
const GROUPS: &str = "tooz/groups/";
/// The TTL (seconds) of the leases the bench grants for the floor and the members: longer than
/// the run; they are revoked at its end.
const RAW_LEASE_TTL: i64 = 600;
/// Member keys per transaction (etcd's `--max-txn-ops` is 128 by default).
const PUTS_PER_TXN: usize = 100;
/// Empty capabilities: a msgpack empty map.
const NO_CAPABILITIES: &[u8] = b"\x80";

/// The server's URL without options.
fn server() -> String {
    let url = std::env::var("TOOZ_ETCD_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::env::var("TOOZ_TEST_URLS")
                .unwrap_or_default()
                .split_whitespace()
                .find(|u| u.starts_with("etcd3+http://"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "etcd3+http://127.0.0.1:2379?timeout=5".to_owned());
    url.split('?').next().unwrap().to_owned()
}

/// The server's gRPC endpoint, `http://HOST:PORT`, as the driver makes it.
fn endpoint(server: &str) -> String {
    let url = url::Url::parse(server).expect("an etcd3+http:// URL");
    format!(
        "http://{}:{}",
        url.host_str().unwrap_or("localhost"),
        url.port().unwrap_or(2379)
    )
}

/// The floor of one lock: its key, an owner value of 16 bytes (as the driver's), the lease
/// its key goes on, and a client handle of its own (a clone: one connection for all).
struct Floor {
    client: Client,
    key: Vec<u8>,
    value: Vec<u8>,
    lease: i64,
}

impl Floor {
    fn new(client: &Client, name: &str, lease: i64, index: usize) -> Self {
        let owner = (u128::from(std::process::id()) << 64) | index as u128;
        Self {
            client: client.clone(),
            key: [LOCKS, name.as_bytes()].concat(),
            value: owner.to_be_bytes().to_vec(),
            lease,
        }
    }

    /// One acquire+release pair: the driver's two transactions, checked as it checks them.
    async fn pair(&mut self) {
        let put = PutOptions::new().with_lease(self.lease);
        let acquire = Txn::new()
            .when([Compare::create_revision(
                self.key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then([TxnOp::put(self.key.clone(), self.value.clone(), Some(put))]);
        let taken = self.client.txn(acquire).await.unwrap();
        let token = taken.header().map_or(0, ResponseHeader::revision);
        assert!(
            taken.succeeded() && token > 0,
            "the floor's lock is free (token {token})"
        );
        let release = Txn::new()
            .when([Compare::value(
                self.key.clone(),
                CompareOp::Equal,
                self.value.clone(),
            )])
            .and_then([TxnOp::delete(self.key.clone(), None)]);
        let released = self.client.txn(release).await.unwrap();
        assert!(released.succeeded(), "the floor's release");
    }
}

/// One pair of ours (the lock comes back for the next).
async fn ours_pair(lock: Lock) -> Lock {
    lock.acquire().await.unwrap().release().await.unwrap();
    lock
}

/// One pair of the floor's.
async fn floor_pair(mut floor: Floor) -> Floor {
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

/// [`ROUNDS`] rounds of ours and of the floor, alternating: each side's rates, in order.
/// Manual heartbeats (as in the other benches): one after each of our rounds keeps the
/// session ours.
async fn alternate<A, FA, RA, B, FB, RB>(
    coord: &Coordinator,
    mut ours: Vec<A>,
    ours_pair: FA,
    mut floor: Vec<B>,
    floor_pair: FB,
) -> (Vec<f64>, Vec<f64>)
where
    A: Send + 'static,
    FA: Fn(A) -> RA + Copy + Send + Sync + 'static,
    RA: Future<Output = A> + Send + 'static,
    B: Send + 'static,
    FB: Fn(B) -> RB + Copy + Send + Sync + 'static,
    RB: Future<Output = B> + Send + 'static,
{
    let (mut ours_rates, mut floor_rates) =
        (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for _ in 0..ROUNDS {
        let (back, rate) = concurrent_round(ours, ours_pair).await;
        ours = back;
        ours_rates.push(rate);
        coord.heartbeat().await.unwrap();
        let (back, rate) = concurrent_round(floor, floor_pair).await;
        floor = back;
        floor_rates.push(rate);
    }
    (ours_rates, floor_rates)
}

/// Hand-offs of one lock from `holder` to a waiter of `waiter` blocked in `acquire()`: the
/// wake-up latencies (the waiter's grant minus the holder's release call), sorted. The release
/// comes `settle` after the waiter began (its first attempt refused, it waits on its watch by
/// then; a release before that would still wake it, as its watch starts from the revision it
/// last saw, only later).
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

/// Writes `count` member keys of `group` (empty capabilities) on `lease`, in transactions of
/// [`PUTS_PER_TXN`].
async fn populate(client: &mut Client, group: &str, count: usize, lease: i64) {
    for first in (0..count).step_by(PUTS_PER_TXN) {
        let puts: Vec<TxnOp> = (first..(first + PUTS_PER_TXN).min(count))
            .map(|i| {
                TxnOp::put(
                    format!("{GROUPS}{group}/member-{i}"),
                    NO_CAPABILITIES,
                    Some(PutOptions::new().with_lease(lease)),
                )
            })
            .collect();
        client.txn(Txn::new().and_then(puts)).await.unwrap();
    }
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
    let server = server();
    let pid = std::process::id();
    // Manual heartbeats (as in the other benches): one after each round and between the
    // phases keeps the session ours; its lease (60 s) is far above any pause here.
    let url = format!("{server}?timeout=60");
    let coord = Coordinator::builder(&url, "bench")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    // The floor's client, on the driver's transport settings.
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(60))
        .with_keep_alive(Duration::from_secs(1), Duration::from_secs(60))
        .with_keep_alive_while_idle(true);
    let mut client = Client::connect([endpoint(&server)], Some(options))
        .await
        .expect("an etcd server");
    let floor_lease = client.lease_grant(RAW_LEASE_TTL, None).await.unwrap().id();

    // One coordinator, one lock, sequential pairs; ours and the floor in alternating rounds,
    // after a warm-up of each (outside the measurement).
    let lock = coord.lock(format!("bench-lock-rust-{pid}"));
    for _ in 0..100 {
        lock.acquire().await.unwrap().release().await.unwrap();
    }
    let mut floor = Floor::new(&client, &format!("bench-lock-floor-{pid}"), floor_lease, 0);
    for _ in 0..100 {
        floor.pair().await;
    }
    let (ours, floors) = alternate(&coord, vec![lock], ours_pair, vec![floor], floor_pair).await;
    let (ours_1, floor_1) = (median(&ours), median(&floors));

    // 64 tasks on one coordinator, a lock each; the floor's 64 tasks on one client.
    let locks: Vec<Lock> = (0..TASKS)
        .map(|t| coord.lock(format!("bench-64-rust-{pid}-{t}")))
        .collect();
    let mut floors_64: Vec<Floor> = (0..TASKS)
        .map(|t| {
            let name = format!("bench-64-floor-{pid}-{t}");
            Floor::new(&client, &name, floor_lease, t + 1)
        })
        .collect();
    for lock in &locks {
        lock.acquire().await.unwrap().release().await.unwrap();
    }
    for floor in &mut floors_64 {
        floor.pair().await;
    }
    let (ours_64s, floor_64s) = alternate(&coord, locks, ours_pair, floors_64, floor_pair).await;
    let (ours_64, floor_64) = (median(&ours_64s), median(&floor_64s));

    // Hand-offs to a second coordinator, waiting on an etcd watch. The release comes once
    // the waiter has surely been refused and started its watch: 20 ms, or 8 of the floor's
    // transactions if that is longer.
    let waiter = Coordinator::builder(&url, "bench-waiter")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let settle = Duration::from_millis(20).max(Duration::from_secs_f64(4.0 / floor_1));
    let latencies = handoffs(&coord, &waiter, &format!("bench-handoff-{pid}"), settle).await;
    coord.heartbeat().await.unwrap();
    waiter.stop().await.unwrap();
    let (handoff_median, handoff_p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));

    // A group of 1,000 members: its key made by ours, the member keys written raw on a lease
    // of their own (each as a member's session would hold it), then listed by ours.
    let group = format!("bench-members-{pid}");
    coord.create_group(group.as_str()).await.unwrap();
    let members_lease = client.lease_grant(RAW_LEASE_TTL, None).await.unwrap().id();
    let populating = Instant::now();
    populate(&mut client, &group, MEMBERS, members_lease).await;
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

    // Python last: its driver leaves a lease behind for every acquire (they expire after its
    // lock_timeout), which is nothing for ours to run among.
    let (py_server, py_group) = (server.clone(), group.clone());
    let py = tokio::task::spawn_blocking(move || {
        common::python_figures(&["etcd", &py_server, &py_group])
    })
    .await
    .unwrap();
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

    println!("etcd backend on {server}, ours vs Python tooz 9.1.0 vs the raw floor, one run");
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
        "(lock pairs: medians of {ROUNDS} alternating {}s rounds; 1 task: ours {}; floor {}; \
         64 tasks: ours {}; floor {})",
        ROUND.as_secs(),
        list(&ours),
        list(&floors),
        list(&ours_64s),
        list(&floor_64s)
    );
    println!(
        "(the floor: the driver's two transactions, create_revision == 0 then put on a lease, \
         and value == owner then delete, through one etcd-client Client; 64 tasks: a clone of it \
         each. Python's driver grants a lease for every acquire, over the JSON gateway)"
    );
    println!(
        "(hand-off: {HANDOFFS} hand-offs to a second coordinator blocked in acquire(), woken by \
         an etcd watch, released {:.1} ms after it began; from the holder's release call to the \
         waiter's grant)",
        ms(settle)
    );
    println!(
        "(members: medians of {MEMBER_CALLS} calls; ours' members() reads keys only, \
         with capabilities their values too; 1,000 member keys written raw in {populating:.1?})"
    );

    // The targets.
    match py_pairs {
        Some(p) => println!(
            "{}: lock pairs/s {ours_1:.0} = {:.1}x Python's {p:.0} (target >= 10x)",
            verdict(ours_1 >= 10.0 * p),
            ours_1 / p
        ),
        None => println!("MISS: lock pairs vs Python not measured (target >= 10x)"),
    }
    println!(
        "{}: lock pairs/s {ours_1:.0} = {:.2}x the floor's {floor_1:.0} (target >= 0.8x)",
        verdict(ours_1 >= 0.8 * floor_1),
        ours_1 / floor_1
    );
    println!(
        "{}: hand-off wake-up median {:.3} ms (target <= 10 ms)",
        verdict(handoff_median <= Duration::from_millis(10)),
        ms(handoff_median)
    );
    println!(
        "{}: lock pairs/s from 64 tasks {ours_64:.0} = {:.2}x the floor's {floor_64:.0} from 64 \
         tasks (target >= 0.6x)",
        verdict(ours_64 >= 0.6 * floor_64),
        ours_64 / floor_64
    );
    if py.is_none() {
        println!("python tooz: not measured (set TOOZ_PYTHON; scripts/bench does)");
    }

    // Revoking the members' lease deletes their keys; then the group, the floor's lease, us.
    client.lease_revoke(members_lease).await.unwrap();
    coord.delete_group(group.as_str()).await.unwrap();
    client.lease_revoke(floor_lease).await.unwrap();
    coord.stop().await.unwrap();
}
