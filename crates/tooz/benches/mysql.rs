//! `scripts/bench mysql`: the MySQL backend against Python tooz 9.1.0's MySQL driver and
//! against the raw floor (the two statements a lock pair needs, run on one mysql_async
//! connection with no library: the acquire, which takes `GET_LOCK` and bumps the fencing
//! counter in one statement, then `RELEASE_LOCK`), on one server, in one run. The server comes
//! from `TOOZ_MYSQL_URL`, else the `mysql://` entry of `TOOZ_TEST_URLS` (scripts/bench starts
//! one), else 127.0.0.1:3306 (user root, database tooz); its options are dropped.
//!
//! Workloads:
//! * lock pairs: acquire+release pairs per second of one lock, one coordinator, one task
//!   (floor: one connection, the two statements prepared once). Ours and the floor run in
//!   [`ROUNDS`] alternating rounds, so that the machine's drift falls on both alike; the table
//!   gives each side's median round. Python's driver opens a connection per acquire and closes
//!   it at release, so its pairs pay a connect each.
//! * hand-off: a second coordinator blocked in `acquire()` of a lock the first holds (its wait
//!   is `GET_LOCK` waiting on the server, on a connection of its own); the wake-up latency is
//!   the time from the holder's release call to the waiter's `acquire()` returning (so it
//!   includes the release's own round trip), median and p99 of [`HANDOFFS`].
//!
//! Checked against the targets: lock pairs at least 2x Python's and 0.8x the floor.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Statement};
use sha2::{Digest, Sha256};
use tooz::Coordinator;

/// The driver's lock table (tooz_ prefix), the very DDL it runs on first use.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tooz_locks (
                       id BINARY(32) NOT NULL PRIMARY KEY,
                       fence BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB";
/// Acquire, as the driver runs it: the lock (here without waiting: the last parameter is 0)
/// and its counter row bumped in the same statement; the token comes back as the insert id,
/// and no row changed means not taken.
const ACQUIRE: &str = "INSERT INTO tooz_locks (id, fence)
                 SELECT ?, LAST_INSERT_ID(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6))) FROM DUAL
                 WHERE IF(IS_USED_LOCK(?) <=> CONNECTION_ID(), 0, GET_LOCK(?, ?)) = 1
                 ON DUPLICATE KEY UPDATE fence = LAST_INSERT_ID(GREATEST(fence + 1, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6))))";
/// Release, as the driver runs it.
const RELEASE: &str = "SELECT RELEASE_LOCK(?)";
/// The floor's counter row goes at the end (the driver's own rows stay, as they always do).
const FLOOR_FORGET: &str = "DELETE FROM tooz_locks WHERE id = ?";
/// Connections other than this one waiting in `GET_LOCK` inside an acquire statement (the
/// coordinators' session watchers wait in a plain `SELECT GET_LOCK`, and are not counted).
const WAITERS: &str = "SELECT COUNT(*) FROM information_schema.PROCESSLIST
    WHERE ID <> CONNECTION_ID() AND STATE LIKE '%user lock%' AND INFO LIKE 'INSERT%'";

/// Alternating rounds of ours and the floor.
const ROUNDS: usize = 5;
/// How long each round runs.
const ROUND: Duration = Duration::from_secs(2);
/// Hand-offs measured, after [`HANDOFF_WARMUP`] that are not.
const HANDOFFS: usize = 200;
/// The first hand-offs open the waiter's connections.
const HANDOFF_WARMUP: usize = 5;

/// Pairs per second of `$pair` (an expression that runs one pair) run back to back for
/// [`ROUND`].
macro_rules! round {
    ($pair:expr) => {{
        let start = Instant::now();
        let mut count = 0_u64;
        while start.elapsed() < ROUND {
            for _ in 0..100 {
                $pair;
            }
            count += 100;
        }
        count as f64 / start.elapsed().as_secs_f64()
    }};
}

