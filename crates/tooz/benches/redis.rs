//! `scripts/bench redis`: the Redis backend against Python tooz 9.1.0's Redis driver and
//! against the raw floor (the same scripted round trips made directly with the `redis` crate),
//! on one server, in one run. The server comes from `TOOZ_TEST_URLS` (scripts/bench starts one).
//!
//! Workloads: acquire+release pairs per second with one coordinator; 64 concurrent tasks taking
//! 64 different locks through one coordinator (floor: 64 tasks on one multiplexed connection);
//! `members()` of a 1,000-member group (median of 20), with the number of commands the server
//! processed for one call.

#[path = "common/blocking.rs"]
mod blocking;
#[path = "common/mod.rs"]
mod common;
#[path = "common/rate.rs"]
mod rate;

use std::time::Instant;

use redis::Script;
use redis::aio::MultiplexedConnection;
use tooz::Coordinator;

const ACQUIRE: &str = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return redis.call('INCR', KEYS[2]) end return 0";
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) redis.call('PUBLISH', ARGV[2], KEYS[1]) return 1 end return 0";
const TASKS: usize = 64;

fn server() -> String {
    std::env::var("TOOZ_TEST_URLS")
        .unwrap_or_default()
        .split_whitespace()
        .find(|u| u.starts_with("redis://"))
        .map(|u| u.split('?').next().unwrap().to_owned())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

async fn raw_pair(conn: MultiplexedConnection, name: String) {
    let (acquire, release) = (Script::new(ACQUIRE), Script::new(RELEASE));
    let mut conn = conn;
    let token: u64 = acquire
        .key(format!("_raw_{name}_lock"))
        .key(format!("_raw:fence:{name}"))
        .arg("0123456789abcdef0123456789abcdef")
        .arg(30_000)
        .invoke_async(&mut conn)
        .await
        .unwrap();
    assert!(token > 0);
    let _: i64 = release
        .key(format!("_raw_{name}_lock"))
        .arg("0123456789abcdef0123456789abcdef")
        .arg("_raw:events")
        .invoke_async(&mut conn)
        .await
        .unwrap();
}

/// Calls the server counted so far: (EVALSHA/EVAL requests, every command including those run
/// inside scripts).
async fn commands_processed(conn: &mut MultiplexedConnection) -> (u64, u64) {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    let calls: Vec<(String, u64)> = info
        .lines()
        .filter_map(|l| l.split_once(":calls="))
        .filter(|(name, _)| name.starts_with("cmdstat_") && *name != "cmdstat_info")
        .filter_map(|(name, rest)| {
            Some((
                name.to_owned(),
                rest.split(',').next()?.parse::<u64>().ok()?,
            ))
        })
        .collect();
    let scripts = calls
        .iter()
        .filter(|(n, _)| n == "cmdstat_evalsha" || n == "cmdstat_eval")
        .map(|(_, c)| c)
        .sum();
    (scripts, calls.iter().map(|(_, c)| c).sum())
}

fn python(url: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    common::python_figures(&["redis", url, "members-1000"])
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = server();
    let client = redis::Client::open(server.as_str()).expect("redis URL");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis server");
    let _: () = redis::cmd("FLUSHDB").query_async(&mut raw).await.unwrap();
    let url = format!("{server}?timeout=30");
    let coord = Coordinator::builder(&url, "bench")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();

    // One coordinator, one lock, sequential pairs.
    let lock = coord.lock("bench-lock-rust");
    let ours_1 = rate::best_of_three(1, move |_| {
        let lock = lock.clone();
        async move { lock.acquire().await.unwrap().release().await.unwrap() }
    })
    .await;
    let side_lock = coord.lock("bench-lock-compared");
    let (async_1, blocking_1) =
        blocking::compare(&url, "bench-blocking", "bench-lock-blocking", || {
            blocking::async_round(|| async {
                side_lock.acquire().await.unwrap().release().await.unwrap();
            })
        })
        .await;
    let floor_conn = raw.clone();
    let floor_1 =
        rate::best_of_three(1, move |_| raw_pair(floor_conn.clone(), "solo".into())).await;

    // 64 tasks, 64 locks, one coordinator (one multiplexed connection).
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
    let floor_conn = raw.clone();
    let floor_64 = rate::best_of_three(TASKS, move |task| {
        raw_pair(floor_conn.clone(), format!("t{task}"))
    })
    .await;

    // A group of 1,000 live members, written in tooz's layout.
    let mut pipe = redis::pipe();
    pipe.cmd("SADD")
        .arg("_tooz_groups")
        .arg("members-1000")
        .ignore();
    pipe.cmd("HSET")
        .arg("_tooz_group:members-1000")
        .arg("__created__")
        .arg("1")
        .ignore();
    for i in 0..1000 {
        let member = format!("member-{i}");
        pipe.cmd("HSET")
            .arg("_tooz_group:members-1000")
            .arg(&member)
            .arg(b"\x81\xa6weight\x01".as_slice())
            .ignore();
        pipe.cmd("SET")
            .arg(format!("_tooz_beats:{member}"))
            .arg("Not dead!")
            .arg("EX")
            .arg(3600)
            .ignore();
    }
    let _: () = pipe.query_async(&mut raw).await.unwrap();
    let mut times = Vec::new();
    // Warm-up: a script's first use on a server loads it (one extra round trip, once).
    coord.members("members-1000").await.unwrap();
    let before = commands_processed(&mut raw).await;
    let seen = coord.members("members-1000").await.unwrap().len();
    let after = commands_processed(&mut raw).await;
    let (requests, commands) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(seen, 1000);
    for _ in 0..20 {
        let start = Instant::now();
        coord.members("members-1000").await.unwrap();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let members_ms = times[10];
    let mut times = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        coord
            .members_with_capabilities("members-1000")
            .await
            .unwrap();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let members_caps_ms = times[10];

    let py = python(&url);
    let py_get = |workload: &str, field: &str| {
        py.as_ref()
            .and_then(|p| p.get(workload))
            .and_then(|w| w[field].as_f64())
    };

    println!("redis backend on {server}, ours vs Python tooz 9.1.0 vs the raw floor, one run");
    println!(
        "{:<40} {:>11} {:>11} {:>11} {:>8} {:>9}",
        "workload", "ours", "python", "floor", "ours/py", "ours/floor"
    );
    let py_pairs = py_get("lock_pairs", "per_second");
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
    for (name, ours, workload) in [
        ("members() ms, 1,000 members", members_ms, "members_1000"),
        (
            "with capabilities ms, 1,000",
            members_caps_ms,
            "members_caps_1000",
        ),
    ] {
        let py = py_get(workload, "ms");
        println!(
            "{:<40} {:>11.3} {:>11} {:>11} {:>8} {:>9}",
            name,
            ours,
            py.map_or("-".into(), |p| format!("{p:.3}")),
            "-",
            py.map_or("-".into(), |p| format!("{:.1}x", p / ours)),
            "-"
        );
    }
    println!(
        "one members() of 1,000: {requests} script request(s) from us (one round trip); \
         {commands} commands run by the server in all, the others inside the script"
    );
    blocking::print_blocking(async_1, blocking_1);
    if py.is_none() {
        println!("python tooz: not measured (set TOOZ_PYTHON; scripts/bench does)");
    }
    coord.stop().await.unwrap();
    let _: () = redis::cmd("FLUSHDB").query_async(&mut raw).await.unwrap();
}
