//! `scripts/bench memcached`: the memcached backend against Python tooz 9.1.0's memcached
//! driver and against the raw floor (the least a lock pair needs: a meta `ms ... ME` add and a
//! meta `md`, two round trips on a plain TCP connection), on one server, in one run. The server
//! comes from `TOOZ_TEST_URLS` (scripts/bench starts one); like the redis bench, this one
//! flushes it (`flush_all`) before and after.
//!
//! Workloads: acquire+release pairs per second with one coordinator; 64 concurrent tasks taking
//! 64 different locks through one coordinator (floor: 64 tasks, a connection each);
//! `members()` of a 1,000-member group (median of 20) that 1,000 of our coordinators joined,
//! read by ours and by Python's. Checked against the targets: lock pairs at least 2x
//! Python's and 0.8x the floor, `members()` of 1,000 at least 5x Python's.

#[path = "common/mod.rs"]
mod common;
#[path = "common/rate.rs"]
mod rate;

use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tooz::Coordinator;

const TASKS: usize = 64;
const MEMBERS: usize = 1000;

/// The server's `HOST:PORT`.
fn server() -> String {
    std::env::var("TOOZ_TEST_URLS")
        .unwrap_or_default()
        .split_whitespace()
        .find(|u| u.starts_with("memcached://"))
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| {
            format!(
                "{}:{}",
                u.host_str().unwrap_or("127.0.0.1"),
                u.port().unwrap_or(11211)
            )
        })
        .unwrap_or_else(|| "127.0.0.1:11211".to_owned())
}

/// A plain connection: one request, one reply line.
struct Raw(BufStream<TcpStream>);

impl Raw {
    async fn connect(server: &str) -> Self {
        let stream = TcpStream::connect(server).await.expect("memcached server");
        stream.set_nodelay(true).unwrap();
        Self(BufStream::new(stream))
    }

    async fn call(&mut self, request: &[u8], line: &mut String) {
        self.0.write_all(request).await.unwrap();
        self.0.flush().await.unwrap();
        line.clear();
        self.0.read_line(line).await.unwrap();
    }
}

/// The floor of one lock pair: add the key (meta set in add mode, with a TTL), delete it.
struct RawPair {
    conn: Raw,
    acquire: Vec<u8>,
    release: Vec<u8>,
    line: String,
}

impl RawPair {
    async fn new(server: &str, name: &str) -> Self {
        let key = format!("_raw_lock_{name}");
        Self {
            conn: Raw::connect(server).await,
            acquire: format!("ms {key} 1 ME T30\r\nx\r\n").into_bytes(),
            release: format!("md {key}\r\n").into_bytes(),
            line: String::new(),
        }
    }

    async fn pair(&mut self) {
        self.conn.call(&self.acquire, &mut self.line).await;
        assert_eq!(self.line, "HD\r\n", "the floor's add");
        self.conn.call(&self.release, &mut self.line).await;
        assert_eq!(self.line, "HD\r\n", "the floor's delete");
    }
}

async fn raw_pairs(server: &str, names: impl Iterator<Item = String>) -> Arc<Vec<Mutex<RawPair>>> {
    let mut pairs = Vec::new();
    for name in names {
        pairs.push(Mutex::new(RawPair::new(server, &name).await));
    }
    Arc::new(pairs)
}

async fn flush_all(server: &str) {
    let mut conn = Raw::connect(server).await;
    let mut line = String::new();
    conn.call(b"flush_all\r\n", &mut line).await;
    assert_eq!(line, "OK\r\n", "flush_all");
}

/// Median of 20 timed calls, in milliseconds.
async fn median_ms<F, Fut>(call: F) -> f64
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut times = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        call().await;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[10]
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = server();
    flush_all(&server).await;
    let base = format!("memcached://{server}");
    let url = format!("{base}?timeout=30");
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
    let solo = raw_pairs(&server, std::iter::once("solo".to_owned())).await;
    let floor_1 = rate::best_of_three(1, move |_| {
        let solo = Arc::clone(&solo);
        async move { solo[0].lock().await.pair().await }
    })
    .await;

    // 64 tasks, 64 locks, one coordinator.
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
    let many = raw_pairs(&server, (0..TASKS).map(|t| format!("t{t}"))).await;
    let floor_64 = rate::best_of_three(TASKS, move |task| {
        let many = Arc::clone(&many);
        async move { many[task].lock().await.pair().await }
    })
    .await;

    // Manual heartbeats (as in the other benches): one now keeps the session ours.
    coord.heartbeat().await.unwrap();

    // A group of 1,000 live members, each joined by a coordinator of ours (connected, joined,
    // then dropped without stopping: its member key lives on for the membership timeout).
    let group = format!("members-1000-{}", std::process::id());
    coord.create_group(group.as_str()).await.unwrap();
    let populate = Instant::now();
    let member_url = format!("{base}?timeout=30&membership_timeout=600&max_pool_size=1");
    for i in 0..MEMBERS {
        let member = Coordinator::builder(&member_url, format!("member-{i}").as_str())
            .manual_heartbeat()
            .connect()
            .await
            .unwrap();
        member
            .join_group(group.as_str(), serde_json::json!({"weight": 1}))
            .await
            .unwrap();
        // Its member key, with the 600 s membership timeout.
        member.heartbeat().await.unwrap();
    }
    let populate = populate.elapsed();
    let seen = coord.members(group.as_str()).await.unwrap().len();
    assert_eq!(seen, MEMBERS, "every member is live");
    let (reader, name) = (&coord, group.as_str());
    let members_ms = median_ms(move || async move {
        assert_eq!(reader.members(name).await.unwrap().len(), MEMBERS);
    })
    .await;
    let members_caps_ms = median_ms(move || async move {
        reader.members_with_capabilities(name).await.unwrap();
    })
    .await;

    let py = common::python_figures(&["memcached", &url, &group]);
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

    println!("memcached backend on {server}, ours vs Python tooz 9.1.0 vs the raw floor, one run");
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
    let py_members = py_get("members_1000", "ms");
    for (name, ours, py) in [
        ("members() ms, 1,000 members", members_ms, py_members),
        (
            "with capabilities ms, 1,000",
            members_caps_ms,
            py_get("members_caps_1000", "ms"),
        ),
    ] {
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
        "(the floor of 64 tasks: a connection each; 1,000 members joined by 1,000 coordinators \
         in {populate:.1?})"
    );

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
    match py_members {
        Some(p) => println!(
            "{}: members() of 1,000 {members_ms:.3} ms = {:.1}x faster than Python's {p:.3} ms \
             (target >= 5x)",
            verdict(p >= 5.0 * members_ms),
            p / members_ms
        ),
        None => println!("MISS: members() of 1,000 vs Python not measured (target >= 5x)"),
    }
    if py.is_none() {
        println!("python tooz: not measured (set TOOZ_PYTHON; scripts/bench does)");
    }
    coord.stop().await.unwrap();
    flush_all(&server).await;
}