/// The server's URL without options.
fn server() -> String {
    let url = std::env::var("TOOZ_MYSQL_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::env::var("TOOZ_TEST_URLS")
                .unwrap_or_default()
                .split_whitespace()
                .find(|u| u.starts_with("mysql://"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "mysql://root@127.0.0.1:3306/tooz?timeout=5".to_owned());
    url.split('?').next().unwrap().to_owned()
}

/// The floor: one plain connection, the pair's two statements prepared once, on a lock name
/// of its own (its counter row keyed by the name's SHA-256, as the driver keys them).
struct Floor {
    conn: Conn,
    acquire: Statement,
    release: Statement,
    id: Vec<u8>,
    name: String,
}

impl Floor {
    async fn connect(server: &str, name: &str) -> Self {
        let opts = Opts::from_url(server).expect("a mysql:// URL");
        // Over TCP, as the driver connects (on a local host mysql_async would otherwise move
        // to the server's Unix socket).
        let opts = OptsBuilder::from_opts(opts).prefer_socket(false);
        let mut conn = Conn::new(opts).await.expect("a MySQL or MariaDB server");
        conn.query_drop(SCHEMA).await.unwrap();
        let acquire = conn.prep(ACQUIRE).await.unwrap();
        let release = conn.prep(RELEASE).await.unwrap();
        Self {
            conn,
            acquire,
            release,
            id: Sha256::digest(name.as_bytes()).to_vec(),
            name: name.to_owned(),
        }
    }

    /// One acquire+release pair, checked as the driver checks it.
    async fn pair(&mut self) {
        let params = (self.id.clone(), self.name.clone(), self.name.clone(), 0_u64);
        self.conn.exec_drop(&self.acquire, params).await.unwrap();
        let token = self.conn.last_insert_id().filter(|id| *id > 0);
        assert!(
            self.conn.affected_rows() > 0 && token.is_some(),
            "the floor's lock is free"
        );
        let released: Option<Option<i64>> = self
            .conn
            .exec_first(&self.release, (self.name.clone(),))
            .await
            .unwrap();
        assert_eq!(released, Some(Some(1)), "the floor's release");
    }

    /// Waits (up to 1 s) until another connection waits in an acquire statement's
    /// `GET_LOCK`; whether one was seen.
    async fn wait_for_waiter(&mut self) -> bool {
        let give_up = Instant::now() + Duration::from_secs(1);
        while Instant::now() < give_up {
            let waiting: Option<i64> = self.conn.query_first(WAITERS).await.unwrap();
            if waiting.unwrap_or(0) > 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        false
    }

    async fn close(mut self) {
        self.conn
            .exec_drop(FLOOR_FORGET, (self.id.clone(),))
            .await
            .unwrap();
        self.conn.disconnect().await.unwrap();
    }
}

/// Hand-offs of one lock from `holder` to a waiter of `waiter` blocked in `acquire()`: the
/// wake-up latencies (the waiter's grant minus the holder's release call), sorted, and how
/// many of them were released without the waiter seen waiting on the server.
async fn handoffs(
    holder: &Coordinator,
    waiter: &Coordinator,
    floor: &mut Floor,
) -> (Vec<Duration>, usize) {
    let held_lock = holder.lock("bench-handoff");
    let waiting_lock = waiter.lock("bench-handoff");
    let mut latencies = Vec::with_capacity(HANDOFFS);
    let mut unseen = 0;
    // Whether the server shows waiters (once one is not seen, the rest wait 20 ms instead).
    let mut look = true;
    for i in 0..HANDOFF_WARMUP + HANDOFFS {
        let held = held_lock.acquire().await.unwrap();
        let lock = waiting_lock.clone();
        let waiting = tokio::spawn(async move {
            let guard = lock.acquire().await.unwrap();
            let granted = Instant::now();
            guard.release().await.unwrap();
            granted
        });
        // Past its first attempt (refused at once on its session), the waiter waits on the
        // server; the release comes only once it is seen there.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let seen = look && floor.wait_for_waiter().await;
        if !seen {
            look = false;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let released = Instant::now();
        held.release().await.unwrap();
        let granted = waiting.await.unwrap();
        if i >= HANDOFF_WARMUP {
            unseen += usize::from(!seen);
            latencies.push(granted.saturating_duration_since(released));
        }
    }
    latencies.sort();
    (latencies, unseen)
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
    // Manual heartbeats (as in the other benches): one after each round keeps the session
    // ours; the idle bound (`wait_timeout`, here `timeout`) is far above any pause here.
    let url = format!("{server}?timeout=60");
    let coord = Coordinator::builder(&url, "bench")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let lock = coord.lock("bench-lock-rust");
    // Warm-up (outside the measurement): the tables, the statements, the counter rows.
    for _ in 0..100 {
        lock.acquire().await.unwrap().release().await.unwrap();
    }
    let mut floor = Floor::connect(&server, "bench-lock-floor").await;
    for _ in 0..100 {
        floor.pair().await;
    }

    // One coordinator, one lock, sequential pairs; ours and the floor in alternating rounds.
    let (mut ours, mut floors) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for _ in 0..ROUNDS {
        let l = lock.clone();
        let rate =
            tokio::spawn(
                async move { round!(l.acquire().await.unwrap().release().await.unwrap()) },
            )
            .await
            .unwrap();
        ours.push(rate);
        coord.heartbeat().await.unwrap();
        let (f, rate) = tokio::spawn(async move {
            let mut f = floor;
            let rate = round!(f.pair().await);
            (f, rate)
        })
        .await
        .unwrap();
        floor = f;
        floors.push(rate);
    }
    let (ours_1, floor_1) = (median(&ours), median(&floors));

    // Hand-offs to a second coordinator waiting on the server.
    let waiter = Coordinator::builder(&url, "bench-waiter")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let (latencies, unseen) = handoffs(&coord, &waiter, &mut floor).await;
    coord.heartbeat().await.unwrap();
    waiter.stop().await.unwrap();
    let (handoff_median, handoff_p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));

    let py = common::python_figures(&["mysql", &server]);
    let py_pairs = py
        .as_ref()
        .and_then(|p| p.get("lock_pairs"))
        .and_then(|w| w["per_second"].as_f64());

    println!("mysql backend on {server}, ours vs Python tooz 9.1.0 vs the raw floor, one run");
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
        "{:<40} {:>11.3} {:>11} {:>11} {:>8} {:>9}",
        "hand-off: wake-up median ms",
        ms(handoff_median),
        "-",
        "-",
        "-",
        "-"
    );
    println!(
        "{:<40} {:>11.3} {:>11} {:>11} {:>8} {:>9}",
        "hand-off: wake-up p99 ms",
        ms(handoff_p99),
        "-",
        "-",
        "-",
        "-"
    );
    println!(
        "(lock pairs: medians of {ROUNDS} alternating {}s rounds; ours {}; floor {})",
        ROUND.as_secs(),
        list(&ours),
        list(&floors)
    );
    println!(
        "(the floor: {ACQUIRE_SHORT} then {RELEASE_SHORT}, prepared, on one connection; \
         Python's driver connects for every acquire)"
    );
    println!(
        "(hand-off: {HANDOFFS} hand-offs to a second coordinator blocked in acquire(), waiting in \
         GET_LOCK on the server; from the holder's release call to the waiter's grant)"
    );
    if unseen > 0 {
        println!(
            "note: {unseen} of the {HANDOFFS} hand-offs were released without the waiter seen \
             waiting on the server (information_schema.PROCESSLIST), 20 ms after it began"
        );
    }

    // The targets.
    match py_pairs {
        Some(p) => println!(
            "{}: lock pairs/s {ours_1:.0} = {:.1}x Python's {p:.0} (target >= 2x)",
            verdict(ours_1 >= 2.0 * p),
            ours_1 / p
        ),
        None => println!("MISS: lock pairs vs Python not measured (target >= 2x)"),
    }
    println!(
        "{}: lock pairs/s {ours_1:.0} = {:.2}x the floor's {floor_1:.0} (target >= 0.8x)",
        verdict(ours_1 >= 0.8 * floor_1),
        ours_1 / floor_1
    );
    if py.is_none() {
        println!("python tooz: not measured (set TOOZ_PYTHON; scripts/bench does)");
    }
    coord.stop().await.unwrap();
    floor.close().await;
}

/// The floor's statements, shortened for the table's footnote.
const ACQUIRE_SHORT: &str = "GET_LOCK + fence = LAST_INSERT_ID(GREATEST(fence + 1, server clock)) (one INSERT ... SELECT statement, the driver's)";
const RELEASE_SHORT: &str = "RELEASE_LOCK";
