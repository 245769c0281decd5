//! `scripts/bench postgres`: the PostgreSQL backend against Python tooz 9.1.0's PostgreSQL
//! driver and against the raw floor (the same statements a lock pair needs, run on one
//! tokio-postgres connection with no library: the advisory lock and the fencing counter in one
//! statement, then the unlock), on one server, in one run. The server comes from
//! `TOOZ_TEST_URLS` (scripts/bench starts one).
//!
//! Workloads: acquire+release pairs per second with one coordinator and one task (floor: one
//! connection, prepared statements); 64 concurrent tasks taking 64 different locks through one
//! coordinator (floor: the 64 tasks on one connection, which pipelines them). Python's driver
//! opens a connection per acquire and closes it at release, so its pairs pay a connect each.
//! Checked against the targets: lock pairs at least 10x Python's and 0.8x the floor.

#[path = "common/mod.rs"]
mod common;
#[path = "common/rate.rs"]
mod rate;

use std::sync::Arc;

use tokio_postgres::{Client, NoTls, Statement};
use tooz::Coordinator;

/// The floor's table: the shape of the driver's `<prefix>locks` (name, server-assigned key,
/// fencing counter), under a name of its own, its keys far above any the driver assigns (the
/// advisory-lock key space is the whole database's).
const FLOOR_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tooz_bench_floor_locks (
    name bytea PRIMARY KEY,
    key bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000000000000) UNIQUE,
    fence bigint NOT NULL DEFAULT 0)";
/// The key of a name (once per name, outside the measured pairs).
const FLOOR_KEY: &str = "INSERT INTO tooz_bench_floor_locks (name) VALUES ($1)
    ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING key";
/// Acquire: the session advisory lock and the fencing counter, in one statement (no row when
/// the lock is taken).
const ACQUIRE: &str = "WITH got AS MATERIALIZED (SELECT pg_try_advisory_lock($1) AS ok)
    UPDATE tooz_bench_floor_locks SET fence = fence + 1 FROM got
    WHERE key = $1 AND got.ok RETURNING fence";
/// Release: the unlock, and the wake-up of waiters (as the driver's release sends one).
const RELEASE: &str = "SELECT pg_advisory_unlock($1), pg_notify('tooz_bench_floor_lock', $1::text)";
const FLOOR_DROP: &str = "DROP TABLE IF EXISTS tooz_bench_floor_locks";

const TASKS: usize = 64;

/// The server's URL without options.
fn server() -> String {
    std::env::var("TOOZ_TEST_URLS")
        .unwrap_or_default()
        .split_whitespace()
        .find(|u| u.starts_with("postgresql://") || u.starts_with("postgres://"))
        .map(|u| u.split('?').next().unwrap().to_owned())
        .unwrap_or_else(|| "postgresql://postgres@127.0.0.1:5432/tooz".to_owned())
}

/// The floor: one plain connection, the pair's two statements prepared once.
struct Floor {
    client: Client,
    acquire: Statement,
    release: Statement,
}

impl Floor {
    async fn connect(server: &str) -> Arc<Self> {
        let (client, connection) = tokio_postgres::connect(server, NoTls)
            .await
            .expect("a PostgreSQL server");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client.batch_execute(FLOOR_SCHEMA).await.unwrap();
        let acquire = client.prepare(ACQUIRE).await.unwrap();
        let release = client.prepare(RELEASE).await.unwrap();
        Arc::new(Self {
            client,
            acquire,
            release,
        })
    }

    async fn key(&self, name: &str) -> i64 {
        self.client
            .query_one(FLOOR_KEY, &[&name.as_bytes()])
            .await
            .unwrap()
            .get(0)
    }

    async fn pair(&self, key: i64) {
        let granted = self.client.query_opt(&self.acquire, &[&key]).await.unwrap();
        let fence: i64 = granted.expect("the floor's lock is free").get(0);
        assert!(fence > 0);
        let released: bool = self
            .client
            .query_one(&self.release, &[&key])
            .await
            .unwrap()
            .get(0);
        assert!(released, "the floor's unlock");
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = server();
    // Manual heartbeats (as in the other benches): one between the phases keeps the session
    // ours; the idle bound (`lock_timeout`, here `timeout`) is far above any pause here.
    let url = format!("{server}?timeout=60");
    let coord = Coordinator::builder(&url, "bench")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let floor = Floor::connect(&server).await;

    // One coordinator, one lock, sequential pairs.
    let lock = coord.lock("bench-lock-rust");
    let ours_1 = rate::best_of_three(1, move |_| {
        let lock = lock.clone();
        async move { lock.acquire().await.unwrap().release().await.unwrap() }
    })
    .await;
    coord.heartbeat().await.unwrap();
    let solo = floor.key("solo").await;
    let f = Arc::clone(&floor);
    let floor_1 = rate::best_of_three(1, move |_| {
        let f = Arc::clone(&f);
        async move { f.pair(solo).await }
    })
    .await;
    coord.heartbeat().await.unwrap();

    // 64 tasks, 64 locks, one coordinator (one session).
    let c = coord.clone();
    let ours_64 = rate::best_of_three(TASKS, move |task| {
        let c = c.clone();
        async move {
            c.lock(format!("bench-{task}"))
                .acquire()
                .await
                .unwrap()
                .release()
                .await
                .unwrap()
        }
    })
    .await;
    coord.heartbeat().await.unwrap();
    let mut keys = Vec::new();
    for task in 0..TASKS {
        keys.push(floor.key(&format!("t{task}")).await);
    }
    let keys = Arc::new(keys);
    let f = Arc::clone(&floor);
    let floor_64 = rate::best_of_three(TASKS, move |task| {
        let (f, keys) = (Arc::clone(&f), Arc::clone(&keys));
        async move { f.pair(keys[task]).await }
    })
    .await;
    coord.heartbeat().await.unwrap();

    let py = common::python_figures(&["postgresql", &server]);
    let py_pairs = py
        .as_ref()
        .and_then(|p| p.get("lock_pairs"))
        .and_then(|w| w["per_second"].as_f64());

    println!("postgresql backend on {server}, ours vs Python tooz 9.1.0 vs the raw floor, one run");
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
    println!(
        "(the floor: {ACQUIRE_SHORT} then {RELEASE_SHORT}, prepared, on one connection; \
         Python's driver connects for every acquire)"
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
        "{}: 64 tasks on 64 locks {ours_64:.0} pairs/s = {:.2}x the floor's {floor_64:.0} \
         (target >= 0.8x)",
        verdict(ours_64 >= 0.8 * floor_64),
        ours_64 / floor_64
    );
    if py.is_none() {
        println!("python tooz: not measured (set TOOZ_PYTHON; scripts/bench does)");
    }
    coord.stop().await.unwrap();
    floor.client.batch_execute(FLOOR_DROP).await.unwrap();
}

/// The floor's statements, shortened for the table's footnote.
const ACQUIRE_SHORT: &str = "pg_try_advisory_lock + fence = fence + 1 (one statement)";
const RELEASE_SHORT: &str = "pg_advisory_unlock + pg_notify";
